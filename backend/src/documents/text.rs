//! The plain-text rendering: one line per paragraph, as the sample report is written
//! (`shared/domain/sample-inspection-report.txt`); tables as tab-separated lines.

use super::model::{Block, Document};

pub fn render(doc: &Document) -> String {
    let mut out = String::with_capacity(1024 + doc.blocks.len() * 256);
    out.push_str(&one_line(&doc.title));
    out.push('\n');
    for block in &doc.blocks {
        match block {
            Block::Paragraph(runs) => {
                for run in runs {
                    out.push_str(&run.text);
                }
                out.push('\n');
            }
            Block::Table(t) => {
                for row in std::iter::once(&t.header).chain(&t.rows) {
                    let cells: Vec<String> = row.iter().map(|c| one_line(c)).collect();
                    out.push_str(&cells.join("\t"));
                    out.push('\n');
                }
            }
        }
    }
    if let Some(sig) = &doc.signature {
        out.push('\n');
        out.push_str(&one_line(&sig.issuer));
        out.push('\n');
        out.push_str(&one_line(&sig.date));
        out.push('\n');
    }
    out
}

/// Tabs and newlines inside a title or a cell would break the line structure.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\t', '\r'], " ")
}
