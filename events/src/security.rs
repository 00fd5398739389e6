//! The security policy of 等保 2.0 level 3 (身份鉴别): password rules, lockout, sessions and the
//! second factor — set by the security administrator within safe bounds, recorded as events on
//! `_platform/security-policy`, and the pure password checks the API applies.
//!
//! A demo deployment's policy (`demo: true`, set only by the demo loader's system actor) relaxes
//! what would stop a visitor from trying the demo logins: no forced change, no expiry, a second
//! factor only once one is enrolled. A real deployment's policy applies in full.

use crate::DomainError;
use crate::aggregate::Command;
use crate::authz::{self, Action, Actor, Target};
use crate::event::{Event, SecurityPolicySet};
use serde::{Deserialize, Serialize};

/// Who must use a second factor (TOTP).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactorRule {
    /// The three administrators and the platform administrator (the default and the floor).
    #[default]
    Administrators,
    /// Every account.
    Everyone,
}

/// The security policy. Every number has bounds ([`SecurityPolicy::check`]); the defaults are the
/// ones 等保 level 3 assessors expect.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityPolicy {
    /// Shortest password, in characters (8–64).
    pub min_length: u32,
    /// Character classes a password needs out of upper case, lower case, digits, symbols (3–4).
    pub min_classes: u32,
    /// A new password may not be one of this many previous ones (5–24).
    pub history: u32,
    /// A password expires after this many days (30–180).
    pub max_age_days: u32,
    /// Consecutive failures that lock an account (3–10).
    pub lockout_after: u32,
    /// How long a lockout lasts, in minutes (10–1440), unless a system administrator unlocks it.
    pub lockout_minutes: u32,
    /// A session ends after this many idle minutes (5–30).
    pub idle_timeout_minutes: u32,
    /// A session ends this many hours after login whatever happens (1–24).
    pub session_max_hours: u32,
    /// Who must log in with a second factor.
    pub second_factor: SecondFactorRule,
    /// A demo deployment's policy (see the module docs). Never set through the API.
    #[serde(default)]
    pub demo: bool,
}

impl Default for SecurityPolicy {
    fn default() -> Self {
        SecurityPolicy {
            min_length: 8,
            min_classes: 3,
            history: 5,
            max_age_days: 90,
            lockout_after: 5,
            lockout_minutes: 15,
            idle_timeout_minutes: 30,
            session_max_hours: 8,
            second_factor: SecondFactorRule::Administrators,
            demo: false,
        }
    }
}

/// Longest password, in bytes.
pub const PASSWORD_MAX_BYTES: usize = 1024;

impl SecurityPolicy {
    /// The demo's policy: the defaults, relaxed as the module docs say.
    pub fn demo() -> Self {
        SecurityPolicy { demo: true, ..SecurityPolicy::default() }
    }

    /// Refuses values outside the safe bounds, naming the field.
    pub fn check(&self) -> Result<(), DomainError> {
        let bound = |field: &str, v: u32, lo: u32, hi: u32| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(DomainError::invalid(field, format!("须在 {lo} 到 {hi} 之间（安全下限），不能为 {v}")))
            }
        };
        bound("min_length", self.min_length, 8, 64)?;
        bound("min_classes", self.min_classes, 3, 4)?;
        bound("history", self.history, 5, 24)?;
        bound("max_age_days", self.max_age_days, 30, 180)?;
        bound("lockout_after", self.lockout_after, 3, 10)?;
        bound("lockout_minutes", self.lockout_minutes, 10, 1440)?;
        bound("idle_timeout_minutes", self.idle_timeout_minutes, 5, 30)?;
        bound("session_max_hours", self.session_max_hours, 1, 24)?;
        Ok(())
    }

    /// Whether an account holding these roles must use a second factor.
    pub fn second_factor_required(&self, roles: &[authz::Role]) -> bool {
        match self.second_factor {
            SecondFactorRule::Everyone => true,
            SecondFactorRule::Administrators => {
                roles.iter().any(|r| r.is_security_admin_role() || *r == authz::Role::PlatformAdmin)
            }
        }
    }
}

/// The character classes of a password: upper case, lower case, digits, symbols (anything else,
/// Chinese characters included).
pub fn character_classes(password: &str) -> u32 {
    let (mut upper, mut lower, mut digit, mut other) = (false, false, false, false);
    for c in password.chars() {
        if c.is_ascii_uppercase() {
            upper = true;
        } else if c.is_ascii_lowercase() {
            lower = true;
        } else if c.is_ascii_digit() {
            digit = true;
        } else {
            other = true;
        }
    }
    [upper, lower, digit, other].into_iter().filter(|b| *b).count() as u32
}

/// The checks of a new password that need no hashes: length, classes, not containing the username.
/// (Reuse of one of the last passwords is checked against their hashes by the caller.)
pub fn check_password(policy: &SecurityPolicy, username: &str, password: &str) -> Result<(), DomainError> {
    let weak = |rule: String| Err(DomainError::WeakPassword { rule });
    if password.chars().count() < policy.min_length as usize {
        return weak(format!("至少需要 {} 个字符", policy.min_length));
    }
    if password.len() > PASSWORD_MAX_BYTES {
        return weak(format!("不能超过 {PASSWORD_MAX_BYTES} 字节"));
    }
    if password.chars().any(char::is_control) {
        return weak("不能包含控制字符".to_owned());
    }
    if character_classes(password) < policy.min_classes {
        return weak(format!("须包含大写字母、小写字母、数字、符号中的至少 {} 类", policy.min_classes));
    }
    let name = username.trim().to_lowercase();
    if name.chars().count() >= 3 && password.to_lowercase().contains(&name) {
        return weak("不能包含用户名".to_owned());
    }
    Ok(())
}

/// State of `_platform/security-policy`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SecurityPolicyState {
    pub policy: Option<SecurityPolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityPolicyCommand {
    Set(SecurityPolicy),
}

pub fn decide(state: &SecurityPolicyState, cmd: &Command<SecurityPolicyCommand>) -> Result<Vec<Event>, DomainError> {
    authz::authorize(&cmd.actor, Action::ManageSecurityPolicy, &Target::platform())?;
    match &cmd.body {
        SecurityPolicyCommand::Set(policy) => {
            if policy.demo && cmd.actor != Actor::system() {
                return Err(DomainError::invalid("demo", "演示策略只能由演示数据设置"));
            }
            if !policy.demo {
                policy.check()?;
            }
            if state.policy.as_ref() == Some(policy) {
                return Ok(vec![]);
            }
            Ok(vec![SecurityPolicySet { policy: policy.clone() }.into()])
        }
    }
}

pub fn evolve(mut state: SecurityPolicyState, e: &Event) -> SecurityPolicyState {
    if let Event::SecurityPolicySet(e) = e {
        state.policy = Some(e.policy.clone());
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::{Role, Scope};
    use crate::users::fixtures::*;

    fn set(actor: &Actor, policy: SecurityPolicy) -> Result<Vec<Event>, DomainError> {
        decide(&SecurityPolicyState::default(), &cmd(actor, SecurityPolicyCommand::Set(policy)))
    }

    #[test]
    fn the_defaults_are_level_three_and_within_bounds() {
        let p = SecurityPolicy::default();
        assert_eq!((p.min_length, p.min_classes, p.history, p.max_age_days), (8, 3, 5, 90));
        assert_eq!((p.lockout_after, p.lockout_minutes, p.idle_timeout_minutes), (5, 15, 30));
        assert!(p.check().is_ok());
        assert!(p.second_factor_required(&[Role::SecurityAdmin]));
        assert!(!p.second_factor_required(&[Role::Inspector]));
        let all = SecurityPolicy { second_factor: SecondFactorRule::Everyone, ..p };
        assert!(all.second_factor_required(&[Role::Inspector]));
    }

    #[test]
    fn only_the_security_admin_sets_the_policy_within_bounds() {
        let p = SecurityPolicy { max_age_days: 60, ..SecurityPolicy::default() };
        assert_eq!(set(&security_admin(), p.clone()).unwrap().len(), 1);
        for other in [system_admin(), platform_admin(), actor("aud", &[(Role::AuditAdmin, Scope::Platform)])] {
            assert_eq!(set(&other, p.clone()).unwrap_err().code(), "forbidden");
        }
        for weak in [
            SecurityPolicy { min_length: 6, ..SecurityPolicy::default() },
            SecurityPolicy { min_classes: 2, ..SecurityPolicy::default() },
            SecurityPolicy { history: 0, ..SecurityPolicy::default() },
            SecurityPolicy { max_age_days: 365, ..SecurityPolicy::default() },
            SecurityPolicy { lockout_after: 50, ..SecurityPolicy::default() },
            SecurityPolicy { idle_timeout_minutes: 120, ..SecurityPolicy::default() },
        ] {
            let err = set(&security_admin(), weak).unwrap_err();
            assert_eq!(err.code(), "invalid");
            assert!(err.message_zh().contains("安全下限"), "{}", err.message_zh());
        }
        // The demo's relaxations are not for the API.
        assert_eq!(set(&security_admin(), SecurityPolicy::demo()).unwrap_err().field(), Some("demo"));
        assert!(set(&Actor::system(), SecurityPolicy::demo()).is_ok());
        // The same policy again changes nothing.
        let state = evolve(SecurityPolicyState::default(), &set(&security_admin(), p.clone()).unwrap()[0]);
        assert_eq!(decide(&state, &cmd(&security_admin(), SecurityPolicyCommand::Set(p))), Ok(vec![]));
    }

    #[test]
    fn each_password_rule_names_itself() {
        let p = SecurityPolicy::default();
        let rule = |pw: &str, user: &str| match check_password(&p, user, pw) {
            Err(DomainError::WeakPassword { rule }) => rule,
            other => panic!("{pw:?}: {other:?}"),
        };
        assert!(rule("Ab1!", "zhang").contains("8 个字符"));
        assert!(rule("abcdefgh12", "zhang").contains("至少 3 类"));
        assert!(rule("Zhangsan-2024", "zhangsan").contains("用户名"));
        assert!(rule(&format!("Aa1!{}", "x".repeat(1100)), "zhang").contains("字节"));
        assert!(check_password(&p, "zhangsan", "Duch@-2024x").is_ok());
        // Chinese characters count as symbols: 督查 + upper + digits.
        assert!(check_password(&p, "li", "督查Xx2024").is_ok());
        assert_eq!(character_classes("abc"), 1);
        assert_eq!(character_classes("aB3$"), 4);
        let four = SecurityPolicy { min_classes: 4, ..p };
        assert!(check_password(&four, "u", "Abcdefg1").is_err());
    }
}
