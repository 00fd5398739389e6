//! Server configuration: defaults < TOML file (`--config`) < environment (`DUCHA_<KEY>`) < flags.
//!
//! The keys are flat (one TOML table, no sections) so that every key has the obvious environment
//! name: `token_ttl_seconds` ⇄ `DUCHA_TOKEN_TTL_SECONDS`. `docs/CONFIGURATION.md` lists them all; a
//! test keeps that file and [`KEYS`] in step. Unknown keys in the file are refused (a typo must not
//! silently fall back to a default); unknown `DUCHA_…` variables are ignored.
//!
//! The data directory and SQLite durability are the global `--data-dir` / `--synchronous` flags
//! (`DUCHA_DATA_DIR`, `DUCHA_SYNCHRONOUS`), shared with every other command.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The JWT signing algorithm. Only this one is accepted when validating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with a shared secret (generated into the data directory unless configured).
    #[default]
    HS256,
    /// Ed25519 with a PEM key pair.
    EdDSA,
    /// RSA PKCS#1 v1.5 with SHA-256 and a PEM key pair.
    RS256,
}

/// Every setting of `ducha serve`. Field docs are the reference; `docs/CONFIGURATION.md` mirrors them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (the real address is printed).
    pub listen: String,
    /// HTTP worker threads; 0 = one per CPU core.
    pub workers: usize,
    /// Load the demo data when the store is empty.
    pub demo: bool,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// A tracing filter: `info`, `warn,ducha=debug`, …
    pub log_level: String,
    /// Largest accepted request body (JSON and other payloads), in bytes.
    pub max_body_bytes: usize,
    /// How long a graceful shutdown waits for in-flight requests, in seconds.
    pub shutdown_timeout_seconds: u64,
    /// `/readyz` answers 503 while the read model is more than this many events behind the log.
    pub ready_max_lag: u64,
    /// How long a request with `X-Ducha-Min-Position` waits for this replica to catch up, in ms
    /// (then 503 `not_caught_up`).
    pub min_position_timeout_ms: u64,
    /// How often the deployment's maintenance runs (read-model checkpoint, pruning), in seconds; one
    /// replica at a time holds its lease.
    pub maintenance_interval_seconds: u64,
    /// How much of the live read model stays unpacked in memory, in MiB of its JSON: the sub-districts read least recently are packed (compressed, about a
    /// tenth) beyond it and unpacked when read again. 0 to 1048576.
    pub read_model_budget_mb: u64,
    /// A shorter idle timeout than the security policy's, in seconds (never a longer one).
    pub session_idle_seconds: Option<u64>,
    /// How long the security audit log is kept, in days: at least 180 (等保), configurable only
    /// upward. Ducha itself never deletes a record.
    pub security_audit_retention_days: u64,
    /// Send `Strict-Transport-Security: max-age=…` (set it when Ducha is reached over TLS only).
    pub hsts_max_age_seconds: Option<u64>,
    /// How long the first answer to a request with an `Idempotency-Key` is kept for replay, in hours.
    pub idempotency_retention_hours: u64,
    /// Use the first `X-Forwarded-For` address as the client address (only behind a trusted proxy).
    pub trust_forwarded_for: bool,

    /// `HS256`, `EdDSA` or `RS256`.
    pub jwt_algorithm: JwtAlgorithm,
    /// HS256: file holding the secret (at least 32 bytes). Default: `jwt.key` in the data directory,
    /// generated on first start with owner-only permissions.
    pub jwt_secret_file: Option<PathBuf>,
    /// EdDSA / RS256: the PEM private key (PKCS#8 for Ed25519; PKCS#1 or PKCS#8 for RSA).
    pub jwt_private_key_file: Option<PathBuf>,
    /// EdDSA / RS256: the PEM public key.
    pub jwt_public_key_file: Option<PathBuf>,
    /// The `iss` claim written and required.
    pub jwt_issuer: String,
    /// The `aud` claim written and required.
    pub jwt_audience: String,
    /// Lifetime of an access token, in seconds.
    pub token_ttl_seconds: u64,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub token_leeway_seconds: u64,

    /// Failures (per username) counted within this window, in seconds.
    pub login_window_seconds: u64,
    /// After this many failures for a username, each further failure is answered more slowly.
    pub login_slow_after: u32,
    /// The first slowed answer waits this long; each further failure doubles it (at most 5 s).
    pub login_delay_ms: u64,
    /// After this many failures for a username, it is locked (429 with `Retry-After`).
    pub login_lock_after: u32,
    /// After this many failures from one client address, that address is locked.
    pub login_ip_lock_after: u32,
    /// How long a lock lasts, in seconds.
    pub login_lock_seconds: u64,

    /// Largest accepted evidence file, in bytes (larger uploads get 413).
    pub evidence_max_bytes: u64,
    /// Where evidence files are stored (one folder per tenant). Default: `evidence` in the data
    /// directory.
    pub evidence_dir: Option<PathBuf>,
    /// Where the replicas' shared state (sessions, idempotent replies, lockouts, second factors,
    /// evidence, leases) lives when not beside the events: `postgres://…` or `sqlite:DIR`. Needed
    /// with a KurrentDB store.
    pub server_state: Option<String>,
    /// The chain hash of a new store: `sha256` or `sm3` (国密). Fixed when the store is created; an
    /// existing store with another hash is refused. Unset: SHA-256 for a new store.
    pub chain_hash: Option<ducha_events::chain::ChainHash>,

    /// The anchors' signing key (`ed25519:<hex>` or `sm2:<hex>`, owner-only; see docs/AUDIT.md).
    /// Default with SQLite: `anchor.key` in the data directory, generated on first start. A shared
    /// store anchors only with a configured key (the same on every replica).
    pub anchor_key_file: Option<PathBuf>,
    /// `ed25519` or `sm2`: the algorithm of a generated key; when set, a key of another algorithm
    /// is refused. Unset: Ed25519 for a generated key, whatever a configured key is.
    pub anchor_algorithm: Option<crate::anchors::AnchorAlgorithm>,
    /// How often every tenant's chain head is anchored (signed), in seconds; 0 = only on demand
    /// (`ducha anchor`).
    pub anchor_interval_seconds: u64,
    /// SQLite only: the most pages (4 KiB each) the event database may grow to (`PRAGMA
    /// max_page_count`); writes beyond answer 503 `storage_full`, as on a full disk. A disk budget;
    /// takes effect at start. Unset: no limit but the disk.
    pub sqlite_max_page_count: Option<u64>,
    /// SQLite only: the writer's page cache in MiB; each read connection keeps a quarter of it (at
    /// least 256 KiB), so with the 16 kept readers up to 5 × this in all. The caches fill as pages are
    /// touched and then stay at their size. 1 to 65536; default 64.
    pub sqlite_cache_mb: u64,
    /// The master key of personal data (`ducha-pii-1:<64 hex>`, owner-only; docs/SECURITY.md):
    /// wraps the per-person keys personal data in the events is sealed under. Default with SQLite:
    /// `personal.key` in the data directory, generated on first start. A shared store seals personal
    /// data only with a configured key (the same on every replica).
    pub personal_data_key_file: Option<PathBuf>,
    /// `sm4-gcm` (default) or `aes-256-gcm`: the cipher of new person keys (existing keys keep theirs).
    pub personal_data_cipher: crate::personal::cipher::Cipher,
    /// How often the notifier derives reminders and sends the delivery queue, in seconds (one
    /// replica at a time holds its lease); 1 to 3600.
    pub notify_interval_seconds: u64,
    /// The first retry of a failed delivery after this many seconds, doubling each time (at most an
    /// hour); 1 to 3600.
    pub notify_retry_base_seconds: u64,
    /// Attempts per delivery before it is given up (`failed`); 1 to 20.
    pub notify_max_attempts: u32,
    /// Attempts per channel in any 60 seconds (企业微信 and 钉钉 robots allow 20); 1 to 20.
    pub notify_rate_per_minute: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            workers: 0,
            demo: false,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            max_body_bytes: 1024 * 1024,
            shutdown_timeout_seconds: 30,
            ready_max_lag: 1000,
            min_position_timeout_ms: 5000,
            maintenance_interval_seconds: 60,
            read_model_budget_mb: 512,
            session_idle_seconds: None,
            security_audit_retention_days: 180,
            hsts_max_age_seconds: None,
            idempotency_retention_hours: 24,
            trust_forwarded_for: false,
            jwt_algorithm: JwtAlgorithm::HS256,
            jwt_secret_file: None,
            jwt_private_key_file: None,
            jwt_public_key_file: None,
            jwt_issuer: "ducha".into(),
            jwt_audience: "ducha-api".into(),
            token_ttl_seconds: 8 * 3600,
            token_leeway_seconds: 30,
            login_window_seconds: 900,
            login_slow_after: 3,
            login_delay_ms: 250,
            login_lock_after: 5,
            login_ip_lock_after: 20,
            login_lock_seconds: 300,
            evidence_max_bytes: 20 * 1024 * 1024,
            evidence_dir: None,
            server_state: None,
            chain_hash: None,
            anchor_key_file: None,
            anchor_algorithm: None,
            anchor_interval_seconds: 3600,
            sqlite_max_page_count: None,
            sqlite_cache_mb: crate::store::sqlite::DEFAULT_CACHE_MB,
            personal_data_key_file: None,
            personal_data_cipher: crate::personal::cipher::Cipher::Sm4Gcm,
            notify_interval_seconds: 60,
            notify_retry_base_seconds: 30,
            notify_max_attempts: 6,
            notify_rate_per_minute: 20,
        }
    }
}

/// Every key, as written in the TOML file (the environment name is `DUCHA_` + upper case).
pub const KEYS: &[&str] = &[
    "listen",
    "workers",
    "demo",
    "log_format",
    "log_level",
    "max_body_bytes",
    "shutdown_timeout_seconds",
    "ready_max_lag",
    "min_position_timeout_ms",
    "maintenance_interval_seconds",
    "read_model_budget_mb",
    "session_idle_seconds",
    "security_audit_retention_days",
    "hsts_max_age_seconds",
    "idempotency_retention_hours",
    "trust_forwarded_for",
    "jwt_algorithm",
    "jwt_secret_file",
    "jwt_private_key_file",
    "jwt_public_key_file",
    "jwt_issuer",
    "jwt_audience",
    "token_ttl_seconds",
    "token_leeway_seconds",
    "login_window_seconds",
    "login_slow_after",
    "login_delay_ms",
    "login_lock_after",
    "login_ip_lock_after",
    "login_lock_seconds",
    "evidence_max_bytes",
    "evidence_dir",
    "server_state",
    "chain_hash",
    "anchor_key_file",
    "anchor_algorithm",
    "anchor_interval_seconds",
    "sqlite_max_page_count",
    "sqlite_cache_mb",
    "personal_data_key_file",
    "personal_data_cipher",
    "notify_interval_seconds",
    "notify_retry_base_seconds",
    "notify_max_attempts",
    "notify_rate_per_minute",
];

/// Settings given as command-line flags (highest precedence); `None` = not given.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlagOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demo: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("配置文件不存在：{0} / configuration file not found")]
    FileMissing(PathBuf),
    #[error("配置无效 / invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads the layered configuration. `file`, when given, must exist.
    pub fn load(file: Option<&Path>, flags: &FlagOverrides) -> Result<Config, ConfigError> {
        Self::load_with_env(file, flags, Env::prefixed("DUCHA_").only(KEYS))
    }

    fn load_with_env(file: Option<&Path>, flags: &FlagOverrides, env: Env) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::FileMissing(path.to_owned()));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let config: Config = figment
            .merge(env)
            .merge(Serialized::defaults(flags))
            .extract()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    /// Cross-field checks that serde cannot express.
    fn check(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.max_body_bytes < 1024 {
            return bad("max_body_bytes 至少为 1024 / must be at least 1024");
        }
        if self.evidence_max_bytes == 0 {
            return bad("evidence_max_bytes 必须大于 0 / must be positive");
        }
        if self.token_ttl_seconds == 0 {
            return bad("token_ttl_seconds 必须大于 0 / must be positive");
        }
        if !(10..=60_000).contains(&self.min_position_timeout_ms) {
            return bad("min_position_timeout_ms 须在 10 到 60000 之间 / must be 10 to 60000");
        }
        if !(1..=3_600).contains(&self.notify_interval_seconds) {
            return bad("notify_interval_seconds 须在 1 到 3600 之间 / must be 1 to 3600");
        }
        if !(1..=3_600).contains(&self.notify_retry_base_seconds) {
            return bad("notify_retry_base_seconds 须在 1 到 3600 之间 / must be 1 to 3600");
        }
        if !(1..=20).contains(&self.notify_max_attempts) {
            return bad("notify_max_attempts 须在 1 到 20 之间 / must be 1 to 20");
        }
        if !(1..=20).contains(&self.notify_rate_per_minute) {
            return bad("notify_rate_per_minute 须在 1 到 20 之间 / must be 1 to 20");
        }
        if !(1..=86_400).contains(&self.maintenance_interval_seconds) {
            return bad("maintenance_interval_seconds 须在 1 到 86400 之间 / must be 1 to 86400");
        }
        if self.session_idle_seconds == Some(0) {
            return bad("session_idle_seconds 必须大于 0 / must be positive");
        }
        if self.security_audit_retention_days < 180 {
            return bad(
                "security_audit_retention_days 不能少于 180 天（等保要求），只能调大 / at least 180 days, configurable only upward",
            );
        }
        if self.read_model_budget_mb > 1_048_576 {
            return bad("read_model_budget_mb 须在 0 到 1048576 之间 / must be 0 to 1048576");
        }
        if !(1..=65_536).contains(&self.sqlite_cache_mb) {
            return bad("sqlite_cache_mb 须在 1 到 65536 之间 / must be 1 to 65536");
        }
        if self.sqlite_max_page_count == Some(0) {
            return bad("sqlite_max_page_count 必须大于 0 / must be positive");
        }
        if self.login_lock_after == 0 || self.login_ip_lock_after == 0 {
            return bad("login_lock_after 与 login_ip_lock_after 必须大于 0 / must be positive");
        }
        match self.jwt_algorithm {
            JwtAlgorithm::HS256 => {
                if self.jwt_private_key_file.is_some() || self.jwt_public_key_file.is_some() {
                    return bad(
                        "HS256 使用密钥文件 jwt_secret_file，不使用公私钥 / HS256 takes jwt_secret_file, not a key pair",
                    );
                }
            }
            JwtAlgorithm::EdDSA | JwtAlgorithm::RS256 => {
                if self.jwt_private_key_file.is_none() || self.jwt_public_key_file.is_none() {
                    return bad(
                        "EdDSA/RS256 需要 jwt_private_key_file 和 jwt_public_key_file / need both PEM key files",
                    );
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> Env {
        Env::prefixed("DUCHA_TEST_NOTHING_").only(KEYS)
    }

    #[test]
    fn defaults_file_and_flags_layer_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ducha.toml");
        std::fs::write(&path, "listen = \"0.0.0.0:9000\"\ntoken_ttl_seconds = 60\njwt_algorithm = \"HS256\"\n")
            .unwrap();
        let c = Config::load_with_env(Some(&path), &FlagOverrides::default(), no_env()).unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!(c.token_ttl_seconds, 60);
        assert_eq!(c.max_body_bytes, Config::default().max_body_bytes);
        let flags = FlagOverrides { listen: Some("127.0.0.1:0".into()), demo: Some(true) };
        let c = Config::load_with_env(Some(&path), &flags, no_env()).unwrap();
        assert_eq!(c.listen, "127.0.0.1:0");
        assert!(c.demo);
    }

    #[test]
    fn typos_missing_files_and_incomplete_key_pairs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ducha.toml");
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let err = Config::load_with_env(Some(&path), &FlagOverrides::default(), no_env()).unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        assert!(matches!(
            Config::load_with_env(Some(&dir.path().join("nope.toml")), &FlagOverrides::default(), no_env()),
            Err(ConfigError::FileMissing(_))
        ));
        std::fs::write(&path, "jwt_algorithm = \"RS256\"\n").unwrap();
        assert!(Config::load_with_env(Some(&path), &FlagOverrides::default(), no_env()).is_err());
        std::fs::write(&path, "jwt_algorithm = \"none\"\n").unwrap();
        assert!(Config::load_with_env(Some(&path), &FlagOverrides::default(), no_env()).is_err());
    }

    #[test]
    fn the_sqlite_cache_is_refused_outside_its_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ducha.toml");
        for (value, ok) in [("0", false), ("1", true), ("65536", true), ("65537", false)] {
            std::fs::write(&path, format!("sqlite_cache_mb = {value}\n")).unwrap();
            let c = Config::load_with_env(Some(&path), &FlagOverrides::default(), no_env());
            assert_eq!(c.is_ok(), ok, "sqlite_cache_mb = {value}");
            if let Err(e) = c {
                assert!(e.to_string().contains("sqlite_cache_mb"), "{e}");
            }
        }
    }

    #[test]
    fn every_key_is_documented_and_exists() {
        let json = serde_json::to_value(Config::default()).unwrap();
        let fields: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(fields.len(), KEYS.len());
        let doc = include_str!("../../docs/CONFIGURATION.md");
        for key in KEYS {
            assert!(fields.iter().any(|f| f == key), "{key} is not a field");
            assert!(doc.contains(&format!("`{key}`")), "{key} is not in docs/CONFIGURATION.md");
            let env = format!("`DUCHA_{}`", key.to_uppercase());
            assert!(doc.contains(&env), "{env} is not in docs/CONFIGURATION.md");
        }
    }
}
