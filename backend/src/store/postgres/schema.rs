//! The PostgreSQL schema and its versioned migrations.
//!
//! One database holds the event store *and* what the replicas share (revoked tokens, stored
//! idempotent answers, login failures, evidence files, leases): one schema version covers both.
//! `ducha_schema` records the application and the version; a newer version than this build knows is
//! refused, like SQLite's `user_version`. Migrations run in one transaction under an advisory lock,
//! so replicas starting together migrate once.
//!
//! Why not a migrations crate: refinery (the tokio-postgres one) keeps its own history table and
//! pulls regex, time, url and toml; what we need is the newer-schema refusal, the lock and a list of
//! SQL texts — the forty lines below. SQLite uses `rusqlite_migration`.
//!
//! Column names and meaning are those of the SQLite schema (`docs/AUDIT.md`); text columns that are
//! compared or ordered use `COLLATE "C"` so that order is byte order on every database, as in SQLite.

use super::error::pg_err;
use crate::store::StoreError;
use ducha_events::chain::ChainHash;
use tokio_postgres::{Client, GenericClient};

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 5;
/// Written into `ducha_schema.application`.
pub const APPLICATION: &str = "ducha";

/// Advisory-lock keys (one 64-bit space per database): "DUCH" in the high half.
pub const LOCK_MIGRATE: i64 = 0x4455_4348_0000_0001;
pub const LOCK_APPEND: i64 = 0x4455_4348_0000_0002;

/// Version 1: the event store (as in SQLite) and the replicas' shared server state.
pub const SCHEMA_V1: &str = r#"
CREATE TABLE events (
    position        bigint  NOT NULL,
    tenant          text    COLLATE "C" NOT NULL,
    tenant_seq      bigint  NOT NULL,
    event_id        text    COLLATE "C" NOT NULL,
    stream          text    COLLATE "C" NOT NULL,
    stream_version  bigint  NOT NULL,
    event_type      text    NOT NULL,
    schema_version  integer NOT NULL,
    occurred_at     text    COLLATE "C" NOT NULL,
    actor_user      text    NOT NULL,
    actor_role      text    NOT NULL,
    correlation_id  text    NOT NULL,
    causation_id    text,
    payload         text    NOT NULL,
    prev_hash       text    NOT NULL,
    hash            text    NOT NULL,
    CONSTRAINT events_position PRIMARY KEY (position),
    CONSTRAINT events_event_id UNIQUE (event_id),
    CONSTRAINT events_stream_version UNIQUE (stream, stream_version),
    CONSTRAINT events_tenant_seq UNIQUE (tenant, tenant_seq)
);
CREATE INDEX events_tenant_position ON events (tenant, position);
CREATE INDEX events_occurred_at ON events (occurred_at);
CREATE TABLE idempotency (
    tenant          text    COLLATE "C" NOT NULL,
    key             text    COLLATE "C" NOT NULL,
    stream          text    COLLATE "C" NOT NULL,
    first_position  bigint  NOT NULL,
    last_position   bigint  NOT NULL,
    stream_version  bigint  NOT NULL,
    CONSTRAINT idempotency_key PRIMARY KEY (tenant, key)
);
CREATE TABLE checkpoints (
    name            text    COLLATE "C" PRIMARY KEY,
    position        bigint  NOT NULL,
    data            bytea   NOT NULL
);
CREATE TABLE revoked_tokens (
    jti             text    COLLATE "C" PRIMARY KEY,
    expires_at      bigint  NOT NULL
);
CREATE TABLE idempotent_replies (
    tenant          text    COLLATE "C" NOT NULL,
    key             text    COLLATE "C" NOT NULL,
    fingerprint     text    NOT NULL,
    status          integer NOT NULL,
    body            text    NOT NULL,
    version         bigint,
    location        text,
    created_at      bigint  NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE TABLE login_failures (
    kind            text    COLLATE "C" NOT NULL,
    key             text    COLLATE "C" NOT NULL,
    failures        integer NOT NULL,
    window_start_ms bigint  NOT NULL,
    locked_until_ms bigint,
    PRIMARY KEY (kind, key)
);
CREATE TABLE evidence_files (
    tenant          text    COLLATE "C" NOT NULL,
    sha256          text    COLLATE "C" NOT NULL,
    filename        text    NOT NULL,
    content_type    text    NOT NULL,
    size            bigint  NOT NULL,
    data            bytea   NOT NULL,
    created_at      bigint  NOT NULL,
    PRIMARY KEY (tenant, sha256)
);
CREATE TABLE leases (
    name            text    COLLATE "C" PRIMARY KEY,
    holder          text    NOT NULL,
    expires_at_ms   bigint  NOT NULL
);
"#;

/// Version 2 (等保 level 3): server-side sessions replace the list of revoked tokens; second
/// factors (TOTP secrets) and their recovery codes (hashed).
pub const SCHEMA_V2: &str = r#"
CREATE TABLE sessions (
    jti             text    COLLATE "C" PRIMARY KEY,
    user_id         text    COLLATE "C" NOT NULL,
    created_ms      bigint  NOT NULL,
    expires_ms      bigint  NOT NULL,
    last_seen_ms    bigint  NOT NULL,
    ended_ms        bigint,
    ended_reason    text
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE TABLE second_factors (
    user_id         text    COLLATE "C" PRIMARY KEY,
    secret          text    NOT NULL,
    confirmed       boolean NOT NULL,
    last_step       bigint  NOT NULL
);
CREATE TABLE recovery_codes (
    user_id         text    COLLATE "C" NOT NULL,
    code_hash       text    COLLATE "C" NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);
DROP TABLE revoked_tokens;
"#;

/// Version 3 (issue 10): the chain's hash function, fixed when the store is created (NULL until
/// [`migrate`] records it: SHA-256 for a store that already has events).
pub const SCHEMA_V3: &str = r#"
ALTER TABLE ducha_schema ADD COLUMN chain_hash text;
"#;

/// Version 4 (issue 10): the keys personal data is sealed under, one per person, wrapped by the
/// master key (`backend/src/personal`). An erasure deletes a row; nothing else.
pub const SCHEMA_V4: &str = r#"
CREATE TABLE person_keys (
    key_id          text    COLLATE "C" PRIMARY KEY,
    idx             text    COLLATE "C" NOT NULL UNIQUE,
    algorithm       text    NOT NULL,
    wrapped         text    NOT NULL
);
"#;

/// Version 5 (issue 14): notifications, each tenant's reminder settings and outbound channels, the
/// delivery queue and its attempts (`server_state::notify`).
pub const SCHEMA_V5: &str = r#"
CREATE TABLE notify_settings (
    tenant              text    COLLATE "C" PRIMARY KEY,
    due_soon_days       integer NOT NULL,
    verify_wait_days    integer NOT NULL,
    digest_hour         integer NOT NULL,
    updated_ms          bigint  NOT NULL,
    updated_by          text    NOT NULL
);
CREATE TABLE notify_channels (
    id                  text    COLLATE "C" PRIMARY KEY,
    tenant              text    COLLATE "C" NOT NULL,
    kind                text    NOT NULL,
    name                text    NOT NULL,
    url                 text    NOT NULL,
    secret              text,
    enabled             boolean NOT NULL,
    each_reminder       boolean NOT NULL,
    created_ms          bigint  NOT NULL,
    updated_by          text    NOT NULL
);
CREATE TABLE notifications (
    id                  bigserial PRIMARY KEY,
    tenant              text    COLLATE "C" NOT NULL,
    user_id             text    COLLATE "C" NOT NULL,
    key                 text    COLLATE "C" NOT NULL,
    kind                text    NOT NULL,
    finding_id          text,
    text                text    NOT NULL,
    created_ms          bigint  NOT NULL,
    read_ms             bigint,
    UNIQUE (tenant, user_id, key)
);
CREATE INDEX notifications_user ON notifications (user_id, id);
CREATE TABLE deliveries (
    id                  bigserial PRIMARY KEY,
    tenant              text    COLLATE "C" NOT NULL,
    channel_id          text    COLLATE "C" NOT NULL,
    key                 text    COLLATE "C" NOT NULL,
    message             text    NOT NULL,
    status              text    NOT NULL,
    attempts            integer NOT NULL,
    next_attempt_ms     bigint  NOT NULL,
    claimed_ms          bigint,
    last_error          text,
    created_ms          bigint  NOT NULL,
    sent_ms             bigint,
    UNIQUE (channel_id, key)
);
CREATE INDEX deliveries_due ON deliveries (channel_id, status, next_attempt_ms);
CREATE INDEX deliveries_tenant ON deliveries (tenant, id);
CREATE TABLE delivery_attempts (
    channel_id          text    COLLATE "C" NOT NULL,
    at_ms               bigint  NOT NULL
);
CREATE INDEX delivery_attempts_channel ON delivery_attempts (channel_id, at_ms);
"#;

const MIGRATIONS: &[&str] = &[SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5];

/// The recorded chain hash (None: not recorded yet).
async fn recorded_chain_hash(client: &impl GenericClient) -> Result<Option<ChainHash>, StoreError> {
    let row = client.query_one("SELECT chain_hash FROM ducha_schema", &[]).await.map_err(pg_err)?;
    match row.get::<_, Option<String>>(0) {
        None => Ok(None),
        Some(v) => ChainHash::parse(&v)
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown chain hash {v:?} in ducha_schema"))),
    }
}

fn check_configured(stored: ChainHash, configured: Option<ChainHash>) -> Result<ChainHash, StoreError> {
    match configured {
        Some(c) if c != stored => Err(StoreError::ChainHashMismatch { stored, configured: c }),
        _ => Ok(stored),
    }
}

/// What `ducha_schema` says, if the table exists: `(application, version)`.
async fn recorded(client: &impl GenericClient) -> Result<Option<(String, u32)>, StoreError> {
    let exists: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = 'ducha_schema'",
            &[],
        )
        .await
        .map_err(pg_err)?
        .get(0);
    if exists == 0 {
        return Ok(None);
    }
    let row = client.query_opt("SELECT application, version FROM ducha_schema", &[]).await.map_err(pg_err)?;
    match row {
        None => Ok(None),
        Some(r) => {
            let version: i32 = r.get(1);
            let version =
                u32::try_from(version).map_err(|_| StoreError::Corrupt(format!("invalid schema version {version}")))?;
            Ok(Some((r.get(0), version)))
        }
    }
}

/// Tables of ours in the current schema, to tell a foreign database from an empty one.
async fn has_events_table(client: &impl GenericClient) -> Result<bool, StoreError> {
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = 'events'",
            &[],
        )
        .await
        .map_err(pg_err)?
        .get(0);
    Ok(n > 0)
}

fn check_known(application: &str, version: u32) -> Result<(), StoreError> {
    if application != APPLICATION {
        return Err(StoreError::Corrupt(format!("a database of another application ({application:?})")));
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema { found: version, known: SCHEMA_VERSION });
    }
    Ok(())
}

/// Creates or upgrades the schema (read-write opens) and settles the chain hash: as recorded, or
/// recorded now (`configured` for a store without events, else SHA-256).
pub async fn migrate(client: &mut Client, configured: Option<ChainHash>) -> Result<ChainHash, StoreError> {
    let tx = client.transaction().await.map_err(pg_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_MIGRATE]).await.map_err(pg_err)?;
    let current = match recorded(&tx).await? {
        Some((app, version)) => {
            check_known(&app, version)?;
            version
        }
        None => {
            if has_events_table(&tx).await? {
                return Err(StoreError::Corrupt(
                    "the database has an `events` table but no `ducha_schema`: not a Ducha event store".into(),
                ));
            }
            tx.batch_execute(
                "CREATE TABLE ducha_schema (
                     id boolean PRIMARY KEY DEFAULT true CHECK (id),
                     application text NOT NULL,
                     version integer NOT NULL
                 );",
            )
            .await
            .map_err(pg_err)?;
            tx.execute("INSERT INTO ducha_schema (application, version) VALUES ($1, 0)", &[&APPLICATION])
                .await
                .map_err(pg_err)?;
            0
        }
    };
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.batch_execute(sql).await.map_err(pg_err)?;
        let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.execute("UPDATE ducha_schema SET version = $1", &[&version]).await.map_err(pg_err)?;
    }
    let alg = match recorded_chain_hash(&tx).await? {
        Some(alg) => alg,
        None => {
            let empty: bool =
                tx.query_one("SELECT NOT EXISTS (SELECT 1 FROM events)", &[]).await.map_err(pg_err)?.get(0);
            let alg = if empty { configured.unwrap_or_default() } else { ChainHash::Sha256 };
            tx.execute("UPDATE ducha_schema SET chain_hash = $1", &[&alg.code()]).await.map_err(pg_err)?;
            alg
        }
    };
    let alg = check_configured(alg, configured)?;
    tx.commit().await.map_err(pg_err)?;
    Ok(alg)
}

/// Checks that the schema is there and current (read-only opens never migrate); the chain hash.
pub async fn check(client: &Client, configured: Option<ChainHash>) -> Result<ChainHash, StoreError> {
    match recorded(client).await? {
        None => Err(StoreError::Io("the database holds no Ducha event store (no ducha_schema table)".into())),
        Some((app, version)) => {
            check_known(&app, version)?;
            if version < SCHEMA_VERSION {
                return Err(StoreError::Io(format!(
                    "schema {version} is older than {SCHEMA_VERSION}; open it once read-write to upgrade"
                )));
            }
            check_configured(recorded_chain_hash(client).await?.unwrap_or_default(), configured)
        }
    }
}

/// Overwrites the recorded version (tests of the newer-schema refusal).
pub async fn set_version_for_tests(client: &Client, version: u32) -> Result<(), StoreError> {
    let v = i32::try_from(version).unwrap_or(i32::MAX);
    client.execute("UPDATE ducha_schema SET version = $1", &[&v]).await.map_err(pg_err).map(drop)
}
