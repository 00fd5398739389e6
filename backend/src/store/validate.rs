//! The append rules every backend shares: what makes a request valid before anything is written, and
//! the expected-version rule. A backend calls [`validate`] first and [`check_expected`] with the
//! stream's version as its own storage knows it.

use super::{AppendRequest, ExpectedVersion, StoreError};
use ducha_events::envelope::NewEvent;
use ducha_events::ids::TenantId;

/// Whether `expected` allows appending to a stream at version `current`.
pub fn check_expected(stream: &str, expected: ExpectedVersion, current: u64) -> Result<(), StoreError> {
    let ok = match expected {
        ExpectedVersion::Any => true,
        ExpectedVersion::NoStream => current == 0,
        ExpectedVersion::Exact(v) => current == v,
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::WrongExpectedVersion { stream: stream.to_owned(), expected, actual: current })
    }
}

/// Event ids, correlation and causation ids: 1..=128 printable ASCII characters without spaces.
fn valid_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic())
}

/// The checks that need no database, the same for every backend: run before anything is written.
pub fn validate(req: &AppendRequest) -> Result<(), StoreError> {
    let invalid = |msg: String| Err(StoreError::InvalidAppend(msg));
    let tenant = req.tenant.as_str();
    // TenantId is valid by construction; re-check in case it came from somewhere lax.
    if TenantId::parse(tenant).is_err() {
        return invalid(format!("invalid tenant id {tenant:?}"));
    }
    match req.stream.strip_prefix(tenant).and_then(|rest| rest.strip_prefix('/')) {
        Some(rest) if !rest.is_empty() => {}
        _ => return invalid(format!("stream {:?} does not belong to tenant {tenant}", req.stream)),
    }
    if req.stream.len() > 512 || req.stream.chars().any(char::is_control) {
        return invalid(format!("invalid stream name {:?}", req.stream));
    }
    if req.events.is_empty() {
        return invalid(format!("no events to append to {}", req.stream));
    }
    if let Some(key) = &req.idempotency_key
        && (key.is_empty() || key.len() > 256 || key.contains('\0'))
    {
        return invalid("an idempotency key must have 1 to 256 bytes and no U+0000".into());
    }
    for (i, e) in req.events.iter().enumerate() {
        validate_event(e).map_err(|msg| StoreError::InvalidAppend(format!("event {i} of {}: {msg}", req.stream)))?;
        if req.events[..i].iter().any(|o| o.event_id == e.event_id) {
            return invalid(format!("event id {:?} appears twice in one append", e.event_id));
        }
    }
    Ok(())
}

fn validate_event(e: &NewEvent) -> Result<(), String> {
    if !valid_token(&e.event_id) {
        return Err(format!("invalid event id {:?}", e.event_id));
    }
    if e.event_type.is_empty() || e.event_type.len() > 128 || e.event_type.chars().any(char::is_control) {
        return Err(format!("invalid event type {:?}", e.event_type));
    }
    if !valid_token(&e.correlation_id) {
        return Err(format!("invalid correlation id {:?}", e.correlation_id));
    }
    if let Some(c) = &e.causation_id
        && !c.is_empty()
        && !valid_token(c)
    {
        return Err(format!("invalid causation id {c:?}"));
    }
    // PostgreSQL text cannot hold U+0000; refused everywhere so that every backend stores the same.
    if e.payload.contains('\0') {
        return Err("the payload contains U+0000".into());
    }
    // The stored text form must sort as time does: four-digit years only.
    let year = chrono::Datelike::year(&e.occurred_at);
    if !(1..=9999).contains(&year) {
        return Err(format!("occurred_at {} is out of range", e.occurred_at));
    }
    Ok(())
}
