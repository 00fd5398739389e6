//! The tamper-evident chain. `docs/AUDIT.md` specifies these bytes for auditors; keep both in step.
//!
//! Per tenant, every event stores `hash = H(prev ‖ canonical(event))`, where `H` is the store's chain
//! hash ([`ChainHash`]: SHA-256 by default, or SM3 of GB/T 32905, chosen when the store is created
//! and recorded in it), `prev` is the
//! 32 raw bytes of the previous event's hash in that tenant (32 zero bytes for the first event) and
//! `canonical(event)` is the concatenation, for each field below in this order, of the field's UTF-8
//! bytes preceded by their length as a 4-byte big-endian unsigned integer:
//!
//! 1. the literal `DUCHA-CHAIN-1`
//! 2. tenant, 3. tenant_seq (decimal), 4. event_id, 5. stream, 6. stream_version (decimal),
//! 7. event_type, 8. schema_version (decimal), 9. occurred_at (as stored), 10. actor user id,
//! 11. actor role code, 12. correlation_id, 13. causation_id (empty when none), 14. payload (as stored).
//!
//! The global position is not hashed: it is local to one store, so a tenant exported from one store
//! and imported into another keeps a valid chain.

use crate::envelope::RecordedEvent;
use sha2::{Digest, Sha256};
use sm3::Sm3;

pub const FORMAT_TAG: &str = "DUCHA-CHAIN-1";
/// The `prev_hash` of a tenant's first event.
pub const GENESIS: [u8; 32] = [0; 32];

/// The hash function of a store's chains. Both give 32 bytes, so everything else is the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainHash {
    /// SHA-256 (FIPS 180-4), the default.
    #[default]
    Sha256,
    /// SM3 (GB/T 32905-2016), for deployments assessed on 商用密码 (GB/T 39786).
    Sm3,
}

impl ChainHash {
    /// The name recorded in a store and shown to people: `sha256` or `sm3`.
    pub fn code(self) -> &'static str {
        match self {
            ChainHash::Sha256 => "sha256",
            ChainHash::Sm3 => "sm3",
        }
    }

    /// For people: `SHA-256` or `SM3（国密）`.
    pub fn name_zh(self) -> &'static str {
        match self {
            ChainHash::Sha256 => "SHA-256",
            ChainHash::Sm3 => "SM3（国密 GB/T 32905）",
        }
    }

    /// Parses a recorded or configured name (case-insensitive; `sha-256` accepted).
    pub fn parse(s: &str) -> Option<ChainHash> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sha256" | "sha-256" => Some(ChainHash::Sha256),
            "sm3" => Some(ChainHash::Sm3),
            _ => None,
        }
    }

    /// The digest of some byte pieces, in order.
    pub fn digest_parts(self, parts: &[&[u8]]) -> [u8; 32] {
        let mut h = Hasher::new(self);
        for p in parts {
            h.update(p);
        }
        h.finish()
    }
}

impl std::fmt::Display for ChainHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// An incremental hash of either kind.
enum Hasher {
    Sha256(Sha256),
    Sm3(Sm3),
}

impl Hasher {
    fn new(alg: ChainHash) -> Hasher {
        match alg {
            ChainHash::Sha256 => Hasher::Sha256(Sha256::new()),
            ChainHash::Sm3 => Hasher::Sm3(sm3::Digest::new()),
        }
    }
    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sm3(h) => sm3::Digest::update(h, bytes),
        }
    }
    fn finish(self) -> [u8; 32] {
        match self {
            Hasher::Sha256(h) => h.finalize().into(),
            Hasher::Sm3(h) => {
                let mut out = [0u8; 32];
                out.copy_from_slice(&sm3::Digest::finalize(h));
                out
            }
        }
    }
}

/// The fields that are hashed, borrowed from wherever the event lives.
#[derive(Debug, Clone, Copy)]
pub struct ChainFields<'a> {
    pub tenant: &'a str,
    pub tenant_seq: u64,
    pub event_id: &'a str,
    pub stream: &'a str,
    pub stream_version: u64,
    pub event_type: &'a str,
    pub schema_version: u32,
    pub occurred_at: &'a str,
    pub actor_user: &'a str,
    pub actor_role: &'a str,
    pub correlation_id: &'a str,
    pub causation_id: &'a str,
    pub payload: &'a str,
}

impl<'a> ChainFields<'a> {
    pub fn of(e: &'a RecordedEvent) -> Self {
        ChainFields {
            tenant: e.tenant.as_str(),
            tenant_seq: e.tenant_seq,
            event_id: &e.event_id,
            stream: &e.stream,
            stream_version: e.stream_version,
            event_type: &e.event_type,
            schema_version: e.schema_version,
            occurred_at: &e.occurred_at,
            actor_user: e.actor.user_id.as_str(),
            actor_role: e.actor.role.code(),
            correlation_id: &e.correlation_id,
            causation_id: e.causation_id.as_deref().unwrap_or(""),
            payload: &e.payload,
        }
    }

    /// Calls `out` with each length-prefixed piece of the canonical bytes, in order.
    fn visit(&self, mut out: impl FnMut(&[u8])) {
        let seq = self.tenant_seq.to_string();
        let version = self.stream_version.to_string();
        let schema = self.schema_version.to_string();
        let fields: [&[u8]; 14] = [
            FORMAT_TAG.as_bytes(),
            self.tenant.as_bytes(),
            seq.as_bytes(),
            self.event_id.as_bytes(),
            self.stream.as_bytes(),
            version.as_bytes(),
            self.event_type.as_bytes(),
            schema.as_bytes(),
            self.occurred_at.as_bytes(),
            self.actor_user.as_bytes(),
            self.actor_role.as_bytes(),
            self.correlation_id.as_bytes(),
            self.causation_id.as_bytes(),
            self.payload.as_bytes(),
        ];
        for f in fields {
            out(&(f.len() as u32).to_be_bytes());
            out(f);
        }
    }

    /// The canonical bytes, for tools and tests that want to see them.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.visit(|b| out.extend_from_slice(b));
        out
    }

    /// `SHA-256(prev ‖ canonical bytes)`: [`ChainFields::hash_with`] the default hash.
    pub fn hash(&self, prev: &[u8; 32]) -> [u8; 32] {
        self.hash_with(ChainHash::Sha256, prev)
    }

    /// `H(prev ‖ canonical bytes)` with the store's chain hash `H`.
    pub fn hash_with(&self, alg: ChainHash, prev: &[u8; 32]) -> [u8; 32] {
        let mut h = Hasher::new(alg);
        h.update(prev);
        self.visit(|b| h.update(b));
        h.finish()
    }
}

/// Parses a 64-digit hex hash.
pub fn parse_hash(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// What is wrong with a tenant's chain, naming the first bad event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error(
        "event {event_id} (tenant {tenant}, seq {tenant_seq}, position {position}): tenant_seq expected {expected}"
    )]
    Gap { tenant: String, tenant_seq: u64, position: u64, event_id: String, expected: u64 },
    #[error(
        "event {event_id} (tenant {tenant}, seq {tenant_seq}, position {position}): prev_hash does not match the previous event's hash"
    )]
    PrevMismatch { tenant: String, tenant_seq: u64, position: u64, event_id: String },
    #[error(
        "event {event_id} (tenant {tenant}, seq {tenant_seq}, position {position}): stored hash does not match its contents"
    )]
    HashMismatch { tenant: String, tenant_seq: u64, position: u64, event_id: String },
}

/// Checks one tenant's events, in tenant_seq order, continuing from `prev` (GENESIS at the start).
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    alg: ChainHash,
    prev: [u8; 32],
    next_seq: u64,
    pub checked: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier::new(ChainHash::Sha256)
    }
}

impl ChainVerifier {
    /// A verifier of chains hashed with `alg`, from the genesis.
    pub fn new(alg: ChainHash) -> Self {
        ChainVerifier { alg, prev: GENESIS, next_seq: 1, checked: 0 }
    }

    pub fn check(&mut self, e: &RecordedEvent) -> Result<(), ChainBreak> {
        let id = || (e.tenant.to_string(), e.tenant_seq, e.position, e.event_id.clone());
        if e.tenant_seq != self.next_seq {
            let (tenant, tenant_seq, position, event_id) = id();
            return Err(ChainBreak::Gap { tenant, tenant_seq, position, event_id, expected: self.next_seq });
        }
        if parse_hash(&e.prev_hash) != Some(self.prev) {
            let (tenant, tenant_seq, position, event_id) = id();
            return Err(ChainBreak::PrevMismatch { tenant, tenant_seq, position, event_id });
        }
        let computed = ChainFields::of(e).hash_with(self.alg, &self.prev);
        if parse_hash(&e.hash) != Some(computed) {
            let (tenant, tenant_seq, position, event_id) = id();
            return Err(ChainBreak::HashMismatch { tenant, tenant_seq, position, event_id });
        }
        self.prev = computed;
        self.next_seq += 1;
        self.checked += 1;
        Ok(())
    }

    /// The hash the next event must chain from.
    pub fn head(&self) -> [u8; 32] {
        self.prev
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::Role;
    use crate::envelope::ActorRef;
    use crate::ids::{TenantId, UserId};

    fn event(seq: u64, prev: [u8; 32], payload: &str) -> RecordedEvent {
        let mut e = RecordedEvent {
            position: seq,
            tenant_seq: seq,
            event_id: format!("e{seq}"),
            tenant: TenantId::parse("t1").unwrap(),
            stream: "t1/tenant".into(),
            stream_version: seq,
            event_type: "CommunityAdded".into(),
            schema_version: 1,
            occurred_at: "2023-03-01T00:00:00.000000Z".into(),
            actor: ActorRef { user_id: UserId::parse("u1").unwrap(), role: Role::SubdistrictAdmin },
            correlation_id: "c".into(),
            causation_id: None,
            payload: payload.into(),
            prev_hash: hex::encode(prev),
            hash: String::new(),
        };
        e.hash = hex::encode(ChainFields::of(&e).hash(&prev));
        e
    }

    #[test]
    fn canonical_bytes_are_length_prefixed_fields() {
        let e = event(1, GENESIS, "{}");
        let bytes = ChainFields::of(&e).canonical_bytes();
        assert_eq!(&bytes[..4], &13u32.to_be_bytes());
        assert_eq!(&bytes[4..17], FORMAT_TAG.as_bytes());
        let mut h = Sha256::new();
        h.update(GENESIS);
        h.update(&bytes);
        let direct: [u8; 32] = h.finalize().into();
        assert_eq!(hex::encode(direct), e.hash);
    }

    #[test]
    fn sm3_passes_the_standards_vector_and_chains_like_sha256() {
        // GB/T 32905-2016, appendix A.1: SM3("abc").
        assert_eq!(
            hex::encode(ChainHash::Sm3.digest_parts(&[b"abc"])),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        // Appendix A.2: 512 bits of "abcd" repeated.
        assert_eq!(
            hex::encode(ChainHash::Sm3.digest_parts(&[b"abcd".repeat(16).as_slice()])),
            "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
        );
        assert_eq!(
            hex::encode(ChainHash::Sha256.digest_parts(&[b"a", b"bc"])),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let e = event(1, GENESIS, "{}");
        let fields = ChainFields::of(&e);
        let sm3 = fields.hash_with(ChainHash::Sm3, &GENESIS);
        assert_eq!(sm3, ChainHash::Sm3.digest_parts(&[&GENESIS, &fields.canonical_bytes()]));
        assert_ne!(sm3, fields.hash(&GENESIS));
        let mut e_sm3 = e.clone();
        e_sm3.hash = hex::encode(sm3);
        assert!(ChainVerifier::new(ChainHash::Sm3).check(&e_sm3).is_ok());
        assert!(matches!(ChainVerifier::default().check(&e_sm3), Err(ChainBreak::HashMismatch { .. })));
        assert!(matches!(ChainVerifier::new(ChainHash::Sm3).check(&e), Err(ChainBreak::HashMismatch { .. })));
        for alg in [ChainHash::Sha256, ChainHash::Sm3] {
            assert_eq!(ChainHash::parse(alg.code()), Some(alg));
        }
        assert_eq!(ChainHash::parse("SHA-256"), Some(ChainHash::Sha256));
        assert_eq!(ChainHash::parse("md5"), None);
    }

    #[test]
    fn verifier_names_the_first_tampered_event() {
        let e1 = event(1, GENESIS, r#"{"name":"一"}"#);
        let e2 = event(2, parse_hash(&e1.hash).unwrap(), r#"{"name":"二"}"#);
        let mut v = ChainVerifier::default();
        v.check(&e1).unwrap();
        v.check(&e2).unwrap();
        let mut tampered = e1.clone();
        tampered.payload = r#"{"name":"三"}"#.into();
        let mut v = ChainVerifier::default();
        assert!(matches!(v.check(&tampered), Err(ChainBreak::HashMismatch { tenant_seq: 1, .. })));
        let mut v = ChainVerifier::default();
        assert!(matches!(v.check(&e2), Err(ChainBreak::Gap { expected: 1, .. })));
    }
}
