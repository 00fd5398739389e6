//! The notification tables in the store's PostgreSQL database (schema version 5,
//! `store::postgres::schema`), shared by every replica. A claim takes rows `FOR UPDATE SKIP LOCKED`,
//! so two senders never take the same delivery (only the lease holder sends anyway).

use super::{
    Channel, Delivery, DeliveryStatus, NewDelivery, NewNotification, Notification, Notifications, NotifySettings,
    Outcome,
};
use crate::server_state::StateError;
use crate::server_state::postgres::{pg_err, pool_err};
use async_trait::async_trait;
use deadpool_postgres::Pool;
use tokio_postgres::types::ToSql;

#[derive(Clone)]
pub struct PgNotify {
    pool: Pool,
}

impl std::fmt::Debug for PgNotify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgNotify").finish_non_exhaustive()
    }
}

impl PgNotify {
    pub fn new(pool: Pool) -> PgNotify {
        PgNotify { pool }
    }

    /// The same prepared-statement helpers as the rest of the server state's tables.
    async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<tokio_postgres::Row>, StateError> {
        crate::server_state::postgres::PgState::new(self.pool.clone()).query(sql, params).await
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StateError> {
        crate::server_state::postgres::PgState::new(self.pool.clone()).execute(sql, params).await
    }
}

const CHANNEL_COLS: &str = "id, tenant, kind, name, url, secret, enabled, each_reminder, created_ms, updated_by";

fn channel(r: &tokio_postgres::Row) -> Channel {
    Channel {
        id: r.get(0),
        tenant: r.get(1),
        kind: r.get(2),
        name: r.get(3),
        url: r.get(4),
        secret: r.get(5),
        enabled: r.get(6),
        each_reminder: r.get(7),
        created_ms: r.get(8),
        updated_by: r.get(9),
    }
}

const NOTE_COLS: &str = "id, tenant, user_id, key, kind, finding_id, text, created_ms, read_ms";

fn note(r: &tokio_postgres::Row) -> Notification {
    Notification {
        id: r.get(0),
        tenant: r.get(1),
        user_id: r.get(2),
        key: r.get(3),
        kind: r.get(4),
        finding_id: r.get(5),
        text: r.get(6),
        created_ms: r.get(7),
        read_ms: r.get(8),
    }
}

const DELIVERY_COLS: &str =
    "id, tenant, channel_id, key, message, status, attempts, next_attempt_ms, last_error, created_ms, sent_ms";

fn delivery(r: &tokio_postgres::Row) -> Delivery {
    Delivery {
        id: r.get(0),
        tenant: r.get(1),
        channel_id: r.get(2),
        key: r.get(3),
        message: r.get(4),
        status: DeliveryStatus::from_code(r.get(5)),
        attempts: u32::try_from(r.get::<_, i32>(6)).unwrap_or(0),
        next_attempt_ms: r.get(7),
        last_error: r.get(8),
        created_ms: r.get(9),
        sent_ms: r.get(10),
    }
}

fn int(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

#[async_trait]
impl Notifications for PgNotify {
    async fn settings(&self, tenant: &str) -> Result<Option<NotifySettings>, StateError> {
        let rows = self
            .query(
                "SELECT due_soon_days, verify_wait_days, digest_hour, updated_ms, updated_by FROM notify_settings \
                 WHERE tenant = $1",
                &[&tenant],
            )
            .await?;
        Ok(rows.first().map(|r| NotifySettings {
            due_soon_days: u32::try_from(r.get::<_, i32>(0)).unwrap_or(0),
            verify_wait_days: u32::try_from(r.get::<_, i32>(1)).unwrap_or(0),
            digest_hour: u32::try_from(r.get::<_, i32>(2)).unwrap_or(0),
            updated_ms: r.get(3),
            updated_by: r.get(4),
        }))
    }

    async fn save_settings(&self, tenant: &str, s: &NotifySettings) -> Result<(), StateError> {
        self.execute(
            "INSERT INTO notify_settings (tenant, due_soon_days, verify_wait_days, digest_hour, updated_ms, updated_by) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant) DO UPDATE SET due_soon_days = EXCLUDED.due_soon_days, \
                 verify_wait_days = EXCLUDED.verify_wait_days, digest_hour = EXCLUDED.digest_hour, \
                 updated_ms = EXCLUDED.updated_ms, updated_by = EXCLUDED.updated_by",
            &[
                &tenant,
                &int(s.due_soon_days),
                &int(s.verify_wait_days),
                &int(s.digest_hour),
                &s.updated_ms,
                &s.updated_by,
            ],
        )
        .await
        .map(drop)
    }

    async fn channels(&self, tenant: Option<&str>) -> Result<Vec<Channel>, StateError> {
        let sql = format!(
            "SELECT {CHANNEL_COLS} FROM notify_channels WHERE $1::text IS NULL OR tenant = $1 ORDER BY created_ms, id"
        );
        Ok(self.query(&sql, &[&tenant]).await?.iter().map(channel).collect())
    }

    async fn save_channel(&self, ch: &Channel) -> Result<(), StateError> {
        let sql = format!(
            "INSERT INTO notify_channels ({CHANNEL_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name, url = EXCLUDED.url, \
                 secret = EXCLUDED.secret, enabled = EXCLUDED.enabled, each_reminder = EXCLUDED.each_reminder, \
                 updated_by = EXCLUDED.updated_by \
             WHERE notify_channels.tenant = EXCLUDED.tenant"
        );
        self.execute(
            &sql,
            &[
                &ch.id,
                &ch.tenant,
                &ch.kind,
                &ch.name,
                &ch.url,
                &ch.secret,
                &ch.enabled,
                &ch.each_reminder,
                &ch.created_ms,
                &ch.updated_by,
            ],
        )
        .await
        .map(drop)
    }

    async fn delete_channel(&self, tenant: &str, id: &str) -> Result<bool, StateError> {
        let mut client = self.pool.get().await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let n = tx
            .execute("DELETE FROM notify_channels WHERE tenant = $1 AND id = $2", &[&tenant, &id])
            .await
            .map_err(pg_err)?;
        if n == 1 {
            tx.execute("DELETE FROM deliveries WHERE channel_id = $1 AND status = 'pending'", &[&id])
                .await
                .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(n == 1)
    }

    async fn notify(&self, items: &[NewNotification], now_ms: i64) -> Result<u64, StateError> {
        let mut client = self.pool.get().await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let stmt = tx
            .prepare_cached(
                "INSERT INTO notifications (tenant, user_id, key, kind, finding_id, text, created_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant, user_id, key) DO NOTHING",
            )
            .await
            .map_err(pg_err)?;
        let mut n = 0;
        for i in items {
            n += tx
                .execute(&stmt, &[&i.tenant, &i.user_id, &i.key, &i.kind, &i.finding_id, &i.text, &now_ms])
                .await
                .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(n)
    }

    async fn list(
        &self,
        user_id: &str,
        unread_only: bool,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Notification>, StateError> {
        let sql = format!(
            "SELECT {NOTE_COLS} FROM notifications WHERE user_id = $1 AND (NOT $2 OR read_ms IS NULL) \
             AND ($3::bigint IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
        );
        let rows = self.query(&sql, &[&user_id, &unread_only, &before_id, &i64::from(limit)]).await?;
        Ok(rows.iter().map(note).collect())
    }

    async fn unread_count(&self, user_id: &str) -> Result<u64, StateError> {
        let rows = self
            .query("SELECT count(*) FROM notifications WHERE user_id = $1 AND read_ms IS NULL", &[&user_id])
            .await?;
        Ok(rows.first().map_or(0, |r| r.get::<_, i64>(0)) as u64)
    }

    async fn mark_read(&self, user_id: &str, id: i64, now_ms: i64) -> Result<bool, StateError> {
        self.execute(
            "UPDATE notifications SET read_ms = coalesce(read_ms, $3) WHERE user_id = $1 AND id = $2",
            &[&user_id, &id, &now_ms],
        )
        .await
        .map(|n| n == 1)
    }

    async fn mark_all_read(&self, user_id: &str, now_ms: i64) -> Result<u64, StateError> {
        self.execute(
            "UPDATE notifications SET read_ms = $2 WHERE user_id = $1 AND read_ms IS NULL",
            &[&user_id, &now_ms],
        )
        .await
    }

    async fn enqueue(&self, d: &NewDelivery, now_ms: i64) -> Result<bool, StateError> {
        self.execute(
            "INSERT INTO deliveries (tenant, channel_id, key, message, status, attempts, next_attempt_ms, created_ms) \
             VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5) ON CONFLICT (channel_id, key) DO NOTHING",
            &[&d.tenant, &d.channel_id, &d.key, &d.message, &now_ms],
        )
        .await
        .map(|n| n == 1)
    }

    async fn attempts_since(&self, channel_id: &str, since_ms: i64) -> Result<u64, StateError> {
        let rows = self
            .query(
                "SELECT count(*) FROM delivery_attempts WHERE channel_id = $1 AND at_ms > $2",
                &[&channel_id, &since_ms],
            )
            .await?;
        Ok(rows.first().map_or(0, |r| r.get::<_, i64>(0)) as u64)
    }

    async fn claim(&self, channel_id: &str, now_ms: i64, limit: u32) -> Result<Vec<Delivery>, StateError> {
        let mut client = self.pool.get().await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let sql = format!(
            "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, claimed_ms = $2 \
             WHERE id IN (SELECT id FROM deliveries WHERE channel_id = $1 AND status = 'pending' \
                 AND next_attempt_ms <= $2 ORDER BY next_attempt_ms, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING {DELIVERY_COLS}"
        );
        let rows = tx.query(&sql, &[&channel_id, &now_ms, &i64::from(limit)]).await.map_err(pg_err)?;
        for _ in &rows {
            tx.execute("INSERT INTO delivery_attempts (channel_id, at_ms) VALUES ($1, $2)", &[&channel_id, &now_ms])
                .await
                .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)?;
        let mut out: Vec<Delivery> = rows.iter().map(delivery).collect();
        out.sort_by_key(|d| (d.next_attempt_ms, d.id));
        Ok(out)
    }

    async fn finish(&self, id: i64, outcome: &Outcome, now_ms: i64) -> Result<(), StateError> {
        match outcome {
            Outcome::Sent => self
                .execute(
                    "UPDATE deliveries SET status = 'sent', sent_ms = $2, last_error = NULL, claimed_ms = NULL \
                     WHERE id = $1 AND status = 'sending'",
                    &[&id, &now_ms],
                )
                .await
                .map(drop),
            Outcome::Failed { error, retry_at_ms } => self
                .execute(
                    "UPDATE deliveries SET status = CASE WHEN $3::bigint IS NULL THEN 'failed' ELSE 'pending' END, \
                         next_attempt_ms = coalesce($3, next_attempt_ms), last_error = $2, claimed_ms = NULL \
                     WHERE id = $1 AND status = 'sending'",
                    &[&id, error, retry_at_ms],
                )
                .await
                .map(drop),
            Outcome::Uncertain { error } => self
                .execute(
                    "UPDATE deliveries SET status = 'uncertain', last_error = $2, claimed_ms = NULL \
                     WHERE id = $1 AND status = 'sending'",
                    &[&id, error],
                )
                .await
                .map(drop),
        }
    }

    async fn abandon_stale(&self, before_ms: i64) -> Result<u64, StateError> {
        let n = self
            .execute(
                "UPDATE deliveries SET status = 'uncertain', \
                     last_error = '发送过程中服务中断，无法确认是否送达 / the sender stopped while the request was in flight' \
                 WHERE status = 'sending' AND claimed_ms < $1",
                &[&before_ms],
            )
            .await?;
        self.execute("DELETE FROM delivery_attempts WHERE at_ms < $1", &[&(before_ms - 3_600_000)]).await?;
        Ok(n)
    }

    async fn deliveries(&self, tenant: &str, before_id: Option<i64>, limit: u32) -> Result<Vec<Delivery>, StateError> {
        let sql = format!(
            "SELECT {DELIVERY_COLS} FROM deliveries WHERE tenant = $1 AND ($2::bigint IS NULL OR id < $2) \
             ORDER BY id DESC LIMIT $3"
        );
        Ok(self.query(&sql, &[&tenant, &before_id, &i64::from(limit)]).await?.iter().map(delivery).collect())
    }

    async fn requeue(&self, tenant: &str, id: i64, now_ms: i64) -> Result<bool, StateError> {
        self.execute(
            "UPDATE deliveries SET status = 'pending', next_attempt_ms = $3 \
             WHERE tenant = $1 AND id = $2 AND status IN ('failed', 'uncertain')",
            &[&tenant, &id, &now_ms],
        )
        .await
        .map(|n| n == 1)
    }
}
