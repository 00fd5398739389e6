//! Shared workbook helpers: the formats of the title row, the header and the body cells, fixed
//! document properties (a fixed creation date, so the same data gives the same bytes), and cell text
//! within Excel's limits.

use super::DocumentError;
use rust_xlsxwriter::{Color, DocProperties, ExcelDateTime, Format, FormatAlign, FormatBorder, Workbook, XlsxError};

pub const FONT: &str = "宋体";
pub const TITLE_FONT: &str = "黑体";

impl From<XlsxError> for DocumentError {
    fn from(e: XlsxError) -> Self {
        DocumentError::Render(format!("xlsx: {e}"))
    }
}

pub struct Formats {
    pub title: Format,
    pub header: Format,
    pub cell: Format,
    pub center: Format,
    pub number: Format,
    pub percent: Format,
}

impl Formats {
    pub fn new() -> Self {
        let body = Format::new()
            .set_font_name(FONT)
            .set_font_size(11)
            .set_border(FormatBorder::Thin)
            .set_text_wrap()
            .set_align(FormatAlign::VerticalCenter);
        Formats {
            title: Format::new()
                .set_font_name(TITLE_FONT)
                .set_font_size(16)
                .set_align(FormatAlign::Center)
                .set_align(FormatAlign::VerticalCenter),
            header: Format::new()
                .set_font_name(TITLE_FONT)
                .set_font_size(11)
                .set_border(FormatBorder::Thin)
                .set_text_wrap()
                .set_align(FormatAlign::Center)
                .set_align(FormatAlign::VerticalCenter)
                .set_background_color(Color::RGB(0xD9D9D9)),
            center: body.clone().set_align(FormatAlign::Center),
            number: body.clone().set_align(FormatAlign::Center).set_num_format("0"),
            percent: body.clone().set_align(FormatAlign::Center).set_num_format("0.0"),
            cell: body,
        }
    }
}

/// The workbook's properties with a fixed creation date (the "as of" date of the data).
pub fn properties(workbook: &mut Workbook, title: &str, date: chrono::NaiveDate) -> Result<(), DocumentError> {
    use chrono::Datelike;
    let created = ExcelDateTime::from_ymd(
        u16::try_from(date.year()).unwrap_or(2000),
        u8::try_from(date.month()).unwrap_or(1),
        u8::try_from(date.day()).unwrap_or(1),
    )?;
    let props = DocProperties::new().set_title(title).set_author("Ducha 督查").set_creation_datetime(&created);
    workbook.set_properties(&props);
    Ok(())
}

/// Excel keeps at most 32,767 characters in a cell; longer text is cut with an ellipsis.
pub fn cell_text(s: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 32_000;
    if s.len() <= MAX {
        // Byte length bounds the character count.
        return std::borrow::Cow::Borrowed(s);
    }
    if s.chars().count() <= MAX {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut cut: String = s.chars().take(MAX - 1).collect();
    cut.push('…');
    std::borrow::Cow::Owned(cut)
}
