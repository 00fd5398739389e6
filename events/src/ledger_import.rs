//! Importing a sub-district's existing 整改台账 (issue 14): from the cells of a workbook to the
//! events that bring each row in, or the list of everything wrong with the file.
//!
//! Pure: the backend reads the XLSX (calamine) into [`SheetInput`]s and writes the planned events.
//! The layout Ducha exports is recognised by its headings; other layouts name their columns with a
//! [`Mapping`] (field → the column's heading, or its letter). Nothing is planned unless the whole file
//! is valid: [`ImportPlan::problems`] lists every problem with its sheet, row, column and a Chinese
//! message.
//!
//! Ids are derived from the content (the source, community, category and problem text), so
//! importing the same rows twice adds nothing, and a ledger exported from one tenant imports into
//! another with the same rows.

use crate::event::{FindingImported, ImportedFrom, InspectionImported, RectificationImported};
use crate::finding::{self, RectificationStatus};
use crate::ids::{CommunityId, FindingId, InspectionId};
use crate::inspection;
use crate::projection::WHOLE_SUBDISTRICT;
use crate::tenant::TenantState;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Most data rows in one file.
pub const ROWS_MAX: usize = 10_000;
/// Rows searched for the heading row.
const HEADER_SEARCH: usize = 10;

/// One cell as the workbook reader saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
    Date(NaiveDate),
}

impl Cell {
    /// The cell as text (numbers without a needless `.0`).
    pub fn text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(s) => s.trim().to_owned(),
            Cell::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
            Cell::Number(n) => n.to_string(),
            Cell::Date(d) => d.to_string(),
        }
    }
    fn is_empty(&self) -> bool {
        self.text().is_empty()
    }
}

/// One worksheet: its name and its rows from the first (Excel's row 1).
#[derive(Debug, Clone, PartialEq)]
pub struct SheetInput {
    pub name: String,
    pub rows: Vec<Vec<Cell>>,
}

/// What a column of the ledger means.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Source,
    Community,
    Category,
    Problem,
    Measure,
    Leader,
    ResponsibleUnit,
    Person,
    Deadline,
    Progress,
    Status,
    Evidence,
    VerifiedOn,
    FoundOn,
    AssignedOn,
}

impl Field {
    pub const ALL: [Field; 15] = [
        Field::Source,
        Field::Community,
        Field::Category,
        Field::Problem,
        Field::Measure,
        Field::Leader,
        Field::ResponsibleUnit,
        Field::Person,
        Field::Deadline,
        Field::Progress,
        Field::Status,
        Field::Evidence,
        Field::VerifiedOn,
        Field::FoundOn,
        Field::AssignedOn,
    ];

    /// Fields without which no row can be imported.
    pub const REQUIRED: [Field; 3] = [Field::Community, Field::Category, Field::Problem];

    /// The heading Ducha's own ledger gives the column (the first alias).
    pub fn heading(self) -> &'static str {
        self.aliases()[0]
    }

    /// Headings recognised without a mapping.
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::Source => &["来源", "督查名称", "检查名称", "问题来源"],
            Field::Community => &["社区", "被督查社区", "被督查单位"],
            Field::Category => &["问题类别", "类别", "问题类型"],
            Field::Problem => &["存在问题", "问题描述", "问题"],
            Field::Measure => &["整改措施", "措施"],
            Field::Leader => &["责任领导", "牵头领导", "分管领导"],
            Field::ResponsibleUnit => &["责任单位"],
            Field::Person => &["责任人"],
            Field::Deadline => &["整改时限", "完成时限", "整改期限"],
            Field::Progress => &["进展情况", "整改进展"],
            Field::Status => &["完成情况", "整改状态", "状态"],
            Field::Evidence => &["佐证材料"],
            Field::VerifiedOn => &["销号日期", "销号时间"],
            Field::FoundOn => &["发现日期", "发现时间"],
            Field::AssignedOn => &["交办日期", "交办时间"],
        }
    }
}

/// Which column holds which field: the column's heading as the file has it, or its letter (`E`).
pub type Mapping = BTreeMap<Field, String>;

/// One problem with the file.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportProblem {
    pub sheet: String,
    /// Excel's row number (1-based); 0 for the file as a whole.
    pub row: u32,
    /// Excel's column letter, when one column is at fault.
    pub column: Option<String>,
    pub field: Option<Field>,
    /// 中文说明.
    pub message: String,
}

/// A column the import reads.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportColumn {
    pub field: Field,
    /// The heading in the file.
    pub heading: String,
    /// Excel's column letter.
    pub column: String,
}

// ---------------------------------------------------------------- the API's answer (shared with the web app)

/// How many of each would be, or were, created.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportCounts {
    /// Sources (来源) new to the sub-district, kept as imported inspections.
    pub inspections: usize,
    pub findings: usize,
    pub rectifications: usize,
}

/// One row as it would be imported.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportPreviewRow {
    pub row: u32,
    pub finding_id: String,
    pub source: String,
    pub community: String,
    pub category: String,
    pub title: String,
    pub status: RectificationStatus,
    pub status_name: String,
    pub deadline: Option<NaiveDate>,
}

/// What an import did or would do.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerImportReport {
    pub dry_run: bool,
    /// Whether anything was written.
    pub imported: bool,
    pub file_name: String,
    pub file_sha256: String,
    pub sheet: String,
    /// Excel's row number of the headings (0: none found).
    pub header_row: u32,
    /// The columns read, by field.
    pub columns: Vec<ImportColumn>,
    /// Every heading of the sheet, for choosing a mapping.
    pub headings: Vec<String>,
    /// Every field a mapping can name, with the heading Ducha's own ledger uses.
    pub fields: Vec<FieldInfo>,
    pub rows_read: usize,
    /// Created (or, in a dry run, to be created).
    pub created: ImportCounts,
    /// Rows the sub-district already has (imported before): skipped.
    pub already_imported: usize,
    pub problems: Vec<ImportProblem>,
    /// The rows to import (the first 500).
    pub preview: Vec<ImportPreviewRow>,
    /// The log position of the last event written (send as `min_position` to read it back).
    pub last_position: Option<u64>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldInfo {
    pub field: Field,
    pub heading: String,
    pub required: bool,
}

/// One row to bring in.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRow {
    pub row: u32,
    pub inspection_id: InspectionId,
    pub finding: FindingImported,
    pub rectification: RectificationImported,
}

/// What an import would do, or what is wrong with the file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImportPlan {
    pub sheet: String,
    /// Excel's row number of the headings (0 when none was found).
    pub header_row: u32,
    pub columns: Vec<ImportColumn>,
    /// The headings of the sheet, for a mapping step.
    pub headings: Vec<String>,
    /// Data rows read (empty rows not counted).
    pub rows_read: usize,
    /// Sources new to the tenant.
    pub inspections: Vec<InspectionImported>,
    /// Rows new to the tenant, in file order.
    pub rows: Vec<PlannedRow>,
    /// Rows the tenant already has (an earlier import of the same rows).
    pub already_imported: usize,
    pub problems: Vec<ImportProblem>,
}

/// The file being imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportFile {
    pub sha256: String,
    pub name: String,
}

/// What the tenant already has: by id (an earlier import), or the same finding recorded in Ducha
/// (a tenant importing its own exported ledger adds nothing).
pub trait Existing {
    fn has_inspection(&self, id: &InspectionId) -> bool;
    fn has_finding(&self, id: &FindingId) -> bool;
    /// A finding of the tenant with the same community, category, title and description.
    fn has_same(&self, _f: &FindingImported) -> bool {
        false
    }
    /// An inspection of the tenant with this year and title (imported rows of it join it).
    fn inspection_titled(&self, _year: i32, _title: &str) -> Option<InspectionId> {
        None
    }
}

/// The key [`Existing::has_same`] compares.
pub fn same_key(community: Option<&CommunityId>, category: &str, title: &str, description: &str) -> String {
    format!(
        "{}\u{1f}{category}\u{1f}{}\u{1f}{}",
        community.map_or("", |c| c.as_str()),
        title.trim(),
        description.trim()
    )
}

/// Plans the import of `sheets` into `tenant` on `today`.
pub fn plan(
    tenant: &TenantState,
    existing: &dyn Existing,
    file: &ImportFile,
    sheets: &[SheetInput],
    mapping: Option<&Mapping>,
    today: NaiveDate,
) -> ImportPlan {
    let mut plan = ImportPlan::default();
    let whole = |sheet: &str, message: String| ImportProblem {
        sheet: sheet.to_owned(),
        row: 0,
        column: None,
        field: None,
        message,
    };
    // The sheet and row with the headings: the first that has every required field.
    let found = sheets.iter().find_map(|s| {
        s.rows.iter().take(HEADER_SEARCH).enumerate().find_map(|(i, row)| {
            let columns = columns_of(row, mapping);
            Field::REQUIRED.iter().all(|f| columns.contains_key(f)).then_some((s, i, columns))
        })
    });
    let Some((sheet, header, columns)) = found else {
        let first = sheets.first().map(|s| s.name.clone()).unwrap_or_default();
        plan.sheet.clone_from(&first);
        plan.headings = sheets
            .first()
            .and_then(|s| {
                // The first row with the most cells filled: the likeliest headings.
                let rows = s.rows.iter().take(HEADER_SEARCH);
                rows.rev().max_by_key(|r| r.iter().filter(|c| !c.is_empty()).count())
            })
            .map(|r| r.iter().map(Cell::text).collect())
            .unwrap_or_default();
        let wanted: Vec<&str> = Field::REQUIRED.iter().map(|f| f.heading()).collect();
        let message = match mapping {
            None => format!("找不到表头：需要“{}”等列；其他格式请先指定各列对应的内容", wanted.join("”“")),
            Some(_) => format!("按指定的列找不到表头：须指定“{}”列", wanted.join("”“")),
        };
        plan.problems.push(whole(&first, message));
        return plan;
    };
    plan.sheet.clone_from(&sheet.name);
    plan.header_row = header as u32 + 1;
    let header_cells = &sheet.rows[header];
    plan.headings = header_cells.iter().map(Cell::text).collect();
    plan.columns = columns
        .iter()
        .map(|(&field, &c)| ImportColumn {
            field,
            heading: header_cells.get(c).map(Cell::text).unwrap_or_default(),
            column: column_letter(c),
        })
        .collect();
    if let Some(m) = mapping {
        for (field, wanted) in m {
            if !columns.contains_key(field) {
                plan.problems.push(ImportProblem {
                    field: Some(*field),
                    ..whole(&sheet.name, format!("找不到指定给“{}”的列“{wanted}”", field.heading()))
                });
            }
        }
    }

    let data: Vec<(usize, &Vec<Cell>)> =
        sheet.rows.iter().enumerate().skip(header + 1).filter(|(_, r)| r.iter().any(|c| !c.is_empty())).collect();
    plan.rows_read = data.len();
    if data.is_empty() {
        plan.problems.push(whole(&sheet.name, "表中没有数据行".to_owned()));
    }
    if data.len() > ROWS_MAX {
        plan.problems.push(whole(&sheet.name, format!("一次最多导入{ROWS_MAX}行，本表有{}行", data.len())));
        return plan;
    }

    let ctx = RowContext { tenant, existing, sheet: &sheet.name, columns: &columns, file, today };
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut new_inspections: BTreeSet<String> = BTreeSet::new();
    for (i, cells) in data {
        let row = i as u32 + 1;
        match ctx.row(row, cells) {
            Err(mut problems) => plan.problems.append(&mut problems),
            Ok(planned) => {
                let id = planned.finding.finding_id.as_str().to_owned();
                if let Some(first) = seen.insert(id, row) {
                    plan.problems.push(ImportProblem {
                        sheet: sheet.name.clone(),
                        row,
                        column: None,
                        field: None,
                        message: format!("与第{first}行是同一个问题（来源、社区、类别和问题内容都相同）"),
                    });
                    continue;
                }
                if existing.has_finding(&planned.finding.finding_id) || existing.has_same(&planned.finding) {
                    plan.already_imported += 1;
                    continue;
                }
                if !existing.has_inspection(&planned.inspection_id)
                    && new_inspections.insert(planned.inspection_id.as_str().to_owned())
                {
                    plan.inspections.push(ctx.inspection_of(&planned, cells));
                }
                plan.rows.push(planned);
            }
        }
    }
    if !plan.problems.is_empty() {
        plan.inspections.clear();
        plan.rows.clear();
    }
    plan
}

/// The columns of a heading row: by the mapping when given, else by the known headings.
fn columns_of(row: &[Cell], mapping: Option<&Mapping>) -> BTreeMap<Field, usize> {
    let headings: Vec<String> = row.iter().map(|c| normalise(&c.text())).collect();
    let mut out = BTreeMap::new();
    match mapping {
        Some(m) => {
            for (field, wanted) in m {
                let wanted_n = normalise(wanted);
                let by_heading = headings.iter().position(|h| !h.is_empty() && *h == wanted_n);
                if let Some(c) = by_heading.or_else(|| column_index(wanted)) {
                    out.insert(*field, c);
                }
            }
        }
        None => {
            for field in Field::ALL {
                let found = field.aliases().iter().find_map(|a| headings.iter().position(|h| h == a));
                if let Some(c) = found {
                    out.entry(field).or_insert(c);
                }
            }
        }
    }
    out
}

/// Headings compared without spaces and full-width spaces.
fn normalise(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace() && *c != '\u{3000}').collect()
}

/// `0` → `A`, `26` → `AA`.
pub fn column_letter(mut i: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// `A` → `0`; `None` for anything that is not one to three letters.
pub fn column_index(s: &str) -> Option<usize> {
    let s = s.trim();
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    Some(s.bytes().fold(0usize, |n, b| n * 26 + (b.to_ascii_uppercase() - b'A') as usize + 1) - 1)
}

/// A date as ledgers write it: an Excel date, `2024-04-30`, `2024/4/30`, `2024.4.30`, `2024年4月30日`.
pub fn parse_date(cell: &Cell) -> Result<Option<NaiveDate>, String> {
    match cell {
        Cell::Empty => Ok(None),
        Cell::Date(d) => Ok(Some(*d)),
        // Excel's serial dates (1955 … 2119).
        Cell::Number(n) if (20_000.0..80_000.0).contains(n) && n.fract() == 0.0 => {
            Ok(NaiveDate::from_ymd_opt(1899, 12, 30).and_then(|d| d.checked_add_days(chrono::Days::new(*n as u64))))
        }
        Cell::Number(_) => Err(format!("“{}”不是日期", cell.text())),
        Cell::Text(t) if t.trim().is_empty() => Ok(None),
        Cell::Text(t) => parse_date_text(t.trim()).map(Some).ok_or_else(|| format!("“{}”不是日期", t.trim())),
    }
}

fn parse_date_text(t: &str) -> Option<NaiveDate> {
    let t = t.trim().trim_end_matches('日');
    let parts: Vec<&str> = t.split(['-', '/', '.', '年', '月']).collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let y: i32 = parts[0].parse().ok().filter(|y| (1900..=2200).contains(y))?;
    NaiveDate::from_ymd_opt(y, parts[1].parse().ok()?, parts[2].parse().ok()?)
}

/// A status as ledgers write it.
pub fn parse_status(s: &str) -> Option<RectificationStatus> {
    use RectificationStatus::*;
    let s = normalise(s);
    RectificationStatus::ALL.into_iter().find(|st| st.name_zh() == s).or(match s.as_str() {
        "未交办" => Some(Unassigned),
        "正在整改" | "整改中" | "进行中" => Some(InProgress),
        "待验收" | "已提交" | "待审核" => Some(Submitted),
        "已完成" | "已整改" | "已办结" | "完成" => Some(Verified),
        "已撤回" | "撤销" => Some(Dismissed),
        _ => None,
    })
}

struct RowContext<'a> {
    tenant: &'a TenantState,
    existing: &'a dyn Existing,
    sheet: &'a str,
    columns: &'a BTreeMap<Field, usize>,
    file: &'a ImportFile,
    today: NaiveDate,
}

impl RowContext<'_> {
    fn cell<'c>(&self, cells: &'c [Cell], f: Field) -> &'c Cell {
        self.columns.get(&f).and_then(|&c| cells.get(c)).unwrap_or(&Cell::Empty)
    }
    fn text(&self, cells: &[Cell], f: Field) -> String {
        self.cell(cells, f).text()
    }
    fn problem(&self, row: u32, f: Field, message: String) -> ImportProblem {
        ImportProblem {
            sheet: self.sheet.to_owned(),
            row,
            column: self.columns.get(&f).map(|&c| column_letter(c)),
            field: Some(f),
            message,
        }
    }
    fn from(&self, row: u32) -> ImportedFrom {
        ImportedFrom {
            file_sha256: self.file.sha256.clone(),
            file_name: self.file.name.clone(),
            sheet: self.sheet.to_owned(),
            row,
        }
    }

    /// Source title and year: `2023年 标题` (Ducha's export adds the year so), else the first
    /// `20xx年` in the title, else the year of the row's dates, else this year.
    fn source(&self, cells: &[Cell], dates: &[Option<NaiveDate>]) -> (String, i32) {
        let text = self.text(cells, Field::Source);
        let fallback_year = dates.iter().flatten().map(|d| d.year()).next().unwrap_or(self.today.year());
        if text.is_empty() {
            return (format!("导入的整改台账（{}）", self.file.name), fallback_year);
        }
        if let Some((y, rest)) = text.split_once("年 ")
            && y.len() == 4
            && let Ok(y) = y.parse::<i32>()
            && !rest.trim().is_empty()
        {
            return (rest.trim().to_owned(), y);
        }
        let year = text
            .match_indices('年')
            .filter_map(|(i, _)| text.get(i.checked_sub(4)?..i)?.parse::<i32>().ok())
            .find(|y| (1990..=2200).contains(y))
            .unwrap_or(fallback_year);
        (text, year)
    }

    fn row(&self, row: u32, cells: &[Cell]) -> Result<PlannedRow, Vec<ImportProblem>> {
        use RectificationStatus::*;
        let mut problems = Vec::new();
        let mut date = |f: Field| match parse_date(self.cell(cells, f)) {
            Ok(d) => d,
            Err(m) => {
                problems.push(self.problem(row, f, m));
                None
            }
        };
        let found_on = date(Field::FoundOn);
        let assigned_on = date(Field::AssignedOn);
        let verified_on = date(Field::VerifiedOn);
        // 整改时限, possibly `2024-04-30（原2024-03-31，已延期）` as Ducha writes an extended one.
        let (deadline, original_deadline) = {
            let raw = self.cell(cells, Field::Deadline);
            let text = raw.text();
            match (raw, text.split_once('（')) {
                (Cell::Text(_), Some((d, rest))) => {
                    let d = parse_date_text(d.trim());
                    let o = rest.trim_start_matches('原').split(['，', '）', ',']).next().and_then(parse_date_text);
                    if d.is_none() {
                        problems.push(self.problem(row, Field::Deadline, format!("“{text}”不是日期")));
                    }
                    (d, o)
                }
                _ => match parse_date(raw) {
                    Ok(d) => (d, None),
                    Err(m) => {
                        problems.push(self.problem(row, Field::Deadline, m));
                        (None, None)
                    }
                },
            }
        };

        // Community: by name or id; empty or 全街道 for a cross-cutting finding.
        let community_text = self.text(cells, Field::Community);
        let community_id: Option<CommunityId> = if community_text.is_empty() || community_text == WHOLE_SUBDISTRICT {
            None
        } else {
            let by_name = self.tenant.communities.iter().find(|(_, n)| **n == community_text).map(|(id, _)| id.clone());
            let by_id = CommunityId::parse(&community_text).ok().filter(|id| self.tenant.communities.contains_key(id));
            match by_name.or(by_id) {
                Some(id) => Some(id),
                None => {
                    problems.push(self.problem(row, Field::Community, format!("本街道没有社区“{community_text}”")));
                    None
                }
            }
        };
        let category_text = self.text(cells, Field::Category);
        let category = if category_text.is_empty() {
            problems.push(self.problem(row, Field::Category, "缺少问题类别".to_owned()));
            String::new()
        } else {
            let by_name = self.tenant.categories.iter().find(|(_, t)| t.name == category_text).map(|(c, _)| c.clone());
            let by_code = self.tenant.categories.contains_key(&category_text).then(|| category_text.clone());
            by_name.or(by_code).unwrap_or_else(|| {
                problems.push(self.problem(row, Field::Category, format!("本街道没有问题类别“{category_text}”")));
                String::new()
            })
        };
        let problem_text = self.text(cells, Field::Problem);
        let (title, description) = split_first_sentence(&problem_text);
        if problem_text.is_empty() {
            problems.push(self.problem(row, Field::Problem, "缺少存在问题".to_owned()));
        } else if title.chars().count() > inspection::TITLE_MAX {
            problems.push(self.problem(
                row,
                Field::Problem,
                format!("问题的第一句（标题）不能超过{}字", inspection::TITLE_MAX),
            ));
        } else if problem_text.chars().count() > inspection::TEXT_MAX {
            problems.push(self.problem(row, Field::Problem, format!("存在问题不能超过{}字", inspection::TEXT_MAX)));
        }
        let limits = [
            (Field::Measure, finding::TEXT_MAX),
            (Field::Progress, finding::TEXT_MAX),
            (Field::ResponsibleUnit, finding::SHORT_TEXT_MAX),
            (Field::Leader, finding::NAME_MAX),
            (Field::Person, finding::NAME_MAX),
            (Field::Source, inspection::TITLE_MAX),
            (Field::Evidence, finding::TEXT_MAX),
        ];
        for (f, max) in limits {
            if self.text(cells, f).chars().count() > max {
                problems.push(self.problem(row, f, format!("“{}”不能超过{max}字", f.heading())));
            }
        }
        let measure = self.text(cells, Field::Measure);

        // 完成情况: as written, or inferred from what the row has.
        let status_text = self.text(cells, Field::Status);
        let status = if status_text.is_empty() {
            if verified_on.is_some() {
                Verified
            } else if !self.text(cells, Field::Progress).is_empty() {
                InProgress
            } else if deadline.is_some() {
                Assigned
            } else {
                Unassigned
            }
        } else {
            parse_status(&status_text).unwrap_or_else(|| {
                let known: Vec<&str> = RectificationStatus::ALL.iter().map(|s| s.name_zh()).collect();
                problems.push(self.problem(
                    row,
                    Field::Status,
                    format!("完成情况“{status_text}”无法识别（可填：{}）", known.join("、")),
                ));
                Unassigned
            })
        };
        let assigned = matches!(status, Assigned | InProgress | Submitted | Returned | Verified);
        if assigned && deadline.is_none() && !self.cell(cells, Field::Deadline).is_empty() {
            // already reported as not a date
        } else if assigned && deadline.is_none() {
            problems.push(self.problem(
                row,
                Field::Deadline,
                format!("完成情况为“{}”，须填写整改时限", status.name_zh()),
            ));
        }
        // Only a file that has the column must fill it.
        if assigned && measure.is_empty() && self.columns.contains_key(&Field::Measure) {
            problems.push(self.problem(
                row,
                Field::Measure,
                format!("完成情况为“{}”，须填写整改措施", status.name_zh()),
            ));
        }
        if status == Unassigned && deadline.is_some() {
            problems.push(self.problem(row, Field::Status, "完成情况为“待交办”，却填写了整改时限".to_owned()));
        }
        if status == Verified && verified_on.is_none() && !self.cell(cells, Field::VerifiedOn).is_empty() {
            // already reported as not a date
        } else if status == Verified && verified_on.is_none() {
            problems.push(self.problem(row, Field::VerifiedOn, "完成情况为“已销号”，须填写销号日期".to_owned()));
        }
        if status != Verified && verified_on.is_some() {
            problems.push(self.problem(
                row,
                Field::VerifiedOn,
                format!("完成情况为“{}”，却填写了销号日期", status.name_zh()),
            ));
        }
        for (f, d) in [(Field::FoundOn, found_on), (Field::AssignedOn, assigned_on), (Field::VerifiedOn, verified_on)] {
            if d.is_some_and(|d| d > self.today) {
                problems.push(self.problem(row, f, format!("{}不能晚于今天", f.heading())));
            }
        }
        if let (Some(a), Some(d)) = (assigned_on, deadline)
            && d < a
        {
            problems.push(self.problem(row, Field::Deadline, format!("整改时限{d}早于交办日期{a}")));
        }
        if let (Some(f), Some(a)) = (found_on, assigned_on)
            && a < f
        {
            problems.push(self.problem(row, Field::AssignedOn, format!("交办日期{a}早于发现日期{f}")));
        }
        if !problems.is_empty() {
            return Err(problems);
        }

        let (source_title, year) = self.source(cells, &[found_on, assigned_on, deadline, verified_on]);
        // The tenant's own inspection of that year and title, else an imported source.
        let inspection_id = match self.existing.inspection_titled(year, &source_title) {
            Some(id) => id,
            None => derived_id("inspection", &[&year.to_string(), &source_title])
                .and_then(|s| InspectionId::parse(&s).ok())
                .ok_or_else(|| vec![self.problem(row, Field::Source, "无法生成督查编号".to_owned())])?,
        };
        let community_key = community_id.as_ref().map_or("", |c| c.as_str());
        let finding_id =
            derived_id("finding", &[&year.to_string(), &source_title, community_key, &category, &problem_text])
                .and_then(|s| FindingId::parse(&s).ok())
                .ok_or_else(|| vec![self.problem(row, Field::Problem, "无法生成问题编号".to_owned())])?;
        // 整改进展 as Ducha writes it: `最新进展（共3次报告）`.
        let progress = self.text(cells, Field::Progress);
        let (latest_progress, progress_count) = match progress.rsplit_once("（共") {
            Some((p, n)) if n.ends_with("次报告）") => {
                let n = n.trim_end_matches("次报告）").parse::<u32>().unwrap_or(1);
                (Some(p.to_owned()), n)
            }
            _ if progress.is_empty() => (None, 0),
            _ => (Some(progress.clone()), 1),
        };
        let evidence = self.text(cells, Field::Evidence);
        Ok(PlannedRow {
            row,
            inspection_id: inspection_id.clone(),
            finding: FindingImported {
                finding_id,
                community_id,
                category,
                title,
                description,
                found_on,
                file: self.from(row),
            },
            rectification: RectificationImported {
                inspection_id,
                status,
                title: String::new(),
                measure,
                responsible_unit: self.text(cells, Field::ResponsibleUnit),
                leader: self.text(cells, Field::Leader),
                person: self.text(cells, Field::Person),
                assigned_on,
                deadline,
                original_deadline: original_deadline.filter(|o| Some(*o) != deadline),
                latest_progress,
                progress_count,
                evidence_names: evidence
                    .split(['、', '\n'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                verified_on,
                file: self.from(row),
            },
        })
    }

    fn inspection_of(&self, planned: &PlannedRow, cells: &[Cell]) -> InspectionImported {
        let f = &planned.finding;
        let r = &planned.rectification;
        let (title, year) = self.source(cells, &[f.found_on, r.assigned_on, r.deadline, r.verified_on]);
        InspectionImported {
            inspection_id: planned.inspection_id.clone(),
            year,
            title,
            file: ImportedFrom { row: 0, ..self.from(0) },
        }
    }
}

/// `标题。描述……` → (`标题`, `描述……`); without a full stop the whole text is the title.
fn split_first_sentence(text: &str) -> (String, String) {
    match text.split_once('。') {
        Some((t, rest)) if !t.trim().is_empty() => (t.trim().to_owned(), rest.trim().to_owned()),
        _ => (text.trim().trim_end_matches('。').to_owned(), String::new()),
    }
}

/// `imp-` and 20 hex digits of the SHA-256 of the parts (an id the same content always gets).
fn derived_id(kind: &str, parts: &[&str]) -> Option<String> {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    for p in parts {
        h.update([0x1f]);
        h.update(p.as_bytes());
    }
    let hex: String = h.finalize().iter().take(10).map(|b| format!("{b:02x}")).collect();
    Some(format!("imp-{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::inspection::fixtures;

    struct Nothing;
    impl Existing for Nothing {
        fn has_inspection(&self, _: &InspectionId) -> bool {
            false
        }
        fn has_finding(&self, _: &FindingId) -> bool {
            false
        }
    }

    fn t(s: &str) -> Cell {
        if s.is_empty() { Cell::Empty } else { Cell::Text(s.to_owned()) }
    }
    fn file() -> ImportFile {
        ImportFile { sha256: "ab".repeat(32), name: "台账.xlsx".into() }
    }
    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 6, 1).unwrap()
    }
    fn sheet(rows: &[[&str; 15]]) -> Vec<SheetInput> {
        let mut all = vec![
            vec![t("XX街道整改台账（截至2024年6月1日）")],
            crate::projection::LEDGER_COLUMNS.iter().chain(&["预警"]).map(|h| t(h)).collect(),
        ];
        all.extend(rows.iter().map(|r| r.iter().map(|c| t(c)).collect()));
        vec![SheetInput { name: "整改台账".into(), rows: all }]
    }
    const ROW: [&str; 15] = [
        "1",
        "对下级社区督查2023年度意识形态工作情况",
        "东风社区",
        "理论学习",
        "理论学习走过场。督查发现有些社区学习流于形式。",
        "狠抓理论学习。每月集中学习一次。",
        "李书记",
        "东风社区党委",
        "王主任",
        "2024-04-30（原2024-03-31，已延期）",
        "已开展集中学习（共2次报告）",
        "整改中",
        "学习记录.pdf、签到表.jpg",
        "",
        "红",
    ];

    #[test]
    fn duchas_own_layout_is_recognised_with_its_dates_and_status() {
        let tenant = fixtures::tenant();
        let p = plan(&tenant, &Nothing, &file(), &sheet(&[ROW]), None, today());
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!((p.sheet.as_str(), p.header_row, p.rows_read), ("整改台账", 2, 1));
        assert_eq!(p.inspections.len(), 1);
        assert_eq!(p.inspections[0].year, 2023);
        assert_eq!(p.inspections[0].title, "对下级社区督查2023年度意识形态工作情况");
        let r = &p.rows[0];
        assert_eq!(r.row, 3);
        assert_eq!(r.finding.title, "理论学习走过场");
        assert_eq!(r.finding.description, "督查发现有些社区学习流于形式。");
        assert_eq!(r.finding.community_id.as_ref().map(|c| c.as_str()), Some("dongfeng"));
        assert_eq!(r.finding.category, "theory");
        let x = &r.rectification;
        assert_eq!(x.status, RectificationStatus::InProgress);
        assert_eq!(x.deadline, NaiveDate::from_ymd_opt(2024, 4, 30));
        assert_eq!(x.original_deadline, NaiveDate::from_ymd_opt(2024, 3, 31));
        assert_eq!((x.latest_progress.as_deref(), x.progress_count), (Some("已开展集中学习"), 2));
        assert_eq!(x.evidence_names, ["学习记录.pdf", "签到表.jpg"]);
        assert_eq!(x.measure, "狠抓理论学习。每月集中学习一次。");
        assert_eq!(x.file.row, 3);
        assert_eq!(x.file.file_sha256, "ab".repeat(32));
        // Ids come from the content: the same rows plan the same ids.
        let again = plan(&tenant, &Nothing, &file(), &sheet(&[ROW]), None, today());
        assert_eq!(again.rows[0].finding.finding_id, r.finding.finding_id);
        // Events round-trip through the codec.
        let e: Event = x.clone().into();
        assert_eq!(Event::decode(e.event_type(), e.schema_version(), &e.payload_json()).unwrap(), e);
    }

    #[test]
    fn every_problem_is_named_with_row_and_column_and_nothing_is_planned() {
        let tenant = fixtures::tenant();
        let mut unknown = ROW;
        unknown[2] = "不存在社区";
        unknown[3] = "不存在类别";
        let mut no_deadline = ROW;
        no_deadline[9] = "";
        let mut bad_date = ROW;
        bad_date[9] = "下个月";
        let mut bad_status = ROW;
        bad_status[11] = "差不多了";
        let mut verified_no_date = ROW;
        verified_no_date[11] = "已销号";
        let mut date_not_verified = ROW;
        date_not_verified[13] = "2024-05-01";
        let p = plan(
            &tenant,
            &Nothing,
            &file(),
            &sheet(&[ROW, unknown, no_deadline, bad_date, bad_status, verified_no_date, date_not_verified, ROW]),
            None,
            today(),
        );
        assert!(p.rows.is_empty() && p.inspections.is_empty(), "nothing planned when anything is wrong");
        let at = |row: u32, col: &str| {
            p.problems.iter().find(|x| x.row == row && x.column.as_deref() == Some(col)).map(|x| x.message.clone())
        };
        assert!(at(4, "C").is_some_and(|m| m.contains("不存在社区")), "{:?}", p.problems);
        assert!(at(4, "D").is_some_and(|m| m.contains("不存在类别")));
        assert!(at(5, "J").is_some_and(|m| m.contains("整改时限")));
        assert!(at(6, "J").is_some_and(|m| m.contains("不是日期")));
        assert!(at(7, "L").is_some_and(|m| m.contains("无法识别")));
        assert!(at(8, "N").is_some_and(|m| m.contains("销号日期")));
        assert!(at(9, "N").is_some_and(|m| m.contains("却填写了销号日期")));
        assert!(p.problems.iter().any(|x| x.row == 10 && x.message.contains("与第3行")), "duplicate row");
        assert!(p.problems.iter().all(|x| x.sheet == "整改台账"));
    }

    #[test]
    fn other_layouts_need_a_mapping_by_heading_or_letter() {
        let tenant = fixtures::tenant();
        let rows = vec![
            vec![t("问题描述"), t("所在社区"), t("分类"), t("期限"), t("发现于")],
            vec![
                t("阵地管理不规范。宣传栏内容陈旧。"),
                t("东风社区"),
                t("理论学习"),
                Cell::Number(45_444.0),
                Cell::Date(NaiveDate::from_ymd_opt(2024, 3, 5).unwrap()),
            ],
        ];
        let sheets = vec![SheetInput { name: "Sheet1".into(), rows }];
        let p = plan(&tenant, &Nothing, &file(), &sheets, None, today());
        assert_eq!(p.problems.len(), 1);
        assert!(p.problems[0].message.contains("找不到表头"));
        assert_eq!(p.headings, ["问题描述", "所在社区", "分类", "期限", "发现于"]);
        let mapping: Mapping = [
            (Field::Problem, "问题描述".to_owned()),
            (Field::Community, "B".to_owned()),
            (Field::Category, "分类".to_owned()),
            (Field::Deadline, "期限".to_owned()),
            (Field::FoundOn, "E".to_owned()),
        ]
        .into();
        let p = plan(&tenant, &Nothing, &file(), &sheets, Some(&mapping), today());
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        let r = &p.rows[0];
        assert_eq!(r.rectification.deadline, NaiveDate::from_ymd_opt(2024, 6, 1), "Excel serial 45444");
        assert_eq!(r.rectification.status, RectificationStatus::Assigned, "inferred: a deadline, no progress");
        assert_eq!(r.finding.found_on, NaiveDate::from_ymd_opt(2024, 3, 5));
        assert_eq!(p.inspections[0].title, "导入的整改台账（台账.xlsx）");
        assert_eq!(r.rectification.measure, "");
        // A mapping naming a heading the file does not have.
        let bad: Mapping =
            [(Field::Problem, "问题描述".to_owned()), (Field::Community, "没有这一列".to_owned())].into();
        let p = plan(&tenant, &Nothing, &file(), &sheets, Some(&bad), today());
        assert!(!p.problems.is_empty());
    }

    #[test]
    fn rows_the_tenant_has_are_counted_not_planned() {
        struct All;
        impl Existing for All {
            fn has_inspection(&self, _: &InspectionId) -> bool {
                true
            }
            fn has_finding(&self, _: &FindingId) -> bool {
                true
            }
        }
        let p = plan(&fixtures::tenant(), &All, &file(), &sheet(&[ROW]), None, today());
        assert_eq!((p.rows.len(), p.inspections.len(), p.already_imported), (0, 0, 1));
        assert!(p.problems.is_empty());
    }

    #[test]
    fn dates_in_the_forms_ledgers_use() {
        for s in ["2024-04-30", "2024/4/30", "2024.4.30", "2024年4月30日"] {
            assert_eq!(parse_date(&t(s)), Ok(NaiveDate::from_ymd_opt(2024, 4, 30)), "{s}");
        }
        for s in ["2024-13-01", "下周", "30/4/2024", "2024-4"] {
            assert!(parse_date(&t(s)).is_err(), "{s}");
        }
        assert_eq!(parse_date(&Cell::Empty), Ok(None));
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(27), "AB");
        assert_eq!(column_index("AB"), Some(27));
        assert_eq!(column_index("问题"), None);
        assert_eq!(parse_status("已销号"), Some(RectificationStatus::Verified));
        assert_eq!(parse_status("正在整改"), Some(RectificationStatus::InProgress));
        assert_eq!(parse_status("?"), None);
    }
}
