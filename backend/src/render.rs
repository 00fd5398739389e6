//! Text tables for the command line (CJK-aware widths come from comfy-table).

use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use ducha_events::projection::{DistrictRollup, Rate, RectificationStatus, RollupMetrics};

fn pct(r: &Rate) -> String {
    match r.percent {
        Some(p) => format!("{p:.1}%（{}/{}）", r.done, r.of),
        None => "—".to_owned(),
    }
}

fn status(m: &RollupMetrics, s: RectificationStatus) -> u64 {
    m.rectifications_by_status.iter().filter(|c| c.status == s).map(|c| c.count).sum()
}

fn num(n: u64) -> Cell {
    Cell::new(n).set_alignment(CellAlignment::Right)
}

fn metrics_row(name: &str, m: &RollupMetrics) -> Vec<Cell> {
    let open = status(m, RectificationStatus::Assigned)
        + status(m, RectificationStatus::InProgress)
        + status(m, RectificationStatus::Submitted)
        + status(m, RectificationStatus::Returned);
    vec![
        Cell::new(name),
        num(m.inspections),
        num(m.communities_covered),
        num(m.achievements),
        num(m.findings),
        num(status(m, RectificationStatus::Unassigned)),
        num(open),
        num(status(m, RectificationStatus::Verified)),
        num(status(m, RectificationStatus::Dismissed)),
        Cell::new(pct(&m.completion_rate)).set_alignment(CellAlignment::Right),
        num(m.overdue),
        Cell::new(m.average_score.map(|s| format!("{s:.2}")).unwrap_or_else(|| "—".to_owned()))
            .set_alignment(CellAlignment::Right),
    ]
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(header.iter().map(Cell::new));
    t
}

/// The district roll-up as text: per sub-district with totals, then by category, year and month.
pub fn rollup_table(r: &DistrictRollup) -> String {
    let year = r.year.map(|y| format!("{y}年度")).unwrap_or_else(|| "全部年度".to_owned());
    let mut out = format!("{}意识形态工作责任制督查汇总（{year}，统计日 {}）\n", r.district_name, r.today);
    let mut t = table(&[
        "街道",
        "督查",
        "覆盖社区",
        "工作成效",
        "问题",
        "未交办",
        "整改中",
        "已销号",
        "已撤销",
        "完成率",
        "超期",
        "平均得分",
    ]);
    for row in &r.rows {
        t.add_row(metrics_row(&row.name, &row.metrics));
    }
    t.add_row(metrics_row("合计", &r.totals));
    out.push_str(&format!("{t}\n"));

    if !r.by_category.is_empty() {
        let mut t = table(&["问题类别", "问题", "未销号", "已销号", "超期"]);
        for c in &r.by_category {
            t.add_row(vec![Cell::new(&c.name), num(c.findings), num(c.open), num(c.verified), num(c.overdue)]);
        }
        out.push_str(&format!("按问题类别\n{t}\n"));
    }
    if !r.by_year.is_empty() {
        let mut t = table(&["年度", "督查", "问题", "已销号", "超期", "完成率"]);
        for y in &r.by_year {
            t.add_row(vec![
                Cell::new(y.year),
                num(y.inspections),
                num(y.findings),
                num(y.verified),
                num(y.overdue),
                Cell::new(pct(&y.completion_rate)),
            ]);
        }
        out.push_str(&format!("按年度\n{t}\n"));
    }
    if !r.by_month.is_empty() {
        let mut t = table(&["月份", "发现问题", "整改销号"]);
        for m in &r.by_month {
            t.add_row(vec![Cell::new(&m.month), num(m.findings_recorded), num(m.rectifications_verified)]);
        }
        out.push_str(&format!("按月份\n{t}\n"));
    }
    out
}
