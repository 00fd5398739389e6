//! The district 通报 (circular): the sub-districts ranked by checklist score, by rectification
//! completion and by timeliness, with the roll-up figures — as a DOCX in the official format (through
//! the shared document model) and as a workbook.
//!
//! Timeliness (按期销号率) is computed here from the tenants' facts: of the rectifications that are
//! due (deadline passed on `today`) or already verified, the share verified on or before their
//! current deadline (an approved extension moves the deadline).

use super::DocumentError;
use super::model::{Block, Document, Signature, Style, Table, date_zh, heading_number};
use super::sheet::{Formats, properties};
use chrono::NaiveDate;
use ducha_events::ids::{DistrictId, TenantId};
use ducha_events::projection::{
    DistrictRollup, RankEntry, Rate, ReadModel, RectificationStatus, RollupQuery, WarningPolicy,
};
use rust_xlsxwriter::Workbook;

/// Everything the circular says: the roll-up and the timeliness ranking.
#[derive(Debug, Clone)]
pub struct CircularData {
    pub rollup: DistrictRollup,
    /// Per sub-district, in the roll-up's row order.
    pub timeliness: Vec<(TenantId, Rate)>,
    pub total_timeliness: Rate,
    pub ranking_by_timeliness: Vec<RankEntry>,
}

/// Gathers the data of the circular of `district` on `today`; `None` when there is no such district.
pub fn gather(
    model: &ReadModel,
    district: &DistrictId,
    year: Option<i32>,
    today: NaiveDate,
    policy: &WarningPolicy,
) -> Option<CircularData> {
    model.directory().district(district)?;
    let rollup = model.rollup(district, &RollupQuery { year }, today, policy);
    let mut timeliness = Vec::new();
    let (mut all_done, mut all_of) = (0, 0);
    for row in &rollup.rows {
        let (mut done, mut of) = (0, 0);
        if let Some(facts) = model.tenant_facts(&row.tenant_id) {
            for f in &facts.findings {
                if year.is_some() && facts.finding_year(f) != year {
                    continue;
                }
                let Some(r) = &f.rectification else { continue };
                let verified = f.status == RectificationStatus::Verified;
                if f.status == RectificationStatus::Dismissed || !(verified || r.deadline < today) {
                    continue;
                }
                of += 1;
                done += u64::from(verified && r.verified_on.is_some_and(|v| v <= r.deadline));
            }
        }
        (all_done, all_of) = (all_done + done, all_of + of);
        timeliness.push((row.tenant_id.clone(), Rate::new(done, of)));
    }
    let ranking_by_timeliness = rank(
        rollup
            .rows
            .iter()
            .zip(&timeliness)
            .map(|(r, (_, rate))| (r.tenant_id.clone(), r.name.clone(), rate.percent))
            .collect(),
    );
    Some(CircularData { rollup, timeliness, total_timeliness: Rate::new(all_done, all_of), ranking_by_timeliness })
}

/// Highest first, `None` last and unranked, ties share a rank (as the roll-up ranks).
fn rank(rows: Vec<(TenantId, String, Option<f64>)>) -> Vec<RankEntry> {
    let mut out: Vec<RankEntry> =
        rows.into_iter().map(|(tenant_id, name, value)| RankEntry { rank: None, tenant_id, name, value }).collect();
    out.sort_by(|a, b| match (a.value, b.value) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (a, b) => b.is_some().cmp(&a.is_some()),
    });
    let mut previous: Option<(f64, u32)> = None;
    for (n, e) in out.iter_mut().enumerate() {
        if let Some(v) = e.value {
            let r = match previous {
                Some((pv, pr)) if pv == v => pr,
                _ => n as u32 + 1,
            };
            e.rank = Some(r);
            previous = Some((v, r));
        }
    }
    out
}

fn pct(r: &Rate) -> String {
    r.percent.map_or_else(|| "—".to_owned(), |p| format!("{p:.1}%"))
}

fn score(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |s| format!("{s:.2}"))
}

fn rank_text(r: Option<u32>) -> String {
    r.map_or_else(|| "—".to_owned(), |r| r.to_string())
}

fn year_text(year: Option<i32>) -> String {
    year.map_or_else(|| "历年".to_owned(), |y| format!("{y}年度"))
}

fn row_of<'a>(data: &'a CircularData, t: &TenantId) -> Option<&'a ducha_events::projection::SubdistrictRollup> {
    data.rollup.rows.iter().find(|r| &r.tenant_id == t)
}

fn timeliness_of(data: &CircularData, t: &TenantId) -> Rate {
    data.timeliness.iter().find(|(id, _)| id == t).map(|(_, r)| *r).unwrap_or_default()
}

/// The circular as a document (for DOCX, HTML or text).
pub fn document(data: &CircularData) -> Document {
    let r = &data.rollup;
    let t = &r.totals;
    let years = year_text(r.year);
    let mut blocks = Vec::new();
    blocks.push(Block::text("各街道党工委：", Style::Body));
    blocks.push(Block::text(
        format!(
            "为推动意识形态工作责任制落细落实，现将截至{}{}所辖{}个街道{}意识形态工作督查及整改情况通报如下。",
            date_zh(r.today),
            r.district_name,
            r.rows.len(),
            years
        ),
        Style::Body,
    ));

    blocks.push(Block::text(format!("{}总体情况", heading_number(1, 1)), Style::Heading1));
    let mut s = format!(
        "各街道共开展督查{}次，覆盖社区{}个，记录工作成效{}项，发现问题{}个。已交办整改{}个，已销号{}个，整改完成率{}；按期销号率{}；超期未完成{}个，预警红灯{}个、黄灯{}个、蓝灯{}个、绿灯{}个。",
        t.inspections,
        t.communities_covered,
        t.achievements,
        t.findings,
        t.completion_rate.of,
        t.completion_rate.done,
        pct(&t.completion_rate),
        pct(&data.total_timeliness),
        t.overdue,
        t.warnings.red,
        t.warnings.yellow,
        t.warnings.blue,
        t.warnings.green,
    );
    if let Some(avg) = t.average_score {
        s.push_str(&format!("各社区检查考核平均得分{avg:.2}分（计分社区{}个次）。", t.scores_counted));
    }
    blocks.push(Block::text(s, Style::Body));

    blocks.push(Block::text(format!("{}检查考核得分排名", heading_number(1, 2)), Style::Heading1));
    blocks.push(Block::Table(Table {
        header: ["名次", "街道", "平均得分", "计分社区", "督查次数", "发现问题"].map(str::to_owned).to_vec(),
        rows: r
            .ranking_by_score
            .iter()
            .map(|e| {
                let m = row_of(data, &e.tenant_id).map(|r| &r.metrics);
                vec![
                    rank_text(e.rank),
                    e.name.clone(),
                    score(e.value),
                    m.map_or(0, |m| m.scores_counted).to_string(),
                    m.map_or(0, |m| m.inspections).to_string(),
                    m.map_or(0, |m| m.findings).to_string(),
                ]
            })
            .collect(),
        widths: vec![2, 4, 3, 3, 3, 3],
    }));

    blocks.push(Block::text(format!("{}整改完成情况排名", heading_number(1, 3)), Style::Heading1));
    blocks.push(Block::Table(Table {
        header: ["名次", "街道", "已交办", "已销号", "完成率", "超期未完成"].map(str::to_owned).to_vec(),
        rows: r
            .ranking_by_completion
            .iter()
            .map(|e| {
                let m = row_of(data, &e.tenant_id).map(|r| &r.metrics);
                let rate = m.map(|m| m.completion_rate).unwrap_or_default();
                vec![
                    rank_text(e.rank),
                    e.name.clone(),
                    rate.of.to_string(),
                    rate.done.to_string(),
                    pct(&rate),
                    m.map_or(0, |m| m.overdue).to_string(),
                ]
            })
            .collect(),
        widths: vec![2, 4, 3, 3, 3, 3],
    }));

    blocks.push(Block::text(format!("{}整改按期销号情况排名", heading_number(1, 4)), Style::Heading1));
    blocks.push(Block::text(
        "按期销号率为已到期或已销号的整改事项中，在整改时限（含批准延期）内销号的比例。",
        Style::Body,
    ));
    blocks.push(Block::Table(Table {
        header: ["名次", "街道", "应完成", "按期销号", "按期销号率"].map(str::to_owned).to_vec(),
        rows: data
            .ranking_by_timeliness
            .iter()
            .map(|e| {
                let rate = timeliness_of(data, &e.tenant_id);
                vec![rank_text(e.rank), e.name.clone(), rate.of.to_string(), rate.done.to_string(), pct(&rate)]
            })
            .collect(),
        widths: vec![2, 4, 3, 3, 3],
    }));

    blocks.push(Block::text(format!("{}问题类别分布", heading_number(1, 5)), Style::Heading1));
    if r.by_category.is_empty() {
        blocks.push(Block::text("暂无。", Style::Body));
    } else {
        blocks.push(Block::Table(Table {
            header: ["问题类别", "发现问题", "未销号", "已销号", "超期"].map(str::to_owned).to_vec(),
            rows: r
                .by_category
                .iter()
                .map(|c| {
                    vec![
                        c.name.clone(),
                        c.findings.to_string(),
                        c.open.to_string(),
                        c.verified.to_string(),
                        c.overdue.to_string(),
                    ]
                })
                .collect(),
            widths: vec![4, 3, 3, 3, 3],
        }));
    }

    Document {
        title: format!("{}关于{}各街道意识形态工作责任制督查及整改情况的通报", r.district_name, years),
        blocks,
        signature: Some(Signature { issuer: format!("{}委宣传部", r.district_name), date: date_zh(r.today) }),
    }
}

/// The circular as a workbook: one sheet of sub-districts with every figure and the three ranks,
/// and one of finding categories.
pub fn xlsx(data: &CircularData) -> Result<Vec<u8>, DocumentError> {
    let r = &data.rollup;
    let title = format!(
        "{}{}各街道意识形态工作督查及整改情况通报（截至{}）",
        r.district_name,
        year_text(r.year),
        date_zh(r.today)
    );
    let mut workbook = Workbook::new();
    properties(&mut workbook, &title, r.today)?;
    let f = Formats::new();

    let headers: [(&str, f64); 14] = [
        ("街道", 12.0),
        ("督查次数", 9.0),
        ("覆盖社区", 9.0),
        ("工作成效", 9.0),
        ("发现问题", 9.0),
        ("已交办", 9.0),
        ("已销号", 9.0),
        ("完成率（%）", 11.0),
        ("按期销号率（%）", 14.0),
        ("超期未完成", 10.0),
        ("平均得分", 9.0),
        ("得分排名", 9.0),
        ("完成率排名", 10.0),
        ("按期排名", 9.0),
    ];
    let sheet = workbook.add_worksheet();
    sheet.set_name("通报")?;
    sheet.set_landscape().set_paper_size(9);
    let last_col = (headers.len() - 1) as u16;
    sheet.merge_range(0, 0, 0, last_col, &title, &f.title)?;
    sheet.set_row_height(0, 32)?;
    for (c, (name, width)) in headers.iter().enumerate() {
        sheet.write_string_with_format(1, c as u16, *name, &f.header)?;
        sheet.set_column_width(c as u16, *width)?;
    }
    let rank_of = |list: &[RankEntry], t: &TenantId| list.iter().find(|e| &e.tenant_id == t).and_then(|e| e.rank);
    let rows = r.rows.iter().map(|row| (Some(&row.tenant_id), row.name.as_str(), &row.metrics));
    let total = std::iter::once((None, "合计", &r.totals));
    for (n, (tenant, name, m)) in rows.chain(total).enumerate() {
        let row = 2 + n as u32;
        let timely = tenant.map_or(data.total_timeliness, |t| timeliness_of(data, t));
        sheet.write_string_with_format(row, 0, name, &f.center)?;
        for (c, v) in [m.inspections, m.communities_covered, m.achievements, m.findings].into_iter().enumerate() {
            sheet.write_number_with_format(row, 1 + c as u16, v as f64, &f.number)?;
        }
        sheet.write_number_with_format(row, 5, m.completion_rate.of as f64, &f.number)?;
        sheet.write_number_with_format(row, 6, m.completion_rate.done as f64, &f.number)?;
        for (c, p) in [(7u16, m.completion_rate.percent), (8, timely.percent)] {
            match p {
                Some(p) => sheet.write_number_with_format(row, c, p, &f.percent)?,
                None => sheet.write_string_with_format(row, c, "—", &f.center)?,
            };
        }
        sheet.write_number_with_format(row, 9, m.overdue as f64, &f.number)?;
        match m.average_score {
            Some(s) => sheet.write_number_with_format(row, 10, s, &f.percent.clone().set_num_format("0.00"))?,
            None => sheet.write_string_with_format(row, 10, "—", &f.center)?,
        };
        for (c, list) in
            [(11u16, &r.ranking_by_score), (12, &r.ranking_by_completion), (13, &data.ranking_by_timeliness)]
        {
            match tenant.and_then(|t| rank_of(list, t)) {
                Some(k) => sheet.write_number_with_format(row, c, f64::from(k), &f.number)?,
                None => sheet.write_string_with_format(row, c, "—", &f.center)?,
            };
        }
    }
    sheet.set_freeze_panes(2, 1)?;
    sheet.autofilter(1, 0, 1 + r.rows.len() as u32, last_col)?;

    let cats = workbook.add_worksheet();
    cats.set_name("问题类别")?;
    let cat_headers = [("问题类别", 16.0), ("发现问题", 10.0), ("未销号", 10.0), ("已销号", 10.0), ("超期", 10.0)];
    cats.merge_range(0, 0, 0, (cat_headers.len() - 1) as u16, &title, &f.title)?;
    cats.set_row_height(0, 32)?;
    for (c, (name, width)) in cat_headers.iter().enumerate() {
        cats.write_string_with_format(1, c as u16, *name, &f.header)?;
        cats.set_column_width(c as u16, *width)?;
    }
    for (n, c) in r.by_category.iter().enumerate() {
        let row = 2 + n as u32;
        cats.write_string_with_format(row, 0, &c.name, &f.center)?;
        for (k, v) in [c.findings, c.open, c.verified, c.overdue].into_iter().enumerate() {
            cats.write_number_with_format(row, 1 + k as u16, v as f64, &f.number)?;
        }
    }
    cats.set_freeze_panes(2, 0)?;
    Ok(workbook.save_to_buffer()?)
}
