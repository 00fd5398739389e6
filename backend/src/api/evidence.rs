//! 佐证材料: evidence files for progress reports. `POST /tenants/{tenant_id}/evidence` uploads one file
//! (multipart/form-data, field `file`) and answers its [`EvidenceRef`], which the client then cites in
//! a progress report; `GET /tenants/{tenant_id}/evidence/{sha256}` downloads it after checking that
//! the bytes on disk still hash to their name.
//!
//! Files are content-addressed per tenant (a tenant's evidence is never served to another) in the
//! deployment's [`EvidenceStore`](crate::server_state::EvidenceStore): a directory for one replica or
//! a configured shared one, or the PostgreSQL database itself. Uploading the same bytes again
//! changes nothing; every download is re-hashed first.

use crate::api::auth::Authenticated;
use crate::api::dashboard::TenantPath;
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::server_state::EvidenceMeta;
use actix_multipart::form::MultipartForm;
use actix_multipart::form::tempfile::TempFile;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, get, post, web};
use ducha_events::authz::{Action, Actor, Scope, Target, authorize};
use ducha_events::event::EvidenceRef;
use ducha_events::ids::TenantId;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::io::Read;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(upload).service(download);
}

/// Accepted types: (MIME type, file extensions).
pub const ALLOWED_TYPES: &[(&str, &[&str])] = &[
    ("application/pdf", &["pdf"]),
    ("image/jpeg", &["jpg", "jpeg"]),
    ("image/png", &["png"]),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", &["docx"]),
    ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", &["xlsx"]),
    ("text/plain", &["txt"]),
];

/// Multipart framing allowed on top of the file itself before a declared `Content-Length` is refused.
const FRAMING_BYTES: u64 = 64 * 1024;

#[derive(Debug, MultipartForm)]
pub struct UploadForm {
    file: TempFile,
}

/// The upload form (for the OpenAPI document).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct EvidenceUpload {
    /// The file: PDF, JPEG, PNG, DOCX, XLSX or plain text, at most `evidence_max_bytes` (20 MiB by
    /// default). Its part's `Content-Type` (or, when that is missing or `application/octet-stream`,
    /// its file name's extension) gives the type; the content must look like that type.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EvidencePath {
    /// The sub-district (tenant) id, e.g. `xxjd`.
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub tenant_id: TenantId,
    /// The file's SHA-256, 64 lower-case hex digits.
    #[param(pattern = "^[0-9a-f]{64}$")]
    pub sha256: String,
}

pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "evidence_too_large",
        format!("附件超过大小限制（{limit} 字节）"),
        format!("the evidence file exceeds the limit of {limit} bytes"),
    )
    .with_field("file")
}

fn unsupported(zh: impl Into<String>, en: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "evidence_type_not_allowed", zh, en).with_field("file")
}

/// Uploaders: whoever may report progress in the tenant or in one of its communities.
fn may_upload(actor: &Actor, tenant: &TenantId, tenant_target: &Target) -> Result<(), ApiError> {
    let first = authorize(actor, Action::ReportProgress, tenant_target);
    if first.is_ok() {
        return Ok(());
    }
    for g in &actor.grants {
        if let Scope::Community { tenant_id, community_id, .. } = &g.scope
            && tenant_id == tenant
        {
            let target = Target { community_id: Some(community_id.clone()), ..tenant_target.clone() };
            if authorize(actor, Action::ReportProgress, &target).is_ok() {
                return Ok(());
            }
        }
    }
    first.map(|_| ()).map_err(ApiError::from)
}

/// The MIME type of an upload: its part's type, or its extension's when the part has none (or the
/// generic `application/octet-stream`). `None` when it is not one we accept.
pub fn accepted_type(declared: Option<&str>, filename: &str) -> Option<&'static str> {
    let declared = declared.map(|d| d.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    match declared.as_deref() {
        Some(d) if !d.is_empty() && d != "application/octet-stream" => {
            ALLOWED_TYPES.iter().find(|(t, _)| *t == d).map(|(t, _)| *t)
        }
        _ => {
            let ext = filename.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
            ALLOWED_TYPES.iter().find(|(_, exts)| exts.contains(&ext.as_str())).map(|(t, _)| *t)
        }
    }
}

/// Whether the first bytes look like `content_type` (a renamed executable is not a PDF).
pub fn looks_like(content_type: &str, head: &[u8]) -> bool {
    match content_type {
        "application/pdf" => head.starts_with(b"%PDF-"),
        "image/jpeg" => head.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/png" => head.starts_with(b"\x89PNG\r\n\x1a\n"),
        t if t.starts_with("application/vnd.openxmlformats") => head.starts_with(b"PK\x03\x04"),
        "text/plain" => !head.contains(&0),
        _ => false,
    }
}

/// The file name as given, without any folder part, at most 255 characters.
pub fn clean_filename(name: Option<&str>) -> String {
    let base = name.unwrap_or("").rsplit(['/', '\\']).next().unwrap_or("").trim();
    let cleaned: String = base.chars().filter(|c| !c.is_control()).take(255).collect();
    if cleaned.is_empty() { "evidence".to_owned() } else { cleaned }
}

fn multipart_error(err: actix_web::Error, limit: u64) -> ApiError {
    use actix_multipart::MultipartError as M;
    use actix_web::error::PayloadError;
    match err.as_error::<M>() {
        Some(M::Payload(PayloadError::Overflow)) => too_large(limit),
        Some(M::ContentTypeMissing | M::ContentTypeParse | M::ContentTypeIncompatible) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "请以 multipart/form-data 上传附件（字段 file）",
            "upload the file as multipart/form-data (field `file`)",
        ),
        // The upload is spooled to a temporary file first: a full temporary folder is a full disk.
        Some(M::Field { source, .. })
            if source.as_error::<actix_multipart::form::tempfile::TempFileError>().is_some_and(|t| {
                matches!(t, actix_multipart::form::tempfile::TempFileError::FileIo(e)
                    if crate::server_state::evidence_fs::is_full(e))
            }) =>
        {
            ApiError::storage_full(format!("evidence upload spool: {source}"))
        }
        Some(M::MissingField(_)) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "缺少附件（表单字段 file）",
            "missing form field `file`",
        )
        .with_field("file"),
        _ => ApiError::bad_request("malformed_multipart", "无法读取上传的表单", format!("bad multipart body: {err}")),
    }
}

/// Upload one evidence file (佐证材料) for a progress report.
///
/// Answers the file's `EvidenceRef`; put it in `evidence` of a progress report. The same bytes
/// uploaded again give the same reference (200 instead of 201) and store nothing new. Sub-district
/// staff and community officers of the tenant may upload.
#[utoipa::path(
    tag = "evidence",
    params(TenantPath),
    request_body(content = EvidenceUpload, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "已上传 / stored", body = EvidenceRef,
         headers(("Location" = String, description = "where to download it"))),
        (status = 200, description = "已存在相同文件 / the same bytes were stored before", body = EvidenceRef),
        (status = 413, description = "附件过大 / larger than evidence_max_bytes",
         body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "类型不受支持 / not PDF, JPEG, PNG, DOCX, XLSX or text, or the content does not match",
         body = crate::api::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/tenants/{tenant_id}/evidence")]
pub async fn upload(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<TenantPath>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.into_inner().tenant_id;
    let target = state.tenant_target(&tenant)?;
    may_upload(&who.actor, &tenant, &target)?;
    let limit = state.config.evidence_max_bytes;
    let declared_length =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|n| n > limit.saturating_add(FRAMING_BYTES)) {
        return Err(too_large(limit));
    }
    // Bodies sent without a length are bounded by the form's default total limit (50 MiB) and
    // then checked against ours.
    let mut payload = payload.into_inner();
    let form = MultipartForm::<UploadForm>::from_request(&req, &mut payload)
        .await
        .map_err(|e| multipart_error(e, limit))?
        .into_inner();
    let upload = form.file;
    if upload.size as u64 > limit {
        return Err(too_large(limit));
    }
    let filename = clean_filename(upload.file_name.as_deref());
    let declared = upload.content_type.as_ref().map(|m| m.essence_str().to_owned());
    let content_type = accepted_type(declared.as_deref(), &filename).ok_or_else(|| {
        unsupported(
            format!(
                "不支持的附件类型“{}”：仅接受 PDF、JPEG、PNG、DOCX、XLSX 和 TXT",
                declared.as_deref().unwrap_or("")
            ),
            format!("evidence type {declared:?} is not allowed (pdf, jpeg, png, docx, xlsx, txt)"),
        )
    })?;
    let temp = upload.file;
    let file = temp.as_file().try_clone().map_err(|e| ApiError::internal(format!("evidence upload: {e}")))?;
    let (sha256, size) = web::block(move || hash_and_check(&file, content_type)).await??;
    let evidence = EvidenceRef { sha256, filename, content_type: content_type.to_owned(), size };
    let meta = EvidenceMeta { filename: evidence.filename.clone(), content_type: evidence.content_type.clone(), size };
    let created = state.server.evidence.put(tenant.as_str(), &evidence.sha256, &meta, temp.path()).await?;
    drop(temp);
    let location = format!("/api/v1/tenants/{tenant}/evidence/{}", evidence.sha256);
    tracing::info!(tenant = %tenant, sha256 = %evidence.sha256, size = evidence.size, created, "evidence uploaded");
    let mut res = if created { HttpResponse::Created() } else { HttpResponse::Ok() };
    Ok(res.insert_header((header::LOCATION, location)).json(evidence))
}

/// Reads the upload once: its SHA-256 and size, and whether its first bytes look like its type.
fn hash_and_check(file: &std::fs::File, content_type: &'static str) -> Result<(String, u64), ApiError> {
    let io = |e: std::io::Error| ApiError::internal(format!("evidence upload: {e}"));
    let mut src = file.try_clone().map_err(io)?;
    std::io::Seek::rewind(&mut src).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut head: Vec<u8> = Vec::new();
    let mut size = 0u64;
    loop {
        let n = src.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        if head.len() < 512 {
            head.extend_from_slice(&buf[..n.min(512 - head.len())]);
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    if !looks_like(content_type, &head) {
        return Err(unsupported(
            format!("附件内容与类型“{content_type}”不符"),
            format!("the file's content does not look like {content_type}"),
        ));
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Refuses a progress report citing evidence this tenant does not hold (422 `evidence_missing`).
pub async fn check_uploaded(state: &AppState, tenant: &TenantId, evidence: &[EvidenceRef]) -> Result<(), ApiError> {
    if evidence.is_empty() {
        return Ok(());
    }
    for e in evidence {
        let missing = || {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "evidence_missing",
                format!("附件“{}”尚未上传到本街道，请先上传", e.filename),
                format!("evidence {} has not been uploaded to this tenant", e.sha256),
            )
            .with_field("evidence")
        };
        if !is_sha256(&e.sha256) || !state.server.evidence.has(tenant.as_str(), &e.sha256, e.size).await? {
            return Err(missing());
        }
    }
    Ok(())
}

/// Readers of the file: readers of the tenant, or of a community whose findings cite it.
fn may_download(state: &AppState, actor: &Actor, tenant: &TenantId, sha256: &str) -> Result<(), ApiError> {
    let target = state.tenant_target(tenant)?;
    let first = authorize(actor, Action::Read, &target);
    if first.is_ok() {
        return Ok(());
    }
    let model = state.live.read();
    if let Some(facts) = model.tenant_facts(tenant) {
        let cited = facts
            .findings
            .iter()
            .filter(|f| f.rectification.as_ref().is_some_and(|r| r.evidence.iter().any(|e| e.sha256 == sha256)));
        for f in cited {
            let t = Target { community_id: f.community_id.clone(), ..target.clone() };
            if f.community_id.is_some() && authorize(actor, Action::Read, &t).is_ok() {
                return Ok(());
            }
        }
    }
    first.map(|_| ()).map_err(ApiError::from)
}

/// `filename*=UTF-8''…` (RFC 5987) with an ASCII fallback.
fn content_disposition(filename: &str) -> String {
    let mut encoded = String::new();
    for b in filename.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let ascii: String =
        filename.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' { c } else { '_' }).collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// Download an evidence file.
///
/// The bytes are checked against their SHA-256 first: a file changed on disk is refused with 409
/// `evidence_corrupt` (and logged), never served. Community officers may download the evidence
/// cited by their own community's findings.
#[utoipa::path(
    tag = "evidence",
    params(EvidencePath),
    responses(
        (status = 200, description = "附件内容，类型为上传时的类型 / the file, with the type it was uploaded as",
         content(
            (Vec<u8> = "application/octet-stream"),
            (Vec<u8> = "application/pdf"),
            (Vec<u8> = "image/jpeg"),
            (Vec<u8> = "image/png"),
            (Vec<u8> = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            (Vec<u8> = "text/plain"),
         ),
         headers(("Content-Disposition" = String, description = "attachment with the uploaded file name"),
                 ("ETag" = String, description = "the SHA-256"))),
        (status = 409, description = "附件已损坏 / the stored bytes no longer match their hash",
         body = crate::api::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/tenants/{tenant_id}/evidence/{sha256}")]
pub async fn download(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    path: web::Path<EvidencePath>,
) -> Result<HttpResponse, ApiError> {
    let EvidencePath { tenant_id, sha256 } = path.into_inner();
    if !is_sha256(&sha256) {
        return Err(ApiError::bad_request(
            "invalid_path",
            "附件摘要须为64位小写十六进制SHA-256",
            "sha256 must be 64 lower-case hex digits",
        )
        .with_field("sha256"));
    }
    may_download(&state, &who.actor, &tenant_id, &sha256)?;
    let (bytes, meta) = state
        .server
        .evidence
        .get(tenant_id.as_str(), &sha256)
        .await?
        .ok_or_else(|| ApiError::not_found("该附件", "evidence"))?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != sha256 {
        tracing::error!(tenant = %tenant_id, sha256 = %sha256, actual = %actual, "evidence file does not match its hash");
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "evidence_corrupt",
            "附件文件已被改动或损坏，与其摘要不符，请联系管理员",
            "the stored evidence no longer matches its SHA-256",
        ));
    }
    let meta = meta.unwrap_or(EvidenceMeta {
        filename: format!("{sha256}.bin"),
        content_type: "application/octet-stream".into(),
        size: bytes.len() as u64,
    });
    let detail = format!("{}; {} bytes", meta.filename, bytes.len());
    crate::api::security::record_export(
        &state,
        &req,
        &who,
        "evidence_downloaded",
        format!("evidence:{tenant_id}/{sha256}"),
        detail,
    )
    .await?;
    let content_type = if ALLOWED_TYPES.iter().any(|(t, _)| *t == meta.content_type) {
        meta.content_type.clone()
    } else {
        "application/octet-stream".to_owned()
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CONTENT_DISPOSITION, content_disposition(&meta.filename)))
        .insert_header((header::ETAG, format!("\"{sha256}\"")))
        .insert_header(("x-content-type-options", "nosniff"))
        .insert_header((header::CACHE_CONTROL, "private, max-age=0"))
        .body(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_part_or_the_extension() {
        assert_eq!(accepted_type(Some("application/pdf"), "x.bin"), Some("application/pdf"));
        assert_eq!(accepted_type(Some("application/octet-stream"), "报告.PDF"), Some("application/pdf"));
        assert_eq!(accepted_type(None, "a.xlsx"), ALLOWED_TYPES.iter().find(|t| t.1 == ["xlsx"]).map(|t| t.0));
        assert_eq!(accepted_type(Some("application/x-msdownload"), "a.pdf"), None);
        assert_eq!(accepted_type(None, "noext"), None);
        assert!(looks_like("application/pdf", b"%PDF-1.7\n"));
        assert!(!looks_like("application/pdf", b"MZ\x90\x00"));
        assert!(looks_like("text/plain", "整改说明".as_bytes()));
    }

    #[test]
    fn file_names_lose_folders_and_control_characters() {
        assert_eq!(clean_filename(Some("../../etc/passwd")), "passwd");
        assert_eq!(clean_filename(Some("C:\\docs\\整改.pdf")), "整改.pdf");
        assert_eq!(clean_filename(Some("a\u{0}b.txt")), "ab.txt");
        assert_eq!(clean_filename(None), "evidence");
        assert!(content_disposition("整改 报告.pdf").contains("filename*=UTF-8''%E6%95%B4"));
    }
}
