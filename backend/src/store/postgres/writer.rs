//! The append path: one writer task per store, on its own connection, committing whatever appends are
//! queued in one transaction (group commit), like SQLite's writer thread.
//!
//! Every append transaction takes the same advisory lock first (`LOCK_APPEND`), so appends from all
//! replicas are serialised, and positions are the committed head + 1: dense, and committed in
//! position order. `docs/ARCHITECTURE.md` has the argument that a reader can never skip one.
//!
//! Two ways to commit a batch:
//! - **fast**: everything it needs (chain heads, stream versions, the head) comes from this writer's
//!   cache, believed current because the last commit was ours. One statement in its own transaction:
//!   it takes the lock, queues `pg_notify` and inserts every row of the batch
//!   (`INSERT … SELECT FROM unnest(…)`). If another replica wrote meanwhile, our first position (or
//!   tenant sequence, or stream version) is already taken: a unique violation, nothing written, and
//!   the batch is redone the careful way.
//! - **careful**: under the lock, read the head, the batch's chain heads, stream versions, event ids
//!   and idempotency keys, then decide and insert. Used after a conflict, for unknown streams appended
//!   with `Any` or `Exact(n > 0)`, for requests carrying an idempotency key, and whenever the cache
//!   would refuse an expected version (the cache may be behind another replica: only a version read
//!   under the lock may refuse).
//!
//! A stream or tenant the cache has never seen is assumed new when the request expects "no stream":
//! if it exists, version 1 (or tenant sequence 1) is taken and the unique constraint says so.

use super::error::{is_connection_error, pg_err, unique_violation};
use super::schema::LOCK_APPEND;
use crate::store::plan::{LogView, Planner, Row, from_sql_int as from_sql, sql_int};
use crate::store::validate::validate;
use crate::store::{AppendOutcome, AppendRequest, ExpectedVersion, StoreError};
use ducha_events::chain::{ChainHash, GENESIS, parse_hash};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Statement};

/// A group commit takes at most this many requests / events.
const MAX_BATCH_REQUESTS: usize = 1024;
const MAX_BATCH_EVENTS: usize = 16_384;
const MAX_ATTEMPTS: usize = 4;
/// Yields the writer spends gathering a batch as large as the last one (microseconds each).
const GATHER_YIELDS: usize = 8;

pub(super) type Reply = oneshot::Sender<Result<AppendOutcome, StoreError>>;
pub(super) type Job = (AppendRequest, Reply);

pub(super) const INSERT_EVENTS: &str = "INSERT INTO events (position, tenant, tenant_seq, event_id, stream, \
     stream_version, event_type, schema_version, occurred_at, actor_user, actor_role, correlation_id, causation_id, \
     payload, prev_hash, hash) \
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::text[], \
     $8::integer[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], \
     $16::text[])";
/// The fast path in one autocommit statement: take the append lock, queue the `NOTIFY`, insert.
/// The lateral reference to `l.locked` makes the lock come first (the rows cannot be produced
/// before it); `void::text` is `''`, never NULL, so the `CASE` always yields `$1`.
pub(super) const FAST_INSERT_EVENTS: &str = "INSERT INTO events (position, tenant, tenant_seq, event_id, stream, \
     stream_version, event_type, schema_version, occurred_at, actor_user, actor_role, correlation_id, causation_id, \
     payload, prev_hash, hash) \
     SELECT u.* FROM (SELECT pg_advisory_xact_lock($17)::text AS locked, pg_notify('ducha_events', $18)::text) AS l \
     CROSS JOIN LATERAL unnest(CASE WHEN l.locked IS NULL THEN NULL ELSE $1::bigint[] END, $2::text[], \
     $3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::integer[], $9::text[], $10::text[], \
     $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[]) AS u";
/// The same without `NOTIFY` (databases that have none); `$18` is unused but kept for one shape.
pub(super) const FAST_INSERT_EVENTS_QUIET: &str = "INSERT INTO events (position, tenant, tenant_seq, event_id, \
     stream, stream_version, event_type, schema_version, occurred_at, actor_user, actor_role, correlation_id, \
     causation_id, payload, prev_hash, hash) \
     SELECT u.* FROM (SELECT pg_advisory_xact_lock($17)::text AS locked, $18::text) AS l \
     CROSS JOIN LATERAL unnest(CASE WHEN l.locked IS NULL THEN NULL ELSE $1::bigint[] END, $2::text[], \
     $3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::integer[], $9::text[], $10::text[], \
     $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[]) AS u";
const INSERT_KEYS: &str = "INSERT INTO idempotency (tenant, key, stream, first_position, last_position, stream_version) \
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[])";

/// What the writer believes about the log. `valid` means: no one else has committed since we last
/// looked (if that is wrong, a unique constraint tells us and nothing is written).
#[derive(Debug, Default)]
struct Cache {
    valid: bool,
    last_position: u64,
    last_time: String,
    /// Per tenant: (last tenant_seq, last hash); `(0, GENESIS)` for a tenant known to have none.
    chains: HashMap<String, (u64, [u8; 32])>,
    /// Stream versions; 0 for a stream known not to exist.
    streams: HashMap<String, u64>,
}

impl Cache {
    /// Someone else may have written: the next batch goes the careful way. The maps stay: they
    /// describe the log as of `last_position`, and the careful path keeps them if the head has not
    /// moved past it.
    fn doubt(&mut self) {
        self.valid = false;
    }
}

/// Counters of the writer's work (for benchmarks and metrics).
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Group commits attempted.
    pub batches: std::sync::atomic::AtomicU64,
    /// Append requests received.
    pub requests: std::sync::atomic::AtomicU64,
    /// Batches committed the fast way (one round trip).
    pub fast: std::sync::atomic::AtomicU64,
    /// Batches committed the careful way (state read under the lock).
    pub careful: std::sync::atomic::AtomicU64,
    /// Attempts redone because another writer had moved the log.
    pub retries: std::sync::atomic::AtomicU64,
    /// Microseconds spent waiting for the database in fast-path statements.
    pub fast_micros: std::sync::atomic::AtomicU64,
}

fn bump(counter: &std::sync::atomic::AtomicU64, n: u64) {
    counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
}

/// The batch's decisions, computed without touching the database.
struct Plan<'a> {
    results: Vec<Result<AppendOutcome, StoreError>>,
    rows: Rows<'a>,
    keys: KeyRows<'a>,
    planner: Planner,
}

/// Column arrays for `unnest`.
#[derive(Default)]
struct Rows<'a> {
    position: Vec<i64>,
    tenant: Vec<&'a str>,
    tenant_seq: Vec<i64>,
    event_id: Vec<&'a str>,
    stream: Vec<&'a str>,
    stream_version: Vec<i64>,
    event_type: Vec<&'a str>,
    schema_version: Vec<i32>,
    occurred_at: Vec<String>,
    actor_user: Vec<&'a str>,
    actor_role: Vec<&'static str>,
    correlation_id: Vec<&'a str>,
    causation_id: Vec<Option<&'a str>>,
    payload: Vec<&'a str>,
    prev_hash: Vec<String>,
    hash: Vec<String>,
}

impl<'a> Rows<'a> {
    fn push(&mut self, row: Row<'a>) {
        let e = row.event;
        self.position.push(sql_int(row.position));
        self.tenant.push(row.tenant);
        self.tenant_seq.push(sql_int(row.tenant_seq));
        self.event_id.push(&e.event_id);
        self.stream.push(row.stream);
        self.stream_version.push(sql_int(row.stream_version));
        self.event_type.push(&e.event_type);
        self.schema_version.push(i32::try_from(e.schema_version).unwrap_or(i32::MAX));
        self.actor_user.push(e.actor.user_id.as_str());
        self.actor_role.push(row.actor_role());
        self.correlation_id.push(&e.correlation_id);
        self.causation_id.push(row.causation_id);
        self.payload.push(&e.payload);
        self.prev_hash.push(hex::encode(row.prev_hash));
        self.hash.push(hex::encode(row.hash));
        self.occurred_at.push(row.occurred_at);
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 16] {
        [
            &self.position,
            &self.tenant,
            &self.tenant_seq,
            &self.event_id,
            &self.stream,
            &self.stream_version,
            &self.event_type,
            &self.schema_version,
            &self.occurred_at,
            &self.actor_user,
            &self.actor_role,
            &self.correlation_id,
            &self.causation_id,
            &self.payload,
            &self.prev_hash,
            &self.hash,
        ]
    }
}

#[derive(Default)]
struct KeyRows<'a> {
    tenant: Vec<&'a str>,
    key: Vec<&'a str>,
    stream: Vec<&'a str>,
    first: Vec<i64>,
    last: Vec<i64>,
    version: Vec<i64>,
}

/// What the writer knows of the log: its cache, and on the careful path what was read under the lock
/// (earlier appends under the batch's keys, the batch's event ids already stored). A stream or
/// tenant the cache has not seen is new (the fast path only assumes so for "no stream" requests).
struct Known<'c> {
    cache: &'c Cache,
    keys: &'c HashMap<(String, String), (String, AppendOutcome)>,
    taken_ids: &'c HashSet<String>,
}

impl LogView for Known<'_> {
    fn stream_version(&mut self, stream: &str) -> Result<u64, StoreError> {
        Ok(self.cache.streams.get(stream).copied().unwrap_or(0))
    }

    fn chain(&mut self, tenant: &str) -> Result<(u64, [u8; 32]), StoreError> {
        Ok(self.cache.chains.get(tenant).copied().unwrap_or((0, GENESIS)))
    }

    fn key(&mut self, tenant: &str, key: &str) -> Result<Option<(String, AppendOutcome)>, StoreError> {
        Ok(self.keys.get(&(tenant.to_owned(), key.to_owned())).cloned())
    }

    fn event_id_taken(&mut self, id: &str) -> Result<bool, StoreError> {
        Ok(self.taken_ids.contains(id))
    }
}

/// Decides every request of the batch in order, later ones seeing earlier ones.
fn plan<'a>(alg: ChainHash, known: &mut Known<'_>, reqs: &[&'a AppendRequest]) -> Plan<'a> {
    let cache = known.cache;
    let mut p = Plan {
        results: Vec::with_capacity(reqs.len()),
        rows: Rows::default(),
        keys: KeyRows::default(),
        planner: Planner::new(alg, cache.last_position, cache.last_time.clone()),
    };
    for &req in reqs {
        let rows = &mut p.rows;
        let result = p.planner.request(known, req, |row| {
            rows.push(row);
            Ok(())
        });
        if let (Ok(outcome), Some(key)) = (&result, &req.idempotency_key)
            && !outcome.deduplicated
        {
            let k = &mut p.keys;
            k.tenant.push(req.tenant.as_str());
            k.key.push(key);
            k.stream.push(&req.stream);
            k.first.push(sql_int(outcome.first_position));
            k.last.push(sql_int(outcome.last_position));
            k.version.push(sql_int(outcome.stream_version));
        }
        p.results.push(result);
    }
    p
}

/// The writer's connection and its prepared statements.
struct Conn {
    client: Client,
    lock: Statement,
    insert: Statement,
    fast_insert: Statement,
    insert_keys: Statement,
    notify: Statement,
    head: Statement,
    chain: Statement,
    stream: Statement,
    key: Statement,
    event_ids: Statement,
}

impl Conn {
    async fn open(config: &tokio_postgres::Config, notify: bool) -> Result<Conn, tokio_postgres::Error> {
        let (client, connection) = config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "PostgreSQL writer connection closed");
            }
        });
        // Durability as SQLite's FULL, whatever the server's default: an acknowledged append is
        // flushed to the WAL on disk.
        client.batch_execute("SET synchronous_commit = on").await?;
        // The append's statements take arrays: a custom plan per execution costs more than the
        // insert itself. PostgreSQL 12+; elsewhere the default planning stays.
        let _ = client.batch_execute("SET plan_cache_mode = force_generic_plan").await;
        Ok(Conn {
            lock: client.prepare("SELECT pg_advisory_xact_lock($1)").await?,
            insert: client.prepare(INSERT_EVENTS).await?,
            fast_insert: client.prepare(if notify { FAST_INSERT_EVENTS } else { FAST_INSERT_EVENTS_QUIET }).await?,
            insert_keys: client.prepare(INSERT_KEYS).await?,
            notify: client.prepare("SELECT pg_notify('ducha_events', $1)").await?,
            head: client.prepare("SELECT position, occurred_at FROM events ORDER BY position DESC LIMIT 1").await?,
            chain: client
                .prepare("SELECT tenant_seq, hash FROM events WHERE tenant = $1 ORDER BY tenant_seq DESC LIMIT 1")
                .await?,
            stream: client
                .prepare("SELECT stream_version FROM events WHERE stream = $1 ORDER BY stream_version DESC LIMIT 1")
                .await?,
            key: client
                .prepare(
                    "SELECT stream, first_position, last_position, stream_version FROM idempotency \
                     WHERE tenant = $1 AND key = $2",
                )
                .await?,
            event_ids: client.prepare("SELECT event_id FROM events WHERE event_id = ANY($1::text[])").await?,
            client,
        })
    }
}

type Pipelined<'a> = Pin<Box<dyn Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a>>;

/// Sends every statement before waiting for any (they are queued on the connection in this order),
/// then waits for all. A failure makes the later ones fail too ("transaction aborted").
async fn pipeline(futures: Vec<Pipelined<'_>>) -> Result<(), tokio_postgres::Error> {
    let mut first_error = None;
    for r in futures_util::future::join_all(futures).await {
        if let Err(e) = r
            && first_error.is_none()
        {
            first_error = Some(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

enum Attempt {
    Done(Vec<Result<AppendOutcome, StoreError>>),
    /// Someone else wrote, or an event id is taken: nothing was written; redo carefully.
    Retry,
    Failed(tokio_postgres::Error),
}

pub(super) struct Writer {
    pub(super) config: tokio_postgres::Config,
    pub(super) head: watch::Sender<u64>,
    /// Send `pg_notify` with each commit (off where the database has no LISTEN/NOTIFY).
    pub(super) notify: bool,
    pub(super) stats: std::sync::Arc<WriterStats>,
    /// The store's chain hash (recorded in `ducha_schema`).
    chain_hash: ChainHash,
    conn: Option<Conn>,
    cache: Cache,
}

impl Writer {
    pub(super) fn new(
        config: tokio_postgres::Config,
        head: watch::Sender<u64>,
        notify: bool,
        stats: std::sync::Arc<WriterStats>,
        chain_hash: ChainHash,
    ) -> Writer {
        Writer { config, head, notify, stats, chain_hash, conn: None, cache: Cache::default() }
    }

    /// Ends when every sender is gone and the queue is drained.
    pub(super) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Job>) {
        // How many requests the last batch carried: with several writers waiting on us, the ones
        // just answered are about to send again; a few yields let them join this batch.
        let mut last = 1usize;
        while let Some(first) = rx.recv().await {
            let mut events = first.0.events.len();
            let mut batch = vec![first];
            let mut yields = 0;
            while batch.len() < MAX_BATCH_REQUESTS && events < MAX_BATCH_EVENTS {
                match rx.try_recv() {
                    Ok(job) => {
                        events += job.0.events.len();
                        batch.push(job);
                    }
                    Err(_) if batch.len() < last && yields < GATHER_YIELDS => {
                        yields += 1;
                        tokio::task::yield_now().await;
                    }
                    Err(_) => break,
                }
            }
            last = batch.len();
            self.commit_batch(batch).await;
        }
        if let Some(conn) = self.conn.take() {
            drop(conn.client);
        }
    }

    async fn commit_batch(&mut self, batch: Vec<Job>) {
        let mut valid = Vec::with_capacity(batch.len());
        for (req, reply) in batch {
            match validate(&req) {
                Ok(()) => valid.push((req, reply)),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            }
        }
        if valid.is_empty() {
            return;
        }
        let reqs: Vec<&AppendRequest> = valid.iter().map(|(r, _)| r).collect();
        let results = self.append(&reqs).await;
        for ((_, reply), result) in valid.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }

    async fn append(&mut self, reqs: &[&AppendRequest]) -> Vec<Result<AppendOutcome, StoreError>> {
        let all = |e: StoreError| reqs.iter().map(|_| Err(e.clone())).collect();
        bump(&self.stats.batches, 1);
        bump(&self.stats.requests, reqs.len() as u64);
        for _ in 0..MAX_ATTEMPTS {
            if self.conn.is_none() {
                match Conn::open(&self.config, self.notify).await {
                    Ok(c) => self.conn = Some(c),
                    Err(e) => return all(pg_err(e)),
                }
            }
            let fast = self.fast_path_possible(reqs);
            let attempt = if fast { self.fast(reqs).await } else { self.careful(reqs).await };
            match attempt {
                Attempt::Done(results) => {
                    bump(if fast { &self.stats.fast } else { &self.stats.careful }, 1);
                    return results;
                }
                Attempt::Retry => {
                    bump(&self.stats.retries, 1);
                    self.cache.doubt();
                }
                Attempt::Failed(e) => {
                    self.cache.doubt();
                    if is_connection_error(&e) {
                        self.conn = None;
                        // The commit's outcome is unknown: say so rather than guess.
                        return all(StoreError::Unavailable(format!(
                            "PostgreSQL connection lost during an append (it may or may not have been committed): {e}"
                        )));
                    }
                    return all(pg_err(e));
                }
            }
        }
        all(StoreError::Io("the append kept conflicting with concurrent writers; try again".into()))
    }

    fn fast_path_possible(&self, reqs: &[&AppendRequest]) -> bool {
        self.cache.valid
            && reqs.iter().all(|r| {
                // Keys need their own table: the careful path's transaction.
                r.idempotency_key.is_none()
                    && (self.cache.streams.contains_key(&r.stream)
                        || matches!(r.expected, ExpectedVersion::NoStream | ExpectedVersion::Exact(0)))
            })
    }

    async fn fast(&mut self, reqs: &[&AppendRequest]) -> Attempt {
        let (keys, taken_ids) = (HashMap::new(), HashSet::new());
        let mut known = Known { cache: &self.cache, keys: &keys, taken_ids: &taken_ids };
        let plan = plan(self.chain_hash, &mut known, reqs);
        // A version refused from the cache may only mean that another replica moved the stream:
        // only the careful path (reading under the lock) may refuse.
        if plan.results.iter().any(Result::is_err) {
            return Attempt::Retry;
        }
        let started = std::time::Instant::now();
        let written = self.write(&plan).await;
        bump(&self.stats.fast_micros, u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
        match written {
            Ok(()) => {
                self.applied(plan.planner);
                Attempt::Done(plan.results)
            }
            Err(e) if retryable(&e) => Attempt::Retry,
            Err(e) => Attempt::Failed(e),
        }
    }

    /// The fast path's one statement (autocommit): lock, notify, insert.
    async fn write(&self, plan: &Plan<'_>) -> Result<(), tokio_postgres::Error> {
        let Some(conn) = &self.conn else { return Ok(()) };
        let head = plan.planner.last_position.to_string();
        let rows = plan.rows.params();
        let mut params: Vec<&(dyn ToSql + Sync)> = rows.to_vec();
        params.push(&LOCK_APPEND);
        params.push(&head);
        conn.client.execute(&conn.fast_insert, &params).await.map(drop)
    }

    /// The batch is committed: the cache now describes the log up to its last position.
    fn applied(&mut self, planner: Planner) {
        let cache = &mut self.cache;
        let (last_position, last_time) = planner.into_cache(&mut cache.chains, &mut cache.streams);
        cache.last_position = last_position;
        cache.last_time = last_time;
        self.head.send_if_modified(|h| {
            let changed = *h < last_position;
            *h = (*h).max(last_position);
            changed
        });
    }

    /// Under the lock: read what the batch depends on, decide, write, commit.
    async fn careful(&mut self, reqs: &[&AppendRequest]) -> Attempt {
        let loaded = match self.load(reqs).await {
            Ok(l) => l,
            Err(e) => {
                if let Some(conn) = &self.conn {
                    let _ = conn.client.batch_execute("ROLLBACK").await;
                }
                return Attempt::Failed(e);
            }
        };
        let Loaded { cache, keys, taken_ids } = loaded;
        if self.cache.last_position == cache.last_position {
            // Nobody else wrote since our last commit: what we knew still holds; add what was read.
            self.cache.chains.extend(cache.chains);
            self.cache.streams.extend(cache.streams);
            self.cache.valid = true;
        } else {
            self.cache = cache;
        }
        // Requests citing an event id already stored are refused by the plan, so they take no
        // position (the unique constraint would otherwise fail the whole batch); a retry under a
        // known idempotency key carries the same ids and is answered, not refused.
        let mut known = Known { cache: &self.cache, keys: &keys, taken_ids: &taken_ids };
        let plan = plan(self.chain_hash, &mut known, reqs);
        let write = if plan.rows.position.is_empty() {
            // Nothing to insert: end the transaction that holds the lock.
            match &self.conn {
                Some(conn) => conn.client.batch_execute("COMMIT").await,
                None => Ok(()),
            }
        } else {
            // Still inside the transaction begun by `load`: insert and commit.
            self.write_in_open_transaction(&plan).await
        };
        match write {
            Ok(()) => {
                self.applied(plan.planner);
                Attempt::Done(plan.results)
            }
            Err(e) if retryable(&e) => Attempt::Retry,
            Err(e) => Attempt::Failed(e),
        }
    }

    async fn write_in_open_transaction(&self, plan: &Plan<'_>) -> Result<(), tokio_postgres::Error> {
        let Some(conn) = &self.conn else { return Ok(()) };
        let c = &conn.client;
        let head = plan.planner.last_position.to_string();
        let rows = plan.rows.params();
        let keys: [&(dyn ToSql + Sync); 6] = [
            &plan.keys.tenant,
            &plan.keys.key,
            &plan.keys.stream,
            &plan.keys.first,
            &plan.keys.last,
            &plan.keys.version,
        ];
        let notify: [&(dyn ToSql + Sync); 1] = [&head];
        let mut steps: Vec<Pipelined<'_>> = vec![Box::pin(c.execute(&conn.insert, &rows))];
        if !plan.keys.key.is_empty() {
            steps.push(Box::pin(c.execute(&conn.insert_keys, &keys)));
        }
        if self.notify {
            steps.push(Box::pin(c.execute(&conn.notify, &notify)));
        }
        steps.push(Box::pin(async { c.batch_execute("COMMIT").await.map(|()| 0) }));
        let result = pipeline(steps).await;
        if result.is_err() {
            let _ = c.batch_execute("ROLLBACK").await;
        }
        result
    }

    /// `BEGIN`, the lock, and every read the batch depends on, in one round trip. Leaves the
    /// transaction open (holding the lock) on success.
    async fn load(&self, reqs: &[&AppendRequest]) -> Result<Loaded, tokio_postgres::Error> {
        let Some(conn) = &self.conn else { return Ok(Loaded::default()) };
        let c = &conn.client;
        let tenants: Vec<&str> = unique(reqs.iter().map(|r| r.tenant.as_str()));
        let streams: Vec<&str> = unique(reqs.iter().map(|r| r.stream.as_str()));
        let keyed: Vec<(&str, &str)> =
            unique(reqs.iter().filter_map(|r| r.idempotency_key.as_deref().map(|k| (r.tenant.as_str(), k))));
        let ids: Vec<&str> = reqs.iter().flat_map(|r| r.events.iter().map(|e| e.event_id.as_str())).collect();

        // BEGIN is first in the join below, so it is queued on the connection before the rest.
        let begin = c.batch_execute("BEGIN");
        let lock = c.execute(&conn.lock, &[&LOCK_APPEND]);
        let head = c.query_opt(&conn.head, &[]);
        type Params<'p> = Vec<&'p (dyn ToSql + Sync)>;
        let tenant_params: Vec<Params<'_>> = tenants.iter().map(|t| vec![t as &(dyn ToSql + Sync)]).collect();
        let stream_params: Vec<Params<'_>> = streams.iter().map(|s| vec![s as &(dyn ToSql + Sync)]).collect();
        let key_params: Vec<Params<'_>> =
            keyed.iter().map(|(t, k)| vec![t as &(dyn ToSql + Sync), k as &(dyn ToSql + Sync)]).collect();
        let id_params: [&(dyn ToSql + Sync); 1] = [&ids];
        let chains = futures_util::future::join_all(tenant_params.iter().map(|p| c.query_opt(&conn.chain, p)));
        let versions = futures_util::future::join_all(stream_params.iter().map(|p| c.query_opt(&conn.stream, p)));
        let keys = futures_util::future::join_all(key_params.iter().map(|p| c.query_opt(&conn.key, p)));
        let taken = c.query(&conn.event_ids, &id_params);
        let (begin, lock, head, chains, versions, keys, taken) =
            tokio::join!(begin, lock, head, chains, versions, keys, taken);
        begin?;
        lock?;

        let mut cache = Cache { valid: true, ..Cache::default() };
        if let Some(row) = head? {
            cache.last_position = from_sql(row.get(0), "position").unwrap_or(0);
            cache.last_time = row.get(1);
        }
        for (t, row) in tenants.iter().zip(chains) {
            let chain = match row? {
                Some(row) => {
                    let seq = from_sql(row.get(0), "tenant_seq").unwrap_or(0);
                    let hash: &str = row.get(1);
                    (seq, parse_hash(hash).unwrap_or(GENESIS))
                }
                None => (0, GENESIS),
            };
            cache.chains.insert((*t).to_owned(), chain);
        }
        for (s, row) in streams.iter().zip(versions) {
            let v = match row? {
                Some(row) => from_sql(row.get(0), "stream_version").unwrap_or(0),
                None => 0,
            };
            cache.streams.insert((*s).to_owned(), v);
        }
        let mut found = HashMap::new();
        for ((t, k), row) in keyed.iter().zip(keys) {
            if let Some(row) = row? {
                let outcome = AppendOutcome {
                    first_position: from_sql(row.get(1), "first_position").unwrap_or(0),
                    last_position: from_sql(row.get(2), "last_position").unwrap_or(0),
                    stream_version: from_sql(row.get(3), "stream_version").unwrap_or(0),
                    deduplicated: true,
                };
                found.insert(((*t).to_owned(), (*k).to_owned()), (row.get(0), outcome));
            }
        }
        let taken_ids = taken?.iter().map(|r| r.get::<_, String>(0)).collect();
        Ok(Loaded { cache, keys: found, taken_ids })
    }
}

#[derive(Default)]
struct Loaded {
    cache: Cache,
    keys: HashMap<(String, String), (String, AppendOutcome)>,
    taken_ids: HashSet<String>,
}

/// A unique violation (someone else took the position), a deadlock or a serialisation failure:
/// nothing was written, and the careful path will sort it out.
fn retryable(e: &tokio_postgres::Error) -> bool {
    unique_violation(e).is_some() || matches!(e.code().map(|c| c.code()), Some("40P01" | "40001"))
}

fn unique<T: Eq + std::hash::Hash + Copy>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = HashSet::new();
    items.filter(|i| seen.insert(*i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::{new_event, request, tenant};

    fn t0() -> ducha_events::time::Timestamp {
        ducha_events::time::parse("2023-03-01T08:00:00Z").unwrap()
    }

    #[test]
    fn a_plan_numbers_chains_and_deduplicates_like_the_store() {
        let t = tenant("t1");
        let mut keyed = request(&t, "k", ExpectedVersion::Any, vec![new_event("{}", t0())]);
        keyed.idempotency_key = Some("key-1".into());
        let reqs = [
            request(&t, "a", ExpectedVersion::NoStream, vec![new_event("{}", t0()), new_event("{}", t0())]),
            request(&t, "a", ExpectedVersion::Exact(1), vec![new_event("{}", t0())]),
            keyed.clone(),
            request(&t, "a", ExpectedVersion::Exact(2), vec![new_event("{}", t0())]),
            keyed,
        ];
        let refs: Vec<&AppendRequest> = reqs.iter().collect();
        let mut cache = Cache { valid: true, last_position: 10, ..Cache::default() };
        cache.streams.insert("t1/k".into(), 0);
        let (keys, taken_ids) = (HashMap::new(), HashSet::new());
        let p = plan(ChainHash::Sha256, &mut Known { cache: &cache, keys: &keys, taken_ids: &taken_ids }, &refs);
        assert_eq!(p.results[0].as_ref().ok().map(|o| (o.first_position, o.last_position)), Some((11, 12)));
        assert!(matches!(p.results[1], Err(StoreError::WrongExpectedVersion { actual: 2, .. })));
        assert_eq!(p.results[2].as_ref().ok().map(|o| o.first_position), Some(13));
        assert_eq!(p.results[3].as_ref().ok().map(|o| (o.first_position, o.stream_version)), Some((14, 3)));
        assert_eq!(p.results[4].as_ref().ok().map(|o| (o.first_position, o.deduplicated)), Some((13, true)));
        assert_eq!(p.rows.position, vec![11, 12, 13, 14]);
        assert_eq!(p.rows.tenant_seq, vec![1, 2, 3, 4]);
        assert_eq!(p.rows.prev_hash[0], hex::encode(GENESIS));
        assert_eq!(p.rows.prev_hash[1], p.rows.hash[0]);
        assert_eq!(p.keys.key, vec!["key-1"]);
        let twice = request(&t, "b", ExpectedVersion::Any, vec![reqs[0].events[0].clone()]);
        let taken: HashSet<String> = [reqs[3].events[0].event_id.clone()].into();
        let reused = request(&t, "c", ExpectedVersion::Any, vec![reqs[3].events[0].clone()]);
        let refs = [&reqs[0], &twice, &reused];
        let p = plan(ChainHash::Sha256, &mut Known { cache: &cache, keys: &keys, taken_ids: &taken }, &refs);
        assert!(p.results[0].is_ok());
        assert!(matches!(&p.results[1], Err(StoreError::InvalidAppend(m)) if m.contains("already")), "in the batch");
        assert!(matches!(&p.results[2], Err(StoreError::InvalidAppend(m)) if m.contains("already")), "in the store");
        assert_eq!(p.rows.position, vec![11, 12], "refused requests take no position");
    }

    #[test]
    fn the_fast_path_needs_a_known_stream_or_a_new_one() {
        let t = tenant("t1");
        let mut w = Writer::new(
            tokio_postgres::Config::new(),
            watch::channel(0).0,
            true,
            Default::default(),
            ChainHash::Sha256,
        );
        let new = request(&t, "n", ExpectedVersion::NoStream, vec![new_event("{}", t0())]);
        let any = request(&t, "n", ExpectedVersion::Any, vec![new_event("{}", t0())]);
        assert!(!w.fast_path_possible(&[&new]), "an invalid cache always goes the careful way");
        w.cache.valid = true;
        assert!(w.fast_path_possible(&[&new]));
        assert!(!w.fast_path_possible(&[&any]));
        w.cache.streams.insert("t1/n".into(), 3);
        assert!(w.fast_path_possible(&[&any]));
        let mut keyed = any.clone();
        keyed.idempotency_key = Some("k".into());
        assert!(!w.fast_path_possible(&[&keyed]));
    }
}
