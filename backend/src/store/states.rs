//! Aggregate states kept between commands (issue 11: commands were spending most of their time
//! folding the same streams again: the tenant, the inspection and the finding, for each command).
//!
//! A kept state is the fold of its stream up to a version; a command that loads the stream starts
//! from it and reads only the events after that version from the store. Streams are append-only
//! and their versions dense in every backend, so a kept state never goes wrong: another replica's
//! appends are simply read after it. Commands fold the events as stored (`read_stream`, which the
//! personal-data layer leaves sealed), so no opened personal data is kept here and an erasure needs
//! nothing from this cache.
//!
//! Bounded by the number of streams: past [`CAPACITY`] the cache starts over (a command then folds
//! its streams once more).
//!
//! A stream with nothing kept is folded from its first event by one command at a time
//! ([`StateCache::first_fold`]): after a start, every command at once needs the same few streams
//! (the tenant, a busy inspection), and each folding them alone multiplied the first reads by the
//! number of connections. The others wait for that fold and start from what it kept.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

/// Streams kept at most.
pub const CAPACITY: usize = 8_192;

#[derive(Default)]
pub struct StateCache {
    kept: Mutex<HashMap<String, Kept>>,
    /// Streams being folded from their first event, each with the lock its folder holds.
    folding: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Folds from the first event so far (see [`StateCache::folds_from_start`]).
    from_start: AtomicU64,
}

/// Held by the one command folding a stream from its first event; others asking for the same
/// stream wait until it is dropped.
pub struct FirstFold<'a> {
    cache: &'a StateCache,
    stream: String,
    _held: OwnedMutexGuard<()>,
}

impl Drop for FirstFold<'_> {
    fn drop(&mut self) {
        let mut folding = lock(&self.cache.folding);
        // The map's lock and this guard's own reference: nobody else waits, so the entry goes
        // (a waiter takes its reference under the map's lock, so none can appear meanwhile).
        if folding.get(&self.stream).is_some_and(|l| Arc::strong_count(l) <= 2) {
            folding.remove(&self.stream);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Kept {
    version: u64,
    state: Arc<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for StateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateCache").field("streams", &self.len()).finish()
    }
}

impl StateCache {
    /// The kept state of `stream` and its version, if one of type `T` is kept.
    pub fn get<T: Clone + 'static>(&self, stream: &str) -> Option<(T, u64)> {
        let kept = lock(&self.kept);
        let k = kept.get(stream)?;
        k.state.downcast_ref::<T>().map(|s| (s.clone(), k.version))
    }

    /// Keeps `state` as the fold of `stream` up to `version`, unless a later one is kept already.
    pub fn put<T: Send + Sync + 'static>(&self, stream: &str, version: u64, state: T) {
        if version == 0 {
            return;
        }
        let mut kept = lock(&self.kept);
        if let Some(k) = kept.get(stream)
            && k.version >= version
        {
            return;
        }
        if kept.len() >= CAPACITY && !kept.contains_key(stream) {
            kept.clear();
        }
        kept.insert(stream.to_owned(), Kept { version, state: Arc::new(state) });
    }

    /// Waits until no other command folds `stream` from its first event, then holds that place
    /// until the returned guard is dropped. The caller looks for a kept state again once it holds it.
    pub async fn first_fold(&self, stream: &str) -> FirstFold<'_> {
        let place = lock(&self.folding).entry(stream.to_owned()).or_default().clone();
        let held = place.lock_owned().await;
        FirstFold { cache: self, stream: stream.to_owned(), _held: held }
    }

    /// Counts a fold from the first event (called by the folder).
    pub fn count_fold_from_start(&self) {
        self.from_start.fetch_add(1, Ordering::Relaxed);
    }

    /// Folds from the first event so far.
    pub fn folds_from_start(&self) -> u64 {
        self.from_start.load(Ordering::Relaxed)
    }

    /// Streams with a first fold under way or waited for (0 when none).
    pub fn folding(&self) -> usize {
        lock(&self.folding).len()
    }

    /// How many streams are kept.
    pub fn len(&self) -> usize {
        lock(&self.kept).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_version_of_the_asked_type() {
        let c = StateCache::default();
        assert_eq!(c.get::<String>("s"), None);
        c.put("s", 2, "two".to_owned());
        c.put("s", 1, "one".to_owned());
        assert_eq!(c.get::<String>("s"), Some(("two".to_owned(), 2)));
        assert_eq!(c.get::<u32>("s"), None, "another type is a miss");
        c.put("s", 3, "three".to_owned());
        assert_eq!(c.get::<String>("s"), Some(("three".to_owned(), 3)));
        c.put("empty", 0, "nothing".to_owned());
        assert_eq!(c.get::<String>("empty"), None, "a stream that does not exist is not kept");
    }

    #[test]
    fn starts_over_past_its_capacity() {
        let c = StateCache::default();
        for n in 0..CAPACITY {
            c.put(&format!("s{n}"), 1, n);
        }
        assert_eq!(c.len(), CAPACITY);
        c.put("s0", 2, 0usize);
        assert_eq!(c.len(), CAPACITY, "an update is not a new entry");
        c.put("one-more", 1, 1usize);
        assert_eq!(c.len(), 1);
        assert_eq!(c.get::<usize>("one-more"), Some((1, 1)));
    }
}
