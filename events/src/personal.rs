//! Personal data (个人信息) in events: which fields hold it, whose it is, and how a sealed value is
//! written in a payload. Pure: the cipher and the keys live in the backend (`backend/src/personal`).
//!
//! A personal field's string is replaced in the stored payload by `{"$pii": [segment, …]}`, where a
//! segment is either a plain string (a separator such as `、`, kept as written) or a sealed value
//! `{"k": key id, "a": algorithm, "n": nonce, "c": ciphertext}` encrypted under the key of one
//! person. The chain covers these bytes, so destroying a person's key (erasure) leaves every chain
//! intact while the name can no longer be read. A payload is opened back into its plain shape before
//! it is decoded; whoever has no key (an auditor reading the raw log, or anyone after an erasure)
//! sees [`SEALED`] or [`ERASED`] in its place.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The key of a sealed field's object in a payload.
pub const MARK: &str = "$pii";
/// What a person's data reads as once their key is destroyed.
pub const ERASED: &str = "已删除的个人信息";
/// What a sealed value reads as where no key is at hand (the raw log, the audit timeline).
pub const SEALED: &str = "个人信息（已加密）";

/// One encrypted piece of personal data, as stored (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// The person's key id.
    pub k: String,
    /// `sm4-gcm` or `aes-256-gcm`.
    pub a: String,
    /// The 12-byte nonce, hex.
    pub n: String,
    /// The ciphertext with its 16-byte tag, hex.
    pub c: String,
}

/// Whose data a value is: an account, or a person named in free text within one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    User(String),
    Name { tenant: String, name: String },
}

impl Subject {
    /// The text the key index is computed over (never stored as such).
    pub fn index_text(&self) -> String {
        match self {
            Subject::User(id) => format!("user\u{0}{id}"),
            Subject::Name { tenant, name } => format!("name\u{0}{tenant}\u{0}{}", name.trim()),
        }
    }
}

/// Whose data a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOwner {
    /// The account named by another field of the same payload (when that field is empty or null
    /// the value is left in clear: e.g. the address of a failed login for an unknown name).
    User(&'static str),
    /// Names in free text, separated by `、，,；;/` or spaces: each name is one person.
    Names,
}

/// A top-level string field of an event type that holds personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersonalField {
    pub event_type: &'static str,
    pub field: &'static str,
    pub owner: FieldOwner,
    /// Why Ducha keeps it (the inventory in docs/SECURITY.md repeats these).
    pub purpose: &'static str,
}

/// Every personal field in the events (docs/SECURITY.md's inventory is checked against this).
pub const FIELDS: &[PersonalField] = &[
    PersonalField {
        event_type: "UserCreated",
        field: "display_name",
        owner: FieldOwner::User("user_id"),
        purpose: "账号的姓名：界面、督查组名单和报告中显示",
    },
    PersonalField {
        event_type: "FieldworkRecorded",
        field: "participants",
        owner: FieldOwner::Names,
        purpose: "座谈、访谈的参加人员：督查工作记录",
    },
    PersonalField {
        event_type: "RectificationAssigned",
        field: "leader",
        owner: FieldOwner::Names,
        purpose: "整改责任领导：整改台账",
    },
    PersonalField {
        event_type: "RectificationAssigned",
        field: "person",
        owner: FieldOwner::Names,
        purpose: "整改具体责任人：整改台账",
    },
    PersonalField {
        event_type: "RectificationImported",
        field: "leader",
        owner: FieldOwner::Names,
        purpose: "导入的整改责任领导：整改台账",
    },
    PersonalField {
        event_type: "RectificationImported",
        field: "person",
        owner: FieldOwner::Names,
        purpose: "导入的整改具体责任人：整改台账",
    },
    PersonalField {
        event_type: "UserContactSet",
        field: "phone",
        owner: FieldOwner::User("user_id"),
        purpose: "账号的手机号：提醒与联系（只向需要的角色完整显示）",
    },
    PersonalField {
        event_type: "SecurityAuditRecorded",
        field: "client_addr",
        owner: FieldOwner::User("user_id"),
        purpose: "安全审计记录的客户端地址（等保 安全审计）",
    },
    PersonalField {
        event_type: "SecurityAuditRecorded",
        field: "user_agent",
        owner: FieldOwner::User("user_id"),
        purpose: "安全审计记录的浏览器标识（等保 安全审计）",
    },
];

/// The personal fields of one event type.
pub fn fields(event_type: &str) -> impl Iterator<Item = &'static PersonalField> + '_ {
    FIELDS.iter().filter(move |f| f.event_type == event_type)
}

fn is_separator(c: char) -> bool {
    matches!(c, '、' | '，' | ',' | '；' | ';' | '/' | '／' | ' ' | '\u{3000}' | '\n' | '\t' | '\r')
}

/// Cuts free text into names and the separators between them: `("张三", true), ("、", false), …`.
/// Concatenating the pieces gives the text back.
pub fn split_names(text: &str) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::new();
    for c in text.chars() {
        let name = !is_separator(c);
        match out.last_mut() {
            Some((piece, is_name)) if *is_name == name => piece.push(c),
            _ => out.push((c.to_string(), name)),
        }
    }
    out
}

/// Seals the personal fields of a payload. `seal` encrypts one person's value. `Ok(None)`: the
/// payload has nothing to seal (keep its bytes as they are).
pub fn seal<E>(
    event_type: &str,
    tenant: &str,
    payload: &str,
    seal: &mut dyn FnMut(&Subject, &str) -> Result<Sealed, E>,
) -> Result<Option<String>, E> {
    let mut targets = fields(event_type).peekable();
    if targets.peek().is_none() {
        return Ok(None);
    }
    let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(payload) else { return Ok(None) };
    let mut changed = false;
    for f in targets {
        let Some(Value::String(text)) = obj.get(f.field) else { continue };
        if text.trim().is_empty() {
            continue;
        }
        let segments: Vec<Value> = match f.owner {
            FieldOwner::User(id_field) => match obj.get(id_field).and_then(Value::as_str) {
                Some(id) if !id.is_empty() => {
                    vec![to_value(seal(&Subject::User(id.to_owned()), text)?)]
                }
                _ => continue,
            },
            FieldOwner::Names => {
                let mut segs = Vec::new();
                for (piece, is_name) in split_names(text) {
                    if is_name {
                        let subject = Subject::Name { tenant: tenant.to_owned(), name: piece.clone() };
                        segs.push(to_value(seal(&subject, &piece)?));
                    } else {
                        segs.push(Value::String(piece));
                    }
                }
                segs
            }
        };
        let mut sealed = Map::new();
        sealed.insert(MARK.to_owned(), Value::Array(segments));
        obj.insert(f.field.to_owned(), Value::Object(sealed));
        changed = true;
    }
    Ok(changed.then(|| Value::Object(obj).to_string()))
}

fn to_value(s: Sealed) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

/// Whether a payload holds sealed values at all (a cheap test before parsing).
pub fn has_sealed(payload: &str) -> bool {
    payload.contains("\"$pii\"")
}

/// Opens every sealed field of a payload into a plain string: each sealed segment becomes what
/// `open` gives for it (the plaintext, or [`ERASED`] / [`SEALED`] where there is no key). `None`:
/// nothing in the payload was sealed.
pub fn open(payload: &str, open: &mut dyn FnMut(&Sealed) -> String) -> Option<String> {
    if !has_sealed(payload) {
        return None;
    }
    let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(payload) else { return None };
    let mut changed = false;
    for value in obj.values_mut() {
        let Some(segments) = sealed_segments(value) else { continue };
        let mut text = String::new();
        for seg in segments {
            match seg {
                Value::String(s) => text.push_str(s),
                other => match serde_json::from_value::<Sealed>(other.clone()) {
                    Ok(s) => text.push_str(&open(&s)),
                    Err(_) => text.push_str(SEALED),
                },
            }
        }
        *value = Value::String(text);
        changed = true;
    }
    changed.then(|| Value::Object(obj).to_string())
}

fn sealed_segments(value: &Value) -> Option<&Vec<Value>> {
    match value {
        Value::Object(o) if o.len() == 1 => o.get(MARK).and_then(Value::as_array),
        _ => None,
    }
}

/// The key ids a payload's sealed values use.
pub fn key_ids(payload: &str) -> Vec<String> {
    if !has_sealed(payload) {
        return Vec::new();
    }
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(payload) else { return Vec::new() };
    let mut out: Vec<String> = obj
        .values()
        .filter_map(sealed_segments)
        .flatten()
        .filter_map(|seg| seg.get("k").and_then(Value::as_str).map(str::to_owned))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Masks a phone number for whoever may not see it whole: `138****1234` (the first three and the
/// last four digits of a mobile number; other lengths keep their first and last quarter).
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if phone == ERASED || phone == SEALED {
        return phone.to_owned();
    }
    let n = chars.len();
    let (head, tail) = if n == 11 { (3, 4) } else { (n / 4, n / 4) };
    if n < 4 {
        return "*".repeat(n);
    }
    let mut out: String = chars[..head].iter().collect();
    out.push_str(&"*".repeat(n - head - tail));
    out.extend(&chars[n - tail..]);
    out
}

/// Checks a phone number as entered: 5 to 20 characters of digits, `+`, `-` and spaces, with at
/// least 5 digits. Returns it trimmed.
pub fn valid_phone(phone: &str) -> Option<String> {
    let p = phone.trim();
    let ok_chars = p.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' '));
    let digits = p.chars().filter(char::is_ascii_digit).count();
    (ok_chars && (5..=20).contains(&p.chars().count()) && digits >= 5).then(|| p.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_seal(subject: &Subject, text: &str) -> Result<Sealed, ()> {
        // A made-up key id that does not spell the name (real ones are random).
        let k: String = subject.index_text().bytes().map(|b| format!("{b:02x}")).collect();
        Ok(Sealed { k, a: "test".into(), n: String::new(), c: text.chars().rev().collect() })
    }

    #[test]
    fn names_are_sealed_one_person_each_and_open_back() {
        let payload = r#"{"inspection_id":"i1","title":"t","measure":"m","responsible_unit":"东风社区","leader":"街道党工委副书记","person":"张三、李四","deadline":"2024-06-30"}"#;
        let sealed = seal("RectificationAssigned", "xxjd", payload, &mut fake_seal).unwrap().unwrap();
        assert!(!sealed.contains("张三") && !sealed.contains("李四"), "{sealed}");
        assert!(sealed.contains("东风社区"), "non-personal fields stay: {sealed}");
        let kid = |name: &str| fake_seal(&Subject::Name { tenant: "xxjd".into(), name: name.into() }, "").unwrap().k;
        let mut expected = vec![kid("张三"), kid("李四"), kid("街道党工委副书记")];
        expected.sort();
        assert_eq!(key_ids(&sealed), expected);
        let opened = open(&sealed, &mut |s| s.c.chars().rev().collect()).unwrap();
        let v: Value = serde_json::from_str(&opened).unwrap();
        assert_eq!(v["person"], "张三、李四");
        assert_eq!(v["leader"], "街道党工委副书记");
        // One person's key gone: only their name is erased.
        let erased =
            open(&sealed, &mut |s| if s.k == kid("张三") { ERASED.into() } else { s.c.chars().rev().collect() });
        let v: Value = serde_json::from_str(&erased.unwrap()).unwrap();
        assert_eq!(v["person"], format!("{ERASED}、李四"));
    }

    #[test]
    fn account_fields_follow_the_account_and_empty_values_stay() {
        let p = r#"{"user_id":"u1","username":"zhang","display_name":"张三"}"#;
        let s = seal("UserCreated", "_platform", p, &mut fake_seal).unwrap().unwrap();
        assert_eq!(key_ids(&s), vec![fake_seal(&Subject::User("u1".into()), "").unwrap().k]);
        assert!(s.contains("\"username\":\"zhang\""), "the login name stays in clear: {s}");
        // No owner → left in clear; nothing personal → unchanged.
        let anon = r#"{"action":"login_failed","user_id":null,"client_addr":"10.0.0.1","user_agent":"x"}"#;
        assert_eq!(seal("SecurityAuditRecorded", "_security", anon, &mut fake_seal).unwrap(), None);
        assert_eq!(seal("CommunityAdded", "t", r#"{"name":"东风社区"}"#, &mut fake_seal).unwrap(), None);
        let blank = r#"{"community_id":"c1","method":"m","held_on":"2024-03-05","participants":"  ","notes":""}"#;
        assert_eq!(seal("FieldworkRecorded", "t", blank, &mut fake_seal).unwrap(), None);
        assert_eq!(open(p, &mut |_| String::new()), None);
    }

    #[test]
    fn splitting_keeps_every_character() {
        for text in ["张三、李四，王五", " 张三 ", "张三;;李四", "", "街道党工委副书记"] {
            let pieces = split_names(text);
            assert_eq!(pieces.iter().map(|(p, _)| p.as_str()).collect::<String>(), text);
        }
        assert_eq!(split_names("张三、李四").iter().filter(|(_, n)| *n).count(), 2);
    }

    #[test]
    fn phones_are_masked_and_checked() {
        assert_eq!(mask_phone("13812341234"), "138****1234");
        assert_eq!(mask_phone("010-12345678"), "010******678");
        assert_eq!(mask_phone(ERASED), ERASED);
        assert_eq!(valid_phone(" 13812341234 ").as_deref(), Some("13812341234"));
        assert_eq!(valid_phone("abc"), None);
        assert_eq!(valid_phone("123"), None);
    }
}
