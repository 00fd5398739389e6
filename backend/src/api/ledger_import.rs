//! 导入整改台账: `POST /tenants/{tenant_id}/ledger/import?dry_run=true|false` (multipart/form-data:
//! a `file` part with the XLSX, and an optional `mapping` part, JSON `{"problem": "问题描述", "community": "B", …}`
//! naming the column of each field by its heading or letter for layouts other than Ducha's own).
//!
//! A dry run (the default) answers what would be created and every problem; a real import of a file
//! with any problem answers 422 `import_invalid` with the same report and writes nothing. See
//! [`crate::ledger_import`] for how the events are written.

use crate::api::auth::Authenticated;
use crate::api::dashboard::TenantPath;
use crate::api::error::{ApiError, title_of};
use crate::api::state::AppState;
use crate::commands::Meta;
use crate::ledger_import::{self, FILE_MAX, Planned, ReadError};
use actix_multipart::form::MultipartForm;
use actix_multipart::form::tempfile::TempFile;
use actix_multipart::form::text::Text;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, post, web};
use ducha_events::ledger_import::{Field, FieldInfo, ImportCounts, ImportPreviewRow, LedgerImportReport, Mapping};
use ducha_events::projection::WHOLE_SUBDISTRICT;
use serde::{Deserialize, Serialize};
use std::io::Read;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(import_ledger);
}

#[derive(Debug, MultipartForm)]
pub struct ImportForm {
    #[multipart(limit = "20MiB")]
    file: TempFile,
    mapping: Option<Text<String>>,
}

/// The import form (for the OpenAPI document).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct LedgerImportUpload {
    /// The 整改台账 workbook (.xlsx), at most 20 MiB.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// Optional JSON object: field (`source`, `community`, `category`, `problem`, `measure`, `leader`,
    /// `responsible_unit`, `person`, `deadline`, `progress`, `status`, `evidence`, `verified_on`,
    /// `found_on`, `assigned_on`) → the column's heading in the file, or its letter (`E`).
    mapping: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ImportQuery {
    /// `true` (the default): only check the file and answer what would be created; `false`: import.
    pub dry_run: Option<bool>,
}

/// 422 `import_invalid`: the problem document with the whole report.
#[derive(Debug, Serialize)]
struct InvalidImport<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    status: u16,
    code: &'static str,
    detail: String,
    detail_en: String,
    #[serde(flatten)]
    report: &'a LedgerImportReport,
}

/// 导入整改台账 from an Excel workbook (sub-district admins).
///
/// Ducha's own 整改台账 layout is recognised by its headings; other layouts send a `mapping`.
/// Imported rows become findings and rectifications with their original business dates (found on,
/// assigned on, deadline, verified on); each event's own time is the import's, and it names the
/// file (SHA-256), sheet and row. Importing the same rows again adds nothing.
#[utoipa::path(
    tag = "ledger",
    params(TenantPath, ImportQuery),
    request_body(content = LedgerImportUpload, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "检查结果或导入结果 / the dry run's report, or what was imported", body = LedgerImportReport),
        (status = 422, description = "文件有问题，未导入 / `import_invalid`: the file has problems; the problem document also \
carries every field of `LedgerImportReport` (its `problems` list each with sheet, row and column); nothing was written. \
`invalid_file`: not an XLSX workbook.",
         body = crate::api::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/tenants/{tenant_id}/ledger/import")]
pub async fn import_ledger(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<TenantPath>,
    query: web::Query<ImportQuery>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.into_inner().tenant_id;
    let dry_run = query.dry_run.unwrap_or(true);
    // Authorize before reading a large body.
    let target = state.tenant_target(&tenant)?;
    ducha_events::authz::authorize(&who.actor, ducha_events::authz::Action::ManageTenant, &target)?;
    let mut payload = payload.into_inner();
    let form =
        MultipartForm::<ImportForm>::from_request(&req, &mut payload).await.map_err(multipart_error)?.into_inner();
    let mapping: Option<Mapping> = match form.mapping.map(|t| t.into_inner()).filter(|m| !m.trim().is_empty()) {
        None => None,
        Some(text) => Some(serde_json::from_str(&text).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("列对应关系（mapping）应为 JSON 对象，如 {{\"problem\": \"问题描述\"}}：{e}"),
                format!("mapping must be a JSON object of field → heading or column letter: {e}"),
            )
            .with_field("mapping")
        })?),
    };
    let file_name = form.file.file_name.clone().unwrap_or_else(|| "整改台账.xlsx".to_owned());
    let file_name: String = file_name.chars().filter(|c| !c.is_control()).take(255).collect();
    let temp = form.file.file;
    let bytes = web::block(move || {
        let mut buf = Vec::new();
        temp.as_file().read_to_end(&mut buf).map(|_| buf)
    })
    .await
    .map_err(|e| ApiError::internal(format!("ledger import: {e}")))?
    .map_err(|e| ApiError::internal(format!("ledger import: {e}")))?;

    let meta = Meta::new(who.actor.clone(), crate::clock::now());
    let same = ledger_import::present(&state.live.read(), &tenant);
    let planned =
        match ledger_import::plan(&*state.store, &meta, &tenant, &file_name, &bytes, mapping.as_ref(), &same).await? {
            Ok(p) => p,
            Err(e) => return Err(unreadable(e)),
        };
    let mut report = {
        let model = state.live.read();
        let entry = model.directory().tenant(&tenant);
        report_of(
            &planned,
            dry_run,
            |c| c.and_then(|c| entry.and_then(|t| t.community_name(c)).map(str::to_owned)),
            |code| entry.map_or(code.to_owned(), |t| t.category_name(code).to_owned()),
        )
    };
    if !report.problems.is_empty() {
        if dry_run {
            return Ok(HttpResponse::Ok().json(report));
        }
        let n = report.problems.len();
        let body = InvalidImport {
            kind: "urn:ducha:problem:import_invalid",
            title: title_of(StatusCode::UNPROCESSABLE_ENTITY),
            status: 422,
            code: "import_invalid",
            detail: format!("文件有{n}处问题，未导入任何内容"),
            detail_en: format!("the file has {n} problem(s); nothing was imported"),
            report: &report,
        };
        return Ok(HttpResponse::UnprocessableEntity().content_type("application/problem+json").json(body));
    }
    if dry_run {
        return Ok(HttpResponse::Ok().json(report));
    }
    let written = ledger_import::write(&*state.store, &meta, &tenant, &planned).await?;
    if written.last_position > 0 {
        state.live.catch_up_to(&*state.store, Some(written.last_position)).await?;
    }
    report.imported = written.inspections + written.findings + written.rectifications > 0;
    report.created.inspections = written.inspections;
    report.created.findings = written.findings;
    report.created.rectifications = written.rectifications;
    report.last_position = (written.last_position > 0).then_some(written.last_position);
    tracing::info!(tenant = %tenant, sha256 = %report.file_sha256, findings = written.findings, "ledger imported");
    let mut res = HttpResponse::Ok();
    if written.last_position > 0 {
        res.insert_header(("x-ducha-position", written.last_position));
    }
    Ok(res.json(report))
}

fn report_of(
    planned: &Planned,
    dry_run: bool,
    community_name: impl Fn(Option<&ducha_events::ids::CommunityId>) -> Option<String>,
    category_name: impl Fn(&str) -> String,
) -> LedgerImportReport {
    let p = &planned.plan;
    let sources: std::collections::HashMap<&str, &str> =
        p.inspections.iter().map(|i| (i.inspection_id.as_str(), i.title.as_str())).collect();
    LedgerImportReport {
        dry_run,
        imported: false,
        file_name: planned.file.name.clone(),
        file_sha256: planned.file.sha256.clone(),
        sheet: p.sheet.clone(),
        header_row: p.header_row,
        columns: p.columns.clone(),
        headings: p.headings.clone(),
        fields: Field::ALL
            .iter()
            .map(|f| FieldInfo { field: *f, heading: f.heading().to_owned(), required: Field::REQUIRED.contains(f) })
            .collect(),
        rows_read: p.rows_read,
        created: ImportCounts {
            inspections: p.inspections.len(),
            findings: p.rows.len(),
            rectifications: p.rows.len(),
        },
        already_imported: p.already_imported,
        problems: p.problems.clone(),
        preview: p
            .rows
            .iter()
            .take(500)
            .map(|r| ImportPreviewRow {
                row: r.row,
                finding_id: r.finding.finding_id.to_string(),
                source: sources.get(r.inspection_id.as_str()).map_or_else(String::new, |s| (*s).to_owned()),
                community: community_name(r.finding.community_id.as_ref())
                    .unwrap_or_else(|| WHOLE_SUBDISTRICT.to_owned()),
                category: category_name(&r.finding.category),
                title: r.finding.title.clone(),
                status: r.rectification.status,
                status_name: r.rectification.status.name_zh().to_owned(),
                deadline: r.rectification.deadline,
            })
            .collect(),
        last_position: None,
    }
}

fn unreadable(e: ReadError) -> ApiError {
    let status = match e {
        ReadError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let code = match e {
        ReadError::TooLarge => "payload_too_large",
        _ => "invalid_file",
    };
    ApiError::new(status, code, e.to_string(), format!("{e:?}")).with_field("file")
}

fn multipart_error(err: actix_web::Error) -> ApiError {
    use actix_multipart::MultipartError as M;
    use actix_web::error::PayloadError;
    match err.as_error::<M>() {
        Some(M::Payload(PayloadError::Overflow)) => unreadable(ReadError::TooLarge),
        // The form's own size limit on the `file` part.
        Some(M::Field { .. }) if err.to_string().contains("limit") => unreadable(ReadError::TooLarge),
        Some(M::ContentTypeMissing | M::ContentTypeParse | M::ContentTypeIncompatible) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "请以 multipart/form-data 上传台账文件（字段 file）",
            "upload the workbook as multipart/form-data (field `file`)",
        ),
        Some(M::MissingField(_)) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "缺少台账文件（表单字段 file）",
            "missing form field `file`",
        )
        .with_field("file"),
        _ => ApiError::bad_request("malformed_multipart", "无法读取上传的表单", format!("bad multipart body: {err}")),
    }
}

const _: () = assert!(FILE_MAX == 20 * 1024 * 1024, "the form's limit above says 20MiB");
