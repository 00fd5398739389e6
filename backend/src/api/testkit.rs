//! In-process test fixtures for the API: the demo store and an `AppState` over it, without the
//! log follower (so only the code under test moves the read model).

use crate::api::metrics::Metrics;
use crate::api::state::{AppState, LiveModel};
use crate::auth::AuthService;
use crate::config::Config;
use crate::datadir::DataDir;
use crate::server_state::ServerState;
use crate::store::EventStore;
use crate::store::sqlite::{SqliteStore, Synchronous};
use ducha_events::projection::WarningPolicy;
use std::path::Path;
use std::sync::Arc;

pub struct Demo {
    pub state: AppState,
    pub store: Arc<SqliteStore>,
    _dir: DataDir,
}

impl Demo {
    pub async fn load(dir: &Path) -> Demo {
        let data = DataDir::open_for_write(dir).unwrap();
        let store = Arc::new(data.store(Synchronous::Off, None).unwrap());
        crate::demo::load(&*store).await.unwrap();
        let events: Arc<dyn EventStore> = store.clone();
        let live = Arc::new(LiveModel::load(&*events, usize::MAX).await.unwrap());
        let config = Config { evidence_dir: Some(dir.join("evidence")), ..Config::default() };
        let server = ServerState::sqlite(dir, &dir.join("evidence")).unwrap();
        let auth = Arc::new(AuthService::new(&config, Some(dir), &server).unwrap());
        let state = AppState {
            store: events,
            live,
            config: Arc::new(config),
            auth,
            metrics: Arc::new(Metrics::default()),
            server,
            policy: WarningPolicy::default(),
            rollups: Arc::default(),
            replica: Arc::default(),
            anchor_key: Some(Arc::new(crate::anchors::AnchorKey::load(None, Some(dir), None).unwrap())),
            keys: None,
            stopping: tokio::sync::watch::channel(false).1,
        };
        Demo { state, store, _dir: data }
    }

    /// `Authorization: Bearer …` for a demo user.
    pub async fn bearer(&self, username: &str) -> String {
        let user = self.state.live.read().directory().user_by_username(username).cloned().unwrap();
        format!("Bearer {}", self.state.auth.issue(&user, 8).await.unwrap().token)
    }
}

/// Writes one event to the demo's `xxjd` (a finding category added by its administrator), as a
/// user's command would: for tests that need the log to move in one sub-district.
pub async fn write_to_xxjd(store: &dyn EventStore) {
    use ducha_events::authz::{Actor, Grant, Role, Scope};
    use ducha_events::ids::{DistrictId, TenantId, UserId};
    let (district, tenant) = (DistrictId::parse("xxq").unwrap(), TenantId::parse("xxjd").unwrap());
    let scope = Scope::Tenant { district_id: district.clone(), tenant_id: tenant.clone() };
    let actor = Actor {
        user_id: UserId::parse("xxjd-admin").unwrap(),
        grants: vec![Grant { role: Role::SubdistrictAdmin, scope }],
    };
    let add =
        ducha_events::tenant::TenantCommand::AddFindingCategory { code: "zz-test".into(), name: "测试类别".into() };
    let meta = crate::commands::Meta::new(actor, chrono::Utc::now());
    crate::commands::tenant(store, &meta, &district, &tenant, add).await.unwrap();
}
