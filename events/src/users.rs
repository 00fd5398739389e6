//! User accounts and their role grants. Users are recorded on the stream of the scope that owns them
//! (the platform, a district, or a tenant); the same commands and rules serve all three.

use crate::authz::{Grant, Role, Scope};
use crate::ids::UserId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One account as an aggregate sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UserRecord {
    pub username: String,
    pub display_name: String,
    pub password_hash: Option<String>,
    pub disabled: bool,
    pub grants: Vec<Grant>,
}

/// The accounts owned by one scope.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Users {
    pub by_id: BTreeMap<UserId, UserRecord>,
}

/// Commands on accounts (the password arrives already hashed: hashing is I/O-free but slow, and
/// belongs to the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCommand {
    CreateUser { user_id: UserId, username: String, display_name: String, password_hash: String },
    SetPassword { user_id: UserId, password_hash: String },
    GrantRole { user_id: UserId, role: Role, scope: Scope },
    RevokeRole { user_id: UserId, role: Role, scope: Scope },
    DisableUser { user_id: UserId, reason: String },
    EnableUser { user_id: UserId },
}
