//! The security audit log as an Excel workbook (the audit administrator's export): one row per
//! record, newest first, with every field of the record and its chain hash.

use super::DocumentError;
use super::sheet::{Formats, cell_text, properties};
use crate::security_log::AuditRecord;
use rust_xlsxwriter::Workbook;

const HEADERS: [(&str, f64); 12] = [
    ("序号", 10.0),
    ("时间（UTC）", 24.0),
    ("操作", 20.0),
    ("结果", 9.0),
    ("用户", 16.0),
    ("用户ID", 16.0),
    ("角色", 14.0),
    ("客户端地址", 16.0),
    ("对象", 30.0),
    ("说明", 36.0),
    ("请求ID", 38.0),
    ("哈希", 66.0),
];

/// The workbook: a title row naming the filter, a header row, the records.
pub fn xlsx(records: &[AuditRecord], title: &str, today: chrono::NaiveDate) -> Result<Vec<u8>, DocumentError> {
    let f = Formats::new();
    let mut workbook = Workbook::new();
    properties(&mut workbook, title, today)?;
    let sheet = workbook.add_worksheet();
    sheet.set_name("安全审计日志")?;
    let last_col = u16::try_from(HEADERS.len() - 1).unwrap_or(0);
    sheet.merge_range(0, 0, 0, last_col, &cell_text(title), &f.title)?;
    sheet.set_row_height(0, 28)?;
    for (col, (name, width)) in HEADERS.iter().enumerate() {
        let col = u16::try_from(col).unwrap_or(0);
        sheet.write_string_with_format(1, col, *name, &f.header)?;
        sheet.set_column_width(col, *width)?;
    }
    for (i, r) in records.iter().enumerate() {
        let row = u32::try_from(i + 2).map_err(|_| DocumentError::Render("too many rows".into()))?;
        let result = match r.result.as_str() {
            "success" => "成功",
            "failure" => "失败",
            "refused" => "拒绝",
            other => other,
        };
        sheet.write_number_with_format(row, 0, r.position as f64, &f.number)?;
        let texts = [
            r.at.as_str(),
            r.action.as_str(),
            result,
            r.username.as_deref().unwrap_or(""),
            r.user_id.as_ref().map_or("", |u| u.as_str()),
            r.role_name.as_deref().unwrap_or(""),
            r.client_addr.as_str(),
            r.object.as_str(),
            r.detail.as_str(),
            r.request_id.as_str(),
            r.hash.as_str(),
        ];
        for (col, text) in texts.iter().enumerate() {
            let col = u16::try_from(col + 1).unwrap_or(0);
            sheet.write_string_with_format(row, col, &*cell_text(text), &f.cell)?;
        }
    }
    sheet.set_freeze_panes(2, 0)?;
    Ok(workbook.save_to_buffer()?)
}
