//! The REST API (actix-web). The map:
//!
//! | file | what |
//! | --- | --- |
//! | `mod.rs` | [`app`]: the one place where every resource is registered; [`openapi_document`] |
//! | [`state`] | [`AppState`]: store, live read model (read-your-writes), config, auth, metrics |
//! | [`error`] | [`ApiError`] → RFC 9457 problem+json; domain/store/command/extractor error mapping |
//! | [`extract`] | `IfMatch`, `IdempotencyKey`, `AsOf`, `RequestId`, `etag()` |
//! | [`command`] | [`Write`] + [`Reply`]: the write path (meta, idempotent replay, read-your-writes) |
//! | [`consistency`] | `X-Ducha-Min-Position` / `min_position`: read-your-writes across replicas |
//! | [`auth`] | login, logout, `/me`, and the [`Authenticated`] extractor |
//! | [`middleware`] | request id, access log, metrics, problem+json for framework errors |
//! | [`openapi`] | the OpenAPI 3.1 document and the rules that make every operation's contract uniform |
//! | [`health`] | `/healthz`, `/readyz`, `/metrics` |
//! | [`metrics`] | Prometheus counters and histograms |
//! | [`dashboard`] | `GET /tenants/{tenant_id}/dashboard`: the worked example of a read endpoint |
//! | [`notifications`] | the notification centre (`/me/notifications`), reminder settings, outbound channels, delivery log |
//!
//! ## Adding a resource
//!
//! One file per resource under `backend/src/api/` (e.g. `communities.rs`) with a
//! `pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig)` that lists its
//! handlers, each annotated with `#[utoipa::path(tag = "…", params(…), request_body = …,
//! responses((status = 200, body = …)))]` above the actix `#[get("/…")]`/`#[post("/…")]` macro
//! (paths are relative to `/api/v1`). Then add one line to [`routes`]. That registers the routes
//! *and* their OpenAPI operations; [`openapi::finalize`] adds the bearer requirement, the standard
//! error responses and, for writes, the `If-Match`/`Idempotency-Key` headers.
//!
//! - Reads: take `Authenticated` and `AsOf`, build the `Target`, call
//!   `ducha_events::authz::authorize(&who.actor, Action::Read, &target)?`, then
//!   `state.view(&as_of, Some(&tenant)).await?` and query the model (see [`dashboard`]).
//! - Writes: take `Write` and `web::Json<Body>` (`#[serde(deny_unknown_fields)]`), and call
//!   `write.run(&state, &tenant, &body, |meta| async move { commands::…(&*store, &meta, …).await },
//!   |done| Reply::created(…, location).version(done.outcome.stream_version))`. Authorization of
//!   writes is the aggregate's `decide`; do not duplicate it.
//! - Never `unwrap` on input; return `ApiError` (or `?` a `DomainError`).

pub mod anchors;
pub mod audit;
pub mod auth;
pub mod command;
pub mod consistency;
pub mod dashboard;
pub mod districts;
pub mod documents;
pub mod error;
pub mod evidence;
pub mod extract;
pub mod findings;
pub mod health;
pub mod inspections;
pub mod ledger;
pub mod ledger_import;
pub mod live;
pub mod metrics;
pub mod middleware;
pub mod notifications;
pub mod openapi;
pub mod personal_data;
pub mod platform;
pub mod scorecards;
pub mod security;
pub mod self_inspections;
pub mod state;
pub mod tenants;
#[cfg(test)]
pub(crate) mod testkit;
pub mod users;

pub use auth::Authenticated;
pub use command::{Reply, Write};
pub use error::{ApiError, Problem};
pub use state::{AppState, LiveModel};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, HttpResponse, web};
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;

/// Every resource under `/api/v1`, registered in one place. Add your module's line here.
pub fn routes(cfg: &mut ServiceConfig) {
    auth::configure(cfg);
    dashboard::configure(cfg);
    documents::configure(cfg);
    ledger::configure(cfg);
    ledger_import::configure(cfg);
    scorecards::configure(cfg);
    districts::configure(cfg);
    audit::configure(cfg);
    anchors::configure(cfg);
    platform::configure(cfg);
    tenants::configure(cfg);
    users::configure(cfg);
    security::configure(cfg);
    personal_data::configure(cfg);
    inspections::configure(cfg);
    findings::configure(cfg);
    evidence::configure(cfg);
    self_inspections::configure(cfg);
    live::configure(cfg);
    notifications::configure(cfg);
}

pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";
pub const DOCS_PATH: &str = "/api/docs/";

/// Builds the whole application for one worker.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let doc = document();
    let (json, query, path, payload) = error::extractor_configs(state.config.max_body_bytes);
    // The docs go first: the `/api/v1` scope below would otherwise answer 404 for the spec's URL.
    let (app, _) = App::new()
        .app_data(web::Data::new(state))
        .app_data(web::Data::new(KnownRoutes::from_openapi(doc)))
        .app_data(json)
        .app_data(query)
        .app_data(path)
        .app_data(payload)
        .service(swagger(doc.clone()))
        .route("/api/docs", web::get().to(|| async { redirect(DOCS_PATH) }))
        .into_utoipa_app()
        .service(utoipa_actix_web::scope("/api/v1").configure(routes))
        .configure(health::configure)
        .split_for_parts();
    app.default_service(web::to(not_found))
        .wrap(actix_web::middleware::from_fn(consistency::wait_for_min_position))
        .wrap(actix_web::middleware::from_fn(middleware::observe))
}

/// The finalized OpenAPI document, built once per process.
fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOC.get_or_init(openapi_document)
}

/// The routes of the OpenAPI document, to tell "no such route" (404) from "no such method here"
/// (405 with `Allow`) in the default service.
#[derive(Debug, Default)]
pub struct KnownRoutes(Vec<(Vec<String>, Vec<&'static str>)>);

impl KnownRoutes {
    fn from_openapi(doc: &utoipa::openapi::OpenApi) -> KnownRoutes {
        let routes = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let segments = path.split('/').map(str::to_owned).collect();
                let methods = [
                    ("GET", item.get.is_some()),
                    ("PUT", item.put.is_some()),
                    ("POST", item.post.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("PATCH", item.patch.is_some()),
                ];
                (segments, methods.into_iter().filter(|(_, on)| *on).map(|(m, _)| m).collect())
            })
            .collect();
        KnownRoutes(routes)
    }

    /// The methods allowed on a path, if the path is a known route.
    fn allowed(&self, path: &str) -> Option<Vec<&'static str>> {
        let parts: Vec<&str> = path.split('/').collect();
        let mut found: Option<Vec<&'static str>> = None;
        for (segments, methods) in &self.0 {
            let matches = segments.len() == parts.len()
                && segments.iter().zip(&parts).all(|(s, p)| s == p || (s.starts_with('{') && !p.is_empty()));
            if matches {
                found.get_or_insert_with(Vec::new).extend(methods.iter().copied());
            }
        }
        found
    }
}

/// The web app for GET/HEAD outside `/api` (see [`crate::web`]); otherwise unknown route → 404;
/// known route, other method → 405 with `Allow`.
async fn not_found(req: actix_web::HttpRequest, routes: web::Data<KnownRoutes>) -> HttpResponse {
    use actix_web::ResponseError;
    if let Some(page) = crate::web::respond(&req) {
        return page;
    }
    match routes.allowed(req.path()) {
        Some(methods) if !methods.is_empty() => {
            let mut res = ApiError::for_status(actix_web::http::StatusCode::METHOD_NOT_ALLOWED).error_response();
            if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&methods.join(", ")) {
                res.headers_mut().insert(actix_web::http::header::ALLOW, v);
            }
            res
        }
        _ => ApiError::for_status(actix_web::http::StatusCode::NOT_FOUND).error_response(),
    }
}

fn redirect(to: &'static str) -> HttpResponse {
    HttpResponse::PermanentRedirect().insert_header((actix_web::http::header::LOCATION, to)).finish()
}

/// Swagger UI from the vendored assets (nothing fetched at run time; no validator badge, which
/// would call out to the internet).
fn swagger(api: utoipa::openapi::OpenApi) -> utoipa_swagger_ui::SwaggerUi {
    let config = utoipa_swagger_ui::Config::default().validator_url("none").persist_authorization(false);
    utoipa_swagger_ui::SwaggerUi::new("/api/docs/{_:.*}").url(OPENAPI_PATH, api).config(config)
}

/// The OpenAPI document as served at [`OPENAPI_PATH`] (also printed by `ducha openapi`).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let (_, api) = App::new()
        .into_utoipa_app()
        .openapi(openapi::ApiDoc::openapi())
        .service(utoipa_actix_web::scope("/api/v1").configure(routes))
        .configure(health::configure)
        .split_for_parts();
    openapi::finalize(api)
}
