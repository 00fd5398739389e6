//! `ducha backup` and `ducha restore`: one tar archive holding the events (a SQLite database file),
//! the evidence files and a manifest (`manifest.json`, the first entry) with the position, every
//! tenant's chain head and the SHA-256 and size of every other entry ("part").
//!
//! A SQLite store is copied with SQLite's online backup API from a read-only connection, in one
//! step, so the copy is one consistent snapshot even while `ducha serve` writes. Another store
//! (PostgreSQL, KurrentDB) is read through the [`EventStore`] trait up to the head taken when the
//! backup began, into a new SQLite store inside the archive (a logical backup).
//!
//! The manifest is signed with the deployment's anchor key (`manifest.sig.json`, the second entry;
//! see [`signature`]).
//!
//! A restore checks the signature, every part against the manifest and the events' chains against
//! the manifest's heads before it writes anything, refuses a target that is not empty, and checks
//! the chains again in the target.

pub mod signature;

use crate::anchors::AnchorKey;
use crate::server_state::evidence_fs::FsEvidence;
use crate::server_state::{EvidenceMeta, EvidenceStore};
use crate::store::location::open;
use crate::store::sqlite::{SqliteOptions, SqliteStore};
use crate::store::{Access, EventStore, StoreLocation, Upto};
use anyhow::{Context, bail};
use ducha_events::chain::ChainHash;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// The archive format this build writes and reads.
pub const FORMAT: &str = "ducha-backup/1";
pub const MANIFEST: &str = "manifest.json";
/// The events, as a Ducha SQLite store.
pub const EVENTS_PART: &str = "events.db";
/// Evidence files: `evidence/<tenant>/<sha256>` and, beside it, `<sha256>.json` (name and type).
pub const EVIDENCE_PREFIX: &str = "evidence/";
/// The person keys of personal data (`backend/src/personal`), wrapped: JSON, when there are any.
pub const PERSON_KEYS_PART: &str = "person_keys.json";

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    /// RFC 3339.
    pub created_at: String,
    pub ducha_version: String,
    /// `sqlite`, `postgres` or `kurrentdb`: the store that was backed up.
    pub store_kind: String,
    /// `sha256` or `sm3`.
    pub chain_hash: String,
    /// The source's global log position the backup holds everything up to.
    pub head_position: u64,
    /// How many events.
    pub events: u64,
    pub tenants: Vec<TenantHead>,
    pub evidence_files: u64,
    pub parts: Vec<Part>,
}

/// One tenant's chain head: its number of events (the head's sequence) and the head's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantHead {
    pub tenant: String,
    pub sequence: u64,
    pub hash: String,
}

/// One entry of the archive besides the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

impl Manifest {
    /// The chain heads, one line per tenant.
    pub fn render_heads(&self) -> String {
        let mut out = String::new();
        for t in &self.tenants {
            out.push_str(&format!("  {}：{} 个事件，链头 {}\n", t.tenant, t.sequence, t.hash));
        }
        out
    }
}

/// Where the evidence files of a store are, for a backup: a directory (the data directory's
/// `evidence`, or `--evidence-dir`), or a PostgreSQL database's rows.
async fn source_evidence(
    opened: Option<&crate::store::OpenedStore>,
    location: &StoreLocation,
    evidence_dir: Option<&Path>,
) -> anyhow::Result<Option<std::sync::Arc<dyn EvidenceStore>>> {
    if let Some(dir) = evidence_dir {
        return Ok(Some(std::sync::Arc::new(FsEvidence::new(dir))));
    }
    if let Some(dir) = location.data_dir() {
        return Ok(Some(std::sync::Arc::new(FsEvidence::new(&dir.join("evidence")))));
    }
    if let Some(pg) = opened.and_then(|o| o.postgres.as_ref()) {
        return Ok(Some(crate::server_state::ServerState::postgres(pg.pool().clone(), None).evidence));
    }
    Ok(None)
}

fn sha256_file(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut f = std::fs::File::open(path).with_context(|| format!("无法读取 {} / cannot read", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// SQLite's online backup of `source` into the new file `dest`, in one step (one read transaction:
/// a consistent snapshot however busy the writer is), then made a self-contained rollback-journal
/// database (no `-wal` file to carry).
fn sqlite_online_backup(source: &Path, dest: &Path) -> anyhow::Result<()> {
    use rusqlite::backup::{Backup, StepResult};
    use rusqlite::{Connection, OpenFlags};
    let src = Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .with_context(|| format!("无法打开数据库 {} / cannot open the database", source.display()))?;
    src.busy_timeout(std::time::Duration::from_secs(10))?;
    let mut dst = Connection::open(dest).with_context(|| format!("无法创建 {} / cannot create", dest.display()))?;
    {
        let backup =
            Backup::new(&src, &mut dst).context("无法开始 SQLite 在线备份 / cannot start the online backup")?;
        let mut attempts = 0;
        loop {
            match backup.step(-1).context("SQLite 在线备份失败 / the online backup failed")? {
                StepResult::Done => break,
                StepResult::More | StepResult::Busy | StepResult::Locked => {
                    attempts += 1;
                    if attempts > 600 {
                        bail!("数据库一直忙，在线备份未能完成 / the database stayed busy; the backup did not finish");
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                _ => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        }
    }
    let mode: String = dst.query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("delete") {
        bail!("无法设置备份文件的日志模式 / cannot set the backup's journal mode ({mode})");
    }
    drop(dst);
    Ok(())
}

fn open_staged(path: &Path) -> anyhow::Result<SqliteStore> {
    SqliteStore::open(path, SqliteOptions { read_only: true, ..SqliteOptions::default() })
        .map_err(|e| anyhow::anyhow!("备份中的事件库无法打开 / the backup's event database cannot be opened: {e}"))
}

fn heads_of(report: &crate::verify::VerifyReport) -> Vec<TenantHead> {
    report
        .tenants
        .iter()
        .map(|t| TenantHead { tenant: t.tenant.clone(), sequence: t.events, hash: t.head_hash.clone() })
        .collect()
}

/// Takes a backup of the store at `location` into `out` (which must not exist yet).
/// The source's person keys: beside its events (the data directory's `api.db`, the PostgreSQL
/// tables); `None` for a KurrentDB store (its keys are in its `server_state`: back that up too).
fn source_person_keys(
    opened: Option<&crate::store::OpenedStore>,
    location: &StoreLocation,
) -> anyhow::Result<Option<std::sync::Arc<dyn crate::server_state::PersonKeys>>> {
    if let Some(dir) = location.data_dir() {
        return Ok(Some(crate::server_state::ServerState::sqlite(dir, &dir.join("evidence"))?.person_keys));
    }
    if let Some(pg) = opened.and_then(|o| o.postgres.as_ref()) {
        return Ok(Some(crate::server_state::ServerState::postgres(pg.pool().clone(), None).person_keys));
    }
    Ok(None)
}

/// Writes the archive `out` (which must not exist); the manifest is signed with `key` when given.
pub async fn backup(
    location: &StoreLocation,
    evidence_dir: Option<&Path>,
    out: &Path,
    key: Option<&AnchorKey>,
) -> anyhow::Result<Manifest> {
    if out.exists() {
        bail!("备份文件已存在，不会覆盖：{} / the backup file exists; not overwritten", out.display());
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let staging = tempfile::tempdir_in(&parent)
        .with_context(|| format!("无法在 {} 中创建临时目录 / cannot create a temporary directory", parent.display()))?;
    let events_path = staging.path().join(EVENTS_PART);
    let (store_kind, head_position, opened) = match location {
        StoreLocation::Sqlite { dir, .. } => {
            let data_dir = crate::datadir::DataDir::open_for_read(dir)?;
            let (src, dst) = (data_dir.db_path(), events_path.clone());
            tokio::task::spawn_blocking(move || sqlite_online_backup(&src, &dst)).await??;
            let store = open_staged(&events_path)?;
            let head = store.head().await?;
            store.close().await;
            ("sqlite", head, None)
        }
        StoreLocation::Postgres { .. } | StoreLocation::KurrentDb { .. } => {
            let source = open(location, Access::Read).await?;
            let head = source.store.head().await?;
            let target = SqliteStore::open(
                &events_path,
                SqliteOptions { chain_hash: Some(source.store.chain_hash()), ..SqliteOptions::default() },
            )?;
            crate::exchange::copy_upto(&*source.store, &target, Upto::Position(head), |_| {}).await?;
            target.close().await;
            drop(target);
            let kind = if matches!(location, StoreLocation::Postgres { .. }) { "postgres" } else { "kurrentdb" };
            (kind, head, Some(source))
        }
    };
    let staged = open_staged(&events_path)?;
    let report = crate::verify::verify_all(&staged).await?;
    if let Some(b) = report.first_break() {
        bail!("源存储的哈希链校验失败，未写备份 / the source's chains do not verify; no backup written: {b}");
    }
    let events = staged.head().await?;
    let chain_hash = staged.chain_hash();
    staged.close().await;
    drop(staged);

    // Evidence files: after the events, so every file an event in the backup refers to is there
    // (a file is stored before the event that names it is appended).
    let mut names = vec![EVENTS_PART.to_owned()];
    let mut evidence_files = 0;
    if let Some(evidence) = source_evidence(opened.as_ref(), location, evidence_dir).await? {
        let mut listed = evidence.list().await?;
        listed.sort();
        for (tenant, sha) in listed {
            let Some((bytes, meta)) = evidence.get(&tenant, &sha).await? else { continue };
            if hex::encode(Sha256::digest(&bytes)) != sha {
                bail!("佐证文件 {tenant}/{sha} 已损坏，未写备份 / an evidence file is corrupt; no backup written");
            }
            let dir = staging.path().join("evidence").join(&tenant);
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join(&sha), &bytes)?;
            names.push(format!("{EVIDENCE_PREFIX}{tenant}/{sha}"));
            if let Some(meta) = meta {
                std::fs::write(dir.join(format!("{sha}.json")), serde_json::to_vec(&meta)?)?;
                names.push(format!("{EVIDENCE_PREFIX}{tenant}/{sha}.json"));
            }
            evidence_files += 1;
        }
    }
    // The person keys, still wrapped under the master key (which is never in a backup).
    if let Some(vault) = source_person_keys(opened.as_ref(), location)? {
        let keys = vault.list().await?;
        if !keys.is_empty() {
            std::fs::write(staging.path().join(PERSON_KEYS_PART), serde_json::to_vec_pretty(&keys)?)?;
            names.push(PERSON_KEYS_PART.to_owned());
        }
    }
    if let Some(o) = opened {
        o.close().await;
    }
    let mut parts = Vec::new();
    for name in names {
        let (size, sha256) = sha256_file(&staging.path().join(&name))?;
        parts.push(Part { name, size, sha256 });
    }
    let created = chrono::Utc::now();
    let manifest = Manifest {
        format: FORMAT.into(),
        created_at: created.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ducha_version: env!("CARGO_PKG_VERSION").into(),
        store_kind: store_kind.into(),
        chain_hash: chain_hash.code().into(),
        head_position,
        events,
        tenants: heads_of(&report),
        evidence_files,
        parts,
    };

    let tmp = tempfile::NamedTempFile::new_in(&parent)
        .with_context(|| format!("无法在 {} 中创建文件 / cannot create a file", parent.display()))?;
    {
        let mut builder = tar::Builder::new(std::io::BufWriter::new(tmp.as_file()));
        let mtime = u64::try_from(created.timestamp()).unwrap_or(0);
        let header = |size: u64| {
            let mut h = tar::Header::new_gnu();
            h.set_size(size);
            h.set_mode(0o644);
            h.set_mtime(mtime);
            h.set_entry_type(tar::EntryType::Regular);
            h
        };
        let json = serde_json::to_vec_pretty(&manifest)?;
        builder.append_data(&mut header(json.len() as u64), MANIFEST, json.as_slice())?;
        if let Some(key) = key {
            let sig = serde_json::to_vec_pretty(&signature::sign(key, &json))?;
            builder.append_data(&mut header(sig.len() as u64), signature::SIGNATURE, sig.as_slice())?;
        }
        for part in &manifest.parts {
            let file = std::fs::File::open(staging.path().join(&part.name))?;
            builder.append_data(&mut header(part.size), &part.name, file)?;
        }
        builder.into_inner()?.flush()?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(out).map_err(|e| {
        anyhow::anyhow!("无法写入备份文件 {} / cannot write the backup file: {}", out.display(), e.error)
    })?;
    Ok(manifest)
}

/// An archive's entry name as a safe relative path (no `..`, no root), or None.
fn safe_name(name: &str) -> Option<PathBuf> {
    let path = Path::new(name);
    let ok = !name.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    ok.then(|| path.to_path_buf())
}

/// An archive read by [`unpack_checked`].
#[derive(Debug)]
pub struct Unpacked {
    pub manifest: Manifest,
    /// The manifest's exact bytes (what the signature covers).
    pub manifest_bytes: Vec<u8>,
    pub signature: Option<signature::ManifestSignature>,
}

/// Reads an archive into `staging`, checking it against its manifest: every part present, of its
/// size and SHA-256, and nothing else (besides the manifest's signature, which is read, not
/// checked: see [`signature::check`]).
pub fn unpack_checked(file: &Path, staging: &Path) -> anyhow::Result<Unpacked> {
    let damaged =
        || format!("不是 Ducha 备份文件，或已损坏：{} / not a Ducha backup archive, or damaged", file.display());
    let input =
        std::fs::File::open(file).with_context(|| format!("无法打开备份文件 {} / cannot open", file.display()))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(input));
    let mut manifest: Option<(Manifest, Vec<u8>)> = None;
    let mut sig: Option<signature::ManifestSignature> = None;
    let mut found: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for entry in archive.entries().with_context(damaged)? {
        let mut entry = entry.with_context(damaged)?;
        let name = entry.path().with_context(damaged)?.to_string_lossy().into_owned();
        if entry.header().entry_type() != tar::EntryType::Regular {
            bail!("备份中有非普通文件的条目 {name:?} / the archive holds something that is not a file");
        }
        if name == MANIFEST {
            if manifest.is_some() {
                bail!("备份中有两份清单 / the archive holds two manifests");
            }
            let mut text = Vec::new();
            entry.by_ref().take(16 * 1024 * 1024).read_to_end(&mut text).with_context(damaged)?;
            let m: Manifest = serde_json::from_slice(&text)
                .with_context(|| format!("备份清单无法读取 / the manifest cannot be read ({})", file.display()))?;
            if m.format != FORMAT {
                bail!("备份格式 {:?} 无法识别（本程序读 {FORMAT}） / unknown backup format", m.format);
            }
            manifest = Some((m, text));
            continue;
        }
        if name == signature::SIGNATURE {
            if sig.is_some() {
                bail!("备份中有两份清单签名 / the archive holds two manifest signatures");
            }
            let mut text = Vec::new();
            entry.by_ref().take(64 * 1024).read_to_end(&mut text).with_context(damaged)?;
            sig = Some(serde_json::from_slice(&text).with_context(|| {
                format!("备份清单的签名无法读取 / the manifest's signature cannot be read ({})", file.display())
            })?);
            continue;
        }
        let Some(rel) = safe_name(&name) else {
            bail!("备份中的条目名不安全：{name:?} / unsafe entry name")
        };
        if found.contains_key(&name) {
            bail!("备份中的条目 {name} 出现两次 / the archive holds an entry twice");
        }
        let dest = staging.join(&rel);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut out = std::fs::File::create(&dest)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut size = 0u64;
        loop {
            let n = entry.read(&mut buf).with_context(damaged)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            size += n as u64;
        }
        found.insert(name, (size, hex::encode(hasher.finalize())));
    }
    let Some((manifest, manifest_bytes)) = manifest else {
        bail!("{}（没有 {MANIFEST} / no manifest)", damaged());
    };
    for part in &manifest.parts {
        match found.remove(&part.name) {
            None => bail!("备份缺少部件 {} / the archive lacks the part", part.name),
            Some((size, sha)) if size != part.size || sha != part.sha256 => bail!(
                "备份部件 {} 的 SHA-256 与清单不符（已被篡改或损坏），拒绝恢复 / the part {} does not match the \
                 manifest (tampered or damaged): SHA-256 {sha}, expected {}",
                part.name,
                part.name,
                part.sha256
            ),
            Some(_) => {}
        }
    }
    if let Some(extra) = found.keys().next() {
        bail!("备份中有清单未列出的条目 {extra} / the archive holds a part the manifest does not list");
    }
    if !manifest.parts.iter().any(|p| p.name == EVENTS_PART) {
        bail!("备份清单没有事件库 {EVENTS_PART} / the manifest lists no events");
    }
    Ok(Unpacked { manifest, manifest_bytes, signature: sig })
}

/// Whether a directory is missing or empty.
fn empty_dir(dir: &Path) -> anyhow::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(anyhow::anyhow!("无法读取目录 {}：{e} / cannot read the directory", dir.display())),
    }
}

fn not_empty(target: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "恢复目标不是空的，拒绝恢复（未写入任何内容；请使用新的数据目录或空数据库）：{target} / the restore \
         target is not empty; nothing was written (use a new data directory or an empty database)"
    )
}

/// Compares a store's verified chains with the manifest's heads.
fn check_heads(report: &crate::verify::VerifyReport, manifest: &Manifest, what: &str) -> anyhow::Result<()> {
    if let Some(b) = report.first_break() {
        bail!("{what}的哈希链校验失败 / the chains of the {what} do not verify: {b}");
    }
    let heads = heads_of(report);
    let mut expected = manifest.tenants.clone();
    expected.sort_by(|a, b| a.tenant.cmp(&b.tenant));
    let mut got = heads.clone();
    got.sort_by(|a, b| a.tenant.cmp(&b.tenant));
    if got != expected {
        let first = expected
            .iter()
            .find(|e| !got.contains(e))
            .map_or_else(
                || got.iter().find(|g| !expected.contains(g)).map(|g| g.tenant.clone()),
                |e| Some(e.tenant.clone()),
            )
            .unwrap_or_default();
        bail!("{what}的链头与备份清单不符（租户 {first}） / the chain heads of the {what} differ from the manifest");
    }
    Ok(())
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    pub manifest: Manifest,
    /// Who signed the manifest.
    pub signed: signature::Signed,
    pub evidence_files: u64,
}

/// Restores the archive `file` into the empty store `target` (evidence files into its server state:
/// `to_state` when given, else beside the events), if its signature satisfies `trust`.
pub async fn restore(
    file: &Path,
    target: &StoreLocation,
    to_state: Option<&str>,
    evidence_dir: Option<&Path>,
    trust: &signature::Trust,
) -> anyhow::Result<Restored> {
    crate::server_state::home::check(target, to_state)?;
    let staging = tempfile::tempdir().context("无法创建临时目录 / cannot create a temporary directory")?;
    let unpacked = unpack_checked(file, staging.path())?;
    let signed = signature::check(&unpacked.manifest_bytes, unpacked.signature.as_ref(), trust)?;
    let manifest = unpacked.manifest;
    let Some(chain_hash) = ChainHash::parse(&manifest.chain_hash) else {
        bail!("备份清单的哈希算法 {:?} 无法识别 / unknown chain hash in the manifest", manifest.chain_hash);
    };
    // The events in the archive must verify and end on the manifest's heads before anything is written.
    let staged_path = staging.path().join(EVENTS_PART);
    let staged = open_staged(&staged_path)?;
    if staged.chain_hash() != chain_hash {
        bail!("备份中的事件库与清单的哈希算法不符 / the backup's events and manifest disagree on the chain hash");
    }
    check_heads(&crate::verify::verify_all(&staged).await?, &manifest, "备份中的事件库 / backup's events")?;
    match crate::store::location::configured_chain_hash() {
        None => crate::store::location::configure_chain_hash(Some(chain_hash)),
        Some(c) if c != chain_hash => bail!(
            "备份的哈希链使用 {chain_hash}，而配置为 {c} / the backup's chain hash is {chain_hash}, the configured one {c}"
        ),
        Some(_) => {}
    }
    if let Some(dir) = evidence_dir
        && !empty_dir(dir)?
    {
        return Err(not_empty(&dir.display().to_string()));
    }
    let opened = match target {
        StoreLocation::Sqlite { dir, .. } => {
            if !empty_dir(dir)? {
                return Err(not_empty(&target.display()));
            }
            staged.close().await;
            drop(staged);
            // The whole database as backed up (checkpoints and anchors included), placed while the
            // directory is locked, then opened.
            let lock = crate::datadir::DataDir::open_for_write(dir)?;
            let tmp = dir.join(".restore-ducha.db");
            std::fs::copy(&staged_path, &tmp)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, lock.db_path())?;
            drop(lock);
            open(target, Access::Write).await?
        }
        _ => {
            let opened = open(target, Access::Write).await?;
            if opened.store.head().await? > 0 {
                opened.close().await;
                return Err(not_empty(&target.display()));
            }
            crate::exchange::copy(&staged, &*opened.store, |_| {}).await?;
            staged.close().await;
            opened
        }
    };
    let home = crate::server_state::home::open(&opened, to_state, evidence_dir).await?;
    let mut evidence_files = 0;
    for part in &manifest.parts {
        let Some(rest) = part.name.strip_prefix(EVIDENCE_PREFIX) else { continue };
        let Some((tenant, sha)) = rest.split_once('/') else { continue };
        if sha.ends_with(".json") {
            continue;
        }
        let path = staging.path().join(&part.name);
        let meta = std::fs::read(staging.path().join(format!("{}.json", part.name)))
            .ok()
            .and_then(|m| serde_json::from_slice::<EvidenceMeta>(&m).ok())
            .unwrap_or(EvidenceMeta {
                filename: format!("{sha}.bin"),
                content_type: "application/octet-stream".into(),
                size: part.size,
            });
        home.state.evidence.put(tenant, sha, &meta, &path).await?;
        evidence_files += 1;
    }
    if manifest.parts.iter().any(|p| p.name == PERSON_KEYS_PART) {
        let bytes = std::fs::read(staging.path().join(PERSON_KEYS_PART))?;
        let keys: Vec<crate::server_state::StoredKey> = serde_json::from_slice(&bytes)
            .context("备份中的个人信息密钥无法读取 / the backup's person keys cannot be read")?;
        for key in &keys {
            home.state.person_keys.get_or_insert(key).await?;
        }
    }
    home.close().await;
    let model = crate::projector::load_live(&*opened.store).await?;
    crate::projector::checkpoint(&*opened.store, &model).await?;
    check_heads(&crate::verify::verify_all(&*opened.store).await?, &manifest, "恢复后的存储 / restored store")?;
    opened.close().await;
    Ok(Restored { manifest, signed, evidence_files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_must_stay_inside() {
        assert!(safe_name("evidence/t/abc").is_some());
        assert!(safe_name("../x").is_none());
        assert!(safe_name("/etc/passwd").is_none());
        assert!(safe_name("a/../../b").is_none());
        assert!(safe_name("").is_none());
    }

    #[test]
    fn random_and_truncated_files_are_refused_without_panic() {
        let dir = tempfile::tempdir().unwrap();
        let random = dir.path().join("random.tar");
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        std::fs::write(&random, &bytes).unwrap();
        let err = unpack_checked(&random, &dir.path().join("s1")).unwrap_err().to_string();
        assert!(err.contains("backup"), "{err}");
        let empty = dir.path().join("empty.tar");
        std::fs::write(&empty, b"").unwrap();
        let err = unpack_checked(&empty, &dir.path().join("s2")).unwrap_err().to_string();
        assert!(err.contains("no manifest"), "{err}");
    }
}
