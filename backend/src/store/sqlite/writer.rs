//! The writer thread: group commit of queued appends, one SAVEPOINT per request, the in-memory chain
//! heads and stream versions, and the checkpoints table.

use super::WriterPragmas;
use super::read::{COLUMNS, db_err, from_sql_int, int, query_head, sql_int, text};
use crate::store::validate::{check_expected, validate};
use crate::store::{AppendOutcome, AppendRequest, StoreError};
use ducha_events::chain::{ChainFields, ChainHash, GENESIS, parse_hash};
use ducha_events::time;
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use std::collections::HashMap;
use std::fs::File;
use std::sync::mpsc;
use tokio::sync::{oneshot, watch};

/// A group commit takes at most this many requests / events.
const MAX_BATCH_REQUESTS: usize = 1024;
const MAX_BATCH_EVENTS: usize = 16_384;
/// The writer forgets stream versions past this many streams (it re-reads them on demand).
const MAX_CACHED_STREAMS: usize = 100_000;

pub(super) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub(super) enum Job {
    Append(AppendRequest, Reply<AppendOutcome>),
    /// Several requests guaranteed to land in one group commit (each still checked on its own).
    Many(Vec<(AppendRequest, Reply<AppendOutcome>)>),
    Checkpoint {
        name: String,
        position: u64,
        data: Vec<u8>,
        reply: Reply<()>,
    },
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

/// What one successful request changes in [`WriterState`], applied once its savepoint is released.
struct Changes {
    last_position: u64,
    last_time: String,
    tenant: String,
    chain: (u64, [u8; 32]),
    stream: String,
    version: u64,
}

pub(super) struct Writer {
    pub(super) conn: Connection,
    pub(super) state: WriterState,
    pub(super) head: watch::Sender<u64>,
    /// Why appends fail for want of space, until one commits again (`storage_full`).
    pub(super) full: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    /// Held while the writer lives; released when it exits.
    pub(super) _lock: File,
}

enum Pending {
    Append(Reply<AppendOutcome>, Result<AppendOutcome, StoreError>),
    Checkpoint(Reply<()>, Result<(), StoreError>),
}

impl Writer {
    pub(super) fn run(mut self, rx: mpsc::Receiver<Job>) {
        // Ends when every sender is gone and the queue is drained.
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
            self.commit_batch(batch);
        }
        // A clean shutdown checkpoints the WAL into the main file (best effort).
        let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
    }

    fn commit_batch(&mut self, batch: Vec<Job>) {
        let mut pending = Vec::with_capacity(batch.len());
        let mut fatal: Option<StoreError> = None;
        let begun = self.conn.execute_batch("BEGIN IMMEDIATE").map_err(db_err);
        if let Err(e) = begun {
            fatal = Some(e);
        }
        for job in batch {
            match job {
                Job::Append(req, reply) => {
                    let r = self.append_one(&req, &mut fatal);
                    pending.push(Pending::Append(reply, r));
                }
                Job::Many(reqs) => {
                    for (req, reply) in reqs {
                        let r = self.append_one(&req, &mut fatal);
                        pending.push(Pending::Append(reply, r));
                    }
                }
                Job::Checkpoint { name, position, data, reply } => {
                    let r = self.checkpoint(&name, position, &data, &mut fatal);
                    pending.push(Pending::Checkpoint(reply, r));
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
            Pending::Checkpoint(_, Err(e)) => Some(e),
            _ => None,
        }));
        let full = full.find_map(|e| match e {
            StoreError::StorageFull(m) => Some(m.clone()),
            _ => None,
        });
        let wrote = fatal.is_none()
            && pending.iter().any(|p| {
                matches!(p, Pending::Append(_, Ok(o)) if !o.deduplicated) || matches!(p, Pending::Checkpoint(_, Ok(())))
            });
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
            for p in pending {
                match p {
                    Pending::Append(reply, _) => {
                        let _ = reply.send(Err(err.clone()));
                    }
                    Pending::Checkpoint(reply, _) => {
                        let _ = reply.send(Err(err.clone()));
                    }
                }
            }
            return;
        }
        self.head.send_if_modified(|h| {
            let changed = *h != self.state.last_position;
            *h = self.state.last_position;
            changed
        });
        for p in pending {
            match p {
                Pending::Append(reply, r) => {
                    let _ = reply.send(r);
                }
                Pending::Checkpoint(reply, r) => {
                    let _ = reply.send(r);
                }
            }
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
            user_version: as_int(q("PRAGMA user_version")?),
        })
    }

    fn checkpoint(
        &mut self,
        name: &str,
        position: u64,
        data: &[u8],
        fatal: &mut Option<StoreError>,
    ) -> Result<(), StoreError> {
        if let Some(e) = fatal {
            return Err(e.clone());
        }
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO checkpoints (name, position, data) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.execute(params![name, sql_int(position), data]))
            .map(|_| ())
            .map_err(db_err)
    }

    /// Runs one request inside its own savepoint; on failure only that request is undone.
    fn append_one(&mut self, req: &AppendRequest, fatal: &mut Option<StoreError>) -> Result<AppendOutcome, StoreError> {
        if let Some(e) = fatal {
            return Err(e.clone());
        }
        validate(req)?;
        if let Err(e) = self.conn.execute_batch("SAVEPOINT req").map_err(db_err) {
            *fatal = Some(e.clone());
            return Err(e);
        }
        match self.try_append(req) {
            Ok((outcome, changes)) => {
                if let Err(e) = self.conn.execute_batch("RELEASE req").map_err(db_err) {
                    *fatal = Some(e.clone());
                    return Err(e);
                }
                if let Some(c) = changes {
                    self.apply(c);
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

    fn apply(&mut self, c: Changes) {
        self.state.last_position = c.last_position;
        self.state.last_time = c.last_time;
        self.state.chains.insert(c.tenant, c.chain);
        if self.state.streams.len() >= MAX_CACHED_STREAMS && !self.state.streams.contains_key(&c.stream) {
            self.state.streams.clear();
        }
        self.state.streams.insert(c.stream, c.version);
    }

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

    fn try_append(&mut self, req: &AppendRequest) -> Result<(AppendOutcome, Option<Changes>), StoreError> {
        let tenant = req.tenant.as_str();
        if let Some(key) = &req.idempotency_key {
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
            if let Some((stream, first, last, version)) = seen {
                if stream != req.stream {
                    return Err(StoreError::IdempotencyKeyReused { key: key.clone(), stream });
                }
                let outcome = AppendOutcome {
                    first_position: from_sql_int(first, "first_position")?,
                    last_position: from_sql_int(last, "last_position")?,
                    stream_version: from_sql_int(version, "stream_version")?,
                    deduplicated: true,
                };
                return Ok((outcome, None));
            }
        }

        let current = self.stream_version(&req.stream)?;
        check_expected(&req.stream, req.expected, current)?;

        let (mut seq, mut prev) = self.state.chains.get(tenant).copied().unwrap_or((0, GENESIS));
        let mut position = self.state.last_position;
        let mut version = current;
        let mut last_time = self.state.last_time.clone();
        let mut insert = self
            .conn
            .prepare_cached(&format!(
                "INSERT INTO events ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
            ))
            .map_err(db_err)?;
        for e in &req.events {
            position += 1;
            seq += 1;
            version += 1;
            let mut occurred_at = time::format(&e.occurred_at);
            if occurred_at < last_time {
                occurred_at.clone_from(&last_time);
            }
            let causation = e.causation_id.as_deref().filter(|c| !c.is_empty());
            let fields = ChainFields {
                tenant,
                tenant_seq: seq,
                event_id: &e.event_id,
                stream: &req.stream,
                stream_version: version,
                event_type: &e.event_type,
                schema_version: e.schema_version,
                occurred_at: &occurred_at,
                actor_user: e.actor.user_id.as_str(),
                actor_role: e.actor.role.code(),
                correlation_id: &e.correlation_id,
                causation_id: causation.unwrap_or(""),
                payload: &e.payload,
            };
            let hash = fields.hash_with(self.state.chain_hash, &prev);
            let inserted = insert.execute(params![
                sql_int(position),
                tenant,
                sql_int(seq),
                e.event_id,
                req.stream,
                sql_int(version),
                e.event_type,
                i64::from(e.schema_version),
                occurred_at,
                fields.actor_user,
                fields.actor_role,
                e.correlation_id,
                causation,
                e.payload,
                hex::encode(prev),
                hex::encode(hash),
            ]);
            if let Err(err) = inserted {
                return Err(match &err {
                    rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation => {
                        StoreError::InvalidAppend(format!("event id {:?} is already in the store", e.event_id))
                    }
                    _ => db_err(err),
                });
            }
            prev = hash;
            last_time = occurred_at;
        }
        drop(insert);
        let outcome = AppendOutcome {
            first_position: self.state.last_position + 1,
            last_position: position,
            stream_version: version,
            deduplicated: false,
        };
        if let Some(key) = &req.idempotency_key {
            self.conn
                .prepare_cached(
                    "INSERT INTO idempotency (tenant, key, stream, first_position, last_position, stream_version) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        tenant,
                        key,
                        req.stream,
                        sql_int(outcome.first_position),
                        sql_int(outcome.last_position),
                        sql_int(outcome.stream_version)
                    ])
                })
                .map_err(db_err)?;
        }
        let changes = Changes {
            last_position: position,
            last_time,
            tenant: tenant.to_owned(),
            chain: (seq, prev),
            stream: req.stream.clone(),
            version,
        };
        Ok((outcome, Some(changes)))
    }
}

fn job_events(job: &Job) -> usize {
    match job {
        Job::Append(req, _) => req.events.len(),
        Job::Many(reqs) => reqs.iter().map(|(r, _)| r.events.len()).sum(),
        Job::Checkpoint { .. } | Job::Pragmas(_) => 1,
    }
}
