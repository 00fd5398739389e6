//! The 整改台账 workbook: one row per finding of a tenant, the columns of the ledger screen
//! ([`LEDGER_COLUMNS`]) plus 预警 with its colour; a title row with the tenant and the date, a frozen
//! header with filters, widths that fit Chinese text. Filtered like the screen ([`LedgerFilter`]).

use super::DocumentError;
use super::sheet::{Formats, cell_text, properties};
use chrono::NaiveDate;
use ducha_events::ids::TenantId;
use ducha_events::projection::{
    LEDGER_COLUMNS, LedgerFilter, LedgerRow, LedgerSort, Page, ReadModel, WarningLevel, WarningPolicy,
};
use rust_xlsxwriter::{Color, Format, FormatPattern, Workbook};

/// The workbook's columns: the ledger's fourteen, 预警, and the two dates a re-import needs to give
/// the same warnings (发现日期, 交办日期; see `ducha import-ledger`).
pub const COLUMNS: [&str; 17] = {
    let mut all = [""; 17];
    let mut n = 0;
    while n < LEDGER_COLUMNS.len() {
        all[n] = LEDGER_COLUMNS[n];
        n += 1;
    }
    all[14] = "预警";
    all[15] = "发现日期";
    all[16] = "交办日期";
    all
};

/// Column widths in Excel's units (a Chinese character is about two).
const WIDTHS: [f64; 17] =
    [6.0, 24.0, 10.0, 10.0, 48.0, 48.0, 10.0, 14.0, 10.0, 14.0, 36.0, 10.0, 24.0, 12.0, 7.0, 12.0, 12.0];

/// The column of 预警.
const WARNING_COL: u16 = 14;

/// The fill of a warning level (红黄蓝绿灯).
pub fn warning_color(level: WarningLevel) -> u32 {
    match level {
        WarningLevel::Red => 0xFF0000,
        WarningLevel::Yellow => 0xFFFF00,
        WarningLevel::Blue => 0x00B0F0,
        WarningLevel::Green => 0x00B050,
    }
}

/// The ledger of `tenant` on `today` as XLSX bytes; `None` when the tenant does not exist.
/// Whether the ledger's rows (as `xlsx` would write them) show erased personal data.
pub fn shows_erased(
    model: &ReadModel,
    tenant: &TenantId,
    today: NaiveDate,
    policy: &WarningPolicy,
    filter: &LedgerFilter,
) -> bool {
    let page = model.ledger(tenant, today, policy, filter, LedgerSort::Recorded, Page::all());
    page.rows.iter().any(|r| cells(r).iter().any(|c| c.contains(ducha_events::personal::ERASED)))
}

pub fn xlsx(
    model: &ReadModel,
    tenant: &TenantId,
    today: NaiveDate,
    policy: &WarningPolicy,
    filter: &LedgerFilter,
) -> Result<Option<Vec<u8>>, DocumentError> {
    let Some(entry) = model.directory().tenant(tenant) else { return Ok(None) };
    let page = model.ledger(tenant, today, policy, filter, LedgerSort::Recorded, Page::all());
    let title =
        format!("{}整改台账（截至{}）{}", entry.name, super::model::date_zh(today), describe(model, tenant, filter));

    let mut workbook = Workbook::new();
    properties(&mut workbook, &title, today)?;
    let f = Formats::new();
    let warn: Vec<(WarningLevel, Format)> =
        [WarningLevel::Red, WarningLevel::Yellow, WarningLevel::Blue, WarningLevel::Green]
            .into_iter()
            .map(|w| {
                (
                    w,
                    f.center
                        .clone()
                        .set_pattern(FormatPattern::Solid)
                        .set_background_color(Color::RGB(warning_color(w))),
                )
            })
            .collect();
    let sheet = workbook.add_worksheet();
    sheet.set_name("整改台账")?;
    sheet.set_landscape().set_paper_size(9).set_repeat_rows(0, 1)?;
    let last_col = (COLUMNS.len() - 1) as u16;
    sheet.merge_range(0, 0, 0, last_col, &title, &f.title)?;
    sheet.set_row_height(0, 32)?;
    for (c, (name, width)) in COLUMNS.iter().zip(WIDTHS).enumerate() {
        sheet.write_string_with_format(1, c as u16, *name, &f.header)?;
        sheet.set_column_width(c as u16, width)?;
    }
    for (n, r) in page.rows.iter().enumerate() {
        let row = 2 + n as u32;
        sheet.write_number_with_format(row, 0, r.seq as f64, &f.number)?;
        for (c, text) in cells(r).iter().enumerate() {
            let format = if matches!(c, 1 | 2 | 5 | 6 | 7 | 9 | 11 | 12) { &f.center } else { &f.cell };
            sheet.write_string_with_format(row, 1 + c as u16, cell_text(text), format)?;
        }
        match r.warning.and_then(|w| warn.iter().find(|(l, _)| *l == w)) {
            Some((_, format)) => sheet.write_string_with_format(row, WARNING_COL, &r.warning_name, format)?,
            None => sheet.write_string_with_format(row, WARNING_COL, "", &f.center)?,
        };
        let date = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
        sheet.write_string_with_format(row, WARNING_COL + 1, date(r.found_on), &f.center)?;
        sheet.write_string_with_format(row, WARNING_COL + 2, date(r.assigned_on), &f.center)?;
    }
    let last_row = 1 + page.rows.len() as u32;
    sheet.set_freeze_panes(2, 0)?;
    sheet.autofilter(1, 0, last_row, last_col)?;
    Ok(Some(workbook.save_to_buffer()?))
}

/// Columns 来源 … 销号日期 of one row (序号 and 预警 are written apart).
fn cells(r: &LedgerRow) -> [String; 13] {
    let date = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    let source = match r.source.year {
        Some(y) if !r.source.title.starts_with(&y.to_string()) && !r.source.title.contains(&format!("{y}年")) => {
            format!("{y}年 {}", r.source.title)
        }
        _ => r.source.title.clone(),
    };
    let measure = match (&r.rectification_title, &r.measure) {
        (Some(t), Some(m)) => format!("{}{}", super::model::with_full_stop(t), m),
        (None, Some(m)) => m.clone(),
        _ => String::new(),
    };
    let deadline = match (r.deadline, r.original_deadline) {
        (Some(d), Some(o)) if o != d => format!("{d}（原{o}，已延期）"),
        (d, _) => date(d),
    };
    let progress = match (&r.latest_progress, r.progress_count) {
        (Some(p), n) if n > 1 => format!("{p}（共{n}次报告）"),
        (Some(p), _) => p.clone(),
        (None, _) => String::new(),
    };
    [
        source,
        r.community.name.clone(),
        r.category_name.clone(),
        format!("{}{}", super::model::with_full_stop(&r.title), r.description),
        measure,
        r.leader.clone().unwrap_or_default(),
        r.responsible_unit.clone().unwrap_or_default(),
        r.person.clone().unwrap_or_default(),
        deadline,
        progress,
        r.status_name.clone(),
        r.evidence.iter().map(|e| e.filename.as_str()).collect::<Vec<_>>().join("、"),
        date(r.verified_on),
    ]
}

/// The active filters in words, for the title row (empty without filters).
fn describe(model: &ReadModel, tenant: &TenantId, filter: &LedgerFilter) -> String {
    let entry = model.directory().tenant(tenant);
    let mut parts = Vec::new();
    if let Some(c) = &filter.community {
        parts.push(format!("社区：{}", entry.and_then(|t| t.community_name(c)).unwrap_or(c.as_str())));
    }
    if let Some(c) = &filter.category {
        parts.push(format!("问题类别：{}", entry.map_or(c.as_str(), |t| t.category_name(c))));
    }
    if let Some(s) = filter.status {
        parts.push(format!("完成情况：{}", s.name_zh()));
    }
    if let Some(w) = filter.warning {
        parts.push(format!("预警：{}", w.name_zh()));
    }
    if let Some(i) = &filter.inspection {
        parts.push(format!("督查：{i}"));
    }
    if let Some(y) = filter.year {
        parts.push(format!("年度：{y}"));
    }
    if parts.is_empty() { String::new() } else { format!("（{}）", parts.join("，")) }
}
