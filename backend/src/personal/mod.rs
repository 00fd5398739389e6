//! Personal data at rest (个人信息保护, issue 10): each person's data in the events is sealed under a
//! key of their own ([`ducha_events::personal`] says which fields and whose), the keys are kept
//! wrapped by the deployment's master key in the shared server state ([`PersonKeys`]), and erasing a
//! person destroys their keys ([`erase`]). The chains cover the ciphertext, so they verify before and
//! after an erasure.
//!
//! - [`cipher`]: SM4-GCM (default) or AES-256-GCM.
//! - [`MasterKey`]: the file `personal_data_key_file` (one line `ducha-pii-1:<64 hex>`), generated as
//!   `personal.key` in a SQLite data directory when none is configured. Two keys are derived from it
//!   with HMAC-SM3: one wraps the person keys, one computes the keys' index (whose key it is, without
//!   storing a name).
//! - [`Keyring`]: seals payloads before they are appended and opens them for the read models, with
//!   a cache of unwrapped keys (a destroyed key is remembered as gone).
//! - [`store::SealingStore`]: an [`EventStore`](crate::store::EventStore) that does both around any
//!   backend.

pub mod cipher;
pub mod cli;
pub mod erase;
pub mod store;

use crate::server_state::{PersonKeys, StateError, StoredKey};
use cipher::Cipher;
use ducha_events::envelope::RecordedEvent;
use ducha_events::personal::{self as pii, Sealed, Subject};
use hmac_sm3::{Hmac, KeyInit, Mac};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The master key generated into a SQLite data directory when none is configured.
pub const GENERATED_KEY_FILE: &str = "personal.key";
const KEY_PREFIX: &str = "ducha-pii-1:";
const BLOB_MAGIC: &[u8] = b"DPC2";
/// A sealed blob's chunk (see [`Keyring::seal_blob`]).
const BLOB_CHUNK: usize = 4 << 20;
const SECRET_PREFIX: &str = "sealed:";

type HmacSm3 = Hmac<sm3::Sm3>;

/// The nonce of a blob's chunk: the blob's random base, then the chunk's number.
fn chunk_nonce(base: &[u8; 8], chunk: u32) -> [u8; cipher::NONCE_LEN] {
    let mut n = [0u8; cipher::NONCE_LEN];
    n[..8].copy_from_slice(base);
    n[8..].copy_from_slice(&chunk.to_be_bytes());
    n
}

/// What a blob's chunk is bound to: the layout, the algorithm, the number of chunks and its own.
fn chunk_aad(alg: u8, count: u32, chunk: u32) -> Vec<u8> {
    BLOB_MAGIC.iter().copied().chain([alg]).chain(count.to_le_bytes()).chain(chunk.to_le_bytes()).collect()
}

/// `f` over the chunks of `buf` (numbered from 0; an empty `buf` is one empty chunk), in order,
/// each core taking a run of them.
fn on_chunks<R: Send>(buf: &mut [u8], f: impl Fn(u32, &mut [u8]) -> R + Sync) -> Vec<R> {
    let mut chunks: Vec<(u32, &mut [u8])> =
        if buf.is_empty() { vec![(0, buf)] } else { (0u32..).zip(buf.chunks_mut(BLOB_CHUNK)).collect() };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(chunks.len());
    let per = chunks.len().div_ceil(threads.max(1));
    let f = &f;
    std::thread::scope(|s| {
        let runs: Vec<_> = chunks
            .chunks_mut(per)
            .map(|run| s.spawn(move || run.iter_mut().map(|(i, c)| f(*i, c)).collect::<Vec<R>>()))
            .collect();
        // A thread that panicked re-raises here, as the same work on this thread would have.
        runs.into_iter().flat_map(|r| r.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    })
}

fn hmac_sm3(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length.
    let mut mac = <HmacSm3 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("无法读取个人信息主密钥 {path} / cannot read the personal-data master key: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("无法生成个人信息主密钥 {path} / cannot create the personal-data master key: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("个人信息主密钥文件格式无效（应为一行 ducha-pii-1:64位十六进制）：{0} / not a master key")]
    Invalid(PathBuf),
    #[error("无法生成随机密钥 / no randomness: {0}")]
    Random(String),
}

/// The deployment's master key: never stored in the database, never in a backup of it.
pub struct MasterKey {
    wrap: [u8; 32],
    index: [u8; 32],
    /// The first 16 hex digits of SM3(wrap key): names the master key in logs and backups.
    pub id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl MasterKey {
    pub fn from_secret(secret: &[u8; 32]) -> MasterKey {
        let wrap = hmac_sm3(secret, &[b"ducha/pii/wrap"]);
        let index = hmac_sm3(secret, &[b"ducha/pii/index"]);
        let id = hex::encode(&sm3_digest(&wrap)[..8]);
        MasterKey { wrap, index, id }
    }

    pub fn from_text(text: &str) -> Option<MasterKey> {
        let hex_part = text.trim().strip_prefix(KEY_PREFIX)?;
        let bytes: [u8; 32] = hex::decode(hex_part).ok()?.try_into().ok()?;
        Some(MasterKey::from_secret(&bytes))
    }

    /// A new random secret as the key file's text.
    pub fn generate_text() -> Result<String, KeyError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(format!("{KEY_PREFIX}{}\n", hex::encode(secret)))
    }

    /// Loads the configured file, or the data directory's `personal.key` (generated if missing).
    /// `Ok(None)`: nothing configured and no data directory (a shared store without a key).
    pub fn load(file: Option<&Path>, data_dir: Option<&Path>) -> Result<Option<MasterKey>, KeyError> {
        let path = match (file, data_dir) {
            (Some(p), _) => p.to_owned(),
            (None, Some(dir)) => {
                let p = dir.join(GENERATED_KEY_FILE);
                generate_if_missing(&p)?;
                p
            }
            (None, None) => return Ok(None),
        };
        let text = std::fs::read_to_string(&path).map_err(|source| KeyError::Read { path: path.clone(), source })?;
        MasterKey::from_text(&text).map(Some).ok_or(KeyError::Invalid(path))
    }

    /// The index of a subject's key: HMAC-SM3 under the index key, hex. The name is not stored.
    pub fn index_of(&self, subject: &Subject) -> String {
        hex::encode(hmac_sm3(&self.index, &[subject.index_text().as_bytes()]))
    }

    fn wrap_key(&self, cipher: Cipher) -> &[u8] {
        &self.wrap[..cipher.key_len()]
    }
}

fn sm3_digest(data: &[u8]) -> [u8; 32] {
    use sm3::Digest;
    sm3::Sm3::digest(data).into()
}

fn generate_if_missing(path: &Path) -> Result<(), KeyError> {
    if path.exists() {
        return Ok(());
    }
    let text = MasterKey::generate_text()?;
    crate::datadir::create_owner_only(path, text.as_bytes())
        .map(drop)
        .map_err(|source| KeyError::Write { path: path.to_owned(), source })
}

/// The keyring of a deployment: the configured master key (or the data directory's), the
/// configured cipher, the shared vault. `None`: a shared store without a configured master key.
pub fn keyring(
    config: &crate::config::Config,
    key_dir: Option<&Path>,
    state: &crate::server_state::ServerState,
) -> Result<Option<Arc<Keyring>>, KeyError> {
    Ok(MasterKey::load(config.personal_data_key_file.as_deref(), key_dir)?
        .map(|m| Arc::new(Keyring::new(m, config.personal_data_cipher, state.person_keys.clone()))))
}

/// Opens a store for a command-line command that writes or shows personal data (`demo`, `replay`,
/// `import`, `import-ledger`, `admin create`, the documents), sealing and opening it as `ducha
/// serve` does: the master key from `DUCHA_PERSONAL_DATA_KEY_FILE` or the data directory's
/// `personal.key`, the person keys beside the events (`api.db`, or the PostgreSQL tables). A store
/// with no place for the keys (KurrentDB) or a shared store without a master key is opened as it is.
pub async fn open_store(
    location: &crate::store::StoreLocation,
    access: crate::store::Access,
) -> anyhow::Result<crate::store::OpenedStore> {
    let mut opened = crate::store::location::open(location, access).await?;
    let config = crate::config::Config::load(None, &crate::config::FlagOverrides::default())?;
    let Some(home) = crate::server_state::home::beside(&opened, None)? else { return Ok(opened) };
    match keyring(&config, home.key_dir.as_deref(), &home.state)? {
        Some(keys) => opened.seal(keys),
        None => eprintln!(
            "警告：共享存储未配置 personal_data_key_file，个人信息未加密 / warning: no personal_data_key_file: \
             personal data is not sealed"
        ),
    }
    Ok(opened)
}

/// An unwrapped person key.
#[derive(Clone)]
struct PersonKey {
    cipher: Cipher,
    bytes: Vec<u8>,
}

/// Seals and opens personal data with the person keys. Cheap to share behind an `Arc`.
pub struct Keyring {
    master: MasterKey,
    /// The algorithm of new person keys.
    cipher: Cipher,
    vault: Arc<dyn PersonKeys>,
    /// Unwrapped keys by id; `None`: the key is gone (destroyed, or never in this vault).
    cache: RwLock<HashMap<String, Option<PersonKey>>>,
    /// Key ids by index (whose key), for sealing without asking the vault each time.
    by_index: RwLock<HashMap<String, String>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("master", &self.master.id).field("cipher", &self.cipher).finish()
    }
}

impl Keyring {
    pub fn new(master: MasterKey, cipher: Cipher, vault: Arc<dyn PersonKeys>) -> Keyring {
        Keyring { master, cipher, vault, cache: RwLock::default(), by_index: RwLock::default() }
    }

    pub fn master_id(&self) -> &str {
        &self.master.id
    }

    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    pub fn vault(&self) -> &Arc<dyn PersonKeys> {
        &self.vault
    }

    pub fn index_of(&self, subject: &Subject) -> String {
        self.master.index_of(subject)
    }

    fn cached(&self, key_id: &str) -> Option<Option<PersonKey>> {
        self.cache.read().unwrap_or_else(|p| p.into_inner()).get(key_id).cloned()
    }

    fn remember(&self, key_id: &str, key: Option<PersonKey>) {
        self.cache.write().unwrap_or_else(|p| p.into_inner()).insert(key_id.to_owned(), key);
    }

    /// Forgets these keys for good in this process (they were destroyed, here or by another replica).
    pub fn forget(&self, key_ids: &[String]) {
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        for id in key_ids {
            cache.insert(id.clone(), None);
        }
        drop(cache);
        self.by_index.write().unwrap_or_else(|p| p.into_inner()).retain(|_, id| !key_ids.contains(id));
    }

    fn unwrap_key(&self, stored: &StoredKey) -> Option<PersonKey> {
        let cipher = Cipher::parse(&stored.algorithm)?;
        let (wrap_alg, blob) = stored.wrapped.split_once(':')?;
        let wrap_cipher = Cipher::parse(wrap_alg)?;
        let blob = hex::decode(blob).ok()?;
        if blob.len() < cipher::NONCE_LEN {
            return None;
        }
        let (nonce, ct) = blob.split_at(cipher::NONCE_LEN);
        let bytes = wrap_cipher.open(self.master.wrap_key(wrap_cipher), nonce, stored.key_id.as_bytes(), ct)?;
        (bytes.len() == cipher.key_len()).then_some(PersonKey { cipher, bytes })
    }

    /// The key of `subject`, made (and stored, wrapped) the first time.
    async fn key_for(&self, subject: &Subject) -> Result<(String, PersonKey), StateError> {
        let index = self.index_of(subject);
        let known = self.by_index.read().unwrap_or_else(|p| p.into_inner()).get(&index).cloned();
        if let Some(id) = known
            && let Some(Some(key)) = self.cached(&id)
        {
            return Ok((id, key));
        }
        let found = match self.vault.find(&index).await? {
            Some(k) => k,
            None => {
                let mut bytes = vec![0u8; self.cipher.key_len()];
                getrandom::fill(&mut bytes).map_err(|e| StateError::Io(format!("no randomness: {e}")))?;
                let key_id = uuid::Uuid::new_v4().simple().to_string();
                let (nonce, ct) = self
                    .cipher
                    .seal(self.master.wrap_key(self.cipher), key_id.as_bytes(), &bytes)
                    .map_err(StateError::Io)?;
                let wrapped = format!("{}:{}{}", self.cipher.code(), hex::encode(nonce), hex::encode(ct));
                let new = StoredKey { key_id, index: index.clone(), algorithm: self.cipher.code().into(), wrapped };
                self.vault.get_or_insert(&new).await?
            }
        };
        let key = self.unwrap_key(&found).ok_or_else(|| {
            StateError::Io(format!(
                "个人信息密钥 {} 无法用当前主密钥解开（主密钥是否更换过？） / person key {} cannot be unwrapped with \
                 this master key",
                found.key_id, found.key_id
            ))
        })?;
        self.remember(&found.key_id, Some(key.clone()));
        self.by_index.write().unwrap_or_else(|p| p.into_inner()).insert(index, found.key_id.clone());
        Ok((found.key_id, key))
    }

    /// The payload with its personal fields sealed (`None`: nothing to seal, keep it as it is).
    pub async fn seal_payload(
        &self,
        event_type: &str,
        tenant: &str,
        payload: &str,
    ) -> Result<Option<String>, StateError> {
        // First pass: whose data is in it (the closure cannot wait for the vault).
        let mut subjects: BTreeSet<Subject> = BTreeSet::new();
        let probe = pii::seal::<()>(event_type, tenant, payload, &mut |s, _| {
            subjects.insert(s.clone());
            Ok(Sealed { k: String::new(), a: String::new(), n: String::new(), c: String::new() })
        });
        if !matches!(probe, Ok(Some(_))) {
            return Ok(None);
        }
        let mut keys: HashMap<Subject, (String, PersonKey)> = HashMap::new();
        for s in subjects {
            let k = self.key_for(&s).await?;
            keys.insert(s, k);
        }
        pii::seal::<String>(event_type, tenant, payload, &mut |s, text| {
            let (key_id, key) = keys.get(s).ok_or_else(|| "a key went missing".to_owned())?;
            let (nonce, ct) = key.cipher.seal(&key.bytes, key_id.as_bytes(), text.as_bytes())?;
            Ok(Sealed { k: key_id.clone(), a: key.cipher.code().into(), n: hex::encode(nonce), c: hex::encode(ct) })
        })
        .map_err(StateError::Io)
    }

    /// Encrypts a blob that holds opened personal data (the read model's checkpoint) under a key
    /// derived from the master key: `DPC2 ‖ algorithm byte ‖ nonce base (8) ‖ chunks (u32 LE) ‖
    /// ciphertext ‖ one tag per chunk`.
    ///
    /// Sealed in chunks of [`BLOB_CHUNK`] on every core (SM4 runs at about 80 MB/s on one: a
    /// checkpoint of 409 MiB took 5 s), each under the nonce `base ‖ chunk number` and bound to
    /// its number and the count (no chunk can be moved, dropped or added), and in place: the
    /// bytes are not held twice. The header goes in front within the buffer's capacity when it
    /// has room (the checkpoint encoder leaves some).
    pub fn seal_blob(&self, data: Vec<u8>) -> Result<Vec<u8>, String> {
        let key = self.blob_key();
        let cipher = self.cipher;
        let alg = if cipher == Cipher::Sm4Gcm { 1 } else { 2 };
        let mut base = [0u8; 8];
        getrandom::fill(&mut base).map_err(|e| format!("no randomness: {e}"))?;
        let count = u32::try_from(data.len().div_ceil(BLOB_CHUNK).max(1)).map_err(|_| "blob too large".to_owned())?;
        let mut out = data;
        let tags = on_chunks(&mut out, |i, chunk| {
            cipher.seal_detached(&key[..cipher.key_len()], &chunk_nonce(&base, i), &chunk_aad(alg, count, i), chunk)
        });
        for tag in tags {
            out.extend_from_slice(&tag?);
        }
        let header = BLOB_MAGIC.iter().copied().chain([alg]).chain(base).chain(count.to_le_bytes());
        out.splice(0..0, header);
        Ok(out)
    }

    /// The blob [`Keyring::seal_blob`] made, opened in place on every core; `None` for anything
    /// else (a checkpoint written in clear before encryption was on, or under another master key,
    /// or altered, cut or lengthened anywhere: the caller rebuilds instead).
    pub fn open_blob(&self, blob: Vec<u8>) -> Option<Vec<u8>> {
        let rest = blob.strip_prefix(BLOB_MAGIC)?;
        let (&alg, rest) = rest.split_first()?;
        let cipher = match alg {
            1 => Cipher::Sm4Gcm,
            2 => Cipher::Aes256Gcm,
            _ => return None,
        };
        let (base, rest) = rest.split_first_chunk::<8>()?;
        let (count, rest) = rest.split_first_chunk::<4>()?;
        let (base, count) = (*base, u32::from_le_bytes(*count));
        let body = rest.len().checked_sub(usize::try_from(count).ok()?.checked_mul(cipher::TAG_LEN)?)?;
        if usize::try_from(count).ok()? != body.div_ceil(BLOB_CHUNK).max(1) {
            return None;
        }
        let header = blob.len() - rest.len();
        let tags: Vec<[u8; cipher::TAG_LEN]> =
            rest[body..].chunks_exact(cipher::TAG_LEN).filter_map(|t| t.try_into().ok()).collect();
        let mut blob = blob;
        blob.truncate(header + body);
        let key = self.blob_key();
        let opened = on_chunks(&mut blob[header..], |i, chunk| {
            tags.get(i as usize).is_some_and(|tag| {
                cipher.open_detached(
                    &key[..cipher.key_len()],
                    &chunk_nonce(&base, i),
                    &chunk_aad(alg, count, i),
                    chunk,
                    tag,
                )
            })
        });
        if !opened.iter().all(|ok| *ok) {
            return None;
        }
        blob.drain(..header);
        Some(blob)
    }

    fn blob_key(&self) -> [u8; 32] {
        hmac_sm3(&self.master.wrap, &[b"ducha/pii/checkpoint"])
    }

    /// A second factor's secret as stored: `sealed:<cipher>:<hex nonce ‖ ciphertext>` under a key
    /// derived from the master key, bound to the account (等保 数据保密性: the TOTP secrets must be
    /// readable to check codes, so they are encrypted, not hashed).
    pub fn seal_secret(&self, user_id: &str, secret: &str) -> Result<String, String> {
        self.seal_labelled(b"ducha/second-factor", &format!("totp:{user_id}"), secret)
    }

    /// The secret [`Keyring::seal_secret`] stored; one stored in clear (before encryption was on)
    /// as it is; `None` when it does not open (another master key, another account's row).
    pub fn open_secret(&self, user_id: &str, stored: &str) -> Option<String> {
        self.open_labelled(b"ducha/second-factor", &format!("totp:{user_id}"), stored)
    }

    /// A secret the server must be able to read again (a TOTP seed, a channel's signing key), as
    /// stored: `sealed:<cipher>:<hex nonce ‖ ciphertext>` under a key derived from the master key
    /// for `purpose`, bound to `binding` (authenticated, so a value moved to another row does not
    /// open).
    pub fn seal_labelled(&self, purpose: &[u8], binding: &str, secret: &str) -> Result<String, String> {
        let key = hmac_sm3(&self.master.wrap, &[purpose]);
        let (nonce, ct) = self.cipher.seal(&key[..self.cipher.key_len()], binding.as_bytes(), secret.as_bytes())?;
        Ok(format!("{SECRET_PREFIX}{}:{}{}", self.cipher.code(), hex::encode(nonce), hex::encode(ct)))
    }

    /// What [`Keyring::seal_labelled`] stored; a value stored in clear as it is; `None` when it
    /// does not open (another master key, purpose or binding).
    pub fn open_labelled(&self, purpose: &[u8], binding: &str, stored: &str) -> Option<String> {
        let Some(rest) = stored.strip_prefix(SECRET_PREFIX) else { return Some(stored.to_owned()) };
        let (alg, blob) = rest.split_once(':')?;
        let cipher = Cipher::parse(alg)?;
        let blob = hex::decode(blob).ok()?;
        if blob.len() < cipher::NONCE_LEN {
            return None;
        }
        let (nonce, ct) = blob.split_at(cipher::NONCE_LEN);
        let key = hmac_sm3(&self.master.wrap, &[purpose]);
        String::from_utf8(cipher.open(&key[..cipher.key_len()], nonce, binding.as_bytes(), ct)?).ok()
    }

    /// Opens the sealed values of these events in place: the plaintext where the key exists,
    /// 「已删除的个人信息」 where it was destroyed. Keys named by a `PersonalDataErased` among them are
    /// forgotten first (another replica destroyed them).
    pub async fn open_events(&self, events: &mut [RecordedEvent]) -> Result<(), StateError> {
        for e in events.iter().filter(|e| e.event_type == "PersonalDataErased") {
            if let Ok(ducha_events::Event::PersonalDataErased(x)) = e.decode() {
                self.forget(&x.key_ids);
            }
        }
        let wanted: BTreeSet<String> = events
            .iter()
            .filter(|e| pii::has_sealed(&e.payload))
            .flat_map(|e| pii::key_ids(&e.payload))
            .filter(|id| self.cached(id).is_none())
            .collect();
        for id in wanted {
            let key = self.vault.get(&id).await?.and_then(|k| self.unwrap_key(&k));
            self.remember(&id, key);
        }
        for e in events.iter_mut() {
            if let Some(opened) = pii::open(&e.payload, &mut |s| self.open_one(s)) {
                e.payload = opened;
            }
        }
        Ok(())
    }

    fn open_one(&self, s: &Sealed) -> String {
        let Some(Some(key)) = self.cached(&s.k) else { return pii::ERASED.to_owned() };
        let (Ok(nonce), Ok(ct)) = (hex::decode(&s.n), hex::decode(&s.c)) else { return pii::SEALED.to_owned() };
        key.cipher
            .open(&key.bytes, &nonce, s.k.as_bytes(), &ct)
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_else(|| pii::SEALED.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server_state::ServerState;

    fn keyring(dir: &Path, cipher: Cipher) -> Keyring {
        let state = ServerState::sqlite(dir, &dir.join("evidence")).unwrap();
        let master = MasterKey::load(None, Some(dir)).unwrap().unwrap();
        Keyring::new(master, cipher, state.person_keys)
    }

    #[tokio::test]
    async fn sealed_names_open_until_the_key_is_destroyed() {
        for cipher in Cipher::ALL {
            let dir = tempfile::tempdir().unwrap();
            let ring = keyring(dir.path(), cipher);
            let payload = r#"{"inspection_id":"i1","title":"t","measure":"m","responsible_unit":"u","leader":"王五","person":"张三、李四","deadline":"2024-06-30"}"#;
            let sealed = ring.seal_payload("RectificationAssigned", "xxjd", payload).await.unwrap().unwrap();
            assert!(!sealed.contains("张三") && !sealed.contains("王五"), "{sealed}");
            assert!(sealed.contains(cipher.code()));
            // The same person gets the same key; another tenant's 张三 is another person.
            let zhang = ring.index_of(&Subject::Name { tenant: "xxjd".into(), name: "张三".into() });
            let other = ring.index_of(&Subject::Name { tenant: "yyjd".into(), name: "张三".into() });
            assert_ne!(zhang, other);
            let again = ring.seal_payload("RectificationAssigned", "xxjd", payload).await.unwrap().unwrap();
            assert_eq!(pii::key_ids(&again), pii::key_ids(&sealed));
            assert_eq!(ring.vault().list().await.unwrap().len(), 3);

            let event = |p: &str| RecordedEvent {
                position: 1,
                tenant_seq: 1,
                event_id: "e".into(),
                tenant: ducha_events::ids::TenantId::parse("xxjd").unwrap(),
                stream: "xxjd/finding-f1".into(),
                stream_version: 1,
                event_type: "RectificationAssigned".into(),
                schema_version: 1,
                occurred_at: String::new(),
                actor: ducha_events::envelope::ActorRef {
                    user_id: ducha_events::ids::UserId::parse("u1").unwrap(),
                    role: ducha_events::authz::Role::SubdistrictAdmin,
                },
                correlation_id: String::new(),
                causation_id: None,
                payload: p.into(),
                prev_hash: String::new(),
                hash: String::new(),
            };
            // A fresh process (empty cache) with the same master key reads it.
            let fresh = keyring(dir.path(), cipher);
            let mut events = vec![event(&sealed)];
            fresh.open_events(&mut events).await.unwrap();
            let v: serde_json::Value = serde_json::from_str(&events[0].payload).unwrap();
            assert_eq!((v["person"].as_str(), v["leader"].as_str()), (Some("张三、李四"), Some("王五")));
            // Without keys (the raw log) it decodes as sealed.
            let raw = event(&sealed).decode().unwrap();
            let ducha_events::Event::RectificationAssigned(r) = raw else { panic!() };
            assert_eq!(r.person, format!("{}、{}", pii::SEALED, pii::SEALED));

            // Erase 张三: only his name goes, in every process that is told.
            let k = fresh.vault().find(&zhang).await.unwrap().unwrap().key_id;
            assert_eq!(fresh.vault().destroy(std::slice::from_ref(&k)).await.unwrap(), 1);
            fresh.forget(std::slice::from_ref(&k));
            let mut events = vec![event(&sealed)];
            fresh.open_events(&mut events).await.unwrap();
            let v: serde_json::Value = serde_json::from_str(&events[0].payload).unwrap();
            assert_eq!(v["person"].as_str(), Some(format!("{}、李四", pii::ERASED).as_str()));
            let later = keyring(dir.path(), cipher);
            let mut events = vec![event(&sealed)];
            later.open_events(&mut events).await.unwrap();
            assert!(events[0].payload.contains(pii::ERASED));
            // Another master key opens nothing.
            let stranger = Keyring::new(
                MasterKey::from_secret(&[9u8; 32]),
                cipher,
                ServerState::sqlite(dir.path(), &dir.path().join("evidence")).unwrap().person_keys,
            );
            let mut events = vec![event(&sealed)];
            stranger.open_events(&mut events).await.unwrap();
            assert!(!events[0].payload.contains("李四"));
        }
    }

    #[test]
    fn checkpoints_are_sealed_and_a_clear_one_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let ring = keyring(dir.path(), Cipher::Sm4Gcm);
        let blob = ring.seal_blob("{\"users\":\"张三\"}".as_bytes().to_vec()).unwrap();
        assert!(!String::from_utf8_lossy(&blob).contains("张三"));
        assert_eq!(ring.open_blob(blob.clone()).unwrap(), "{\"users\":\"张三\"}".as_bytes());
        assert_eq!(ring.open_blob(b"{\"users\":1}".to_vec()), None);
        for at in [0, 4, 5, 16, 17, blob.len() - 17, blob.len() - 1] {
            let mut bad = blob.clone();
            bad[at] ^= 1;
            assert_eq!(ring.open_blob(bad), None, "byte {at} altered");
        }
        for cut in 0..blob.len() {
            assert_eq!(ring.open_blob(blob[..cut].to_vec()), None, "cut at {cut}");
        }
        let aes = keyring(dir.path(), Cipher::Aes256Gcm);
        let blob = aes.seal_blob(b"aes".to_vec()).unwrap();
        assert_eq!(blob[4], 2);
        assert_eq!(ring.open_blob(blob).as_deref(), Some(&b"aes"[..]), "the algorithm is the blob's");
    }

    /// A blob of several chunks (sealed on every core) opens whole, and not once any chunk is
    /// moved, dropped or its count changed; an empty blob is one empty chunk.
    #[test]
    fn blobs_of_many_chunks_open_only_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let ring = keyring(dir.path(), Cipher::Sm4Gcm);
        let data: Vec<u8> = (0..BLOB_CHUNK * 5 / 2).map(|i| (i * 7 % 251) as u8).collect();
        let blob = ring.seal_blob(data.clone()).unwrap();
        let (header, tags) = (17, 3 * cipher::TAG_LEN);
        assert_eq!(blob.len(), header + data.len() + tags);
        assert_eq!(&blob[13..17], &3u32.to_le_bytes());
        assert_eq!(ring.open_blob(blob.clone()).as_deref(), Some(&data[..]));
        // The first two chunks swapped, with their tags.
        let mut swapped = blob.clone();
        let (a, b) = (header..header + BLOB_CHUNK, header + BLOB_CHUNK..header + 2 * BLOB_CHUNK);
        let first = blob[a.clone()].to_vec();
        swapped[a.clone()].copy_from_slice(&blob[b.clone()]);
        swapped[b].copy_from_slice(&first);
        let t = blob.len() - tags;
        swapped[t..t + 16].copy_from_slice(&blob[t + 16..t + 32]);
        swapped[t + 16..t + 32].copy_from_slice(&blob[t..t + 16]);
        assert_eq!(ring.open_blob(swapped), None, "chunks in another order");
        // The last chunk dropped, with its tag, and the count lowered to match.
        let mut dropped = blob[..header + 2 * BLOB_CHUNK].to_vec();
        dropped.extend_from_slice(&blob[t..t + 32]);
        dropped[13..17].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(ring.open_blob(dropped), None, "a chunk dropped");
        for count in [0u32, 2, 4, u32::MAX] {
            let mut wrong = blob.clone();
            wrong[13..17].copy_from_slice(&count.to_le_bytes());
            assert_eq!(ring.open_blob(wrong), None, "count {count}");
        }
        let mut flipped = blob.clone();
        flipped[header + BLOB_CHUNK * 2 + 5] ^= 1;
        assert_eq!(ring.open_blob(flipped), None, "a byte of the last chunk");
        let empty = ring.seal_blob(Vec::new()).unwrap();
        assert_eq!(empty.len(), header + cipher::TAG_LEN);
        assert_eq!(ring.open_blob(empty).as_deref(), Some(&b""[..]));
    }

    #[test]
    fn second_factor_secrets_are_sealed_per_account() {
        let dir = tempfile::tempdir().unwrap();
        let ring = keyring(dir.path(), Cipher::Sm4Gcm);
        let stored = ring.seal_secret("u1", "JBSWY3DPEHPK3PXP").unwrap();
        assert!(stored.starts_with("sealed:sm4-gcm:") && !stored.contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(ring.open_secret("u1", &stored).as_deref(), Some("JBSWY3DPEHPK3PXP"));
        assert_eq!(ring.open_secret("u2", &stored), None, "bound to its account");
        assert_eq!(ring.open_secret("u1", "JBSWY3DPEHPK3PXP").as_deref(), Some("JBSWY3DPEHPK3PXP"));
    }

    /// docs/SECURITY.md's inventory names every sealed field (a line with its event type and field).
    #[test]
    fn the_inventory_in_the_docs_names_every_sealed_field() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/SECURITY.md")).unwrap();
        for f in pii::FIELDS {
            assert!(
                doc.lines().any(|l| l.starts_with('|') && l.contains(f.event_type) && l.contains(f.field)),
                "docs/SECURITY.md does not list {}.{}",
                f.event_type,
                f.field
            );
        }
    }

    #[test]
    fn master_key_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let a = MasterKey::load(None, Some(dir.path())).unwrap().unwrap();
        let b = MasterKey::load(None, Some(dir.path())).unwrap().unwrap();
        assert_eq!(a.id, b.id, "generated once, then read");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(GENERATED_KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let bad = dir.path().join("bad.key");
        std::fs::write(&bad, "ducha-pii-1:1234").unwrap();
        assert!(matches!(MasterKey::load(Some(&bad), None), Err(KeyError::Invalid(_))));
        assert!(MasterKey::load(None, None).unwrap().is_none());
    }
}
