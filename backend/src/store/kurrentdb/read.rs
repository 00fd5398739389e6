//! Reading the log: ranges of positions, scattered positions (a Ducha stream's or a tenant's events,
//! found in the index), the head, catching the index up, and following the log with a catch-up
//! subscription.
//!
//! Every call asks the leader (`requires_leader`): a follower may be behind the index this replica
//! has built from what the leader accepted, and would answer with fewer events than exist.

use super::Shared;
use super::codec::{Decoded, Incoming, decode, position_of, revision_of};
use super::error::kdb_err;
use crate::store::StoreError;
use ducha_events::envelope::RecordedEvent;
use futures_util::{StreamExt, TryStreamExt};
use kurrentdb::{ReadStreamOptions, StreamPosition, SubscribeToStreamOptions};
use std::sync::Arc;
use std::time::Duration;

/// Events per read call (each a gRPC stream of its own, with its own deadline).
pub const PAGE: u64 = 1000;
const READ_DEADLINE: Duration = Duration::from_secs(60);
/// Scattered positions this close together are read as one range, the ones between thrown away.
const MAX_GAP: u64 = 32;
const PARALLEL_READS: usize = 8;
/// The follower's pause after its subscription drops, doubling up to the maximum while it keeps failing.
const RESUBSCRIBE_PAUSE: Duration = Duration::from_millis(250);
const MAX_RESUBSCRIBE_PAUSE: Duration = Duration::from_secs(30);

/// Raw records of any stream: from `from`, `count` at most, forwards or backwards. A stream that
/// does not exist has none.
pub async fn read_records(
    shared: &Shared,
    stream: &str,
    from: StreamPosition<u64>,
    backwards: bool,
    count: u64,
) -> Result<Vec<kurrentdb::RecordedEvent>, StoreError> {
    let (generation, client) = shared.conn.client();
    let mut options = ReadStreamOptions::default()
        .position(from)
        .max_count(usize::try_from(count).unwrap_or(usize::MAX))
        .requires_leader(true)
        .deadline(READ_DEADLINE);
    options = if backwards { options.backwards() } else { options.forwards() };
    let result: Result<Vec<kurrentdb::RecordedEvent>, kurrentdb::Error> = async {
        let mut out = Vec::new();
        let mut read = client.read_stream(stream, &options).await?;
        while let Some(resolved) = read.next().await? {
            if let Some(event) = resolved.event {
                out.push(event);
            }
        }
        Ok(out)
    }
    .await;
    match result {
        Ok(events) => Ok(events),
        Err(kurrentdb::Error::ResourceNotFound) => Ok(Vec::new()),
        Err(e) => {
            shared.conn.failed(generation, &e);
            Err(kdb_err(&e))
        }
    }
}

/// Events of the log from position `first`, at most `count`, in order.
pub async fn read_range(shared: &Shared, first: u64, count: u64) -> Result<Vec<Decoded>, StoreError> {
    let mut out = Vec::new();
    let mut next = first.max(1);
    let mut left = count;
    while left > 0 {
        let want = left.min(PAGE);
        let Some(from) = revision_of(next) else { break };
        let page = read_records(shared, shared.names.log(), StreamPosition::Position(from), false, want).await?;
        let got = page.len() as u64;
        for record in &page {
            let d = decode(Incoming::from(record))?;
            if d.event.position != next {
                return Err(StoreError::Corrupt(format!(
                    "the log answered position {} where {next} was expected",
                    d.event.position
                )));
            }
            next += 1;
            out.push(d);
        }
        if got < want {
            break;
        }
        left -= got;
    }
    Ok(out)
}

/// The log's last position on the server (0 when there is no log yet).
pub async fn last_position(shared: &Shared) -> Result<u64, StoreError> {
    let last = read_records(shared, shared.names.log(), StreamPosition::End, true, 1).await?;
    match last.first() {
        Some(r) => position_of(r.revision),
        None => Ok(0),
    }
}

/// Ranges `(first position, count)` covering `positions` (ascending): neighbours at most `max_gap`
/// apart share a range, so a dense tenant is a few long reads rather than one read per event.
pub fn coalesce(positions: &[u64], max_gap: u64) -> Vec<(u64, u64)> {
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for &p in positions {
        match ranges.last_mut() {
            Some((first, count)) if p > *first + *count - 1 && p - (*first + *count - 1) <= max_gap => {
                *count = p - *first + 1;
            }
            _ => ranges.push((p, 1)),
        }
    }
    ranges
}

/// The events at `positions` (ascending, all known to the index), in that order.
pub async fn fetch(shared: &Shared, positions: &[u64]) -> Result<Vec<RecordedEvent>, StoreError> {
    if positions.is_empty() {
        return Ok(Vec::new());
    }
    let pages: Vec<Vec<Decoded>> = futures_util::stream::iter(coalesce(positions, MAX_GAP))
        .map(|(first, count)| read_range(shared, first, count))
        .buffered(PARALLEL_READS)
        .try_collect()
        .await?;
    let mut wanted = positions.iter().copied().peekable();
    let mut out = Vec::with_capacity(positions.len());
    for d in pages.into_iter().flatten() {
        if wanted.peek() == Some(&d.event.position) {
            wanted.next();
            out.push(d.event);
        }
    }
    match wanted.next() {
        None => Ok(out),
        Some(missing) => Err(StoreError::Unavailable(format!(
            "KurrentDB 未返回日志位置 {missing} 的事件（所连节点落后？）/ KurrentDB did not return the event at log \
             position {missing}, which this replica has seen (a node behind the leader?): retry"
        ))),
    }
}

/// Reads whatever the index has not seen yet and applies it; returns the index's head. One catch-up
/// runs at a time; the others wait for it and then find little or nothing left to read.
pub async fn catch_up(shared: &Shared) -> Result<u64, StoreError> {
    let _one_at_a_time = shared.catching_up.lock().await;
    loop {
        let head = shared.index().head();
        let page = read_range(shared, head + 1, PAGE).await?;
        let full = page.len() as u64 == PAGE;
        shared.apply(&page)?;
        if !full {
            return Ok(shared.index().head());
        }
    }
}

/// The log's head as the server has it now, with the index caught up to it.
pub async fn sync_head(shared: &Shared) -> Result<u64, StoreError> {
    let server = last_position(shared).await?;
    if server > shared.index().head() {
        catch_up(shared).await?;
    }
    Ok(shared.index().head())
}

/// Follows the log for as long as the store lives: a catch-up subscription from the index's head
/// applies every new event (this replica's own are skipped: the writer applied them already) and so
/// moves the head that [`crate::store::EventStore::subscribe`] reports. When the subscription drops,
/// plain reads fill the gap and it starts again.
pub async fn follow(shared: Arc<Shared>) {
    let mut pause = RESUBSCRIBE_PAUSE;
    loop {
        let head = shared.index().head();
        let from = revision_of(head).map_or(StreamPosition::Start, StreamPosition::Position);
        let options = SubscribeToStreamOptions::default().start_from(from).requires_leader(true);
        let (generation, client) = shared.conn.client();
        let mut subscription = client.subscribe_to_stream(shared.names.log(), &options).await;
        loop {
            match subscription.next().await {
                Ok(resolved) => {
                    let Some(record) = resolved.event.as_ref() else { continue };
                    match decode(Incoming::from(record)).and_then(|d| shared.apply(std::slice::from_ref(&d))) {
                        Ok(()) => pause = RESUBSCRIBE_PAUSE,
                        Err(e) => {
                            tracing::warn!(error = %e, store = %shared.shown, "cannot follow the KurrentDB log");
                            break;
                        }
                    }
                }
                Err(e) => {
                    shared.conn.failed(generation, &e);
                    tracing::debug!(error = %e, store = %shared.shown, "the KurrentDB subscription dropped");
                    break;
                }
            }
        }
        if let Err(e) = catch_up(&shared).await {
            tracing::warn!(error = %e, store = %shared.shown, "cannot catch up with the KurrentDB log");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_RESUBSCRIBE_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::coalesce;

    #[test]
    fn near_positions_share_a_read() {
        assert_eq!(coalesce(&[], 32), vec![]);
        assert_eq!(coalesce(&[5], 32), vec![(5, 1)]);
        assert_eq!(coalesce(&[1, 2, 3], 0), vec![(1, 1), (2, 1), (3, 1)], "gap 0: only equal positions");
        assert_eq!(coalesce(&[1, 2, 3], 1), vec![(1, 3)]);
        assert_eq!(coalesce(&[1, 3, 40, 41, 100], 32), vec![(1, 3), (40, 2), (100, 1)]);
        assert_eq!(coalesce(&[10, 42], 32), vec![(10, 33)]);
        assert_eq!(coalesce(&[10, 43], 32), vec![(10, 1), (43, 1)]);
    }

    #[test]
    fn every_position_is_covered_and_reads_stay_small() {
        let positions: Vec<u64> = (1..2000u64).filter(|p| p % 7 == 0 || p % 50 == 1).collect();
        let ranges = coalesce(&positions, 32);
        for p in &positions {
            assert!(ranges.iter().any(|(f, c)| p >= f && *p < f + c), "{p} is not covered");
        }
        let read: u64 = ranges.iter().map(|(_, c)| c).sum();
        assert!(read < 2000, "read {read} events for {} wanted", positions.len());
        assert!(ranges.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0), "ascending, disjoint");
    }
}
