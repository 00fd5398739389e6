//! The tenant aggregate (a 街道): communities, finding categories, checklists and its users.
//! Stream: `{tenant}/tenant`. Also the district and platform aggregates, which own districts and
//! district- or platform-scoped users.

use crate::event::ChecklistItem;
use crate::ids::{ChecklistId, CommunityId, DistrictId, TenantId};
use crate::users::Users;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checklist {
    pub title: String,
    pub items: Vec<ChecklistItem>,
}

/// State of `{tenant}/tenant`. `created` is false until `TenantCreated`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TenantState {
    pub created: bool,
    pub tenant_id: Option<TenantId>,
    pub district_id: Option<DistrictId>,
    pub name: String,
    /// community id → name
    pub communities: BTreeMap<CommunityId, String>,
    /// category code → name
    pub categories: BTreeMap<String, String>,
    pub checklists: BTreeMap<ChecklistId, Checklist>,
    pub users: Users,
}

/// State of `_platform/district-{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DistrictState {
    pub created: bool,
    pub district_id: Option<DistrictId>,
    pub name: String,
    pub users: Users,
}

/// State of `_platform/platform` (platform-scoped users).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PlatformState {
    pub users: Users,
}
