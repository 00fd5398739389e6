//! What a `ducha serve` replica keeps besides the log, behind small traits so that every replica of a
//! shared deployment sees the same: server-side sessions ([`Sessions`]: idle and absolute timeouts,
//! logout and an administrator's action end them everywhere), second factors ([`SecondFactors`]:
//! TOTP secrets and recovery codes), the first answers to idempotent requests ([`Replies`]), login
//! failure counters and lockouts ([`LoginFailures`]), evidence files ([`EvidenceStore`]), leases
//! for work that must run once per deployment ([`Leases`]) and the notification centre with its
//! delivery queue ([`notify::Notifications`]).
//!
//! None of it is a domain fact, so none of it is an event: nothing here is chained, exported or
//! replayed.
//!
//! | backend | where | |
//! | --- | --- | --- |
//! | [`sqlite`] | `api.db` in the data directory; evidence files under `evidence_dir` | one replica (the directory's lock) |
//! | [`postgres`] | tables in the store's database; evidence as `bytea` rows, or files in a configured shared directory | any number of replicas |
//!
//! Both pass the same [`conformance`] suite. By default the state lives beside the events; `server_state`
//! gives it a home of its own ([`home`]), which a KurrentDB store (events only) needs.

pub mod conformance;
pub mod evidence_fs;
pub mod home;
pub mod notify;
pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A failure of the shared state's storage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The database cannot be reached now (503).
    #[error("shared server state unavailable: {0}")]
    Unavailable(String),
    #[error("shared server state: {0}")]
    Io(String),
    /// The disk (or volume, or quota) is full: nothing was written (503 `storage_full`).
    #[error("shared server state: storage full: {0}")]
    Full(String),
}

/// A stored first answer to a command sent with an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReply {
    /// Hash of what the request asked (method, path, user, body): a retry must ask the same.
    pub fingerprint: String,
    pub status: u16,
    pub body: String,
    pub version: Option<u64>,
    pub location: Option<String>,
}

/// Why a session is over (or that it is not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionStatus {
    Active,
    /// No such session (a token issued before sessions existed, or pruned).
    Unknown,
    /// Idle longer than the policy allows: ended now.
    Idle,
    /// Ended: `logout`, `disabled`, `password_reset`, `role_revoked`, `idle`, `admin`, ….
    Ended(String),
}

/// Server-side sessions, one per issued access token (`jti`). A request's session is checked (and
/// its idle clock restarted) on every replica; ending one ends it everywhere.
#[async_trait]
pub trait Sessions: Send + Sync {
    /// Starts a session for a new token.
    async fn start(&self, jti: &str, user_id: &str, now_ms: i64, expires_ms: i64) -> Result<(), StateError>;
    /// Checks a session at `now_ms`: ended, idle for more than `idle_ms` (then ended as `idle`), or
    /// active (then its last activity moves to `now_ms`; stored at most every `TOUCH_EVERY_MS`).
    async fn check(&self, jti: &str, now_ms: i64, idle_ms: i64) -> Result<SessionStatus, StateError>;
    /// Ends one session (`reason`: `logout`, …); idempotent.
    async fn end(&self, jti: &str, now_ms: i64, reason: &str) -> Result<(), StateError>;
    /// Ends every active session of a user (an administrator disabled the account, reset its
    /// password, …); returns how many.
    async fn end_user(&self, user_id: &str, now_ms: i64, reason: &str) -> Result<u64, StateError>;
    /// Forgets sessions that expired before `before_ms`.
    async fn prune(&self, before_ms: i64) -> Result<u64, StateError>;
}

/// A session's last activity is stored at most this often (each check would otherwise be a write)…
pub const TOUCH_EVERY_MS: i64 = 30_000;

/// … and at least four times per idle timeout, so that a short timeout still slides.
pub fn touch_every_ms(idle_ms: i64) -> i64 {
    TOUCH_EVERY_MS.min(idle_ms / 4).max(1)
}

/// A user's second factor: the TOTP secret (base32), whether enrolment was confirmed, the last time
/// step used (a code is good once), and hashed recovery codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondFactor {
    pub secret: String,
    pub confirmed: bool,
    pub last_step: i64,
}

#[async_trait]
pub trait SecondFactors: Send + Sync {
    /// Stores a new, unconfirmed secret (enrolment started; replaces an unconfirmed one).
    async fn begin(&self, user_id: &str, secret: &str) -> Result<(), StateError>;
    async fn get(&self, user_id: &str) -> Result<Option<SecondFactor>, StateError>;
    /// Confirms the enrolment and stores the recovery codes' hashes (replacing any old ones).
    async fn confirm(&self, user_id: &str, recovery_hashes: &[String]) -> Result<(), StateError>;
    /// Records that the code of time step `step` was used; false if it (or a later one) already was.
    async fn use_step(&self, user_id: &str, step: i64) -> Result<bool, StateError>;
    /// Uses a recovery code (by its hash): true once, false ever after.
    async fn use_recovery_code(&self, user_id: &str, code_hash: &str) -> Result<bool, StateError>;
    /// How many unused recovery codes are left.
    async fn recovery_codes_left(&self, user_id: &str) -> Result<u64, StateError>;
    /// Removes the second factor (a system administrator's reset).
    async fn remove(&self, user_id: &str) -> Result<(), StateError>;
}

#[async_trait]
pub trait Replies: Send + Sync {
    async fn reply(&self, tenant: &str, key: &str) -> Result<Option<StoredReply>, StateError>;
    /// Keeps the first answer: a second save under the same key changes nothing.
    async fn save_reply(&self, tenant: &str, key: &str, reply: &StoredReply, now: i64) -> Result<(), StateError>;
    /// Forgets answers older than `before` (Unix seconds); returns how many.
    async fn prune_replies(&self, before: i64) -> Result<u64, StateError>;
}

/// Which counter a login failure bumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    Username,
    Address,
}

impl FailureKind {
    pub fn code(self) -> &'static str {
        match self {
            FailureKind::Username => "user",
            FailureKind::Address => "addr",
        }
    }
}

/// One failure counter: failures within the current window, and a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureEntry {
    pub failures: u32,
    /// Unix milliseconds.
    pub window_start_ms: i64,
    /// Unix milliseconds.
    pub locked_until_ms: Option<i64>,
}

/// How a failure is counted: within `window`, `lock_after` failures lock the key for `lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureRule {
    pub window: Duration,
    pub lock_after: u32,
    pub lock: Duration,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl FailureEntry {
    /// The entry after one more failure at `now_ms`: a new window when the old one has passed (and
    /// no lock holds), a lock at `lock_after` failures (the next window starts when it ends).
    pub fn bump(entry: Option<FailureEntry>, now_ms: i64, rule: &FailureRule) -> FailureEntry {
        let fresh = FailureEntry { failures: 0, window_start_ms: now_ms, locked_until_ms: None };
        let mut e = entry.unwrap_or(fresh);
        let window_over = now_ms.saturating_sub(e.window_start_ms) >= millis(rule.window);
        if window_over && e.locked_until_ms.is_none_or(|u| u <= now_ms) {
            e = fresh;
        }
        e.failures += 1;
        if e.failures >= rule.lock_after {
            let until = now_ms.saturating_add(millis(rule.lock));
            e = FailureEntry { failures: 0, window_start_ms: until, locked_until_ms: Some(until) };
        }
        e
    }

    /// How long the lock still holds at `now_ms`.
    pub fn locked_for(&self, now_ms: i64) -> Option<Duration> {
        self.locked_until_ms
            .filter(|u| *u > now_ms)
            .map(|u| Duration::from_millis(u64::try_from(u - now_ms).unwrap_or(0)))
    }
}

#[async_trait]
pub trait LoginFailures: Send + Sync {
    /// Counts one failure atomically (two replicas counting at once both count) and returns the entry.
    async fn record_failure(
        &self,
        kind: FailureKind,
        key: &str,
        now_ms: i64,
        rule: &FailureRule,
    ) -> Result<FailureEntry, StateError>;
    async fn entry(&self, kind: FailureKind, key: &str) -> Result<Option<FailureEntry>, StateError>;
    async fn clear(&self, kind: FailureKind, key: &str) -> Result<(), StateError>;
    /// Forgets counters whose window began before `before_ms` and that hold no lock (a flood of
    /// made-up usernames must not grow the table for ever); returns how many.
    async fn prune(&self, before_ms: i64) -> Result<u64, StateError>;
}

/// What is kept with an evidence file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EvidenceMeta {
    pub filename: String,
    pub content_type: String,
    pub size: u64,
}

/// Content-addressed evidence files, one namespace per tenant (a tenant's files are never another's).
/// Callers hash and check the bytes; the store keeps them under their SHA-256.
#[async_trait]
pub trait EvidenceStore: Send + Sync {
    /// Stores the bytes of `file` as `sha256` of `tenant`. Returns `true` when they were new; a
    /// missing or damaged copy is replaced, a good one is kept (with its first metadata).
    async fn put(&self, tenant: &str, sha256: &str, meta: &EvidenceMeta, file: &Path) -> Result<bool, StateError>;
    /// The stored bytes (not re-hashed here) and metadata, if any.
    async fn get(&self, tenant: &str, sha256: &str) -> Result<Option<(Vec<u8>, Option<EvidenceMeta>)>, StateError>;
    /// Whether a file of this size is stored.
    async fn has(&self, tenant: &str, sha256: &str, size: u64) -> Result<bool, StateError>;
    /// Every stored file as `(tenant, sha256)` (for copying a deployment's evidence elsewhere).
    async fn list(&self) -> Result<Vec<(String, String)>, StateError>;

    /// Why uploads are refused for want of space (the last one failed with [`StateError::Full`]
    /// and none has been stored since); `None` otherwise.
    fn storage_full(&self) -> Option<String> {
        None
    }
}

/// Leases for work that must run on one replica at a time (checkpoints, later reminders).
#[async_trait]
pub trait Leases: Send + Sync {
    /// Takes or renews `name` for `holder` for `ttl`; false when another holder has it.
    async fn try_acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StateError>;
    /// Gives it up (only if `holder` has it).
    async fn release(&self, name: &str, holder: &str) -> Result<(), StateError>;
    /// Who holds it now (an unexpired lease).
    async fn holder(&self, name: &str) -> Result<Option<String>, StateError>;
}

/// A person's data key (个人信息密钥), wrapped under the deployment's master key. `index` is a keyed
/// hash of whose it is (never the name itself); `wrapped` is `<algorithm>:<hex nonce ‖ ciphertext>`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredKey {
    pub key_id: String,
    pub index: String,
    /// The algorithm the key is for: `sm4-gcm` or `aes-256-gcm`.
    pub algorithm: String,
    pub wrapped: String,
}

/// The keys personal data is sealed under, one per person. Destroying a key is the erasure: nothing
/// else is deleted. Shared by every replica (a key made by one is read by all).
#[async_trait]
pub trait PersonKeys: Send + Sync {
    /// The key with this index; when there is none, `new` is stored and returned. Two replicas
    /// racing for the same person both get the one stored first.
    async fn get_or_insert(&self, new: &StoredKey) -> Result<StoredKey, StateError>;
    async fn get(&self, key_id: &str) -> Result<Option<StoredKey>, StateError>;
    async fn find(&self, index: &str) -> Result<Option<StoredKey>, StateError>;
    /// Destroys these keys (overwriting the freed storage where the database can); returns how many
    /// there were. Destroying a key that is gone is not an error.
    async fn destroy(&self, key_ids: &[String]) -> Result<u64, StateError>;
    /// Every key (for backups and copies: they stay wrapped).
    async fn list(&self) -> Result<Vec<StoredKey>, StateError>;
}

/// The shared state of one deployment, as the API uses it.
#[derive(Clone)]
pub struct ServerState {
    pub sessions: Arc<dyn Sessions>,
    pub second_factors: Arc<dyn SecondFactors>,
    pub replies: Arc<dyn Replies>,
    pub logins: Arc<dyn LoginFailures>,
    pub evidence: Arc<dyn EvidenceStore>,
    pub leases: Arc<dyn Leases>,
    pub person_keys: Arc<dyn PersonKeys>,
    /// Notifications, reminder settings, outbound channels and the delivery queue.
    pub notify: Arc<dyn notify::Notifications>,
    /// `sqlite:…` or `postgres`, for `/readyz` and logs.
    pub kind: &'static str,
}

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerState").field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl ServerState {
    /// One replica on a data directory: `api.db` there, evidence files under `evidence_dir`.
    pub fn sqlite(data_dir: &Path, evidence_dir: &Path) -> Result<ServerState, StateError> {
        let db = Arc::new(sqlite::SqliteState::open(data_dir)?);
        Ok(ServerState {
            sessions: db.clone(),
            second_factors: db.clone(),
            replies: db.clone(),
            logins: db.clone(),
            evidence: Arc::new(evidence_fs::FsEvidence::new(evidence_dir)),
            leases: Arc::new(sqlite::LocalLeases::default()),
            person_keys: db.clone(),
            notify: Arc::new(notify::sqlite::SqliteNotify::open(data_dir)?),
            kind: "sqlite",
        })
    }

    /// Any number of replicas on one PostgreSQL database; evidence in the database unless a shared
    /// directory is configured.
    pub fn postgres(pool: deadpool_postgres::Pool, evidence_dir: Option<&Path>) -> ServerState {
        let notify = Arc::new(notify::postgres::PgNotify::new(pool.clone()));
        let db = Arc::new(postgres::PgState::new(pool));
        let evidence: Arc<dyn EvidenceStore> = match evidence_dir {
            Some(dir) => Arc::new(evidence_fs::FsEvidence::new(dir)),
            None => db.clone(),
        };
        ServerState {
            sessions: db.clone(),
            second_factors: db.clone(),
            replies: db.clone(),
            logins: db.clone(),
            evidence,
            leases: db.clone(),
            person_keys: db,
            notify,
            kind: "postgres",
        }
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: FailureRule =
        FailureRule { window: Duration::from_secs(60), lock_after: 3, lock: Duration::from_secs(30) };

    #[test]
    fn failures_count_in_a_window_then_lock() {
        let e1 = FailureEntry::bump(None, 1_000, &RULE);
        assert_eq!((e1.failures, e1.locked_until_ms), (1, None));
        let e2 = FailureEntry::bump(Some(e1), 2_000, &RULE);
        assert_eq!(e2.failures, 2);
        let e3 = FailureEntry::bump(Some(e2), 3_000, &RULE);
        assert_eq!(e3.locked_until_ms, Some(33_000));
        assert_eq!(e3.locked_for(3_000), Some(Duration::from_secs(30)));
        assert_eq!(e3.locked_for(33_000), None);
        // A failure after the window starts a new count.
        let later = FailureEntry::bump(Some(e2), 70_000, &RULE);
        assert_eq!((later.failures, later.window_start_ms), (1, 70_000));
        // During a lock the count does not restart.
        let during = FailureEntry::bump(Some(e3), 10_000, &RULE);
        assert_eq!(during.locked_until_ms, Some(33_000));
    }
}
