//! The `ducha` server and command line.
//!
//! The map:
//! - [`store`]: the event-store trait, its SQLite and PostgreSQL backends, the store URL factory and the
//!   conformance suite every backend passes.
//! - [`commands`]: the only write path; [`projector`]: the read models ([`model_checkpoint`]: their checkpoints); [`demo`], [`exchange`], [`verify`].
//! - [`api`]: the REST API (actix-web, OpenAPI); [`auth`]: tokens, passwords, login throttling;
//!   [`serve`]: `ducha serve`; [`web`]: the embedded web app (every GET outside `/api`); [`config`]: its layered configuration.
//! - [`server_state`]: what replicas share besides the log (revoked tokens, idempotent answers,
//!   lockouts, evidence files, leases), on SQLite or PostgreSQL; [`jobs`]: work that runs once per
//!   deployment (under a lease).
//! - [`anchors`]: signed checkpoints of every tenant's chain head (Ed25519 or SM2), their export and
//!   the check of a store against anchors kept elsewhere.
//! - [`documents`]: the 督查报告 (DOCX, HTML, text), the 整改台账 and 通报 workbooks, now or as of a past point.
//! - [`cli`]: the `ducha` command line.
pub mod anchors;
pub mod api;
pub mod auth;
pub mod backup;
pub mod budget_fold;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod datadir;
pub mod demo;
pub mod documents;
pub mod exchange;
pub mod jobs;
pub mod ledger_import;
pub mod model_checkpoint;
pub mod notify;
pub mod password;
pub mod personal;
pub mod projector;
pub mod render;
pub mod security_log;
pub mod serve;
pub mod server_state;
pub mod snapshots;
pub mod store;
pub mod verify;
pub mod web;
