//! What every aggregate's `decide` receives: who acts, when, and what they ask for.
//!
//! An aggregate is two pure functions over one stream:
//! `decide(context…, state, command) -> Result<Vec<Event>, DomainError>` and
//! `evolve(state, event) -> state`. Some decisions need read-only facts from another aggregate
//! (a tenant's communities when planning an inspection); those come in as extra leading arguments,
//! loaded by the caller. Only the aggregate's own stream is guarded by the expected version.

use crate::authz::Actor;
use crate::time::Timestamp;

/// A command: the actor (with every grant they hold now), the time it is decided at, and the body.
#[derive(Debug, Clone, PartialEq)]
pub struct Command<C> {
    pub actor: Actor,
    pub at: Timestamp,
    pub body: C,
}

impl<C> Command<C> {
    pub fn new(actor: Actor, at: Timestamp, body: C) -> Self {
        Command { actor, at, body }
    }
}

/// Checks a required free-text field: trimmed non-empty and at most `max` characters.
pub fn require_text(field: &str, value: &str, max: usize) -> Result<(), crate::DomainError> {
    if value.trim().is_empty() {
        return Err(crate::DomainError::invalid(field, "不能为空"));
    }
    if value.chars().count() > max {
        return Err(crate::DomainError::invalid(field, format!("不能超过{max}个字符")));
    }
    Ok(())
}
