//! One file per screen. A page is a component that takes its route's parameters, loads its data
//! through `use_app().api` inside a `LocalResource`, and draws it with the states of
//! `components` (loading, error, empty). See `route.rs` for how to add one.

mod admin;
mod audit;
mod dashboard;
pub(crate) mod district;
pub(crate) mod finding;
mod inspection;
pub(crate) mod inspections;
mod ledger;
mod ledger_import;
mod login;
mod my_findings;
mod notifications;
mod placeholder;
pub(crate) mod security;
mod self_inspections;

pub use admin::{AccountsPage, ChecklistsPage, CommunitiesPage, DistrictUsersPage, PlatformPage, UsersPage};
pub use audit::AuditPage;
pub use dashboard::TenantDashboardPage;
pub use district::DistrictPage;
pub use finding::FindingPage;
pub use inspection::InspectionPage;
pub use inspections::InspectionsPage;
pub use ledger::LedgerPage;
pub use ledger_import::LedgerImportPage;
pub use login::LoginPage;
pub use my_findings::MyFindingsPage;
pub use notifications::{Bell, NotificationsPage, NotifySettingsPage};
pub use placeholder::{NotFoundPage, PlaceholderPage};
pub use security::{AccountPage, PersonalDataPage, SecurityAuditPage, SecurityPolicyPage};
pub use self_inspections::SelfInspectionsPage;
