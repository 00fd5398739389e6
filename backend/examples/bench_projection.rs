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
//!    so that its peak RSS (VmHWM) is the rebuild's own, and reports events/s. Interleaved with it,
//!    best of 3 each, two baselines on the same rows in the same run: the same rebuild reading whole
//!    envelopes (`read_all`, hash chain included: what it read before `read_for_fold`), and a raw
//!    scan of the rows it reads (rusqlite or tokio-postgres, pages of 5,000, borrowing every column,
//!    building nothing).
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
        if std::env::var("BENCH_MODE").as_deref() == Ok("rawcopy") {
            let started = Instant::now();
            let n = raw_copy_postgres(&db).await;
            println!("{n} {} {}", started.elapsed().as_secs_f64(), vm_hwm_kib());
            return;
        }
        if std::env::var("BENCH_MODE").as_deref() == Ok("raw") {
            let started = Instant::now();
            let n = if db.starts_with("postgres") { raw_scan_postgres(&db).await } else { raw_scan_sqlite(&db) };
            println!("{n} {} {}", started.elapsed().as_secs_f64(), vm_hwm_kib());
            return;
        }
        let opened = open_store(&location, Access::Read).await.expect("open store");
        let store = &*opened.store;
        let started = Instant::now();
        if std::env::var("BENCH_MODE").as_deref() == Ok("envelopes") {
            let whole = WholeEnvelopes(opened.store.clone());
            let model = projector::rebuild(&whole, |_| {}).await.expect("rebuild");
            println!("{} {} {}", model.position(), started.elapsed().as_secs_f64(), vm_hwm_kib());
            return;
        }
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

    // Full rebuild in a child process (its own peak memory), interleaved with the baselines.
    let exe = std::env::current_exe().expect("exe");
    let mut modes =
        vec![("rebuild", ""), ("rebuild reading whole envelopes (read_all)", "envelopes"), ("raw scan", "raw")];
    if pg.is_some() {
        modes.push(("raw scan through binary COPY", "rawcopy"));
    }
    let mut best: Vec<Option<(u64, f64, u64)>> = vec![None; modes.len()];
    for _ in 0..3 {
        for (i, (_, mode)) in modes.iter().enumerate() {
            let mut child = std::process::Command::new(&exe);
            child.args(["--child-rebuild", db.as_str()]);
            if mode.is_empty() {
                child.env_remove("BENCH_MODE");
            } else {
                child.env("BENCH_MODE", mode);
            }
            let out = child.output().expect("child");
            let text = String::from_utf8_lossy(&out.stdout);
            let mut parts = text.split_whitespace();
            let n: u64 = parts.next().and_then(|v| v.parse().ok()).expect("events");
            let secs: f64 = parts.next().and_then(|v| v.parse().ok()).expect("secs");
            let hwm: u64 = parts.next().and_then(|v| v.parse().ok()).expect("hwm");
            if best[i].is_none_or(|(_, s, _)| secs < s) {
                best[i] = Some((n, secs, hwm));
            }
        }
    }
    let rate = |i: usize| best[i].map_or(0.0, |(n, s, _)| n as f64 / s);
    for (i, (name, _)) in modes.iter().enumerate() {
        let (n, secs, hwm) = best[i].expect("runs");
        println!(
            "| {name} | {n} events | {:.0} events/s | {secs:.2} s | peak RSS {} MiB | rebuild ÷ this {:.2} |",
            rate(i),
            hwm / 1024,
            rate(0) / rate(i)
        );
    }

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
    let full_median = times[2];

    // The same views from per-tenant snapshots (issue 11, `ducha::snapshots`, what the API uses):
    // the first view folds the tenant whole and leaves snapshots behind; then views at 20 points
    // spread over the tenant's life, in scrambled order, each checked against the full fold.
    let snaps = ducha::snapshots::Snapshots::default();
    let started = Instant::now();
    ducha::snapshots::as_of(store, &snaps, head.last_position, &big).await.expect("as of");
    let cold = started.elapsed().as_secs_f64();
    let (count, held) = snaps.held();
    let mut warm = Vec::new();
    for i in [13u64, 2, 19, 7, 11, 5, 17, 3, 20, 9, 1, 15, 6, 18, 10, 4, 14, 8, 16, 12] {
        let at = head.last_position * i / 20;
        let started = Instant::now();
        let model = ducha::snapshots::as_of(store, &snaps, at, &big).await.expect("as of");
        warm.push(started.elapsed().as_secs_f64());
        if i % 5 == 0 {
            let full = projector::as_of(store, Upto::Position(at), Some(&big)).await.expect("as of");
            assert!(model == full, "a snapshot view differs from the full fold at {at}");
        }
    }
    warm.sort_by(f64::total_cmp);
    println!(
        "| as-of from snapshots, one tenant | first view {:.1} ms (leaves {count} snapshots, {held} events held) | 20 views: median {:.1} ms, max {:.1} ms | full fold ÷ snapshot view (median) {:.1}× |",
        cold * 1000.0,
        warm[10] * 1000.0,
        warm[19] * 1000.0,
        full_median / warm[10]
    );
}

/// The store as it was read before `read_for_fold`: every fold page through `read_all` /
/// `read_tenant`, whole envelopes with the hash chain (the trait's default `read_for_fold`).
struct WholeEnvelopes(std::sync::Arc<dyn EventStore>);

#[async_trait::async_trait]
impl EventStore for WholeEnvelopes {
    async fn append(&self, req: AppendRequest) -> Result<ducha::store::AppendOutcome, ducha::store::StoreError> {
        self.0.append(req).await
    }
    fn chain_hash(&self) -> ducha_events::chain::ChainHash {
        self.0.chain_hash()
    }
    async fn stream_version(&self, stream: &str) -> Result<u64, ducha::store::StoreError> {
        self.0.stream_version(stream).await
    }
    async fn read_stream(
        &self,
        stream: &str,
        after: u64,
        limit: usize,
        upto: Upto,
    ) -> Result<Vec<ducha_events::envelope::RecordedEvent>, ducha::store::StoreError> {
        self.0.read_stream(stream, after, limit, upto).await
    }
    async fn read_tenant(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: usize,
        upto: Upto,
    ) -> Result<Vec<ducha_events::envelope::RecordedEvent>, ducha::store::StoreError> {
        self.0.read_tenant(tenant, after, limit, upto).await
    }
    async fn read_all(
        &self,
        after: u64,
        limit: usize,
        upto: Upto,
    ) -> Result<Vec<ducha_events::envelope::RecordedEvent>, ducha::store::StoreError> {
        self.0.read_all(after, limit, upto).await
    }
    async fn head(&self) -> Result<u64, ducha::store::StoreError> {
        self.0.head().await
    }
    async fn position_at(&self, at: Timestamp) -> Result<u64, ducha::store::StoreError> {
        self.0.position_at(at).await
    }
    async fn tenants(&self) -> Result<Vec<ducha::store::TenantHead>, ducha::store::StoreError> {
        self.0.tenants().await
    }
    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.subscribe()
    }
    async fn save_checkpoint(&self, name: &str, position: u64, data: Vec<u8>) -> Result<(), ducha::store::StoreError> {
        self.0.save_checkpoint(name, position, data).await
    }
    async fn load_checkpoint(&self, name: &str) -> Result<Option<(u64, Vec<u8>)>, ducha::store::StoreError> {
        self.0.load_checkpoint(name).await
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

/// The columns a fold reads, for the raw scans.
const FOLD_COLUMNS: &str = "position, tenant, tenant_seq, event_id, stream, stream_version, event_type, \
     schema_version, occurred_at, actor_user, actor_role, correlation_id, causation_id, payload";

/// Every row the rebuild reads, pages of 5,000 on one connection, each column borrowed and its
/// length summed (so nothing is optimised away); nothing is built.
fn raw_scan_sqlite(dir: &str) -> u64 {
    let conn = rusqlite::Connection::open_with_flags(
        std::path::Path::new(dir).join("ducha.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open");
    let mut stmt = conn
        .prepare(&format!("SELECT {FOLD_COLUMNS} FROM events WHERE position > ?1 ORDER BY position LIMIT 5000"))
        .expect("prepare");
    let (mut n, mut after, mut bytes) = (0u64, 0i64, 0usize);
    loop {
        let mut rows = stmt.query([after]).expect("query");
        let mut page = 0;
        while let Some(row) = rows.next().expect("row") {
            after = row.get(0).expect("position");
            for i in 1..14 {
                bytes += match row.get_ref(i).expect("column") {
                    rusqlite::types::ValueRef::Text(t) => t.len(),
                    _ => 1,
                };
            }
            page += 1;
        }
        if page == 0 {
            break;
        }
        n += page;
    }
    std::hint::black_box(bytes);
    n
}

async fn raw_scan_postgres(url: &str) -> u64 {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(conn);
    let stmt = client
        .prepare(&format!("SELECT {FOLD_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT 5000"))
        .await
        .expect("prepare");
    let (mut n, mut after, mut bytes) = (0u64, 0i64, 0usize);
    loop {
        let rows = client.query(&stmt, &[&after]).await.expect("query");
        let Some(last) = rows.last() else { break };
        after = last.get(0);
        for row in &rows {
            bytes += [1usize, 3, 4, 6, 8, 9, 10, 11, 13].iter().map(|&i| row.get::<_, &str>(i).len()).sum::<usize>();
            bytes += row.get::<_, Option<&str>>(12).map_or(0, str::len);
        }
        n += rows.len() as u64;
    }
    std::hint::black_box(bytes);
    n
}

/// The same rows as [`raw_scan_postgres`] through `COPY (SELECT …) TO STDOUT (FORMAT binary)`.
async fn raw_copy_postgres(url: &str) -> u64 {
    use futures_util::TryStreamExt;
    use tokio_postgres::types::Type;
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(conn);
    let types = [
        Type::INT8,
        Type::TEXT,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::TEXT,
        Type::INT4,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
    ];
    let (mut n, mut after, mut bytes) = (0u64, 0i64, 0usize);
    loop {
        let sql = format!(
            "COPY (SELECT {FOLD_COLUMNS} FROM events WHERE position > {after} ORDER BY position LIMIT 5000) \
             TO STDOUT (FORMAT binary)"
        );
        let stream = client.copy_out(sql.as_str()).await.expect("copy");
        let mut rows = std::pin::pin!(tokio_postgres::binary_copy::BinaryCopyOutStream::new(stream, &types));
        let mut page = 0;
        while let Some(row) = rows.try_next().await.expect("row") {
            after = row.get(0);
            bytes += [1usize, 3, 4, 6, 8, 9, 10, 11, 13].iter().map(|&i| row.get::<&str>(i).len()).sum::<usize>();
            bytes += row.get::<Option<&str>>(12).map_or(0, str::len);
            page += 1;
        }
        if page == 0 {
            break;
        }
        n += page;
    }
    std::hint::black_box(bytes);
    n
}
