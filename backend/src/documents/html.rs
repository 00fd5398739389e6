//! The HTML preview: the same [`Document`] as the DOCX, set to look like the printed page (the web
//! app shows it). Self-contained: inline CSS, no external fonts or scripts.

use super::model::{Block, Document, Style};

const CSS: &str = "body{background:#f0f0f0;margin:0}\
.gw{background:#fff;width:156mm;margin:1em auto;padding:37mm 26mm 35mm 28mm;box-sizing:content-box;\
font:16pt/28.95pt 'FangSong_GB2312','仿宋_GB2312','FangSong','仿宋','STFangsong',serif;color:#000}\
.gw h1{font:22pt/28.95pt 'FZXiaoBiaoSong-B05S','方正小标宋简体','SimSun','宋体',serif;text-align:center;margin:0 0 28.95pt}\
.gw p{margin:0;text-indent:2em;text-align:justify;white-space:pre-wrap;overflow-wrap:anywhere}\
.gw .h1{font-family:'SimHei','黑体',sans-serif}\
.gw .h2{font-family:'KaiTi_GB2312','楷体_GB2312','KaiTi','楷体',serif}\
.gw .h3{font-weight:bold}\
.gw table{border-collapse:collapse;width:100%;font-size:12pt;line-height:20pt;margin:0}\
.gw th,.gw td{border:1px solid #000;padding:0 4px;text-align:center}\
.gw th{font-family:'SimHei','黑体',sans-serif;font-weight:normal}\
.gw .sig{text-align:right;text-indent:0;padding-right:4em}\
.gw .gap{height:28.95pt}";

/// Escapes text for HTML element content and attribute values.
pub fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {}
            c => out.push(c),
        }
    }
}

/// The document as an `<article class="gw">` fragment, for embedding.
pub fn fragment(doc: &Document) -> String {
    let mut out = String::with_capacity(1024 + doc.blocks.len() * 512);
    out.push_str("<article class=\"gw\"><h1>");
    escape(&mut out, &doc.title);
    out.push_str("</h1>\n");
    for block in &doc.blocks {
        match block {
            Block::Paragraph(runs) => {
                out.push_str("<p>");
                for run in runs {
                    let class = match run.style {
                        Style::Body => None,
                        Style::Heading1 => Some("h1"),
                        Style::Heading2 => Some("h2"),
                        Style::Heading3 => Some("h3"),
                    };
                    match class {
                        Some(c) => {
                            out.push_str("<span class=\"");
                            out.push_str(c);
                            out.push_str("\">");
                            escape(&mut out, &run.text);
                            out.push_str("</span>");
                        }
                        None => escape(&mut out, &run.text),
                    }
                }
                out.push_str("</p>\n");
            }
            Block::Table(t) => {
                out.push_str("<table><thead><tr>");
                for h in &t.header {
                    out.push_str("<th>");
                    escape(&mut out, h);
                    out.push_str("</th>");
                }
                out.push_str("</tr></thead><tbody>\n");
                for row in &t.rows {
                    out.push_str("<tr>");
                    for cell in row {
                        out.push_str("<td>");
                        escape(&mut out, cell);
                        out.push_str("</td>");
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody></table>\n");
            }
        }
    }
    if let Some(sig) = &doc.signature {
        out.push_str("<div class=\"gap\"></div>\n");
        for line in [&sig.issuer, &sig.date] {
            out.push_str("<p class=\"sig\">");
            escape(&mut out, line);
            out.push_str("</p>\n");
        }
    }
    out.push_str("</article>\n");
    out
}

/// A whole HTML page with the stylesheet inline.
pub fn page(doc: &Document) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>");
    escape(&mut out, &doc.title);
    out.push_str("</title><style>");
    out.push_str(CSS);
    out.push_str("</style></head><body>\n");
    out.push_str(&fragment(doc));
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::model::Run;
    use super::*;

    #[test]
    fn text_is_escaped_and_styles_become_classes() {
        let doc = Document {
            title: "<script>".into(),
            blocks: vec![Block::Paragraph(vec![
                Run::new("（一）标题。", Style::Heading2),
                Run::new("a&b", Style::Body),
            ])],
            signature: None,
        };
        let html = page(&doc);
        assert!(html.contains("<h1>&lt;script&gt;</h1>"));
        assert!(html.contains("<p><span class=\"h2\">（一）标题。</span>a&amp;b</p>"));
        assert!(!html.contains("<script>"));
    }
}
