//! Signed checkpoints (锚点, `docs/AUDIT.md`): the public key that verifies them, published to
//! anyone, and the export of every anchor for auditors to keep off the system.

use crate::anchors::{self, AnchorExport, PublicKey};
use crate::api::auth::Authenticated;
use crate::api::error::ApiError;
use crate::api::security::record_export;
use crate::api::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, web};
use ducha_events::authz::{Action, Target, authorize};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(public_key).service(export);
}

fn not_configured() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "anchors_not_configured",
        "本部署未配置锚点签名密钥（anchor_key_file）",
        "this deployment has no anchor signing key (anchor_key_file)",
    )
}

/// The public key that verifies this server's anchors (published: no login needed). Compare it with
/// the key printed in `docs/AUDIT.md` or handed over on paper before trusting an anchors file.
#[utoipa::path(
    tag = "audit",
    security(()),
    responses(
        (status = 200, description = "锚点验签公钥 / the anchors' public key", body = PublicKey),
        (status = 404, description = "未配置锚点密钥 / no anchor key (`anchors_not_configured`)",
         body = crate::api::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/anchors/public-key")]
pub async fn public_key(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let key = state.anchor_key.as_ref().ok_or_else(not_configured)?;
    Ok(HttpResponse::Ok().json(key.public_key()))
}

/// Every anchor, oldest first, with the keys that signed them: the file `ducha verify --anchors`
/// checks a store against. Auditors with platform-wide scope and the audit administrator; the
/// export is recorded in the security log.
#[utoipa::path(
    tag = "audit",
    responses((status = 200, description = "全部锚点 / every anchor", body = AnchorExport)),
)]
#[get("/anchors")]
pub async fn export(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let platform = Target::platform();
    if authorize(&who.actor, Action::ReadAudit, &platform).is_err() {
        authorize(&who.actor, Action::ReadSecurityAudit, &platform)?;
    }
    let file = anchors::export(&*state.store).await?;
    let detail = format!("{} anchors", file.anchors.len());
    record_export(&state, &req, &who, "anchors_exported", "anchors".into(), detail).await?;
    Ok(HttpResponse::Ok().json(file))
}
