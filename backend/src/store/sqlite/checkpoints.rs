//! Read-model checkpoints of a SQLite store, kept as files beside the database
//! (`ducha.db.checkpoints/<name in hex>`), not in it.
//!
//! In the database, a checkpoint (about 100 MB of JSON at 400,000 events) went through the one
//! writer: every append queued behind it waited for the blob to be written and synced — the
//! maintenance round's checkpoint, once a minute, was the commands' p99 (490 ms against 51 ms
//! without it). SQLite also cannot hold a value over 1 GB, so a large model could not be saved at all.
//! A file is written beside the appends instead, to a temporary name, synced, then renamed over
//! the old one (a crash leaves the old or the new, never half of one).
//!
//! A file records the hash of the event at its position; it is only loaded when the database has
//! that same event there, so a checkpoint left beside another database (replaced, restored) is
//! ignored instead of taken for its read model. Checkpoints older versions saved in the
//! `checkpoints` table are still read when no file is there.

use crate::store::StoreError;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The folder of a database's checkpoints.
pub(super) fn folder(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(".checkpoints");
    db.with_file_name(name)
}

fn file(db: &Path, name: &str) -> PathBuf {
    folder(db).join(hex::encode(name.as_bytes()))
}

const MAGIC: &[u8; 8] = b"DUCHACP1";

fn io(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    if e.raw_os_error() == Some(28) {
        return StoreError::StorageFull(format!("{what} {}: {e}", path.display()));
    }
    StoreError::Io(format!("{what} {}: {e}", path.display()))
}

/// Writes a checkpoint: `MAGIC`, position (u64 LE), length of `event_hash` (u32 LE), `event_hash`,
/// then the data.
pub(super) fn save(db: &Path, name: &str, position: u64, event_hash: &str, data: &[u8]) -> Result<(), StoreError> {
    let dir = folder(db);
    std::fs::create_dir_all(&dir).map_err(|e| io("cannot create", &dir, e))?;
    let target = file(db, name);
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".tmp-{}-{n}", std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(MAGIC)?;
        f.write_all(&position.to_le_bytes())?;
        let hash = event_hash.as_bytes();
        f.write_all(&u32::try_from(hash.len()).unwrap_or(0).to_le_bytes())?;
        f.write_all(hash)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)?;
        // The rename itself, durable.
        std::fs::File::open(&dir)?.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io("cannot write the checkpoint", &target, e));
    }
    Ok(())
}

/// A checkpoint file: position, the hash of the event at it, the data. `None` when there is none
/// (or it is not one of ours: it is then ignored, as a cache may be).
pub(super) fn load(db: &Path, name: &str) -> Result<Option<(u64, String, Vec<u8>)>, StoreError> {
    let path = file(db, name);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("cannot read the checkpoint", &path, e)),
    };
    Ok(parse(&bytes))
}

fn parse(bytes: &[u8]) -> Option<(u64, String, Vec<u8>)> {
    let rest = bytes.strip_prefix(MAGIC.as_slice())?;
    let (position, rest) = rest.split_first_chunk::<8>()?;
    let (len, rest) = rest.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
    let hash = std::str::from_utf8(rest.get(..len)?).ok()?.to_owned();
    Some((u64::from_le_bytes(*position), hash, rest.get(len..)?.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EventStore;
    use crate::store::sqlite::{SqliteOptions, SqliteStore, Synchronous};

    fn store(dir: &Path) -> SqliteStore {
        let opts = SqliteOptions { synchronous: Synchronous::Off, read_only: false, ..SqliteOptions::default() };
        SqliteStore::open(&dir.join("ducha.db"), opts).unwrap()
    }

    /// A checkpoint is the store's only while the store has the event it was taken at: beside
    /// another database (the same demo loaded again: other event ids, other hashes) it is ignored.
    #[tokio::test]
    async fn a_checkpoint_beside_another_log_is_ignored() {
        let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (store(a_dir.path()), store(b_dir.path()));
        crate::demo::load(&a).await.unwrap();
        crate::demo::load(&b).await.unwrap();
        let head = a.head().await.unwrap();
        assert_eq!(head, b.head().await.unwrap());
        a.save_checkpoint("read_model.v3", head, b"model".to_vec()).await.unwrap();
        assert_eq!(a.load_checkpoint("read_model.v3").await.unwrap(), Some((head, b"model".to_vec())));
        assert_eq!(b.load_checkpoint("read_model.v3").await.unwrap(), None);
        let (from, to) = (folder(&a_dir.path().join("ducha.db")), folder(&b_dir.path().join("ducha.db")));
        std::fs::create_dir_all(&to).unwrap();
        for f in std::fs::read_dir(&from).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
        }
        assert_eq!(b.load_checkpoint("read_model.v3").await.unwrap(), None, "another log's checkpoint");
        // Nothing went into the database's own table.
        let rows: i64 = rusqlite::Connection::open(a_dir.path().join("ducha.db"))
            .unwrap()
            .query_row("SELECT COUNT(*) FROM checkpoints", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0);
    }

    #[test]
    fn a_file_round_trips_and_garbage_is_no_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("ducha.db");
        assert_eq!(load(&db, "read_model.v3").unwrap(), None);
        save(&db, "read_model.v3", 42, "abc", b"{}").unwrap();
        save(&db, "其他", 7, "", &[0, 255]).unwrap();
        assert_eq!(load(&db, "read_model.v3").unwrap(), Some((42, "abc".to_owned(), b"{}".to_vec())));
        assert_eq!(load(&db, "其他").unwrap(), Some((7, String::new(), vec![0, 255])));
        save(&db, "read_model.v3", 43, "def", b"[]").unwrap();
        assert_eq!(load(&db, "read_model.v3").unwrap(), Some((43, "def".to_owned(), b"[]".to_vec())));
        // Nothing but the two checkpoints is left in the folder.
        assert_eq!(std::fs::read_dir(folder(&db)).unwrap().count(), 2);
        for garbage in
            [&b""[..], b"DUCHACP1", b"DUCHACP1\x01\0\0\0\0\0\0\0\xff\xff\xff\xff", b"not a checkpoint at all"]
        {
            std::fs::write(file(&db, "x"), garbage).unwrap();
            assert_eq!(load(&db, "x").unwrap(), None, "{garbage:?}");
        }
    }
}
