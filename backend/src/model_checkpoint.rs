//! How the live read model is written into a checkpoint and read back, and how a tenant's share
//! is packed when the memory budget says so: in parts (the head, then one part per sub-district;
//! `ducha_events::projection::checkpoint`), each JSON compressed with zlib (deflate with a
//! checksum), encoded and decoded on every core.
//!
//! Measured at a million events (BENCHMARKS.md, "Scale"): one JSON document of 307 MiB took 8.9 s
//! to save and 5.1 s to load, slower than folding the log again; most of it went into sealing and
//! opening that many bytes with SM4 (the personal-data layer encrypts checkpoints) and into one
//! core's JSON. Compressed parts are a fraction of the bytes to seal, and the parts keep both
//! cores busy.
//!
//! A tenant's compressed part is also how it is held when packed ([`Section`], a
//! `ducha_events::projection::Packed`): a checkpoint copies a packed tenant's bytes as they are
//! and encodes only the tenants written to since the last one, and a load unpacks the tenants
//! that fit in the memory budget and keeps the others packed until they are read.
//!
//! Layout: `DUCHARM5`, the number of sections `n` (u32 LE), for each section its compressed and
//! its JSON length (u64 LE each), then the sections: section 0 is the head (which names the tenant
//! of every other section), the others one tenant each. The JSON length lets the reader decompress
//! into a buffer of the right size at once. A checkpoint is a cache: one that does not decode is
//! ignored and the log is folded instead.

use ducha_events::ids::TenantId;
use ducha_events::projection::checkpoint::ModelHead;
use ducha_events::projection::{Held, Packed, ReadModel, Take, TenantShare};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const MAGIC: &[u8; 8] = b"DUCHARM5";

/// One tenant's share packed: its JSON compressed, and the JSON's length (the memory budget's
/// weight). `unreadable` is raised when it does not unpack (the owner rebuilds the model: see
/// `LiveModel::catch_up_to`).
#[derive(Debug)]
pub struct Section {
    z: Box<[u8]>,
    json_len: usize,
    unreadable: Arc<AtomicBool>,
}

impl Section {
    /// `value` packed.
    pub fn pack<T: serde::Serialize>(value: &T, unreadable: &Arc<AtomicBool>) -> Result<Section, String> {
        let (z, json_len) = compress(value)?;
        Ok(Section { z: z.into_boxed_slice(), json_len, unreadable: Arc::clone(unreadable) })
    }
}

impl<T: serde::de::DeserializeOwned> Packed<T> for Section {
    fn unpack(&self) -> Option<T> {
        let value = decompress((&self.z, self.json_len));
        if value.is_none() {
            tracing::error!(bytes = self.z.len(), "a packed part of the read model does not unpack");
            self.unreadable.store(true, Ordering::Release);
        }
        value
    }
    fn bytes(&self) -> &[u8] {
        &self.z
    }
    fn weight(&self) -> usize {
        self.json_len
    }
}

/// The model's parts as they were when taken: taking them costs microseconds (the tenants are
/// shared with the live model, see `ReadModel::parts`), encoding them is done off the model's lock.
pub struct Taken {
    head: ModelHead,
    parts: Vec<Take<TenantShare>>,
    unreadable: Arc<AtomicBool>,
}

/// A checkpoint's bytes, and the tenants packed for it (each with the value it is the packing
/// of), for the live model to adopt ([`Held::adopt`]): the next checkpoint copies their bytes.
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub packed: Vec<(TenantId, Arc<TenantShare>, Arc<Section>)>,
}

impl Taken {
    /// `unreadable`: raised when a part packed now fails to unpack later.
    pub fn of(model: &ReadModel, unreadable: &Arc<AtomicBool>) -> Taken {
        let (head, parts) = model.parts();
        Taken { head, parts, unreadable: Arc::clone(unreadable) }
    }

    pub fn position(&self) -> u64 {
        self.head.position()
    }

    /// The checkpoint's bytes: the tenants packed already copied, the others compressed. CPU-bound:
    /// call it on a blocking thread.
    pub fn encode(self) -> Result<Encoded, String> {
        let (head, head_len) = compress(&self.head)?;
        let fresh = par_map(&self.parts, |p| match p {
            Take::Packed(_) => Ok(None),
            Take::Value(v) => Section::pack(&**v, &self.unreadable).map(|s| Some(Arc::new(s))),
        });
        let mut sections: Vec<(&[u8], usize)> = Vec::with_capacity(self.parts.len() + 1);
        sections.push((&head, head_len));
        let mut packed = Vec::new();
        for ((part, fresh), tenant) in self.parts.iter().zip(&fresh).zip(self.head.tenants()) {
            match (part, fresh) {
                (Take::Packed(p), _) => sections.push((p.bytes(), p.weight())),
                (Take::Value(v), Ok(Some(s))) => {
                    sections.push((&s.z, s.json_len));
                    packed.push((tenant.clone(), Arc::clone(v), Arc::clone(s)));
                }
                (Take::Value(_), Ok(None)) => return Err("a value was not packed".into()),
                (Take::Value(_), Err(e)) => return Err(e.clone()),
            }
        }
        let total: usize = sections.iter().map(|(z, _)| z.len()).sum();
        // With room for the sealing layer's header and its tag per 4 MiB: it seals in place
        // (`Keyring::seal_blob`), and a buffer that had to grow for them would be copied whole.
        let len = MAGIC.len() + 4 + 16 * sections.len() + total;
        let mut out = Vec::with_capacity(len + len / 65_536 + 256);
        out.extend_from_slice(MAGIC);
        let n = u32::try_from(sections.len()).map_err(|_| "too many sections".to_owned())?;
        out.extend_from_slice(&n.to_le_bytes());
        for (z, json_len) in &sections {
            out.extend_from_slice(&(z.len() as u64).to_le_bytes());
            out.extend_from_slice(&(*json_len as u64).to_le_bytes());
        }
        for (z, _) in &sections {
            out.extend_from_slice(z);
        }
        Ok(Encoded { bytes: out, packed })
    }
}

/// The model in a checkpoint; `None` for anything that is not a whole checkpoint of this layout.
///
/// The tenants are unpacked (on every core) while their JSON fits in `budget` bytes, in the
/// checkpoint's order; the others stay packed until read. Every tenant unpacked here must unpack
/// whole, or the checkpoint is no model. CPU-bound: call it on a blocking thread.
pub fn decode(bytes: &[u8], budget: usize, unreadable: &Arc<AtomicBool>) -> Option<ReadModel> {
    let rest = bytes.strip_prefix(MAGIC.as_slice())?;
    let (n, mut rest) = rest.split_first_chunk::<4>()?;
    let n = usize::try_from(u32::from_le_bytes(*n)).ok()?;
    // Each section needs its 16 bytes of lengths: a count the bytes cannot hold is not ours.
    if n == 0 || n > rest.len() / 16 {
        return None;
    }
    let mut lens = Vec::with_capacity(n);
    for _ in 0..n {
        let (len, r) = rest.split_first_chunk::<8>()?;
        let (json_len, r) = r.split_first_chunk::<8>()?;
        lens.push((usize::try_from(u64::from_le_bytes(*len)).ok()?, u64::from_le_bytes(*json_len)));
        rest = r;
    }
    let mut sections = Vec::with_capacity(n);
    for (len, json_len) in lens {
        let (s, r) = (rest.get(..len)?, rest.get(len..)?);
        // deflate expands by at most 1032:1; a larger claim is not ours (and not allocated).
        if json_len > (len as u64).saturating_mul(1032) {
            return None;
        }
        sections.push((s, json_len as usize));
        rest = r;
    }
    if !rest.is_empty() {
        return None;
    }
    let head: ModelHead = decompress(sections[0])?;
    // The sections are copied out of the checkpoint, so that each is freed when its tenant is
    // packed anew rather than all of them with the last.
    let shares: Vec<Held<TenantShare>> = sections[1..]
        .iter()
        .map(|(z, json_len)| {
            let section = Section { z: Box::from(*z), json_len: *json_len, unreadable: Arc::clone(unreadable) };
            Held::packed(Arc::new(section))
        })
        .collect();
    let mut left = budget;
    let unpack: Vec<&Held<TenantShare>> = shares
        .iter()
        .filter(|h| {
            let fits = h.weight() <= left;
            if fits {
                left -= h.weight();
            }
            fits
        })
        .collect();
    par_map(&unpack, |h| {
        h.get();
    });
    // A tenant that does not unpack now is no model (the flag is the caller's, fresh at a load).
    if unreadable.swap(false, Ordering::AcqRel) {
        return None;
    }
    ReadModel::from_parts(head, shares)
}

/// The JSON is written whole, then compressed in one call: serde's many small writes straight into
/// the encoder made the encoding three times slower (2.5–3.3 s against 0.87–0.94 s at a million
/// events; `perf`: flate2's per-call work and the compressor's small steps).
fn compress<T: serde::Serialize>(value: &T) -> Result<(Vec<u8>, usize), String> {
    let json = serde_json::to_vec(value).map_err(|e| e.to_string())?;
    let mut z = flate2::write::ZlibEncoder::new(Vec::with_capacity(json.len() / 8), flate2::Compression::fast());
    z.write_all(&json).map_err(|e| e.to_string())?;
    Ok((z.finish().map_err(|e| e.to_string())?, json.len()))
}

/// A section's value: decompressed in one call into a buffer of its recorded JSON length, which
/// must be exactly what comes out (and the zlib checksum must hold).
fn decompress<T: serde::de::DeserializeOwned>((section, json_len): (&[u8], usize)) -> Option<T> {
    let mut json = Vec::with_capacity(json_len);
    let mut z = flate2::Decompress::new(true);
    let status = z.decompress_vec(section, &mut json, flate2::FlushDecompress::Finish).ok()?;
    if status != flate2::Status::StreamEnd || json.len() != json_len || z.total_in() != section.len() as u64 {
        return None;
    }
    serde_json::from_slice(&json).ok()
}

/// `f` over `items` on every core (scoped threads taking the next item as they finish), in order.
pub(crate) fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { return out };
                        out.push((i, f(item)));
                    }
                })
            })
            .collect();
        // A worker that panicked re-raises here, as the same work on this thread would have.
        workers.into_iter().flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::{SqliteOptions, SqliteStore, Synchronous};

    async fn demo_model() -> ReadModel {
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteOptions { synchronous: Synchronous::Off, read_only: false, ..SqliteOptions::default() };
        let store = SqliteStore::open(&dir.path().join("ducha.db"), opts).unwrap();
        crate::demo::load(&store).await.unwrap();
        let model = crate::projector::rebuild(&store, |_| {}).await.unwrap();
        store.close().await;
        model
    }

    fn flag() -> Arc<AtomicBool> {
        Arc::new(AtomicBool::new(false))
    }

    fn encode(model: &ReadModel) -> Vec<u8> {
        Taken::of(model, &flag()).encode().unwrap().bytes
    }

    #[tokio::test]
    async fn the_demo_model_round_trips_and_is_smaller_than_its_json() {
        let model = demo_model().await;
        let taken = Taken::of(&model, &flag());
        assert_eq!(taken.position(), model.position());
        let bytes = taken.encode().unwrap().bytes;
        for budget in [usize::MAX, 0, 50_000] {
            assert_eq!(decode(&bytes, budget, &flag()).as_ref(), Some(&model), "budget {budget}");
        }
        let json = serde_json::to_vec(&model).unwrap().len();
        // Room for the sealing layer's header and a tag per 4 MiB (it seals in place), at any size.
        for len in [bytes.len(), 409 << 20, 40 << 30] {
            let room = len / 65_536 + 256;
            assert!(room >= 4 + 1 + 8 + 4 + 16 * len.div_ceil(4 << 20), "{len}");
        }
        let encoded = Taken::of(&model, &flag()).encode().unwrap().bytes;
        assert!(encoded.capacity() - encoded.len() >= 17 + 16 * encoded.len().div_ceil(4 << 20));
        assert!(bytes.len() * 3 < json, "{} bytes against {json} of JSON", bytes.len());
    }

    /// Loaded within the budget, the tenants are unpacked; beyond it, packed until read. A
    /// checkpoint of a model loaded packed copies the bytes of every tenant not written to since
    /// (the same bytes again), and packs the one written to.
    #[tokio::test]
    async fn tenants_beyond_the_budget_stay_packed_and_their_bytes_are_reused() {
        let model = demo_model().await;
        let bytes = encode(&model);
        let all = decode(&bytes, usize::MAX, &flag()).unwrap();
        assert!(all.shares().all(|(_, s)| s.is_resident()));
        let none = decode(&bytes, 0, &flag()).unwrap();
        assert!(none.shares().all(|(_, s)| !s.is_resident()));
        let some = decode(&bytes, 20_000, &flag()).unwrap();
        let resident: usize = some.shares().filter(|(_, s)| s.is_resident()).map(|(_, s)| s.weight()).sum();
        assert!(resident > 0 && resident <= 20_000, "{resident}");
        assert!(some.shares().any(|(_, s)| !s.is_resident()));

        let encoded = Taken::of(&none, &flag()).encode().unwrap();
        assert_eq!(encoded.bytes, bytes, "nothing written: every part copied as it was");
        assert!(encoded.packed.is_empty());
        let mut written = none.clone();
        let (tenant, _) = written.shares().nth(1).map(|(t, s)| (t.clone(), s.weight())).unwrap();
        written.share_mut(&tenant).unwrap().make_mut();
        let encoded = Taken::of(&written, &flag()).encode().unwrap();
        assert_eq!(encoded.packed.iter().map(|(t, _, _)| t).collect::<Vec<_>>(), [&tenant]);
        assert_eq!(decode(&encoded.bytes, 0, &flag()).as_ref(), Some(&model));
        // Adopted, the tenant's next checkpoint copies those bytes.
        let (t, value, section) = encoded.packed.into_iter().next().unwrap();
        assert!(written.share_mut(&t).unwrap().adopt(&value, section, true));
        assert!(Taken::of(&written, &flag()).encode().unwrap().packed.is_empty());
        assert_eq!(written, model);
    }

    /// A part that does not unpack: within the budget the checkpoint is no model (the log is
    /// folded); beyond it, reading the tenant raises the flag its owner watches.
    #[tokio::test]
    async fn a_part_that_does_not_unpack_is_found_at_load_or_raises_the_flag() {
        let bytes = encode(&demo_model().await);
        let mut flipped = bytes.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0xff;
        let unreadable = flag();
        assert_eq!(decode(&flipped, usize::MAX, &unreadable), None);
        assert!(!unreadable.load(Ordering::Acquire), "lowered again: the load folds the log");
        let model = decode(&flipped, 0, &unreadable).expect("nothing unpacked yet");
        let (last_tenant, _) = model.shares().last().unwrap();
        assert!(!unreadable.load(Ordering::Acquire));
        assert!(model.tenant_facts(last_tenant).is_none_or(|f| f.inspections.is_empty()));
        assert!(unreadable.load(Ordering::Acquire));
    }

    /// Whatever is not a whole checkpoint decodes to nothing (the log is folded instead), without
    /// a panic or a huge allocation.
    #[tokio::test]
    async fn cut_or_altered_checkpoints_are_no_model() {
        let bytes = encode(&demo_model().await);
        let decode = |b: &[u8]| decode(b, usize::MAX, &flag());
        for cut in [0, 7, 8, 11, 12, 20, bytes.len() / 2, bytes.len() - 1] {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer), None);
        let mut huge_count = bytes.clone();
        huge_count[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&huge_count), None);
        let mut huge_len = bytes.clone();
        huge_len[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(decode(&huge_len), None);
        // The head's JSON length: larger than deflate can give (not allocated), one byte off.
        for json_len in [u64::MAX, u64::from(u32::MAX), 0] {
            let mut wrong = bytes.clone();
            wrong[20..28].copy_from_slice(&json_len.to_le_bytes());
            assert_eq!(decode(&wrong), None, "{json_len}");
        }
        let mut off_by_one = bytes.clone();
        let json_len = u64::from_le_bytes(off_by_one[20..28].try_into().unwrap());
        off_by_one[20..28].copy_from_slice(&(json_len - 1).to_le_bytes());
        assert_eq!(decode(&off_by_one), None);
        let mut flipped = bytes.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0xff;
        assert_eq!(decode(&flipped), None);
        assert_eq!(decode(b"{\"position\":1}"), None, "a checkpoint of the JSON layout before");
        let mut v4 = bytes.clone();
        v4[..8].copy_from_slice(b"DUCHARM4");
        assert_eq!(decode(&v4), None, "the layout before");
    }

    #[test]
    fn par_map_keeps_the_order() {
        let items: Vec<u64> = (0..1000).collect();
        assert_eq!(par_map(&items, |x| x * 2), items.iter().map(|x| x * 2).collect::<Vec<_>>());
        assert_eq!(par_map(&[] as &[u64], |x| *x), Vec::<u64>::new());
    }
}
