//! Our own SVG charts, rendered as markup by pure functions (so they are tested on the host and
//! need no charting library). Every text is escaped; every bar carries a `<title>` tooltip.

use std::fmt::Write;

/// One bar: its label, its value, and the tooltip shown on hover.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub tooltip: String,
}

/// A linear axis from 0 to a "nice" maximum with evenly spaced ticks (steps of 1, 2 or 5 × 10ⁿ).
#[derive(Debug, Clone, PartialEq)]
pub struct Scale {
    pub max: f64,
    pub ticks: Vec<f64>,
}

impl Scale {
    /// An axis that holds `max` with about `ticks` intervals. Counts get integer steps.
    pub fn nice(max: f64, ticks: usize) -> Scale {
        let max = if max.is_finite() && max > 0.0 { max } else { 1.0 };
        let raw = max / ticks.max(1) as f64;
        let magnitude = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(raw);
        let step = if max >= 1.0 { step.max(1.0) } else { step };
        let n = (max / step).ceil().max(1.0) as usize;
        Scale { max: step * n as f64, ticks: (0..=n).map(|i| step * i as f64).collect() }
    }

    /// Where `value` falls on a range of `length` pixels (clamped to the axis).
    pub fn position(&self, value: f64, length: f64) -> f64 {
        if self.max <= 0.0 { 0.0 } else { (value.clamp(0.0, self.max) / self.max) * length }
    }
}

/// `&`, `<`, `>`, `"` and `'` escaped for text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A label cut to `max` characters (with …), so long category names do not run into the bars.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_owned() } else { s.chars().take(max.saturating_sub(1)).chain(['…']).collect() }
}

/// A number as a chart shows it: integers without decimals, others with one.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.1}") }
}

/// The viewBox width: about the width a chart gets on the dashboard at 1366×768 (a column of the
/// chart grid), so its 14-unit text shows at 12 px or more there (checked in a browser test).
const WIDTH: f64 = 420.0;
const LABEL_WIDTH: f64 = 132.0;
const VALUE_WIDTH: f64 = 40.0;
const ROW: f64 = 30.0;
const TOP: f64 = 24.0;

/// A horizontal bar chart (labels on the left, so Chinese names stay readable on a phone), with a
/// top axis, grid lines, a value after each bar and a `<title>` tooltip per bar. `title` is the
/// chart's accessible name. It scales to its container's width (`viewBox`, no fixed size).
pub fn bar_chart(title: &str, bars: &[Bar]) -> String {
    let scale = Scale::nice(bars.iter().map(|b| b.value).fold(0.0, f64::max), 5);
    let plot = WIDTH - LABEL_WIDTH - VALUE_WIDTH;
    let height = TOP + ROW * bars.len().max(1) as f64 + 8.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = escape(title)
    );
    for tick in &scale.ticks {
        let x = LABEL_WIDTH + scale.position(*tick, plot);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{x:.1}" y1="{y1}" x2="{x:.1}" y2="{y2}"/><text class="tick" x="{x:.1}" y="{ty}" text-anchor="middle">{v}</text>"#,
            y1 = TOP - 4.0,
            y2 = height - 8.0,
            ty = TOP - 8.0,
            v = number(*tick)
        );
    }
    for (i, bar) in bars.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let w = scale.position(bar.value, plot);
        let _ = write!(
            svg,
            r#"<g class="bar"><title>{tip}</title><text class="label" x="{lx}" y="{ly:.1}" text-anchor="end">{label}</text><rect x="{LABEL_WIDTH}" y="{ry:.1}" width="{w:.1}" height="{rh}" rx="2"/><text class="value" x="{vx:.1}" y="{ly:.1}">{v}</text></g>"#,
            tip = escape(&bar.tooltip),
            lx = LABEL_WIDTH - 8.0,
            ly = y + ROW / 2.0 + 5.0,
            label = escape(&truncate(&bar.label, 8)),
            ry = y + 6.0,
            rh = ROW - 12.0,
            vx = LABEL_WIDTH + w + 6.0,
            v = number(bar.value)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The 街道首页's monthly trend: one bar per month (`M月`), new findings recorded in it.
pub fn monthly_bars(months: &[ducha_events::projection::MonthTrend]) -> Vec<Bar> {
    months
        .iter()
        .map(|m| {
            let label = m
                .month
                .split_once('-')
                .and_then(|(_, mm)| mm.parse::<u32>().ok())
                .map_or_else(|| m.month.clone(), |mm| format!("{mm}月"));
            Bar {
                label,
                value: m.findings_recorded as f64,
                tooltip: format!(
                    "{}：新发现问题 {} 个，销号 {} 项",
                    m.month, m.findings_recorded, m.rectifications_verified
                ),
            }
        })
        .collect()
}

/// 各社区整改进度: per community, the share of its findings verified (销号), in percent; a
/// community without findings shows 0 with a tooltip saying so.
pub fn community_progress_bars(cards: &[ducha_events::projection::CommunityScorecard]) -> Vec<Bar> {
    cards
        .iter()
        .map(|c| {
            let pct =
                if c.findings == 0 { 0.0 } else { (c.verified as f64 * 1000.0 / c.findings as f64).round() / 10.0 };
            let tooltip = if c.findings == 0 {
                format!("{}：没有问题", c.community.name)
            } else {
                format!(
                    "{}：已销号 {}/{}（{pct:.1}%），未销号 {}，逾期 {}",
                    c.community.name, c.verified, c.findings, c.open, c.overdue
                )
            };
            Bar { label: c.community.name.clone(), value: pct, tooltip }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_end_on_a_nice_number_with_integer_steps_for_counts() {
        assert_eq!(Scale::nice(7.0, 5), Scale { max: 8.0, ticks: vec![0.0, 2.0, 4.0, 6.0, 8.0] });
        assert_eq!(Scale::nice(3.0, 5), Scale { max: 3.0, ticks: vec![0.0, 1.0, 2.0, 3.0] });
        assert_eq!(Scale::nice(100.0, 5).max, 100.0);
        assert_eq!(Scale::nice(101.0, 5), Scale { max: 150.0, ticks: vec![0.0, 50.0, 100.0, 150.0] });
        assert_eq!(Scale::nice(0.0, 5), Scale { max: 1.0, ticks: vec![0.0, 1.0] });
        assert_eq!(Scale::nice(f64::NAN, 5).max, 1.0);
        let s = Scale::nice(8.0, 4);
        assert_eq!(s.position(4.0, 200.0), 100.0);
        assert_eq!(s.position(-1.0, 200.0), 0.0);
        assert_eq!(s.position(99.0, 200.0), 200.0);
    }

    #[test]
    fn labels_are_escaped_and_cut() {
        assert_eq!(escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(truncate("理论学习", 9), "理论学习");
        assert_eq!(truncate("舆情研判和风险预警机制建设情况", 9), "舆情研判和风险预…");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(2.5), "2.5");
    }

    #[test]
    fn a_bar_chart_has_a_bar_a_label_and_a_tooltip_per_value() {
        let bars = vec![
            Bar { label: "理论学习".into(), value: 2.0, tooltip: "理论学习：2 个问题".into() },
            Bar { label: "<script>".into(), value: 0.0, tooltip: "x".into() },
        ];
        let svg = bar_chart("问题类别分布", &bars);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains(r#"aria-label="问题类别分布""#));
        assert_eq!(svg.matches("<rect").count(), 2);
        assert_eq!(svg.matches("<title>").count(), 3);
        assert!(svg.contains("<title>理论学习：2 个问题</title>"));
        assert!(svg.contains(">理论学习</text>"));
        assert!(svg.contains("&lt;script&gt;") && !svg.contains("<script>"));
        // The largest bar spans the plot: 2 on an axis to 2.
        assert!(svg.contains(r#"width="248.0""#), "{svg}");
        assert!(svg.contains(r#"width="0.0""#));
    }

    #[test]
    fn an_empty_chart_is_still_a_valid_svg() {
        let svg = bar_chart("空", &[]);
        assert!(svg.contains("<title>空</title>") && !svg.contains("<rect"));
    }

    #[test]
    fn monthly_bars_are_labelled_by_month_in_chinese() {
        let m = |month: &str, f, v| ducha_events::projection::MonthTrend {
            month: month.into(),
            findings_recorded: f,
            rectifications_verified: v,
        };
        let bars = monthly_bars(&[m("2023-11", 5, 0), m("2023-12", 0, 1)]);
        assert_eq!(bars.iter().map(|b| b.label.as_str()).collect::<Vec<_>>(), ["11月", "12月"]);
        assert_eq!(bars[0].value, 5.0);
        assert!(bars[1].tooltip.contains("销号 1 项"), "{}", bars[1].tooltip);
    }

    #[test]
    fn community_progress_is_the_verified_share() {
        let json = |name: &str, findings: u64, verified: u64| {
            serde_json::from_value::<ducha_events::projection::CommunityScorecard>(serde_json::json!({
                "community": {"community_id": null, "name": name},
                "inspections": 1, "latest_score": null, "latest_max": null, "average_score": null,
                "findings": findings, "open": findings - verified, "overdue": 0, "verified": verified,
                "self_inspections_submitted": 0
            }))
            .expect("a scorecard")
        };
        let bars = community_progress_bars(&[json("东风社区", 3, 1), json("红旗社区", 0, 0)]);
        assert_eq!(bars[0].value, 33.3);
        assert!(bars[0].tooltip.contains("1/3"), "{}", bars[0].tooltip);
        assert_eq!(bars[1].value, 0.0);
        assert!(bars[1].tooltip.contains("没有问题"));
    }
}
