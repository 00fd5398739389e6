//! Ducha's pure domain.
//!
//! The map:
//! - [`ids`], [`time`]: identifiers and the fixed timestamp format;
//! - [`authz`]: roles, scopes and the one role × scope rule table, shared with the API;
//! - [`event`]: every domain event, its type name and schema version, and the codec (with upcasting);
//! - [`envelope`]: what the store records around an event (GUIDE §3 rule 3);
//! - [`chain`]: the canonical bytes and SHA-256 chain that make tampering detectable (docs/AUDIT.md);
//! - [`aggregate`], [`users`], [`tenant`], [`inspection`], [`finding`], [`self_inspection`]: aggregates as `decide` / `evolve`;
//! - [`projection`]: read models as folds over the log (dashboard, ledger, scorecards, roll-up, audit).
//!
//! Nothing here does I/O or reads the clock: time comes in with each command.

pub mod aggregate;
pub mod authz;
pub mod chain;
pub mod envelope;
pub mod error;
pub mod event;
pub mod finding;
pub mod ids;
pub mod inspection;
pub mod projection;
pub mod self_inspection;
pub mod tenant;
pub mod time;
pub mod users;

pub use error::DomainError;
pub use event::Event;
