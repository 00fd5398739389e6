//! Authentication: tokens, sessions, passwords, the second factor and login throttling. No HTTP
//! here; the endpoints and the `Authenticated` extractor are in `crate::api::auth`.
//!
//! - [`keys`]: the signing key (generated into the data directory, or configured);
//! - [`throttle`]: slowing and locking repeated login failures;
//! - [`second_factor`]: TOTP codes, the enrolment QR code, recovery codes;
//! - [`AuthService`]: issues and validates access tokens, each backed by a server-side session
//!   (idle and absolute timeouts; logout or an administrator's action ends it on every replica).
//!
//! A token only says who the user is. What they may do is decided on every request from their
//! *current* grants in the directory, so a revoked role or a disabled account takes effect at once;
//! the `scope` and `roles` claims are informational (for clients and logs). A token with a
//! `purpose` is a step of the login (change the password, give the second factor, enrol one) and
//! opens nothing else.

pub mod keys;
pub mod second_factor;
pub mod throttle;

use crate::config::Config;
use crate::server_state::{SessionStatus, Sessions, StateError};
use ducha_events::authz::{Grant, Scope};
use ducha_events::projection::UserEntry;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

pub use keys::SigningKeys;
pub use throttle::LoginThrottle;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The scopes of the user's grants, space-separated: `platform`, `district:{d}`,
    /// `tenant:{t}`, `community:{t}/{c}`.
    pub scope: String,
    /// The role codes of the user's grants.
    pub roles: Vec<String>,
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    /// A login step's token (`password_change`, `second_factor`, `second_factor_enrol`): valid only
    /// for that step, for a few minutes, without a session. Absent on an ordinary access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

/// What a login still needs before the user gets an ordinary access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginStep {
    /// Give a TOTP or recovery code.
    SecondFactor,
    /// Change the password (temporary, or expired).
    PasswordChange,
    /// Enrol a second factor (the policy requires one).
    SecondFactorEnrol,
}

impl LoginStep {
    pub fn code(self) -> &'static str {
        match self {
            LoginStep::SecondFactor => "second_factor",
            LoginStep::PasswordChange => "password_change",
            LoginStep::SecondFactorEnrol => "second_factor_enrol",
        }
    }

    pub fn from_code(s: &str) -> Option<LoginStep> {
        [LoginStep::SecondFactor, LoginStep::PasswordChange, LoginStep::SecondFactorEnrol]
            .into_iter()
            .find(|p| p.code() == s)
    }
}

/// How long a login step's token lasts.
pub const STEP_TOKEN_SECONDS: u64 = 300;

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenFailure {
    /// 401 with its own code.
    Rejected(TokenRejection),
    /// Revocations could not be checked (the shared state is unreachable): 503.
    Unavailable(StateError),
}

/// Why a token was refused (each is a 401 with its own code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    Expired,
    NotYetValid,
    /// Logged out.
    Revoked,
    /// Idle longer than the policy allows.
    SessionIdle,
    /// Ended by an administrator's action (disabled, password reset, …).
    SessionEnded,
    /// A login step's token used where an access token is needed (or the other way round).
    WrongPurpose,
    /// Bad signature, wrong algorithm, wrong issuer or audience, malformed, missing claims.
    Invalid,
}

/// A freshly issued token.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub claims: Claims,
    pub expires_in: u64,
}

/// The scope descriptor used in the `scope` claim.
pub fn scope_descriptor(scope: &Scope) -> String {
    match scope {
        Scope::Platform => "platform".to_owned(),
        Scope::District { district_id } => format!("district:{district_id}"),
        Scope::Tenant { tenant_id, .. } => format!("tenant:{tenant_id}"),
        Scope::Community { tenant_id, community_id, .. } => format!("community:{tenant_id}/{community_id}"),
    }
}

fn unique<T: PartialEq>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Key(#[from] keys::KeyError),
    #[error("{0}")]
    State(#[from] StateError),
    #[error("无法签发令牌 / cannot sign a token: {0}")]
    Sign(String),
}

/// A hash that no password matches, verified for unknown usernames so that "no such user" and
/// "wrong password" take the same time.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| crate::password::hash("ducha-timing-equaliser").unwrap_or_default())
}

/// What a token must satisfy: only `algorithm` (no `none`, no HS/RS confusion), this issuer and
/// audience, every time claim present and within `leeway` seconds.
pub fn token_validation(algorithm: Algorithm, issuer: &str, audience: &str, leeway: u64) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.algorithms = vec![algorithm];
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.leeway = leeway;
    validation
}

/// Reads a bearer token (untrusted bytes): signature, algorithm, issuer, audience, times, then the
/// claims. Everything but the session, which [`AuthService::validate`] checks.
pub fn read_token(token: &str, key: &DecodingKey, validation: &Validation) -> Result<Claims, TokenRejection> {
    let data = jsonwebtoken::decode::<Claims>(token, key, validation).map_err(|e| match e.kind() {
        ErrorKind::ExpiredSignature => TokenRejection::Expired,
        ErrorKind::ImmatureSignature => TokenRejection::NotYetValid,
        _ => TokenRejection::Invalid,
    })?;
    Ok(data.claims)
}

pub struct AuthService {
    keys: SigningKeys,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_seconds: u64,
    pub throttle: LoginThrottle,
    /// Sessions, shared by every replica.
    sessions: Arc<dyn Sessions>,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").field("keys", &self.keys).field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl AuthService {
    /// `data_dir`: where an HS256 secret may be generated (SQLite); `None` for a shared deployment,
    /// which must configure its key.
    pub fn new(
        config: &Config,
        data_dir: Option<&Path>,
        state: &crate::server_state::ServerState,
    ) -> Result<AuthService, AuthError> {
        let keys = SigningKeys::load(config, data_dir)?;
        tracing::info!(source = %keys.source, "token signing key loaded");
        let validation =
            token_validation(keys.algorithm, &config.jwt_issuer, &config.jwt_audience, config.token_leeway_seconds);
        Ok(AuthService {
            keys,
            validation,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            ttl_seconds: config.token_ttl_seconds,
            throttle: LoginThrottle::new(config.into(), state.logins.clone()),
            sessions: state.sessions.clone(),
        })
    }

    /// Checks a password against a user's hash (or a dummy one), slowly by design: call it on a
    /// blocking thread.
    pub fn password_matches(user: Option<&UserEntry>, password: &str) -> bool {
        match user.and_then(|u| u.password_hash.as_deref()) {
            Some(hash) => crate::password::verify(password, hash),
            None => {
                crate::password::verify(password, dummy_hash());
                false
            }
        }
    }

    fn sign(&self, user: &UserEntry, ttl: u64, purpose: Option<LoginStep>) -> Result<Issued, AuthError> {
        let iat = now();
        let scopes = unique(user.grants.iter().map(|g: &Grant| scope_descriptor(&g.scope)));
        let roles = unique(user.grants.iter().map(|g| g.role.code().to_owned()));
        let claims = Claims {
            sub: user.user_id.to_string(),
            scope: scopes.join(" "),
            roles,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: iat + i64::try_from(ttl).unwrap_or(i64::MAX / 2),
            iat,
            nbf: iat,
            jti: uuid::Uuid::now_v7().to_string(),
            purpose: purpose.map(|p| p.code().to_owned()),
        };
        let mut header = Header::new(self.keys.algorithm);
        header.typ = Some("JWT".into());
        let token =
            jsonwebtoken::encode(&header, &claims, &self.keys.encoding).map_err(|e| AuthError::Sign(e.to_string()))?;
        Ok(Issued { token, claims, expires_in: ttl })
    }

    /// Issues an access token with its session: for the configured lifetime, at most the policy's
    /// absolute session lifetime (`max_hours`).
    pub async fn issue(&self, user: &UserEntry, max_hours: u32) -> Result<Issued, AuthError> {
        let ttl = self.ttl_seconds.min(u64::from(max_hours) * 3600).max(60);
        let issued = self.sign(user, ttl, None)?;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let expires_ms = issued.claims.exp.saturating_mul(1000);
        self.sessions.start(&issued.claims.jti, user.user_id.as_str(), now_ms, expires_ms).await?;
        Ok(issued)
    }

    /// Issues a login step's token (no session, a few minutes).
    pub fn issue_step(&self, user: &UserEntry, step: LoginStep) -> Result<Issued, AuthError> {
        self.sign(user, STEP_TOKEN_SECONDS, Some(step))
    }

    /// Validates an access token: signature, algorithm, issuer, audience, times, no purpose, and its
    /// session (not ended, not idle for more than `idle_ms`; the idle clock restarts).
    pub async fn validate(&self, token: &str, idle_ms: i64) -> Result<Claims, TokenFailure> {
        let claims = self.validate_signed(token).map_err(TokenFailure::Rejected)?;
        if claims.purpose.is_some() {
            return Err(TokenFailure::Rejected(TokenRejection::WrongPurpose));
        }
        let now_ms = chrono::Utc::now().timestamp_millis();
        match self.sessions.check(&claims.jti, now_ms, idle_ms).await {
            Ok(SessionStatus::Active) => Ok(claims),
            Ok(SessionStatus::Ended(reason)) if reason == "logout" => {
                Err(TokenFailure::Rejected(TokenRejection::Revoked))
            }
            Ok(SessionStatus::Idle) => Err(TokenFailure::Rejected(TokenRejection::SessionIdle)),
            Ok(SessionStatus::Ended(reason)) if reason == "idle" => {
                Err(TokenFailure::Rejected(TokenRejection::SessionIdle))
            }
            Ok(SessionStatus::Ended(_)) => Err(TokenFailure::Rejected(TokenRejection::SessionEnded)),
            Ok(SessionStatus::Unknown) => Err(TokenFailure::Rejected(TokenRejection::Invalid)),
            Err(e) => Err(TokenFailure::Unavailable(e)),
        }
    }

    /// Validates a login step's token for `step`.
    pub fn validate_step(&self, token: &str, step: LoginStep) -> Result<Claims, TokenRejection> {
        let claims = self.validate_signed(token)?;
        match claims.purpose.as_deref().and_then(LoginStep::from_code) {
            Some(p) if p == step => Ok(claims),
            _ => Err(TokenRejection::WrongPurpose),
        }
    }

    /// Everything but the session: signature, algorithm, issuer, audience, times.
    pub fn validate_signed(&self, token: &str) -> Result<Claims, TokenRejection> {
        read_token(token, &self.keys.decoding, &self.validation)
    }

    /// Ends a token's session (logout), on every replica and across restarts.
    pub async fn revoke(&self, claims: &Claims) -> Result<(), StateError> {
        self.sessions.end(&claims.jti, chrono::Utc::now().timestamp_millis(), "logout").await
    }

    /// Ends every session of a user (an administrator disabled the account, reset its password …).
    pub async fn end_sessions(&self, user_id: &str, reason: &str) -> Result<u64, StateError> {
        self.sessions.end_user(user_id, chrono::Utc::now().timestamp_millis(), reason).await
    }

    pub fn ttl_seconds(&self) -> u64 {
        self.ttl_seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ducha_events::authz::Role;
    use ducha_events::ids::{DistrictId, TenantId, UserId};
    use ducha_events::projection::OwnerScope;

    fn service(dir: &Path, config: &Config) -> AuthService {
        let state = crate::server_state::ServerState::sqlite(dir, &dir.join("evidence")).unwrap();
        AuthService::new(config, Some(dir), &state).unwrap()
    }

    fn user() -> UserEntry {
        let d = DistrictId::parse("xxq").unwrap();
        let t = TenantId::parse("xxjd").unwrap();
        UserEntry {
            user_id: UserId::parse("u1").unwrap(),
            username: "u1".into(),
            display_name: "用户".into(),
            password_hash: None,
            disabled: false,
            grants: vec![
                Grant {
                    role: Role::SubdistrictAdmin,
                    scope: Scope::Tenant { district_id: d.clone(), tenant_id: t.clone() },
                },
                Grant { role: Role::Inspector, scope: Scope::Tenant { district_id: d, tenant_id: t.clone() } },
            ],
            owner: OwnerScope::Tenant { tenant_id: t },
            password_temporary: false,
            password_set_at: None,
            password_history: Vec::new(),
            second_factor: false,
            phone: None,
        }
    }

    #[test]
    fn issued_tokens_validate_until_revoked_even_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::default();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let idle = 30 * 60_000;
        let revoked = Err(TokenFailure::Rejected(TokenRejection::Revoked));
        let auth = service(dir.path(), &config);
        let issued = rt.block_on(auth.issue(&user(), 8)).unwrap();
        assert_eq!(issued.claims.scope, "tenant:xxjd");
        assert_eq!(issued.claims.roles, vec!["subdistrict_admin", "inspector"]);
        let claims = rt.block_on(auth.validate(&issued.token, idle)).unwrap();
        assert_eq!(claims, issued.claims);
        rt.block_on(auth.revoke(&claims)).unwrap();
        assert_eq!(rt.block_on(auth.validate(&issued.token, idle)), revoked);
        drop(auth);
        let again = service(dir.path(), &config);
        assert_eq!(rt.block_on(again.validate(&issued.token, idle)), revoked);
        // Another audience or issuer refuses the token.
        let other = service(dir.path(), &Config { jwt_audience: "other".into(), ..Config::default() });
        let fresh = rt.block_on(again.issue(&user(), 8)).unwrap();
        assert_eq!(other.validate_signed(&fresh.token), Err(TokenRejection::Invalid));
        // The policy's absolute lifetime caps the configured one.
        let short = rt.block_on(again.issue(&user(), 1)).unwrap();
        assert_eq!(short.expires_in, 3600);
        // An administrator's action ends every session of the user.
        assert_eq!(rt.block_on(again.end_sessions("u1", "disabled")).unwrap(), 2);
        assert_eq!(
            rt.block_on(again.validate(&fresh.token, idle)),
            Err(TokenFailure::Rejected(TokenRejection::SessionEnded))
        );
    }

    #[test]
    fn a_login_steps_token_opens_only_that_step() {
        let dir = tempfile::tempdir().unwrap();
        let auth = service(dir.path(), &Config::default());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let step = auth.issue_step(&user(), LoginStep::SecondFactor).unwrap();
        assert_eq!(step.expires_in, STEP_TOKEN_SECONDS);
        assert!(auth.validate_step(&step.token, LoginStep::SecondFactor).is_ok());
        assert_eq!(auth.validate_step(&step.token, LoginStep::PasswordChange), Err(TokenRejection::WrongPurpose));
        assert_eq!(
            rt.block_on(auth.validate(&step.token, 60_000)),
            Err(TokenFailure::Rejected(TokenRejection::WrongPurpose))
        );
        let full = rt.block_on(auth.issue(&user(), 8)).unwrap();
        assert_eq!(auth.validate_step(&full.token, LoginStep::SecondFactor), Err(TokenRejection::WrongPurpose));
    }

    #[test]
    fn unknown_users_never_match() {
        assert!(!AuthService::password_matches(None, "x"));
    }
}
