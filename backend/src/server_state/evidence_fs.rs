//! Evidence files in a directory: `<root>/<tenant>/ab/cdef…` named by their SHA-256, with
//! `cdef….json` beside each holding the first upload's file name and type. Written to a temporary
//! name in the same folder and renamed, so a reader never sees half a file. With several replicas
//! the directory must be shared (NFS or the like) — or leave `evidence_dir` unset on PostgreSQL and
//! the files live in the database.

use super::{EvidenceMeta, EvidenceStore, StateError};
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct FsEvidence {
    root: PathBuf,
    /// Why the last upload failed for want of space, until one is stored again.
    full: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl FsEvidence {
    pub fn new(root: &Path) -> FsEvidence {
        FsEvidence { root: root.to_owned(), full: std::sync::Arc::default() }
    }

    /// `<root>/<tenant>/ab/cdef…` (callers pass a validated tenant id and a 64-hex-digit hash).
    fn file_path(&self, tenant: &str, sha256: &str) -> PathBuf {
        self.root.join(tenant).join(&sha256[..2]).join(&sha256[2..])
    }
}

fn io(e: std::io::Error) -> StateError {
    if is_full(&e) {
        return StateError::Full(format!("evidence storage: {e}"));
    }
    StateError::Io(format!("evidence storage: {e}"))
}

/// ENOSPC (no space left on the device) or EDQUOT (over the quota).
pub(crate) fn is_full(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
}

fn meta_path(file: &Path) -> PathBuf {
    file.with_extension("json")
}

fn valid(sha256: &str) -> bool {
    sha256.len() == 64 && sha256.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The SHA-256 of a file's bytes (`None` when it does not exist).
fn hash_of(path: &Path) -> std::io::Result<Option<String>> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(Some(hex::encode(hasher.finalize())));
        }
        hasher.update(&buf[..n]);
    }
}

fn put_blocking(final_path: &Path, sha256: &str, meta: &EvidenceMeta, source: &Path) -> Result<bool, StateError> {
    if hash_of(final_path).map_err(io)?.as_deref() == Some(sha256) {
        return Ok(false);
    }
    let dir = final_path.parent().ok_or_else(|| StateError::Io("evidence path has no folder".into()))?;
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(".upload-{}", uuid::Uuid::now_v7()));
    let meta_tmp = dir.join(format!(".meta-{}", uuid::Uuid::now_v7()));
    let result = (|| {
        std::fs::copy(source, &tmp).map_err(io)?;
        std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(io)?;
        // The description first: a file is never left without it (a full disk fails here, before
        // the file is in place).
        let meta_file = meta_path(final_path);
        if !meta_file.exists() {
            let bytes = serde_json::to_vec(meta).map_err(|e| StateError::Io(e.to_string()))?;
            std::fs::write(&meta_tmp, bytes).map_err(io)?;
            std::fs::File::open(&meta_tmp).and_then(|f| f.sync_all()).map_err(io)?;
            std::fs::rename(&meta_tmp, &meta_file).map_err(io)?;
        }
        // A missing or damaged copy is (re)placed by the good bytes.
        std::fs::rename(&tmp, final_path).map_err(io)?;
        Ok(true)
    })();
    // Whatever failed (a full disk mid-copy), no temporary file is left behind.
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_file(&meta_tmp);
    result
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StateError> + Send + 'static,
) -> Result<T, StateError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StateError::Io(format!("evidence storage: {e}")))?
}

#[async_trait]
impl EvidenceStore for FsEvidence {
    async fn put(&self, tenant: &str, sha256: &str, meta: &EvidenceMeta, file: &Path) -> Result<bool, StateError> {
        if !valid(sha256) {
            return Err(StateError::Io(format!("not a SHA-256: {sha256:?}")));
        }
        let (path, sha, meta, source) =
            (self.file_path(tenant, sha256), sha256.to_owned(), meta.clone(), file.to_owned());
        let result = blocking(move || put_blocking(&path, &sha, &meta, &source)).await;
        let mut full = self.full.lock().unwrap_or_else(|p| p.into_inner());
        match &result {
            Err(StateError::Full(m)) => {
                tracing::error!(error = %m, "the evidence folder is full: uploads are refused until space is freed");
                *full = Some(m.clone());
            }
            Ok(_) => *full = None,
            Err(_) => {}
        }
        result
    }

    fn storage_full(&self) -> Option<String> {
        self.full.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn get(&self, tenant: &str, sha256: &str) -> Result<Option<(Vec<u8>, Option<EvidenceMeta>)>, StateError> {
        if !valid(sha256) {
            return Ok(None);
        }
        let path = self.file_path(tenant, sha256);
        blocking(move || {
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io(e)),
            };
            let meta = std::fs::read(meta_path(&path)).ok().and_then(|m| serde_json::from_slice(&m).ok());
            Ok(Some((bytes, meta)))
        })
        .await
    }

    async fn has(&self, tenant: &str, sha256: &str, size: u64) -> Result<bool, StateError> {
        if !valid(sha256) {
            return Ok(false);
        }
        let path = self.file_path(tenant, sha256);
        blocking(move || Ok(std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == size))).await
    }

    async fn list(&self) -> Result<Vec<(String, String)>, StateError> {
        let root = self.root.clone();
        blocking(move || {
            let mut out = Vec::new();
            let dirs = |p: &Path| -> Result<Vec<(String, PathBuf)>, StateError> {
                match std::fs::read_dir(p) {
                    Ok(entries) => Ok(entries
                        .filter_map(Result::ok)
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir() || t.is_file()))
                        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                        .collect()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                    Err(e) => Err(io(e)),
                }
            };
            for (tenant, tenant_dir) in dirs(&root)? {
                if !tenant_dir.is_dir() {
                    continue;
                }
                for (prefix, prefix_dir) in dirs(&tenant_dir)? {
                    if prefix.len() != 2 || !prefix_dir.is_dir() {
                        continue;
                    }
                    for (rest, file) in dirs(&prefix_dir)? {
                        let sha = format!("{prefix}{rest}");
                        if file.is_file() && valid(&sha) {
                            out.push((tenant.clone(), sha));
                        }
                    }
                }
            }
            out.sort();
            Ok(out)
        })
        .await
    }
}
