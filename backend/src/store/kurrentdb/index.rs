//! What a replica knows about the log, in memory: the lookups that KurrentDB cannot answer because
//! Ducha's streams, tenants, idempotency keys and event ids live inside the records of one stream.
//!
//! The index is a fold of the log. It is built by reading the log at open, then kept current by the
//! writer (its own appends, once the server has accepted them) and by the follower (everyone's),
//! both through [`Index::apply`], which takes only the next position and checks that the record
//! continues what is known: tenant sequence, `prev_hash`, stream version, time, unique event id and
//! idempotency key. A log that breaks one of these was not written by Ducha's writer (or was
//! tampered with): the index stops there and says so, rather than let a writer extend a chain from
//! a state that does not hold.
//!
//! Memory: about 50–80 bytes per event (its position in its stream's and its tenant's lists, its
//! time, its id, with the collections' slack) plus the stream names and idempotency keys: ~50–80 MB
//! for a million events, per replica (estimated, not measured).

use super::codec::Decoded;
use crate::store::{AppendOutcome, StoreError, TenantHead, Upto};
use ducha_events::chain::{GENESIS, parse_hash};
use ducha_events::ids::TenantId;
use ducha_events::time::{self, Timestamp};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A tenant's chain: the positions of its events (tenant_seq N is `positions[N - 1]`) and its head.
#[derive(Debug, Clone)]
struct Chain {
    tenant: TenantId,
    positions: Vec<u64>,
    head: [u8; 32],
}

/// The first answer to an append made under an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub stream: String,
    pub outcome: AppendOutcome,
}

#[derive(Debug, Default)]
pub struct Index {
    head: u64,
    /// `occurred_at` of the head event, as stored ("" when the log is empty).
    last_time: String,
    /// Per position (index = position − 1): `occurred_at` in microseconds, never decreasing.
    times: Vec<i64>,
    /// Per Ducha stream: the positions of its events (stream_version N is `[N - 1]`).
    streams: HashMap<Box<str>, Vec<u64>>,
    chains: BTreeMap<Box<str>, Chain>,
    /// Per tenant, per idempotency key.
    keys: HashMap<Box<str>, HashMap<Box<str>, KeyRow>>,
    /// Event ids that are canonical UUIDs (nearly all), as 16 bytes; the others as text.
    uuid_ids: HashSet<u128>,
    other_ids: HashSet<Box<str>>,
}

/// A canonical (lower-case, hyphenated) UUID as a number; other spellings stay text, so that two
/// different ids never share a key.
fn uuid_key(id: &str) -> Option<u128> {
    uuid::Uuid::parse_str(id).ok().filter(|u| u.hyphenated().to_string() == id).map(|u| u.as_u128())
}

impl Index {
    /// The last position applied (0 when the log is empty).
    pub fn head(&self) -> u64 {
        self.head
    }

    pub fn last_time(&self) -> &str {
        &self.last_time
    }

    pub fn stream_version(&self, stream: &str) -> u64 {
        self.streams.get(stream).map_or(0, |p| p.len() as u64)
    }

    /// A tenant's (last tenant_seq, head hash); `(0, GENESIS)` for a tenant without events.
    pub fn chain(&self, tenant: &str) -> (u64, [u8; 32]) {
        self.chains.get(tenant).map_or((0, GENESIS), |c| (c.positions.len() as u64, c.head))
    }

    pub fn key(&self, tenant: &str, key: &str) -> Option<&KeyRow> {
        self.keys.get(tenant)?.get(key)
    }

    pub fn has_event_id(&self, id: &str) -> bool {
        match uuid_key(id) {
            Some(k) => self.uuid_ids.contains(&k),
            None => self.other_ids.contains(id),
        }
    }

    /// Positions of a stream's events with `stream_version > after_version`, at most `limit`, up to `upto`.
    pub fn stream_positions(&self, stream: &str, after_version: u64, limit: usize, upto: Upto) -> Vec<u64> {
        let Some(positions) = self.streams.get(stream) else { return Vec::new() };
        let start = usize::try_from(after_version).unwrap_or(usize::MAX).min(positions.len());
        bounded(&positions[start..], limit, upto)
    }

    /// Positions of a tenant's events after `after_position`, at most `limit`, up to `upto`.
    pub fn tenant_positions(&self, tenant: &str, after_position: u64, limit: usize, upto: Upto) -> Vec<u64> {
        let Some(chain) = self.chains.get(tenant) else { return Vec::new() };
        let start = chain.positions.partition_point(|p| *p <= after_position);
        bounded(&chain.positions[start..], limit, upto)
    }

    /// The last position whose `occurred_at` is at or before `at` (0 if none). Times never decrease
    /// along the log, so this is a binary search.
    pub fn position_at(&self, at: Timestamp) -> u64 {
        let at = at.timestamp_micros();
        self.times.partition_point(|t| *t <= at) as u64
    }

    /// Every tenant with events and its chain head, by tenant id.
    pub fn tenants(&self) -> Vec<TenantHead> {
        self.chains
            .values()
            .map(|c| TenantHead {
                tenant: c.tenant.clone(),
                events: c.positions.len() as u64,
                last_position: c.positions.last().copied().unwrap_or(0),
                head_hash: hex::encode(c.head),
            })
            .collect()
    }

    /// Takes the next event of the log. `Ok(false)`: already known (positions at or below the head
    /// are skipped, so the writer and the follower may both offer the same event).
    pub fn apply(&mut self, d: &Decoded) -> Result<bool, StoreError> {
        let e = &d.event;
        if e.position <= self.head {
            return Ok(false);
        }
        if e.position != self.head + 1 {
            return Err(StoreError::Io(format!(
                "internal: the index is at position {} and was offered position {}",
                self.head, e.position
            )));
        }
        let corrupt = |what: String| {
            StoreError::Corrupt(format!(
                "log event {} at position {} (tenant {}, stream {}): {what}",
                e.event_id, e.position, e.tenant, e.stream
            ))
        };
        let at = time::parse(&e.occurred_at)
            .map_err(|err| corrupt(format!("invalid occurred_at {:?}: {err}", e.occurred_at)))?;
        if e.occurred_at < self.last_time {
            return Err(corrupt(format!("occurred_at {} goes back from {}", e.occurred_at, self.last_time)));
        }
        let (seq, prev) = self.chain(e.tenant.as_str());
        if e.tenant_seq != seq + 1 {
            return Err(corrupt(format!("tenant_seq {} does not follow {seq}", e.tenant_seq)));
        }
        if e.prev_hash != hex::encode(prev) {
            return Err(corrupt("prev_hash is not the hash of the tenant's previous event".into()));
        }
        let hash = parse_hash(&e.hash).ok_or_else(|| corrupt(format!("invalid hash {:?}", e.hash)))?;
        let version = self.stream_version(&e.stream);
        if e.stream_version != version + 1 {
            return Err(corrupt(format!("stream_version {} does not follow {version}", e.stream_version)));
        }
        if self.has_event_id(&e.event_id) {
            return Err(corrupt("its event id is already in the log".into()));
        }
        if let Some(mark) = &d.key
            && self.key(e.tenant.as_str(), &mark.key).is_some()
        {
            return Err(corrupt(format!("idempotency key {:?} was already used", mark.key)));
        }

        // Checked: now change.
        self.head = e.position;
        self.last_time.clone_from(&e.occurred_at);
        self.times.push(at.timestamp_micros());
        self.streams.entry(e.stream.as_str().into()).or_default().push(e.position);
        let chain = self.chains.entry(e.tenant.as_str().into()).or_insert_with(|| Chain {
            tenant: e.tenant.clone(),
            positions: Vec::new(),
            head: GENESIS,
        });
        chain.positions.push(e.position);
        chain.head = hash;
        match uuid_key(&e.event_id) {
            Some(k) => self.uuid_ids.insert(k),
            None => self.other_ids.insert(e.event_id.as_str().into()),
        };
        if let Some(mark) = &d.key {
            let row = KeyRow {
                stream: e.stream.clone(),
                outcome: AppendOutcome {
                    first_position: e.position,
                    last_position: e.position + mark.events - 1,
                    stream_version: e.stream_version + mark.events - 1,
                    deduplicated: false,
                },
            };
            self.keys.entry(e.tenant.as_str().into()).or_default().insert(mark.key.as_str().into(), row);
        }
        Ok(true)
    }
}

fn bounded(positions: &[u64], limit: usize, upto: Upto) -> Vec<u64> {
    let end = positions.partition_point(|p| *p <= upto.limit());
    positions[..end].iter().take(limit).copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::kurrentdb::codec::KeyMark;
    use ducha_events::authz::Role;
    use ducha_events::chain::ChainFields;
    use ducha_events::envelope::{ActorRef, RecordedEvent};
    use ducha_events::ids::UserId;

    /// Builds a well-formed next event of `index` (as the writer would).
    fn next(index: &Index, tenant: &str, stream: &str, minute: u32) -> Decoded {
        let (seq, prev) = index.chain(tenant);
        let mut e = RecordedEvent {
            position: index.head() + 1,
            tenant_seq: seq + 1,
            event_id: uuid::Uuid::now_v7().to_string(),
            tenant: TenantId::parse(tenant).unwrap(),
            stream: format!("{tenant}/{stream}"),
            stream_version: index.stream_version(&format!("{tenant}/{stream}")) + 1,
            event_type: "TestEvent".into(),
            schema_version: 1,
            occurred_at: format!("2023-03-01T08:{minute:02}:00.000000Z"),
            actor: ActorRef { user_id: UserId::parse("u-1").unwrap(), role: Role::Inspector },
            correlation_id: "c".into(),
            causation_id: None,
            payload: "{}".into(),
            prev_hash: hex::encode(prev),
            hash: String::new(),
        };
        e.hash = hex::encode(ChainFields::of(&e).hash(&prev));
        Decoded { event: e, key: None }
    }

    fn apply(index: &mut Index, tenant: &str, stream: &str, minute: u32) -> Decoded {
        let d = next(index, tenant, stream, minute);
        assert_eq!(index.apply(&d).ok(), Some(true));
        d
    }

    #[test]
    fn lookups_follow_what_was_applied() {
        let mut ix = Index::default();
        assert_eq!((ix.head(), ix.stream_version("a/s"), ix.chain("a")), (0, 0, (0, GENESIS)));
        let first = apply(&mut ix, "a", "s", 0);
        apply(&mut ix, "b", "s", 10);
        apply(&mut ix, "a", "s", 10);
        let last = apply(&mut ix, "a", "t", 20);
        assert_eq!(ix.head(), 4);
        assert_eq!(ix.stream_version("a/s"), 2);
        assert_eq!(ix.stream_version("b/s"), 1);
        assert_eq!(ix.chain("a").0, 3);
        assert_eq!(hex::encode(ix.chain("a").1), last.event.hash);
        assert!(ix.has_event_id(&first.event.event_id));
        assert!(!ix.has_event_id(&uuid::Uuid::now_v7().to_string()));
        assert_eq!(ix.stream_positions("a/s", 0, 10, Upto::Head), vec![1, 3]);
        assert_eq!(ix.stream_positions("a/s", 1, 10, Upto::Head), vec![3]);
        assert_eq!(ix.stream_positions("a/s", 0, 10, Upto::Position(2)), vec![1]);
        assert_eq!(ix.stream_positions("a/s", 5, 10, Upto::Head), Vec::<u64>::new());
        assert_eq!(ix.stream_positions("a/none", 0, 10, Upto::Head), Vec::<u64>::new());
        assert_eq!(ix.tenant_positions("a", 0, 2, Upto::Head), vec![1, 3]);
        assert_eq!(ix.tenant_positions("a", 1, 10, Upto::Head), vec![3, 4]);
        assert_eq!(ix.tenant_positions("a", 0, 10, Upto::Position(3)), vec![1, 3]);
        assert_eq!(ix.tenant_positions("a", 0, 0, Upto::Head), Vec::<u64>::new());
        let heads = ix.tenants();
        assert_eq!(
            heads.iter().map(|h| (h.tenant.as_str(), h.events, h.last_position)).collect::<Vec<_>>(),
            vec![("a", 3, 4), ("b", 1, 2)]
        );
    }

    #[test]
    fn position_at_is_the_last_event_at_or_before_a_time() {
        let mut ix = Index::default();
        for m in [0, 10, 10, 20] {
            apply(&mut ix, "a", "s", m);
        }
        let at = |m: i64| time::parse("2023-03-01T08:00:00Z").unwrap() + chrono::Duration::minutes(m);
        assert_eq!(ix.position_at(at(-1)), 0);
        assert_eq!(ix.position_at(at(0)), 1);
        assert_eq!(ix.position_at(at(5)), 1);
        assert_eq!(ix.position_at(at(10)), 3, "the last of equal times");
        assert_eq!(ix.position_at(at(10) + chrono::Duration::microseconds(1)), 3);
        assert_eq!(ix.position_at(at(99)), 4);
    }

    #[test]
    fn keys_remember_the_whole_append() {
        let mut ix = Index::default();
        apply(&mut ix, "a", "other", 0);
        let mut d = next(&ix, "a", "s", 0);
        d.key = Some(KeyMark { key: "cmd-1".into(), events: 3 });
        ix.apply(&d).unwrap();
        let row = ix.key("a", "cmd-1").cloned();
        assert_eq!(
            row,
            Some(KeyRow {
                stream: "a/s".into(),
                outcome: AppendOutcome { first_position: 2, last_position: 4, stream_version: 3, deduplicated: false },
            })
        );
        assert!(ix.key("b", "cmd-1").is_none(), "keys are per tenant");
    }

    #[test]
    fn the_same_event_twice_is_skipped_and_a_gap_is_an_error() {
        let mut ix = Index::default();
        let d = apply(&mut ix, "a", "s", 0);
        assert_eq!(ix.apply(&d).ok(), Some(false));
        let mut far = next(&ix, "a", "s", 0);
        far.event.position = 5;
        assert!(matches!(ix.apply(&far), Err(StoreError::Io(_))));
        assert_eq!(ix.head(), 1);
    }

    #[test]
    fn a_record_that_does_not_continue_the_log_is_refused_and_changes_nothing() {
        let mut ix = Index::default();
        let first = apply(&mut ix, "a", "s", 30);
        type Tamper = Box<dyn Fn(&mut Decoded)>;
        let tamper: Vec<(&str, Tamper)> = vec![
            ("seq", Box::new(|d| d.event.tenant_seq += 1)),
            ("prev", Box::new(|d| d.event.prev_hash = hex::encode([7u8; 32]))),
            ("hash", Box::new(|d| d.event.hash = "nope".into())),
            ("version", Box::new(|d| d.event.stream_version = 5)),
            ("time", Box::new(|d| d.event.occurred_at = "2023-03-01T08:29:59.000000Z".into())),
            ("bad time", Box::new(|d| d.event.occurred_at = "yesterday".into())),
        ];
        let mut dup_id = next(&ix, "a", "s", 30);
        dup_id.event.event_id = first.event.event_id.clone();
        assert!(matches!(ix.apply(&dup_id), Err(StoreError::Corrupt(_))), "a repeated event id");
        for (what, f) in tamper {
            let mut d = next(&ix, "a", "s", 30);
            f(&mut d);
            assert!(matches!(ix.apply(&d), Err(StoreError::Corrupt(_))), "{what}");
        }
        let mut keyed = next(&ix, "a", "s", 30);
        keyed.key = Some(KeyMark { key: "k".into(), events: 1 });
        ix.apply(&keyed).unwrap();
        let mut again = next(&ix, "a", "s", 30);
        again.key = Some(KeyMark { key: "k".into(), events: 1 });
        assert!(matches!(ix.apply(&again), Err(StoreError::Corrupt(_))), "a key used twice");
        assert_eq!((ix.head(), ix.stream_version("a/s"), ix.chain("a").0), (2, 2, 2));
    }

    #[test]
    fn event_ids_keep_their_spelling() {
        let mut ix = Index::default();
        let u = uuid::Uuid::now_v7();
        let mut d = next(&ix, "a", "s", 0);
        d.event.event_id = u.simple().to_string();
        d.event.hash = hex::encode(ChainFields::of(&d.event).hash(&GENESIS));
        ix.apply(&d).unwrap();
        assert!(ix.has_event_id(&u.simple().to_string()));
        assert!(!ix.has_event_id(&u.to_string()), "another spelling is another id");
    }
}
