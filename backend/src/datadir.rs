//! The data directory: where the database file, the lock and (later) evidence files live.
//!
//! Writers (demo, import, serve) hold an exclusive lock on `ducha.lock` for their whole run, so two
//! writers never share a directory. Readers (verify, export, rollup) open the database read-only and
//! need no lock: an auditor can verify while the server runs.

use crate::store::StoreError;
use crate::store::sqlite::{SqliteOptions, SqliteStore, Synchronous};
use fs2::FileExt;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

pub const DB_FILE: &str = "ducha.db";
pub const LOCK_FILE: &str = "ducha.lock";

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("数据目录不存在：{0}（先运行 `ducha demo` 或 `ducha import` 创建） / data directory does not exist")]
    Missing(PathBuf),
    #[error("数据目录中没有数据库：{0} / no database in the data directory")]
    NoDatabase(PathBuf),
    #[error("数据目录正被另一个 ducha 进程使用：{0} / the data directory is locked by another process")]
    Locked(PathBuf),
    #[error("无法使用数据目录 {path}：{source} / cannot use the data directory")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An open data directory. Dropping it releases the lock.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: Option<File>,
}

impl DataDir {
    /// Opens (creating if needed) for writing, taking the exclusive lock.
    pub fn open_for_write(path: &Path) -> Result<DataDir, DataDirError> {
        let io = |source| DataDirError::Io { path: path.to_owned(), source };
        std::fs::create_dir_all(path).map_err(io)?;
        let lock_path = path.join(LOCK_FILE);
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io)?;
        lock.try_lock_exclusive().map_err(|_| DataDirError::Locked(path.to_owned()))?;
        Ok(DataDir { path: path.to_owned(), _lock: Some(lock) })
    }

    /// Opens an existing directory for reading; fails clearly if there is nothing to read.
    pub fn open_for_read(path: &Path) -> Result<DataDir, DataDirError> {
        if !path.is_dir() {
            return Err(DataDirError::Missing(path.to_owned()));
        }
        if !path.join(DB_FILE).is_file() {
            return Err(DataDirError::NoDatabase(path.join(DB_FILE)));
        }
        Ok(DataDir { path: path.to_owned(), _lock: None })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn db_path(&self) -> PathBuf {
        self.path.join(DB_FILE)
    }

    pub fn is_writer(&self) -> bool {
        self._lock.is_some()
    }

    /// Opens the event store in this directory (read-only unless this is the writer).
    pub fn store(
        &self,
        synchronous: Synchronous,
        chain_hash: Option<ducha_events::chain::ChainHash>,
    ) -> Result<SqliteStore, DataDirError> {
        let opts = SqliteOptions { synchronous, read_only: !self.is_writer(), chain_hash };
        Ok(SqliteStore::open(&self.db_path(), opts)?)
    }
}

/// Writes a new key file readable by its owner only (mode 0600), synced, unless one exists: `true`
/// when it was created, `false` when a file was already there (never overwritten). Used for every
/// key Ducha generates into a data directory (the token key, the anchors' key, the personal-data
/// master key).
pub fn create_owner_only(path: &Path, contents: &[u8]) -> std::io::Result<bool> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(contents)?;
            file.sync_all()?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_writer_is_refused_and_missing_dirs_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDir::open_for_write(dir.path()).unwrap();
        assert!(matches!(DataDir::open_for_write(dir.path()), Err(DataDirError::Locked(_))));
        drop(first);
        assert!(DataDir::open_for_write(dir.path()).is_ok());
        let missing = dir.path().join("nope");
        let err = DataDir::open_for_read(&missing).unwrap_err();
        assert!(matches!(err, DataDirError::Missing(_)));
        assert!(err.to_string().contains("数据目录不存在"));
        assert!(matches!(DataDir::open_for_read(dir.path()), Err(DataDirError::NoDatabase(_))));
    }
}
