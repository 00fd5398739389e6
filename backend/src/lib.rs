//! The `ducha` server and command line.
//!
//! The map:
//! - [`store`]: the event-store trait, its SQLite backend and the conformance suite every backend passes.
pub mod cli;
pub mod commands;
pub mod datadir;
pub mod demo;
pub mod documents;
pub mod exchange;
pub mod password;
pub mod projector;
pub mod render;
pub mod store;
pub mod verify;
