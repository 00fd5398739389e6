//! Importing an existing 整改台账 from an XLSX file (issue 14): read the workbook (calamine), plan
//! with [`ducha_events::ledger_import`], and append the planned events. Shared by
//! `POST /api/v1/tenants/{t}/ledger/import` and `ducha import-ledger`.
//!
//! Nothing is written unless the whole file is valid. The events go to several streams (a source
//! inspection, its findings, one stream per rectification) and the store has no atomic multi-stream
//! append, so each append carries an idempotency key made from the file's SHA-256 and the stream:
//! if the import stops half-way (a crash, a lost connection), importing the same file again
//! completes it and adds nothing twice; the ids are derived from the rows' content, so another file
//! with the same rows adds nothing either.

use crate::commands::{self, CommandError, Meta};
use crate::store::{AppendRequest, EventStore, ExpectedVersion};
use calamine::{Data, Reader, Xlsx};
use chrono::NaiveDate;
use ducha_events::Event;
use ducha_events::authz::{Action, Role, authorize};
use ducha_events::event::InspectionImported;
use ducha_events::ids::{FindingId, InspectionId, TenantId, stream};
use ducha_events::ledger_import::{self as plan_mod, Cell, Existing, ImportFile, ImportPlan, Mapping, SheetInput};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::Cursor;

/// Largest file accepted (the API's multipart limit is the same).
pub const FILE_MAX: usize = 20 * 1024 * 1024;

/// Why a file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("文件不是有效的 Excel（.xlsx）工作簿：{0}")]
    NotXlsx(String),
    #[error("文件超过{}MB", FILE_MAX / 1024 / 1024)]
    TooLarge,
    #[error("文件为空")]
    Empty,
}

/// Excel's own limits: a sheet has at most 1,048,576 rows and 16,384 columns. A range said to
/// start beyond them is not a workbook Excel wrote.
const MAX_ROWS: usize = 1_048_576;
const MAX_COLUMNS: usize = 16_384;

/// The cells of every worksheet of an XLSX file.
///
/// calamine panics on some malformed files (fuzzing found an overflow in its cell-reference parser,
/// calamine 0.38 `xlsx/mod.rs`: a reference of many letters): a panic while reading is this file's
/// error, not the server's.
pub fn read_xlsx(bytes: &[u8]) -> Result<Vec<SheetInput>, ReadError> {
    if bytes.is_empty() {
        return Err(ReadError::Empty);
    }
    if bytes.len() > FILE_MAX {
        return Err(ReadError::TooLarge);
    }
    std::panic::catch_unwind(|| read_sheets(bytes)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::warn!(panic = %what, "the XLSX reader failed on a malformed file");
        Err(ReadError::NotXlsx(format!("无法解析的工作簿结构 / malformed workbook ({what})")))
    })
}

fn read_sheets(bytes: &[u8]) -> Result<Vec<SheetInput>, ReadError> {
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(|e| ReadError::NotXlsx(e.to_string()))?;
    let mut out = Vec::new();
    for name in book.sheet_names() {
        let range = book.worksheet_range(&name).map_err(|e| ReadError::NotXlsx(e.to_string()))?;
        // Rows as Excel numbers them: the range may start below row 1 or right of column A.
        let (top, left) = range.start().map_or((0, 0), |(r, c)| (r as usize, c as usize));
        if top >= MAX_ROWS || left >= MAX_COLUMNS {
            return Err(ReadError::NotXlsx(format!(
                "工作表“{name}”的单元格位置超出 Excel 的范围 / cells beyond Excel's limits"
            )));
        }
        let mut rows: Vec<Vec<Cell>> = vec![Vec::new(); top];
        for r in range.rows() {
            let mut cells = vec![Cell::Empty; left];
            cells.extend(r.iter().map(cell_of));
            rows.push(cells);
        }
        out.push(SheetInput { name, rows });
    }
    Ok(out)
}

fn cell_of(d: &Data) -> Cell {
    match d {
        Data::Empty => Cell::Empty,
        Data::String(s) => Cell::Text(s.clone()),
        Data::Float(f) => Cell::Number(*f),
        Data::Int(i) => Cell::Number(*i as f64),
        Data::Bool(b) => Cell::Text(if *b { "是" } else { "否" }.to_owned()),
        // Excel's serial date (the 1900 system; 1904 workbooks are rare and not told apart here).
        Data::DateTime(dt) if dt.is_datetime() => NaiveDate::from_ymd_opt(1899, 12, 30)
            .and_then(|d| d.checked_add_days(chrono::Days::new(dt.as_f64().floor().max(0.0) as u64)))
            .map_or(Cell::Number(dt.as_f64()), Cell::Date),
        Data::DateTime(dt) => Cell::Number(dt.as_f64()),
        Data::DateTimeIso(s) => NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d")
            .map(Cell::Date)
            .unwrap_or_else(|_| Cell::Text(s.clone())),
        Data::DurationIso(s) => Cell::Text(s.clone()),
        Data::Error(e) => Cell::Text(format!("#{e:?}")),
    }
}

/// The SHA-256 of the file, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Ids the tenant already has, looked up in the store, and its findings' content.
struct Known<'a> {
    inspections: HashSet<String>,
    findings: HashSet<String>,
    same: &'a Present,
}

/// What a tenant's read model already has: its findings' content keys and its inspections by
/// (year, title).
#[derive(Debug, Clone, Default)]
pub struct Present {
    findings: HashSet<String>,
    inspections: std::collections::HashMap<(i32, String), InspectionId>,
}

impl Existing for Known<'_> {
    fn has_inspection(&self, id: &InspectionId) -> bool {
        self.inspections.contains(id.as_str())
    }
    fn has_finding(&self, id: &FindingId) -> bool {
        self.findings.contains(id.as_str())
    }
    fn has_same(&self, f: &ducha_events::event::FindingImported) -> bool {
        self.same.findings.contains(&plan_mod::same_key(f.community_id.as_ref(), &f.category, &f.title, &f.description))
    }
    fn inspection_titled(&self, year: i32, title: &str) -> Option<InspectionId> {
        self.same.inspections.get(&(year, title.to_owned())).cloned()
    }
}

/// What a tenant already has in `model` (see [`Existing::has_same`], [`Existing::inspection_titled`]).
pub fn present(model: &ducha_events::projection::ReadModel, tenant: &TenantId) -> Present {
    let Some(facts) = model.tenant_facts(tenant) else { return Present::default() };
    Present {
        findings: facts
            .findings
            .iter()
            .map(|f| plan_mod::same_key(f.community_id.as_ref(), &f.category, &f.title, &f.description))
            .collect(),
        inspections: facts.inspections.iter().map(|i| ((i.year, i.title.clone()), i.inspection_id.clone())).collect(),
    }
}

/// A planned import: the file, the plan, and the role the importer acts in.
#[derive(Debug, Clone)]
pub struct Planned {
    pub file: ImportFile,
    pub plan: ImportPlan,
    pub role: Role,
}

/// Plans the import of `bytes` into `tenant` as `meta.actor` (who must administer the tenant).
pub async fn plan<S: EventStore + ?Sized>(
    store: &S,
    meta: &Meta,
    tenant: &TenantId,
    file_name: &str,
    bytes: &[u8],
    mapping: Option<&Mapping>,
    same: &Present,
) -> Result<Result<Planned, ReadError>, CommandError> {
    let (tenant_state, _) = commands::load_tenant(store, tenant).await?;
    let target = tenant_state
        .target()
        .filter(|_| tenant_state.created)
        .ok_or_else(|| CommandError::Domain(ducha_events::DomainError::NotFound { what: "街道".to_owned() }))?;
    authorize(&meta.actor, Action::ManageTenant, &target)?;
    let role = commands::acting_role(&meta.actor, &target);
    let sheets = match read_xlsx(bytes) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let file = ImportFile { sha256: sha256_hex(bytes), name: file_name.to_owned() };
    let today = ducha_events::time::local_date(&meta.at);
    // First without knowing what exists (ids only), then with the ids the store has.
    let nothing = Known { inspections: HashSet::new(), findings: HashSet::new(), same };
    let first = plan_mod::plan(&tenant_state, &nothing, &file, &sheets, mapping, today);
    let mut known = nothing;
    for row in &first.rows {
        let i = row.inspection_id.as_str();
        if !known.inspections.contains(i)
            && store.stream_version(&stream::inspection(tenant, &row.inspection_id)).await? > 0
        {
            known.inspections.insert(i.to_owned());
        }
        if store.stream_version(&stream::finding(tenant, &row.finding.finding_id)).await? > 0 {
            known.findings.insert(row.finding.finding_id.as_str().to_owned());
        }
    }
    let plan = plan_mod::plan(&tenant_state, &known, &file, &sheets, mapping, today);
    Ok(Ok(Planned { file, plan, role }))
}

/// What an import wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    pub inspections: usize,
    pub findings: usize,
    pub rectifications: usize,
    /// The global position of the last event written (0 when nothing was).
    pub last_position: u64,
}

/// Appends a valid plan's events. Call only with a plan without problems.
pub async fn write<S: EventStore + ?Sized>(
    store: &S,
    meta: &Meta,
    tenant: &TenantId,
    planned: &Planned,
) -> Result<Written, CommandError> {
    let Planned { file, plan, role } = planned;
    let role = *role;
    let mut written = Written::default();
    let key = |what: &str| format!("ledger-import:{}:{what}", &file.sha256[..16.min(file.sha256.len())]);
    for i in &plan.inspections {
        let s = stream::inspection(tenant, &i.inspection_id);
        let out = append(
            store,
            meta,
            role,
            tenant,
            s,
            ExpectedVersion::NoStream,
            vec![InspectionImported::clone(i).into()],
            key(i.inspection_id.as_str()),
        )
        .await?;
        written.inspections += usize::from(!out.deduplicated);
        written.last_position = written.last_position.max(out.last_position);
    }
    // The findings in file order (the ledger's 序号 follows it): one append per run of rows with
    // the same source.
    let mut runs: Vec<(&InspectionId, u32, Vec<Event>)> = Vec::new();
    for r in &plan.rows {
        match runs.last_mut() {
            Some((i, _, events)) if *i == &r.inspection_id => events.push(r.finding.clone().into()),
            _ => runs.push((&r.inspection_id, r.row, vec![r.finding.clone().into()])),
        }
    }
    for (id, first_row, events) in runs {
        let s = stream::inspection(tenant, id);
        let n = events.len();
        let k = key(&format!("{id}:findings:{first_row}"));
        let out = append(store, meta, role, tenant, s, ExpectedVersion::Any, events, k).await?;
        if !out.deduplicated {
            written.findings += n;
        }
        written.last_position = written.last_position.max(out.last_position);
    }
    for r in &plan.rows {
        let s = stream::finding(tenant, &r.finding.finding_id);
        let out = append(
            store,
            meta,
            role,
            tenant,
            s,
            ExpectedVersion::NoStream,
            vec![r.rectification.clone().into()],
            key(r.finding.finding_id.as_str()),
        )
        .await?;
        written.rectifications += usize::from(!out.deduplicated);
        written.last_position = written.last_position.max(out.last_position);
    }
    Ok(written)
}

#[allow(clippy::too_many_arguments)]
async fn append<S: EventStore + ?Sized>(
    store: &S,
    meta: &Meta,
    role: Role,
    tenant: &TenantId,
    stream: String,
    expected: ExpectedVersion,
    events: Vec<Event>,
    idempotency_key: String,
) -> Result<crate::store::AppendOutcome, CommandError> {
    let events = commands::new_events(meta, role, &events);
    let req =
        AppendRequest { tenant: tenant.clone(), stream, expected, events, idempotency_key: Some(idempotency_key) };
    Ok(store.append(req).await?)
}

/// `ducha import-ledger`: import (or, with `--dry-run`, only check) an existing 整改台账.
#[derive(Debug, clap::Args)]
pub struct ImportLedgerArgs {
    /// The sub-district (tenant) id.
    #[arg(long)]
    pub tenant: String,
    /// The workbook (.xlsx): Ducha's own 整改台账 layout, or another with `--mapping`.
    pub file: std::path::PathBuf,
    /// Only check the file and print what would be created and every problem.
    #[arg(long)]
    pub dry_run: bool,
    /// For other layouts: JSON object field → column heading or letter, e.g.
    /// '{"problem":"问题描述","community":"B","category":"分类","deadline":"期限"}'.
    #[arg(long)]
    pub mapping: Option<String>,
    /// Import as this user (a sub-district admin of the tenant); by default as the system.
    #[arg(long = "as", value_name = "USERNAME")]
    pub as_user: Option<String>,
}

/// Runs `ducha import-ledger`; an error (non-zero exit) when the file has problems.
pub async fn cli(location: &crate::store::StoreLocation, args: ImportLedgerArgs) -> anyhow::Result<()> {
    use anyhow::{Context, bail};
    let tenant = TenantId::parse(args.tenant).context("街道编号无效 / invalid tenant id")?;
    let mapping: Option<Mapping> = args
        .mapping
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .context("--mapping 应为 JSON 对象，如 {\"problem\":\"问题描述\"} / --mapping must be a JSON object")?;
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("无法读取文件 {} / cannot read the file", args.file.display()))?;
    let file_name = args.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let access = if args.dry_run { crate::store::Access::Read } else { crate::store::Access::Write };
    let opened = crate::personal::open_store(location, access).await?;
    let store = &*opened.store;
    let live = crate::projector::load_live(store).await?;
    let same = present(&live, &tenant);
    let actor = match &args.as_user {
        None => ducha_events::authz::Actor::system(),
        Some(username) => {
            let user = live
                .directory()
                .user_by_username(username)
                .with_context(|| format!("未找到用户 {username} / no such user"))?;
            if user.disabled {
                bail!("用户 {username} 已停用 / the user is disabled");
            }
            user.actor()
        }
    };
    let meta = Meta::new(actor, crate::clock::now());
    let explain = |e: CommandError| match e {
        CommandError::Domain(d) => anyhow::anyhow!("{} / {d}", d.message_zh()),
        other => anyhow::anyhow!("{other}"),
    };
    let planned =
        match plan(store, &meta, &tenant, &file_name, &bytes, mapping.as_ref(), &same).await.map_err(explain)? {
            Ok(p) => p,
            Err(e) => bail!("{e} / the file cannot be read as an XLSX workbook"),
        };
    let p = &planned.plan;
    println!(
        "文件 {}（SHA-256 {}），工作表“{}”，表头在第{}行，数据{}行",
        planned.file.name, planned.file.sha256, p.sheet, p.header_row, p.rows_read
    );
    if !p.problems.is_empty() {
        for x in &p.problems {
            let column = x.column.as_deref().map(|c| format!("{c}列")).unwrap_or_default();
            let at = if x.row > 0 { format!("第{}行{column}", x.row) } else { "全表".to_owned() };
            eprintln!("  {}!{at}：{}", x.sheet, x.message);
        }
        bail!(
            "文件有{}处问题，未导入任何内容 / {} problem(s); nothing was imported",
            p.problems.len(),
            p.problems.len()
        );
    }
    if args.dry_run {
        println!(
            "检查通过：将新建来源{}个、问题{}条（已导入过{}条）/ dry run: would create {} source(s), {} finding(s); {} already imported",
            p.inspections.len(),
            p.rows.len(),
            p.already_imported,
            p.inspections.len(),
            p.rows.len(),
            p.already_imported
        );
    } else {
        let w = write(store, &meta, &tenant, &planned).await.map_err(explain)?;
        println!(
            "已导入：来源{}个、问题{}条、整改{}条（已导入过{}条）/ imported {} source(s), {} finding(s); {} already there",
            w.inspections,
            w.findings,
            w.rectifications,
            p.already_imported,
            w.inspections,
            w.findings,
            p.already_imported
        );
    }
    opened.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the fuzzer found (calamine panicked on a cell reference that overflows): the file is
    /// refused as not a workbook, and the reader does not panic.
    #[test]
    fn a_file_the_xlsx_reader_panics_on_is_refused() {
        // The manifest dir at run time: a shared target dir may hold a test built in another clone.
        let path = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap())
            .join("../fuzz/corpus/ledger_xlsx/crash-calamine-cell-reference-overflow");
        let bytes = std::fs::read(path).unwrap();
        match read_xlsx(&bytes) {
            Err(ReadError::NotXlsx(why)) => assert!(!why.is_empty()),
            other => panic!("expected NotXlsx, got {other:?}"),
        }
    }
}
