//! 个人信息 (PIPL): how personal data is kept, and erasing a person's data (the security
//! administrator). See `backend/src/personal` and docs/SECURITY.md.

use crate::api::auth::Authenticated;
use crate::api::command::{Reply, Write};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::commands::Executed;
use crate::personal::erase::{self, Whom};
use crate::security_log::{self, Entry};
use crate::store::Upto;
use actix_web::{HttpResponse, get, post, web};
use ducha_events::authz::{Action, Target, authorize};
use ducha_events::event::Event;
use ducha_events::ids::{TenantId, UserId, stream};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(status).service(list_erasures).service(erase_person);
}

/// How personal data is kept in this deployment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PersonalDataStatus {
    /// Whether personal data in the events is sealed (false: a shared store without a master key).
    pub sealed: bool,
    /// The cipher of new person keys: `sm4-gcm` or `aes-256-gcm`.
    pub cipher: Option<String>,
    /// The master key's id (the first 16 hex digits of SM3 over its wrapping key).
    pub master_key_id: Option<String>,
    /// How many person keys exist (one per person whose data is kept).
    pub person_keys: u64,
    /// How many erasures were recorded.
    pub erasures: u64,
}

/// An erasure as recorded (never the person's name).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErasureView {
    pub position: u64,
    pub at: String,
    /// Who asked for it (the security administrator's user id).
    #[schema(value_type = String)]
    pub by: UserId,
    /// `user` or `name`.
    pub subject_kind: String,
    #[schema(value_type = Option<String>)]
    pub user_id: Option<UserId>,
    #[schema(value_type = Option<String>)]
    pub tenant: Option<TenantId>,
    pub key_ids: Vec<String>,
    pub reason: String,
}

/// Whom to erase: an account (`user_id`), or a person named in a sub-district's records
/// (`tenant_id` + `name`, exactly as written there, e.g. a 责任人).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureRequest {
    #[schema(value_type = Option<String>, example = "xx-dongfeng")]
    pub user_id: Option<UserId>,
    #[schema(value_type = Option<String>, example = "xxjd")]
    pub tenant_id: Option<TenantId>,
    #[schema(example = "张三")]
    pub name: Option<String>,
    /// Why, e.g. the request's reference (来函编号); never the person's name. 1–200 characters.
    #[schema(example = "个人信息删除申请 2026-017 号")]
    pub reason: String,
}

/// What an erasure did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErasureDone {
    pub key_ids: Vec<String>,
    /// The position of the recorded erasure (`PersonalDataErased`).
    pub position: u64,
}

fn not_sealed() -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::CONFLICT,
        "personal_data_not_sealed",
        "本部署未配置个人信息主密钥（personal_data_key_file），个人信息未加密保存，无法按密钥删除",
        "personal data is not sealed in this deployment (no personal_data_key_file)",
    )
}

async fn erasures(state: &AppState) -> Result<Vec<ErasureView>, ApiError> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = state.store.read_stream(&stream::personal_data(), after, 1_000, Upto::Head).await?;
        let Some(last) = page.last() else { break };
        after = last.stream_version;
        for e in &page {
            if let Ok(Event::PersonalDataErased(x)) = e.decode() {
                out.push(ErasureView {
                    position: e.position,
                    at: e.occurred_at.clone(),
                    by: e.actor.user_id.clone(),
                    subject_kind: x.subject_kind,
                    user_id: x.user_id,
                    tenant: x.tenant,
                    key_ids: x.key_ids,
                    reason: x.reason,
                });
            }
        }
    }
    Ok(out)
}

/// How personal data is kept: sealed or not, the cipher, the master key's id, how many person keys
/// and erasures (the security and audit administrators).
#[utoipa::path(tag = "security", responses((status = 200, description = "个人信息保护状态 / status", body = PersonalDataStatus)))]
#[get("/security/personal-data")]
pub async fn status(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    may_read(&who)?;
    let erasures = erasures(&state).await?.len() as u64;
    let body = match &state.keys {
        Some(k) => PersonalDataStatus {
            sealed: true,
            cipher: Some(k.cipher().code().to_owned()),
            master_key_id: Some(k.master_id().to_owned()),
            person_keys: k.vault().list().await.map_err(|e| ApiError::internal(e.to_string()))?.len() as u64,
            erasures,
        },
        None => PersonalDataStatus { sealed: false, cipher: None, master_key_id: None, person_keys: 0, erasures },
    };
    Ok(HttpResponse::Ok().json(body))
}

fn may_read(who: &Authenticated) -> Result<(), ApiError> {
    authorize(&who.actor, Action::ManageSecurityPolicy, &Target::platform())
        .or_else(|_| authorize(&who.actor, Action::ReadSecurityAudit, &Target::platform()))?;
    Ok(())
}

/// The erasures recorded, oldest first (the security and audit administrators).
#[utoipa::path(tag = "security", responses((status = 200, description = "删除记录 / the erasures", body = Vec<ErasureView>)))]
#[get("/security/personal-data/erasures")]
pub async fn list_erasures(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    may_read(&who)?;
    Ok(HttpResponse::Ok().json(erasures(&state).await?))
}

/// 删除个人信息 (the security administrator): destroys the person's key, so that everywhere their
/// data was — views, documents, exports, the web app, past states — reads 「已删除的个人信息」. The
/// erasure is recorded (`PersonalDataErased`, in the security log's chain) and nothing else changes:
/// every chain still verifies. 404 `not_found` when no data of the person is kept; 409
/// `personal_data_not_sealed` when the deployment keeps personal data in clear.
#[utoipa::path(
    tag = "security",
    request_body = ErasureRequest,
    responses((status = 201, description = "已删除 / erased", body = ErasureDone))
)]
#[post("/security/personal-data/erasures")]
pub async fn erase_person(
    state: web::Data<AppState>,
    write: Write,
    body: web::Json<ErasureRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    authorize(&write.who.actor, Action::ManageSecurityPolicy, &Target::platform())?;
    let keys = state.keys.clone().ok_or_else(not_sealed)?;
    let whom = match (&body.user_id, &body.tenant_id, &body.name) {
        (Some(u), None, None) => Whom::User(u.clone()),
        (None, Some(t), Some(n)) if !n.trim().is_empty() && n.chars().count() <= 64 => {
            Whom::Name { tenant: t.clone(), name: n.trim().to_owned() }
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_erasure",
                "请给出 user_id（账号），或 tenant_id 与 name（街道记录中的姓名，1 到 64 字），二者选一",
                "give user_id, or tenant_id and name (1-64 characters), not both",
            )
            .with_field("user_id"));
        }
    };
    // Refused before anything is recorded: a bad reason, nobody to erase.
    erase::check(&keys, &whom, &body.reason).await.map_err(|e| ApiError::from_command(e.into(), false))?;
    let object = match &whom {
        Whom::User(u) => format!("user:{u}"),
        Whom::Name { tenant, .. } => format!("tenant:{tenant} name"),
    };
    let entry =
        Entry::new("personal_data_erased", security_log::SUCCESS, &write.origin(state.config.trust_forwarded_for))
            .user(&write.who.actor.user_id, &write.who.username)
            .role(write.who.role())
            .object(object)
            .detail(body.reason.trim().chars().take(200).collect::<String>());
    let store = state.store.clone();
    let reason = body.reason.clone();
    let done_keys = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = done_keys.clone();
    write
        .run_audited(
            &state,
            &TenantId::security(),
            &body,
            entry,
            move |meta| async move {
                let erased = erase::erase(&*store, &keys, &meta, &whom, &reason).await?;
                *out.lock().unwrap_or_else(|p| p.into_inner()) = erased.key_ids;
                Ok(Executed { outcome: erased.outcome, events: 1 })
            },
            move |done| {
                let key_ids = done_keys.lock().unwrap_or_else(|p| p.into_inner()).clone();
                Reply::created(
                    ErasureDone { key_ids, position: done.outcome.last_position },
                    "/api/v1/security/personal-data/erasures",
                )
            },
        )
        .await
}
