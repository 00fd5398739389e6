//! One replica's shared state in `api.db`, a small SQLite file in the data directory: revoked tokens
//! (also kept in memory: the only writer is this process), stored idempotent answers and login
//! failure counters. Deleting the file forgets logouts, cached answers and lockouts (a retried
//! command is still deduplicated by the event store itself).

use super::{
    FailureEntry, FailureKind, FailureRule, Leases, LoginFailures, Replies, Revocations, StateError, StoredReply,
};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

pub const FILE: &str = "api.db";

fn db_err(e: rusqlite::Error) -> StateError {
    StateError::Io(format!("{FILE}: {e}"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `api.db`. Cheap to share behind an `Arc`.
pub struct SqliteState {
    conn: Arc<Mutex<Connection>>,
    /// Revoked `jti` → expiry (Unix seconds): loaded at open, written through.
    revoked: RwLock<HashMap<String, i64>>,
}

impl std::fmt::Debug for SqliteState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteState").finish_non_exhaustive()
    }
}

impl SqliteState {
    pub fn open(dir: &Path) -> Result<SqliteState, StateError> {
        let conn = Connection::open(dir.join(FILE)).map_err(db_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS revoked_tokens (
                 jti TEXT PRIMARY KEY,
                 expires_at INTEGER NOT NULL
             ) STRICT;
             CREATE TABLE IF NOT EXISTS idempotent_replies (
                 tenant TEXT NOT NULL,
                 key TEXT NOT NULL,
                 fingerprint TEXT NOT NULL,
                 status INTEGER NOT NULL,
                 body TEXT NOT NULL,
                 version INTEGER,
                 location TEXT,
                 created_at INTEGER NOT NULL,
                 PRIMARY KEY (tenant, key)
             ) STRICT;
             CREATE TABLE IF NOT EXISTS login_failures (
                 kind TEXT NOT NULL,
                 key TEXT NOT NULL,
                 failures INTEGER NOT NULL,
                 window_start_ms INTEGER NOT NULL,
                 locked_until_ms INTEGER,
                 PRIMARY KEY (kind, key)
             ) STRICT;",
        )
        .map_err(db_err)?;
        let now = chrono::Utc::now().timestamp();
        conn.execute("DELETE FROM revoked_tokens WHERE expires_at < ?1", [now]).map_err(db_err)?;
        let revoked = {
            let mut stmt = conn.prepare("SELECT jti, expires_at FROM revoked_tokens").map_err(db_err)?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(db_err)?;
            rows.collect::<Result<HashMap<String, i64>, _>>().map_err(db_err)?
        };
        Ok(SqliteState { conn: Arc::new(Mutex::new(conn)), revoked: RwLock::new(revoked) })
    }

    /// Runs `f` on the connection on a blocking thread (the commit's fsync stays off the executor).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StateError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&lock(&conn)).map_err(db_err))
            .await
            .map_err(|e| StateError::Io(format!("{FILE}: {e}")))?
    }
}

#[async_trait]
impl Revocations for SqliteState {
    async fn revoke(&self, jti: &str, expires_at: i64) -> Result<(), StateError> {
        let j = jti.to_owned();
        self.blocking(move |c| {
            c.execute(
                "INSERT INTO revoked_tokens (jti, expires_at) VALUES (?1, ?2) ON CONFLICT (jti) DO NOTHING",
                params![j, expires_at],
            )
        })
        .await?;
        let mut revoked = self.revoked.write().unwrap_or_else(|p| p.into_inner());
        let now = chrono::Utc::now().timestamp();
        revoked.retain(|_, exp| *exp >= now);
        revoked.insert(jti.to_owned(), expires_at);
        Ok(())
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool, StateError> {
        Ok(self.revoked.read().unwrap_or_else(|p| p.into_inner()).contains_key(jti))
    }
}

#[async_trait]
impl Replies for SqliteState {
    async fn reply(&self, tenant: &str, key: &str) -> Result<Option<StoredReply>, StateError> {
        let (t, k) = (tenant.to_owned(), key.to_owned());
        self.blocking(move |c| {
            c.query_row(
                "SELECT fingerprint, status, body, version, location FROM idempotent_replies
                 WHERE tenant = ?1 AND key = ?2",
                params![t, k],
                |r| {
                    Ok(StoredReply {
                        fingerprint: r.get(0)?,
                        status: r.get(1)?,
                        body: r.get(2)?,
                        version: r.get::<_, Option<i64>>(3)?.and_then(|v| u64::try_from(v).ok()),
                        location: r.get(4)?,
                    })
                },
            )
            .optional()
        })
        .await
    }

    async fn save_reply(&self, tenant: &str, key: &str, reply: &StoredReply, now: i64) -> Result<(), StateError> {
        let (t, k, r) = (tenant.to_owned(), key.to_owned(), reply.clone());
        self.blocking(move |c| {
            c.execute(
                "INSERT INTO idempotent_replies (tenant, key, fingerprint, status, body, version, location, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (tenant, key) DO NOTHING",
                params![
                    t,
                    k,
                    r.fingerprint,
                    r.status,
                    r.body,
                    r.version.and_then(|v| i64::try_from(v).ok()),
                    r.location,
                    now
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn prune_replies(&self, before: i64) -> Result<u64, StateError> {
        self.blocking(move |c| c.execute("DELETE FROM idempotent_replies WHERE created_at < ?1", [before]))
            .await
            .map(|n| n as u64)
    }
}

fn read_entry(c: &Connection, kind: &str, key: &str) -> rusqlite::Result<Option<FailureEntry>> {
    c.query_row(
        "SELECT failures, window_start_ms, locked_until_ms FROM login_failures WHERE kind = ?1 AND key = ?2",
        params![kind, key],
        |r| Ok(FailureEntry { failures: r.get(0)?, window_start_ms: r.get(1)?, locked_until_ms: r.get(2)? }),
    )
    .optional()
}

#[async_trait]
impl LoginFailures for SqliteState {
    async fn record_failure(
        &self,
        kind: FailureKind,
        key: &str,
        now_ms: i64,
        rule: &FailureRule,
    ) -> Result<FailureEntry, StateError> {
        let (k, rule) = (key.to_owned(), *rule);
        self.blocking(move |c| {
            // One connection behind a mutex: read and write cannot interleave with another failure.
            let next = FailureEntry::bump(read_entry(c, kind.code(), &k)?, now_ms, &rule);
            c.execute(
                "INSERT INTO login_failures (kind, key, failures, window_start_ms, locked_until_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (kind, key) DO UPDATE SET failures = excluded.failures,
                     window_start_ms = excluded.window_start_ms, locked_until_ms = excluded.locked_until_ms",
                params![kind.code(), k, next.failures, next.window_start_ms, next.locked_until_ms],
            )?;
            Ok(next)
        })
        .await
    }

    async fn entry(&self, kind: FailureKind, key: &str) -> Result<Option<FailureEntry>, StateError> {
        let k = key.to_owned();
        self.blocking(move |c| read_entry(c, kind.code(), &k)).await
    }

    async fn clear(&self, kind: FailureKind, key: &str) -> Result<(), StateError> {
        let k = key.to_owned();
        self.blocking(move |c| {
            c.execute("DELETE FROM login_failures WHERE kind = ?1 AND key = ?2", params![kind.code(), k]).map(drop)
        })
        .await
    }

    async fn prune(&self, before_ms: i64) -> Result<u64, StateError> {
        self.blocking(move |c| {
            c.execute(
                "DELETE FROM login_failures WHERE window_start_ms < ?1 \
                 AND (locked_until_ms IS NULL OR locked_until_ms < ?1)",
                [before_ms],
            )
        })
        .await
        .map(|n| n as u64)
    }
}

/// Leases within one process (a SQLite deployment has exactly one replica: the data directory's lock
/// makes sure). Same semantics as the shared ones, so the same suite checks both.
#[derive(Debug, Default)]
pub struct LocalLeases {
    held: Mutex<HashMap<String, (String, Instant)>>,
}

#[async_trait]
impl Leases for LocalLeases {
    async fn try_acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StateError> {
        let mut held = lock(&self.held);
        let now = Instant::now();
        match held.get(name) {
            Some((h, until)) if h != holder && *until > now => Ok(false),
            _ => {
                held.insert(name.to_owned(), (holder.to_owned(), now + ttl));
                Ok(true)
            }
        }
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), StateError> {
        let mut held = lock(&self.held);
        if held.get(name).is_some_and(|(h, _)| h == holder) {
            held.remove(name);
        }
        Ok(())
    }

    async fn holder(&self, name: &str) -> Result<Option<String>, StateError> {
        let held = lock(&self.held);
        Ok(held.get(name).filter(|(_, until)| *until > Instant::now()).map(|(h, _)| h.clone()))
    }
}
