//! The outbound channels' wire formats, as pure functions (tested against the documented examples):
//!
//! | kind | request |
//! | --- | --- |
//! | `wecom` (企业微信群机器人) | `POST {url}` (`…/cgi-bin/webhook/send?key=…`), `{"msgtype":"text","text":{"content":…}}` or `{"msgtype":"markdown","markdown":{"content":…}}`; success is `errcode` 0 |
//! | `dingtalk` (钉钉自定义机器人) | `POST {url}&timestamp={ms}&sign={urlencode(base64(HMAC-SHA256(secret, "{ms}\n{secret}")))}` (加签; without a secret the URL as is), `{"msgtype":"text","text":{"content":…}}` or `{"msgtype":"markdown","markdown":{"title":…,"text":…}}`; success is `errcode` 0 |
//! | `webhook` | `POST {url}`, the message as JSON; `X-Ducha-Delivery: {id}`, `X-Ducha-Timestamp: {unix seconds}`, `X-Ducha-Signature: sha256={hex(HMAC-SHA256(secret, "{timestamp}.{body}"))}` (with a secret); success is any 2xx |

use super::Message;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The kinds of channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// 企业微信群机器人.
    Wecom,
    /// 钉钉自定义机器人.
    Dingtalk,
    /// A generic webhook (JSON, HMAC-SHA256 signature).
    Webhook,
}

impl ChannelKind {
    pub fn code(self) -> &'static str {
        match self {
            ChannelKind::Wecom => "wecom",
            ChannelKind::Dingtalk => "dingtalk",
            ChannelKind::Webhook => "webhook",
        }
    }

    pub fn from_code(s: &str) -> Option<ChannelKind> {
        [ChannelKind::Wecom, ChannelKind::Dingtalk, ChannelKind::Webhook].into_iter().find(|k| k.code() == s)
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            ChannelKind::Wecom => "企业微信群机器人",
            ChannelKind::Dingtalk => "钉钉自定义机器人",
            ChannelKind::Webhook => "通用 Webhook",
        }
    }
}

/// One HTTP request to a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// 企业微信: text messages are at most 2048 bytes, markdown 4096.
const WECOM_TEXT_MAX: usize = 2048;
const MARKDOWN_MAX: usize = 4096;

/// `s` cut to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub("…".len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// 钉钉's `sign` for `timestamp_ms`: urlencode(base64(HMAC-SHA256(secret, "{timestamp}\n{secret}"))).
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!("any key length"));
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    url_encode(&b64)
}

/// The webhook's signature header value: `sha256=` and the hex HMAC-SHA256 of `"{timestamp}.{body}"`.
pub fn webhook_signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!("any key length"));
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Percent-encodes everything but the unreserved characters (RFC 3986).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The request for `message` on a channel of `kind` at `url`, at `now_ms` (Unix milliseconds).
pub fn request(
    kind: ChannelKind,
    url: &str,
    secret: Option<&str>,
    delivery_id: i64,
    message: &Message,
    now_ms: i64,
) -> OutboundRequest {
    let json = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    match kind {
        ChannelKind::Wecom => {
            let body = if message.is_digest() {
                serde_json::json!({"msgtype": "markdown", "markdown": {"content": truncate(&message.markdown, MARKDOWN_MAX)}})
            } else {
                serde_json::json!({"msgtype": "text", "text": {"content": truncate(&message.text, WECOM_TEXT_MAX)}})
            };
            OutboundRequest { url: url.to_owned(), headers: json, body: body.to_string() }
        }
        ChannelKind::Dingtalk => {
            let url = match secret.filter(|s| !s.is_empty()) {
                Some(secret) => {
                    let sep = if url.contains('?') { '&' } else { '?' };
                    format!("{url}{sep}timestamp={now_ms}&sign={}", dingtalk_sign(secret, now_ms))
                }
                None => url.to_owned(),
            };
            let body = if message.is_digest() {
                serde_json::json!({"msgtype": "markdown",
                    "markdown": {"title": message.title, "text": truncate(&message.markdown, MARKDOWN_MAX)}})
            } else {
                serde_json::json!({"msgtype": "text", "text": {"content": truncate(&message.text, MARKDOWN_MAX)}})
            };
            OutboundRequest { url, headers: json, body: body.to_string() }
        }
        ChannelKind::Webhook => {
            let body = serde_json::json!({
                "delivery_id": delivery_id,
                "tenant": message.tenant,
                "key": message.key,
                "kind": message.kind,
                "title": message.title,
                "text": message.text,
                "finding_id": message.finding_id,
                "lines": message.lines,
            })
            .to_string();
            let timestamp = now_ms.div_euclid(1000);
            let mut headers = json;
            headers.push(("X-Ducha-Delivery".to_owned(), delivery_id.to_string()));
            headers.push(("X-Ducha-Timestamp".to_owned(), timestamp.to_string()));
            if let Some(secret) = secret.filter(|s| !s.is_empty()) {
                headers.push(("X-Ducha-Signature".to_owned(), webhook_signature(secret, timestamp, &body)));
            }
            OutboundRequest { url: url.to_owned(), headers, body }
        }
    }
}

/// Whether a channel's answer means delivered: a 2xx, and for the robots `errcode` 0.
pub fn accepted(kind: ChannelKind, status: u16, body: &str) -> Result<(), String> {
    if !(200..300).contains(&status) {
        return Err(format!("HTTP {status}"));
    }
    match kind {
        ChannelKind::Webhook => Ok(()),
        ChannelKind::Wecom | ChannelKind::Dingtalk => {
            let v: serde_json::Value = serde_json::from_str(body).map_err(|_| "应答不是 JSON / not JSON".to_owned())?;
            match v.get("errcode").and_then(serde_json::Value::as_i64) {
                Some(0) => Ok(()),
                code => Err(format!(
                    "errcode {}: {}",
                    code.map_or("?".to_owned(), |c| c.to_string()),
                    v.get("errmsg").and_then(serde_json::Value::as_str).unwrap_or("")
                )),
            }
        }
    }
}

/// Checks a channel's URL: `http` or `https` with a host, at most 2048 bytes, no spaces. The
/// Chinese reason when not.
pub fn check_url(url: &str) -> Result<(), &'static str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("地址须以 https:// 或 http:// 开头")?;
    if url.len() > 2048 {
        return Err("地址过长（最多 2048 个字符）");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("地址不能含空白或控制字符");
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') || host.contains('@') {
        return Err("地址缺少主机名");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reminder() -> Message {
        Message {
            tenant: "xxjd".into(),
            key: "overdue/f3/2024-02-29".into(),
            kind: "overdue".into(),
            title: "逾期催办".into(),
            text: "【逾期催办】新华社区「主体责任意识有待增强」整改已逾期46天（期限2024-02-29）".into(),
            markdown: String::new(),
            finding_id: Some("f3".into()),
            lines: vec![],
        }
    }

    #[test]
    fn dingtalk_signature_matches_the_documented_algorithm() {
        // Computed independently: python3 -c 'import hmac,hashlib,base64,urllib.parse;
        // print(urllib.parse.quote_plus(base64.b64encode(hmac.new(b"SECabc",b"1700000000000\nSECabc",hashlib.sha256).digest())))'
        assert_eq!(dingtalk_sign("SECabc", 1_700_000_000_000), "jcUpW0QmtKduN03n4JqQ0PBosVjqnM8gU7fIIvsDmCM%3D");
        let r = request(
            ChannelKind::Dingtalk,
            "http://h/robot/send?access_token=t",
            Some("SECabc"),
            1,
            &reminder(),
            1_700_000_000_000,
        );
        assert!(r.url.starts_with("http://h/robot/send?access_token=t&timestamp=1700000000000&sign="), "{}", r.url);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["msgtype"], "text");
        assert_eq!(v["text"]["content"], reminder().text);
    }

    #[test]
    fn wecom_text_and_markdown() {
        let r = request(ChannelKind::Wecom, "http://h/cgi-bin/webhook/send?key=k", None, 1, &reminder(), 0);
        assert_eq!(r.body, serde_json::json!({"msgtype": "text", "text": {"content": reminder().text}}).to_string());
        let digest = Message { kind: "digest".into(), markdown: "**汇总**".into(), ..reminder() };
        let r = request(ChannelKind::Wecom, "http://h/x", None, 1, &digest, 0);
        assert_eq!(r.body, r#"{"markdown":{"content":"**汇总**"},"msgtype":"markdown"}"#);
    }

    #[test]
    fn webhook_is_signed_over_timestamp_and_body() {
        let r = request(ChannelKind::Webhook, "http://h/hook", Some("s3cret"), 42, &reminder(), 1_700_000_000_123);
        let header = |n: &str| r.headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(header("X-Ducha-Timestamp").as_deref(), Some("1700000000"));
        assert_eq!(header("X-Ducha-Delivery").as_deref(), Some("42"));
        assert_eq!(header("X-Ducha-Signature"), Some(webhook_signature("s3cret", 1_700_000_000, &r.body)));
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"k",b"1.{}",hashlib.sha256).hexdigest())'
        assert_eq!(
            webhook_signature("k", 1, "{}"),
            "sha256=3dd49b2593d0f9a349e9e71c4bde3e2b862c2be4003fe9b4ba81332029310158"
        );
    }

    #[test]
    fn answers_and_urls() {
        assert!(accepted(ChannelKind::Wecom, 200, r#"{"errcode":0,"errmsg":"ok"}"#).is_ok());
        assert_eq!(
            accepted(ChannelKind::Dingtalk, 200, r#"{"errcode":310000,"errmsg":"sign not match"}"#).unwrap_err(),
            "errcode 310000: sign not match"
        );
        assert_eq!(accepted(ChannelKind::Webhook, 500, "").unwrap_err(), "HTTP 500");
        assert!(accepted(ChannelKind::Webhook, 204, "").is_ok());
        assert!(check_url("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc").is_ok());
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("http:///x").is_err());
        assert!(check_url("http://a b").is_err());
        assert_eq!(truncate("整改整改", 7), "整…");
    }
}
