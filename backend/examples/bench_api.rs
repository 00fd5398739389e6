//! REST API benchmark (issue 3): the real `ducha serve` (release) under `wrk` from a second process
//! on loopback, on the demo data scaled to 100 sub-districts × 1,000 findings.
//!
//! `cargo build --release -p ducha && cargo run --release -p ducha --example bench_api -- [--tenants 100]
//!  [--findings 1000] [--seconds 10] [--connections 64] [--dir D]` (needs `wrk`: `apt-get install wrk`)
//!
//! 1. Loads the demo (XX区 with xxjd, yyjd, zzjd and their users) with the real commands, then writes
//!    the rest directly with the store (synchronous=OFF; generation is not measured): more
//!    sub-districts in XX区 up to `--tenants`, each with `--findings` findings in inspections of 50
//!    (assigned, one progress report, open), and as many open findings in `xxjd`.
//! 2. Starts `target/release/ducha serve` on a free port and logs in as `admin` and `xx-admin`.
//! 3. Runs `wrk -t2 -c64 --latency` against `/healthz` (the trivial baseline), the `xxjd` dashboard,
//!    a ledger page, the district roll-up, and a command (a progress report on a random open finding
//!    of `xxjd`, POST with a body through a Lua script), and prints req/s, p50, p99 and the ratio to
//!    `/healthz` as a Markdown table for BENCHMARKS.md.
//!
//! With `--postgres ADMIN_URL` the data go into a fresh database on that server and `--replicas N`
//! servers share it (one signing key); wrk then runs once per replica at the same time, each with
//! its share of the connections, and the table sums their requests per second (p99: the worst).
//!
//! Scale (issue 11): on SQLite with one replica the server is started twice: first with no
//! read-model checkpoint (it folds the whole log), stopped with SIGTERM (which saves the
//! checkpoint), then from the checkpoint. Both starts print the time to `listening`, the resident
//! memory then and its peak; the end prints the memory after the load. `--tenants 1000 --findings
//! 3260` is about 10,000 events per sub-district, 10 M in all. `--skip-wrk` measures only the starts.
//! `--varied-texts` gives every finding its own texts (clauses of the sample report, 3–7 to a
//! description), as real ones are, instead of the same short sentences (which compress unlike any
//! real log). `--district-size N` puts N sub-districts in each district (XX区 keeps the demo's three
//! and gets N − 3 more; the rest go to districts of N created for them) where by default every
//! sub-district is in XX区: a real district (区) has about 5 to 30 sub-districts and towns, so the
//! roll-up of one district at 1,000 sub-districts on the deployment covers N of them.

// The same allocator as the `ducha` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use ducha::store::location::open as open_store;
use ducha::store::sqlite::Synchronous;
use ducha::store::{Access, AppendRequest, EventStore, ExpectedVersion, StoreLocation};
use ducha_events::authz::Role;
use ducha_events::envelope::{ActorRef, NewEvent};
use ducha_events::event::*;
use ducha_events::ids::*;
use ducha_events::time::Timestamp;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[path = "support/bench_db.rs"]
mod bench_db;

struct Args {
    tenants: u64,
    findings: u64,
    seconds: u64,
    connections: u64,
    dir: Option<PathBuf>,
    postgres: Option<String>,
    replicas: u64,
    skip_wrk: bool,
    varied_texts: bool,
    /// Sub-districts per district (0: all in XX区, as before).
    district_size: u64,
}

fn args() -> Args {
    let mut a = Args {
        tenants: 100,
        findings: 1000,
        seconds: 10,
        connections: 64,
        dir: None,
        postgres: None,
        replicas: 1,
        skip_wrk: false,
        varied_texts: false,
        district_size: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--skip-wrk" {
            a.skip_wrk = true;
            continue;
        }
        if flag == "--varied-texts" {
            a.varied_texts = true;
            continue;
        }
        let value = it.next().unwrap_or_default();
        let n = || value.replace('_', "").parse::<u64>().unwrap_or_else(|_| panic!("{flag} needs a number"));
        match flag.as_str() {
            "--tenants" => a.tenants = n(),
            "--findings" => a.findings = n(),
            "--seconds" => a.seconds = n(),
            "--connections" => a.connections = n(),
            "--dir" => a.dir = Some(PathBuf::from(value)),
            "--postgres" => a.postgres = Some(value),
            "--replicas" => a.replicas = n().max(1),
            "--district-size" => a.district_size = n(),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// Starts `ducha serve` on a free port (on `store_url`, else the SQLite data directory `dir`); the
/// process, its address and the seconds from spawn to its `listening` line.
fn start_server(
    bin: &Path,
    dir: &Path,
    log_dir: &Path,
    store_url: Option<&str>,
    secret: &Path,
) -> (std::process::Child, String, f64) {
    let spawned = std::time::Instant::now();
    let mut cmd = Command::new(bin);
    match store_url {
        Some(url) => cmd.args(["--store", url]).arg("--data-dir").arg(log_dir),
        None => cmd.arg("--data-dir").arg(dir),
    };
    let mut server = cmd
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DUCHA_LOG_LEVEL", "warn")
        .env("DUCHA_JWT_SECRET_FILE", secret)
        .stdout(Stdio::piped())
        // Warnings and errors (a checkpoint that could not be saved, say) to `server.log`.
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log_dir.join("server.log"))
                .map_or_else(|_| Stdio::null(), Stdio::from),
        )
        .spawn()
        .expect("start ducha serve");
    let mut out = server.stdout.take().expect("stdout");
    let mut seen = String::new();
    let addr = loop {
        let mut buf = [0u8; 256];
        let n = out.read(&mut buf).expect("read stdout");
        assert!(n > 0, "server exited: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        if let Some(rest) = seen.split("listening on http://").nth(1)
            && let Some(addr) = rest.split_whitespace().next()
            && rest.contains('\n')
        {
            break addr.to_owned();
        }
    };
    let secs = spawned.elapsed().as_secs_f64();
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    (server, addr, secs)
}

/// Resident memory and its peak (bytes) of a process.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

/// The size of the read-model checkpoints of a SQLite store: the files beside the database.
fn checkpoint_size(db: &Path) -> u64 {
    let mut folder = db.as_os_str().to_owned();
    folder.push(".checkpoints");
    std::fs::read_dir(folder).map(|d| d.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum()).unwrap_or(0)
}

/// The streams of one tenant: (stream name, events).
type Log = Vec<(String, Vec<Event>)>;

fn id<T: TryFrom<String>>(s: String) -> T {
    T::try_from(s).unwrap_or_else(|_| panic!("bad id"))
}

fn day(y: i32, m: u32, d: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// The streams of `findings` open findings of one tenant, in inspections of 50.
/// Clauses of the sample 督查报告, for `--varied-texts`.
const CLAUSES: &str = "有些社区对政治理论学习的重要性认识不足，理论联系实际、指导实践不够，在开展政治理论学习时，\
没有认真联系实际学，大多泛泛而谈，存在走过场的现象，部分社区对意识形态督查工作的重要性认识不足，没有进行认真自查，\
提交的自查报告质量不高，没有真实反映本部门落实意识形态主体责任情况，意识形态工作台账不够完善，多为不符合要求的内容，\
个别社区“重业务轻思想教育”问题比较突出，对理论学习尤其是对《中国共产党宣传工作条例》的落实不够全面，\
对意识形态工作重视不够，导致意识形态领域规范管理的难度加大，意识形态宣传工作停留在表面功夫，不能够持续走向深入，\
个别社区舆情分析研判机制不健全，平时对各级新闻媒体的舆情动态了解不够深入，重大决策及项目的舆情风险评估制度不健全，\
对可能引发群体性事件和社会动荡的言论，搜集、研判、处置不够及时，由于人员流动频率快，\
部分社区负责意识形态工作人员身兼数职，对本职工作思考不多、研究不深、汇报不够、履职不到位，\
结合学习宣传贯彻党的创新理论，积极推动党的创新理论通俗化大众化，持续做好“学习强国”学习平台的推广使用，\
进一步加强新时代文明实践站等平台建设，严格执行《党委（党组）意识形态工作责任制实施办法》，\
把意识形态工作纳入党组织工作、纪律检查、干部考核，严格落实“第一责任人”责任，重要工作要亲自部署，\
重要问题要亲自过问，重大事件要亲自处置，加强新时代文明实践站的建设和管理，健全规范运营的规章制度，\
已召开专题会议部署整改，完善学习记录，已制定学习计划并报街道备案，已补齐意识形态工作台账，\
已组织专题培训两次，已建立舆情研判周例会制度，已明确专人负责网络信息发布审核";

/// `n` to `m` clauses of [`CLAUSES`] picked by `seed` (a different text for each finding, of the
/// sample report's vocabulary and length), numbered so that no two are the same.
fn text(seed: u64, n: u64, m: u64, number: u64) -> String {
    let clauses: Vec<&str> = CLAUSES.split('，').collect();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let count = n + next() % (m - n + 1);
    let picked: Vec<&str> = (0..count).map(|_| clauses[(next() % clauses.len() as u64) as usize]).collect();
    format!("{}（第{number}项）。", picked.join("，"))
}

/// The texts of one finding: the bench's fixed short ones, or (`--varied-texts`) texts that differ.
struct Texts {
    title: String,
    description: String,
    measure: String,
    progress: String,
}

fn texts(varied: bool, seed: u64) -> Texts {
    if !varied {
        return Texts {
            title: "理论学习走过场的情况仍有存在".into(),
            description: "督查发现，有些社区对政治理论学习的重要性认识不足。".into(),
            measure: "制定学习计划，规范学习记录。".into(),
            progress: "已制定学习计划。".into(),
        };
    }
    Texts {
        title: text(seed, 1, 1, seed % 1000),
        description: text(seed ^ 1, 3, 7, seed),
        measure: text(seed ^ 2, 2, 5, seed),
        progress: text(seed ^ 3, 1, 3, seed),
    }
}

fn findings_log(t: &TenantId, communities: &[CommunityId], findings: u64, prefix: &str, varied: bool) -> Log {
    // Seeds differ between sub-districts as well as between findings.
    let base = t.as_str().bytes().fold(0u64, |h, b| h.wrapping_mul(131).wrapping_add(u64::from(b))) << 24;
    let mut out = Vec::new();
    let inspections = findings.div_ceil(50);
    for k in 0..inspections {
        let i: InspectionId = id(format!("{prefix}{k:03}"));
        let year = 2024 + (k % 3) as i32;
        let mut ev: Vec<Event> = vec![
            InspectionPlanned {
                inspection_id: i.clone(),
                year,
                title: format!("{year}年度意识形态工作督查（{k}）"),
                subject: "意识形态工作".into(),
                communities: communities.to_vec(),
                team: vec![],
                methods: vec![InspectionMethod::new("meeting"), InspectionMethod::new("document_review")],
                checklist_id: None,
                planned_start: day(year, 3, 1),
                planned_end: day(year, 3, 30),
            }
            .into(),
            InspectionStarted { started_on: day(year, 3, 1) }.into(),
        ];
        let mut fs = Vec::new();
        for n in 0..50.min(findings - k * 50) {
            let f: FindingId = id(format!("{prefix}{k:03}-f{n:02}"));
            let Texts { title, description, measure, progress } = texts(varied, base + k * 50 + n);
            ev.push(
                FindingRecorded {
                    finding_id: f.clone(),
                    community_id: Some(communities[n as usize % communities.len()].clone()),
                    category: ["theory", "responsibility", "opinion"][n as usize % 3].into(),
                    title,
                    description,
                    severity: Severity::General,
                }
                .into(),
            );
            fs.push((f, measure, progress));
        }
        ev.push(InspectionConcluded { assessment: "总体良好".into(), summary: "各社区比较重视。".into() }.into());
        out.push((stream::inspection(t, &i), ev));
        for (f, measure, progress) in fs {
            let ev: Vec<Event> = vec![
                RectificationAssigned {
                    inspection_id: i.clone(),
                    title: "狠抓理论学习".into(),
                    measure,
                    responsible_unit: "街道宣传办".into(),
                    leader: "张主任".into(),
                    person: "刘干事".into(),
                    deadline: day(2027, 3, 31),
                }
                .into(),
                ProgressReported { text: progress, evidence: vec![] }.into(),
            ];
            out.push((stream::finding(t, &f), ev));
        }
    }
    out
}

async fn scale(store: &dyn EventStore, a: &Args) -> u64 {
    let district: DistrictId = id("xxq".into());
    let actor = ActorRef { user_id: id("admin".into()), role: Role::PlatformAdmin };
    let at: Timestamp = ducha_events::time::parse("2025-01-01T00:00:00Z").unwrap_or_default();
    let wrap = |events: Vec<Event>| -> Vec<NewEvent> {
        events
            .iter()
            .map(|e| NewEvent::from_event(e, uuid::Uuid::now_v7().to_string(), at, actor.clone(), "bench".into(), None))
            .collect()
    };
    let mut written = 0;
    let mut logs: Vec<(TenantId, Log)> = Vec::new();
    // Sub-district k (from 0; xxjd, yyjd and zzjd are 0 to 2) is in district k / N.
    let district_of = |k: u64| -> DistrictId {
        match a.district_size {
            0 => district.clone(),
            n if k < n => district.clone(),
            n => id(format!("d{:03}", k / n)),
        }
    };
    if let Some(last) = a.tenants.saturating_sub(1).checked_div(a.district_size) {
        let created: Log = (1..=last)
            .map(|d| {
                let d: DistrictId = id(format!("d{d:03}"));
                let name = format!("第{d}区");
                (stream::district(&d), vec![DistrictCreated { district_id: d, name }.into()])
            })
            .collect();
        logs.push((TenantId::platform(), created));
    }
    // The sample tenant gets open findings of its own (the command's targets).
    let xx: Vec<CommunityId> = ["dongfeng", "xiangyang", "heping"].iter().map(|c| id((*c).into())).collect();
    logs.push((id("xxjd".into()), findings_log(&id("xxjd".into()), &xx, a.findings, "bench", a.varied_texts)));
    for k in 3..a.tenants {
        let t: TenantId = id(format!("t{k:03}"));
        let communities: Vec<CommunityId> = (0..10).map(|c| id(format!("c{c:02}"))).collect();
        let mut tenant_events: Vec<Event> = vec![
            TenantCreated {
                tenant_id: t.clone(),
                district_id: district_of(k),
                name: format!("第{k}街道"),
                methods: InspectionMethod::builtin_terms(),
                categories: vec![],
            }
            .into(),
        ];
        for (n, c) in communities.iter().enumerate() {
            tenant_events.push(CommunityAdded { community_id: c.clone(), name: format!("第{n}社区") }.into());
        }
        for (code, name) in [("theory", "理论学习"), ("responsibility", "主体责任"), ("opinion", "舆情研判")]
        {
            tenant_events.push(FindingCategoryAdded { code: code.into(), name: name.into() }.into());
        }
        let mut log = vec![(stream::tenant(&t), tenant_events)];
        log.extend(findings_log(&t, &communities, a.findings, "i", a.varied_texts));
        logs.push((t, log));
    }
    for (t, log) in logs {
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
            // Sent together, in order: the store commits them as groups.
            for r in futures_util::future::join_all(chunk.iter().cloned().map(|r| store.append(r))).await {
                r.expect("append");
            }
        }
    }
    written
}

fn http(addr: &str, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let status = raw.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

fn login(addr: &str, user: &str) -> String {
    let (status, body) = http(
        addr,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&format!(r#"{{"username":"{user}","password":"ducha-demo"}}"#)),
    );
    assert_eq!(status, 200, "login {user}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    v["access_token"].as_str().expect("token").to_owned()
}

/// Parses wrk's "Requests/sec", the 50% and 99% latencies (ms) and the non-2xx count.
fn parse_wrk(out: &str) -> (f64, f64, f64, u64, u64) {
    let ms = |v: &str| -> f64 {
        let v = v.trim();
        let (n, unit) = v.split_at(v.find(|c: char| c.is_alphabetic()).unwrap_or(v.len()));
        let n: f64 = n.parse().unwrap_or(f64::NAN);
        match unit {
            "us" => n / 1000.0,
            "ms" => n,
            "s" => n * 1000.0,
            "m" => n * 60_000.0,
            _ => f64::NAN,
        }
    };
    let mut rps = f64::NAN;
    let (mut p50, mut p99) = (f64::NAN, f64::NAN);
    let (mut non2xx, mut total) = (0, 0);
    for line in out.lines() {
        let l = line.trim();
        if let Some(v) = l.strip_prefix("Requests/sec:") {
            rps = v.trim().parse().unwrap_or(f64::NAN);
        } else if let Some(v) = l.strip_prefix("50%") {
            p50 = ms(v);
        } else if let Some(v) = l.strip_prefix("99%") {
            p99 = ms(v);
        } else if let Some(v) = l.strip_prefix("Non-2xx or 3xx responses:") {
            non2xx = v.trim().parse().unwrap_or(0);
        } else if l.contains("requests in") {
            total = l.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
        }
    }
    (rps, p50, p99, non2xx, total)
}

fn main() {
    let a = args();
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).expect("data dir");
    let exe = std::env::current_exe().expect("exe");
    let bin = exe.parent().and_then(Path::parent).map(|p| p.join("ducha")).expect("target dir");
    assert!(bin.exists(), "build the server first: cargo build --release -p ducha ({})", bin.display());
    assert!(
        a.skip_wrk || Command::new("wrk").arg("--version").output().is_ok(),
        "wrk is not installed (apt-get install wrk)"
    );

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let pg = a.postgres.as_ref().map(|admin| rt.block_on(bench_db::BenchDatabase::create(admin)));
    let location = match &pg {
        Some(db) => StoreLocation::parse(&db.url, Synchronous::Off).expect("url"),
        None => StoreLocation::Sqlite { dir: dir.clone(), synchronous: Synchronous::Off },
    };
    let started = std::time::Instant::now();
    let written = rt.block_on(async {
        let opened = open_store(&location, Access::Write).await.expect("open store");
        let store = &*opened.store;
        if store.head().await.expect("head") > 0 {
            return 0;
        }
        ducha::demo::load(store).await.expect("demo");
        let n = scale(store, &a).await;
        opened.close().await;
        n
    });
    eprintln!("generated {written} events in {:.1} s into {}", started.elapsed().as_secs_f64(), location.display());

    let secret = dir.join("jwt.secret");
    std::fs::write(&secret, "bench-shared-secret-of-the-replicas-0123456789abcdef").expect("secret");
    let mut servers = Vec::new();
    let mut addrs = Vec::new();
    for r in 0..a.replicas {
        let log_dir = dir.join(format!("replica-{r}"));
        std::fs::create_dir_all(&log_dir).expect("dir");
        let store_url = pg.as_ref().map(|db| db.url.as_str());
        let start = || start_server(&bin, &dir, &log_dir, store_url, &secret);
        let (mut server, mut addr, secs) = start();
        eprintln!("replica {r} serving on {addr} after {:.1} s", started.elapsed().as_secs_f64());
        if pg.is_none() && a.replicas == 1 {
            let (rss, peak) = memory(server.id());
            let db_bytes = std::fs::metadata(dir.join("ducha.db")).map_or(0, |m| m.len());
            println!("\nscale: {written} events generated; ducha.db {:.0} MiB", mib(db_bytes));
            println!("| start | time to listening | RSS then | peak RSS |");
            println!("| --- | ---: | ---: | ---: |");
            println!(
                "| no checkpoint (folds the whole log) | {secs:.1} s | {:.0} MiB | {:.0} MiB |",
                mib(rss),
                mib(peak)
            );
            let stopping = std::time::Instant::now();
            let _ = Command::new("kill").arg("-TERM").arg(server.id().to_string()).status();
            let stopped = server.wait();
            let stop_secs = stopping.elapsed().as_secs_f64();
            eprintln!("SIGTERM: the server exited with {stopped:?} after {stop_secs:.1} s");
            let warm;
            (server, addr, warm) = start();
            let (rss, peak) = memory(server.id());
            let checkpoint_bytes = checkpoint_size(&dir.join("ducha.db"));
            println!(
                "| from the checkpoint ({:.0} MiB, saved at SIGTERM in {stop_secs:.1} s) | {warm:.1} s | {:.0} MiB | {:.0} MiB |",
                mib(checkpoint_bytes),
                mib(rss),
                mib(peak)
            );
        }
        servers.push(server);
        addrs.push(addr);
    }
    if a.skip_wrk {
        for mut server in servers {
            let _ = server.kill();
            let _ = server.wait();
        }
        return;
    }
    let addr = addrs[0].clone();
    let admin = login(&addr, "admin");
    let xx = login(&addr, "xx-admin");

    let lua = dir.join("progress.lua");
    std::fs::write(
        &lua,
        format!(
            r#"wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {xx}"
local body = '{{"text":"已召开专题会议部署整改，完善学习记录。","evidence":[]}}'
request = function()
  local n = math.random(0, {last})
  local path = string.format("/api/v1/tenants/xxjd/inspections/bench%03d/findings/bench%03d-f%02d/progress", math.floor(n / 50), math.floor(n / 50), n % 50)
  return wrk.format(nil, path, nil, body)
end
"#,
            last = a.findings - 1
        ),
    )
    .expect("lua");
    // (row, path, token, POST through the Lua script, extra header, commands running meanwhile)
    type Case<'a> = (&'a str, String, Option<&'a str>, bool, Option<&'a str>, bool);
    let rollup = "/api/v1/districts/xxq/rollup?group_by=subdistrict";
    let cases: Vec<Case> = vec![
        ("`GET /healthz` (baseline)", "/healthz".into(), None, false, None, false),
        ("`GET /tenants/xxjd/dashboard`", "/api/v1/tenants/xxjd/dashboard".into(), Some(&xx), false, None, false),
        (
            "`GET /tenants/xxjd/ledger?page=3&page_size=50`",
            "/api/v1/tenants/xxjd/ledger?page=3&page_size=50".into(),
            Some(&xx),
            false,
            None,
            false,
        ),
        ("`GET /districts/xxq/rollup?group_by=subdistrict`", rollup.into(), Some(&admin), false, None, false),
        // What a browser sends: the roll-up's cached gzip.
        (
            "the roll-up, `Accept-Encoding: gzip`",
            rollup.into(),
            Some(&admin),
            false,
            Some("Accept-Encoding: gzip"),
            false,
        ),
        // Each command moves the position: the roll-up is assembled again from the kept parts of
        // the sub-districts that did not change (commands run on a second wrk, not counted here).
        (
            "the roll-up (gzip) while commands run",
            rollup.into(),
            Some(&admin),
            false,
            Some("Accept-Encoding: gzip"),
            true,
        ),
        ("`POST …/findings/{id}/progress` (command)", "/".into(), Some(&xx), true, None, false),
    ];
    // Sanity: each read answers 200 before it is measured.
    for (name, path, token, post, _, _) in &cases {
        if !post {
            let (status, body) = http(&addr, "GET", path, *token, None);
            assert_eq!(status, 200, "{name}: {}", &body[..body.len().min(300)]);
            if path.as_str() == rollup {
                let rows = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["rows"].as_array().map(Vec::len))
                    .unwrap_or(0);
                println!("the roll-up of XX区: {} bytes of JSON, {rows} rows", body.len());
            }
        }
    }
    let (status, body) = http(
        &addr,
        "POST",
        "/api/v1/tenants/xxjd/inspections/bench000/findings/bench000-f00/progress",
        Some(&xx),
        Some(r#"{"text":"预检","evidence":[]}"#),
    );
    assert!(status == 200 || status == 201, "progress: {status} {body}");

    println!("\n{} replica(s) on {}", a.replicas, if pg.is_some() { "PostgreSQL" } else { "SQLite" });
    println!("\n| endpoint | req/s | p50 ms | p99 ms | × /healthz req/s | non-2xx |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let mut baseline = f64::NAN;
    let per_replica = (a.connections / a.replicas).max(1);
    let wrk = |addr: &str, path: &str, token: Option<&str>, post: bool, header: Option<&str>, connections: u64| {
        let mut cmd = Command::new("wrk");
        cmd.args(["-t2", &format!("-c{connections}"), &format!("-d{}s", a.seconds), "--latency"]);
        if let Some(t) = token {
            cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
        }
        if let Some(h) = header {
            cmd.args(["-H", h]);
        }
        if post {
            cmd.arg("-s").arg(&lua);
        }
        cmd.arg(format!("http://{addr}{path}"));
        cmd.stdout(Stdio::piped()).spawn().expect("run wrk")
    };
    for (name, path, token, post, header, with_writes) in &cases {
        // Commands on the side (a quarter of the connections), not counted in the row.
        let writers: Vec<_> = if *with_writes {
            addrs.iter().map(|addr| wrk(addr, "/", Some(&xx), true, None, (per_replica / 4).max(1))).collect()
        } else {
            Vec::new()
        };
        // One wrk per replica, all at once.
        let runs: Vec<_> = addrs.iter().map(|addr| wrk(addr, path, *token, *post, *header, per_replica)).collect();
        let (mut rps, mut p50, mut p99, mut non2xx, mut total) = (0.0, 0.0f64, 0.0f64, 0, 0);
        for run in runs {
            let out = run.wait_with_output().expect("wrk");
            let (r, a50, a99, n, t) = parse_wrk(&String::from_utf8_lossy(&out.stdout));
            rps += r;
            p50 = p50.max(a50);
            p99 = p99.max(a99);
            non2xx += n;
            total += t;
        }
        for w in writers {
            let out = w.wait_with_output().expect("wrk");
            let (r, ..) = parse_wrk(&String::from_utf8_lossy(&out.stdout));
            eprintln!("  ({name}: commands meanwhile {r:.0} req/s)");
        }
        if baseline.is_nan() {
            baseline = rps;
        }
        println!("| {name} | {rps:.0} | {p50:.2} | {p99:.2} | {:.2} | {non2xx} of {total} |", rps / baseline);
    }
    if let Some(server) = servers.first() {
        let (rss, peak) = memory(server.id());
        println!("\nafter the load: RSS {:.0} MiB, peak {:.0} MiB", mib(rss), mib(peak));
    }
    for mut server in servers {
        let _ = server.kill();
        let _ = server.wait();
    }
    drop(pg);
}
