//! The server's own small SQLite file, `api.db` in the data directory: revoked tokens and the first
//! answers to idempotent requests. Neither is a domain fact, so neither is an event: nothing here is
//! chained, exported or replayed, and deleting the file only forgets logouts and cached answers
//! (a retried command is still deduplicated by the event store itself).

use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::{Arc, Mutex};

pub const FILE: &str = "api.db";

#[derive(Debug, thiserror::Error)]
#[error("api.db: {0}")]
pub struct ServerDbError(String);

impl From<rusqlite::Error> for ServerDbError {
    fn from(e: rusqlite::Error) -> Self {
        ServerDbError(e.to_string())
    }
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

/// A handle on `api.db`, cheap to clone. Every call is short; callers on async paths use
/// [`ServerDb::blocking`] to keep the fsync off the executor.
#[derive(Debug, Clone)]
pub struct ServerDb {
    conn: Arc<Mutex<Connection>>,
}

impl ServerDb {
    pub fn open(dir: &Path) -> Result<ServerDb, ServerDbError> {
        let conn = Connection::open(dir.join(FILE))?;
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
             ) STRICT;",
        )?;
        Ok(ServerDb { conn: Arc::new(Mutex::new(conn)) })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, ServerDbError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        Ok(f(&conn)?)
    }

    /// Runs `f` on a blocking thread.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ServerDb) -> Result<T, ServerDbError> + Send + 'static,
    ) -> Result<T, ServerDbError> {
        let db = self.clone();
        tokio::task::spawn_blocking(move || f(&db)).await.map_err(|e| ServerDbError(e.to_string()))?
    }

    pub fn revoke(&self, jti: &str, expires_at: i64) -> Result<(), ServerDbError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO revoked_tokens (jti, expires_at) VALUES (?1, ?2) ON CONFLICT (jti) DO NOTHING",
                params![jti, expires_at],
            )
            .map(drop)
        })
    }

    /// Every revocation that has not expired yet; expired ones are deleted.
    pub fn live_revocations(&self, now: i64) -> Result<Vec<(String, i64)>, ServerDbError> {
        self.with(|c| {
            c.execute("DELETE FROM revoked_tokens WHERE expires_at < ?1", [now])?;
            let mut stmt = c.prepare("SELECT jti, expires_at FROM revoked_tokens")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
    }

    pub fn reply(&self, tenant: &str, key: &str) -> Result<Option<StoredReply>, ServerDbError> {
        self.with(|c| {
            c.query_row(
                "SELECT fingerprint, status, body, version, location FROM idempotent_replies
                 WHERE tenant = ?1 AND key = ?2",
                params![tenant, key],
                |r| {
                    Ok(StoredReply {
                        fingerprint: r.get(0)?,
                        status: r.get(1)?,
                        body: r.get(2)?,
                        version: r.get::<_, Option<i64>>(3)?.map(|v| v as u64),
                        location: r.get(4)?,
                    })
                },
            )
            .optional()
        })
    }

    /// Keeps the first answer: a second save under the same key changes nothing.
    pub fn save_reply(&self, tenant: &str, key: &str, reply: &StoredReply, now: i64) -> Result<(), ServerDbError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO idempotent_replies (tenant, key, fingerprint, status, body, version, location, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (tenant, key) DO NOTHING",
                params![
                    tenant,
                    key,
                    reply.fingerprint,
                    reply.status,
                    reply.body,
                    reply.version.map(|v| v as i64),
                    reply.location,
                    now
                ],
            )
            .map(drop)
        })
    }

    /// Forgets answers older than `before` (Unix seconds).
    pub fn prune_replies(&self, before: i64) -> Result<usize, ServerDbError> {
        self.with(|c| c.execute("DELETE FROM idempotent_replies WHERE created_at < ?1", [before]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocations_and_replies_persist_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let db = ServerDb::open(dir.path()).unwrap();
        db.revoke("a", 100).unwrap();
        db.revoke("b", 300).unwrap();
        let reply =
            StoredReply { fingerprint: "f".into(), status: 201, body: "{}".into(), version: Some(3), location: None };
        db.save_reply("t1", "k1", &reply, 10).unwrap();
        db.save_reply("t1", "k1", &StoredReply { status: 500, ..reply.clone() }, 11).unwrap();
        drop(db);
        let db = ServerDb::open(dir.path()).unwrap();
        assert_eq!(db.live_revocations(200).unwrap(), vec![("b".to_owned(), 300)]);
        assert_eq!(db.reply("t1", "k1").unwrap(), Some(reply));
        assert_eq!(db.reply("t2", "k1").unwrap(), None);
        assert_eq!(db.prune_replies(11).unwrap(), 1);
        assert_eq!(db.reply("t1", "k1").unwrap(), None);
    }
}
