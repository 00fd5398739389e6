//! The one document model every generated document is built into, and that the DOCX, HTML and plain
//! text renderers read. A builder decides the content and the numbering; a renderer decides only how
//! it looks, so the three outputs of a report can never say different things.

/// How a run of text is set (GB/T 9704-2012 practice; the DOCX renderer maps these to fonts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Body text: 3号仿宋_GB2312.
    Body,
    /// First-level heading (一、): 3号黑体.
    Heading1,
    /// Second-level heading (（一）): 3号楷体_GB2312.
    Heading2,
    /// Third-level heading (1.): 3号仿宋_GB2312, bold.
    Heading3,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub text: String,
    pub style: Style,
}

impl Run {
    pub fn new(text: impl Into<String>, style: Style) -> Self {
        Run { text: text.into(), style }
    }
}

/// A table (the circular's rankings): a header row and body rows of plain text cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Relative column widths (any unit); as many as header cells.
    pub widths: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// A paragraph indented two characters on its first line; its runs may differ in style (a
    /// `（一）heading。` run followed by body text).
    Paragraph(Vec<Run>),
    /// A table.
    Table(Table),
}

impl Block {
    /// A paragraph of one run.
    pub fn text(text: impl Into<String>, style: Style) -> Self {
        Block::Paragraph(vec![Run::new(text, style)])
    }
}

/// 发文机关署名 and 成文日期, set right at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub issuer: String,
    /// e.g. 2023年12月1日.
    pub date: String,
}

/// A whole document: title, blocks, optional signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// 标题 (2号方正小标宋简体, centred).
    pub title: String,
    pub blocks: Vec<Block>,
    pub signature: Option<Signature>,
}

pub use ducha_events::numbering::{chinese_number, heading_number};

/// A date as 成文日期 writes it: `2023年12月1日` (GB/T 9704-2012 uses Arabic numerals).
pub fn date_zh(d: chrono::NaiveDate) -> String {
    use chrono::Datelike;
    format!("{}年{}月{}日", d.year(), d.month(), d.day())
}

/// Ends a heading with `。` unless it already ends with punctuation.
pub fn with_full_stop(s: &str) -> String {
    let s = s.trim();
    match s.chars().last() {
        Some('。' | '！' | '？' | '；' | '：' | '.' | '!' | '?') | None => s.to_owned(),
        _ => format!("{s}。"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_stops_and_dates() {
        assert_eq!(with_full_stop("对督查工作不够重视"), "对督查工作不够重视。");
        assert_eq!(with_full_stop("已有句号。"), "已有句号。");
        assert_eq!(date_zh(chrono::NaiveDate::from_ymd_opt(2023, 12, 1).unwrap()), "2023年12月1日");
    }
}
