//! One tenant's share of the read model, held either as values (resident) or packed (its encoded,
//! compressed bytes, a fraction of the size) and unpacked when it is first read again.
//!
//! A deployment of thousands of sub-districts cannot keep every tenant's facts in memory (about
//! 0.55 KiB per event with real texts: 5.5 GiB at ten million events, BENCHMARKS.md "Scale"), but
//! it reads few tenants at a time. The server packs the tenants it has not read for a while and
//! loads a checkpoint without unpacking the tenants beyond its memory budget (`ducha::model_checkpoint`).
//! The fold and the queries see no difference: [`Held::get`] unpacks on first read (under the
//! model's read lock, once, whoever asks first) and [`Held::make_mut`] before a write.
//!
//! How the bytes are made and read is the server's business ([`Packed`]); this crate does no I/O
//! and no compression.

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// A value in its packed form.
pub trait Packed<T>: Send + Sync + Debug {
    /// The value; `None` when the bytes do not unpack (the implementation must make that known to
    /// its owner, who rebuilds the model from the log: [`Held::get`] reads an empty value meanwhile).
    fn unpack(&self) -> Option<T>;
    /// The packed bytes, as a checkpoint stores them.
    fn bytes(&self) -> &[u8];
    /// The value's size as the memory budget counts it (the length of its encoding).
    fn weight(&self) -> usize;
}

/// What a checkpoint writes of a [`Held`]: its packed bytes when it has unchanged ones, else the
/// value to encode.
#[derive(Debug, Clone)]
pub enum Take<T> {
    Packed(Arc<dyn Packed<T>>),
    Value(Arc<T>),
}

/// See the module: a value resident in memory, or packed and unpacked when read.
pub struct Held<T> {
    state: State<T>,
    /// Read or written since the last sweep (the memory budget packs the least used first).
    used: AtomicBool,
    /// The size the budget counts: the packed weight, plus an estimate per write since.
    weight: usize,
}

enum State<T> {
    /// Written since it was last packed (or never packed): only here.
    Hot(Arc<T>),
    /// Packed bytes that are the value; `thawed` once read (resident until a sweep drops it).
    Cold { packed: Arc<dyn Packed<T>>, thawed: OnceLock<Arc<T>> },
}

/// What one write adds to a value, as the budget estimates it until the value is packed again (a
/// finding with its texts is about this much JSON).
const WEIGHT_PER_WRITE: usize = 600;

impl<T: Default + Clone> Held<T> {
    pub fn new(value: T) -> Self {
        Held { state: State::Hot(Arc::new(value)), used: AtomicBool::new(true), weight: 0 }
    }

    /// A packed value, not unpacked until read.
    pub fn packed(packed: Arc<dyn Packed<T>>) -> Self {
        let weight = packed.weight();
        Held { state: State::Cold { packed, thawed: OnceLock::new() }, used: AtomicBool::new(false), weight }
    }

    /// The value, unpacked on first read.
    pub fn get(&self) -> &T {
        self.used.store(true, Ordering::Relaxed);
        match &self.state {
            State::Hot(v) => v,
            State::Cold { packed, thawed } => thawed.get_or_init(|| Arc::new(packed.unpack().unwrap_or_default())),
        }
    }

    /// `f` of the value; a packed value not read since it was packed is unpacked for `f` only and
    /// not kept (nor marked as used).
    pub fn peek<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        match &self.state {
            State::Hot(v) => f(v),
            State::Cold { packed, thawed } => match thawed.get() {
                Some(v) => f(v),
                None => f(&packed.unpack().unwrap_or_default()),
            },
        }
    }

    /// The value for a write: unpacked first if it is packed (and the packed bytes dropped, since
    /// they will no longer be the value), copied if a checkpoint still shares it.
    pub fn make_mut(&mut self) -> &mut T {
        self.used.store(true, Ordering::Relaxed);
        if let State::Cold { packed, thawed } = &mut self.state {
            let value = thawed.take().unwrap_or_else(|| Arc::new(packed.unpack().unwrap_or_default()));
            self.state = State::Hot(value);
        }
        self.weight += WEIGHT_PER_WRITE;
        match &mut self.state {
            State::Hot(v) => Arc::make_mut(v),
            // Made hot just above.
            State::Cold { .. } => unreachable!("a written value is hot"),
        }
    }

    /// Whether the value is in memory (hot, or packed and read since).
    pub fn is_resident(&self) -> bool {
        match &self.state {
            State::Hot(_) => true,
            State::Cold { thawed, .. } => thawed.get().is_some(),
        }
    }

    pub fn weight(&self) -> usize {
        self.weight
    }

    /// The packed bytes held (0 for a value written since it was last packed).
    pub fn packed_len(&self) -> usize {
        match &self.state {
            State::Hot(_) => 0,
            State::Cold { packed, .. } => packed.bytes().len(),
        }
    }

    /// Whether it was read or written since the last call, and clears the mark.
    pub fn take_used(&self) -> bool {
        self.used.swap(false, Ordering::Relaxed)
    }

    /// What a checkpoint writes of it.
    pub fn take(&self) -> Take<T> {
        match &self.state {
            State::Hot(v) => Take::Value(Arc::clone(v)),
            State::Cold { packed, .. } => Take::Packed(Arc::clone(packed)),
        }
    }

    /// `packed` is `value` packed: if the value is still `value` (not written since it was
    /// taken), keep the bytes with it, so the next checkpoint reuses them and a sweep can drop the
    /// value without packing it again. `resident: false` drops the value at once.
    pub fn adopt(&mut self, value: &Arc<T>, packed: Arc<dyn Packed<T>>, resident: bool) -> bool {
        let State::Hot(v) = &self.state else { return false };
        if !Arc::ptr_eq(v, value) {
            return false;
        }
        self.weight = packed.weight();
        let thawed = OnceLock::new();
        if resident {
            let _ = thawed.set(Arc::clone(v));
        }
        self.state = State::Cold { packed, thawed };
        true
    }

    /// Drops the unpacked value of a packed one (it is read from its bytes again when needed); the
    /// value is returned so that the caller frees it outside any lock. `None` when it is hot (it
    /// must be packed first: [`Self::adopt`]) or not resident.
    pub fn evict(&mut self) -> Option<Arc<T>> {
        match &mut self.state {
            State::Hot(_) => None,
            State::Cold { thawed, .. } => thawed.take(),
        }
    }
}

impl<T: Default + Clone> Default for Held<T> {
    fn default() -> Self {
        Held::new(T::default())
    }
}

impl<T: Default + Clone> Clone for Held<T> {
    fn clone(&self) -> Self {
        let state = match &self.state {
            State::Hot(v) => State::Hot(Arc::clone(v)),
            State::Cold { packed, thawed } => State::Cold { packed: Arc::clone(packed), thawed: thawed.clone() },
        };
        Held { state, used: AtomicBool::new(self.used.load(Ordering::Relaxed)), weight: self.weight }
    }
}

/// Equal when the values are (packed ones are unpacked to compare).
impl<T: Default + Clone + PartialEq> PartialEq for Held<T> {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl<T: Default + Clone + Debug> Debug for Held<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.state {
            State::Hot(v) => f.debug_tuple("Hot").field(v).finish(),
            State::Cold { packed, thawed } => f
                .debug_struct("Cold")
                .field("bytes", &packed.bytes().len())
                .field("thawed", &thawed.get().is_some())
                .finish(),
        }
    }
}

/// As its value.
impl<T: Default + Clone + serde::Serialize> serde::Serialize for Held<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(s)
    }
}

impl<'de, T: Default + Clone + serde::Deserialize<'de>> serde::Deserialize<'de> for Held<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Held::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Packs as the decimal text of the number, counting its unpacks.
    #[derive(Debug)]
    struct Text(Vec<u8>, AtomicUsize);

    impl Packed<u64> for Text {
        fn unpack(&self) -> Option<u64> {
            self.1.fetch_add(1, Ordering::SeqCst);
            std::str::from_utf8(&self.0).ok()?.parse().ok()
        }
        fn bytes(&self) -> &[u8] {
            &self.0
        }
        fn weight(&self) -> usize {
            self.0.len()
        }
    }

    fn text(n: u64) -> Arc<Text> {
        Arc::new(Text(n.to_string().into_bytes(), AtomicUsize::new(0)))
    }

    #[test]
    fn a_packed_value_is_unpacked_once_when_read_and_again_after_an_eviction() {
        let packed = text(1234);
        let mut held: Held<u64> = Held::packed(packed.clone());
        assert!(!held.is_resident());
        assert_eq!((held.weight(), held.packed_len()), (4, 4));
        assert_eq!(held.peek(|v| *v), 1234);
        assert!(!held.is_resident() && !held.take_used(), "peeked at, not kept");
        assert_eq!((*held.get(), *held.get()), (1234, 1234));
        assert_eq!(packed.1.load(Ordering::SeqCst), 2);
        assert_eq!(held.peek(|v| *v), 1234);
        assert_eq!(packed.1.load(Ordering::SeqCst), 2, "resident: read as it is");
        assert!(held.is_resident() && held.take_used() && !held.take_used());
        assert_eq!(held.evict().as_deref(), Some(&1234));
        assert!(!held.is_resident());
        assert_eq!(held, Held::new(1234));
        assert_eq!(packed.1.load(Ordering::SeqCst), 3);
        assert!(matches!(held.take(), Take::Packed(_)), "unchanged: a checkpoint reuses the bytes");
    }

    #[test]
    fn a_write_makes_it_hot_and_an_adoption_packs_it_only_if_unchanged() {
        let mut held: Held<u64> = Held::packed(text(7));
        *held.make_mut() += 1;
        assert_eq!(held.evict(), None, "hot values are packed first");
        assert_eq!(held.packed_len(), 0);
        let Take::Value(taken) = held.take() else { panic!("written: no bytes to reuse") };
        assert_eq!(*taken, 8);
        *held.make_mut() += 1;
        assert!(!held.adopt(&taken, text(8), true), "written after it was taken: 8 is not the value");
        assert_eq!(*held.get(), 9);
        let Take::Value(taken) = held.take() else { panic!() };
        assert!(held.adopt(&taken, text(9), true));
        assert!(held.is_resident());
        assert_eq!(held.evict().as_deref(), Some(&9));
        assert_eq!(*held.get(), 9);
        assert!(matches!(held.take(), Take::Packed(p) if p.bytes() == b"9"));
    }

    #[test]
    fn bytes_that_do_not_unpack_read_as_empty() {
        let bad = Arc::new(Text(b"x".to_vec(), AtomicUsize::new(0)));
        let held: Held<u64> = Held::packed(bad);
        assert_eq!(*held.get(), 0);
    }
}
