//! One file per screen. A page is a component that takes its route's parameters, loads its data
//! through `use_app().api` inside a `LocalResource`, and draws it with the states of
//! `components` (loading, error, empty). See `route.rs` for how to add one.

mod dashboard;
mod login;
mod placeholder;

pub use dashboard::TenantDashboardPage;
pub use login::LoginPage;
pub use placeholder::{NotFoundPage, PlaceholderPage};
