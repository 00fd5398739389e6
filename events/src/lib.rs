//! Ducha's pure domain.
//!
//! The map:
//! - [`ids`], [`time`]: identifiers and the fixed timestamp format;
//! - [`authz`]: roles, scopes and the one role × scope rule table, shared with the API;
//! - [`event`]: every domain event, its type name and schema version, and the codec (with upcasting);
//! - [`envelope`]: what the store records around an event (GUIDE §3 rule 3);
//! - [`chain`]: the canonical bytes and SHA-256 chain that make tampering detectable (docs/AUDIT.md);
//! - [`api`]: request and response bodies of the REST API (shared with the web app);
//! - [`aggregate`]: what every `decide` receives, and shared field checks;
//! - aggregates as `decide` / `evolve`: [`platform`] (platform users), [`district`] (a 区 and its
//!   users), [`tenant`] (a 街道: communities, finding categories, checklists, users), [`inspection`],
//!   [`finding`], [`self_inspection`] (自查报告); [`users`] holds the account rules the first three share;
//! - [`projection`]: the read models, one fold over every tenant's log (directory for login, dashboard,
//!   inspection detail, 整改台账 ledger, scorecards, district roll-up, audit counters; 红黄蓝绿 warnings).
//!
//! Nothing here does I/O or reads the clock: time comes in with each command.

pub mod aggregate;
pub mod api;
pub mod authz;
pub mod chain;
pub mod district;
pub mod envelope;
pub mod error;
pub mod event;
pub mod finding;
pub mod ids;
pub mod inspection;
pub mod ledger_import;
pub mod numbering;
pub mod personal;
pub mod platform;
pub mod projection;
pub mod security;
pub mod self_inspection;
pub mod tenant;
pub mod time;
pub mod users;

pub use error::DomainError;
pub use event::Event;
