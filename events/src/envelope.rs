//! What the store records around each event (GUIDE §3 rule 3).

use crate::authz::Role;
use crate::event::{DecodeError, Event};
use crate::ids::{TenantId, UserId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Who caused an event: the user and the role under which the action was allowed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorRef {
    pub user_id: UserId,
    pub role: Role,
}

/// An event about to be appended. The store adds positions, the chain hash and (if needed) raises
/// `occurred_at` so that the global log's times never go backwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub event_id: String,
    pub event_type: String,
    pub schema_version: u32,
    /// The payload JSON exactly as it will be stored and hashed.
    pub payload: String,
    pub occurred_at: Timestamp,
    pub actor: ActorRef,
    pub correlation_id: String,
    pub causation_id: Option<String>,
}

impl NewEvent {
    /// Wraps a domain event. `event_id` should be a fresh UUID (the caller owns randomness).
    pub fn from_event(
        event: &Event,
        event_id: String,
        occurred_at: Timestamp,
        actor: ActorRef,
        correlation_id: String,
        causation_id: Option<String>,
    ) -> Self {
        NewEvent {
            event_id,
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            payload: event.payload_json(),
            occurred_at,
            actor,
            correlation_id,
            causation_id,
        }
    }
}

/// An event as stored, with its full envelope.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Position in the global log (1-based, gap-free in one store).
    pub position: u64,
    /// Position in the tenant's chain (1-based, gap-free, kept across export/import).
    pub tenant_seq: u64,
    pub event_id: String,
    pub tenant: TenantId,
    pub stream: String,
    /// Version of the stream after this event (the first event of a stream has version 1).
    pub stream_version: u64,
    pub event_type: String,
    pub schema_version: u32,
    /// RFC 3339 UTC, six fractional digits (see [`crate::time::format`]).
    pub occurred_at: String,
    pub actor: ActorRef,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    /// The payload JSON exactly as stored.
    pub payload: String,
    /// Hex SHA-256 of the tenant's previous event (64 zeros for the first).
    pub prev_hash: String,
    /// Hex SHA-256 over `prev_hash ‖ canonical bytes` (see [`crate::chain`]).
    pub hash: String,
}

impl RecordedEvent {
    /// Decodes the payload into the current shape of its event type.
    pub fn decode(&self) -> Result<Event, DecodeError> {
        Event::decode(&self.event_type, self.schema_version, &self.payload)
    }

    pub fn occurred_at(&self) -> Option<Timestamp> {
        crate::time::parse(&self.occurred_at).ok()
    }
}
