//! The writer thread: group commit of queued appends, one SAVEPOINT per request, the in-memory chain
//! heads and stream versions.

use super::WriterPragmas;
use super::read::{COLUMNS, db_err, from_sql_int, int, query_head, sql_int, text};
use crate::store::plan::{LogView, Planner, Row};
use crate::store::validate::validate;
use crate::store::{AppendOutcome, AppendRequest, StoreError};
use ducha_events::chain::{ChainHash, GENESIS, parse_hash};
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use std::collections::HashMap;
use std::fs::File;
use std::sync::mpsc;
use tokio::sync::{oneshot, watch};

/// A group commit takes at most this many requests / events.
const MAX_BATCH_REQUESTS: usize = 1024;
const MAX_BATCH_EVENTS: usize = 16_384;
/// Group commits so far: how many, and how many requests they carried.
#[derive(Debug, Default)]
pub(super) struct CommitCounts {
    pub(super) commits: std::sync::atomic::AtomicU64,
    pub(super) requests: std::sync::atomic::AtomicU64,
}

pub(super) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub(super) enum Job {
    Append(AppendRequest, Reply<AppendOutcome>),
    /// Several requests guaranteed to land in one group commit (each still checked on its own).
    Many(Vec<(AppendRequest, Reply<AppendOutcome>)>),
    Pragmas(Reply<WriterPragmas>),
}

// ---------------------------------------------------------------------------------------------------
// The writer.

/// What the writer knows without asking the file.
#[derive(Debug, Default)]
pub(super) struct WriterState {
    /// The store's chain hash (recorded in `meta`).
    chain_hash: ChainHash,
    pub(super) last_position: u64,
    /// `occurred_at` of the last event ("" when empty): later events never go below it.
    last_time: String,
    /// Per tenant: (last tenant_seq, last hash).
    chains: HashMap<String, (u64, [u8; 32])>,
    /// Stream versions seen (a cache: a missing stream is looked up).
    streams: HashMap<String, u64>,
}

impl WriterState {
    pub(super) fn load(conn: &Connection, chain_hash: ChainHash) -> Result<WriterState, StoreError> {
        let mut state = WriterState { chain_hash, last_position: query_head(conn)?, ..WriterState::default() };
        if state.last_position > 0 {
            state.last_time = conn
                .query_row("SELECT occurred_at FROM events WHERE position = ?1", [sql_int(state.last_position)], |r| {
                    r.get(0)
                })
                .map_err(db_err)?;
        }
        let mut stmt = conn
            .prepare(
                "SELECT e.tenant, e.tenant_seq, e.hash FROM events e \
                 JOIN (SELECT tenant, MAX(tenant_seq) AS seq FROM events GROUP BY tenant) m \
                   ON e.tenant = m.tenant AND e.tenant_seq = m.seq",
            )
            .map_err(db_err)?;
        let mut rows = stmt.query([]).map_err(db_err)?;
        while let Some(row) = rows.next().map_err(db_err)? {
            let tenant = text(row, 0)?;
            let seq = int(row, 1, "tenant_seq")?;
            let hash_hex = text(row, 2)?;
            let hash = parse_hash(&hash_hex)
                .ok_or_else(|| StoreError::Corrupt(format!("tenant {tenant}: head hash {hash_hex:?} is not a hash")))?;
            state.chains.insert(tenant, (seq, hash));
        }
        Ok(state)
    }
}

pub(super) struct Writer {
    pub(super) conn: Connection,
    pub(super) state: WriterState,
    pub(super) head: watch::Sender<u64>,
    /// Why appends fail for want of space, until one commits again (`storage_full`).
    pub(super) full: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    pub(super) counts: std::sync::Arc<CommitCounts>,
    /// Held while the writer lives; released when it exits.
    pub(super) _lock: File,
}

enum Pending {
    Append(Reply<AppendOutcome>, Result<AppendOutcome, StoreError>),
}

impl Writer {
    pub(super) fn run(mut self, rx: mpsc::Receiver<Job>) {
        // Ends when every sender is gone and the queue is drained. No wait for more requests
        // after the first: tried (BENCHMARKS.md, "group commit"), it filled the commits of
        // appenders that wait on each other but did not make the HTTP commands faster.
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            let mut events = batch.iter().map(job_events).sum::<usize>();
            while batch.len() < MAX_BATCH_REQUESTS && events < MAX_BATCH_EVENTS {
                match rx.try_recv() {
                    Ok(job) => {
                        events += job_events(&job);
                        batch.push(job);
                    }
                    Err(_) => break,
                }
            }
            let requests: u64 = batch
                .iter()
                .map(|job| match job {
                    Job::Append(..) => 1,
                    Job::Many(reqs) => reqs.len() as u64,
                    Job::Pragmas(_) => 0,
                })
                .sum();
            // Counted before the answers go out, so that an appender that has its answer sees its
            // request counted.
            self.counts.commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.counts.requests.fetch_add(requests, std::sync::atomic::Ordering::Relaxed);
            self.commit_batch(batch);
        }
        // A clean shutdown checkpoints the WAL into the main file (best effort).
        let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
    }

    fn commit_batch(&mut self, batch: Vec<Job>) {
        let mut pending = Vec::with_capacity(batch.len());
        let mut fatal: Option<StoreError> = None;
        // What the batch decides on top of the state; folded into it once committed.
        let mut planner = Planner::new(self.state.chain_hash, self.state.last_position, self.state.last_time.clone());
        let begun = self.conn.execute_batch("BEGIN IMMEDIATE").map_err(db_err);
        if let Err(e) = begun {
            fatal = Some(e);
        }
        for job in batch {
            match job {
                Job::Append(req, reply) => {
                    let r = self.append_one(&mut planner, &req, &mut fatal);
                    pending.push(Pending::Append(reply, r));
                }
                Job::Many(reqs) => {
                    for (req, reply) in reqs {
                        let r = self.append_one(&mut planner, &req, &mut fatal);
                        pending.push(Pending::Append(reply, r));
                    }
                }
                Job::Pragmas(reply) => {
                    // Not part of the transaction: answer at once.
                    let _ = reply.send(self.pragmas());
                }
            }
        }
        if fatal.is_none()
            && let Err(e) = self.conn.execute_batch("COMMIT").map_err(db_err)
        {
            fatal = Some(e);
        }
        let mut full = fatal.iter().chain(pending.iter().filter_map(|p| match p {
            Pending::Append(_, Err(e)) => Some(e),
            _ => None,
        }));
        let full = full.find_map(|e| match e {
            StoreError::StorageFull(m) => Some(m.clone()),
            _ => None,
        });
        let wrote =
            fatal.is_none() && pending.iter().any(|p| matches!(p, Pending::Append(_, Ok(o)) if !o.deduplicated));
        if let Some(m) = full {
            tracing::error!(error = %m, "the event store is full: appends are refused until space is freed");
            *super::lock(&self.full) = Some(m);
        } else if wrote && super::lock(&self.full).take().is_some() {
            tracing::warn!("the event store has space again: appends succeed");
        }
        if let Some(err) = fatal {
            if !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            // The in-memory heads may describe rows that were rolled back.
            match WriterState::load(&self.conn, self.state.chain_hash) {
                Ok(state) => self.state = state,
                Err(_) => self.state.streams.clear(),
            }
            for Pending::Append(reply, _) in pending {
                let _ = reply.send(Err(err.clone()));
            }
            return;
        }
        let state = &mut self.state;
        (state.last_position, state.last_time) = planner.into_cache(&mut state.chains, &mut state.streams);
        self.head.send_if_modified(|h| {
            let changed = *h != self.state.last_position;
            *h = self.state.last_position;
            changed
        });
        for Pending::Append(reply, r) in pending {
            let _ = reply.send(r);
        }
    }

    fn pragmas(&self) -> Result<WriterPragmas, StoreError> {
        let q = |sql: &str| self.conn.query_row(sql, [], |r| r.get::<_, rusqlite::types::Value>(0)).map_err(db_err);
        let as_int = |v: rusqlite::types::Value| match v {
            rusqlite::types::Value::Integer(i) => i,
            _ => -1,
        };
        let journal_mode = match q("PRAGMA journal_mode")? {
            rusqlite::types::Value::Text(s) => s,
            other => format!("{other:?}"),
        };
        Ok(WriterPragmas {
            journal_mode,
            synchronous: as_int(q("PRAGMA synchronous")?),
            busy_timeout_ms: as_int(q("PRAGMA busy_timeout")?),
            cache_size: as_int(q("PRAGMA cache_size")?),
            user_version: as_int(q("PRAGMA user_version")?),
        })
    }

    /// Runs one request inside its own savepoint; on failure only that request is undone (and the
    /// planner forgets it).
    fn append_one(
        &mut self,
        planner: &mut Planner,
        req: &AppendRequest,
        fatal: &mut Option<StoreError>,
    ) -> Result<AppendOutcome, StoreError> {
        if let Some(e) = fatal {
            return Err(e.clone());
        }
        validate(req)?;
        if let Err(e) = self.conn.execute_batch("SAVEPOINT req").map_err(db_err) {
            *fatal = Some(e.clone());
            return Err(e);
        }
        match self.try_append(planner, req) {
            Ok(outcome) => {
                if let Err(e) = self.conn.execute_batch("RELEASE req").map_err(db_err) {
                    *fatal = Some(e.clone());
                    return Err(e);
                }
                Ok(outcome)
            }
            Err(err) => {
                // SQLITE_FULL (and some I/O errors) roll the whole transaction back: then the
                // batch is lost, and it is the original error every request of it gets.
                if self.conn.is_autocommit() {
                    *fatal = Some(err.clone());
                    return Err(err);
                }
                if let Err(e) = self.conn.execute_batch("ROLLBACK TO req; RELEASE req").map_err(db_err) {
                    let e = if matches!(err, StoreError::StorageFull(_)) { err } else { e };
                    *fatal = Some(e.clone());
                    return Err(e);
                }
                Err(err)
            }
        }
    }

    /// Plans the request and inserts its rows (and its idempotency key) inside the open savepoint.
    fn try_append(&self, planner: &mut Planner, req: &AppendRequest) -> Result<AppendOutcome, StoreError> {
        let conn = &self.conn;
        let mut view = View { conn, state: &self.state };
        let mut insert = conn
            .prepare_cached(&format!(
                "INSERT INTO events ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
            ))
            .map_err(db_err)?;
        let outcome = planner.request(&mut view, req, |row: Row<'_>| {
            let e = row.event;
            let inserted = insert.execute(params![
                sql_int(row.position),
                row.tenant,
                sql_int(row.tenant_seq),
                e.event_id,
                row.stream,
                sql_int(row.stream_version),
                e.event_type,
                i64::from(e.schema_version),
                row.occurred_at,
                row.actor_user(),
                row.actor_role(),
                e.correlation_id,
                row.causation_id,
                e.payload,
                hex::encode(row.prev_hash),
                hex::encode(row.hash),
            ]);
            match inserted {
                Ok(_) => Ok(()),
                Err(rusqlite::Error::SqliteFailure(f, _)) if f.code == ErrorCode::ConstraintViolation => {
                    Err(StoreError::InvalidAppend(format!("event id {:?} is already in the store", e.event_id)))
                }
                Err(err) => Err(db_err(err)),
            }
        })?;
        if let (Some(key), false) = (&req.idempotency_key, outcome.deduplicated) {
            conn.prepare_cached(
                "INSERT INTO idempotency (tenant, key, stream, first_position, last_position, stream_version) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    req.tenant.as_str(),
                    key,
                    req.stream,
                    sql_int(outcome.first_position),
                    sql_int(outcome.last_position),
                    sql_int(outcome.stream_version)
                ])
            })
            .map_err(db_err)?;
        }
        Ok(outcome)
    }
}

/// The log as the writer sees it inside its transaction: the state's caches, else the file.
struct View<'c> {
    conn: &'c Connection,
    state: &'c WriterState,
}

impl LogView for View<'_> {
    fn stream_version(&mut self, stream: &str) -> Result<u64, StoreError> {
        if let Some(v) = self.state.streams.get(stream) {
            return Ok(*v);
        }
        let v: i64 = self
            .conn
            .prepare_cached("SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream = ?1")
            .and_then(|mut s| s.query_row([stream], |r| r.get(0)))
            .map_err(db_err)?;
        from_sql_int(v, "stream_version")
    }

    fn chain(&mut self, tenant: &str) -> Result<(u64, [u8; 32]), StoreError> {
        Ok(self.state.chains.get(tenant).copied().unwrap_or((0, GENESIS)))
    }

    fn key(&mut self, tenant: &str, key: &str) -> Result<Option<(String, AppendOutcome)>, StoreError> {
        let seen: Option<(String, i64, i64, i64)> = self
            .conn
            .prepare_cached(
                "SELECT stream, first_position, last_position, stream_version FROM idempotency \
                 WHERE tenant = ?1 AND key = ?2",
            )
            .and_then(|mut s| {
                s.query_row([tenant, key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).optional()
            })
            .map_err(db_err)?;
        let Some((stream, first, last, version)) = seen else { return Ok(None) };
        let outcome = AppendOutcome {
            first_position: from_sql_int(first, "first_position")?,
            last_position: from_sql_int(last, "last_position")?,
            stream_version: from_sql_int(version, "stream_version")?,
            deduplicated: true,
        };
        Ok(Some((stream, outcome)))
    }
}

fn job_events(job: &Job) -> usize {
    match job {
        Job::Append(req, _) => req.events.len(),
        Job::Many(reqs) => reqs.iter().map(|(r, _)| r.events.len()).sum(),
        Job::Pragmas(_) => 1,
    }
}
