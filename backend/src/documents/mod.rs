//! Generated documents (issue 5): the 督查报告, the 整改台账 workbook and the district 通报 — made from
//! the read model, now or as of any past time or log position.
//!
//! The map:
//! - [`model`]: the one document model (title, paragraphs of styled runs, tables, signature) and the
//!   official heading numbers 一、（一）1.（1）;
//! - [`docx`], [`html`], [`text`]: its three renderers; DOCX in the official format (GB/T 9704-2012
//!   practice), written deterministically;
//! - [`report`], [`circular`]: the builders of the report and the circular (also a workbook);
//! - [`ledger`]: the ledger workbook; `sheet`: formats shared by the workbooks;
//! - [`Snapshot`]: the read model and "today" at a point of the log, for every document.
//!
//! Generation is deterministic: the same log position gives the same bytes (no clock, no random
//! ids, fixed zip times), which is what lets an issued report (`ReportIssued`: hash and position) be
//! regenerated from the log and compared byte for byte. See `docs/DOCUMENTS.md`.

pub mod circular;
pub mod cli;
pub mod docx;
pub mod html;
pub mod ledger;
pub mod model;
pub mod report;
pub mod security_audit;
pub mod self_inspection;
mod sheet;
pub mod text;

use crate::commands::CommandError;
use crate::projector;
use crate::store::{EventStore, StoreError, Upto};
use chrono::NaiveDate;
use ducha_events::event::DocumentFormat;
use ducha_events::ids::{InspectionId, TenantId};
use ducha_events::projection::ReadModel;
use ducha_events::time::{self, Timestamp};
pub use model::Document;

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("未找到街道 {0}（在所选时间点） / no such sub-district (at that point)")]
    UnknownTenant(String),
    #[error("未找到督查 {0}（在所选时间点） / no such inspection (at that point)")]
    UnknownInspection(String),
    #[error("未找到区 {0}（在所选时间点） / no such district (at that point)")]
    UnknownDistrict(String),
    #[error("日志位置 {asked} 超出日志末尾 {head} / log position beyond the end of the log")]
    PositionBeyondHead { asked: u64, head: u64 },
    #[error("生成文档失败 / cannot render the document: {0}")]
    Render(String),
    #[error("{0}")]
    Command(#[from] CommandError),
}

impl From<StoreError> for DocumentError {
    fn from(e: StoreError) -> Self {
        DocumentError::Command(e.into())
    }
}

/// Renders a document in one of the three formats.
pub fn render(doc: &Document, format: DocumentFormat) -> Result<Vec<u8>, DocumentError> {
    match format {
        DocumentFormat::Docx => docx::render(doc),
        DocumentFormat::Html => Ok(html::page(doc).into_bytes()),
        DocumentFormat::Txt => Ok(text::render(doc).into_bytes()),
    }
}

/// The media type of a format (for downloads).
pub fn content_type(format: DocumentFormat) -> &'static str {
    match format {
        DocumentFormat::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        DocumentFormat::Html => "text/html; charset=utf-8",
        DocumentFormat::Txt => "text/plain; charset=utf-8",
    }
}

/// The media type of the workbooks.
pub const XLSX_CONTENT_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Lower-case hex SHA-256 of the bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// Which state of the log a document shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// The whole log now; "today" is today in Asia/Shanghai.
    Now,
    /// The log up to the last event at or before this time; "today" is that time's date.
    AsOf(Timestamp),
    /// The log up to and including this global position; "today" is the date of that event.
    AtPosition(u64),
}

/// The read model at a point of the log, with that point's position and date.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub model: ReadModel,
    /// The global log position the model was folded up to (the report's `log_position`).
    pub position: u64,
    /// "Today" for anything that depends on a date (warnings, overdue counts, titles).
    pub today: NaiveDate,
    /// The "as of" time in the stored form, when one was asked for.
    pub as_of: Option<String>,
}

impl Snapshot {
    /// Folds the log up to `when`, only `tenant`'s events (with the platform's) when one is given.
    /// `now` is the clock, read once by the caller.
    pub async fn take<S: EventStore + ?Sized>(
        store: &S,
        when: When,
        tenant: Option<&TenantId>,
        now: Timestamp,
    ) -> Result<Snapshot, DocumentError> {
        let head = store.head().await?;
        let (position, today, as_of) = match when {
            When::Now => (head, time::local_date(&now), None),
            When::AsOf(t) => (store.position_at(t).await?, time::local_date(&t), Some(time::format(&t))),
            When::AtPosition(p) if p > head => return Err(DocumentError::PositionBeyondHead { asked: p, head }),
            When::AtPosition(p) => {
                let at = match p {
                    0 => None,
                    p => store.read_all(p - 1, 1, Upto::Position(p)).await?.into_iter().next(),
                };
                let today = at
                    .and_then(|e| time::parse(&e.occurred_at).ok())
                    .map_or_else(|| time::local_date(&now), |t| time::local_date(&t));
                (p, today, None)
            }
        };
        let model = match (when, tenant) {
            // The district-wide view now: the checkpointed live model is the cheapest way there.
            (When::Now, None) => projector::load_live(store).await?,
            _ => projector::as_of(store, Upto::Position(position), tenant).await?,
        };
        Ok(Snapshot { position, today, as_of, model })
    }
}

/// A rendered 督查报告 with what an issue record needs.
#[derive(Debug, Clone)]
pub struct GeneratedReport {
    pub bytes: Vec<u8>,
    pub sha256: String,
    pub log_position: u64,
    pub as_of: Option<String>,
    pub format: DocumentFormat,
    pub title: String,
}

/// What a report generated after an erasure must say about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErasureNote {
    /// Personal data in it was erased: it shows 「已删除的个人信息」 where names were.
    Erased,
    /// … and it is a regeneration of an issued report (same position and format) whose recorded
    /// SHA-256 it no longer matches: the record stays true of the bytes that were issued.
    IssuedDiffers,
}

impl ErasureNote {
    pub fn chinese(self) -> &'static str {
        match self {
            ErasureNote::Erased => "本文档中部分个人信息已按规定删除，显示为“已删除的个人信息”。",
            ErasureNote::IssuedDiffers => {
                "签发后有个人信息按规定删除：本次重新生成的文件与签发时不同（显示为“已删除的个人信息”）；\
                 签发记录中的 SHA-256 仍对应当时签发的文件。"
            }
        }
    }
    pub fn english(self) -> &'static str {
        match self {
            ErasureNote::Erased => "personal data in this document was erased",
            ErasureNote::IssuedDiffers => {
                "personal data was erased after this report was issued: this regeneration differs from the \
                 issued file, whose recorded SHA-256 stays valid for the bytes issued"
            }
        }
    }
}

/// Whether a generated report shows erased personal data, and whether it is then a regeneration of
/// an issued report that no longer matches its record.
pub fn erasure_note(
    live: &ReadModel,
    tenant: &TenantId,
    inspection: &InspectionId,
    generated: &GeneratedReport,
) -> Option<ErasureNote> {
    // DOCX parts are stored uncompressed, so the text is in the bytes for every format.
    let marker = ducha_events::personal::ERASED.as_bytes();
    if !generated.bytes.windows(marker.len()).any(|w| w == marker) {
        return None;
    }
    let differs = live.inspection_detail(tenant, inspection).is_some_and(|d| {
        d.issued_reports.iter().any(|r| {
            r.log_position == generated.log_position && r.format == generated.format && r.sha256 != generated.sha256
        })
    });
    Some(if differs { ErasureNote::IssuedDiffers } else { ErasureNote::Erased })
}

/// The document of the 督查报告 of `inspection` in the snapshot's model.
pub fn report_document(
    model: &ReadModel,
    tenant: &TenantId,
    inspection: &InspectionId,
) -> Result<Document, DocumentError> {
    let entry = model.directory().tenant(tenant).ok_or_else(|| DocumentError::UnknownTenant(tenant.to_string()))?;
    let detail = model
        .inspection_detail(tenant, inspection)
        .ok_or_else(|| DocumentError::UnknownInspection(inspection.to_string()))?;
    Ok(report::build(&entry.name, &detail))
}

/// Generates the 督查报告 from the log as of `when`. The report always comes from a fold of the
/// tenant's events up to a log position, so regenerating at the recorded position gives the same
/// bytes.
pub async fn generate_report<S: EventStore + ?Sized>(
    store: &S,
    tenant: &TenantId,
    inspection: &InspectionId,
    when: When,
    format: DocumentFormat,
    now: Timestamp,
) -> Result<GeneratedReport, DocumentError> {
    let snap = Snapshot::take(store, when, Some(tenant), now).await?;
    let doc = report_document(&snap.model, tenant, inspection)?;
    let bytes = render(&doc, format)?;
    Ok(GeneratedReport {
        sha256: sha256_hex(&bytes),
        bytes,
        log_position: snap.position,
        as_of: snap.as_of,
        format,
        title: doc.title,
    })
}
