//! Ducha events ↔ KurrentDB records, and positions ↔ stream revisions.
//!
//! Every Ducha event is one event of the log stream, and global position N is revision N − 1. A
//! record carries:
//! - **event id**: the Ducha event id when it is a canonical UUID (what Ducha generates), else a
//!   random one; the Ducha id itself is always in the metadata;
//! - **event type**: Ducha's, so that KurrentDB's own tools show something readable;
//! - **data**: the payload's UTF-8 bytes, byte for byte, as `application/octet-stream` so that the
//!   server never reinterprets them;
//! - **custom metadata**: the envelope as JSON ([`Envelope`]): every field the chain hashes, the
//!   position (checked against the revision on every read), the hashes, and on the first event of
//!   an append made under an idempotency key, the key and the number of events it appended.

use crate::store::StoreError;
use bytes::Bytes;
use ducha_events::authz::Role;
use ducha_events::envelope::{ActorRef, RecordedEvent};
use ducha_events::ids::{TenantId, UserId};
use kurrentdb::{CurrentRevision, EventData, StreamState};
use serde::{Deserialize, Serialize};

/// The envelope format this build writes and reads.
pub const FORMAT: u32 = 1;

/// An event of the log, with what its record says about the append it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub event: RecordedEvent,
    /// Set on the first event of an append made under an idempotency key.
    pub key: Option<KeyMark>,
}

/// "This event starts an append of `events` events made under idempotency key `key`."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMark {
    pub key: String,
    pub events: u64,
}

/// The envelope in a record's custom metadata; `S` is `&str` when writing, `String` when reading.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope<S> {
    /// The format tag: [`FORMAT`].
    ducha: u32,
    position: u64,
    tenant: S,
    tenant_seq: u64,
    event_id: S,
    stream: S,
    stream_version: u64,
    event_type: S,
    schema_version: u32,
    occurred_at: S,
    actor_user: S,
    actor_role: S,
    correlation_id: S,
    #[serde(default)]
    causation_id: Option<S>,
    prev_hash: S,
    hash: S,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_events: Option<u64>,
}

/// A record to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub id: uuid::Uuid,
    pub event_type: String,
    pub data: Bytes,
    pub metadata: Bytes,
}

impl Outgoing {
    pub fn into_event_data(self) -> EventData {
        EventData::binary(self.event_type, self.data).id(self.id).metadata(self.metadata)
    }

    /// What the server counts against its `MaxAppendSize`.
    pub fn size(&self) -> usize {
        self.data.len() + self.metadata.len()
    }
}

/// A record as read: the parts of [`kurrentdb::RecordedEvent`] that matter here.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub revision: u64,
    pub event_type: &'a str,
    pub data: &'a [u8],
    pub metadata: &'a [u8],
}

impl<'a> From<&'a kurrentdb::RecordedEvent> for Incoming<'a> {
    fn from(r: &'a kurrentdb::RecordedEvent) -> Self {
        Incoming { revision: r.revision, event_type: &r.event_type, data: &r.data, metadata: &r.custom_metadata }
    }
}

/// The log revision holding global position `position` (positions start at 1).
pub fn revision_of(position: u64) -> Option<u64> {
    position.checked_sub(1)
}

/// The global position held by log revision `revision`.
pub fn position_of(revision: u64) -> Result<u64, StoreError> {
    revision.checked_add(1).ok_or_else(|| StoreError::Corrupt(format!("log revision {revision} is out of range")))
}

/// The expected state of the log for an append planned on a log whose head is `head`.
pub fn expected_state(head: u64) -> StreamState {
    match revision_of(head) {
        None => StreamState::NoStream,
        Some(r) => StreamState::StreamRevision(r),
    }
}

/// The head (last global position) of a log whose current revision the server reported.
pub fn head_of(current: CurrentRevision) -> u64 {
    match current {
        CurrentRevision::NoStream => 0,
        CurrentRevision::Current(r) => r.saturating_add(1),
    }
}

/// The KurrentDB event id of a Ducha event: its own id when that is a canonical (lower-case,
/// hyphenated) UUID, so that the mapping is one-to-one; a random one otherwise.
pub fn record_id(event_id: &str) -> uuid::Uuid {
    match uuid::Uuid::parse_str(event_id) {
        Ok(u) if u.hyphenated().to_string() == event_id => u,
        _ => uuid::Uuid::new_v4(),
    }
}

/// The record of one event.
pub fn encode(d: &Decoded) -> Result<Outgoing, StoreError> {
    let e = &d.event;
    let envelope = Envelope {
        ducha: FORMAT,
        position: e.position,
        tenant: e.tenant.as_str(),
        tenant_seq: e.tenant_seq,
        event_id: e.event_id.as_str(),
        stream: e.stream.as_str(),
        stream_version: e.stream_version,
        event_type: e.event_type.as_str(),
        schema_version: e.schema_version,
        occurred_at: e.occurred_at.as_str(),
        actor_user: e.actor.user_id.as_str(),
        actor_role: e.actor.role.code(),
        correlation_id: e.correlation_id.as_str(),
        causation_id: e.causation_id.as_deref(),
        prev_hash: e.prev_hash.as_str(),
        hash: e.hash.as_str(),
        idempotency_key: d.key.as_ref().map(|k| k.key.as_str()),
        key_events: d.key.as_ref().map(|k| k.events),
    };
    let metadata = serde_json::to_vec(&envelope)
        .map_err(|err| StoreError::Io(format!("cannot encode the envelope of {}: {err}", e.event_id)))?;
    Ok(Outgoing {
        id: record_id(&e.event_id),
        event_type: e.event_type.clone(),
        data: Bytes::copy_from_slice(e.payload.as_bytes()),
        metadata: Bytes::from(metadata),
    })
}

/// The event a record of the log holds. Anything that is not what [`encode`] wrote is
/// [`StoreError::Corrupt`] (or [`StoreError::NewerSchema`] for a newer envelope format).
pub fn decode(r: Incoming<'_>) -> Result<Decoded, StoreError> {
    let position = position_of(r.revision)?;
    let corrupt = |what: String| {
        StoreError::Corrupt(format!("log event at position {position} (KurrentDB revision {}): {what}", r.revision))
    };
    if r.metadata.is_empty() {
        return Err(corrupt("no Ducha envelope in its metadata: it was not written by Ducha".into()));
    }
    let probe: serde_json::Value =
        serde_json::from_slice(r.metadata).map_err(|e| corrupt(format!("its metadata is not JSON: {e}")))?;
    match probe.get("ducha").and_then(serde_json::Value::as_u64) {
        Some(f) if f == u64::from(FORMAT) => {}
        Some(f) if f > u64::from(FORMAT) => {
            return Err(StoreError::NewerSchema { found: u32::try_from(f).unwrap_or(u32::MAX), known: FORMAT });
        }
        _ => return Err(corrupt("no Ducha envelope format tag in its metadata".into())),
    }
    let env: Envelope<String> =
        serde_json::from_value(probe).map_err(|e| corrupt(format!("invalid Ducha envelope: {e}")))?;
    if env.position != position {
        return Err(corrupt(format!("its envelope says position {}", env.position)));
    }
    if env.event_type != r.event_type {
        return Err(corrupt(format!("record type {:?} but envelope type {:?}", r.event_type, env.event_type)));
    }
    let tenant = TenantId::parse(&env.tenant).map_err(|e| corrupt(format!("invalid tenant: {e}")))?;
    if !env.stream.strip_prefix(tenant.as_str()).is_some_and(|rest| rest.starts_with('/')) {
        return Err(corrupt(format!("stream {:?} is not in tenant {tenant}", env.stream)));
    }
    let user_id = UserId::parse(&env.actor_user).map_err(|e| corrupt(format!("invalid actor: {e}")))?;
    let role = Role::from_code(&env.actor_role).ok_or_else(|| corrupt(format!("unknown role {:?}", env.actor_role)))?;
    let payload =
        std::str::from_utf8(r.data).map_err(|e| corrupt(format!("the payload is not UTF-8: {e}")))?.to_owned();
    for (what, hash) in [("prev_hash", &env.prev_hash), ("hash", &env.hash)] {
        if ducha_events::chain::parse_hash(hash).is_none() {
            return Err(corrupt(format!("invalid {what} {hash:?}")));
        }
    }
    let key = match (env.idempotency_key, env.key_events) {
        (Some(key), Some(events)) if events >= 1 => Some(KeyMark { key, events }),
        (None, None) => None,
        _ => return Err(corrupt("an idempotency key without its event count".into())),
    };
    Ok(Decoded {
        event: RecordedEvent {
            position,
            tenant_seq: env.tenant_seq,
            event_id: env.event_id,
            tenant,
            stream: env.stream,
            stream_version: env.stream_version,
            event_type: env.event_type,
            schema_version: env.schema_version,
            occurred_at: env.occurred_at,
            actor: ActorRef { user_id, role },
            correlation_id: env.correlation_id,
            causation_id: env.causation_id,
            payload,
            prev_hash: env.prev_hash,
            hash: env.hash,
        },
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ducha_events::chain::{ChainFields, GENESIS};

    /// A recorded event as the writer would plan it, hashed for real.
    pub(crate) fn recorded(position: u64, payload: &str) -> RecordedEvent {
        let mut e = RecordedEvent {
            position,
            tenant_seq: position,
            event_id: uuid::Uuid::now_v7().to_string(),
            tenant: TenantId::parse("jd-1").unwrap(),
            stream: "jd-1/finding-文字".into(),
            stream_version: position,
            event_type: "整改措施已登记".into(),
            schema_version: 2,
            occurred_at: "2023-03-01T08:00:00.000000Z".into(),
            actor: ActorRef { user_id: UserId::parse("u-1").unwrap(), role: Role::Inspector },
            correlation_id: "corr-1".into(),
            causation_id: Some("cause-1".into()),
            payload: payload.into(),
            prev_hash: hex::encode(GENESIS),
            hash: String::new(),
        };
        e.hash = hex::encode(ChainFields::of(&e).hash(&GENESIS));
        e
    }

    fn incoming(o: &Outgoing, revision: u64) -> Incoming<'_> {
        Incoming { revision, event_type: &o.event_type, data: &o.data, metadata: &o.metadata }
    }

    fn round_trip(d: &Decoded) -> Decoded {
        let o = encode(d).unwrap();
        decode(incoming(&o, d.event.position - 1)).unwrap()
    }

    #[test]
    fn events_round_trip_byte_for_byte() {
        let chinese = r#"{"title":"关于开展意识形态工作责任制落实情况督查的报告","note":"座谈交流、查阅资料"}"#;
        let astral = "{\"emoji\":\"😀🀄\",\"ext_b\":\"𠀀𠮷𪚥\",\"mixed\":\"街道𡈽社区\"}";
        let filler = "督查𠮷x".repeat((1 << 20) / "督查𠮷x".len() + 1);
        let large = format!(r#"{{"big":"{filler}"}}"#);
        assert!(large.len() >= 1 << 20);
        for (i, payload) in [chinese, astral, large.as_str(), ""].into_iter().enumerate() {
            let d = Decoded { event: recorded(i as u64 + 1, payload), key: None };
            let back = round_trip(&d);
            assert_eq!(back, d);
            assert_eq!(back.event.payload.as_bytes(), payload.as_bytes());
        }
        let mut none = recorded(9, "{}");
        none.causation_id = None;
        let d = Decoded { event: none, key: Some(KeyMark { key: "命令-1 😀".into(), events: 3 }) };
        assert_eq!(round_trip(&d), d);
    }

    #[test]
    fn a_record_carries_the_payload_as_data_and_the_envelope_as_metadata() {
        let d = Decoded { event: recorded(5, r#"{"a":1}"#), key: None };
        let o = encode(&d).unwrap();
        assert_eq!(&o.data[..], br#"{"a":1}"#);
        assert_eq!(o.event_type, "整改措施已登记");
        assert_eq!(o.id.hyphenated().to_string(), d.event.event_id, "a UUID event id is the record id");
        let meta: serde_json::Value = serde_json::from_slice(&o.metadata).unwrap();
        assert_eq!(meta["ducha"], 1);
        assert_eq!(meta["position"], 5);
        assert_eq!(meta["hash"], d.event.hash.as_str());
        assert!(meta.get("idempotency_key").is_none());
        assert_eq!(o.size(), o.data.len() + o.metadata.len());
    }

    #[test]
    fn record_ids_are_one_to_one() {
        let u = uuid::Uuid::now_v7();
        assert_eq!(record_id(&u.to_string()), u);
        // Other spellings of the same UUID, and ids that are no UUID, get fresh random ids.
        for other in [u.simple().to_string(), u.to_string().to_uppercase(), format!("{{{u}}}"), "evt-1".into()] {
            let id = record_id(&other);
            assert_ne!(id, u, "{other}");
            assert_ne!(id, record_id(&other), "random each time");
        }
    }

    #[test]
    fn positions_are_revisions_plus_one() {
        assert_eq!(revision_of(1), Some(0));
        assert_eq!(revision_of(0), None);
        assert_eq!(position_of(0).ok(), Some(1));
        assert!(matches!(position_of(u64::MAX), Err(StoreError::Corrupt(_))));
        assert_eq!(expected_state(0), StreamState::NoStream);
        assert_eq!(expected_state(7), StreamState::StreamRevision(6));
        assert_eq!(head_of(CurrentRevision::NoStream), 0);
        assert_eq!(head_of(CurrentRevision::Current(6)), 7);
        for head in [0, 1, 2, 1000] {
            let after = match expected_state(head) {
                StreamState::NoStream => CurrentRevision::NoStream,
                StreamState::StreamRevision(r) => CurrentRevision::Current(r),
                other => panic!("{other:?}"),
            };
            assert_eq!(head_of(after), head);
        }
    }

    #[test]
    fn what_ducha_did_not_write_is_corrupt() {
        let d = Decoded { event: recorded(3, "{}"), key: None };
        let good = encode(&d).unwrap();
        let decode_with = |metadata: &[u8], data: &[u8], revision: u64, event_type: &str| {
            decode(Incoming { revision, event_type, data, metadata })
        };
        let corrupt = |r: Result<Decoded, StoreError>| matches!(r, Err(StoreError::Corrupt(_)));
        assert!(decode_with(&good.metadata, &good.data, 2, &good.event_type).is_ok());
        assert!(corrupt(decode_with(b"", &good.data, 2, &good.event_type)), "no metadata");
        assert!(corrupt(decode_with(b"not json", &good.data, 2, &good.event_type)));
        assert!(corrupt(decode_with(br#"{"other":"app"}"#, &good.data, 2, &good.event_type)));
        assert!(corrupt(decode_with(&good.metadata, &good.data, 3, &good.event_type)), "moved to another revision");
        assert!(corrupt(decode_with(&good.metadata, &good.data, 2, "OtherType")));
        assert!(corrupt(decode_with(&good.metadata, &[0xff, 0xfe], 2, &good.event_type)), "payload not UTF-8");
        let mut meta: serde_json::Value = serde_json::from_slice(&good.metadata).unwrap();
        for (field, value) in [
            ("tenant", serde_json::json!("Bad Tenant")),
            ("stream", serde_json::json!("other/s")),
            ("actor_role", serde_json::json!("janitor")),
            ("hash", serde_json::json!("xyz")),
            ("tenant_seq", serde_json::json!(-1)),
            ("key_events", serde_json::json!(2)),
        ] {
            let saved = meta[field].clone();
            meta[field] = value;
            let bytes = serde_json::to_vec(&meta).unwrap();
            assert!(corrupt(decode_with(&bytes, &good.data, 2, &good.event_type)), "{field}");
            meta[field] = saved;
        }
        meta.as_object_mut().unwrap().remove("occurred_at");
        let bytes = serde_json::to_vec(&meta).unwrap();
        assert!(corrupt(decode_with(&bytes, &good.data, 2, &good.event_type)), "a missing field");
        meta["occurred_at"] = serde_json::json!(d.event.occurred_at);
        meta["ducha"] = serde_json::json!(2);
        let bytes = serde_json::to_vec(&meta).unwrap();
        assert!(matches!(
            decode_with(&bytes, &good.data, 2, &good.event_type),
            Err(StoreError::NewerSchema { found: 2, known: 1 })
        ));
    }
}
