//! The shared backend: PostgreSQL, for any number of `ducha serve` replicas on one database.
//!
//! - **Appends** go through one writer task per store ([`writer`]): group commit, an advisory lock
//!   that serialises appends across replicas, positions = committed head + 1.
//! - **Reads** use a small pool of connections (deadpool-postgres); every statement is prepared once
//!   per connection.
//! - **Subscriptions**: the head is polled (the ground truth) and `LISTEN ducha_events` wakes the
//!   poller early where the database has it (openGauss has no LISTEN: polling alone then).
//! - **Schema**: versioned migrations under an advisory lock ([`schema`]); a newer schema is refused.
//!
//! Durability: every connection runs with `synchronous_commit = on`, so an acknowledged append is in
//! the write-ahead log on disk (as SQLite's `synchronous = FULL`). A server running with `fsync = off`
//! is logged as a warning at open.
//!
//! Driver: `tokio-postgres` (async, pipelining: the fast append path is one round trip) with
//! `deadpool-postgres` for the read pool. No TLS in the driver: run the database on the same host or
//! a trusted network segment, or put a TLS tunnel in front (deploy/README.md).
//!
//! The store URL is a libpq-style URL; parameters starting with `ducha_` are ours and are removed
//! before it reaches the driver: `ducha_pool` (read connections, default 16), `ducha_poll_ms` (how
//! often the head is polled, default 500) and `ducha_notify` (`on`/`off`, default: probe the server).

pub mod error;
pub mod schema;
pub mod testing;
mod writer;

pub use writer::WriterStats;

use crate::store::plan::{from_sql_int, sql_int};
use crate::store::{AppendOutcome, AppendRequest, EventStore, StoreError, TenantHead, Upto};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use ducha_events::authz::Role;
use ducha_events::chain::ChainHash;
use ducha_events::envelope::{ActorRef, RecordedEvent};
use ducha_events::ids::{TenantId, UserId};
use ducha_events::time::{self, Timestamp};
use error::{pg_err, pool_err};
use futures_util::StreamExt;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, NoTls, Row};

pub use schema::SCHEMA_VERSION;

/// How a PostgreSQL store is opened.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// No writer task; appends and checkpoints answer [`StoreError::ReadOnly`]; no migration.
    pub read_only: bool,
    /// Read connections in the pool.
    pub pool_size: usize,
    /// How often the head is polled for appends made by other replicas.
    pub poll_interval: Duration,
    /// Send and listen for `NOTIFY` (None: probe the server).
    pub notify: Option<bool>,
    /// The chain hash a new store gets; for an existing one, the hash it must have.
    pub chain_hash: Option<ChainHash>,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            read_only: false,
            pool_size: 16,
            poll_interval: Duration::from_millis(500),
            notify: None,
            chain_hash: None,
        }
    }
}

const COLUMNS: &str = "position, tenant, tenant_seq, event_id, stream, stream_version, event_type, schema_version, \
     occurred_at, actor_user, actor_role, correlation_id, causation_id, payload, prev_hash, hash";
/// [`COLUMNS`] without the chain (`prev_hash`, `hash`): what folds read.
const FOLD_COLUMNS: &str = "position, tenant, tenant_seq, event_id, stream, stream_version, event_type, \
     schema_version, occurred_at, actor_user, actor_role, correlation_id, causation_id, payload";

/// Splits our `ducha_*` parameters off a PostgreSQL URL; returns the driver's configuration and ours.
pub fn parse_url(url: &str, mut opts: PgOptions) -> Result<(tokio_postgres::Config, PgOptions), StoreError> {
    let bad = |msg: String| StoreError::Io(format!("invalid PostgreSQL URL: {msg}"));
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "ducha_pool" => {
                opts.pool_size = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| bad(format!("ducha_pool must be 1 to 1000, not {v:?}")))?;
            }
            "ducha_poll_ms" => {
                let ms = v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (10..=60_000).contains(n))
                    .ok_or_else(|| bad(format!("ducha_poll_ms must be 10 to 60000, not {v:?}")))?;
                opts.poll_interval = Duration::from_millis(ms);
            }
            "ducha_notify" => {
                opts.notify = Some(match v {
                    "on" | "true" | "1" => true,
                    "off" | "false" | "0" => false,
                    _ => return Err(bad(format!("ducha_notify must be on or off, not {v:?}"))),
                });
            }
            k if k.starts_with("ducha_") => return Err(bad(format!("unknown parameter {k}"))),
            _ => kept.push(pair),
        }
    }
    let driver_url = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    let mut config: tokio_postgres::Config = driver_url.parse().map_err(|e| bad(format!("{e}")))?;
    if config.get_dbname().is_none() {
        return Err(bad("name the database (postgres://user@host/DATABASE)".into()));
    }
    if config.get_application_name().is_none() {
        config.application_name("ducha");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    // Every connection commits durably, whatever the server's default.
    let options = match config.get_options() {
        Some(o) => format!("{o} -c synchronous_commit=on"),
        None => "-c synchronous_commit=on".to_owned(),
    };
    config.options(&options);
    Ok((config, opts))
}

/// `postgres://user@host:port/db` without the password, for messages.
pub fn describe_config(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .collect();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{}:{port}/{}",
        config.get_user().unwrap_or(""),
        hosts.join(","),
        config.get_dbname().unwrap_or("")
    )
}

/// The PostgreSQL event store. Share it behind an `Arc`.
pub struct PostgresStore {
    config: tokio_postgres::Config,
    opts: PgOptions,
    pool: Pool,
    notify: bool,
    jobs: Mutex<Option<mpsc::UnboundedSender<writer::Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    head: watch::Sender<u64>,
    watcher: Mutex<Option<JoinHandle<()>>>,
    stats: std::sync::Arc<WriterStats>,
    chain_hash: ChainHash,
    /// Why the last append failed for want of space (53100), until one succeeds.
    full: Mutex<Option<String>>,
    states: super::states::StateCache,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("url", &describe_config(&self.config)).finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PostgresStore {
    /// Connects, creates or upgrades the schema (unless read-only), and starts the writer.
    ///
    /// Errors: [`StoreError::Unavailable`] when the server cannot be reached or refuses the login,
    /// [`StoreError::NewerSchema`] for a database written by a newer Ducha, [`StoreError::Corrupt`]
    /// for a database of another application.
    pub async fn open(url: &str, opts: PgOptions) -> Result<PostgresStore, StoreError> {
        let (config, opts) = parse_url(url, opts)?;
        let where_ = describe_config(&config);
        let ctx = |e: StoreError| match e {
            StoreError::Unavailable(m) => StoreError::Unavailable(format!("{where_}: {m}")),
            StoreError::Io(m) => StoreError::Io(format!("{where_}: {m}")),
            StoreError::Corrupt(m) => StoreError::Corrupt(format!("{where_}: {m}")),
            other => other,
        };
        let (mut client, connection) = config.connect(NoTls).await.map_err(pg_err).map_err(ctx)?;
        let driver = tokio::spawn(connection);
        let chain_hash = if opts.read_only {
            schema::check(&client, opts.chain_hash).await.map_err(ctx)?
        } else {
            schema::migrate(&mut client, opts.chain_hash).await.map_err(ctx)?
        };
        if let Ok(row) = client.query_one("SHOW fsync", &[]).await
            && row.get::<_, String>(0) == "off"
        {
            tracing::warn!(database = %where_, "PostgreSQL runs with fsync = off: acknowledged appends may be lost on power failure");
        }
        let notify = match opts.notify {
            Some(n) => n,
            None => client.batch_execute("SELECT pg_notify('ducha_probe', '')").await.is_ok(),
        };
        let head = query_head(&client).await.map_err(ctx)?;
        drop(client);
        driver.abort();

        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(opts.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| StoreError::Io(format!("{where_}: cannot build the connection pool: {e}")))?;
        let (head, _) = watch::channel(head);
        let stats = std::sync::Arc::new(WriterStats::default());
        let (jobs, writer) = if opts.read_only {
            (None, None)
        } else {
            let (tx, rx) = mpsc::unbounded_channel();
            let w = writer::Writer::new(config.clone(), head.clone(), notify, stats.clone(), chain_hash);
            (Some(tx), Some(tokio::spawn(w.run(rx))))
        };
        Ok(PostgresStore {
            config,
            opts,
            pool,
            notify,
            jobs: Mutex::new(jobs),
            writer: Mutex::new(writer),
            head,
            watcher: Mutex::new(None),
            stats,
            chain_hash,
            full: Mutex::new(None),
            states: Default::default(),
        })
    }

    /// The read pool, shared with the replicas' server state ([`crate::server_state`]).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The driver configuration (password included: never print it; see [`describe_config`]).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// What the writer has done so far.
    pub fn writer_stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Whether commits send `NOTIFY` (false on databases without it).
    pub fn notifies(&self) -> bool {
        self.notify
    }

    async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
        let client = self.pool.get().await.map_err(pool_err)?;
        let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
        client.query(&stmt, params).await.map_err(pg_err)
    }

    async fn events(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = self.query(sql, params).await?;
        // Sized up front: collecting a `Result` iterator would grow (and copy) the page as it goes.
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            events.push(decode_row(row)?);
        }
        Ok(events)
    }

    /// Starts polling the head (and listening) once someone subscribes.
    fn start_watcher(&self) {
        let mut watcher = lock(&self.watcher);
        if watcher.is_some() || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let task =
            watch_head(self.config.clone(), self.pool.clone(), self.head.clone(), self.opts.poll_interval, self.notify);
        *watcher = Some(tokio::spawn(task));
    }

    fn stop_writer(&self) -> Option<JoinHandle<()>> {
        lock(&self.jobs).take();
        lock(&self.writer).take()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if let Some(w) = lock(&self.watcher).take() {
            w.abort();
        }
        // The writer task finishes what is queued on its own once the sender is gone.
        self.stop_writer();
    }
}

async fn query_head(client: &tokio_postgres::Client) -> Result<u64, StoreError> {
    let row =
        client.query_opt("SELECT position FROM events ORDER BY position DESC LIMIT 1", &[]).await.map_err(pg_err)?;
    row.map_or(Ok(0), |r| from_sql_int(r.get(0), "position"))
}

/// Polls the head every `interval`, and at once when a `NOTIFY` arrives.
async fn watch_head(
    config: tokio_postgres::Config,
    pool: Pool,
    head: watch::Sender<u64>,
    interval: Duration,
    notify: bool,
) {
    let (wake_tx, mut wake) = mpsc::unbounded_channel::<()>();
    // The listener ends by itself once this task is gone (its wake-ups have no receiver).
    if notify {
        tokio::spawn(listen(config, wake_tx));
    }
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            Some(()) = wake.recv() => {}
        }
        let polled = match pool.get().await {
            Ok(client) => query_head(&client).await,
            Err(e) => Err(pool_err(e)),
        };
        match polled {
            Ok(h) => {
                head.send_if_modified(|current| {
                    let changed = h > *current;
                    *current = (*current).max(h);
                    changed
                });
            }
            Err(e) => tracing::debug!(error = %e, "cannot poll the PostgreSQL head"),
        }
    }
}

/// `LISTEN ducha_events` on a connection of its own; each notification wakes the poller. Reconnects
/// after a second when the connection fails.
async fn listen(config: tokio_postgres::Config, wake: mpsc::UnboundedSender<()>) {
    loop {
        if let Ok((client, mut connection)) = config.connect(NoTls).await {
            let (tx, mut rx) = mpsc::unbounded_channel::<()>();
            let driver = tokio::spawn(async move {
                let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                while let Some(Ok(message)) = messages.next().await {
                    if matches!(message, AsyncMessage::Notification(_)) && tx.send(()).is_err() {
                        return;
                    }
                }
            });
            if client.batch_execute("LISTEN ducha_events").await.is_ok() {
                while rx.recv().await.is_some() {
                    if wake.send(()).is_err() {
                        driver.abort();
                        return;
                    }
                }
            }
            driver.abort();
        }
        if wake.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn decode_row(row: &Row) -> Result<RecordedEvent, StoreError> {
    let position = from_sql_int(row.get(0), "position")?;
    let bad = |what: &str, value: &str| {
        StoreError::Corrupt(format!("event at position {position}: invalid {what} {value:?}"))
    };
    let text = |i: usize| -> Result<String, StoreError> {
        row.try_get::<_, String>(i).map_err(|e| StoreError::Corrupt(format!("event at position {position}: {e}")))
    };
    let tenant = TenantId::parse(text(1)?).map_err(|e| bad("tenant", &e.0))?;
    let schema_version: i32 = row.get(7);
    let user_id = UserId::parse(text(9)?).map_err(|e| bad("actor_user", &e.0))?;
    let role_s: &str = row.get(10);
    let role = Role::from_code(role_s).ok_or_else(|| bad("actor_role", role_s))?;
    Ok(RecordedEvent {
        position,
        tenant_seq: from_sql_int(row.get(2), "tenant_seq")?,
        event_id: text(3)?,
        tenant,
        stream: text(4)?,
        stream_version: from_sql_int(row.get(5), "stream_version")?,
        event_type: text(6)?,
        schema_version: u32::try_from(schema_version)
            .map_err(|_| bad("schema_version", &schema_version.to_string()))?,
        occurred_at: text(8)?,
        actor: ActorRef { user_id, role },
        correlation_id: text(11)?,
        causation_id: row.get(12),
        payload: text(13)?,
        // Folds select without the chain (`FOLD_COLUMNS`).
        prev_hash: if row.len() > 14 { text(14)? } else { String::new() },
        hash: if row.len() > 15 { text(15)? } else { String::new() },
    })
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[async_trait]
impl EventStore for PostgresStore {
    fn chain_hash(&self) -> ChainHash {
        self.chain_hash
    }

    fn states(&self) -> Option<&super::states::StateCache> {
        Some(&self.states)
    }

    async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError> {
        if self.opts.read_only {
            return Err(StoreError::ReadOnly);
        }
        let (tx, rx) = oneshot::channel();
        match lock(&self.jobs).as_ref() {
            Some(jobs) => jobs.send((req, tx)).map_err(|_| StoreError::Closed)?,
            None => return Err(StoreError::Closed),
        }
        let result = rx.await.unwrap_or(Err(StoreError::Closed));
        match &result {
            Err(StoreError::StorageFull(m)) => *lock(&self.full) = Some(m.clone()),
            Ok(o) if !o.deduplicated => *lock(&self.full) = None,
            _ => {}
        }
        result
    }

    async fn idempotent(&self, tenant: &TenantId, key: &str) -> Result<Option<(String, AppendOutcome)>, StoreError> {
        let rows = self
            .query(
                "SELECT stream, first_position, last_position, stream_version FROM idempotency \
                 WHERE tenant = $1 AND key = $2",
                &[&tenant.as_str(), &key],
            )
            .await?;
        rows.first()
            .map(|r| {
                let outcome = AppendOutcome {
                    first_position: from_sql_int(r.get(1), "first_position")?,
                    last_position: from_sql_int(r.get(2), "last_position")?,
                    stream_version: from_sql_int(r.get(3), "stream_version")?,
                    deduplicated: true,
                };
                Ok((r.get::<_, String>(0), outcome))
            })
            .transpose()
    }

    fn storage_full(&self) -> Option<String> {
        lock(&self.full).clone()
    }

    async fn stream_version(&self, stream: &str) -> Result<u64, StoreError> {
        let rows = self
            .query(
                "SELECT stream_version FROM events WHERE stream = $1 ORDER BY stream_version DESC LIMIT 1",
                &[&stream],
            )
            .await?;
        rows.first().map_or(Ok(0), |r| from_sql_int(r.get(0), "stream_version"))
    }

    async fn read_stream(
        &self,
        stream: &str,
        after_version: u64,
        limit: usize,
        upto: Upto,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE stream = $1 AND stream_version > $2 AND position <= $3 \
             ORDER BY stream_version LIMIT $4"
        );
        self.events(&sql, &[&stream, &sql_int(after_version), &sql_int(upto.limit()), &sql_limit(limit)]).await
    }

    async fn read_tenant(
        &self,
        tenant: &TenantId,
        after_position: u64,
        limit: usize,
        upto: Upto,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE tenant = $1 AND position > $2 AND position <= $3 \
             ORDER BY position LIMIT $4"
        );
        self.events(&sql, &[&tenant.as_str(), &sql_int(after_position), &sql_int(upto.limit()), &sql_limit(limit)])
            .await
    }

    async fn read_all(&self, after_position: u64, limit: usize, upto: Upto) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let sql =
            format!("SELECT {COLUMNS} FROM events WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3");
        self.events(&sql, &[&sql_int(after_position), &sql_int(upto.limit()), &sql_limit(limit)]).await
    }

    async fn read_for_fold(
        &self,
        tenant: Option<&TenantId>,
        after_position: u64,
        limit: usize,
        upto: Upto,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (after, upto, limit) = (sql_int(after_position), sql_int(upto.limit()), sql_limit(limit));
        match tenant {
            Some(t) => {
                let sql = format!(
                    "SELECT {FOLD_COLUMNS} FROM events WHERE tenant = $1 AND position > $2 AND position <= $3 \
                     ORDER BY position LIMIT $4"
                );
                self.events(&sql, &[&t.as_str(), &after, &upto, &limit]).await
            }
            None => {
                let sql = format!(
                    "SELECT {FOLD_COLUMNS} FROM events WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3"
                );
                self.events(&sql, &[&after, &upto, &limit]).await
            }
        }
    }

    async fn head(&self) -> Result<u64, StoreError> {
        let client = self.pool.get().await.map_err(pool_err)?;
        let head = query_head(&client).await?;
        self.head.send_if_modified(|h| {
            let changed = head > *h;
            *h = (*h).max(head);
            changed
        });
        Ok(head)
    }

    async fn position_at(&self, at: Timestamp) -> Result<u64, StoreError> {
        let at = time::format(&at);
        let rows = self
            .query(
                "SELECT position FROM events WHERE occurred_at <= $1 ORDER BY occurred_at DESC, position DESC LIMIT 1",
                &[&at],
            )
            .await?;
        rows.first().map_or(Ok(0), |r| from_sql_int(r.get(0), "position"))
    }

    async fn tenants(&self) -> Result<Vec<TenantHead>, StoreError> {
        let rows = self
            .query(
                "SELECT e.tenant, e.tenant_seq, e.position, e.hash FROM events e \
                 JOIN (SELECT tenant, MAX(tenant_seq) AS seq FROM events GROUP BY tenant) m \
                   ON e.tenant = m.tenant AND e.tenant_seq = m.seq \
                 ORDER BY e.tenant",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TenantHead {
                    tenant: TenantId::parse(r.get::<_, String>(0)).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    events: from_sql_int(r.get(1), "tenant_seq")?,
                    last_position: from_sql_int(r.get(2), "position")?,
                    head_hash: r.get(3),
                })
            })
            .collect()
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.start_watcher();
        self.head.subscribe()
    }

    async fn save_checkpoint(&self, name: &str, position: u64, data: Vec<u8>) -> Result<(), StoreError> {
        if self.opts.read_only {
            return Err(StoreError::ReadOnly);
        }
        self.query(
            "INSERT INTO checkpoints (name, position, data) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, data = EXCLUDED.data",
            &[&name, &sql_int(position), &data],
        )
        .await
        .map(drop)
    }

    async fn load_checkpoint(&self, name: &str) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let rows = self.query("SELECT position, data FROM checkpoints WHERE name = $1", &[&name]).await?;
        rows.first().map(|r| Ok((from_sql_int(r.get(0), "checkpoint position")?, r.get(1)))).transpose()
    }

    async fn close(&self) {
        if let Some(handle) = self.stop_writer() {
            let _ = handle.await;
        }
    }

    fn describe(&self) -> String {
        describe_config(&self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_parameters_are_taken_off_the_url() {
        let (config, opts) = parse_url(
            "postgres://u:secret@db.example:6543/ducha?ducha_pool=4&ducha_poll_ms=50&ducha_notify=off&sslmode=disable",
            PgOptions::default(),
        )
        .unwrap();
        assert_eq!(opts.pool_size, 4);
        assert_eq!(opts.poll_interval, Duration::from_millis(50));
        assert_eq!(opts.notify, Some(false));
        assert_eq!(config.get_dbname(), Some("ducha"));
        assert_eq!(config.get_options(), Some("-c synchronous_commit=on"));
        let shown = describe_config(&config);
        assert_eq!(shown, "postgres://u@db.example:6543/ducha");
        assert!(!shown.contains("secret"));
        assert!(parse_url("postgres://u@h/db?ducha_pool=0", PgOptions::default()).is_err());
        assert!(parse_url("postgres://u@h/db?ducha_typo=1", PgOptions::default()).is_err());
        assert!(parse_url("postgres://u@h", PgOptions::default()).is_err(), "the database must be named");
    }
}
