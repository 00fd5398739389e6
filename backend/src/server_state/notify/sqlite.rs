//! The notification tables in `api.db` (one replica), on a connection of their own.

use super::{
    Channel, Delivery, DeliveryStatus, NewDelivery, NewNotification, Notification, Notifications, NotifySettings,
    Outcome,
};
use crate::server_state::StateError;
use crate::server_state::sqlite::FILE;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::{Arc, Mutex};

fn db_err(e: rusqlite::Error) -> StateError {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
        return StateError::Full(format!("{FILE}: {e}"));
    }
    StateError::Io(format!("{FILE}: {e}"))
}

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS notify_settings (
    tenant TEXT PRIMARY KEY,
    due_soon_days INTEGER NOT NULL,
    verify_wait_days INTEGER NOT NULL,
    digest_hour INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    updated_by TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS notify_channels (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT,
    enabled INTEGER NOT NULL,
    each_reminder INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_by TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    user_id TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    finding_id TEXT,
    text TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    read_ms INTEGER,
    UNIQUE (tenant, user_id, key)
) STRICT;
CREATE INDEX IF NOT EXISTS notifications_user ON notifications (user_id, id);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    key TEXT NOT NULL,
    message TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    claimed_ms INTEGER,
    last_error TEXT,
    created_ms INTEGER NOT NULL,
    sent_ms INTEGER,
    UNIQUE (channel_id, key)
) STRICT;
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (channel_id, status, next_attempt_ms);
CREATE INDEX IF NOT EXISTS deliveries_tenant ON deliveries (tenant, id);
CREATE TABLE IF NOT EXISTS delivery_attempts (
    channel_id TEXT NOT NULL,
    at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS delivery_attempts_channel ON delivery_attempts (channel_id, at_ms);
";

/// The notification tables of `api.db`.
pub struct SqliteNotify {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteNotify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteNotify").finish_non_exhaustive()
    }
}

impl SqliteNotify {
    pub fn open(dir: &Path) -> Result<SqliteNotify, StateError> {
        let conn = Connection::open(dir.join(FILE)).map_err(db_err)?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")
            .map_err(db_err)?;
        conn.execute_batch(SCHEMA).map_err(db_err)?;
        Ok(SqliteNotify { conn: Arc::new(Mutex::new(conn)) })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StateError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&mut conn.lock().unwrap_or_else(|p| p.into_inner())).map_err(db_err))
            .await
            .map_err(|e| StateError::Io(format!("{FILE}: {e}")))?
    }
}

const CHANNEL_COLS: &str = "id, tenant, kind, name, url, secret, enabled, each_reminder, created_ms, updated_by";

fn channel(r: &rusqlite::Row<'_>) -> rusqlite::Result<Channel> {
    Ok(Channel {
        id: r.get(0)?,
        tenant: r.get(1)?,
        kind: r.get(2)?,
        name: r.get(3)?,
        url: r.get(4)?,
        secret: r.get(5)?,
        enabled: r.get::<_, i64>(6)? != 0,
        each_reminder: r.get::<_, i64>(7)? != 0,
        created_ms: r.get(8)?,
        updated_by: r.get(9)?,
    })
}

const NOTE_COLS: &str = "id, tenant, user_id, key, kind, finding_id, text, created_ms, read_ms";

fn note(r: &rusqlite::Row<'_>) -> rusqlite::Result<Notification> {
    Ok(Notification {
        id: r.get(0)?,
        tenant: r.get(1)?,
        user_id: r.get(2)?,
        key: r.get(3)?,
        kind: r.get(4)?,
        finding_id: r.get(5)?,
        text: r.get(6)?,
        created_ms: r.get(7)?,
        read_ms: r.get(8)?,
    })
}

const DELIVERY_COLS: &str =
    "id, tenant, channel_id, key, message, status, attempts, next_attempt_ms, last_error, created_ms, sent_ms";

fn delivery(r: &rusqlite::Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: r.get(0)?,
        tenant: r.get(1)?,
        channel_id: r.get(2)?,
        key: r.get(3)?,
        message: r.get(4)?,
        status: DeliveryStatus::from_code(&r.get::<_, String>(5)?),
        attempts: r.get(6)?,
        next_attempt_ms: r.get(7)?,
        last_error: r.get(8)?,
        created_ms: r.get(9)?,
        sent_ms: r.get(10)?,
    })
}

#[async_trait]
impl Notifications for SqliteNotify {
    async fn settings(&self, tenant: &str) -> Result<Option<NotifySettings>, StateError> {
        let t = tenant.to_owned();
        self.blocking(move |c| {
            c.query_row(
                "SELECT due_soon_days, verify_wait_days, digest_hour, updated_ms, updated_by FROM notify_settings
                 WHERE tenant = ?1",
                [t],
                |r| {
                    Ok(NotifySettings {
                        due_soon_days: r.get(0)?,
                        verify_wait_days: r.get(1)?,
                        digest_hour: r.get(2)?,
                        updated_ms: r.get(3)?,
                        updated_by: r.get(4)?,
                    })
                },
            )
            .optional()
        })
        .await
    }

    async fn save_settings(&self, tenant: &str, s: &NotifySettings) -> Result<(), StateError> {
        let (t, s) = (tenant.to_owned(), s.clone());
        self.blocking(move |c| {
            c.execute(
                "INSERT INTO notify_settings (tenant, due_soon_days, verify_wait_days, digest_hour, updated_ms, updated_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (tenant) DO UPDATE SET due_soon_days = excluded.due_soon_days,
                     verify_wait_days = excluded.verify_wait_days, digest_hour = excluded.digest_hour,
                     updated_ms = excluded.updated_ms, updated_by = excluded.updated_by",
                params![t, s.due_soon_days, s.verify_wait_days, s.digest_hour, s.updated_ms, s.updated_by],
            )
            .map(drop)
        })
        .await
    }

    async fn channels(&self, tenant: Option<&str>) -> Result<Vec<Channel>, StateError> {
        let t = tenant.map(str::to_owned);
        self.blocking(move |c| {
            let sql = format!(
                "SELECT {CHANNEL_COLS} FROM notify_channels WHERE ?1 IS NULL OR tenant = ?1 ORDER BY created_ms, id"
            );
            let mut stmt = c.prepare(&sql)?;
            stmt.query_map([t], channel)?.collect()
        })
        .await
    }

    async fn save_channel(&self, ch: &Channel) -> Result<(), StateError> {
        let ch = ch.clone();
        self.blocking(move |c| {
            c.execute(
                &format!(
                    "INSERT INTO notify_channels ({CHANNEL_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name, url = excluded.url,
                         secret = excluded.secret, enabled = excluded.enabled, each_reminder = excluded.each_reminder,
                         updated_by = excluded.updated_by
                     WHERE notify_channels.tenant = excluded.tenant"
                ),
                params![
                    ch.id,
                    ch.tenant,
                    ch.kind,
                    ch.name,
                    ch.url,
                    ch.secret,
                    ch.enabled,
                    ch.each_reminder,
                    ch.created_ms,
                    ch.updated_by
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn delete_channel(&self, tenant: &str, id: &str) -> Result<bool, StateError> {
        let (t, i) = (tenant.to_owned(), id.to_owned());
        self.blocking(move |c| {
            let tx = c.transaction()?;
            let n = tx.execute("DELETE FROM notify_channels WHERE tenant = ?1 AND id = ?2", params![t, i])?;
            if n == 1 {
                tx.execute("DELETE FROM deliveries WHERE channel_id = ?1 AND status = 'pending'", [&i])?;
            }
            tx.commit()?;
            Ok(n == 1)
        })
        .await
    }

    async fn notify(&self, items: &[NewNotification], now_ms: i64) -> Result<u64, StateError> {
        let items = items.to_vec();
        self.blocking(move |c| {
            let tx = c.transaction()?;
            let mut n = 0;
            for i in &items {
                n += tx.execute(
                    "INSERT INTO notifications (tenant, user_id, key, kind, finding_id, text, created_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (tenant, user_id, key) DO NOTHING",
                    params![i.tenant, i.user_id, i.key, i.kind, i.finding_id, i.text, now_ms],
                )? as u64;
            }
            tx.commit()?;
            Ok(n)
        })
        .await
    }

    async fn list(
        &self,
        user_id: &str,
        unread_only: bool,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Notification>, StateError> {
        let u = user_id.to_owned();
        self.blocking(move |c| {
            let sql = format!(
                "SELECT {NOTE_COLS} FROM notifications WHERE user_id = ?1 AND (?2 = 0 OR read_ms IS NULL)
                 AND (?3 IS NULL OR id < ?3) ORDER BY id DESC LIMIT ?4"
            );
            let mut stmt = c.prepare(&sql)?;
            stmt.query_map(params![u, unread_only, before_id, limit], note)?.collect()
        })
        .await
    }

    async fn unread_count(&self, user_id: &str) -> Result<u64, StateError> {
        let u = user_id.to_owned();
        self.blocking(move |c| {
            c.query_row("SELECT count(*) FROM notifications WHERE user_id = ?1 AND read_ms IS NULL", [u], |r| {
                r.get::<_, i64>(0)
            })
        })
        .await
        .map(|n| n as u64)
    }

    async fn mark_read(&self, user_id: &str, id: i64, now_ms: i64) -> Result<bool, StateError> {
        let u = user_id.to_owned();
        self.blocking(move |c| {
            c.execute(
                "UPDATE notifications SET read_ms = coalesce(read_ms, ?3) WHERE user_id = ?1 AND id = ?2",
                params![u, id, now_ms],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn mark_all_read(&self, user_id: &str, now_ms: i64) -> Result<u64, StateError> {
        let u = user_id.to_owned();
        self.blocking(move |c| {
            c.execute(
                "UPDATE notifications SET read_ms = ?2 WHERE user_id = ?1 AND read_ms IS NULL",
                params![u, now_ms],
            )
            .map(|n| n as u64)
        })
        .await
    }

    async fn enqueue(&self, d: &NewDelivery, now_ms: i64) -> Result<bool, StateError> {
        let d = d.clone();
        self.blocking(move |c| {
            c.execute(
                "INSERT INTO deliveries (tenant, channel_id, key, message, status, attempts, next_attempt_ms, created_ms)
                 VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5) ON CONFLICT (channel_id, key) DO NOTHING",
                params![d.tenant, d.channel_id, d.key, d.message, now_ms],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn attempts_since(&self, channel_id: &str, since_ms: i64) -> Result<u64, StateError> {
        let ch = channel_id.to_owned();
        self.blocking(move |c| {
            c.query_row(
                "SELECT count(*) FROM delivery_attempts WHERE channel_id = ?1 AND at_ms > ?2",
                params![ch, since_ms],
                |r| r.get::<_, i64>(0),
            )
        })
        .await
        .map(|n| n as u64)
    }

    async fn claim(&self, channel_id: &str, now_ms: i64, limit: u32) -> Result<Vec<Delivery>, StateError> {
        let ch = channel_id.to_owned();
        self.blocking(move |c| {
            let tx = c.transaction()?;
            let ids: Vec<i64> = {
                let mut stmt = tx.prepare(
                    "SELECT id FROM deliveries WHERE channel_id = ?1 AND status = 'pending' AND next_attempt_ms <= ?2
                     ORDER BY next_attempt_ms, id LIMIT ?3",
                )?;
                stmt.query_map(params![ch, now_ms, limit], |r| r.get(0))?.collect::<Result<_, _>>()?
            };
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                tx.execute(
                    "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, claimed_ms = ?2 WHERE id = ?1",
                    params![id, now_ms],
                )?;
                tx.execute("INSERT INTO delivery_attempts (channel_id, at_ms) VALUES (?1, ?2)", params![ch, now_ms])?;
                out.push(tx.query_row(
                    &format!("SELECT {DELIVERY_COLS} FROM deliveries WHERE id = ?1"),
                    [id],
                    delivery,
                )?);
            }
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    async fn finish(&self, id: i64, outcome: &Outcome, now_ms: i64) -> Result<(), StateError> {
        let outcome = outcome.clone();
        self.blocking(move |c| {
            match outcome {
                Outcome::Sent => c.execute(
                    "UPDATE deliveries SET status = 'sent', sent_ms = ?2, last_error = NULL, claimed_ms = NULL
                     WHERE id = ?1 AND status = 'sending'",
                    params![id, now_ms],
                )?,
                Outcome::Failed { error, retry_at_ms } => c.execute(
                    "UPDATE deliveries SET status = CASE WHEN ?3 IS NULL THEN 'failed' ELSE 'pending' END,
                         next_attempt_ms = coalesce(?3, next_attempt_ms), last_error = ?2, claimed_ms = NULL
                     WHERE id = ?1 AND status = 'sending'",
                    params![id, error, retry_at_ms],
                )?,
                Outcome::Uncertain { error } => c.execute(
                    "UPDATE deliveries SET status = 'uncertain', last_error = ?2, claimed_ms = NULL
                     WHERE id = ?1 AND status = 'sending'",
                    params![id, error],
                )?,
            };
            Ok(())
        })
        .await
    }

    async fn abandon_stale(&self, before_ms: i64) -> Result<u64, StateError> {
        self.blocking(move |c| {
            let n = c.execute(
                "UPDATE deliveries SET status = 'uncertain',
                     last_error = '发送过程中服务中断，无法确认是否送达 / the sender stopped while the request was in flight'
                 WHERE status = 'sending' AND claimed_ms < ?1",
                [before_ms],
            )?;
            // Attempts older than an hour no longer count for any rate limit.
            c.execute("DELETE FROM delivery_attempts WHERE at_ms < ?1", [before_ms - 3_600_000])?;
            Ok(n as u64)
        })
        .await
    }

    async fn deliveries(&self, tenant: &str, before_id: Option<i64>, limit: u32) -> Result<Vec<Delivery>, StateError> {
        let t = tenant.to_owned();
        self.blocking(move |c| {
            let sql = format!(
                "SELECT {DELIVERY_COLS} FROM deliveries WHERE tenant = ?1 AND (?2 IS NULL OR id < ?2)
                 ORDER BY id DESC LIMIT ?3"
            );
            let mut stmt = c.prepare(&sql)?;
            stmt.query_map(params![t, before_id, limit], delivery)?.collect()
        })
        .await
    }

    async fn requeue(&self, tenant: &str, id: i64, now_ms: i64) -> Result<bool, StateError> {
        let t = tenant.to_owned();
        self.blocking(move |c| {
            c.execute(
                "UPDATE deliveries SET status = 'pending', next_attempt_ms = ?3
                 WHERE tenant = ?1 AND id = ?2 AND status IN ('failed', 'uncertain')",
                params![t, id, now_ms],
            )
            .map(|n| n == 1)
        })
        .await
    }
}
