//! The DOCX renderer: a [`Document`] in the official format of GB/T 9704-2012 practice.
//!
//! The few OOXML parts are written by hand rather than through a DOCX crate, for two reasons: the
//! official format needs different odd and even footers (page numbers right on odd pages, left on
//! even), and an issued report must be reproducible byte for byte from the log. So every part is a
//! pure function of the document, the parts go into the zip in a fixed order, with a fixed time
//! (1980-01-01) and stored uncompressed — the bytes then depend on nothing but this file, not on a
//! compressor's version.
//!
//! The page: A4; margins top 37 mm, left (binding side) 28 mm, text block 156 × 225 mm; title 2号
//! (22 pt) 方正小标宋简体, body 3号 (16 pt) 仿宋_GB2312, first-level headings 黑体, second-level
//! 楷体_GB2312; a fixed line pitch of 28.95 pt (22 lines a page); page numbers 4号 (14 pt) 宋体 as
//! `— 1 —`. Every run names its East Asian font (`w:eastAsia`) and Times New Roman for Latin text,
//! and the font table gives each Chinese font a common alternative (`w:altName`), so Word and WPS
//! both render it on machines without the GB2312 fonts.

use super::DocumentError;
use super::model::{Block, Document, Run, Style, Table};
use std::fmt::Write as _;
use std::io::Write as _;

/// Twentieths of a point per millimetre.
const fn mm(v: u32) -> u32 {
    // 1 mm = 1440 / 25.4 twips; rounded.
    (v * 14400 + 127) / 254
}

pub const PAGE_WIDTH: u32 = 11906; // 210 mm
pub const PAGE_HEIGHT: u32 = 16838; // 297 mm
pub const MARGIN_TOP: u32 = mm(37);
pub const MARGIN_LEFT: u32 = mm(28);
/// 210 − 28 − 156.
pub const MARGIN_RIGHT: u32 = mm(26);
/// 297 − 37 − 225.
pub const MARGIN_BOTTOM: u32 = mm(35);
pub const TEXT_WIDTH: u32 = PAGE_WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
/// 28.95 pt in twentieths of a point: 22 lines in 225 mm.
pub const LINE_PITCH: u32 = 579;
/// Half-points.
const TITLE_SIZE: u32 = 44;
const BODY_SIZE: u32 = 32;
const TABLE_SIZE: u32 = 24;
const PAGE_NUMBER_SIZE: u32 = 28;
/// One character of body text (16 pt) in twips.
const CHAR: u32 = 320;

pub const FONT_TITLE: &str = "方正小标宋简体";
pub const FONT_BODY: &str = "仿宋_GB2312";
pub const FONT_HEADING1: &str = "黑体";
pub const FONT_HEADING2: &str = "楷体_GB2312";
pub const FONT_PAGE_NUMBER: &str = "宋体";
pub const FONT_LATIN: &str = "Times New Roman";

const W_NS: &str = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";
const R_NS: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n";

/// Writes the document as DOCX bytes.
pub fn render(doc: &Document) -> Result<Vec<u8>, DocumentError> {
    let parts: [(&str, String); 11] = [
        ("[Content_Types].xml", content_types()),
        ("_rels/.rels", root_rels()),
        ("docProps/core.xml", core_props(&doc.title)),
        ("docProps/app.xml", app_props()),
        ("word/_rels/document.xml.rels", document_rels()),
        ("word/document.xml", document_xml(doc)),
        ("word/styles.xml", styles()),
        ("word/settings.xml", settings()),
        ("word/fontTable.xml", font_table()),
        ("word/footer1.xml", footer(Side::Odd)),
        ("word/footer2.xml", footer(Side::Even)),
    ];
    let zip_err = |e: zip::result::ZipError| DocumentError::Render(format!("zip: {e}"));
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::with_capacity(64 * 1024)));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::DEFAULT)
        .unix_permissions(0o644);
    for (name, xml) in &parts {
        zip.start_file(*name, options).map_err(zip_err)?;
        zip.write_all(xml.as_bytes()).map_err(|e| DocumentError::Render(e.to_string()))?;
    }
    Ok(zip.finish().map_err(zip_err)?.into_inner())
}

/// Escapes text for XML and drops the characters XML 1.0 cannot carry (control characters other
/// than tab and newline, unpaired surrogates cannot occur in Rust strings, U+FFFE and U+FFFF).
pub fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape(&mut out, s);
    out
}

fn content_types() -> String {
    let mut s = String::from(XML_DECL);
    s.push_str(
        "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
<Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
<Default Extension=\"xml\" ContentType=\"application/xml\"/>\
<Override PartName=\"/word/document.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/>\
<Override PartName=\"/word/styles.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml\"/>\
<Override PartName=\"/word/settings.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.settings+xml\"/>\
<Override PartName=\"/word/fontTable.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.fontTable+xml\"/>\
<Override PartName=\"/word/footer1.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.footer+xml\"/>\
<Override PartName=\"/word/footer2.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.footer+xml\"/>\
<Override PartName=\"/docProps/core.xml\" ContentType=\"application/vnd.openxmlformats-package.core-properties+xml\"/>\
<Override PartName=\"/docProps/app.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.extended-properties+xml\"/>\
</Types>",
    );
    s
}

fn root_rels() -> String {
    let mut s = String::from(XML_DECL);
    s.push_str(
        "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
<Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"word/document.xml\"/>\
<Relationship Id=\"rId2\" Type=\"http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties\" Target=\"docProps/core.xml\"/>\
<Relationship Id=\"rId3\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties\" Target=\"docProps/app.xml\"/>\
</Relationships>",
    );
    s
}

/// No dates: the document's bytes must not depend on when it was generated.
fn core_props(title: &str) -> String {
    format!(
        "{XML_DECL}<cp:coreProperties xmlns:cp=\"http://schemas.openxmlformats.org/package/2006/metadata/core-properties\" \
xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:dcterms=\"http://purl.org/dc/terms/\" \
xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><dc:title>{}</dc:title><dc:creator>Ducha 督查</dc:creator>\
</cp:coreProperties>",
        esc(title)
    )
}

fn app_props() -> String {
    format!(
        "{XML_DECL}<Properties xmlns=\"http://schemas.openxmlformats.org/officeDocument/2006/extended-properties\">\
<Application>Ducha</Application></Properties>"
    )
}

fn document_rels() -> String {
    let t = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    format!(
        "{XML_DECL}<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
<Relationship Id=\"rId1\" Type=\"{t}/styles\" Target=\"styles.xml\"/>\
<Relationship Id=\"rId2\" Type=\"{t}/settings\" Target=\"settings.xml\"/>\
<Relationship Id=\"rId3\" Type=\"{t}/fontTable\" Target=\"fontTable.xml\"/>\
<Relationship Id=\"rId4\" Type=\"{t}/footer\" Target=\"footer1.xml\"/>\
<Relationship Id=\"rId5\" Type=\"{t}/footer\" Target=\"footer2.xml\"/>\
</Relationships>"
    )
}

/// `w:rFonts` with the East Asian font and the Latin fallback.
fn fonts(east_asia: &str) -> String {
    format!(
        "<w:rFonts w:ascii=\"{FONT_LATIN}\" w:hAnsi=\"{FONT_LATIN}\" w:eastAsia=\"{east_asia}\" w:cs=\"{FONT_LATIN}\" w:hint=\"eastAsia\"/>"
    )
}

fn run_props(east_asia: &str, size: u32, bold: bool) -> String {
    format!(
        "<w:rPr>{}{}<w:sz w:val=\"{size}\"/><w:szCs w:val=\"{size}\"/><w:lang w:val=\"en-US\" w:eastAsia=\"zh-CN\"/></w:rPr>",
        fonts(east_asia),
        if bold { "<w:b/><w:bCs/>" } else { "" }
    )
}

fn styles() -> String {
    format!(
        "{XML_DECL}<w:styles xmlns:w=\"{W_NS}\"><w:docDefaults><w:rPrDefault>{}</w:rPrDefault>\
<w:pPrDefault><w:pPr><w:spacing w:line=\"{LINE_PITCH}\" w:lineRule=\"exact\"/><w:jc w:val=\"both\"/></w:pPr></w:pPrDefault>\
</w:docDefaults><w:style w:type=\"paragraph\" w:default=\"1\" w:styleId=\"Normal\"><w:name w:val=\"Normal\"/><w:qFormat/></w:style>\
<w:style w:type=\"character\" w:default=\"1\" w:styleId=\"DefaultParagraphFont\"><w:name w:val=\"Default Paragraph Font\"/><w:uiPriority w:val=\"1\"/><w:semiHidden/></w:style>\
<w:style w:type=\"table\" w:default=\"1\" w:styleId=\"TableNormal\"><w:name w:val=\"Normal Table\"/><w:semiHidden/>\
<w:tblPr><w:tblInd w:w=\"0\" w:type=\"dxa\"/><w:tblCellMar><w:top w:w=\"0\" w:type=\"dxa\"/><w:left w:w=\"108\" w:type=\"dxa\"/>\
<w:bottom w:w=\"0\" w:type=\"dxa\"/><w:right w:w=\"108\" w:type=\"dxa\"/></w:tblCellMar></w:tblPr></w:style>\
<w:style w:type=\"paragraph\" w:styleId=\"Footer\"><w:name w:val=\"footer\"/><w:basedOn w:val=\"Normal\"/>\
<w:pPr><w:spacing w:line=\"240\" w:lineRule=\"auto\"/></w:pPr></w:style></w:styles>",
        run_props(FONT_BODY, BODY_SIZE, false)
    )
}

/// Different odd and even footers; East Asian punctuation compressed as Chinese documents are set.
fn settings() -> String {
    format!(
        "{XML_DECL}<w:settings xmlns:w=\"{W_NS}\"><w:defaultTabStop w:val=\"420\"/><w:evenAndOddHeaders/>\
<w:characterSpacingControl w:val=\"compressPunctuation\"/><w:compat>\
<w:compatSetting w:name=\"compatibilityMode\" w:uri=\"http://schemas.microsoft.com/office/word\" w:val=\"15\"/>\
</w:compat></w:settings>"
    )
}

/// The Chinese fonts with the alternatives Word and WPS substitute when a GB2312 font is missing.
fn font_table() -> String {
    let mut s = format!("{XML_DECL}<w:fonts xmlns:w=\"{W_NS}\">");
    for (name, alt, pitch) in [
        (FONT_BODY, "仿宋", "fixed"),
        (FONT_HEADING2, "楷体", "fixed"),
        (FONT_HEADING1, "SimHei", "fixed"),
        (FONT_TITLE, "宋体", "variable"),
        (FONT_PAGE_NUMBER, "SimSun", "fixed"),
    ] {
        let _ = write!(
            s,
            "<w:font w:name=\"{name}\"><w:altName w:val=\"{alt}\"/><w:charset w:val=\"86\"/><w:family w:val=\"modern\"/><w:pitch w:val=\"{pitch}\"/></w:font>"
        );
    }
    let _ = write!(
        s,
        "<w:font w:name=\"{FONT_LATIN}\"><w:charset w:val=\"00\"/><w:family w:val=\"roman\"/><w:pitch w:val=\"variable\"/></w:font></w:fonts>"
    );
    s
}

#[derive(Clone, Copy)]
enum Side {
    Odd,
    Even,
}

/// `— N —` in 4号宋体, right and one character in on odd pages, left and one character in on even.
fn footer(side: Side) -> String {
    let (jc, ind) = match side {
        Side::Odd => ("right", "w:right=\"280\""),
        Side::Even => ("left", "w:left=\"280\""),
    };
    let rpr = run_props(FONT_PAGE_NUMBER, PAGE_NUMBER_SIZE, false);
    format!(
        "{XML_DECL}<w:ftr xmlns:w=\"{W_NS}\" xmlns:r=\"{R_NS}\"><w:p><w:pPr><w:pStyle w:val=\"Footer\"/><w:ind {ind}/><w:jc w:val=\"{jc}\"/></w:pPr>\
<w:r>{rpr}<w:t xml:space=\"preserve\">— </w:t></w:r>\
<w:r>{rpr}<w:fldChar w:fldCharType=\"begin\"/></w:r>\
<w:r>{rpr}<w:instrText xml:space=\"preserve\"> PAGE </w:instrText></w:r>\
<w:r>{rpr}<w:fldChar w:fldCharType=\"separate\"/></w:r>\
<w:r>{rpr}<w:t>1</w:t></w:r>\
<w:r>{rpr}<w:fldChar w:fldCharType=\"end\"/></w:r>\
<w:r>{rpr}<w:t xml:space=\"preserve\"> —</w:t></w:r></w:p></w:ftr>"
    )
}

fn style_font(style: Style) -> (&'static str, bool) {
    match style {
        Style::Body => (FONT_BODY, false),
        Style::Heading1 => (FONT_HEADING1, false),
        Style::Heading2 => (FONT_HEADING2, false),
        Style::Heading3 => (FONT_BODY, true),
    }
}

/// One run; newlines become line breaks and tabs tab characters.
fn push_run(out: &mut String, text: &str, rpr: &str) {
    out.push_str("<w:r>");
    out.push_str(rpr);
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.push_str("<w:br/>");
        }
        for (k, piece) in line.split('\t').enumerate() {
            if k > 0 {
                out.push_str("<w:tab/>");
            }
            if !piece.is_empty() {
                out.push_str("<w:t xml:space=\"preserve\">");
                escape(out, piece);
                out.push_str("</w:t>");
            }
        }
    }
    out.push_str("</w:r>");
}

fn paragraph(out: &mut String, runs: &[Run]) {
    let keep_next = runs.len() == 1 && matches!(runs[0].style, Style::Heading1 | Style::Heading2 | Style::Heading3);
    let _ = write!(
        out,
        "<w:p><w:pPr>{}<w:spacing w:line=\"{LINE_PITCH}\" w:lineRule=\"exact\"/><w:ind w:firstLineChars=\"200\" w:firstLine=\"{}\"/><w:jc w:val=\"both\"/></w:pPr>",
        if keep_next { "<w:keepNext/>" } else { "" },
        2 * CHAR
    );
    for run in runs {
        let (font, bold) = style_font(run.style);
        push_run(out, &run.text, &run_props(font, BODY_SIZE, bold));
    }
    out.push_str("</w:p>");
}

fn empty_paragraph(out: &mut String) {
    let _ = write!(out, "<w:p><w:pPr><w:spacing w:line=\"{LINE_PITCH}\" w:lineRule=\"exact\"/></w:pPr></w:p>");
}

fn table(out: &mut String, t: &Table) {
    let cols = t.header.len().max(1);
    let total: u32 = t.widths.iter().take(cols).sum::<u32>().max(1);
    let widths: Vec<u32> = (0..cols)
        .map(|n| t.widths.get(n).copied().unwrap_or(total / cols as u32).max(1) * TEXT_WIDTH / total)
        .collect();
    let border = |side: &str| format!("<w:{side} w:val=\"single\" w:sz=\"4\" w:space=\"0\" w:color=\"000000\"/>");
    let _ = write!(
        out,
        "<w:tbl><w:tblPr><w:tblW w:w=\"{TEXT_WIDTH}\" w:type=\"dxa\"/><w:jc w:val=\"center\"/><w:tblBorders>{}{}{}{}{}{}</w:tblBorders>\
<w:tblLayout w:type=\"fixed\"/></w:tblPr><w:tblGrid>",
        border("top"),
        border("left"),
        border("bottom"),
        border("right"),
        border("insideH"),
        border("insideV")
    );
    for w in &widths {
        let _ = write!(out, "<w:gridCol w:w=\"{w}\"/>");
    }
    out.push_str("</w:tblGrid>");
    let row = |out: &mut String, cells: &[String], header: bool| {
        out.push_str("<w:tr>");
        if header {
            out.push_str("<w:trPr><w:tblHeader/></w:trPr>");
        }
        let rpr = run_props(if header { FONT_HEADING1 } else { FONT_BODY }, TABLE_SIZE, false);
        for (n, w) in widths.iter().enumerate() {
            let text = cells.get(n).map(String::as_str).unwrap_or("");
            let _ = write!(
                out,
                "<w:tc><w:tcPr><w:tcW w:w=\"{w}\" w:type=\"dxa\"/><w:vAlign w:val=\"center\"/></w:tcPr>\
<w:p><w:pPr><w:spacing w:line=\"400\" w:lineRule=\"exact\"/><w:jc w:val=\"center\"/></w:pPr>"
            );
            push_run(out, text, &rpr);
            out.push_str("</w:p></w:tc>");
        }
        out.push_str("</w:tr>");
    };
    row(out, &t.header, true);
    for r in &t.rows {
        row(out, r, false);
    }
    out.push_str("</w:tbl>");
}

fn document_xml(doc: &Document) -> String {
    let mut out = String::with_capacity(4096 + doc.blocks.len() * 1024);
    let _ = write!(out, "{XML_DECL}<w:document xmlns:w=\"{W_NS}\" xmlns:r=\"{R_NS}\"><w:body>");
    // 标题: centred, 2号小标宋, followed by an empty line.
    let _ = write!(
        out,
        "<w:p><w:pPr><w:spacing w:line=\"{LINE_PITCH}\" w:lineRule=\"exact\"/><w:jc w:val=\"center\"/></w:pPr>"
    );
    push_run(&mut out, &doc.title, &run_props(FONT_TITLE, TITLE_SIZE, false));
    out.push_str("</w:p>");
    empty_paragraph(&mut out);
    for block in &doc.blocks {
        match block {
            Block::Paragraph(runs) => paragraph(&mut out, runs),
            Block::Table(t) => {
                table(&mut out, t);
            }
        }
    }
    if let Some(sig) = &doc.signature {
        empty_paragraph(&mut out);
        let rpr = run_props(FONT_BODY, BODY_SIZE, false);
        for (text, right) in [(&sig.issuer, 4 * CHAR), (&sig.date, 4 * CHAR)] {
            let _ = write!(
                out,
                "<w:p><w:pPr><w:spacing w:line=\"{LINE_PITCH}\" w:lineRule=\"exact\"/><w:ind w:right=\"{right}\"/><w:jc w:val=\"right\"/></w:pPr>"
            );
            push_run(&mut out, text, &rpr);
            out.push_str("</w:p>");
        }
    } else if matches!(doc.blocks.last(), Some(Block::Table(_))) {
        // The body must not end with a table.
        empty_paragraph(&mut out);
    }
    let _ = write!(
        out,
        "<w:sectPr><w:footerReference w:type=\"even\" r:id=\"rId5\"/><w:footerReference w:type=\"default\" r:id=\"rId4\"/>\
<w:pgSz w:w=\"{PAGE_WIDTH}\" w:h=\"{PAGE_HEIGHT}\"/>\
<w:pgMar w:top=\"{MARGIN_TOP}\" w:right=\"{MARGIN_RIGHT}\" w:bottom=\"{MARGIN_BOTTOM}\" w:left=\"{MARGIN_LEFT}\" w:header=\"851\" w:footer=\"992\" w:gutter=\"0\"/>\
<w:pgNumType w:start=\"1\"/><w:cols w:space=\"720\"/><w:docGrid w:type=\"lines\" w:linePitch=\"{LINE_PITCH}\"/></w:sectPr></w:body></w:document>"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::super::model::Signature;
    use super::*;

    fn sample() -> Document {
        Document {
            title: "标题".into(),
            blocks: vec![
                Block::text("一、主要工作开展情况", Style::Heading1),
                Block::Paragraph(vec![
                    Run::new("（一）标题。", Style::Heading2),
                    Run::new("正文<&>\u{1}𠀀\n下一行", Style::Body),
                ]),
                Block::Table(Table { header: vec!["a".into()], rows: vec![vec!["1".into()]], widths: vec![1] }),
            ],
            signature: Some(Signature { issuer: "XX街道党工委".into(), date: "2023年12月1日".into() }),
        }
    }

    #[test]
    fn page_setup_is_the_official_one() {
        assert_eq!((MARGIN_TOP, MARGIN_LEFT, MARGIN_RIGHT, MARGIN_BOTTOM), (2098, 1587, 1474, 1984));
        // 156 mm of text width, 225 mm of text height (to a twip of rounding).
        assert!(TEXT_WIDTH.abs_diff(mm(156)) <= 1);
        assert!((PAGE_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM).abs_diff(mm(225)) <= 2);
        // 22 lines of 28.95 pt fill the 225 mm text block.
        assert!((22 * LINE_PITCH).abs_diff(mm(225)) < LINE_PITCH / 2);
    }

    #[test]
    fn same_document_same_bytes_and_text_is_escaped() {
        let a = render(&sample()).unwrap();
        assert_eq!(a, render(&sample()).unwrap());
        let xml = document_xml(&sample());
        assert!(xml.contains("正文&lt;&amp;&gt;𠀀</w:t></w:r>") || xml.contains("正文&lt;&amp;&gt;𠀀</w:t><w:br/>"));
        assert!(!xml.contains('\u{1}'));
        assert!(xml.contains("w:eastAsia=\"楷体_GB2312\""));
        assert!(footer(Side::Odd).contains("w:val=\"right\"") && footer(Side::Even).contains("w:val=\"left\""));
    }
}
