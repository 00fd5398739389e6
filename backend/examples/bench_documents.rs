//! Document benchmarks: the 督查报告 of an inspection with 500 findings (DOCX) and the 整改台账 of
//! 10,000 findings (XLSX), timed and with peak memory.
//!
//! `cargo run --release -p ducha --example bench_documents -- [--findings N] [--ledger N]`
//!
//! The read model is folded in memory from generated events (one tenant; inspections of `--findings`
//! findings each, `--ledger` findings in all, every one with a rectification, progress and evidence,
//! descriptions and measures of realistic length). Folding is not what is measured. Each measurement
//! runs in a child process so that its peak RSS (VmHWM) is its own; the figure printed is the peak of
//! the whole child and, in brackets, how much generation added on top of the folded model.

// The same allocator as the `ducha` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use chrono::NaiveDate;
use ducha::documents::{self, ledger, report};
use ducha_events::authz::Role;
use ducha_events::envelope::{ActorRef, RecordedEvent};
use ducha_events::event::*;
use ducha_events::ids::*;
use ducha_events::projection::{LedgerFilter, ReadModel, WarningPolicy};
use std::time::Instant;

fn id<T: TryFrom<String>>(s: String) -> T {
    T::try_from(s).unwrap_or_else(|_| panic!("bad id"))
}

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// Folds a tenant with `total` findings in inspections of `per_inspection`.
fn model(per_inspection: usize, total: usize) -> ReadModel {
    let mut m = ReadModel::new();
    let mut position = 0u64;
    let mut push = |tenant: &str, stream: String, event: Event| {
        position += 1;
        let envelope = RecordedEvent {
            position,
            tenant_seq: position,
            event_id: format!("ev-{position}"),
            tenant: if tenant == "_platform" { TenantId::platform() } else { id(tenant.to_owned()) },
            stream,
            stream_version: 1,
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            occurred_at: "2024-03-01T01:00:00.000000Z".to_owned(),
            actor: ActorRef { user_id: id("admin".to_owned()), role: Role::SubdistrictAdmin },
            correlation_id: "c".to_owned(),
            causation_id: None,
            payload: String::new(),
            prev_hash: String::new(),
            hash: String::new(),
        };
        m.apply(&envelope, &event);
    };
    let t = "bench";
    push(
        "_platform",
        "_platform/district-d1".into(),
        DistrictCreated { district_id: id("d1".into()), name: "XX区".into() }.into(),
    );
    push(
        t,
        format!("{t}/tenant"),
        TenantCreated {
            tenant_id: id(t.into()),
            district_id: id("d1".into()),
            name: "XX街道".into(),
            methods: InspectionMethod::builtin_terms(),
            categories: vec![],
        }
        .into(),
    );
    for c in 0..10 {
        push(
            t,
            format!("{t}/tenant"),
            CommunityAdded { community_id: id(format!("c{c}")), name: format!("第{c}社区") }.into(),
        );
    }
    for (code, name) in [
        ("theory", "理论学习"),
        ("self-check", "督查自查"),
        ("duty", "主体责任"),
        ("opinion", "舆情研判"),
        ("staff", "队伍建设"),
    ] {
        push(t, format!("{t}/tenant"), FindingCategoryAdded { code: code.into(), name: name.into() }.into());
    }
    let description = "督查发现，有些社区对政治理论学习的重要性认识不足，理论联系实际、指导实践不够，在开展政治理论学习时，没有认真联系实际学，大多泛泛而谈，存在走过场的现象。".repeat(2);
    let measure = "结合学习宣传贯彻党的创新理论，持续做好学习平台的推广使用，进一步加强新时代文明实践站等平台建设，确保整改落实到位。".repeat(2);
    let categories = ["theory", "self-check", "duty", "opinion", "staff"];
    let inspections = total.div_ceil(per_inspection.max(1));
    let mut n = 0;
    for i in 0..inspections {
        let is = format!("{t}/inspection-i{i}");
        push(
            t,
            is.clone(),
            InspectionPlanned {
                inspection_id: id(format!("i{i}")),
                year: 2023,
                title: format!("对下级社区督查2023年度意识形态工作情况（第{i}批）"),
                subject: "意识形态工作".into(),
                communities: (0..10).map(|c| id(format!("c{c}"))).collect(),
                team: vec![],
                methods: vec![InspectionMethod::new("meeting"), InspectionMethod::new("document_review")],
                checklist_id: None,
                planned_start: date(2023, 11, 1),
                planned_end: date(2023, 11, 30),
            }
            .into(),
        );
        push(t, is.clone(), InspectionStarted { started_on: date(2023, 11, 6) }.into());
        for a in 0..10 {
            push(
                t,
                is.clone(),
                AchievementRecorded {
                    achievement_id: id(format!("a{a}")),
                    category: format!("工作成效第{a}项"),
                    text: description.clone(),
                    figures: vec![Figure { label: "理论宣讲会".into(), value: 10, unit: "场".into() }],
                    community_id: None,
                }
                .into(),
            );
        }
        for k in 0..per_inspection.min(total - n) {
            let f = format!("f{n}");
            push(
                t,
                is.clone(),
                FindingRecorded {
                    finding_id: id(f.clone()),
                    community_id: Some(id(format!("c{}", k % 10))),
                    category: categories[k % 5].into(),
                    title: format!("第{k}个问题有待整改"),
                    description: description.clone(),
                    severity: Severity::General,
                }
                .into(),
            );
            let fs = format!("{t}/finding-{f}");
            push(
                t,
                fs.clone(),
                RectificationAssigned {
                    inspection_id: id(format!("i{i}")),
                    title: format!("整改措施{k}"),
                    measure: measure.clone(),
                    responsible_unit: "街道宣传办".into(),
                    leader: "张主任".into(),
                    person: "刘干事".into(),
                    deadline: date(2024, 1 + (k % 12) as u32, 28),
                }
                .into(),
            );
            push(
                t,
                fs,
                ProgressReported {
                    text: "已制定整改方案，正在推进。".into(),
                    evidence: vec![EvidenceRef {
                        sha256: "0".repeat(64),
                        filename: "整改方案.pdf".into(),
                        content_type: "application/pdf".into(),
                        size: 1024,
                    }],
                }
                .into(),
            );
            n += 1;
        }
        push(t, is, InspectionConcluded { assessment: "总体良好".into(), summary: "各社区比较重视。".into() }.into());
    }
    m
}

struct Args {
    findings: usize,
    ledger: usize,
    child: Option<String>,
}

fn args() -> Args {
    let mut a = Args { findings: 500, ledger: 10_000, child: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        let n = || value.replace('_', "").parse::<usize>().unwrap_or_else(|_| panic!("{flag} needs a number"));
        match flag.as_str() {
            "--findings" => a.findings = n(),
            "--ledger" => a.ledger = n(),
            "--child" => a.child = Some(value),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// Runs one measurement (in a child): prints `seconds bytes peak_kib model_kib`.
fn child(what: &str, a: &Args) {
    let tenant: TenantId = id("bench".to_owned());
    let total = if what == "report" { a.findings } else { a.ledger };
    let m = model(a.findings, total);
    let before = vm_hwm_kib();
    let mut best = f64::MAX;
    let mut size = 0;
    for _ in 0..3 {
        let started = Instant::now();
        let bytes = match what {
            "report" => {
                let detail = m.inspection_detail(&tenant, &id("i0".to_owned())).expect("inspection");
                assert_eq!(detail.findings.len(), a.findings);
                documents::render(&report::build("XX街道", &detail), DocumentFormat::Docx).expect("docx")
            }
            _ => ledger::xlsx(&m, &tenant, date(2024, 6, 1), &WarningPolicy::default(), &LedgerFilter::default())
                .expect("xlsx")
                .expect("tenant"),
        };
        best = best.min(started.elapsed().as_secs_f64());
        size = bytes.len();
    }
    println!("{best} {size} {} {before}", vm_hwm_kib());
}

fn main() {
    let a = args();
    if let Some(what) = &a.child {
        child(what, &a);
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    println!("| document | size | time (best of 3) | target | peak RSS (generation's share) |");
    println!("| --- | --- | --- | --- | --- |");
    for (what, label, target) in [
        ("report", format!("督查报告 DOCX, {} findings", a.findings), 1.0),
        ("ledger", format!("整改台账 XLSX, {} rows", a.ledger), 2.0),
    ] {
        let out = std::process::Command::new(&exe)
            .args(["--findings", &a.findings.to_string(), "--ledger", &a.ledger.to_string(), "--child", what])
            .output()
            .expect("run the child");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let line = String::from_utf8_lossy(&out.stdout);
        let v: Vec<f64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        let (secs, bytes, peak, model) = (v[0], v[1], v[2], v[3]);
        println!(
            "| {label} | {:.0} KiB | {:.3} s | ≤ {target} s {} | {:.0} MiB (+{:.0} MiB) |",
            bytes / 1024.0,
            secs,
            if secs <= target { "✓" } else { "✗" },
            peak / 1024.0,
            (peak - model).max(0.0) / 1024.0
        );
    }
}
