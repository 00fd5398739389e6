//! The writer's lock file (`<db>.lock`): the writer's in-memory chain heads are only right if it is
//! the only writer, so a second open for writing (in this process or another) is refused.

use crate::store::StoreError;
use std::fs::File;
use std::path::{Path, PathBuf};

pub(super) fn take_lock(path: &Path) -> Result<File, StoreError> {
    use fs2::FileExt;
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::Io(format!("{}: {e}", PathBuf::from(&lock_path).display())))?;
    match file.try_lock_exclusive() {
        Ok(()) => Ok(file),
        Err(e)
            if e.kind() == std::io::ErrorKind::WouldBlock
                || e.raw_os_error() == fs2::lock_contended_error().raw_os_error() =>
        {
            Err(StoreError::Locked)
        }
        Err(e) => Err(StoreError::Io(format!("{}: cannot lock: {e}", PathBuf::from(&lock_path).display()))),
    }
}
