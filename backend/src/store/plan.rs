//! Deciding a batch of appends, the same for every backend: idempotency keys, expected versions,
//! event ids already taken, and for each event written its global position, tenant sequence, stream
//! version, `occurred_at` (never below the log's last time) and its link in the tenant's hash chain.
//!
//! A backend supplies what its storage knows about the log before the batch ([`LogView`]: stream
//! versions, chain heads, earlier appends under a key, taken event ids) and what to do with each
//! planned event ([`Row`]: bind it to an `INSERT`, push it into column arrays, encode a record). The
//! [`Planner`] remembers what the batch itself has decided, so later requests see earlier ones, and
//! once the batch is durable the backend folds it into its own cache ([`Planner::into_cache`]).

use super::validate::check_expected;
use super::{AppendOutcome, AppendRequest, StoreError};
use ducha_events::chain::{ChainFields, ChainHash};
use ducha_events::envelope::NewEvent;
use ducha_events::time;
use std::collections::{HashMap, HashSet};

/// A writer's cache forgets stream versions past this many streams (they are read again when needed).
pub const MAX_CACHED_STREAMS: usize = 100_000;

/// What a backend knows of the log as it stood before the batch. Only asked about what the batch
/// has not decided itself.
pub trait LogView {
    /// The stream's version (0 when it does not exist).
    fn stream_version(&mut self, stream: &str) -> Result<u64, StoreError>;
    /// The tenant's chain head: (last tenant sequence, last hash), `(0, GENESIS)` for none.
    fn chain(&mut self, tenant: &str) -> Result<(u64, [u8; 32]), StoreError>;
    /// An earlier append under this idempotency key: its stream and outcome.
    fn key(&mut self, tenant: &str, key: &str) -> Result<Option<(String, AppendOutcome)>, StoreError>;
    /// Whether an event with this id is already stored. A backend whose storage refuses a taken id
    /// by itself (a unique index) may answer `false`.
    fn event_id_taken(&mut self, _id: &str) -> Result<bool, StoreError> {
        Ok(false)
    }
}

/// One event as it will be stored.
#[derive(Debug)]
pub struct Row<'a> {
    pub position: u64,
    pub tenant: &'a str,
    pub tenant_seq: u64,
    pub stream: &'a str,
    pub stream_version: u64,
    /// What the caller asked to append (event id, type, schema version, actor, payload …).
    pub event: &'a NewEvent,
    /// Its index in its request (0 for the first).
    pub index: usize,
    /// `occurred_at` in the stored text form, raised to the log's last time if it was earlier.
    pub occurred_at: String,
    /// The causation id, `None` when absent or empty.
    pub causation_id: Option<&'a str>,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl Row<'_> {
    pub fn actor_user(&self) -> &str {
        self.event.actor.user_id.as_str()
    }

    pub fn actor_role(&self) -> &'static str {
        self.event.actor.role.code()
    }
}

/// What a batch has decided so far, on top of the log as its [`LogView`] describes it.
#[derive(Debug)]
pub struct Planner {
    alg: ChainHash,
    /// The last position planned (the log's head before the batch, at first).
    pub last_position: u64,
    /// `occurred_at` of the last event planned ("" for an empty log).
    pub last_time: String,
    chains: HashMap<String, (u64, [u8; 32])>,
    streams: HashMap<String, u64>,
    /// `tenant \0 key` → (stream, outcome); a key holds no U+0000 (see `validate`).
    keys: HashMap<String, (String, AppendOutcome)>,
    ids: HashSet<String>,
}

impl Planner {
    /// A batch appended after `last_position`, whose last event occurred at `last_time`.
    pub fn new(alg: ChainHash, last_position: u64, last_time: String) -> Planner {
        Planner {
            alg,
            last_position,
            last_time,
            chains: HashMap::new(),
            streams: HashMap::new(),
            keys: HashMap::new(),
            ids: HashSet::new(),
        }
    }

    /// Decides one request (already [`validate`](super::validate::validate)d). A retry under a known
    /// idempotency key answers the first outcome (`deduplicated`) and writes nothing; otherwise every
    /// check comes first, then `row` is called for each event in order. If `row` fails, the planner
    /// is left as it was (the backend undoes what that request wrote) and its error is returned.
    pub fn request<'a>(
        &mut self,
        view: &mut impl LogView,
        req: &'a AppendRequest,
        mut row: impl FnMut(Row<'a>) -> Result<(), StoreError>,
    ) -> Result<AppendOutcome, StoreError> {
        let tenant = req.tenant.as_str();
        let key_id = req.idempotency_key.as_ref().map(|k| format!("{tenant}\0{k}"));
        if let (Some(key), Some(id)) = (&req.idempotency_key, &key_id) {
            let seen = match self.keys.get(id) {
                Some(seen) => Some(seen.clone()),
                None => view.key(tenant, key)?,
            };
            if let Some((stream, outcome)) = seen {
                return if stream == req.stream {
                    Ok(AppendOutcome { deduplicated: true, ..outcome })
                } else {
                    Err(StoreError::IdempotencyKeyReused { key: key.clone(), stream })
                };
            }
        }
        let current = match self.streams.get(&req.stream) {
            Some(v) => *v,
            None => view.stream_version(&req.stream)?,
        };
        check_expected(&req.stream, req.expected, current)?;
        for e in &req.events {
            if self.ids.contains(&e.event_id) || view.event_id_taken(&e.event_id)? {
                return Err(StoreError::InvalidAppend(format!("event id {:?} is already in the store", e.event_id)));
            }
        }
        let (mut seq, mut prev) = match self.chains.get(tenant) {
            Some(c) => *c,
            None => view.chain(tenant)?,
        };
        let mut position = self.last_position;
        let mut version = current;
        let mut last_time = self.last_time.clone();
        for (index, e) in req.events.iter().enumerate() {
            position += 1;
            seq += 1;
            version += 1;
            let mut occurred_at = time::format(&e.occurred_at);
            if occurred_at < last_time {
                occurred_at.clone_from(&last_time);
            }
            let causation_id = e.causation_id.as_deref().filter(|c| !c.is_empty());
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
                causation_id: causation_id.unwrap_or(""),
                payload: &e.payload,
            };
            let hash = fields.hash_with(self.alg, &prev);
            last_time.clone_from(&occurred_at);
            row(Row {
                position,
                tenant,
                tenant_seq: seq,
                stream: &req.stream,
                stream_version: version,
                event: e,
                index,
                occurred_at,
                causation_id,
                prev_hash: prev,
                hash,
            })?;
            prev = hash;
        }
        let outcome = AppendOutcome {
            first_position: self.last_position + 1,
            last_position: position,
            stream_version: version,
            deduplicated: false,
        };
        self.last_position = position;
        self.last_time = last_time;
        self.chains.insert(tenant.to_owned(), (seq, prev));
        self.streams.insert(req.stream.clone(), version);
        self.ids.extend(req.events.iter().map(|e| e.event_id.clone()));
        if let Some(id) = key_id {
            self.keys.insert(id, (req.stream.clone(), outcome));
        }
        Ok(outcome)
    }

    /// Once the batch is durable: folds its chain heads and stream versions into a writer's caches
    /// (the stream cache is emptied first if it would grow past [`MAX_CACHED_STREAMS`]) and returns
    /// the new head and last time.
    pub fn into_cache(
        self,
        chains: &mut HashMap<String, (u64, [u8; 32])>,
        streams: &mut HashMap<String, u64>,
    ) -> (u64, String) {
        chains.extend(self.chains);
        if streams.len() + self.streams.len() > MAX_CACHED_STREAMS {
            streams.clear();
        }
        streams.extend(self.streams);
        (self.last_position, self.last_time)
    }
}

/// A `u64` as an SQL `bigint` (saturating; positions and versions never come near).
pub fn sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored `bigint` back as a `u64`; a negative value is corruption.
pub fn from_sql_int(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what}: {v}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ExpectedVersion;
    use crate::store::conformance::{new_event, request, tenant, verify_chains};
    use ducha_events::chain::GENESIS;
    use ducha_events::envelope::RecordedEvent;

    fn at(minute: i64) -> ducha_events::time::Timestamp {
        time::parse("2023-03-01T08:00:00Z").unwrap() + chrono::Duration::minutes(minute)
    }

    /// A log kept in memory, as a backend's storage would be.
    #[derive(Default)]
    struct Memory {
        events: Vec<RecordedEvent>,
        keys: HashMap<(String, String), (String, AppendOutcome)>,
    }

    impl LogView for &Memory {
        fn stream_version(&mut self, stream: &str) -> Result<u64, StoreError> {
            Ok(self.events.iter().filter(|e| e.stream == stream).map(|e| e.stream_version).max().unwrap_or(0))
        }
        fn chain(&mut self, tenant: &str) -> Result<(u64, [u8; 32]), StoreError> {
            Ok(self
                .events
                .iter()
                .rev()
                .find(|e| e.tenant.as_str() == tenant)
                .map(|e| (e.tenant_seq, ducha_events::chain::parse_hash(&e.hash).unwrap()))
                .unwrap_or((0, GENESIS)))
        }
        fn key(&mut self, tenant: &str, key: &str) -> Result<Option<(String, AppendOutcome)>, StoreError> {
            Ok(self.keys.get(&(tenant.to_owned(), key.to_owned())).cloned())
        }
        fn event_id_taken(&mut self, id: &str) -> Result<bool, StoreError> {
            Ok(self.events.iter().any(|e| e.event_id == id))
        }
    }

    fn recorded(req: &AppendRequest, r: Row<'_>) -> RecordedEvent {
        RecordedEvent {
            position: r.position,
            tenant_seq: r.tenant_seq,
            event_id: r.event.event_id.clone(),
            tenant: req.tenant.clone(),
            stream: r.stream.to_owned(),
            stream_version: r.stream_version,
            event_type: r.event.event_type.clone(),
            schema_version: r.event.schema_version,
            occurred_at: r.occurred_at,
            actor: r.event.actor.clone(),
            correlation_id: r.event.correlation_id.clone(),
            causation_id: r.causation_id.map(str::to_owned),
            payload: r.event.payload.clone(),
            prev_hash: hex::encode(r.prev_hash),
            hash: hex::encode(r.hash),
        }
    }

    /// Plans a batch on top of `log` and, as a backend does once it is durable, stores it.
    fn commit(log: &mut Memory, reqs: &[AppendRequest]) -> Vec<Result<AppendOutcome, StoreError>> {
        let (last, time) = log.events.last().map_or((0, String::new()), |e| (e.position, e.occurred_at.clone()));
        let mut planner = Planner::new(ChainHash::Sha256, last, time);
        let mut written = Vec::new();
        let mut keys = Vec::new();
        let mut results = Vec::new();
        for req in reqs {
            let mut view = &*log;
            let r = planner.request(&mut view, req, |row| {
                written.push(recorded(req, row));
                Ok(())
            });
            if let (Ok(o), Some(k)) = (&r, &req.idempotency_key)
                && !o.deduplicated
            {
                keys.push(((req.tenant.to_string(), k.clone()), (req.stream.clone(), *o)));
            }
            results.push(r);
        }
        log.events.extend(written);
        log.keys.extend(keys);
        results
    }

    #[test]
    fn a_batch_numbers_positions_sequences_versions_and_chains() {
        let (a, b) = (tenant("ta"), tenant("tb"));
        let mut keyed = request(&a, "k", ExpectedVersion::Any, vec![new_event("{}", at(0))]);
        keyed.idempotency_key = Some("key-1".into());
        let reqs = [
            request(&a, "s", ExpectedVersion::NoStream, vec![new_event("{}", at(0)), new_event("{}", at(0))]),
            request(&a, "s", ExpectedVersion::Exact(1), vec![new_event("{}", at(0))]),
            keyed.clone(),
            request(&b, "s", ExpectedVersion::Any, vec![new_event("{}", at(0))]),
            request(&a, "s", ExpectedVersion::Exact(2), vec![new_event("{}", at(0))]),
            keyed,
        ];
        let mut log = Memory::default();
        let results = commit(&mut log, &reqs);
        let summary: Vec<Option<(u64, u64, u64, bool)>> = results
            .iter()
            .map(|r| r.as_ref().ok().map(|o| (o.first_position, o.last_position, o.stream_version, o.deduplicated)))
            .collect();
        assert_eq!(
            summary,
            vec![
                Some((1, 2, 2, false)),
                None,
                Some((3, 3, 1, false)),
                Some((4, 4, 1, false)),
                Some((5, 5, 3, false)),
                Some((3, 3, 1, true)),
            ]
        );
        assert!(matches!(results[1], Err(StoreError::WrongExpectedVersion { actual: 2, .. })));
        let e = &log.events;
        assert_eq!(e.iter().map(|e| e.position).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
        assert_eq!(e.iter().map(|e| e.tenant_seq).collect::<Vec<_>>(), vec![1, 2, 3, 1, 4]);
        assert_eq!(e.iter().map(|e| e.stream_version).collect::<Vec<_>>(), vec![1, 2, 1, 1, 3]);
        assert_eq!(e[0].prev_hash, hex::encode(GENESIS));
        assert_eq!(e[1].prev_hash, e[0].hash);
        // The hashes are what the chain's own code computes, so what every backend stores.
        let chains = verify_chains(e);
        assert_eq!((chains.get("ta"), chains.get("tb")), (Some(&4), Some(&1)));
    }

    #[test]
    fn later_batches_continue_from_the_log() {
        let t = tenant("jd");
        let mut log = Memory::default();
        for round in 0..4 {
            let reqs: Vec<AppendRequest> = (0..3)
                .map(|k| request(&t, &format!("s{k}"), ExpectedVersion::Exact(round), vec![new_event("{}", at(0))]))
                .collect();
            assert!(commit(&mut log, &reqs).iter().all(Result::is_ok), "round {round}");
        }
        assert_eq!(log.events.len(), 12);
        assert_eq!(verify_chains(&log.events).get("jd"), Some(&12));
        assert_eq!((&log).stream_version("jd/s2").unwrap(), 4);
    }

    #[test]
    fn keys_and_event_ids_are_judged_on_the_log_and_the_batch() {
        let t = tenant("t1");
        let mut log = Memory::default();
        let first = new_event("{}", at(0));
        let mut keyed = request(&t, "s", ExpectedVersion::NoStream, vec![first.clone(), new_event("{}", at(0))]);
        keyed.idempotency_key = Some("cmd-1".into());
        let outcome = commit(&mut log, std::slice::from_ref(&keyed))[0].clone().unwrap();
        // A retry with a stale expected version and other events is answered with the first outcome.
        let mut retry = keyed.clone();
        retry.events = vec![new_event("{}", at(0))];
        assert_eq!(commit(&mut log, &[retry]), vec![Ok(AppendOutcome { deduplicated: true, ..outcome })]);
        let mut elsewhere = request(&t, "s2", ExpectedVersion::Any, vec![new_event("{}", at(0))]);
        elsewhere.idempotency_key = Some("cmd-1".into());
        assert!(
            matches!(&commit(&mut log, &[elsewhere])[0], Err(StoreError::IdempotencyKeyReused { stream, .. }) if stream == "t1/s")
        );
        let reused = request(&t, "s3", ExpectedVersion::Any, vec![new_event("{}", at(0)), first]);
        assert!(matches!(&commit(&mut log, &[reused])[0], Err(StoreError::InvalidAppend(m)) if m.contains("already")));
        let twice = new_event("{}", at(0));
        let a = request(&t, "s4", ExpectedVersion::Any, vec![twice.clone()]);
        let b = request(&t, "s5", ExpectedVersion::Any, vec![twice]);
        let r = commit(&mut log, &[a, b]);
        assert!(r[0].is_ok() && matches!(r[1], Err(StoreError::InvalidAppend(_))), "within one batch too");
        assert_eq!(log.events.len(), 3);
    }

    #[test]
    fn times_never_go_back_across_tenants() {
        let (a, b) = (tenant("ta"), tenant("tb"));
        let mut log = Memory::default();
        assert!(commit(&mut log, &[request(&a, "s", ExpectedVersion::Any, vec![new_event("{}", at(10))])])[0].is_ok());
        let reqs = [request(&b, "s", ExpectedVersion::Any, vec![new_event("{}", at(5)), new_event("{}", at(20))])];
        assert!(commit(&mut log, &reqs)[0].is_ok());
        assert_eq!(log.events[1].occurred_at, time::format(&at(10)), "raised to the log's last time");
        assert_eq!(log.events[2].occurred_at, time::format(&at(20)));
        // The raised time is what is hashed.
        assert_eq!(verify_chains(&log.events).get("tb"), Some(&2));
    }

    #[test]
    fn a_failed_row_leaves_the_planner_as_it_was() {
        let t = tenant("t1");
        let mut planner = Planner::new(ChainHash::Sha256, 7, String::new());
        let log = Memory::default();
        let req = request(&t, "s", ExpectedVersion::NoStream, vec![new_event("{}", at(0)), new_event("{}", at(1))]);
        let mut calls = 0;
        let r = planner.request(&mut &log, &req, |row| {
            calls += 1;
            if row.index == 1 { Err(StoreError::Io("disk full".into())) } else { Ok(()) }
        });
        assert_eq!((r, calls), (Err(StoreError::Io("disk full".into())), 2));
        assert_eq!((planner.last_position, planner.last_time.as_str()), (7, ""));
        // The same request again is planned from the same point, as if the first try never happened.
        let mut rows = Vec::new();
        let r = planner.request(&mut &log, &req, |row| {
            rows.push((row.position, row.stream_version));
            Ok(())
        });
        assert_eq!(r.map(|o| (o.first_position, o.last_position)), Ok((8, 9)));
        assert_eq!(rows, vec![(8, 1), (9, 2)]);
        let (mut chains, mut streams) = (HashMap::new(), HashMap::new());
        let (head, _) = planner.into_cache(&mut chains, &mut streams);
        assert_eq!((head, streams.get("t1/s"), chains.get("t1").map(|c| c.0)), (9, Some(&2), Some(2)));
    }
}
