//! The replicas' shared state in the store's PostgreSQL database (tables created by the store's
//! migrations, `store::postgres::schema`). Every call asks the database: a logout on one replica is
//! refused on the next request to any other, a lockout holds everywhere at once.

use super::{
    EvidenceMeta, EvidenceStore, FailureEntry, FailureKind, FailureRule, Leases, LoginFailures, Replies, Revocations,
    StateError, StoredReply,
};
use async_trait::async_trait;
use deadpool_postgres::Pool;
use std::path::Path;
use std::time::Duration;
use tokio_postgres::types::ToSql;

fn pg_err(e: tokio_postgres::Error) -> StateError {
    match crate::store::postgres::error::pg_err(e) {
        crate::store::StoreError::Unavailable(m) => StateError::Unavailable(m),
        other => StateError::Io(other.to_string()),
    }
}

fn pool_err(e: deadpool_postgres::PoolError) -> StateError {
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

    async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<tokio_postgres::Row>, StateError> {
        let client = self.pool.get().await.map_err(pool_err)?;
        let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
        client.query(&stmt, params).await.map_err(pg_err)
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StateError> {
        let client = self.pool.get().await.map_err(pool_err)?;
        let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
        client.execute(&stmt, params).await.map_err(pg_err)
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl Revocations for PgState {
    async fn revoke(&self, jti: &str, expires_at: i64) -> Result<(), StateError> {
        let now = chrono::Utc::now().timestamp();
        // Expired revocations are useless: drop them as new ones come.
        self.execute("DELETE FROM revoked_tokens WHERE expires_at < $1", &[&now]).await?;
        self.execute(
            "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
            &[&jti, &expires_at],
        )
        .await
        .map(drop)
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool, StateError> {
        Ok(!self.query("SELECT 1 FROM revoked_tokens WHERE jti = $1", &[&jti]).await?.is_empty())
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
