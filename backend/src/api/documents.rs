//! Documents (issue 5) over HTTP: the 督查报告 (DOCX, HTML preview, text), issuing it, the 整改台账
//! workbook and the district 通报. Every download accepts `as_of` / `at_position` like any read and
//! answers with the document's SHA-256 and the log position it was generated from.

use crate::api::auth::Authenticated;
use crate::api::command::{Reply, Write};
use crate::api::error::ApiError;
use crate::api::extract::{AsOf, AsOfParams};
use crate::api::security::record_export;
use crate::api::state::AppState;
use crate::commands;
use crate::documents::{self, DocumentError, Snapshot, When, circular, ledger};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use ducha_events::authz::{Action, Target, authorize};
use ducha_events::event::DocumentFormat;
use ducha_events::ids::{CommunityId, DistrictId, InspectionId, TenantId};
use ducha_events::inspection::InspectionCommand;
use ducha_events::projection::{LedgerFilter, RectificationStatus, WarningLevel};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(report_download).service(issue_report).service(ledger_xlsx).service(circular_download);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct InspectionPath {
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub tenant_id: TenantId,
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub inspection_id: InspectionId,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TenantPath {
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub tenant_id: TenantId,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DistrictPath {
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub district_id: DistrictId,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// `docx` (default), `html` (the preview the web app shows) or `txt`.
    #[param(value_type = Option<String>)]
    pub format: Option<DocumentFormat>,
}

/// Issue the report as it stands now, or as of a past point.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueReportRequest {
    #[serde(default)]
    pub format: Option<DocumentFormat>,
    /// RFC 3339; not with `at_position`.
    #[serde(default)]
    pub as_of: Option<String>,
    #[serde(default)]
    pub at_position: Option<u64>,
}

/// What issuing recorded.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IssuedReport {
    pub title: String,
    pub sha256: String,
    /// The report was generated from the log up to this position; regenerating at it gives the
    /// same bytes.
    pub log_position: u64,
    pub as_of: Option<String>,
    pub format: DocumentFormat,
    /// Where the `ReportIssued` event was recorded.
    pub recorded_at_position: u64,
    #[schema(value_type = String, example = "xxjd")]
    pub tenant: TenantId,
    #[schema(value_type = String, example = "2023-ideology")]
    pub inspection_id: InspectionId,
    /// The server's signature (docs/AUDIT.md; `null` without a signing key).
    pub signature: Option<ducha_events::event::ReportSignature>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LedgerExportQuery {
    pub community: Option<String>,
    pub category: Option<String>,
    /// unassigned, assigned, in_progress, submitted, returned, verified, dismissed
    pub status: Option<String>,
    /// red, yellow, blue, green
    pub warning: Option<String>,
    pub inspection: Option<String>,
    pub year: Option<i32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CircularQuery {
    pub year: Option<i32>,
    /// `xlsx` (default), `docx`, `html` or `txt`.
    pub format: Option<String>,
}

fn when(as_of: &AsOf) -> When {
    match (as_of.at, as_of.upto) {
        (Some(t), _) => When::AsOf(t),
        (None, crate::store::Upto::Position(p)) => When::AtPosition(p),
        (None, crate::store::Upto::Head) => When::Now,
    }
}

impl From<DocumentError> for ApiError {
    fn from(e: DocumentError) -> Self {
        match e {
            DocumentError::UnknownTenant(_) => ApiError::not_found("该街道（在所选时间点）", "tenant"),
            DocumentError::UnknownInspection(_) => ApiError::not_found("该督查（在所选时间点）", "inspection"),
            DocumentError::UnknownDistrict(_) => ApiError::not_found("该区（在所选时间点）", "district"),
            DocumentError::PositionBeyondHead { asked, head } => ApiError::bad_request(
                "invalid_as_of",
                format!("日志位置 {asked} 超出日志末尾 {head}"),
                "log position beyond the end of the log",
            )
            .with_field("at_position"),
            DocumentError::Render(m) => ApiError::internal(m),
            DocumentError::Command(c) => c.into(),
        }
    }
}

/// `attachment; filename*=UTF-8''…` with the Chinese name percent-encoded (RFC 6266 / 5987).
fn attachment(name: &str) -> String {
    let mut enc = String::new();
    for b in name.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._".contains(b) {
            enc.push(char::from(*b));
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"document\"; filename*=UTF-8''{enc}")
}

pub(crate) fn download(bytes: Vec<u8>, content_type: &str, filename: Option<String>, position: u64) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    res.content_type(content_type.to_owned())
        .insert_header(("x-ducha-sha256", documents::sha256_hex(&bytes)))
        .insert_header(("x-ducha-position", position));
    if let Some(name) = filename {
        res.insert_header(("content-disposition", attachment(&name)));
    }
    res.body(bytes)
}

fn parse_code<T: Copy>(field: &str, value: &str, all: &[T], code: impl Fn(T) -> &'static str) -> Result<T, ApiError> {
    all.iter().copied().find(|v| code(*v) == value).ok_or_else(|| {
        let valid: Vec<&str> = all.iter().map(|v| code(*v)).collect();
        ApiError::bad_request(
            "invalid_query",
            format!("参数“{field}”的值“{value}”无效，可选：{}", valid.join("、")),
            format!("invalid {field}"),
        )
        .with_field(field.to_owned())
    })
}

fn parse_id<T: TryFrom<String>>(field: &str, value: Option<String>) -> Result<Option<T>, ApiError> {
    value
        .map(|v| {
            T::try_from(v).map_err(|_| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("参数“{field}”不是有效的编号"),
                    format!("invalid {field}"),
                )
                .with_field(field.to_owned())
            })
        })
        .transpose()
}

/// 督查报告: the inspection report in official format (DOCX), or its HTML preview or plain text.
#[utoipa::path(
    tag = "documents",
    params(InspectionPath, ReportQuery, AsOfParams),
    responses(
        (status = 200, description = "督查报告 / the report; `X-Ducha-Sha256` and `X-Ducha-Position` name the exact version",
         content(
            (Vec<u8> = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            (String = "text/html"),
            (String = "text/plain"),
         )),
    )
)]
#[get("/tenants/{tenant_id}/inspections/{inspection_id}/report")]
pub async fn report_download(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    path: web::Path<InspectionPath>,
    query: web::Query<ReportQuery>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let InspectionPath { tenant_id, inspection_id } = path.into_inner();
    authorize(&who.actor, Action::Read, &state.tenant_target(&tenant_id)?)?;
    let format = query.format.unwrap_or(DocumentFormat::Docx);
    let generated =
        documents::generate_report(&*state.store, &tenant_id, &inspection_id, when(&as_of), format, chrono::Utc::now())
            .await?;
    let filename = (format == DocumentFormat::Docx).then(|| format!("{}.docx", generated.title));
    let object = format!("report:{tenant_id}/{inspection_id}");
    let detail = format!("format {}; sha256 {}; position {}", format.code(), generated.sha256, generated.log_position);
    record_export(&state, &req, &who, "document_downloaded", object, detail).await?;
    let erasure = documents::erasure_note(&state.live.read(), &tenant_id, &inspection_id, &generated);
    let mut res = download(generated.bytes, documents::content_type(format), filename, generated.log_position);
    if let Some(note) = erasure {
        // Said plainly: a regeneration after an erasure is not the document that was issued.
        res.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("x-ducha-personal-data-erased"),
            actix_web::http::header::HeaderValue::from_static("true"),
        );
        if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&format!("299 ducha \"{}\"", note.english())) {
            res.headers_mut().insert(actix_web::http::header::WARNING, v);
        }
    }
    Ok(res)
}

/// 签发督查报告: generates the report and records `ReportIssued` with its SHA-256 and log position.
#[utoipa::path(
    tag = "documents",
    params(InspectionPath),
    request_body = IssueReportRequest,
    responses((status = 201, description = "已签发 / issued", body = IssuedReport))
)]
#[post("/tenants/{tenant_id}/inspections/{inspection_id}/report/issue")]
pub async fn issue_report(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<InspectionPath>,
    body: web::Json<IssueReportRequest>,
) -> Result<HttpResponse, ApiError> {
    let InspectionPath { tenant_id, inspection_id } = path.into_inner();
    let body = body.into_inner();
    let format = body.format.unwrap_or(DocumentFormat::Docx);
    let when = match (&body.as_of, body.at_position) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_as_of",
                "as_of 与 at_position 只能给出一个",
                "give as_of or at_position, not both",
            )
            .with_field("as_of"));
        }
        (Some(t), None) => When::AsOf(ducha_events::time::parse(t).map_err(|_| {
            ApiError::bad_request("invalid_as_of", "时间格式无效，应为 RFC 3339", "as_of is not RFC 3339")
                .with_field("as_of")
        })?),
        (None, Some(p)) => When::AtPosition(p),
        (None, None) => When::Now,
    };
    let generated =
        documents::generate_report(&*state.store, &tenant_id, &inspection_id, when, format, chrono::Utc::now()).await?;
    // Signed with the anchors' key, so that a printed report can be checked against the
    // deployment's published public key (tests/audit/verify_report.py).
    let signature = state.anchor_key.as_deref().map(|k| {
        crate::anchors::sign_report(
            k,
            tenant_id.as_str(),
            inspection_id.as_str(),
            &generated.sha256,
            generated.log_position,
            format.code(),
        )
    });
    let cmd = InspectionCommand::IssueReport {
        sha256: generated.sha256.clone(),
        log_position: generated.log_position,
        as_of: generated.as_of.clone(),
        format,
        signature: signature.clone(),
    };
    let store = state.store.clone();
    let (t, i) = (tenant_id.clone(), inspection_id.clone());
    let (t2, i2) = (tenant_id.clone(), inspection_id.clone());
    let location = format!("/api/v1/tenants/{tenant_id}/inspections/{inspection_id}");
    write
        .run(
            &state,
            &tenant_id,
            &body,
            |meta| async move { commands::inspection(&*store, &meta, &t, &i, cmd).await },
            |done| {
                let issued = IssuedReport {
                    title: generated.title.clone(),
                    sha256: generated.sha256.clone(),
                    log_position: generated.log_position,
                    as_of: generated.as_of.clone(),
                    format,
                    recorded_at_position: done.outcome.last_position,
                    tenant: t2.clone(),
                    inspection_id: i2.clone(),
                    signature: signature.clone(),
                };
                let mut reply = Reply::created(issued, location).version(done.outcome.stream_version);
                reply.status = StatusCode::CREATED;
                reply
            },
        )
        .await
}

/// 整改台账 as an Excel workbook, filtered like the ledger screen.
#[utoipa::path(
    tag = "documents",
    params(TenantPath, LedgerExportQuery, AsOfParams),
    responses((status = 200, description = "整改台账 / the ledger workbook",
               content((Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))))
)]
#[get("/tenants/{tenant_id}/ledger.xlsx")]
pub async fn ledger_xlsx(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    path: web::Path<TenantPath>,
    query: web::Query<LedgerExportQuery>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.into_inner().tenant_id;
    let q = query.into_inner();
    let mut filter = LedgerFilter {
        community: parse_id::<CommunityId>("community", q.community)?,
        category: q.category,
        status: q
            .status
            .map(|s| parse_code("status", &s, &RectificationStatus::ALL, RectificationStatus::code))
            .transpose()?,
        warning: q.warning.map(|s| parse_code("warning", &s, &WarningLevel::ALL, WarningLevel::code)).transpose()?,
        inspection: parse_id::<InspectionId>("inspection", q.inspection)?,
        year: q.year,
    };
    // A community officer reads their own community's rows only.
    let target = state.tenant_target(&tenant)?;
    if let Err(denied) = authorize(&who.actor, Action::Read, &target) {
        let own = who.actor.grants.iter().find_map(|g| match &g.scope {
            ducha_events::authz::Scope::Community { tenant_id, community_id, .. } if *tenant_id == tenant => {
                Some(community_id.clone())
            }
            _ => None,
        });
        let (Some(own), Some(district)) = (own, target.district_id.clone()) else { return Err(denied.into()) };
        authorize(&who.actor, Action::Read, &Target::community(&district, &tenant, Some(&own)))?;
        filter.community = Some(own);
    }
    let snap = Snapshot::take(&*state.store, when(&as_of), Some(&tenant), chrono::Utc::now()).await?;
    let bytes = ledger::xlsx(&snap.model, &tenant, snap.today, &state.policy, &filter)?
        .ok_or_else(|| ApiError::not_found("该街道（在所选时间点）", "tenant"))?;
    let name = snap.model.directory().tenant(&tenant).map(|t| t.name.clone()).unwrap_or_default();
    let detail = format!("position {}; sha256 {}", snap.position, documents::sha256_hex(&bytes));
    record_export(&state, &req, &who, "ledger_exported", format!("ledger:{tenant}"), detail).await?;
    let erased = ledger::shows_erased(&snap.model, &tenant, snap.today, &state.policy, &filter);
    let mut res = download(bytes, documents::XLSX_CONTENT_TYPE, Some(format!("{name}整改台账.xlsx")), snap.position);
    if erased {
        res.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("x-ducha-personal-data-erased"),
            actix_web::http::header::HeaderValue::from_static("true"),
        );
    }
    Ok(res)
}

/// 通报: sub-districts ranked by checklist score, completion and timeliness (XLSX or official DOCX).
#[utoipa::path(
    tag = "documents",
    params(DistrictPath, CircularQuery, AsOfParams),
    responses((status = 200, description = "通报 / the district circular",
               content(
                   (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
                   (Vec<u8> = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
                   (String = "text/html"),
                   (String = "text/plain"),
               )))
)]
#[get("/districts/{district_id}/circular")]
pub async fn circular_download(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    path: web::Path<DistrictPath>,
    query: web::Query<CircularQuery>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let district = path.into_inner().district_id;
    authorize(&who.actor, Action::Read, &Target::district(&district))?;
    let q = query.into_inner();
    let format = q.format.unwrap_or_else(|| "xlsx".to_owned());
    if !["xlsx", "docx", "html", "txt"].contains(&format.as_str()) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("参数“format”的值“{format}”无效，可选：xlsx、docx、html、txt"),
            "invalid format",
        )
        .with_field("format"));
    }
    let snap = Snapshot::take(&*state.store, when(&as_of), None, chrono::Utc::now()).await?;
    let data = circular::gather(&snap.model, &district, q.year, snap.today, &state.policy)
        .ok_or_else(|| ApiError::not_found("该区（在所选时间点）", "district"))?;
    let (bytes, content_type, ext) = match format.as_str() {
        "xlsx" => (circular::xlsx(&data)?, documents::XLSX_CONTENT_TYPE, "xlsx"),
        other => {
            let f = DocumentFormat::from_code(other).unwrap_or(DocumentFormat::Docx);
            (documents::render(&circular::document(&data), f)?, documents::content_type(f), other)
        }
    };
    let name = snap.model.directory().district(&district).map(|d| d.name.clone()).unwrap_or_default();
    let detail = format!("format {format}; position {}; sha256 {}", snap.position, documents::sha256_hex(&bytes));
    record_export(&state, &req, &who, "circular_exported", format!("circular:{district}"), detail).await?;
    Ok(download(bytes, content_type, Some(format!("{name}督查通报.{ext}")), snap.position))
}
