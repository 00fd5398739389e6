//! The replicas' shared state in the store's PostgreSQL database (tables created by the store's
//! migrations, `store::postgres::schema`). Every call asks the database: a session ended through one
//! replica is refused on the next request to any other, a lockout holds everywhere at once.

use super::{
    EvidenceMeta, EvidenceStore, FailureEntry, FailureKind, FailureRule, Leases, LoginFailures, PersonKeys, Replies,
    SecondFactor, SecondFactors, SessionStatus, Sessions, StateError, StoredKey, StoredReply, touch_every_ms,
};
use async_trait::async_trait;
use deadpool_postgres::Pool;
use std::path::Path;
use std::time::Duration;
use tokio_postgres::types::ToSql;

pub(crate) fn pg_err(e: tokio_postgres::Error) -> StateError {
    match crate::store::postgres::error::pg_err(e) {
        crate::store::StoreError::Unavailable(m) => StateError::Unavailable(m),
        crate::store::StoreError::StorageFull(m) => StateError::Full(m),
        other => StateError::Io(other.to_string()),
    }
}

pub(crate) fn pool_err(e: deadpool_postgres::PoolError) -> StateError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg_err(e),
        other => StateError::Unavailable(format!("PostgreSQL connection pool: {other}")),
    }
}

#[derive(Clone)]
pub struct PgState {
    pool: Pool,
}

impl std::fmt::Debug for PgState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgState").finish_non_exhaustive()
    }
}

impl PgState {
    pub fn new(pool: Pool) -> PgState {
        PgState { pool }
    }

    pub(crate) async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StateError> {
        let client = self.pool.get().await.map_err(pool_err)?;
        let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
        client.query(&stmt, params).await.map_err(pg_err)
    }

    pub(crate) async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StateError> {
        let client = self.pool.get().await.map_err(pool_err)?;
        let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
        client.execute(&stmt, params).await.map_err(pg_err)
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl Sessions for PgState {
    async fn start(&self, jti: &str, user_id: &str, now_ms: i64, expires_ms: i64) -> Result<(), StateError> {
        self.execute(
            "INSERT INTO sessions (jti, user_id, created_ms, expires_ms, last_seen_ms) VALUES ($1, $2, $3, $4, $3) \
             ON CONFLICT (jti) DO NOTHING",
            &[&jti, &user_id, &now_ms, &expires_ms],
        )
        .await
        .map(drop)
    }

    async fn check(&self, jti: &str, now_ms: i64, idle_ms: i64) -> Result<SessionStatus, StateError> {
        let rows = self.query("SELECT last_seen_ms, ended_reason FROM sessions WHERE jti = $1", &[&jti]).await?;
        let Some(row) = rows.first() else { return Ok(SessionStatus::Unknown) };
        let last_seen: i64 = row.get(0);
        if let Some(reason) = row.get::<_, Option<String>>(1) {
            return Ok(SessionStatus::Ended(reason));
        }
        if now_ms.saturating_sub(last_seen) > idle_ms {
            self.end(jti, now_ms, "idle").await?;
            return Ok(SessionStatus::Idle);
        }
        if now_ms.saturating_sub(last_seen) >= touch_every_ms(idle_ms) {
            // Later of the replicas' clocks wins; a lost update only shortens an idle period.
            self.execute(
                "UPDATE sessions SET last_seen_ms = GREATEST(last_seen_ms, $2) WHERE jti = $1 AND ended_ms IS NULL",
                &[&jti, &now_ms],
            )
            .await?;
        }
        Ok(SessionStatus::Active)
    }

    async fn end(&self, jti: &str, now_ms: i64, reason: &str) -> Result<(), StateError> {
        self.execute(
            "UPDATE sessions SET ended_ms = $2, ended_reason = $3 WHERE jti = $1 AND ended_ms IS NULL",
            &[&jti, &now_ms, &reason],
        )
        .await
        .map(drop)
    }

    async fn end_user(&self, user_id: &str, now_ms: i64, reason: &str) -> Result<u64, StateError> {
        self.execute(
            "UPDATE sessions SET ended_ms = $2, ended_reason = $3 WHERE user_id = $1 AND ended_ms IS NULL",
            &[&user_id, &now_ms, &reason],
        )
        .await
    }

    async fn prune(&self, before_ms: i64) -> Result<u64, StateError> {
        self.execute("DELETE FROM sessions WHERE expires_ms < $1", &[&before_ms]).await
    }
}

#[async_trait]
impl SecondFactors for PgState {
    async fn begin(&self, user_id: &str, secret: &str) -> Result<(), StateError> {
        self.execute(
            "INSERT INTO second_factors (user_id, secret, confirmed, last_step) VALUES ($1, $2, false, 0) \
             ON CONFLICT (user_id) DO UPDATE SET secret = EXCLUDED.secret, confirmed = false, last_step = 0",
            &[&user_id, &secret],
        )
        .await
        .map(drop)
    }

    async fn get(&self, user_id: &str) -> Result<Option<SecondFactor>, StateError> {
        let rows = self
            .query("SELECT secret, confirmed, last_step FROM second_factors WHERE user_id = $1", &[&user_id])
            .await?;
        Ok(rows.first().map(|r| SecondFactor { secret: r.get(0), confirmed: r.get(1), last_step: r.get(2) }))
    }

    async fn confirm(&self, user_id: &str, recovery_hashes: &[String]) -> Result<(), StateError> {
        let mut client = self.pool.get().await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(pg_err)?;
        tx.execute("UPDATE second_factors SET confirmed = true WHERE user_id = $1", &[&user_id])
            .await
            .map_err(pg_err)?;
        tx.execute("DELETE FROM recovery_codes WHERE user_id = $1", &[&user_id]).await.map_err(pg_err)?;
        for h in recovery_hashes {
            tx.execute("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)", &[&user_id, h])
                .await
                .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)
    }

    async fn use_step(&self, user_id: &str, step: i64) -> Result<bool, StateError> {
        let n = self
            .execute(
                "UPDATE second_factors SET last_step = $2 WHERE user_id = $1 AND last_step < $2",
                &[&user_id, &step],
            )
            .await?;
        Ok(n == 1)
    }

    async fn use_recovery_code(&self, user_id: &str, code_hash: &str) -> Result<bool, StateError> {
        let n = self
            .execute("DELETE FROM recovery_codes WHERE user_id = $1 AND code_hash = $2", &[&user_id, &code_hash])
            .await?;
        Ok(n == 1)
    }

    async fn recovery_codes_left(&self, user_id: &str) -> Result<u64, StateError> {
        let rows = self.query("SELECT count(*) FROM recovery_codes WHERE user_id = $1", &[&user_id]).await?;
        Ok(rows.first().map_or(0, |r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0)))
    }

    async fn remove(&self, user_id: &str) -> Result<(), StateError> {
        self.execute("DELETE FROM second_factors WHERE user_id = $1", &[&user_id]).await?;
        self.execute("DELETE FROM recovery_codes WHERE user_id = $1", &[&user_id]).await.map(drop)
    }
}

#[async_trait]
impl Replies for PgState {
    async fn reply(&self, tenant: &str, key: &str) -> Result<Option<StoredReply>, StateError> {
        let rows = self
            .query(
                "SELECT fingerprint, status, body, version, location FROM idempotent_replies \
                 WHERE tenant = $1 AND key = $2",
                &[&tenant, &key],
            )
            .await?;
        Ok(rows.first().map(|r| StoredReply {
            fingerprint: r.get(0),
            status: u16::try_from(r.get::<_, i32>(1)).unwrap_or(500),
            body: r.get(2),
            version: r.get::<_, Option<i64>>(3).and_then(|v| u64::try_from(v).ok()),
            location: r.get(4),
        }))
    }

    async fn save_reply(&self, tenant: &str, key: &str, reply: &StoredReply, now: i64) -> Result<(), StateError> {
        let version = reply.version.and_then(|v| i64::try_from(v).ok());
        self.execute(
            "INSERT INTO idempotent_replies (tenant, key, fingerprint, status, body, version, location, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant, key) DO NOTHING",
            &[
                &tenant,
                &key,
                &reply.fingerprint,
                &i32::from(reply.status),
                &reply.body,
                &version,
                &reply.location,
                &now,
            ],
        )
        .await
        .map(drop)
    }

    async fn prune_replies(&self, before: i64) -> Result<u64, StateError> {
        self.execute("DELETE FROM idempotent_replies WHERE created_at < $1", &[&before]).await
    }
}

fn entry(row: &tokio_postgres::Row) -> FailureEntry {
    FailureEntry {
        failures: u32::try_from(row.get::<_, i32>(0)).unwrap_or(0),
        window_start_ms: row.get(1),
        locked_until_ms: row.get(2),
    }
}

#[async_trait]
impl LoginFailures for PgState {
    async fn record_failure(
        &self,
        kind: FailureKind,
        key: &str,
        now_ms: i64,
        rule: &FailureRule,
    ) -> Result<FailureEntry, StateError> {
        let mut client = self.pool.get().await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // Make sure a row exists, then lock it: concurrent failures on two replicas both count.
        tx.execute(
            "INSERT INTO login_failures (kind, key, failures, window_start_ms, locked_until_ms) \
             VALUES ($1, $2, 0, $3, NULL) ON CONFLICT (kind, key) DO NOTHING",
            &[&kind.code(), &key, &now_ms],
        )
        .await
        .map_err(pg_err)?;
        let row = tx
            .query_one(
                "SELECT failures, window_start_ms, locked_until_ms FROM login_failures \
                 WHERE kind = $1 AND key = $2 FOR UPDATE",
                &[&kind.code(), &key],
            )
            .await
            .map_err(pg_err)?;
        let next = FailureEntry::bump(Some(entry(&row)), now_ms, rule);
        let failures = i32::try_from(next.failures).unwrap_or(i32::MAX);
        tx.execute(
            "UPDATE login_failures SET failures = $3, window_start_ms = $4, locked_until_ms = $5 \
             WHERE kind = $1 AND key = $2",
            &[&kind.code(), &key, &failures, &next.window_start_ms, &next.locked_until_ms],
        )
        .await
        .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(next)
    }

    async fn entry(&self, kind: FailureKind, key: &str) -> Result<Option<FailureEntry>, StateError> {
        let rows = self
            .query(
                "SELECT failures, window_start_ms, locked_until_ms FROM login_failures WHERE kind = $1 AND key = $2",
                &[&kind.code(), &key],
            )
            .await?;
        Ok(rows.first().map(entry))
    }

    async fn clear(&self, kind: FailureKind, key: &str) -> Result<(), StateError> {
        self.execute("DELETE FROM login_failures WHERE kind = $1 AND key = $2", &[&kind.code(), &key]).await.map(drop)
    }

    async fn prune(&self, before_ms: i64) -> Result<u64, StateError> {
        self.execute(
            "DELETE FROM login_failures WHERE window_start_ms < $1 AND (locked_until_ms IS NULL OR locked_until_ms < $1)",
            &[&before_ms],
        )
        .await
    }
}

#[async_trait]
impl EvidenceStore for PgState {
    async fn put(&self, tenant: &str, sha256: &str, meta: &EvidenceMeta, file: &Path) -> Result<bool, StateError> {
        let path = file.to_owned();
        let bytes = tokio::task::spawn_blocking(move || std::fs::read(path))
            .await
            .map_err(|e| StateError::Io(e.to_string()))?
            .map_err(|e| StateError::Io(format!("evidence upload: {e}")))?;
        let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        let now = chrono::Utc::now().timestamp();
        let inserted = self
            .execute(
                "INSERT INTO evidence_files (tenant, sha256, filename, content_type, size, data, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant, sha256) DO NOTHING",
                &[&tenant, &sha256, &meta.filename, &meta.content_type, &size, &bytes, &now],
            )
            .await?;
        if inserted == 1 {
            return Ok(true);
        }
        // Already there: keep a good copy, replace a damaged one.
        let rows = self
            .query("SELECT data FROM evidence_files WHERE tenant = $1 AND sha256 = $2", &[&tenant, &sha256])
            .await?;
        let stored: Option<Vec<u8>> = rows.first().map(|r| r.get(0));
        let good = stored.is_some_and(|d| {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&d)) == sha256
        });
        if good {
            return Ok(false);
        }
        self.execute(
            "UPDATE evidence_files SET data = $3, size = $4 WHERE tenant = $1 AND sha256 = $2",
            &[&tenant, &sha256, &bytes, &size],
        )
        .await?;
        Ok(true)
    }

    async fn get(&self, tenant: &str, sha256: &str) -> Result<Option<(Vec<u8>, Option<EvidenceMeta>)>, StateError> {
        let rows = self
            .query(
                "SELECT data, filename, content_type, size FROM evidence_files WHERE tenant = $1 AND sha256 = $2",
                &[&tenant, &sha256],
            )
            .await?;
        Ok(rows.first().map(|r| {
            let meta = EvidenceMeta {
                filename: r.get(1),
                content_type: r.get(2),
                size: u64::try_from(r.get::<_, i64>(3)).unwrap_or(0),
            };
            (r.get(0), Some(meta))
        }))
    }

    async fn has(&self, tenant: &str, sha256: &str, size: u64) -> Result<bool, StateError> {
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        let rows = self
            .query(
                "SELECT 1 FROM evidence_files WHERE tenant = $1 AND sha256 = $2 AND size = $3 AND length(data) = $3",
                &[&tenant, &sha256, &size],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn list(&self) -> Result<Vec<(String, String)>, StateError> {
        let rows = self.query("SELECT tenant, sha256 FROM evidence_files ORDER BY tenant, sha256", &[]).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

#[async_trait]
impl Leases for PgState {
    async fn try_acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StateError> {
        // The database's clock decides expiry, so replicas with skewed clocks agree.
        let rows = self
            .query(
                "INSERT INTO leases (name, holder, expires_at_ms) \
                 VALUES ($1, $2, (extract(epoch from clock_timestamp()) * 1000)::bigint + $3) \
                 ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at_ms = EXCLUDED.expires_at_ms \
                 WHERE leases.holder = EXCLUDED.holder \
                    OR leases.expires_at_ms < (extract(epoch from clock_timestamp()) * 1000)::bigint \
                 RETURNING holder",
                &[&name, &holder, &ms(ttl)],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), StateError> {
        self.execute("DELETE FROM leases WHERE name = $1 AND holder = $2", &[&name, &holder]).await.map(drop)
    }

    async fn holder(&self, name: &str) -> Result<Option<String>, StateError> {
        let rows = self
            .query(
                "SELECT holder FROM leases WHERE name = $1 \
                 AND expires_at_ms >= (extract(epoch from clock_timestamp()) * 1000)::bigint",
                &[&name],
            )
            .await?;
        Ok(rows.first().map(|r| r.get(0)))
    }
}

fn stored_key(r: &tokio_postgres::Row) -> StoredKey {
    StoredKey { key_id: r.get(0), index: r.get(1), algorithm: r.get(2), wrapped: r.get(3) }
}

#[async_trait]
impl PersonKeys for PgState {
    async fn get_or_insert(&self, new: &StoredKey) -> Result<StoredKey, StateError> {
        self.execute(
            "INSERT INTO person_keys (key_id, idx, algorithm, wrapped) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (idx) DO NOTHING",
            &[&new.key_id, &new.index, &new.algorithm, &new.wrapped],
        )
        .await?;
        self.find(&new.index).await?.ok_or_else(|| StateError::Io("person_keys: a key inserted was not found".into()))
    }

    async fn get(&self, key_id: &str) -> Result<Option<StoredKey>, StateError> {
        let rows =
            self.query("SELECT key_id, idx, algorithm, wrapped FROM person_keys WHERE key_id = $1", &[&key_id]).await?;
        Ok(rows.first().map(stored_key))
    }

    async fn find(&self, index: &str) -> Result<Option<StoredKey>, StateError> {
        let rows =
            self.query("SELECT key_id, idx, algorithm, wrapped FROM person_keys WHERE idx = $1", &[&index]).await?;
        Ok(rows.first().map(stored_key))
    }

    async fn destroy(&self, key_ids: &[String]) -> Result<u64, StateError> {
        // The row's old version stays in the table's pages until VACUUM reclaims it: the
        // deployment's routine VACUUM (autovacuum) does; docs/SECURITY.md says so.
        let ids: Vec<String> = key_ids.to_vec();
        self.execute("DELETE FROM person_keys WHERE key_id = ANY($1)", &[&ids]).await
    }

    async fn list(&self) -> Result<Vec<StoredKey>, StateError> {
        let rows = self.query("SELECT key_id, idx, algorithm, wrapped FROM person_keys ORDER BY key_id", &[]).await?;
        Ok(rows.iter().map(stored_key).collect())
    }
}
