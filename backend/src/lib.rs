//! The `ducha` server and command line.
//!
//! The map:
//! - [`store`]: the event-store trait, its SQLite backend and the conformance suite every backend passes.
pub mod store;
