//! The rebuild budget (≥ 1M events/s including decoding, ≤ 300 MB for 1M events), measured on a
//! synthetic log of realistic shape. Ignored by default; run optimised, alone on the machine:
//! `cargo test --release -p ducha-events projection::bench -- --ignored --nocapture`
//! (`DUCHA_BENCH_STRICT=1` makes a missed budget fail).

use super::ReadModel;
use super::testkit::*;
use crate::envelope::RecordedEvent;
use crate::event::*;
use std::time::{Duration, Instant};

/// Events for finding `n` of a tenant: recorded, assigned, two progress reports (one with
/// evidence), a reminder, submitted, verified — about the life of a real 整改.
fn finding_events(t: &str, n: usize, out: &mut Vec<(RecordedEvent, Event)>) {
    let id = format!("f{n}");
    let fs = format!("{t}/finding-{id}");
    let is = format!("{t}/inspection-i{}", n / 50);
    let text = "个别社区舆情分析研判机制不健全，平时对各级新闻媒体的舆情动态了解不够深入，重大决策及项目的舆情风险评估制度不健全。";
    if n.is_multiple_of(50) {
        out.push(ev(
            t,
            &is,
            "2023-11-01T02:00:00.000000Z",
            InspectionPlanned {
                inspection_id: iid(&format!("i{}", n / 50)),
                year: 2023,
                title: "对下级社区督查2023年度意识形态工作情况".into(),
                subject: "意识形态工作".into(),
                communities: COMMUNITIES.iter().map(|(c, _)| cid(c)).collect(),
                team: vec![TeamMember { user_id: uid("insp1"), leader: true }],
                methods: vec![InspectionMethod::new("meeting")],
                checklist_id: None,
                planned_start: date("2023-11-20"),
                planned_end: date("2023-11-30"),
            },
        ));
    }
    out.push(ev(
        t,
        &is,
        "2023-11-24T02:00:00.000000Z",
        FindingRecorded {
            finding_id: fid(&id),
            community_id: Some(cid(COMMUNITIES[n % 6].0)),
            category: CATEGORIES[n % 5].0.into(),
            title: "舆情分析研判预警工作不够充分".into(),
            description: text.into(),
            severity: Severity::General,
        },
    ));
    out.push(ev(
        t,
        &fs,
        "2023-12-05T02:00:00.000000Z",
        RectificationAssigned {
            inspection_id: iid(&format!("i{}", n / 50)),
            title: "加强舆情研判".into(),
            measure: "健全舆情分析研判机制，建立重大决策舆情风险评估制度，每月开展一次舆情研判。".into(),
            responsible_unit: "街道党建办".into(),
            leader: "街道党工委副书记".into(),
            person: "宣传委员".into(),
            deadline: date("2024-06-30"),
        },
    ));
    out.push(ev(
        t,
        &fs,
        "2024-01-10T02:00:00.000000Z",
        ProgressReported { text: "已制定研判制度，开展研判2次。".into(), evidence: vec![] },
    ));
    let evidence = EvidenceRef {
        sha256: "ab".repeat(32),
        filename: "舆情研判记录.pdf".into(),
        content_type: "application/pdf".into(),
        size: 204_800,
    };
    out.push(ev(
        t,
        &fs,
        "2024-02-10T02:00:00.000000Z",
        ProgressReported { text: "已完成整改。".into(), evidence: vec![evidence] },
    ));
    out.push(ev(t, &fs, "2024-02-11T02:00:00.000000Z", ReminderIssued { message: "请按期提交".into() }));
    out.push(ev(t, &fs, "2024-03-01T02:00:00.000000Z", RectificationSubmitted { summary: "整改完成".into() }));
    if !n.is_multiple_of(3) {
        out.push(ev(t, &fs, "2024-03-20T02:00:00.000000Z", RectificationVerified { comment: "同意销号".into() }));
    }
}

fn rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Folds about `target` events chunk by chunk; returns the model, the time spent decoding and
/// folding, the event count, payload bytes and findings.
fn run(target: u64, tenants: usize) -> (ReadModel, Duration, Duration, u64, usize, usize) {
    let mut model = ReadModel::new();
    let (mut position, mut applied, mut bytes) = (0u64, 0u64, 0usize);
    let (mut decoding, mut folding) = (Duration::ZERO, Duration::ZERO);
    let mut n = 0;
    while applied < target {
        // Generate a chunk (not timed), then decode and fold it (timed), as the runner would.
        let mut chunk = Vec::new();
        for _ in 0..1000 {
            finding_events(&format!("t{}", n % tenants), n / tenants, &mut chunk);
            n += 1;
        }
        for (e, _) in &mut chunk {
            position += 1;
            e.position = position;
            e.occurred_at = crate::time::format(&crate::time::parse(&e.occurred_at).unwrap());
            bytes += e.payload.len();
        }
        let start = Instant::now();
        let decoded: Vec<Event> = chunk.iter().map(|(e, _)| e.decode().unwrap()).collect();
        let mid = Instant::now();
        for ((e, _), event) in chunk.iter().zip(&decoded) {
            model.apply(e, event);
        }
        let end = Instant::now();
        decoding += mid - start;
        folding += end - mid;
        drop(decoded);
        applied += chunk.len() as u64;
    }
    (model, decoding, folding, applied, bytes, n)
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn rebuild_a_million_events() {
    let before = rss_kb();
    let (model, decoding, folding, applied, bytes, findings) = run(1_000_000, 100);
    let grown = rss_kb().zip(before).map(|(a, b)| a.saturating_sub(b) / 1024);
    let rate = |d: Duration, f: Duration| applied as f64 / (d + f).as_secs_f64();
    println!(
        "cold: {applied} events ({} MB of payload, {findings} findings): decode {decoding:?}, apply {folding:?}: \
         {:.0} events/s; read model ≈ {grown:?} MB RSS",
        bytes / 1_000_000,
        rate(decoding, folding)
    );
    drop(model);
    // Warm: the heap pages are already mapped, so the fold is not charged for first-touch page
    // faults (costly in a VM with nested paging).
    let (model, decoding, folding, ..) = run(1_000_000, 100);
    println!("warm: decode {decoding:?}, apply {folding:?}: {:.0} events/s", rate(decoding, folding));
    let d = model.dashboard(&tid("t0"), today(), &super::WarningPolicy::default());
    assert!(d.findings_total > 1000);
    if std::env::var_os("DUCHA_BENCH_STRICT").is_some() {
        let rate = rate(decoding, folding);
        assert!(rate >= 1_000_000.0, "{rate:.0} events/s");
        if let Some(mb) = grown {
            assert!(mb <= 300, "{mb} MB");
        }
    }
}
