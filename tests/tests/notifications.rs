//! Reminders that reach people (issue 14), end to end: the real `ducha serve --demo`, real HTTP, and
//! a local HTTP receiver standing in for each channel's endpoint (企业微信群机器人, 钉钉自定义机器人,
//! a generic webhook). The request bodies are compared byte for byte, the signatures are checked by
//! an independent implementation (Python's `hmac`), failures are retried, the rate limit holds, and
//! nothing is sent twice after the server is killed and restarted.

use ducha_tests::{Response, Server};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Seen {
    /// Path and query.
    target: String,
    headers: BTreeMap<String, String>,
    body: String,
    /// The status it was answered with.
    status: u16,
}

/// A tiny HTTP/1.1 server on a free port: records every request, answers with the next scripted
/// status (then 200) and `reply` as JSON; a status of 0 means "answer nothing for 20 s" (a request in
/// flight when the sender dies).
struct Receiver {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Receiver {
    fn start(path: &str, reply: &'static str, script: &[u16]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}{path}", listener.local_addr().expect("addr"));
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let script: Arc<Mutex<VecDeque<u16>>> = Arc::new(Mutex::new(script.iter().copied().collect()));
        let (log, plan) = (seen.clone(), script);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let target = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                let mut headers = BTreeMap::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                    }
                }
                let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                let status = plan.lock().unwrap().pop_front().unwrap_or(200);
                log.lock().unwrap().push(Seen { target, headers, body: String::from_utf8_lossy(&body).into(), status });
                if status == 0 {
                    std::thread::sleep(Duration::from_secs(20));
                    continue;
                }
                let reason = if status == 200 { "OK" } else { "Internal Server Error" };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
            }
        });
        Receiver { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits (at most `secs`) until a request satisfies `f`.
    fn wait_for(&self, secs: u64, what: &str, f: impl Fn(&[Seen]) -> bool) -> Vec<Seen> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let seen = self.seen();
            if f(&seen) {
                return seen;
            }
            assert!(Instant::now() < deadline, "waiting for {what}; seen: {seen:#?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

const ROBOT_OK: &str = r#"{"errcode":0,"errmsg":"ok"}"#;

fn send(s: &Server, method: &str, path: &str, token: &str, body: &Value) -> Response {
    let bytes = body.to_string().into_bytes();
    s.request(method, path, Some(token), &[("Content-Type", "application/json")], Some(&bytes))
}

fn expect(r: &Response, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    if r.text().is_empty() { Value::Null } else { r.json() }
}

fn problem(r: &Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"), "{}", r.text());
    let p = r.json();
    assert_eq!(p["code"], code, "{p}");
    assert!(p["detail"].as_str().is_some_and(|d| !d.is_ascii()), "a Chinese detail: {p}");
    p
}

/// Shanghai's date today (the server's "today").
fn today() -> chrono::NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
}

/// A 东风社区 finding assigned with a deadline `days` from today; its id and title.
fn dongfeng_finding_due_in(s: &Server, title: &str, days: i64) -> (String, String) {
    let inspection = s.plan_dongfeng_inspection(&format!("{title}专项督查"), today());
    s.start_inspection(&inspection, today());
    let inspector = s.login("xx-duchazu1");
    let base = format!("/api/v1/tenants/xxjd/inspections/{inspection}/findings");
    let finding = json!({"community_id": "dongfeng", "category": "theory", "title": title,
                         "description": "学习记录泛泛而谈，联系社区工作实际不够。"});
    let f = expect(&send(s, "POST", &base, &inspector, &finding), 201);
    let id = f["id"].as_str().expect("finding id").to_owned();
    let admin = s.login("xx-admin");
    let deadline = (today() + chrono::Duration::days(days)).to_string();
    let assign = json!({"title": "整改", "measure": "制定学习计划", "responsible_unit": "东风社区", "leader": "赵书记",
                        "person": "钱干事", "deadline": deadline});
    expect(&send(s, "POST", &format!("{base}/{id}/assign"), &admin, &assign), 200);
    (id, inspection)
}

fn python(script: &str, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("python3");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// 钉钉's documented signature, in Python: quote_plus(b64(HMAC-SHA256(secret, "{ts}\n{secret}"))).
fn dingtalk_sign_py(secret: &str, timestamp: &str) -> String {
    python(
        "import sys,hmac,hashlib,base64,urllib.parse;s=sys.argv[1];t=sys.argv[2];\
         print(urllib.parse.quote_plus(base64.b64encode(hmac.new(s.encode(),(t+'\\n'+s).encode(),hashlib.sha256).digest())))",
        &[secret, timestamp],
        "",
    )
}

/// The webhook's signature, in Python: hex HMAC-SHA256(secret, "{timestamp}.{body}").
fn webhook_sign_py(secret: &str, timestamp: &str, body: &str) -> String {
    python(
        "import sys,hmac,hashlib;b=sys.stdin.buffer.read();\
         print('sha256='+hmac.new(sys.argv[1].encode(),sys.argv[2].encode()+b'.'+b,hashlib.sha256).hexdigest())",
        &[secret, timestamp],
        body,
    )
}

fn query_param<'a>(target: &'a str, name: &str) -> Option<&'a str> {
    target.split_once('?')?.1.split('&').find_map(|kv| kv.strip_prefix(&format!("{name}=")))
}

fn add_channel(s: &Server, token: &str, body: Value) -> Value {
    expect(&send(s, "POST", "/api/v1/tenants/xxjd/notification-channels", token, &body), 201)
}

#[test]
fn reminders_reach_the_centre_and_every_channel() {
    let env = [("DUCHA_NOTIFY_INTERVAL_SECONDS", "1"), ("DUCHA_NOTIFY_RETRY_BASE_SECONDS", "1")];
    let s = Server::start(true, &env);
    let admin = s.login("xx-admin");
    let officer = s.login("xx-dongfeng");

    // Settings: defaults, then the admin's; out-of-range values are refused.
    let settings = expect(&s.get("/api/v1/tenants/xxjd/notification-settings", Some(&admin)), 200);
    assert_eq!(settings, json!({"due_soon_days": 3, "verify_wait_days": 5, "digest_hour": 8}));
    let path = "/api/v1/tenants/xxjd/notification-settings";
    let p = problem(
        &send(&s, "POST", path, &admin, &json!({"due_soon_days": 61, "verify_wait_days": 5, "digest_hour": 8})),
        422,
        "invalid",
    );
    assert_eq!(p["field"], "due_soon_days");
    let p = problem(
        &send(&s, "POST", path, &admin, &json!({"due_soon_days": 3, "verify_wait_days": 5, "digest_hour": 24})),
        422,
        "invalid",
    );
    assert_eq!(p["field"], "digest_hour");
    problem(&send(&s, "POST", path, &admin, &json!({"due_soon_days": 3, "colour": 1})), 422, "invalid_body");
    // The digest from hour 0: it goes out today, whatever the time.
    let saved = json!({"due_soon_days": 5, "verify_wait_days": 5, "digest_hour": 0});
    assert_eq!(expect(&send(&s, "POST", path, &admin, &saved), 200), saved);
    problem(&send(&s, "POST", path, &officer, &saved), 403, "forbidden");
    problem(&s.get("/api/v1/tenants/yyjd/notification-settings", Some(&admin)), 403, "forbidden");

    // Channels: validated; secrets never shown; URLs masked.
    let channels = "/api/v1/tenants/xxjd/notification-channels";
    for (body, field) in [
        (json!({"kind": "sms", "name": "短信", "url": "http://127.0.0.1:9/"}), "kind"),
        (json!({"kind": "webhook", "name": "", "url": "http://127.0.0.1:9/"}), "name"),
        (json!({"kind": "webhook", "name": "钩子", "url": "ftp://127.0.0.1/"}), "url"),
        (json!({"kind": "wecom", "name": "企微", "url": "http://127.0.0.1:9/?key=k", "secret": "x"}), "secret"),
    ] {
        let p = problem(&send(&s, "POST", channels, &admin, &body), 422, "invalid");
        assert_eq!(p["field"], field, "{body}");
    }
    problem(
        &send(&s, "POST", channels, &officer, &json!({"kind": "webhook", "name": "x", "url": "http://h/"})),
        403,
        "forbidden",
    );

    let wecom = Receiver::start("/cgi-bin/webhook/send?key=test-key", ROBOT_OK, &[]);
    let dingtalk = Receiver::start("/robot/send?access_token=test-token", ROBOT_OK, &[]);
    // The webhook fails twice first: each failure is retried.
    let webhook = Receiver::start("/hooks/ducha", "{}", &[500, 500]);
    let (ding_secret, hook_secret) = ("SECtest-钉钉-secret", "hook-secret");

    // A finding due in two days (临期 with due_soon_days 5) and a 催办 on it.
    let title = "理论学习联系实际不够（通知测试）";
    let (finding, inspection) = dongfeng_finding_due_in(&s, title, 2);
    let remind = format!("/api/v1/tenants/xxjd/inspections/{inspection}/findings/{finding}/remind");
    expect(&send(&s, "POST", &remind, &admin, &json!({"message": "请于本周内报送整改进展"})), 200);

    let w = add_channel(&s, &admin, json!({"kind": "wecom", "name": "街道整改工作群", "url": wecom.url}));
    assert_eq!(w["url_masked"], format!("{}?…", wecom.url.split('?').next().unwrap()));
    assert_eq!((w["has_secret"].as_bool(), w["kind_name"].as_str()), (Some(false), Some("企业微信群机器人")));
    let d = add_channel(
        &s,
        &admin,
        json!({"kind": "dingtalk", "name": "钉钉群", "url": dingtalk.url, "secret": ding_secret}),
    );
    assert!(!d.to_string().contains(ding_secret) && !d.to_string().contains("test-token"), "{d}");
    add_channel(&s, &admin, json!({"kind": "webhook", "name": "OA 系统", "url": webhook.url, "secret": hook_secret}));
    let listed = expect(&s.get(channels, Some(&admin)), 200);
    assert_eq!(listed.as_array().map(Vec::len), Some(3));
    assert!(!listed.to_string().contains("SECtest") && !listed.to_string().contains("test-key"));

    // 企业微信: the exact body of the 临期 reminder and of the 催办.
    let due = today() + chrono::Duration::days(2);
    let due_text = format!("【临期提醒】东风社区「{title}」整改期限为{due}，还剩2天");
    let manual_text = format!("【催办】东风社区「{title}」：请于本周内报送整改进展");
    let seen = wecom
        .wait_for(60, "the 企业微信 reminders", |seen| seen.iter().filter(|r| r.body.contains(title)).count() >= 2);
    let bodies: Vec<&str> = seen.iter().map(|r| r.body.as_str()).collect();
    assert!(
        bodies.contains(&format!(r#"{{"msgtype":"text","text":{{"content":"{due_text}"}}}}"#).as_str()),
        "{bodies:#?}"
    );
    assert!(bodies.contains(&format!(r#"{{"msgtype":"text","text":{{"content":"{manual_text}"}}}}"#).as_str()));
    assert!(seen.iter().all(|r| r.target == "/cgi-bin/webhook/send?key=test-key"));
    assert!(seen.iter().all(|r| r.headers.get("content-type").map(String::as_str) == Some("application/json")));
    // The daily digest, as markdown.
    let digest =
        wecom.wait_for(30, "the digest", |seen| seen.iter().any(|r| r.body.contains(r#""msgtype":"markdown""#)));
    let digest = digest.iter().find(|r| r.body.contains("markdown")).unwrap();
    let v: Value = serde_json::from_str(&digest.body).unwrap();
    let content = v["markdown"]["content"].as_str().unwrap();
    assert!(content.starts_with(&format!("### XX街道 整改提醒汇总（{}）", today())), "{content}");
    assert!(content.contains(&due_text), "{content}");

    // 钉钉: signed URL checked by Python, exact body.
    let seen = dingtalk.wait_for(30, "the 钉钉 reminders", |seen| seen.iter().any(|r| r.body.contains(&due_text)));
    let r = seen.iter().find(|r| r.body.contains(&due_text)).unwrap();
    assert_eq!(r.body, format!(r#"{{"msgtype":"text","text":{{"content":"{due_text}"}}}}"#));
    assert!(r.target.starts_with("/robot/send?access_token=test-token&timestamp="), "{}", r.target);
    let ts = query_param(&r.target, "timestamp").expect("timestamp");
    let millis: i64 = ts.parse().expect("ms");
    assert!((chrono::Utc::now().timestamp_millis() - millis).abs() < 3_600_000, "within the hour 钉钉 accepts");
    assert_eq!(query_param(&r.target, "sign"), Some(dingtalk_sign_py(ding_secret, ts).as_str()));
    for r in &seen {
        let ts = query_param(&r.target, "timestamp").unwrap();
        assert_eq!(query_param(&r.target, "sign"), Some(dingtalk_sign_py(ding_secret, ts).as_str()));
    }

    // Webhook: HMAC checked by Python over timestamp and body; the two 500s were retried.
    let seen = webhook.wait_for(60, "the webhook reminders", |seen| {
        seen.iter().any(|r| r.body.contains(&due_text) && r.status == 200)
            && seen.iter().filter(|r| r.status == 500).all(|failed| {
                let id = failed.headers.get("x-ducha-delivery");
                seen.iter().any(|ok| ok.status == 200 && ok.headers.get("x-ducha-delivery") == id)
            })
    });
    assert_eq!(seen.iter().filter(|r| r.status == 500).count(), 2);
    for r in &seen {
        let ts = r.headers.get("x-ducha-timestamp").expect("timestamp");
        let sig = r.headers.get("x-ducha-signature").expect("signature");
        assert_eq!(sig, &webhook_sign_py(hook_secret, ts, &r.body), "{r:?}");
    }
    let r = seen.iter().find(|r| r.body.contains(&due_text)).unwrap();
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        (v["kind"].as_str(), v["finding_id"].as_str(), v["tenant"].as_str()),
        (Some("due_soon"), Some(finding.as_str()), Some("xxjd"))
    );
    assert_eq!(v["key"], format!("due_soon/{finding}/{due}"));
    assert_eq!(v["delivery_id"].to_string(), r.headers["x-ducha-delivery"]);

    // The delivery log: every delivery sent once; the retried ones after 2 attempts.
    let log = expect(&s.get("/api/v1/tenants/xxjd/deliveries?limit=200", Some(&admin)), 200);
    let items = log["items"].as_array().unwrap();
    let retried: Vec<&Value> = items.iter().filter(|d| d["attempts"].as_u64() == Some(2)).collect();
    assert!(!retried.is_empty(), "{log:#}");
    for d in &retried {
        assert_eq!((d["status"].as_str(), d["channel_name"].as_str()), (Some("sent"), Some("OA 系统")), "{d}");
    }
    assert!(items.iter().any(|d| d["text"] == due_text.as_str() && d["status_name"] == "已送达"));
    problem(&s.get("/api/v1/tenants/xxjd/deliveries", Some(&officer)), 403, "forbidden");
    problem(&s.get("/api/v1/tenants/xxjd/deliveries?limit=0", Some(&admin)), 400, "invalid_query");
    problem(
        &send(&s, "POST", &format!("/api/v1/tenants/xxjd/deliveries/{}/retry", items[0]["id"]), &admin, &json!({})),
        409,
        "delivery_state",
    );
    problem(&send(&s, "POST", "/api/v1/tenants/xxjd/deliveries/abc/retry", &admin, &json!({})), 404, "not_found");

    // The notification centre: the 东风社区 officer has both, linked to the finding.
    let list = expect(&s.get("/api/v1/me/notifications", Some(&officer)), 200);
    let mine: Vec<&Value> =
        list["items"].as_array().unwrap().iter().filter(|n| n["finding_id"] == finding.as_str()).collect();
    let kinds: Vec<&str> = mine.iter().filter_map(|n| n["kind"].as_str()).collect();
    assert!(kinds.contains(&"due_soon") && kinds.contains(&"manual"), "{list:#}");
    let link = format!("/tenants/xxjd/inspections/{inspection}/findings/{finding}");
    assert!(mine.iter().all(|n| n["link"] == link.as_str() && n["read_at"].is_null()));
    assert!(mine.iter().any(|n| n["text"] == due_text.as_str() && n["kind_name"] == "临期提醒"));
    let unread =
        expect(&s.get("/api/v1/me/notifications/unread-count", Some(&officer)), 200)["unread"].as_u64().unwrap();
    assert_eq!(Some(unread), list["unread"].as_u64());
    assert!(unread >= 2);
    // Mark one read (twice is fine); another person's id is not found.
    let id = mine[0]["id"].as_i64().unwrap();
    let after = expect(&send(&s, "POST", &format!("/api/v1/me/notifications/{id}/read"), &officer, &json!({})), 200);
    assert_eq!(after["unread"].as_u64(), Some(unread - 1));
    expect(&send(&s, "POST", &format!("/api/v1/me/notifications/{id}/read"), &officer, &json!({})), 200);
    let other = s.login("xx-duchazu2");
    problem(&send(&s, "POST", &format!("/api/v1/me/notifications/{id}/read"), &other, &json!({})), 404, "not_found");
    problem(&send(&s, "POST", "/api/v1/me/notifications/x/read", &officer, &json!({})), 404, "not_found");
    problem(&s.get("/api/v1/me/notifications?limit=500", Some(&officer)), 400, "invalid_query");
    let unread_only = expect(&s.get("/api/v1/me/notifications?unread=true", Some(&officer)), 200);
    assert!(unread_only["items"].as_array().unwrap().iter().all(|n| n["id"].as_i64() != Some(id)));
    // The 临期 reminder is the officer's; the admin is told about cross-cutting and overdue ones.
    let admin_list = expect(&s.get("/api/v1/me/notifications?limit=200", Some(&admin)), 200);
    assert!(
        admin_list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["kind"] != "due_soon" || n["finding_id"] != finding.as_str())
    );
    let all = expect(&send(&s, "POST", "/api/v1/me/notifications/read-all", &officer, &json!({})), 200);
    assert_eq!(all["unread"].as_u64(), Some(0));

    // Removing a channel; the security audit log has its changes.
    let id = d["id"].as_str().unwrap();
    expect(&s.request("POST", &format!("{channels}/{id}/remove"), Some(&admin), &[], None), 204);
    problem(&s.request("POST", &format!("{channels}/{id}/remove"), Some(&admin), &[], None), 404, "not_found");
    assert_eq!(expect(&s.get(channels, Some(&admin)), 200).as_array().map(Vec::len), Some(2));

    // Each reminder reached each channel once.
    for rx in [&wecom, &dingtalk] {
        let mut bodies: Vec<String> = rx.seen().into_iter().filter(|r| r.status == 200).map(|r| r.body).collect();
        let n = bodies.len();
        bodies.sort();
        bodies.dedup();
        assert_eq!(bodies.len(), n, "sent twice");
    }
}

#[test]
fn rate_limited_and_never_sent_twice_across_a_restart() {
    // Two per minute. The second request gets no answer: the server is killed while it is in flight.
    let env = [("DUCHA_NOTIFY_INTERVAL_SECONDS", "1"), ("DUCHA_NOTIFY_RATE_PER_MINUTE", "2")];
    let mut s = Server::start(true, &env);
    let admin = s.login("xx-admin");
    // Besides the demo's: two findings due tomorrow, each with a 催办 — four more messages.
    for title in ["队伍建设有待加强（限流测试）", "阵地管理不够规范（限流测试）"] {
        let (finding, inspection) = dongfeng_finding_due_in(&s, title, 1);
        let remind = format!("/api/v1/tenants/xxjd/inspections/{inspection}/findings/{finding}/remind");
        expect(&send(&s, "POST", &remind, &admin, &json!({"message": "请抓紧整改"})), 200);
    }
    let hook = Receiver::start("/hook", "{}", &[200, 0]);
    add_channel(&s, &admin, json!({"kind": "webhook", "name": "钩子", "url": hook.url}));
    let log_of = |s: &Server| {
        let token = s.login("xx-admin");
        let log = expect(&s.get("/api/v1/tenants/xxjd/deliveries?limit=200", Some(&token)), 200);
        log["items"].as_array().unwrap().clone()
    };
    let started = Instant::now();
    let first = hook.wait_for(30, "the first two", |seen| seen.len() >= 2);
    let total = log_of(&s).len();
    assert!(total >= 5, "at least five messages queued: {total}");
    let id = |r: &Seen| r.headers["x-ducha-delivery"].clone();
    let (sent, in_flight) = (id(&first[0]), id(&first[1]));

    // Killed with the second request in flight, restarted at once.
    s.restart(&env);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(hook.seen().len(), 2, "no more than 2 in the first minute, across the restart");
    let log = log_of(&s);
    let status = |id: &str| {
        log.iter().find(|d| d["id"].as_i64() == id.parse().ok()).map(|d| d["status"].as_str().unwrap().to_owned())
    };
    assert_eq!(status(&sent).as_deref(), Some("sent"));
    assert_eq!(status(&in_flight).as_deref(), Some("uncertain"), "at most once: {log:#?}");

    // A minute after the first two, two more — never one already sent or in flight.
    let seen = hook.wait_for(90, "two more", |seen| seen.len() >= 4);
    assert!(started.elapsed() >= Duration::from_secs(59), "the rate limit held: {:?}", started.elapsed());
    std::thread::sleep(Duration::from_secs(5));
    let seen_after = hook.seen();
    assert_eq!(seen_after.len(), 4, "still two a minute: {seen_after:#?}");
    let mut ids: Vec<String> = seen.iter().map(id).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "a delivery sent twice: {seen:#?}");
    let mut keys: Vec<String> = seen
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["key"].as_str().unwrap().to_owned())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "a reminder sent twice");

    // The admin requeues the uncertain one: it goes out again (then, and only then, maybe twice).
    let token = s.login("xx-admin");
    let r = send(&s, "POST", &format!("/api/v1/tenants/xxjd/deliveries/{in_flight}/retry"), &token, &json!({}));
    expect(&r, 204);
    let log = log_of(&s);
    assert_eq!(
        log.iter().find(|d| d["id"].as_i64() == in_flight.parse().ok()).map(|d| d["status"].clone()),
        Some(json!("pending"))
    );
}
