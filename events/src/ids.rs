//! Identifiers. Every id is a short ASCII token (`[A-Za-z0-9_-]`, 1..=64 chars) so that it can be
//! embedded in stream names and URLs without escaping. Ids starting with `_` are reserved.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid id {0:?}: use 1 to 64 characters from A-Z a-z 0-9 - _")]
pub struct InvalidId(pub String);

fn valid(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

macro_rules! string_id {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$"))]
        pub struct $name(String);

        impl $name {
            /// Parses an id, rejecting anything outside the id alphabet.
            pub fn parse(s: impl Into<String>) -> Result<Self, InvalidId> {
                let s = s.into();
                if valid(&s) { Ok(Self(s)) } else { Err(InvalidId(s)) }
            }
            pub fn as_str(&self) -> &str { &self.0 }
        }
        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, InvalidId> { Self::parse(s) }
        }
        impl From<$name> for String { fn from(v: $name) -> String { v.0 } }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(&self.0) }
        }
        impl AsRef<str> for $name { fn as_ref(&self) -> &str { &self.0 } }
    )*};
}

string_id! {
    /// A 区.
    DistrictId;
    /// A 街道: the tenant.
    TenantId;
    /// A 社区 within a tenant.
    CommunityId;
    /// A user account.
    UserId;
    /// A 督查.
    InspectionId;
    /// A 存在问题 (and its 整改).
    FindingId;
    /// An achievement (主要工作开展情况) entry.
    AchievementId;
    /// A 检查考核细则.
    ChecklistId;
    /// A 自查报告.
    SelfInspectionId;
}

impl TenantId {
    /// The pseudo-tenant that owns platform-wide streams (districts, platform admins).
    pub fn platform() -> Self {
        Self("_platform".to_owned())
    }
    pub fn is_platform(&self) -> bool {
        self.0 == "_platform"
    }
    /// The security audit log's own chain (安全审计): records, not business data.
    pub fn security() -> Self {
        Self("_security".to_owned())
    }
    pub fn is_security(&self) -> bool {
        self.0 == "_security"
    }
    /// The signed checkpoints' own chain (锚点).
    pub fn anchors() -> Self {
        Self("_anchors".to_owned())
    }
    pub fn is_anchors(&self) -> bool {
        self.0 == "_anchors"
    }
    /// Whether a user may choose this id for a new tenant (not reserved).
    pub fn is_user_choosable(&self) -> bool {
        !self.0.starts_with('_')
    }
}

/// Stream names. A stream name always starts with its tenant, so tenant scope is in every key.
pub mod stream {
    use super::*;

    pub fn platform() -> String {
        "_platform/platform".to_owned()
    }
    pub fn district(d: &DistrictId) -> String {
        format!("_platform/district-{d}")
    }
    /// The security policy (password rules, lockout, sessions, second factor).
    pub fn security_policy() -> String {
        "_platform/security-policy".to_owned()
    }
    /// The security audit log: one stream in a chain of its own.
    pub fn security_audit() -> String {
        "_security/audit-log".to_owned()
    }
    /// Erasures of personal data (`PersonalDataErased`), in the security log's chain.
    pub fn personal_data() -> String {
        "_security/personal-data".to_owned()
    }
    /// The signed checkpoints: one stream in a chain of its own.
    pub fn anchors() -> String {
        "_anchors/anchors".to_owned()
    }
    pub fn tenant(t: &TenantId) -> String {
        format!("{t}/tenant")
    }
    pub fn inspection(t: &TenantId, i: &InspectionId) -> String {
        format!("{t}/inspection-{i}")
    }
    pub fn finding(t: &TenantId, f: &FindingId) -> String {
        format!("{t}/finding-{f}")
    }
    pub fn self_inspection(t: &TenantId, s: &SelfInspectionId) -> String {
        format!("{t}/self-inspection-{s}")
    }
    /// The tenant a stream belongs to (the part before the first `/`).
    pub fn tenant_of(stream: &str) -> Option<&str> {
        stream.split_once('/').map(|(t, _)| t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reject_separators_and_empty() {
        assert!(TenantId::parse("xx-jiedao").is_ok());
        assert!(TenantId::parse("").is_err());
        assert!(TenantId::parse("a/b").is_err());
        assert!(TenantId::parse("社区").is_err());
        assert!(TenantId::parse("x".repeat(65)).is_err());
        let e: Result<CommunityId, _> = serde_json::from_str("\"a b\"");
        assert!(e.is_err());
    }

    #[test]
    fn stream_names_carry_the_tenant() {
        let t = TenantId::parse("t1").unwrap();
        let i = InspectionId::parse("i1").unwrap();
        assert_eq!(stream::inspection(&t, &i), "t1/inspection-i1");
        assert_eq!(stream::tenant_of("t1/inspection-i1"), Some("t1"));
        assert!(!TenantId::platform().is_user_choosable());
    }
}
