//! The 督查报告 of one inspection, built from its projection ([`InspectionDetail`]) the way the sample
//! report (`shared/domain/sample-inspection-report.txt`) is written:
//!
//! - title `{街道}党工委{督查标题}的督查报告`;
//! - an opening paragraph: purpose, the number of communities, the methods, the overall assessment;
//! - `一、主要工作开展情况`: the scope and methods, the 自查报告 submitted in answer to the inspection
//!   (cited by title), the conclusion's summary, then the achievements
//!   grouped by heading, `（一）heading。text`, with any figure the text does not already quote;
//! - `二、存在主要问题`: the findings (dismissed ones left out) grouped by category in the order the
//!   categories first occur, each `（一）title。description`; when a category holds several findings
//!   the category becomes the `（一）` heading and its findings `1. title。description`;
//! - `三、下一步工作计划`: the rectification measures, `（一）title。measure`, each once;
//! - once concluded, the committee's name and the conclusion date as 署名 and 成文日期.
//!
//! Only facts of the inspection go in — never "today", never the issued-report list — so the same
//! log position always gives the same document.

use super::model::{Block, Document, Run, Signature, Style, date_zh, heading_number, with_full_stop};
use chrono::Datelike;
use ducha_events::projection::{InspectionDetail, RectificationStatus};

/// The report of `d` for the sub-district named `tenant_name`.
pub fn build(tenant_name: &str, d: &InspectionDetail) -> Document {
    let committee = format!("{tenant_name}党工委");
    let mut blocks = vec![opening(&committee, d)];

    blocks.push(Block::text(format!("{}主要工作开展情况", heading_number(1, 1)), Style::Heading1));
    blocks.push(Block::text(introduction(d), Style::Body));
    let achievements = achievements(d);
    if achievements.is_empty() {
        blocks.push(Block::text("暂无。", Style::Body));
    }
    blocks.extend(achievements);

    blocks.push(Block::text(format!("{}存在主要问题", heading_number(1, 2)), Style::Heading1));
    let findings = findings(d);
    if findings.is_empty() {
        blocks.push(Block::text("暂无。", Style::Body));
    }
    blocks.extend(findings);

    blocks.push(Block::text(format!("{}下一步工作计划", heading_number(1, 3)), Style::Heading1));
    let measures = measures(d);
    if measures.is_empty() {
        blocks.push(Block::text("暂无。", Style::Body));
    }
    blocks.extend(measures);

    let signature = d
        .concluded_on
        .filter(|_| d.assessment.is_some())
        .map(|on| Signature { issuer: committee.clone(), date: date_zh(on) });
    Document { title: format!("{committee}{}的督查报告", d.title), blocks, signature }
}

fn methods(d: &InspectionDetail) -> String {
    d.method_names.join("、")
}

/// `东风社区、向阳社区……及光明社区`.
fn community_list(d: &InspectionDetail) -> String {
    let names: Vec<&str> = d.scope.iter().map(|c| c.name.as_str()).collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{}及{last}", rest.join("、")),
    }
}

fn opening(committee: &str, d: &InspectionDetail) -> Block {
    let subject = &d.subject;
    let mut s = format!("为全面掌握各社区落实{subject}责任制情况，{committee}");
    if let Some(start) = d.started_on {
        match d.concluded_on {
            Some(end) if end.year() == start.year() => {
                s.push_str(&format!("于{}至{}月{}日", date_zh(start), end.month(), end.day()))
            }
            Some(end) => s.push_str(&format!("于{}至{}", date_zh(start), date_zh(end))),
            None => s.push_str(&format!("自{}起", date_zh(start))),
        }
    }
    s.push_str(&format!("对下辖{}个社区{}年度{subject}开展情况进行了督查", d.scope.len(), d.year));
    if !d.methods.is_empty() {
        s.push_str(&format!("，督查采取{}等方式进行", methods(d)));
    }
    s.push('。');
    if let Some(assessment) = &d.assessment {
        s.push_str(&format!("从督查情况看，各社区{subject}责任制落实情况{}。", assessment.trim_end_matches('。')));
    }
    s.push_str("现将督查情况报告如下：");
    Block::text(s, Style::Body)
}

fn introduction(d: &InspectionDetail) -> String {
    let mut s = format!("此次督查，对{}{}个社区", community_list(d), d.scope.len());
    if !d.methods.is_empty() {
        s.push_str(&format!("，通过{}等方式进行", methods(d)));
    }
    s.push('。');
    // How often each method was used, in the plan's method order.
    let counts: Vec<String> = d
        .methods
        .iter()
        .zip(&d.method_names)
        .filter_map(|(m, name)| {
            let n = d.fieldwork.iter().flat_map(|g| &g.records).filter(|r| r.method == *m).count();
            (n > 0).then(|| format!("{name}{n}次"))
        })
        .collect();
    if !counts.is_empty() {
        s.push_str(&format!("督查组共开展{}。", counts.join("、")));
    }
    s.push_str(&self_inspections(d));
    if let Some(summary) = d.summary.as_deref().filter(|s| !s.trim().is_empty()) {
        s.push_str(summary.trim());
    }
    s
}

/// The 自查报告 submitted in answer to the inspection, cited by title (with the community's name in
/// front when the title lacks it): `督查前，2个社区报送了自查报告：《…》、西山社区《…》。`
fn self_inspections(d: &InspectionDetail) -> String {
    if d.self_inspections.is_empty() {
        return String::new();
    }
    let mut communities: Vec<&str> = d.self_inspections.iter().map(|s| s.community.name.as_str()).collect();
    communities.dedup();
    communities.sort_unstable();
    communities.dedup();
    let cited: Vec<String> = d
        .self_inspections
        .iter()
        .map(|s| {
            let title = s.title.trim_start_matches('《').trim_end_matches('》');
            if title.contains(&s.community.name) {
                format!("《{title}》")
            } else {
                format!("{}《{title}》", s.community.name)
            }
        })
        .collect();
    format!("督查前，{}个社区报送了自查报告：{}。", communities.len(), cited.join("、"))
}

fn achievements(d: &InspectionDetail) -> Vec<Block> {
    // Group by heading, in the order headings first occur.
    let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
    for a in &d.achievements {
        let mut text = a.text.trim().to_owned();
        let missing: Vec<String> = a
            .figures
            .iter()
            .filter(|f| !text.contains(&format!("{}{}", f.value, f.unit)))
            .map(|f| format!("{}{}{}", f.label, f.value, f.unit))
            .collect();
        if !missing.is_empty() {
            text.push_str(&format!("（{}）", missing.join("，")));
        }
        match groups.iter_mut().find(|(c, _)| *c == a.category) {
            Some((_, texts)) => texts.push(text),
            None => groups.push((&a.category, vec![text])),
        }
    }
    groups
        .into_iter()
        .enumerate()
        .map(|(n, (category, texts))| {
            Block::Paragraph(vec![
                Run::new(format!("{}{}", heading_number(2, n + 1), with_full_stop(category)), Style::Heading2),
                Run::new(texts.join(""), Style::Body),
            ])
        })
        .collect()
}

fn findings(d: &InspectionDetail) -> Vec<Block> {
    let mut groups: Vec<(&str, Vec<&ducha_events::projection::FindingView>)> = Vec::new();
    for f in d.findings.iter().filter(|f| f.status != RectificationStatus::Dismissed) {
        match groups.iter_mut().find(|(c, _)| *c == f.category) {
            Some((_, list)) => list.push(f),
            None => groups.push((&f.category, vec![f])),
        }
    }
    let text = |f: &ducha_events::projection::FindingView| {
        let mut s = f.description.trim().to_owned();
        if f.community.community_id.is_some() && !s.contains(&f.community.name) {
            s.push_str(&format!("（{}）", f.community.name));
        }
        s
    };
    let mut out = Vec::new();
    for (n, (_, list)) in groups.iter().enumerate() {
        if let [f] = list.as_slice() {
            out.push(Block::Paragraph(vec![
                Run::new(format!("{}{}", heading_number(2, n + 1), with_full_stop(&f.title)), Style::Heading2),
                Run::new(text(f), Style::Body),
            ]));
        } else {
            let name = list.first().map_or("", |f| f.category_name.as_str());
            out.push(Block::text(format!("{}{name}", heading_number(2, n + 1)), Style::Heading2));
            for (k, f) in list.iter().enumerate() {
                out.push(Block::Paragraph(vec![
                    Run::new(format!("{}{}", heading_number(3, k + 1), with_full_stop(&f.title)), Style::Heading3),
                    Run::new(text(f), Style::Body),
                ]));
            }
        }
    }
    out
}

fn measures(d: &InspectionDetail) -> Vec<Block> {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for f in d.findings.iter().filter(|f| f.status != RectificationStatus::Dismissed) {
        if let (Some(title), Some(measure)) = (&f.rectification_title, &f.rectification_measure) {
            let key = (title.as_str(), measure.as_str());
            if !seen.contains(&key) {
                seen.push(key);
            }
        }
    }
    seen.into_iter()
        .enumerate()
        .map(|(n, (title, measure))| {
            Block::Paragraph(vec![
                Run::new(format!("{}{}", heading_number(2, n + 1), with_full_stop(title)), Style::Heading2),
                Run::new(measure.trim(), Style::Body),
            ])
        })
        .collect()
}
