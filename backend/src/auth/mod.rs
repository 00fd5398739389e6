//! Authentication: tokens, passwords, login throttling and revocation. No HTTP here; the endpoints
//! and the `Authenticated` extractor are in `crate::api::auth`.
//!
//! - [`keys`]: the signing key (generated into the data directory, or configured);
//! - [`throttle`]: slowing and locking repeated login failures;
//! - [`AuthService`]: issues and validates access tokens and keeps the revoked `jti`s.
//!
//! A token only says who the user is. What they may do is decided on every request from their
//! *current* grants in the directory, so a revoked role or a disabled account takes effect at once;
//! the `scope` and `roles` claims are informational (for clients and logs).

pub mod keys;
pub mod throttle;

use crate::config::Config;
use crate::server_state::{Revocations, StateError};
use ducha_events::authz::{Grant, Scope};
use ducha_events::projection::UserEntry;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Header, Validation};
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
}

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
    Revoked,
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

pub struct AuthService {
    keys: SigningKeys,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_seconds: u64,
    pub throttle: LoginThrottle,
    /// Revoked `jti`s, shared by every replica.
    revocations: Arc<dyn Revocations>,
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
        // Only the configured algorithm is accepted: no `none`, no HS/RS confusion.
        let mut validation = Validation::new(keys.algorithm);
        validation.algorithms = vec![keys.algorithm];
        validation.set_issuer(&[&config.jwt_issuer]);
        validation.set_audience(&[&config.jwt_audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = config.token_leeway_seconds;
        Ok(AuthService {
            keys,
            validation,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            ttl_seconds: config.token_ttl_seconds,
            throttle: LoginThrottle::new(config.into(), state.logins.clone()),
            revocations: state.revocations.clone(),
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

    /// Issues an access token for a user with their grants as they are now.
    pub fn issue(&self, user: &UserEntry) -> Result<Issued, AuthError> {
        let iat = now();
        let scopes = unique(user.grants.iter().map(|g: &Grant| scope_descriptor(&g.scope)));
        let roles = unique(user.grants.iter().map(|g| g.role.code().to_owned()));
        let claims = Claims {
            sub: user.user_id.to_string(),
            scope: scopes.join(" "),
            roles,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: iat + self.ttl_seconds as i64,
            iat,
            nbf: iat,
            jti: uuid::Uuid::now_v7().to_string(),
        };
        let mut header = Header::new(self.keys.algorithm);
        header.typ = Some("JWT".into());
        let token =
            jsonwebtoken::encode(&header, &claims, &self.keys.encoding).map_err(|e| AuthError::Sign(e.to_string()))?;
        Ok(Issued { token, claims, expires_in: self.ttl_seconds })
    }

    /// Validates signature, algorithm, issuer, audience, times and revocation.
    pub async fn validate(&self, token: &str) -> Result<Claims, TokenFailure> {
        let claims = self.validate_signed(token).map_err(TokenFailure::Rejected)?;
        match self.revocations.is_revoked(&claims.jti).await {
            Ok(true) => Err(TokenFailure::Rejected(TokenRejection::Revoked)),
            Ok(false) => Ok(claims),
            Err(e) => Err(TokenFailure::Unavailable(e)),
        }
    }

    /// Everything but revocation: signature, algorithm, issuer, audience, times.
    pub fn validate_signed(&self, token: &str) -> Result<Claims, TokenRejection> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.keys.decoding, &self.validation).map_err(|e| match e
            .kind()
        {
            ErrorKind::ExpiredSignature => TokenRejection::Expired,
            ErrorKind::ImmatureSignature => TokenRejection::NotYetValid,
            _ => TokenRejection::Invalid,
        })?;
        Ok(data.claims)
    }

    /// Revokes a token until it expires, on every replica and across restarts.
    pub async fn revoke(&self, claims: &Claims) -> Result<(), StateError> {
        self.revocations.revoke(&claims.jti, claims.exp).await
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
        }
    }

    #[test]
    fn issued_tokens_validate_until_revoked_even_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::default();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let revoked = Err(TokenFailure::Rejected(TokenRejection::Revoked));
        let auth = service(dir.path(), &config);
        let issued = auth.issue(&user()).unwrap();
        assert_eq!(issued.claims.scope, "tenant:xxjd");
        assert_eq!(issued.claims.roles, vec!["subdistrict_admin", "inspector"]);
        let claims = rt.block_on(auth.validate(&issued.token)).unwrap();
        assert_eq!(claims, issued.claims);
        rt.block_on(auth.revoke(&claims)).unwrap();
        assert_eq!(rt.block_on(auth.validate(&issued.token)), revoked);
        drop(auth);
        let again = service(dir.path(), &config);
        assert_eq!(rt.block_on(again.validate(&issued.token)), revoked);
        // Another audience or issuer refuses the token.
        let other = service(dir.path(), &Config { jwt_audience: "other".into(), ..Config::default() });
        let fresh = again.issue(&user()).unwrap();
        assert_eq!(other.validate_signed(&fresh.token), Err(TokenRejection::Invalid));
    }

    #[test]
    fn unknown_users_never_match() {
        assert!(!AuthService::password_matches(None, "x"));
    }
}
