//! `GET /healthz` (the process runs), `GET /readyz` (the store answers and the read model has caught
//! up) and `GET /metrics` (Prometheus text).

use crate::api::state::AppState;
use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(healthz).service(readyz).service(metrics);
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` for a not-ready service.
    #[schema(example = "ok")]
    pub status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// `ready`, `degraded` (ready for reads, but writes are refused: see `storage`) or `not_ready`.
    pub status: String,
    /// `ok`, or `full`: the last write failed for want of space (503 `storage_full`) and none has
    /// succeeded since. Reads keep working, so a full store is `degraded`, not `not_ready`.
    pub storage: String,
    /// What is full, as the store or the evidence folder said it (with `storage: full`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_detail: Option<String>,
    /// Whether the event store answered.
    pub store: bool,
    /// Last global position in the store (when it answered).
    pub head: Option<u64>,
    /// Global position folded into the live read model.
    pub projected: u64,
    /// Events not yet folded: this replica's lag behind the shared log.
    pub lag: Option<u64>,
    /// This replica's id (several replicas may share one store).
    pub replica: String,
    /// The event store's backend: `sqlite`, `postgres` or `kurrentdb`.
    pub store_kind: String,
    /// Where the replicas' shared state is: `sqlite` or `postgres` (`server_state`).
    pub server_state: String,
    /// Leases this replica holds now (e.g. `maintenance`: the once-per-deployment work runs here).
    pub leases: Vec<String>,
}

/// Liveness: 200 whenever the process runs.
#[utoipa::path(tag = "ops", security(()), responses((status = 200, description = "运行中 / alive", body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok".into() })
}

/// Readiness: 200 when the store answers and the read model is at most `ready_max_lag` events
/// behind; 503 otherwise. A full disk keeps it 200 with `status: degraded` and `storage: full`:
/// reads still work, and taking the only replica out of service would stop them too.
#[utoipa::path(tag = "ops", security(()), responses(
    (status = 200, description = "就绪 / ready", body = Readiness),
    (status = 503, description = "未就绪 / not ready", body = Readiness),
))]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let head = state.store.head().await.ok();
    let projected = state.live.position();
    let lag = head.map(|h| h.saturating_sub(projected));
    let ready = state.live.is_loaded() && lag.is_some_and(|l| l <= state.config.ready_max_lag);
    let full = state.store.storage_full().or_else(|| state.server.evidence.storage_full());
    let status = match (ready, &full) {
        (false, _) => "not_ready",
        (true, Some(_)) => "degraded",
        (true, None) => "ready",
    };
    let body = Readiness {
        status: status.into(),
        storage: if full.is_some() { "full" } else { "ok" }.into(),
        storage_detail: full,
        store: head.is_some(),
        head,
        projected,
        lag,
        replica: state.replica.id.clone(),
        store_kind: store_kind(&state.store.describe()).to_owned(),
        server_state: state.server.kind.to_owned(),
        leases: state.replica.leases(),
    };
    if ready { HttpResponse::Ok().json(body) } else { HttpResponse::ServiceUnavailable().json(body) }
}

/// The backend named by a store's description (`sqlite:…`, `postgres://…`, `kurrentdb://…`, …).
fn store_kind(described: &str) -> &'static str {
    match described.split(':').next().unwrap_or_default() {
        "sqlite" => "sqlite",
        "postgres" | "postgresql" => "postgres",
        _ => "kurrentdb",
    }
}

/// Prometheus metrics (text exposition format 0.0.4).
#[utoipa::path(tag = "ops", security(()), responses(
    (status = 200, description = "Prometheus 指标 / metrics", body = String, content_type = "text/plain; version=0.0.4"),
))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let head = state.store.head().await.ok();
    let mut body = state.metrics.render(head, state.live.position());
    let full = state.store.storage_full().is_some() || state.server.evidence.storage_full().is_some();
    body.push_str(&format!(
        "# HELP ducha_storage_full 1 while writes are refused for want of space (503 storage_full).\n\
         # TYPE ducha_storage_full gauge\nducha_storage_full {}\n",
        u8::from(full)
    ));
    let m = state.live.memory();
    for (name, help, v) in [
        (
            "ducha_read_model_unpacked_bytes",
            "JSON bytes of the sub-districts the read model holds unpacked (kept within the budget).",
            m.unpacked,
        ),
        ("ducha_read_model_packed_bytes", "Compressed bytes the read model holds of packed sub-districts.", m.packed),
        ("ducha_read_model_budget_bytes", "read_model_budget_mb in bytes.", m.budget),
        ("ducha_read_model_tenants_unpacked", "Sub-districts held unpacked.", m.tenants_unpacked),
        ("ducha_read_model_tenants", "Sub-districts (and the platform) in the read model.", m.tenants),
    ] {
        body.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n"));
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(body)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_store_kind_follows_the_description() {
        assert_eq!(super::store_kind("sqlite:/var/lib/ducha/ducha.db"), "sqlite");
        assert_eq!(super::store_kind("postgres://ducha@db:5432/ducha"), "postgres");
        assert_eq!(super::store_kind("esdb://node1:2113,node2:2113"), "kurrentdb");
        assert_eq!(super::store_kind("kurrentdb://admin:***@db:2113"), "kurrentdb");
    }
}
