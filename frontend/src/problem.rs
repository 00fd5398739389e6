//! The API's errors as the web app sees them: RFC 9457 problem+json bodies turned into one typed
//! [`ApiError`], plus the query-string helpers every GET uses. Pure, tested on the host.

use serde::Deserialize;

/// What went wrong with a request, ready to show: `detail` is the server's Chinese message and
/// `field` names the form field at fault, when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status; 0 when the request never got an answer (network down, server stopped).
    pub status: u16,
    /// The stable code (`invalid_credentials`, `forbidden`, …; see docs/API.md), or `network`,
    /// `bad_response`.
    pub code: String,
    pub title: String,
    pub detail: String,
    pub field: Option<String>,
}

#[derive(Deserialize)]
struct ProblemBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    detail: String,
    #[serde(default)]
    field: Option<String>,
}

impl ApiError {
    /// From a non-success answer: its problem+json body when it has one, a generic message otherwise.
    pub fn from_response(status: u16, body: &str) -> ApiError {
        match serde_json::from_str::<ProblemBody>(body) {
            Ok(p) if !p.code.is_empty() => {
                ApiError { status, code: p.code, title: p.title, detail: p.detail, field: p.field }
            }
            _ => ApiError {
                status,
                code: format!("http_{status}"),
                title: "请求失败".into(),
                detail: format!("服务器返回了错误（HTTP {status}），请稍后重试"),
                field: None,
            },
        }
    }

    /// The request did not reach the server or got no answer.
    /// A problem the browser found itself (status 0), with the field at fault.
    pub fn local(field: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: 0,
            code: "invalid_input".into(),
            title: "请检查填写的内容".into(),
            detail: message.into(),
            field: Some(field.into()),
        }
    }

    pub fn network(why: &str) -> ApiError {
        ApiError {
            status: 0,
            code: "network".into(),
            title: "网络错误".into(),
            detail: format!("无法连接服务器，请检查网络后重试（{why}）"),
            field: None,
        }
    }

    /// A success answer whose body was not what the app expected (a version mismatch).
    pub fn bad_response(why: &str) -> ApiError {
        ApiError {
            status: 0,
            code: "bad_response".into(),
            title: "响应无法解析".into(),
            detail: format!("服务器的响应无法解析，请刷新页面（{why}）"),
            field: None,
        }
    }

    /// A screen's program module (loaded on demand, see `app.rs`) could not be fetched.
    pub fn module_unavailable() -> ApiError {
        ApiError {
            status: 0,
            code: "module_unavailable".into(),
            title: "页面加载失败".into(),
            detail: "这个页面的程序模块未能下载，请检查网络后点击“重试”。".into(),
            field: None,
        }
    }

    /// The token is missing, expired, revoked or invalid: the user must log in again.
    pub fn needs_login(&self) -> bool {
        self.status == 401 && self.code != "invalid_credentials" && self.code != "user_disabled"
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.detail.is_empty() { f.write_str(&self.title) } else { f.write_str(&self.detail) }
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay; `+` becomes `%2B`).
pub fn encode_query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The inverse of [`encode_query_value`] (and `+` as a space, as forms send it); a broken escape
/// is kept as written, and bytes that are not UTF-8 become U+FFFD.
pub fn decode_query_value(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The header a write answers with: the log position it reached.
pub const POSITION_HEADER: &str = "X-Ducha-Position";
/// The header a request sends so that whichever replica answers has applied that position first
/// (read-your-writes behind a load balancer).
pub const MIN_POSITION_HEADER: &str = "X-Ducha-Min-Position";

/// The position to wait for after an answer: the later of what we had and the answer's
/// `X-Ducha-Position` (ignored when missing or malformed).
pub fn later_position(current: u64, header: Option<&str>) -> u64 {
    header.and_then(|h| h.trim().parse::<u64>().ok()).map_or(current, |p| p.max(current))
}

/// `path` with `name=value` appended to its query string.
pub fn with_query(path: &str, name: &str, value: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}{name}={}", encode_query_value(value))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_last_write_position_only_moves_forward() {
        assert_eq!(super::later_position(0, Some("42")), 42);
        assert_eq!(super::later_position(50, Some("42")), 50);
        assert_eq!(super::later_position(7, None), 7);
        assert_eq!(super::later_position(7, Some("soon")), 7);
    }

    use super::*;

    #[test]
    fn problems_become_typed_errors() {
        let body = r#"{"type":"urn:ducha:problem:validation","title":"请求无效","status":422,
            "detail":"截止日期不能早于今天","code":"validation","field":"deadline","detail_en":"x"}"#;
        let e = ApiError::from_response(422, body);
        assert_eq!(e.code, "validation");
        assert_eq!(e.field.as_deref(), Some("deadline"));
        assert_eq!(e.to_string(), "截止日期不能早于今天");
        assert!(!e.needs_login());
    }

    #[test]
    fn anything_else_is_a_generic_error() {
        let e = ApiError::from_response(502, "<html>Bad Gateway</html>");
        assert_eq!((e.status, e.code.as_str()), (502, "http_502"));
        assert!(e.detail.contains("502"));
        assert_eq!(ApiError::network("timeout").status, 0);
    }

    #[test]
    fn only_token_problems_send_the_user_to_the_login_page() {
        let e = |code: &str| ApiError::from_response(401, &format!(r#"{{"code":"{code}","title":"t","detail":"d"}}"#));
        assert!(e("token_expired").needs_login());
        assert!(e("token_revoked").needs_login());
        assert!(!e("invalid_credentials").needs_login());
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            with_query("/api/v1/tenants/xxjd/dashboard", "as_of", "2024-03-05T14:07:00+08:00"),
            "/api/v1/tenants/xxjd/dashboard?as_of=2024-03-05T14%3A07%3A00%2B08%3A00"
        );
        assert_eq!(with_query("/x?page=2", "as_of", "a b"), "/x?page=2&as_of=a%20b");
        assert_eq!(encode_query_value("东风"), "%E4%B8%9C%E9%A3%8E");
    }
}
