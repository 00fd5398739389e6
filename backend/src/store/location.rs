//! Which store a command works on, and opening it: the one factory for every backend.
//!
//! A store is named by a URL (`--store`, `DUCHA_STORE`):
//! - `sqlite:DIR` — the embedded default, the same as `--data-dir DIR`; `?synchronous=full|normal|off`
//!   sets SQLite's durability (default: `--synchronous`, itself `full` by default);
//! - `postgres://user:password@host:port/database[?…]` (or `postgresql://`) — the shared store;
//! - `kurrentdb://user:password@host:port[,host:port…][?…]`, or the client's other forms (`esdb://`,
//!   `esdb+discover://`, `kurrentdb+discover://`, …) — a KurrentDB (EventStoreDB) cluster.

use super::kurrentdb::{KurrentOptions, KurrentStore};
use super::postgres::{PgOptions, PostgresStore};
use super::sqlite::Synchronous;
use super::{EventStore, StoreError};
use crate::datadir::{DataDir, DataDirError};
use ducha_events::chain::ChainHash;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A data directory holding `ducha.db` (and, for the server, `api.db`, the key and evidence).
    Sqlite { dir: PathBuf, synchronous: Synchronous },
    /// A PostgreSQL database (the URL as given, password included: never print it).
    Postgres { url: String },
    /// A KurrentDB server or cluster (the URL as given, password included: never print it).
    KurrentDb { url: String },
}

/// What the caller will do with the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Append (SQLite: takes the data directory's lock; PostgreSQL: migrates the schema; KurrentDB:
    /// starts a writer).
    Write,
    /// Only read (SQLite: no lock, so an auditor can verify a running system).
    Read,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("存储地址无效：{0} / invalid store URL")]
    Url(String),
    #[error("{0}")]
    DataDir(#[from] DataDirError),
    #[error("{}", describe_store_error(.0))]
    Store(#[from] StoreError),
}

/// The Chinese hint first, then the store's own words.
fn describe_store_error(e: &StoreError) -> String {
    match e {
        StoreError::Unavailable(m) => format!("无法连接事件存储（数据库未启动、地址或口令有误？） / {m}"),
        StoreError::NewerSchema { .. } => format!("事件存储由更新版本的 Ducha 写入，请升级本程序 / {e}"),
        StoreError::Corrupt(m) => format!("这不是 Ducha 的事件存储，或已损坏 / {m}"),
        other => other.to_string(),
    }
}

impl StoreLocation {
    /// Parses a store URL; `synchronous` is the default for SQLite.
    pub fn parse(url: &str, synchronous: Synchronous) -> Result<StoreLocation, OpenError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // Checked now so that a typo is reported before anything is started.
            super::postgres::parse_url(url, PgOptions::default()).map_err(|e| OpenError::Url(e.to_string()))?;
            return Ok(StoreLocation::Postgres { url: url.to_owned() });
        }
        if super::kurrentdb::is_kurrentdb_url(url) {
            super::kurrentdb::parse_url(url).map_err(|e| OpenError::Url(e.to_string()))?;
            return Ok(StoreLocation::KurrentDb { url: url.to_owned() });
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let (dir, query) = rest.split_once('?').unwrap_or((rest, ""));
            if dir.is_empty() {
                return Err(OpenError::Url("sqlite: 后须给出数据目录，例如 sqlite:./data".into()));
            }
            let mut synchronous = synchronous;
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                match pair.split_once('=') {
                    Some(("synchronous", v)) => {
                        synchronous = match v {
                            "full" => Synchronous::Full,
                            "normal" => Synchronous::Normal,
                            "off" => Synchronous::Off,
                            _ => return Err(OpenError::Url(format!("synchronous 应为 full、normal 或 off：{v:?}"))),
                        };
                    }
                    _ => return Err(OpenError::Url(format!("未知的 SQLite 参数 {pair:?}（只有 synchronous）"))),
                }
            }
            return Ok(StoreLocation::Sqlite { dir: PathBuf::from(dir), synchronous });
        }
        Err(OpenError::Url(format!(
            "{:?} 既不是 sqlite:目录、postgres://… 也不是 kurrentdb://… / expected sqlite:DIR, postgres://… or \
             kurrentdb://…",
            redact(url)
        )))
    }

    /// The store named by `--store` if given, else the SQLite data directory.
    pub fn from_flags(store: Option<&str>, data_dir: &Path, synchronous: Synchronous) -> Result<Self, OpenError> {
        match store.filter(|s| !s.trim().is_empty()) {
            Some(url) => StoreLocation::parse(url, synchronous),
            None => Ok(StoreLocation::Sqlite { dir: data_dir.to_owned(), synchronous }),
        }
    }

    /// For messages: the URL without its password.
    pub fn display(&self) -> String {
        match self {
            StoreLocation::Sqlite { dir, .. } => format!("sqlite:{}", dir.display()),
            StoreLocation::Postgres { url } => redact(url),
            StoreLocation::KurrentDb { url } => super::kurrentdb::redact(url),
        }
    }

    /// The SQLite data directory, when this is one.
    pub fn data_dir(&self) -> Option<&Path> {
        match self {
            StoreLocation::Sqlite { dir, .. } => Some(dir),
            StoreLocation::Postgres { .. } | StoreLocation::KurrentDb { .. } => None,
        }
    }

    pub fn is_shared(&self) -> bool {
        matches!(self, StoreLocation::Postgres { .. } | StoreLocation::KurrentDb { .. })
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, tail) = rest.split_once('/').map_or((rest, ""), |(a, t)| (a, t));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    if tail.is_empty() && !rest.contains('/') {
        format!("{scheme}://{authority}")
    } else {
        format!("{scheme}://{authority}/{tail}")
    }
}

/// An open store, with what keeps it valid (the SQLite data directory's lock).
pub struct OpenedStore {
    pub store: Arc<dyn EventStore>,
    pub location: StoreLocation,
    /// The concrete PostgreSQL store (its pool serves the replicas' shared state).
    pub postgres: Option<Arc<PostgresStore>>,
    /// The personal-data keyring, once [`OpenedStore::seal`]ed.
    pub keys: Option<Arc<crate::personal::Keyring>>,
    dir: Option<DataDir>,
}

impl std::fmt::Debug for OpenedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedStore").field("location", &self.location.display()).finish_non_exhaustive()
    }
}

impl OpenedStore {
    /// The data directory (SQLite only): holds `api.db`, the generated key and evidence files.
    pub fn data_dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(DataDir::path)
    }

    /// Seals and opens personal data with `keys` from now on (see [`crate::personal::store`]).
    pub fn seal(&mut self, keys: Arc<crate::personal::Keyring>) {
        self.store = Arc::new(crate::personal::store::SealingStore::new(self.store.clone(), keys.clone()));
        self.keys = Some(keys);
    }

    /// Lets queued appends commit and releases the store (and the directory's lock).
    pub async fn close(self) {
        self.store.close().await;
        drop(self.store);
        drop(self.dir);
    }
}

/// The chain hash asked for by the deployment (`--chain-hash`, `DUCHA_CHAIN_HASH`, the `chain_hash`
/// setting): what a new store is created with and what an existing one must have. One choice per
/// process, made before any store is opened; None lets each store say.
static CHAIN_HASH: std::sync::RwLock<Option<ChainHash>> = std::sync::RwLock::new(None);

/// Sets the deployment's chain hash for every later [`open`].
pub fn configure_chain_hash(alg: Option<ChainHash>) {
    *CHAIN_HASH.write().unwrap_or_else(std::sync::PoisonError::into_inner) = alg;
}

/// The deployment's chain hash, if one was asked for.
pub fn configured_chain_hash() -> Option<ChainHash> {
    *CHAIN_HASH.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Opens the store at `location` for `access`.
pub async fn open(location: &StoreLocation, access: Access) -> Result<OpenedStore, OpenError> {
    let chain_hash = configured_chain_hash();
    match location {
        StoreLocation::Sqlite { dir, synchronous } => {
            let data_dir = match access {
                Access::Write => DataDir::open_for_write(dir)?,
                Access::Read => DataDir::open_for_read(dir)?,
            };
            let store = data_dir.store(*synchronous, chain_hash)?;
            Ok(OpenedStore {
                store: Arc::new(store),
                location: location.clone(),
                postgres: None,
                keys: None,
                dir: Some(data_dir),
            })
        }
        StoreLocation::Postgres { url } => {
            let opts = PgOptions { read_only: access == Access::Read, chain_hash, ..PgOptions::default() };
            let store = Arc::new(PostgresStore::open(url, opts).await?);
            Ok(OpenedStore {
                store: store.clone(),
                location: location.clone(),
                postgres: Some(store),
                keys: None,
                dir: None,
            })
        }
        StoreLocation::KurrentDb { url } => {
            if let Some(configured) = chain_hash.filter(|c| *c != ChainHash::Sha256) {
                return Err(StoreError::ChainHashMismatch { stored: ChainHash::Sha256, configured }.into());
            }
            let opts = KurrentOptions { read_only: access == Access::Read };
            let store = KurrentStore::open(url, opts).await?;
            Ok(OpenedStore {
                store: Arc::new(store),
                location: location.clone(),
                postgres: None,
                keys: None,
                dir: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_backend_or_say_what_is_wrong() {
        let full = Synchronous::Full;
        assert_eq!(
            StoreLocation::parse("sqlite:./data", full).unwrap(),
            StoreLocation::Sqlite { dir: "./data".into(), synchronous: full }
        );
        assert_eq!(
            StoreLocation::parse("sqlite:///var/lib/ducha?synchronous=normal", full).unwrap(),
            StoreLocation::Sqlite { dir: "/var/lib/ducha".into(), synchronous: Synchronous::Normal }
        );
        assert!(matches!(StoreLocation::parse("sqlite:", full), Err(OpenError::Url(_))));
        assert!(matches!(StoreLocation::parse("sqlite:d?sync=off", full), Err(OpenError::Url(_))));
        let pg = StoreLocation::parse("postgres://ducha:pw@db:5432/ducha", full).unwrap();
        assert!(pg.is_shared());
        assert_eq!(pg.display(), "postgres://ducha:***@db:5432/ducha");
        let err = StoreLocation::parse("mysql://root:pw@h/db", full).unwrap_err().to_string();
        assert!(err.contains("sqlite:") && !err.contains("pw"), "{err}");
        assert!(matches!(StoreLocation::parse("postgres://u@h/db?ducha_pool=x", full), Err(OpenError::Url(_))));
        assert_eq!(
            StoreLocation::from_flags(None, Path::new("d"), full).unwrap(),
            StoreLocation::Sqlite { dir: "d".into(), synchronous: full }
        );
    }

    #[test]
    fn kurrentdb_urls_in_the_clients_forms() {
        let full = Synchronous::Full;
        for url in [
            "kurrentdb://admin:changeit@db:2113?tls=false",
            "esdb://admin:changeit@n1:2113,n2:2113,n3:2113?nodePreference=leader",
            "esdb+discover://admin:changeit@cluster.example:2113",
        ] {
            let loc = StoreLocation::parse(url, full).unwrap();
            assert_eq!(loc, StoreLocation::KurrentDb { url: url.into() });
            assert!(loc.is_shared() && loc.data_dir().is_none());
            assert!(loc.display().contains("admin:***@") && !loc.display().contains("changeit"), "{}", loc.display());
        }
        let err = StoreLocation::parse("kurrentdb://admin:changeit@db?ducha_typo=1", full).unwrap_err().to_string();
        assert!(err.contains("ducha_typo") && !err.contains("changeit"), "{err}");
        let err = StoreLocation::parse("mongodb://h", full).unwrap_err().to_string();
        assert!(err.contains("kurrentdb://"), "{err}");
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(redact("postgres://a:b@h:1/d?x=1"), "postgres://a:***@h:1/d?x=1");
        assert_eq!(redact("postgres://a@h/d"), "postgres://a@h/d");
        assert_eq!(redact("postgres://h"), "postgres://h");
    }
}
