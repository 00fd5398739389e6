//! The 自查报告 of a community, in the same official form as the 督查报告 (GB/T 9704-2012 practice):
//!
//! - the title: the report's own, or `{社区}{年度}年度自查报告`;
//! - the opening paragraph(s), then the sections numbered by level and position: `一、` headings
//!   on a line of their own, `（一）heading。text` and `1. heading。text` run into their first
//!   paragraph (a heading with no text stands alone);
//! - a free-text report (one field, the first version) is its paragraphs as written;
//! - the community's name and the date it was submitted as 署名 and 成文日期.
//!
//! Made only from the submitted event, so the same report always gives the same bytes.

use super::model::{Block, Document, Run, Signature, Style, date_zh, with_full_stop};
use chrono::NaiveDate;
use ducha_events::event::SelfInspectionSubmitted;

/// The document of `report` by the community named `community`, submitted on `submitted_on`.
pub fn build(community: &str, report: &SelfInspectionSubmitted, submitted_on: Option<NaiveDate>) -> Document {
    let mut blocks: Vec<Block> = paragraphs(&report.text).map(|p| Block::text(p, Style::Body)).collect();
    let numbers = ducha_events::numbering::outline_numbers(report.sections.iter().map(|s| s.level));
    for (section, number) in report.sections.iter().zip(numbers) {
        let level = section.level.clamp(1, 3);
        let mut texts = paragraphs(&section.text);
        let style = match level {
            1 => Style::Heading1,
            2 => Style::Heading2,
            _ => Style::Heading3,
        };
        match (level, texts.next()) {
            (1, first) => {
                blocks.push(Block::text(format!("{number}{}", section.title), style));
                blocks.extend(first.map(|p| Block::text(p, Style::Body)));
            }
            (_, None) => blocks.push(Block::text(format!("{number}{}", section.title), style)),
            (_, Some(first)) => blocks.push(Block::Paragraph(vec![
                Run::new(format!("{number}{}", with_full_stop(&section.title)), style),
                Run::new(first, Style::Body),
            ])),
        }
        blocks.extend(texts.map(|p| Block::text(p, Style::Body)));
    }
    Document {
        title: ducha_events::self_inspection::display_title(community, report.year, &report.title),
        blocks,
        signature: submitted_on.map(|on| Signature { issuer: community.to_owned(), date: date_zh(on) }),
    }
}

/// The non-empty lines of a text, trimmed: one paragraph each.
fn paragraphs(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::text;
    use ducha_events::event::ReportSection;
    use ducha_events::ids::{CommunityId, SelfInspectionId};

    fn report(text: &str, sections: Vec<ReportSection>) -> SelfInspectionSubmitted {
        SelfInspectionSubmitted {
            self_inspection_id: SelfInspectionId::parse("s1").unwrap(),
            community_id: CommunityId::parse("c1").unwrap(),
            year: 2023,
            title: String::new(),
            text: text.into(),
            inspection_id: None,
            sections,
        }
    }
    fn sec(level: u8, title: &str, text: &str) -> ReportSection {
        ReportSection { level, title: title.into(), text: text.into() }
    }

    #[test]
    fn sections_are_numbered_in_the_official_order() {
        let r = report(
            "根据街道党工委要求，现将自查情况报告如下：",
            vec![
                sec(1, "工作开展情况", ""),
                sec(2, "强化理论武装", "开展理论宣讲会10场。\n覆盖党员300人次。"),
                sec(3, "落实第一议题", "12次。"),
                sec(3, "专题学习", ""),
                sec(2, "加强阵地管理", "排查宣传栏8处。"),
                sec(3, "网络阵地", "公众号2个。"),
                sec(1, "存在的问题", "台账不够完善。"),
                sec(1, "下一步打算", ""),
                sec(2, "抓好学习", "继续抓好学习。"),
            ],
        );
        let doc = build("东风社区", &r, NaiveDate::from_ymd_opt(2023, 11, 20));
        let text = text::render(&doc);
        let expected = "东风社区2023年度自查报告\n\
            根据街道党工委要求，现将自查情况报告如下：\n\
            一、工作开展情况\n\
            （一）强化理论武装。开展理论宣讲会10场。\n\
            覆盖党员300人次。\n\
            1.落实第一议题。12次。\n\
            2.专题学习\n\
            （二）加强阵地管理。排查宣传栏8处。\n\
            1.网络阵地。公众号2个。\n\
            二、存在的问题\n\
            台账不够完善。\n\
            三、下一步打算\n\
            （一）抓好学习。继续抓好学习。\n\
            \n东风社区\n2023年11月20日\n";
        assert_eq!(text, expected);
        // Heading styles: 一、 黑体, （一） 楷体, 1. bold.
        let styles: Vec<Style> = doc
            .blocks
            .iter()
            .filter_map(|b| match b {
                Block::Paragraph(runs) => runs.first().map(|r| r.style),
                Block::Table(_) => None,
            })
            .collect();
        assert_eq!(&styles[1..4], &[Style::Heading1, Style::Heading2, Style::Body]);
        assert_eq!(styles[4], Style::Heading3);
    }

    #[test]
    fn a_free_text_report_is_its_paragraphs_under_its_own_title() {
        let mut r = report("一、工作开展情况\n\n本社区开展宣讲10场。\n", vec![]);
        r.title = "东风社区2023年度意识形态工作自查报告".into();
        let doc = build("东风社区", &r, None);
        assert_eq!(
            text::render(&doc),
            "东风社区2023年度意识形态工作自查报告\n一、工作开展情况\n本社区开展宣讲10场。\n"
        );
    }
}
