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

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{App, test};

    #[actix_web::test]
    async fn the_public_key_is_public_and_the_export_is_for_platform_auditors_only() {
        let dir = tempfile::tempdir().unwrap();
        let demo = crate::api::testkit::Demo::load(dir.path()).await;
        let mut state = demo.state.clone();
        let key = state.anchor_key.clone().unwrap();
        let made = anchors::anchor_all(&*state.store, &key).await.unwrap();
        assert!(made.iter().any(|a| a.tenant.as_str() == "xxjd"));
        let app =
            test::init_service(App::new().app_data(web::Data::new(state.clone())).service(public_key).service(export))
                .await;
        let res = test::call_service(&app, test::TestRequest::get().uri("/anchors/public-key").to_request()).await;
        assert_eq!(res.status(), 200);
        let body: PublicKey = test::read_body_json(res).await;
        assert_eq!(body, key.public_key());

        let get = |bearer: Option<String>| {
            let mut req = test::TestRequest::get().uri("/anchors");
            if let Some(b) = bearer {
                req = req.insert_header(("authorization", b));
            }
            req.to_request()
        };
        assert_eq!(test::call_service(&app, get(None)).await.status(), 401);
        let inspector = demo.bearer("xx-duchazu1").await;
        assert_eq!(test::call_service(&app, get(Some(inspector))).await.status(), 403);
        // A district's auditor does not read every tenant's anchors.
        let district_auditor = demo.bearer("qu-jjw").await;
        assert_eq!(test::call_service(&app, get(Some(district_auditor))).await.status(), 403);
        let res = test::call_service(&app, get(Some(demo.bearer("audadmin").await))).await;
        assert_eq!(res.status(), 200);
        let file: AnchorExport = test::read_body_json(res).await;
        assert_eq!(file.format, anchors::EXPORT_FORMAT);
        assert_eq!(file.anchors.len(), made.len());
        assert_eq!(file.public_keys, vec![key.public_key()]);
        assert!(anchors::check(&*state.store, &file, Some(&key.public_key())).await.unwrap().ok());

        // Without a key (a shared store without anchor_key_file): a problem with a stable code.
        state.anchor_key = None;
        let app = test::init_service(App::new().app_data(web::Data::new(state)).service(public_key)).await;
        let res = test::call_service(&app, test::TestRequest::get().uri("/anchors/public-key").to_request()).await;
        assert_eq!(res.status(), 404);
        let problem: serde_json::Value = test::read_body_json(res).await;
        assert_eq!(problem["code"], "anchors_not_configured");
    }
}
