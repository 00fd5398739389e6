//! The append path: one writer task per store. It takes whatever appends are queued (up to the
//! server's `MaxAppendSize`), decides them all from the index — idempotency keys, event ids,
//! expected versions, each tenant's chain, positions, times — and writes their events to the log in
//! one KurrentDB append whose expected revision is the head the index was at.
//!
//! That expected revision is the whole concurrency argument (`docs/ARCHITECTURE.md`): if any other
//! writer appended since, the server refuses and nothing is written; the writer reads what it
//! missed into the index and decides again. So an append's positions, tenant sequences, stream
//! versions and `prev_hash`es were computed from the log exactly as it stood when it was written:
//! no two writers can both extend a chain or a stream from the same point.
//!
//! A request refused for its expected version was judged on the index, which may be behind other
//! replicas; such a refusal is only final once the log is known not to have moved: because the
//! batch's own append went through at that revision, or because the server's head says so.

use super::Shared;
use super::codec::{Decoded, KeyMark, Outgoing, encode, expected_state, head_of};
use super::error::{append_err, is_too_large};
use super::index::Index;
use super::read::{catch_up, last_position};
use crate::store::plan::{LogView, Planner};
use crate::store::{AppendOutcome, AppendRequest, StoreError};
use ducha_events::chain::ChainHash;
use ducha_events::envelope::RecordedEvent;
use kurrentdb::{AppendToStreamOptions, CurrentRevision};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub type Reply = oneshot::Sender<Result<AppendOutcome, StoreError>>;
pub type Job = (AppendRequest, Reply);

const MAX_BATCH_REQUESTS: usize = 512;
/// Attempts of one batch against appends by other replicas (each conflict means one of them won).
const MAX_ATTEMPTS: u32 = 8;
/// What an event's envelope adds to its payload in a record, about (for the batch's size budget).
const ENVELOPE_BYTES: usize = 640;

/// Runs until the job channel closes, then returns after the last batch is answered.
pub async fn run(shared: Arc<Shared>, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let mut held: Option<Job> = None;
    loop {
        let first = match held.take() {
            Some(job) => job,
            None => match jobs.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let mut bytes = approx_bytes(&first.0);
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_REQUESTS {
            let Ok(job) = jobs.try_recv() else { break };
            let more = approx_bytes(&job.0);
            if bytes + more > shared.max_append_bytes {
                held = Some(job);
                break;
            }
            bytes += more;
            batch.push(job);
        }
        let (reqs, replies): (Vec<AppendRequest>, Vec<Reply>) = batch.into_iter().unzip();
        let results = commit(&shared, &reqs).await;
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

/// About what a request's events weigh against the server's `MaxAppendSize`.
fn approx_bytes(req: &AppendRequest) -> usize {
    req.events
        .iter()
        .map(|e| {
            e.payload.len()
                + e.event_type.len() * 2
                + e.event_id.len()
                + e.correlation_id.len()
                + e.causation_id.as_ref().map_or(0, String::len)
                + req.stream.len()
                + req.tenant.as_str().len()
                + ENVELOPE_BYTES
        })
        .sum()
}

/// Commits a batch; one result per request, in order. A batch the server finds too large is sent
/// again one request at a time.
async fn commit(shared: &Shared, reqs: &[AppendRequest]) -> Vec<Result<AppendOutcome, StoreError>> {
    let all: Vec<&AppendRequest> = reqs.iter().collect();
    match commit_once(shared, &all).await {
        Ok(results) => results,
        Err(TooLarge) => {
            let mut out = Vec::with_capacity(reqs.len());
            for req in reqs {
                match commit_once(shared, &[req]).await {
                    Ok(mut r) => out.append(&mut r),
                    // Alone and still too large: `commit_once` answers that itself.
                    Err(TooLarge) => out.push(Err(StoreError::InvalidAppend("the append is too large".into()))),
                }
            }
            out
        }
    }
}

/// The server refused a batch of several requests for its size.
struct TooLarge;

async fn commit_once(
    shared: &Shared,
    reqs: &[&AppendRequest],
) -> Result<Vec<Result<AppendOutcome, StoreError>>, TooLarge> {
    let every = |e: StoreError| (0..reqs.len()).map(|_| Err(e.clone())).collect::<Vec<_>>();
    for attempt in 1..=MAX_ATTEMPTS {
        let plan = plan(&shared.index(), reqs);
        if plan.writes.is_empty() {
            if !plan.unproven_refusal {
                return Ok(plan.results);
            }
            // Refusals judged on the index stand only if the log has not moved past it.
            match last_position(shared).await {
                Ok(head) if head == plan.base => return Ok(plan.results),
                Ok(_) => {
                    if let Err(e) = catch_up(shared).await {
                        return Ok(every(e));
                    }
                    continue;
                }
                Err(e) => return Ok(every(e)),
            }
        }
        let records = match plan.writes.iter().map(encode).collect::<Result<Vec<Outgoing>, _>>() {
            Ok(r) => r,
            Err(e) => return Ok(every(e)),
        };
        let events: Vec<kurrentdb::EventData> = records.into_iter().map(Outgoing::into_event_data).collect();
        let options = AppendToStreamOptions::default().stream_state(expected_state(plan.base)).requires_leader(true);
        let (generation, client) = shared.conn.client();
        match client.append_to_stream(shared.names.log(), &options, events).await {
            Ok(written) => {
                let last = head_of(CurrentRevision::Current(written.next_expected_version));
                let planned = plan.base + plan.writes.len() as u64;
                if last != planned {
                    // Cannot happen with an exact expected revision; if it does, believe the server:
                    // the index learns the log by reading it.
                    tracing::error!(last, planned, "KurrentDB put an append elsewhere than expected");
                    return Ok(every(StoreError::Io(format!(
                        "KurrentDB wrote the append ending at position {last}, not {planned}; the index re-reads the log"
                    ))));
                }
                if let Err(e) = shared.apply(&plan.writes) {
                    return Ok(every(e));
                }
                return Ok(plan.results);
            }
            Err(kurrentdb::Error::WrongExpectedVersion { .. }) => {
                if let Err(e) = catch_up(shared).await {
                    return Ok(every(e));
                }
            }
            Err(kurrentdb::Error::NotLeaderException(leader)) if attempt < MAX_ATTEMPTS => {
                // Refused, nothing written; the client is reconnecting to the leader.
                tracing::info!(leader = %format!("{}:{}", leader.host, leader.port), "KurrentDB: not the leader; retrying there");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
            Err(e) if is_too_large(&e) && reqs.len() > 1 => return Err(TooLarge),
            Err(e) => {
                shared.conn.failed(generation, &e);
                return Ok(every(append_err(&e)));
            }
        }
    }
    Ok(every(StoreError::Unavailable(
        "追加反复与其他副本的写入冲突，请重试 / the append kept conflicting with other writers: retry".into(),
    )))
}

/// A batch decided from the index.
#[derive(Debug, Default)]
pub struct Plan {
    /// The index's head the plan was made on: the log must still end there for it to be written.
    pub base: u64,
    pub results: Vec<Result<AppendOutcome, StoreError>>,
    pub writes: Vec<Decoded>,
    /// Some request was refused for its expected version (see the module's documentation).
    pub unproven_refusal: bool,
}

/// The index answers every question a plan asks, event ids included (KurrentDB has no unique index).
impl LogView for &Index {
    fn stream_version(&mut self, stream: &str) -> Result<u64, StoreError> {
        Ok(Index::stream_version(self, stream))
    }

    fn chain(&mut self, tenant: &str) -> Result<(u64, [u8; 32]), StoreError> {
        Ok(Index::chain(self, tenant))
    }

    fn key(&mut self, tenant: &str, key: &str) -> Result<Option<(String, AppendOutcome)>, StoreError> {
        Ok(Index::key(self, tenant, key).map(|row| (row.stream.clone(), row.outcome)))
    }

    fn event_id_taken(&mut self, id: &str) -> Result<bool, StoreError> {
        Ok(self.has_event_id(id))
    }
}

/// Decides every request in order, later ones seeing what earlier ones write. Always SHA-256 (see
/// `KurrentStore::chain_hash`).
pub fn plan(index: &Index, reqs: &[&AppendRequest]) -> Plan {
    let mut p = Plan { base: index.head(), ..Plan::default() };
    let mut planner = Planner::new(ChainHash::Sha256, index.head(), index.last_time().to_owned());
    let mut view = index;
    for req in reqs {
        let writes = &mut p.writes;
        let result = planner.request(&mut view, req, |row| {
            let e = row.event;
            let key = match (&req.idempotency_key, row.index) {
                (Some(key), 0) => Some(KeyMark { key: key.clone(), events: req.events.len() as u64 }),
                _ => None,
            };
            writes.push(Decoded {
                event: RecordedEvent {
                    position: row.position,
                    tenant_seq: row.tenant_seq,
                    event_id: e.event_id.clone(),
                    tenant: req.tenant.clone(),
                    stream: req.stream.clone(),
                    stream_version: row.stream_version,
                    event_type: e.event_type.clone(),
                    schema_version: e.schema_version,
                    occurred_at: row.occurred_at,
                    actor: e.actor.clone(),
                    correlation_id: e.correlation_id.clone(),
                    causation_id: row.causation_id.map(str::to_owned),
                    payload: e.payload.clone(),
                    prev_hash: hex::encode(row.prev_hash),
                    hash: hex::encode(row.hash),
                },
                key,
            });
            Ok(())
        });
        if matches!(result, Err(StoreError::WrongExpectedVersion { .. })) {
            p.unproven_refusal = true;
        }
        p.results.push(result);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ExpectedVersion;
    use crate::store::conformance::{new_event, request, tenant, verify_chains};
    use ducha_events::time;

    fn at(minute: i64) -> ducha_events::time::Timestamp {
        time::parse("2023-03-01T08:00:00Z").unwrap() + chrono::Duration::minutes(minute)
    }

    /// Plans and applies, as a successful append does.
    fn commit(index: &mut Index, reqs: &[AppendRequest]) -> Vec<Result<AppendOutcome, StoreError>> {
        let refs: Vec<&AppendRequest> = reqs.iter().collect();
        let p = plan(index, &refs);
        for d in &p.writes {
            assert_eq!(index.apply(d).ok(), Some(true), "a plan continues the index");
        }
        p.results
    }

    fn log(index_events: &[Decoded]) -> Vec<RecordedEvent> {
        index_events.iter().map(|d| d.event.clone()).collect()
    }

    #[test]
    fn a_plan_numbers_chains_versions_and_positions_like_every_store() {
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
        let refs: Vec<&AppendRequest> = reqs.iter().collect();
        let index = Index::default();
        let p = plan(&index, &refs);
        let firsts: Vec<Option<(u64, u64, u64, bool)>> = p
            .results
            .iter()
            .map(|r| r.as_ref().ok().map(|o| (o.first_position, o.last_position, o.stream_version, o.deduplicated)))
            .collect();
        assert_eq!(
            firsts,
            vec![
                Some((1, 2, 2, false)),
                None,
                Some((3, 3, 1, false)),
                Some((4, 4, 1, false)),
                Some((5, 5, 3, false)),
                Some((3, 3, 1, true)),
            ]
        );
        assert!(matches!(p.results[1], Err(StoreError::WrongExpectedVersion { actual: 2, .. })));
        assert!(p.unproven_refusal);
        let events = log(&p.writes);
        assert_eq!(events.iter().map(|e| e.position).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
        assert_eq!(events.iter().map(|e| e.tenant_seq).collect::<Vec<_>>(), vec![1, 2, 3, 1, 4]);
        assert_eq!(events.iter().map(|e| e.stream_version).collect::<Vec<_>>(), vec![1, 2, 1, 1, 3]);
        assert_eq!(p.writes[2].key, Some(KeyMark { key: "key-1".into(), events: 1 }));
        assert!(p.writes.iter().enumerate().all(|(i, d)| i == 2 || d.key.is_none()));
        // The hashes are exactly what the chain's own code computes (and so what every backend stores).
        assert_eq!(verify_chains(&events).get("ta"), Some(&4));
    }

    #[test]
    fn later_batches_continue_from_the_index() {
        let t = tenant("jd");
        let mut index = Index::default();
        let mut all = Vec::new();
        for round in 0..4 {
            let reqs: Vec<AppendRequest> = (0..3)
                .map(|k| request(&t, &format!("s{k}"), ExpectedVersion::Exact(round), vec![new_event("{}", at(0))]))
                .collect();
            let refs: Vec<&AppendRequest> = reqs.iter().collect();
            let p = plan(&index, &refs);
            assert!(p.results.iter().all(Result::is_ok), "round {round}");
            for d in &p.writes {
                index.apply(d).unwrap();
            }
            all.extend(log(&p.writes));
        }
        assert_eq!(index.head(), 12);
        assert_eq!(verify_chains(&all).get("jd"), Some(&12));
        assert_eq!(index.stream_version("jd/s2"), 4);
    }

    #[test]
    fn keys_and_event_ids_are_judged_on_the_whole_log() {
        let t = tenant("t1");
        let mut index = Index::default();
        let first = new_event("{}", at(0));
        let mut keyed = request(&t, "s", ExpectedVersion::NoStream, vec![first.clone(), new_event("{}", at(0))]);
        keyed.idempotency_key = Some("cmd-1".into());
        let r = commit(&mut index, std::slice::from_ref(&keyed));
        let outcome = r[0].clone().unwrap();
        // A retry with a stale expected version and other events is answered with the first outcome.
        let mut retry = keyed.clone();
        retry.events = vec![new_event("{}", at(0))];
        assert_eq!(commit(&mut index, &[retry]), vec![Ok(AppendOutcome { deduplicated: true, ..outcome })]);
        let mut elsewhere = request(&t, "s2", ExpectedVersion::Any, vec![new_event("{}", at(0))]);
        elsewhere.idempotency_key = Some("cmd-1".into());
        assert!(
            matches!(&commit(&mut index, &[elsewhere])[0], Err(StoreError::IdempotencyKeyReused { stream, .. }) if stream == "t1/s")
        );
        let reused = request(&t, "s3", ExpectedVersion::Any, vec![new_event("{}", at(0)), first]);
        assert!(
            matches!(&commit(&mut index, &[reused])[0], Err(StoreError::InvalidAppend(m)) if m.contains("already"))
        );
        let twice = new_event("{}", at(0));
        let a = request(&t, "s4", ExpectedVersion::Any, vec![twice.clone()]);
        let b = request(&t, "s5", ExpectedVersion::Any, vec![twice]);
        let r = commit(&mut index, &[a, b]);
        assert!(r[0].is_ok() && matches!(r[1], Err(StoreError::InvalidAppend(_))), "within one batch too");
        assert_eq!(index.head(), 3);
    }

    #[test]
    fn times_never_go_back_across_tenants() {
        let (a, b) = (tenant("ta"), tenant("tb"));
        let mut index = Index::default();
        let p1 = {
            let reqs = [request(&a, "s", ExpectedVersion::Any, vec![new_event("{}", at(10))])];
            commit(&mut index, &reqs)
        };
        assert!(p1[0].is_ok());
        let reqs = [request(&b, "s", ExpectedVersion::Any, vec![new_event("{}", at(5)), new_event("{}", at(20))])];
        let refs: Vec<&AppendRequest> = reqs.iter().collect();
        let p = plan(&index, &refs);
        assert_eq!(p.writes[0].event.occurred_at, time::format(&at(10)), "raised to the log's last time");
        assert_eq!(p.writes[1].event.occurred_at, time::format(&at(20)));
        // The raised time is what is hashed.
        assert_eq!(verify_chains(&log(&p.writes)).get("tb"), Some(&2));
    }

    #[test]
    fn only_expected_version_refusals_need_proof() {
        let t = tenant("t1");
        let mut index = Index::default();
        commit(&mut index, &[request(&t, "s", ExpectedVersion::Any, vec![new_event("{}", at(0))])]);
        let stale = [request(&t, "s", ExpectedVersion::Exact(5), vec![new_event("{}", at(0))])];
        let refs: Vec<&AppendRequest> = stale.iter().collect();
        let p = plan(&index, &refs);
        assert!(p.writes.is_empty() && p.unproven_refusal && p.base == 1);
        let mut keyed = request(&t, "s", ExpectedVersion::Any, vec![new_event("{}", at(0))]);
        keyed.idempotency_key = Some("k".into());
        commit(&mut index, std::slice::from_ref(&keyed));
        let refs = [&keyed];
        let p = plan(&index, &refs);
        assert!(p.writes.is_empty() && !p.unproven_refusal, "a known key is final");
    }

    #[test]
    fn a_batch_is_sized_by_its_payloads() {
        let t = tenant("t1");
        let small = request(&t, "s", ExpectedVersion::Any, vec![new_event("{}", at(0))]);
        let big = request(&t, "s", ExpectedVersion::Any, vec![new_event(&"x".repeat(100_000), at(0)); 3]);
        assert!(approx_bytes(&small) < 1000);
        assert!(approx_bytes(&big) > 300_000);
    }
}
