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

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Streams kept at most.
pub const CAPACITY: usize = 8_192;

#[derive(Default)]
pub struct StateCache {
    kept: Mutex<HashMap<String, Kept>>,
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
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let k = kept.get(stream)?;
        k.state.downcast_ref::<T>().map(|s| (s.clone(), k.version))
    }

    /// Keeps `state` as the fold of `stream` up to `version`, unless a later one is kept already.
    pub fn put<T: Send + Sync + 'static>(&self, stream: &str, version: u64, state: T) {
        if version == 0 {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
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

    /// How many streams are kept.
    pub fn len(&self) -> usize {
        self.kept.lock().unwrap_or_else(|p| p.into_inner()).len()
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
