//! One replica's shared state in `api.db`, a small SQLite file in the data directory: sessions (also
//! kept in memory: the only writer is this process), second factors, stored idempotent answers and
//! login failure counters. Deleting the file ends every session and forgets second factors, cached
//! answers and lockouts (a retried command is still deduplicated by the event store itself).

use super::{
    FailureEntry, FailureKind, FailureRule, Leases, LoginFailures, PersonKeys, Replies, SecondFactor, SecondFactors,
    SessionStatus, Sessions, StateError, StoredKey, StoredReply, touch_every_ms,
};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

pub const FILE: &str = "api.db";

fn db_err(e: rusqlite::Error) -> StateError {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
        return StateError::Full(format!("{FILE}: {e}"));
    }
    StateError::Io(format!("{FILE}: {e}"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A session as kept in memory.
#[derive(Debug, Clone)]
struct Session {
    user_id: String,
    expires_ms: i64,
    last_seen_ms: i64,
    /// When `last_seen_ms` was last written to the file.
    stored_ms: i64,
    ended: Option<String>,
}

/// `api.db`. Cheap to share behind an `Arc`.
pub struct SqliteState {
    conn: Arc<Mutex<Connection>>,
    /// Every session that has not expired: loaded at open, written through.
    sessions: RwLock<HashMap<String, Session>>,
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
             CREATE TABLE IF NOT EXISTS sessions (
                 jti TEXT PRIMARY KEY,
                 user_id TEXT NOT NULL,
                 created_ms INTEGER NOT NULL,
                 expires_ms INTEGER NOT NULL,
                 last_seen_ms INTEGER NOT NULL,
                 ended_ms INTEGER,
                 ended_reason TEXT
             ) STRICT;
             CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id);
             CREATE TABLE IF NOT EXISTS second_factors (
                 user_id TEXT PRIMARY KEY,
                 secret TEXT NOT NULL,
                 confirmed INTEGER NOT NULL,
                 last_step INTEGER NOT NULL
             ) STRICT;
             CREATE TABLE IF NOT EXISTS recovery_codes (
                 user_id TEXT NOT NULL,
                 code_hash TEXT NOT NULL,
                 PRIMARY KEY (user_id, code_hash)
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
             ) STRICT;
             CREATE TABLE IF NOT EXISTS person_keys (
                 key_id TEXT PRIMARY KEY,
                 idx TEXT NOT NULL UNIQUE,
                 algorithm TEXT NOT NULL,
                 wrapped TEXT NOT NULL
             ) STRICT;",
        )
        .map_err(db_err)?;
        let now = super::now_ms();
        conn.execute("DELETE FROM sessions WHERE expires_ms < ?1", [now]).map_err(db_err)?;
        let sessions = {
            let mut stmt = conn
                .prepare("SELECT jti, user_id, expires_ms, last_seen_ms, ended_reason FROM sessions")
                .map_err(db_err)?;
            let rows = stmt
                .query_map([], |r| {
                    let last_seen_ms: i64 = r.get(3)?;
                    Ok((
                        r.get::<_, String>(0)?,
                        Session {
                            user_id: r.get(1)?,
                            expires_ms: r.get(2)?,
                            last_seen_ms,
                            stored_ms: last_seen_ms,
                            ended: r.get(4)?,
                        },
                    ))
                })
                .map_err(db_err)?;
            rows.collect::<Result<HashMap<String, Session>, _>>().map_err(db_err)?
        };
        Ok(SqliteState { conn: Arc::new(Mutex::new(conn)), sessions: RwLock::new(sessions) })
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
impl Sessions for SqliteState {
    async fn start(&self, jti: &str, user_id: &str, now_ms: i64, expires_ms: i64) -> Result<(), StateError> {
        let (j, u) = (jti.to_owned(), user_id.to_owned());
        self.blocking(move |c| {
            c.execute(
                "INSERT INTO sessions (jti, user_id, created_ms, expires_ms, last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?3)
                 ON CONFLICT (jti) DO NOTHING",
                params![j, u, now_ms, expires_ms],
            )
            .map(drop)
        })
        .await?;
        let session =
            Session { user_id: user_id.to_owned(), expires_ms, last_seen_ms: now_ms, stored_ms: now_ms, ended: None };
        let mut sessions = self.sessions.write().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, s| s.expires_ms >= now_ms);
        sessions.insert(jti.to_owned(), session);
        Ok(())
    }

    async fn check(&self, jti: &str, now_ms: i64, idle_ms: i64) -> Result<SessionStatus, StateError> {
        let (status, store) = {
            let mut sessions = self.sessions.write().unwrap_or_else(|p| p.into_inner());
            let Some(s) = sessions.get_mut(jti) else { return Ok(SessionStatus::Unknown) };
            if let Some(reason) = &s.ended {
                return Ok(SessionStatus::Ended(reason.clone()));
            }
            if now_ms.saturating_sub(s.last_seen_ms) > idle_ms {
                s.ended = Some("idle".to_owned());
                (SessionStatus::Idle, Some((None, "idle")))
            } else {
                s.last_seen_ms = now_ms;
                let due = now_ms.saturating_sub(s.stored_ms) >= touch_every_ms(idle_ms);
                if due {
                    s.stored_ms = now_ms;
                }
                (SessionStatus::Active, due.then_some((Some(now_ms), "")))
            }
        };
        if let Some((seen, reason)) = store {
            let j = jti.to_owned();
            let reason = reason.to_owned();
            let stored = self
                .blocking(move |c| match seen {
                    Some(seen) => {
                        c.execute("UPDATE sessions SET last_seen_ms = ?2 WHERE jti = ?1", params![j, seen]).map(drop)
                    }
                    None => c
                        .execute(
                            "UPDATE sessions SET ended_ms = ?2, ended_reason = ?3 WHERE jti = ?1 AND ended_ms IS NULL",
                            params![j, now_ms, reason],
                        )
                        .map(drop),
                })
                .await;
            match stored {
                // Noting "still active" is best effort: on a full disk, reads must keep working
                // (the time is kept in memory and written with a later touch).
                Err(StateError::Full(m)) if seen.is_some() => {
                    tracing::warn!(error = %m, "cannot note the session's activity: storage full");
                }
                other => other?,
            }
        }
        Ok(status)
    }

    async fn end(&self, jti: &str, now_ms: i64, reason: &str) -> Result<(), StateError> {
        let (j, r) = (jti.to_owned(), reason.to_owned());
        self.blocking(move |c| {
            c.execute(
                "UPDATE sessions SET ended_ms = ?2, ended_reason = ?3 WHERE jti = ?1 AND ended_ms IS NULL",
                params![j, now_ms, r],
            )
            .map(drop)
        })
        .await?;
        let mut sessions = self.sessions.write().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = sessions.get_mut(jti)
            && s.ended.is_none()
        {
            s.ended = Some(reason.to_owned());
        }
        Ok(())
    }

    async fn end_user(&self, user_id: &str, now_ms: i64, reason: &str) -> Result<u64, StateError> {
        let (u, r) = (user_id.to_owned(), reason.to_owned());
        let n = self
            .blocking(move |c| {
                c.execute(
                    "UPDATE sessions SET ended_ms = ?2, ended_reason = ?3 WHERE user_id = ?1 AND ended_ms IS NULL",
                    params![u, now_ms, r],
                )
            })
            .await?;
        let mut sessions = self.sessions.write().unwrap_or_else(|p| p.into_inner());
        for s in sessions.values_mut().filter(|s| s.user_id == user_id && s.ended.is_none()) {
            s.ended = Some(reason.to_owned());
        }
        Ok(n as u64)
    }

    async fn prune(&self, before_ms: i64) -> Result<u64, StateError> {
        let n = self.blocking(move |c| c.execute("DELETE FROM sessions WHERE expires_ms < ?1", [before_ms])).await?;
        self.sessions.write().unwrap_or_else(|p| p.into_inner()).retain(|_, s| s.expires_ms >= before_ms);
        Ok(n as u64)
    }
}

#[async_trait]
impl SecondFactors for SqliteState {
    async fn begin(&self, user_id: &str, secret: &str) -> Result<(), StateError> {
        let (u, sec) = (user_id.to_owned(), secret.to_owned());
        self.blocking(move |c| {
            c.execute(
                "INSERT INTO second_factors (user_id, secret, confirmed, last_step) VALUES (?1, ?2, 0, 0)
                 ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, confirmed = 0, last_step = 0",
                params![u, sec],
            )
            .map(drop)
        })
        .await
    }

    async fn get(&self, user_id: &str) -> Result<Option<SecondFactor>, StateError> {
        let u = user_id.to_owned();
        self.blocking(move |c| {
            c.query_row("SELECT secret, confirmed, last_step FROM second_factors WHERE user_id = ?1", [u], |r| {
                Ok(SecondFactor { secret: r.get(0)?, confirmed: r.get::<_, i64>(1)? != 0, last_step: r.get(2)? })
            })
            .optional()
        })
        .await
    }

    async fn confirm(&self, user_id: &str, recovery_hashes: &[String]) -> Result<(), StateError> {
        let (u, hashes) = (user_id.to_owned(), recovery_hashes.to_vec());
        self.blocking(move |c| {
            let tx = c.unchecked_transaction()?;
            tx.execute("UPDATE second_factors SET confirmed = 1 WHERE user_id = ?1", [&u])?;
            tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [&u])?;
            for h in &hashes {
                tx.execute("INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)", params![u, h])?;
            }
            tx.commit()
        })
        .await
    }

    async fn use_step(&self, user_id: &str, step: i64) -> Result<bool, StateError> {
        let u = user_id.to_owned();
        self.blocking(move |c| {
            c.execute(
                "UPDATE second_factors SET last_step = ?2 WHERE user_id = ?1 AND last_step < ?2",
                params![u, step],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn use_recovery_code(&self, user_id: &str, code_hash: &str) -> Result<bool, StateError> {
        let (u, h) = (user_id.to_owned(), code_hash.to_owned());
        self.blocking(move |c| {
            c.execute("DELETE FROM recovery_codes WHERE user_id = ?1 AND code_hash = ?2", params![u, h]).map(|n| n == 1)
        })
        .await
    }

    async fn recovery_codes_left(&self, user_id: &str) -> Result<u64, StateError> {
        let u = user_id.to_owned();
        self.blocking(move |c| {
            c.query_row("SELECT count(*) FROM recovery_codes WHERE user_id = ?1", [u], |r| r.get::<_, i64>(0))
        })
        .await
        .map(|n| n as u64)
    }

    async fn remove(&self, user_id: &str) -> Result<(), StateError> {
        let u = user_id.to_owned();
        self.blocking(move |c| {
            c.execute("DELETE FROM second_factors WHERE user_id = ?1", [&u])?;
            c.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [&u]).map(drop)
        })
        .await
    }
}

fn stored_key(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredKey> {
    Ok(StoredKey { key_id: r.get(0)?, index: r.get(1)?, algorithm: r.get(2)?, wrapped: r.get(3)? })
}

const KEY_COLUMNS: &str = "SELECT key_id, idx, algorithm, wrapped FROM person_keys";

#[async_trait]
impl PersonKeys for SqliteState {
    async fn get_or_insert(&self, new: &StoredKey) -> Result<StoredKey, StateError> {
        let k = new.clone();
        self.blocking(move |c| {
            c.execute(
                "INSERT INTO person_keys (key_id, idx, algorithm, wrapped) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (idx) DO NOTHING",
                params![k.key_id, k.index, k.algorithm, k.wrapped],
            )?;
            c.query_row(&format!("{KEY_COLUMNS} WHERE idx = ?1"), [&k.index], stored_key)
        })
        .await
    }

    async fn get(&self, key_id: &str) -> Result<Option<StoredKey>, StateError> {
        let k = key_id.to_owned();
        self.blocking(move |c| c.query_row(&format!("{KEY_COLUMNS} WHERE key_id = ?1"), [k], stored_key).optional())
            .await
    }

    async fn find(&self, index: &str) -> Result<Option<StoredKey>, StateError> {
        let i = index.to_owned();
        self.blocking(move |c| c.query_row(&format!("{KEY_COLUMNS} WHERE idx = ?1"), [i], stored_key).optional()).await
    }

    async fn destroy(&self, key_ids: &[String]) -> Result<u64, StateError> {
        let ids = key_ids.to_vec();
        self.blocking(move |c| {
            // Overwrite the freed pages, and fold the WAL back into the file, so that the key's
            // bytes do not linger in either.
            c.execute_batch("PRAGMA secure_delete = ON;")?;
            let tx = c.unchecked_transaction()?;
            let mut n = 0u64;
            for id in &ids {
                n += tx.execute("DELETE FROM person_keys WHERE key_id = ?1", [id])? as u64;
            }
            tx.commit()?;
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(n)
        })
        .await
    }

    async fn list(&self) -> Result<Vec<StoredKey>, StateError> {
        self.blocking(|c| {
            let mut stmt = c.prepare(&format!("{KEY_COLUMNS} ORDER BY key_id"))?;
            let rows = stmt.query_map([], stored_key)?;
            rows.collect()
        })
        .await
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
