//! Projection benchmarks on a log of real domain events.
//!
//! `cargo run --release -p ducha --example bench_projection -- [--events N] [--big-tenant N] [--dir D]
//! [--postgres ADMIN_URL]`
//!
//! With `--postgres` the log is generated into a fresh database on that server (created and dropped
//! by the benchmark) and rebuilt from there: the PostgreSQL rebuild figure.
//!
//! 1. Generates N events (default 1,000,000) over 100 tenants, one of which has `--big-tenant`
//!    events (default 100,000): tenants, communities, checklists, users, inspections with fieldwork,
//!    deductions, achievements and findings, and full rectification life-cycles. Written with
//!    synchronous=OFF (generation is not what is measured).
//! 2. Runs the full rebuild (`projector::rebuild`, the code `ducha replay` runs) in a child process,
//!    so that its peak RSS (VmHWM) is the rebuild's own, and reports events/s.
//! 3. Folds the big tenant "as of" its last position (`projector::as_of` with the tenant), best of 5.

// The same allocator as the `ducha` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use ducha::projector;
use ducha::store::location::open as open_store;
use ducha::store::sqlite::Synchronous;
use ducha::store::{Access, StoreLocation};
use ducha::store::{AppendRequest, EventStore, ExpectedVersion, Upto};
use ducha_events::authz::{Role, Scope};
use ducha_events::envelope::{ActorRef, NewEvent};
use ducha_events::event::*;
use ducha_events::ids::*;
use ducha_events::time::Timestamp;
use std::path::PathBuf;
use std::time::Instant;

#[path = "support/bench_db.rs"]
mod bench_db;
use bench_db::BenchDatabase;

struct Args {
    events: u64,
    big_tenant: u64,
    dir: Option<PathBuf>,
    child: Option<String>,
    postgres: Option<String>,
}

fn args() -> Args {
    let mut a = Args { events: 1_000_000, big_tenant: 100_000, dir: None, child: None, postgres: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        let n = || value.replace('_', "").parse::<u64>().unwrap_or_else(|_| panic!("{flag} needs a number"));
        match flag.as_str() {
            "--events" => a.events = n(),
            "--big-tenant" => a.big_tenant = n(),
            "--dir" => a.dir = Some(PathBuf::from(value)),
            "--child-rebuild" => a.child = Some(value),
            "--postgres" => a.postgres = Some(value),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

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

/// Builds the event log of one tenant until it has about `target` events: (stream, events).
fn tenant_log(t: &TenantId, district: &DistrictId, target: u64) -> Vec<(String, Vec<Event>)> {
    let mut out: Vec<(String, Vec<Event>)> = Vec::new();
    let mut n = 0u64;
    let communities: Vec<CommunityId> = (0..10).map(|c| id(format!("c{c:02}"))).collect();
    let mut tenant_events: Vec<Event> = vec![
        TenantCreated {
            tenant_id: t.clone(),
            district_id: district.clone(),
            name: format!("{t}街道"),
            methods: InspectionMethod::builtin_terms(),
            categories: vec![],
        }
        .into(),
    ];
    for (k, c) in communities.iter().enumerate() {
        tenant_events.push(CommunityAdded { community_id: c.clone(), name: format!("第{k}社区") }.into());
    }
    for (code, name) in [("theory", "理论学习"), ("responsibility", "主体责任"), ("opinion", "舆情研判")] {
        tenant_events.push(FindingCategoryAdded { code: code.into(), name: name.into() }.into());
    }
    let items = (1..=6)
        .map(|k| ChecklistItem {
            code: format!("A{k}"), title: format!("考核项目{k}"), max_points: Points::whole(15)
        })
        .collect();
    tenant_events.push(ChecklistDefined { checklist_id: id("cl".into()), title: "考核细则".into(), items }.into());
    let inspector: UserId = id(format!("{t}-inspector"));
    tenant_events.push(
        UserCreated {
            user_id: inspector.clone(), username: format!("{t}-inspector"), display_name: "督查员".into()
        }
        .into(),
    );
    tenant_events.push(
        RoleGranted {
            user_id: inspector.clone(),
            role: Role::Inspector,
            scope: Scope::Tenant { district_id: district.clone(), tenant_id: t.clone() },
        }
        .into(),
    );
    n += tenant_events.len() as u64;
    out.push((stream::tenant(t), tenant_events));
    let mut year = 2000;
    while n < target {
        year += 1;
        let i: InspectionId = id(format!("{year}"));
        let mut ev: Vec<Event> = vec![
            InspectionPlanned {
                inspection_id: i.clone(),
                year: 2000 + (year % 100),
                title: format!("{year}年度意识形态工作督查"),
                subject: "意识形态工作".into(),
                communities: communities.clone(),
                team: vec![TeamMember { user_id: inspector.clone(), leader: true }],
                methods: vec![InspectionMethod::new("meeting"), InspectionMethod::new("document_review")],
                checklist_id: Some(id("cl".into())),
                planned_start: chrono::NaiveDate::from_ymd_opt(2023, 11, 1).unwrap_or_default(),
                planned_end: chrono::NaiveDate::from_ymd_opt(2023, 11, 30).unwrap_or_default(),
            }
            .into(),
            InspectionStarted { started_on: chrono::NaiveDate::from_ymd_opt(2023, 11, 1).unwrap_or_default() }.into(),
        ];
        for c in &communities {
            for method in [InspectionMethod::new("meeting"), InspectionMethod::new("document_review")] {
                ev.push(
                    FieldworkRecorded {
                        community_id: c.clone(),
                        method,
                        held_on: chrono::NaiveDate::from_ymd_opt(2023, 11, 2).unwrap_or_default(),
                        participants: "社区书记、联络员".into(),
                        notes: "听取汇报，查阅学习记录和意识形态工作台账。".into(),
                    }
                    .into(),
                );
            }
            ev.push(
                DeductionRecorded {
                    community_id: c.clone(),
                    item_code: "A2".into(),
                    points: Points::from_hundredths(150),
                    reason: "台账不完整".into(),
                }
                .into(),
            );
        }
        ev.push(
            AchievementRecorded {
                achievement_id: id("a1".into()),
                category: "加强理论武装".into(),
                text: "开展理论宣讲会等10场。".into(),
                figures: vec![Figure { label: "理论宣讲会".into(), value: 10, unit: "场".into() }],
                community_id: None,
            }
            .into(),
        );
        let mut findings = Vec::new();
        for k in 0..50 {
            let f: FindingId = id(format!("{year}-f{k}"));
            ev.push(
                FindingRecorded {
                    finding_id: f.clone(),
                    community_id: Some(communities[k % communities.len()].clone()),
                    category: ["theory", "responsibility", "opinion"][k % 3].into(),
                    title: "理论学习走过场的情况仍有存在".into(),
                    description: "督查发现，有些社区对政治理论学习的重要性认识不足，理论联系实际、指导实践不够。"
                        .into(),
                    severity: Severity::General,
                }
                .into(),
            );
            findings.push(f);
        }
        ev.push(InspectionConcluded { assessment: "总体良好".into(), summary: "各社区比较重视。".into() }.into());
        n += ev.len() as u64;
        out.push((stream::inspection(t, &i), ev));
        for f in findings {
            let ev: Vec<Event> = vec![
                RectificationAssigned {
                    inspection_id: i.clone(),
                    title: "狠抓理论学习".into(),
                    measure: "制定学习计划，规范学习记录。".into(),
                    responsible_unit: "街道宣传办".into(),
                    leader: "张主任".into(),
                    person: "刘干事".into(),
                    deadline: chrono::NaiveDate::from_ymd_opt(2024, 3, 31).unwrap_or_default(),
                }
                .into(),
                ProgressReported { text: "已制定学习计划。".into(), evidence: vec![] }.into(),
                ProgressReported { text: "已完成第一季度学习。".into(), evidence: vec![] }.into(),
                RectificationSubmitted { summary: "整改完成。".into() }.into(),
                RectificationVerified { comment: "同意销号。".into() }.into(),
            ];
            n += ev.len() as u64;
            out.push((stream::finding(t, &f), ev));
        }
    }
    out
}

async fn generate(store: &dyn EventStore, events: u64, big: u64) -> u64 {
    let district: DistrictId = id("d1".into());
    let platform = TenantId::platform();
    let actor = ActorRef { user_id: id("gen".into()), role: Role::PlatformAdmin };
    let at: Timestamp = ducha_events::time::parse("2023-11-01T00:00:00Z").unwrap_or_default();
    let wrap = |events: Vec<Event>| -> Vec<NewEvent> {
        events
            .iter()
            .map(|e| NewEvent::from_event(e, uuid::Uuid::now_v7().to_string(), at, actor.clone(), "gen".into(), None))
            .collect()
    };
    let first = AppendRequest {
        tenant: platform.clone(),
        stream: stream::district(&district),
        expected: ExpectedVersion::NoStream,
        events: wrap(vec![DistrictCreated { district_id: district.clone(), name: "测试区".into() }.into()]),
        idempotency_key: None,
    };
    store.append(first).await.expect("append");
    let tenants = 100u64;
    let per_other = events.saturating_sub(big) / (tenants - 1);
    let mut written = 1;
    for k in 0..tenants {
        let t: TenantId = id(format!("t{k:03}"));
        let target = if k == 0 { big } else { per_other };
        let log = tenant_log(&t, &district, target);
        let reqs: Vec<AppendRequest> = log
            .into_iter()
            .map(|(s, ev)| {
                written += ev.len() as u64;
                AppendRequest {
                    tenant: t.clone(),
                    stream: s,
                    expected: ExpectedVersion::NoStream,
                    events: wrap(ev),
                    idempotency_key: None,
                }
            })
            .collect();
        for chunk in reqs.chunks(500) {
            // Sent together (in order): the store commits them as groups.
            for r in futures_util::future::join_all(chunk.iter().cloned().map(|r| store.append(r))).await {
                r.expect("append");
            }
        }
    }
    written
}

#[tokio::main]
async fn main() {
    let a = args();
    if let Some(db) = a.child {
        // Child: the measured rebuild, on a file or a database.
        let location = if db.starts_with("postgres") {
            StoreLocation::parse(&db, Synchronous::Full).expect("url")
        } else {
            StoreLocation::Sqlite { dir: PathBuf::from(&db), synchronous: Synchronous::Full }
        };
        let opened = open_store(&location, Access::Read).await.expect("open store");
        let store = &*opened.store;
        let started = Instant::now();
        if let Ok(mode) = std::env::var("BENCH_MODE") {
            // Diagnostics: how much of the rebuild is reading, decoding, folding.
            let mut n = 0u64;
            let mut after = 0;
            loop {
                let page = store.read_all(after, 5000, Upto::Head).await.expect("read");
                let Some(last) = page.last() else { break };
                after = last.position;
                for e in &page {
                    if mode == "decode" {
                        std::hint::black_box(e.decode().expect("decode"));
                    }
                    n += 1;
                }
            }
            println!("{n} {} {}", started.elapsed().as_secs_f64(), vm_hwm_kib());
            return;
        }
        let model = projector::rebuild(store, |_| {}).await.expect("rebuild");
        let secs = started.elapsed().as_secs_f64();
        println!("{} {secs} {}", model.position(), vm_hwm_kib());
        return;
    }
    let tmp;
    let dir = match a.dir {
        Some(d) => d,
        None => {
            tmp = tempfile::tempdir().expect("tempdir");
            tmp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir).expect("dir");
    let _ = std::fs::remove_file(dir.join("ducha.db"));
    // The database on a PostgreSQL server, dropped at the end.
    let pg = match &a.postgres {
        Some(admin) => Some(BenchDatabase::create(admin).await),
        None => None,
    };
    let location = match &pg {
        Some(db) => StoreLocation::parse(&db.url, Synchronous::Off).expect("url"),
        None => StoreLocation::Sqlite { dir: dir.clone(), synchronous: Synchronous::Off },
    };
    let opened = open_store(&location, Access::Write).await.expect("open store");
    let started = Instant::now();
    let written = generate(&*opened.store, a.events, a.big_tenant).await;
    println!(
        "generated {written} events into {} in {:.1} s (not a measured figure)",
        location.display(),
        started.elapsed().as_secs_f64()
    );
    opened.close().await;
    let db = match &pg {
        Some(p) => p.url.clone(),
        None => dir.display().to_string(),
    };

    // Full rebuild in a child process: its own peak memory.
    let exe = std::env::current_exe().expect("exe");
    let mut best: Option<(u64, f64, u64)> = None;
    for _ in 0..3 {
        let out = std::process::Command::new(&exe).args(["--child-rebuild", db.as_str()]).output().expect("child");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut parts = text.split_whitespace();
        let n: u64 = parts.next().and_then(|v| v.parse().ok()).expect("events");
        let secs: f64 = parts.next().and_then(|v| v.parse().ok()).expect("secs");
        let hwm: u64 = parts.next().and_then(|v| v.parse().ok()).expect("hwm");
        if best.is_none_or(|(_, s, _)| secs < s) {
            best = Some((n, secs, hwm));
        }
    }
    let (n, secs, hwm) = best.expect("runs");
    println!(
        "| full rebuild | {n} events | {:.0} events/s | {:.2} s | peak RSS {} MiB |",
        n as f64 / secs,
        secs,
        hwm / 1024
    );

    // As-of fold of the big tenant.
    let opened = open_store(&location, Access::Read).await.expect("open store");
    let store = &*opened.store;
    let big: TenantId = id("t000".into());
    let heads = store.tenants().await.expect("tenants");
    let head = heads.iter().find(|h| h.tenant == big).expect("big tenant");
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let model = projector::as_of(store, Upto::Position(head.last_position), Some(&big)).await.expect("as of");
        times.push(started.elapsed().as_secs_f64());
        assert!(model.position() > 0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "| as-of fold, one tenant | {} events | best {:.1} ms | median {:.1} ms |",
        head.events,
        times[0] * 1000.0,
        times[2] * 1000.0
    );
}
