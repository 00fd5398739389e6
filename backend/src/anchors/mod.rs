//! Signed checkpoints (锚点) of every tenant's chain head, the model of Certificate Transparency's
//! signed tree heads: a hash chain alone can be recomputed by whoever can write the database, a
//! signature over its head by a key kept elsewhere cannot.
//!
//! An anchor is an event (`AnchorRecorded`) on `_anchors/anchors`, a chain of its own (like the
//! security log's `_security`), so anchors are verified, exported and kept like any other history.
//! `ducha anchor` and the server's maintenance round (every `anchor_interval_seconds`) anchor each
//! tenant whose head moved since its last anchor. Exported (`ducha anchors export`,
//! `GET /api/v1/anchors`) and kept off the system, they let `ducha verify --anchors FILE` name the
//! first tenant and sequence where the live history no longer is what was signed.
//!
//! The signed bytes are specified in `docs/AUDIT.md` ("Anchors"); keep both in step.

pub mod key;

use crate::store::{AppendRequest, EventStore, ExpectedVersion, StoreError, Upto};
use ducha_events::authz::Role;
use ducha_events::envelope::{ActorRef, NewEvent, RecordedEvent};
use ducha_events::event::{AnchorRecorded, Event};
use ducha_events::ids::{TenantId, UserId, stream};
pub use key::{AnchorAlgorithm, AnchorKey, AnchorKeyError, PublicKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The first field of the signed bytes.
pub const FORMAT_TAG: &str = "DUCHA-ANCHOR-1";
/// The `format` of an export file.
pub const EXPORT_FORMAT: &str = "ducha-anchors-1";

/// The bytes an anchor's signature covers: for each field in this order, its UTF-8 bytes preceded
/// by their length as a 4-byte big-endian unsigned integer (as in the chain's canonical bytes).
pub fn signed_bytes(a: &AnchorRecorded) -> Vec<u8> {
    let sequence = a.sequence.to_string();
    let position = a.position.to_string();
    let fields: [&[u8]; 9] = [
        FORMAT_TAG.as_bytes(),
        a.tenant.as_str().as_bytes(),
        sequence.as_bytes(),
        a.head_hash.as_bytes(),
        position.as_bytes(),
        a.anchored_at.as_bytes(),
        a.chain_hash.as_bytes(),
        a.algorithm.as_bytes(),
        a.key_id.as_bytes(),
    ];
    let mut out = Vec::new();
    for f in fields {
        out.extend_from_slice(&(f.len() as u32).to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// The first field of an issued report's signed bytes.
pub const REPORT_TAG: &str = "DUCHA-REPORT-1";

fn length_prefixed(fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        out.extend_from_slice(&(f.len() as u32).to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// The bytes an issued report's signature covers (length-prefixed like an anchor's): the tag,
/// tenant, inspection id, SHA-256, log position, format, algorithm, key id.
pub fn report_signed_bytes(
    tenant: &str,
    inspection: &str,
    sha256: &str,
    log_position: u64,
    format: &str,
    algorithm: &str,
    key_id: &str,
) -> Vec<u8> {
    let position = log_position.to_string();
    length_prefixed(&[
        REPORT_TAG.as_bytes(),
        tenant.as_bytes(),
        inspection.as_bytes(),
        sha256.as_bytes(),
        position.as_bytes(),
        format.as_bytes(),
        algorithm.as_bytes(),
        key_id.as_bytes(),
    ])
}

/// Signs an issued report with the anchors' key (Ed25519 or SM2).
pub fn sign_report(
    key: &AnchorKey,
    tenant: &str,
    inspection: &str,
    sha256: &str,
    log_position: u64,
    format: &str,
) -> ducha_events::event::ReportSignature {
    let public = key.public_key();
    let algorithm = public.algorithm.code();
    let bytes = report_signed_bytes(tenant, inspection, sha256, log_position, format, algorithm, &public.key_id);
    ducha_events::event::ReportSignature {
        algorithm: algorithm.to_owned(),
        key_id: public.key_id,
        public_key: public.public_key,
        signature: key.sign(&bytes),
    }
}

/// Whether the anchor's signature is valid under its own public key, and that key has its id.
/// (Whether that key is *the* server's key is the reader's question: compare it with the key
/// published in `docs/AUDIT.md` or pin it with `--public-key`.)
pub fn signature_valid(a: &AnchorRecorded) -> bool {
    let Some(algorithm) = AnchorAlgorithm::parse(&a.algorithm) else { return false };
    let Some(public) = PublicKey::from_parts(algorithm, &a.public_key) else { return false };
    public.key_id == a.key_id && public.verify(&signed_bytes(a), &a.signature)
}

/// The recorder of every anchor: the anchoring service, a reserved id, never an account.
fn recorder() -> ActorRef {
    ActorRef {
        user_id: UserId::parse("_anchors").unwrap_or_else(|_| unreachable!("valid literal id")),
        role: Role::AuditAdmin,
    }
}

/// One anchor as exported: what was signed, and where the anchor itself is in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportedAnchor {
    #[serde(flatten)]
    pub anchor: AnchorRecorded,
    /// The anchor event's own position and hash (in the `_anchors` chain).
    pub anchor_position: u64,
    pub anchor_hash: String,
}

/// An export of the anchors (`ducha anchors export`, `GET /api/v1/anchors`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AnchorExport {
    /// `ducha-anchors-1`.
    pub format: String,
    /// When exported (RFC 3339, UTC).
    pub exported_at: String,
    /// The store's chain hash: `sha256` or `sm3`.
    pub chain_hash: String,
    /// Every key the anchors were signed with.
    pub public_keys: Vec<PublicKey>,
    /// Oldest first.
    pub anchors: Vec<ExportedAnchor>,
}

/// Every anchor in the store, oldest first.
pub async fn list<S: EventStore + ?Sized>(store: &S) -> Result<Vec<ExportedAnchor>, StoreError> {
    let tenant = TenantId::anchors();
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = store.read_tenant(&tenant, after, 5_000, Upto::Head).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        out.extend(page.iter().filter_map(exported));
    }
    Ok(out)
}

fn exported(e: &RecordedEvent) -> Option<ExportedAnchor> {
    let Ok(Event::AnchorRecorded(anchor)) = e.decode() else { return None };
    Some(ExportedAnchor { anchor, anchor_position: e.position, anchor_hash: e.hash.clone() })
}

/// The export of every anchor in the store.
pub async fn export<S: EventStore + ?Sized>(store: &S) -> Result<AnchorExport, StoreError> {
    let anchors = list(store).await?;
    let mut public_keys: Vec<PublicKey> = Vec::new();
    for a in &anchors {
        if public_keys.iter().any(|k| k.key_id == a.anchor.key_id) {
            continue;
        }
        if let Some(k) =
            AnchorAlgorithm::parse(&a.anchor.algorithm).and_then(|alg| PublicKey::from_parts(alg, &a.anchor.public_key))
        {
            public_keys.push(k);
        }
    }
    Ok(AnchorExport {
        format: EXPORT_FORMAT.into(),
        exported_at: ducha_events::time::format(&chrono::Utc::now()),
        chain_hash: store.chain_hash().code().into(),
        public_keys,
        anchors,
    })
}

/// Signs and records an anchor of every tenant whose head moved since its last anchor by this key
/// (the `_anchors` chain itself is not anchored: an anchor of anchors would never be current).
/// Returns the new anchors.
pub async fn anchor_all<S: EventStore + ?Sized>(store: &S, key: &AnchorKey) -> Result<Vec<AnchorRecorded>, StoreError> {
    let public = key.public_key();
    let mut last: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for a in list(store).await? {
        if a.anchor.key_id == public.key_id {
            last.insert(a.anchor.tenant.to_string(), (a.anchor.sequence, a.anchor.head_hash));
        }
    }
    let now = chrono::Utc::now();
    let at = ducha_events::time::format(&now);
    let mut made = Vec::new();
    for head in store.tenants().await? {
        if head.tenant.is_anchors() || head.events == 0 {
            continue;
        }
        if last.get(head.tenant.as_str()).is_some_and(|(seq, hash)| *seq == head.events && *hash == head.head_hash) {
            continue;
        }
        let mut anchor = AnchorRecorded {
            tenant: head.tenant.clone(),
            sequence: head.events,
            head_hash: head.head_hash.clone(),
            position: head.last_position,
            anchored_at: at.clone(),
            chain_hash: store.chain_hash().code().into(),
            algorithm: public.algorithm.code().into(),
            key_id: public.key_id.clone(),
            public_key: public.public_key.clone(),
            signature: String::new(),
        };
        anchor.signature = key.sign(&signed_bytes(&anchor));
        made.push(anchor);
    }
    if made.is_empty() {
        return Ok(made);
    }
    let correlation = uuid::Uuid::now_v7().to_string();
    let events = made
        .iter()
        .map(|a| {
            let event = Event::from(a.clone());
            NewEvent::from_event(&event, uuid::Uuid::now_v7().to_string(), now, recorder(), correlation.clone(), None)
        })
        .collect();
    store
        .append(AppendRequest {
            tenant: TenantId::anchors(),
            stream: stream::anchors(),
            expected: ExpectedVersion::Any,
            events,
            idempotency_key: None,
        })
        .await?;
    Ok(made)
}

/// Where the live history is not what an anchor signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Divergence {
    pub tenant: String,
    /// The anchored sequence whose head differs (or is missing).
    pub sequence: u64,
    /// The last anchored sequence of this tenant that still matched (0: none): the rewrite is in
    /// `last_good + 1 ..= sequence`.
    pub last_good: u64,
    /// What the anchor signed.
    pub anchored_hash: String,
    /// What the live chain has at that sequence (None: the chain is shorter).
    pub live_hash: Option<String>,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.live_hash {
            Some(live) => write!(
                f,
                "租户 {} 第 {} 个事件的哈希与锚点不符（锚点 {}，现存 {}），历史在第 {} 至 {} 个事件之间被改写 / tenant {} \
                 differs from its anchor at sequence {} (rewritten within {}..={})",
                self.tenant,
                self.sequence,
                short(&self.anchored_hash),
                short(live),
                self.last_good + 1,
                self.sequence,
                self.tenant,
                self.sequence,
                self.last_good + 1,
                self.sequence
            ),
            None => write!(
                f,
                "租户 {} 缺少锚点所签的第 {} 个事件（历史被截短） / tenant {} lacks anchored sequence {} (history truncated)",
                self.tenant, self.sequence, self.tenant, self.sequence
            ),
        }
    }
}

fn short(h: &str) -> &str {
    h.get(..16).unwrap_or(h)
}

/// What checking a store against an anchors file found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AnchorCheck {
    /// Anchors checked (with valid signatures).
    pub checked: u64,
    /// Anchors whose signature is invalid or whose key is not the pinned one (file order indexes).
    pub bad_signatures: Vec<String>,
    /// Per tenant, the first anchor the live history contradicts; by tenant.
    pub divergences: Vec<Divergence>,
    /// The file's chain hash differs from the store's.
    pub chain_hash_mismatch: Option<String>,
}

impl AnchorCheck {
    pub fn ok(&self) -> bool {
        self.bad_signatures.is_empty() && self.divergences.is_empty() && self.chain_hash_mismatch.is_none()
    }
}

/// Checks the live chains of `store` against anchors kept elsewhere: every signature (under the
/// anchor's own key, which must be `pinned` when given), then, per tenant, whether the live chain
/// has at each anchored sequence the hash that was signed.
pub async fn check<S: EventStore + ?Sized>(
    store: &S,
    file: &AnchorExport,
    pinned: Option<&PublicKey>,
) -> Result<AnchorCheck, StoreError> {
    let mut out = AnchorCheck::default();
    if file.chain_hash != store.chain_hash().code() {
        out.chain_hash_mismatch = Some(format!(
            "锚点文件的哈希算法为 {}，存储为 {} / the file's chain hash is {}, the store's {}",
            file.chain_hash,
            store.chain_hash(),
            file.chain_hash,
            store.chain_hash()
        ));
    }
    let mut by_tenant: BTreeMap<String, BTreeMap<u64, String>> = BTreeMap::new();
    for (i, a) in file.anchors.iter().enumerate() {
        let a = &a.anchor;
        let pin_ok = pinned.is_none_or(|p| p.key_id == a.key_id && p.public_key == a.public_key);
        if !pin_ok || !signature_valid(a) {
            out.bad_signatures.push(format!(
                "第 {} 个锚点（租户 {}，第 {} 个事件）签名无效或非指定公钥所签 / anchor #{} has a bad signature or \
                 another key",
                i + 1,
                a.tenant,
                a.sequence,
                i + 1
            ));
            continue;
        }
        out.checked += 1;
        by_tenant.entry(a.tenant.to_string()).or_default().insert(a.sequence, a.head_hash.clone());
    }
    for (tenant, anchored) in by_tenant {
        let Ok(id) = TenantId::parse(tenant.as_str()) else { continue };
        let Some(&max_seq) = anchored.keys().next_back() else { continue };
        // The live hash at every anchored sequence, reading the tenant's chain in order.
        let mut live: BTreeMap<u64, String> = BTreeMap::new();
        let mut after = 0;
        'read: loop {
            let page = store.read_tenant(&id, after, 10_000, Upto::Head).await?;
            let Some(last) = page.last() else { break };
            after = last.position;
            for e in &page {
                if anchored.contains_key(&e.tenant_seq) {
                    live.insert(e.tenant_seq, e.hash.clone());
                }
                if e.tenant_seq >= max_seq {
                    break 'read;
                }
            }
        }
        let mut last_good = 0;
        for (seq, hash) in &anchored {
            match live.get(seq) {
                Some(h) if h == hash => last_good = *seq,
                other => {
                    out.divergences.push(Divergence {
                        tenant: tenant.clone(),
                        sequence: *seq,
                        last_good,
                        anchored_hash: hash.clone(),
                        live_hash: other.cloned(),
                    });
                    break;
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::{SqliteOptions, SqliteStore, Synchronous};
    use ducha_events::chain::ChainHash;

    fn store(dir: &std::path::Path, chain_hash: ChainHash) -> SqliteStore {
        let opts = SqliteOptions { synchronous: Synchronous::Off, read_only: false, chain_hash: Some(chain_hash) };
        SqliteStore::open(&dir.join("ducha.db"), opts).unwrap()
    }

    async fn add(store: &SqliteStore, tenant: &str, n: usize) {
        let t = TenantId::parse(tenant).unwrap();
        for i in 0..n {
            let event = Event::from(ducha_events::event::CommunityAdded {
                community_id: ducha_events::ids::CommunityId::parse(format!("c{i}")).unwrap(),
                name: "社区".into(),
            });
            let actor = ActorRef { user_id: UserId::parse("u1").unwrap(), role: Role::SubdistrictAdmin };
            let id = uuid::Uuid::now_v7().to_string();
            let new = NewEvent::from_event(&event, id, chrono::Utc::now(), actor, "c".into(), None);
            let req = AppendRequest {
                tenant: t.clone(),
                stream: stream::tenant(&t),
                expected: ExpectedVersion::Any,
                events: vec![new],
                idempotency_key: None,
            };
            store.append(req).await.unwrap();
        }
    }

    #[tokio::test]
    async fn anchors_sign_moved_heads_only_and_a_file_checks_the_live_chains() {
        for (chain_hash, alg) in [(ChainHash::Sha256, AnchorAlgorithm::Ed25519), (ChainHash::Sm3, AnchorAlgorithm::Sm2)]
        {
            let dir = tempfile::tempdir().unwrap();
            let s = store(dir.path(), chain_hash);
            let key = AnchorKey::generate(alg).unwrap();
            add(&s, "t1", 1).await;
            add(&s, "t2", 2).await;
            let made = anchor_all(&s, &key).await.unwrap();
            assert_eq!(
                made.iter().map(|a| (a.tenant.as_str(), a.sequence)).collect::<Vec<_>>(),
                [("t1", 1), ("t2", 2)]
            );
            assert!(made.iter().all(signature_valid));
            assert!(made.iter().all(|a| a.chain_hash == chain_hash.code() && a.algorithm == alg.code()));
            assert!(anchor_all(&s, &key).await.unwrap().is_empty(), "nothing moved");
            add(&s, "t1", 2).await;
            let again = anchor_all(&s, &key).await.unwrap();
            assert_eq!(again.iter().map(|a| (a.tenant.as_str(), a.sequence)).collect::<Vec<_>>(), [("t1", 3)]);
            let file = export(&s).await.unwrap();
            assert_eq!(file.anchors.len(), 3);
            assert_eq!(file.public_keys, vec![key.public_key()]);
            assert_eq!(file.chain_hash, chain_hash.code());
            let checked = check(&s, &file, Some(&key.public_key())).await.unwrap();
            assert!(checked.ok(), "{checked:?}");
            assert_eq!(checked.checked, 3);
            // Another pinned key, a forged signature, another chain hash: each is reported.
            let other = AnchorKey::generate(alg).unwrap().public_key();
            assert_eq!(check(&s, &file, Some(&other)).await.unwrap().bad_signatures.len(), 3);
            let mut forged = file.clone();
            forged.anchors[0].anchor.head_hash = "00".repeat(32);
            let c = check(&s, &forged, None).await.unwrap();
            assert_eq!(c.bad_signatures.len(), 1);
            assert!(c.divergences.is_empty());
            let mut other_hash = file.clone();
            other_hash.chain_hash = "md5".into();
            assert!(check(&s, &other_hash, None).await.unwrap().chain_hash_mismatch.is_some());
            s.close().await;
        }
    }
}
