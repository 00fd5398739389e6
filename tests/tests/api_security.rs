//! 等保 2.0 level 3 through HTTP on the real binary: the three administrators (三员分立), the security
//! audit log (each kind of record with its fields; a failed record refuses its action; its own
//! chain, verified), the password policy, lockout and unlock, idle sessions, TOTP with codes from an
//! independent implementation (Python's `pyotp`), recovery codes, security headers, no secret in
//! the logs, and the move of an existing deployment from one platform administrator to three.

use ducha_tests::{Response, Server, ducha, ducha_bin, repo_root};
use serde_json::{Value, json};
use std::process::Command;

const UA: &str = "ducha-security-test/1.0";

fn post(s: &Server, path: &str, token: Option<&str>, body: &Value) -> Response {
    s.request(
        "POST",
        path,
        token,
        &[("Content-Type", "application/json"), ("User-Agent", UA)],
        Some(body.to_string().as_bytes()),
    )
}

fn get(s: &Server, path: &str, token: Option<&str>) -> Response {
    s.request("GET", path, token, &[("User-Agent", UA)], None)
}

fn status(r: &Response, want: u16) -> Value {
    assert_eq!(r.status, want, "{}", r.text());
    if r.body.is_empty() { Value::Null } else { r.json() }
}

fn code(r: &Response, want_status: u16, want_code: &str) {
    assert_eq!(r.status, want_status, "{}", r.text());
    assert_eq!(r.json()["code"], want_code, "{}", r.text());
}

fn login(s: &Server, user: &str, password: &str) -> Response {
    post(s, "/api/v1/auth/login", None, &json!({"username": user, "password": password}))
}

fn totp(secret: &str, offset: i64) -> String {
    ducha_tests::totp_code(secret, offset)
}

/// What pyotp reads from the enrolment's `otpauth://` URI: (issuer, account name, secret, digits,
/// period).
fn parse_uri(uri: &str) -> Value {
    let out = Command::new("python3")
        .args([
            "-c",
            "import pyotp,sys,json; t=pyotp.parse_uri(sys.argv[1]); \
             print(json.dumps([t.issuer, t.name, t.secret, t.digits, t.interval]))",
        ])
        .arg(uri)
        .output()
        .expect("python3 with pyotp");
    assert!(out.status.success(), "pyotp.parse_uri: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The level-3 policy as a real deployment runs it (the demo's relaxations off).
fn real_policy(second_factor: &str) -> Value {
    json!({
        "min_length": 8, "min_classes": 3, "history": 5, "max_age_days": 90,
        "lockout_after": 5, "lockout_minutes": 15, "idle_timeout_minutes": 30, "session_max_hours": 8,
        "second_factor": second_factor,
    })
}

/// A login walked through every step a real policy asks for: a new password when the current one
/// is temporary, the second factor (enrolled here when needed, with pyotp's codes). Returns the
/// access token, the password now in force and the TOTP secret (when one was enrolled here).
struct Walked {
    token: String,
    password: String,
    secret: Option<String>,
    recovery_codes: Vec<String>,
}

fn walk_login(s: &Server, user: &str, password: &str, new_password: &str, secret: Option<&str>) -> Walked {
    let mut answer = status(&login(s, user, password), 200);
    let mut walked =
        Walked { token: String::new(), password: password.to_owned(), secret: None, recovery_codes: vec![] };
    for _ in 0..4 {
        let token = answer["access_token"].as_str().expect("token").to_owned();
        match answer["next"].as_str() {
            None => {
                walked.token = token;
                return walked;
            }
            Some("password_change") => {
                let body = json!({"current_password": walked.password, "new_password": new_password});
                answer = status(&post(s, "/api/v1/auth/password", Some(&token), &body), 200);
                walked.password = new_password.to_owned();
            }
            Some("second_factor") => {
                let secret = secret.expect("the account's TOTP secret");
                answer = status(
                    &post(s, "/api/v1/auth/login/second-factor", Some(&token), &json!({"code": totp(secret, 30)})),
                    200,
                );
            }
            Some("second_factor_enrol") => {
                let enrolment = status(&post(s, "/api/v1/auth/second-factor/enrol", Some(&token), &json!({})), 200);
                let secret = enrolment["secret"].as_str().expect("secret").to_owned();
                let body = json!({"code": totp(&secret, 0)});
                let enrolled = status(&post(s, "/api/v1/auth/second-factor/confirm", Some(&token), &body), 200);
                walked.recovery_codes = enrolled["recovery_codes"]
                    .as_array()
                    .expect("codes")
                    .iter()
                    .map(|c| c.as_str().unwrap().to_owned())
                    .collect();
                walked.secret = Some(secret);
                answer = enrolled["login"].clone();
            }
            Some(other) => panic!("unknown login step {other}: {answer}"),
        }
    }
    panic!("the login did not finish: {answer}");
}

/// The security audit log's records matching `query`, read by the audit administrator.
fn records(s: &Server, audit: &str, query: &str) -> Vec<Value> {
    let page = status(&get(s, &format!("/api/v1/security/audit?limit=1000&{query}"), Some(audit)), 200);
    page["records"].as_array().expect("records").clone()
}

/// The newest record of `action` (by any user), checked for the fields every record has.
fn newest(s: &Server, audit: &str, action: &str) -> Value {
    let all = records(s, audit, &format!("action={action}"));
    let r = all.first().unwrap_or_else(|| panic!("no `{action}` record")).clone();
    for field in ["position", "at", "action", "result", "client_addr", "object", "request_id", "hash"] {
        assert!(!r[field].is_null(), "{action}: no {field}: {r}");
    }
    assert!(r["at"].as_str().unwrap().ends_with('Z') || r["at"].as_str().unwrap().contains('+'), "{r}");
    assert_eq!(r["client_addr"], "127.0.0.1", "{r}");
    r
}

#[test]
fn each_of_the_three_administrators_does_their_part_and_nothing_else() {
    let s = Server::demo();
    let sys = s.login("sysadmin");
    let sec = s.login("secadmin");
    let aud = s.login("audadmin");
    let root = s.login("admin");
    const U: &str = "/api/v1/tenants/xxjd/users";
    let account = json!({"username": "xx-zhouli", "display_name": "督查组 周丽", "password": "Zhou-li-2026"});

    // The platform administrator no longer manages accounts; the audit administrator changes nothing.
    code(&post(&s, U, Some(&root), &account), 403, "forbidden");
    code(&post(&s, U, Some(&aud), &account), 403, "forbidden");
    // The system administrator creates; the security administrator cannot.
    code(&post(&s, U, Some(&sec), &account), 403, "forbidden");
    status(&post(&s, U, Some(&sys), &account), 201);
    // The security administrator grants; the system and audit administrators cannot.
    let role = json!({"role": "inspector"});
    code(&post(&s, &format!("{U}/xx-zhouli/roles"), Some(&sys), &role), 403, "forbidden");
    code(&post(&s, &format!("{U}/xx-zhouli/roles"), Some(&aud), &role), 403, "forbidden");
    status(&post(&s, &format!("{U}/xx-zhouli/roles"), Some(&sec), &role), 200);
    // No account holds two of the three, or one of them with a business role.
    let p = post(&s, "/api/v1/platform/users/sysadmin/roles", Some(&sec), &json!({"role": "security_admin"}));
    code(&p, 409, "role_conflict");
    let p = post(&s, "/api/v1/platform/users/audadmin/roles", Some(&sec), &json!({"role": "auditor"}));
    code(&p, 409, "role_conflict");
    // The policy is the security administrator's.
    let policy = real_policy("administrators");
    code(&post(&s, "/api/v1/security/policy", Some(&sys), &policy), 403, "forbidden");
    code(&post(&s, "/api/v1/security/policy", Some(&aud), &policy), 403, "forbidden");
    let weak = json!({"min_length": 6, "min_classes": 3, "history": 5, "max_age_days": 90, "lockout_after": 5,
        "lockout_minutes": 15, "idle_timeout_minutes": 30, "session_max_hours": 8, "second_factor": "administrators"});
    let p = post(&s, "/api/v1/security/policy", Some(&sec), &weak);
    code(&p, 422, "invalid");
    assert_eq!(p.json()["field"], "min_length");
    let demo = json!({"min_length": 8, "min_classes": 3, "history": 5, "max_age_days": 90, "lockout_after": 5,
        "lockout_minutes": 15, "idle_timeout_minutes": 30, "session_max_hours": 8, "second_factor": "administrators",
        "demo": true});
    assert_eq!(post(&s, "/api/v1/security/policy", Some(&sec), &demo).json()["field"], "demo");
    status(&post(&s, "/api/v1/security/policy", Some(&sec), &policy), 200);
    let now = status(&get(&s, "/api/v1/security/policy", Some(&aud)), 200);
    assert_eq!((now["set"].as_bool(), now["policy"]["demo"].as_bool()), (Some(true), Some(false)));
    // The audit log is the audit administrator's alone; the others cannot even read it.
    for t in [&sys, &sec, &root] {
        code(&get(&s, "/api/v1/security/audit", Some(t)), 403, "forbidden");
        code(&get(&s, "/api/v1/security/audit.xlsx", Some(t)), 403, "forbidden");
    }
    status(&get(&s, "/api/v1/security/audit", Some(&aud)), 200);
    // The three see no business data; the audit administrator not even the directory.
    for t in [&sys, &sec, &aud] {
        code(&get(&s, "/api/v1/tenants/xxjd/inspections", Some(t)), 403, "forbidden");
        code(&get(&s, "/api/v1/tenants/xxjd/ledger", Some(t)), 403, "forbidden");
    }
    status(&get(&s, "/api/v1/tenants/xxjd/communities", Some(&sec)), 200);
    code(&get(&s, "/api/v1/tenants/xxjd/communities", Some(&aud)), 403, "forbidden");
    // No one can alter or delete a record: the API has no such operation, and a record is an event
    // in an append-only chain.
    let doc = status(&get(&s, "/api/v1/openapi.json", None), 200);
    for (path, item) in doc["paths"].as_object().unwrap() {
        if path.starts_with("/api/v1/security/audit") {
            let methods: Vec<&String> = item.as_object().unwrap().keys().filter(|k| *k != "parameters").collect();
            assert_eq!(methods, ["get"], "{path}");
        }
        for m in ["delete", "put", "patch"] {
            assert!(item.get(m).is_none(), "{m} {path}: the API deletes or replaces nothing");
        }
    }
}

#[test]
fn every_kind_of_security_record_appears_after_its_action_with_its_fields() {
    let s = Server::demo();
    let aud = s.login("audadmin");
    let sys = s.login("sysadmin");
    let sec = s.login("secadmin");

    // Logins, with the client's user agent and request id.
    let r = s.request(
        "POST",
        "/api/v1/auth/login",
        None,
        &[("Content-Type", "application/json"), ("User-Agent", UA), ("X-Request-Id", "req-login-1")],
        Some(json!({"username": "xx-admin", "password": "ducha-demo"}).to_string().as_bytes()),
    );
    let admin = status(&r, 200)["access_token"].as_str().unwrap().to_owned();
    let rec = newest(&s, &aud, "login");
    assert_eq!((rec["username"].as_str(), rec["result"].as_str()), (Some("xx-admin"), Some("success")));
    assert_eq!((rec["user_agent"].as_str(), rec["request_id"].as_str()), (Some(UA), Some("req-login-1")));
    assert_eq!((rec["role"].as_str(), rec["role_name"].as_str()), (Some("subdistrict_admin"), Some("街道管理员")));
    code(&login(&s, "xx-admin", "wrong-password"), 401, "invalid_credentials");
    let rec = newest(&s, &aud, "login_failed");
    assert_eq!((rec["username"].as_str(), rec["result"].as_str()), (Some("xx-admin"), Some("failure")));

    // Lockout after five failures; the system administrator unlocks.
    for _ in 0..5 {
        code(&login(&s, "xx-jiwei", "wrong-password"), 401, "invalid_credentials");
    }
    let locked = login(&s, "xx-jiwei", "ducha-demo");
    code(&locked, 429, "too_many_requests");
    assert_eq!(newest(&s, &aud, "locked_out")["username"], "xx-jiwei");
    code(&post(&s, "/api/v1/tenants/xxjd/users/xx-jiwei/unlock", Some(&sec), &json!({})), 403, "forbidden");
    status(&post(&s, "/api/v1/tenants/xxjd/users/xx-jiwei/unlock", Some(&sys), &json!({})), 200);
    let rec = newest(&s, &aud, "unlock");
    assert_eq!((rec["username"].as_str(), rec["object"].as_str()), (Some("sysadmin"), Some("user:xx-jiwei")));
    let jiwei = status(&login(&s, "xx-jiwei", "ducha-demo"), 200)["access_token"].as_str().unwrap().to_owned();

    // Logout.
    status(&post(&s, "/api/v1/auth/logout", Some(&jiwei), &json!({})), 204);
    assert_eq!(newest(&s, &aud, "logout")["username"], "xx-jiwei");
    code(&get(&s, "/api/v1/me", Some(&jiwei)), 401, "token_revoked");

    // Password changed by its owner, reset by an administrator.
    let dong = s.login("xx-dongfeng");
    let body = json!({"current_password": "ducha-demo", "new_password": "Dongfeng-2026"});
    status(&post(&s, "/api/v1/auth/password", Some(&dong), &body), 200);
    assert_eq!(newest(&s, &aud, "password_changed")["username"], "xx-dongfeng");
    let body = json!({"password": "Temporary-2026"});
    status(&post(&s, "/api/v1/tenants/xxjd/users/xx-dongfeng/password", Some(&sys), &body), 200);
    let rec = newest(&s, &aud, "password_reset");
    assert_eq!((rec["username"].as_str(), rec["object"].as_str()), (Some("sysadmin"), Some("user:xx-dongfeng")));
    assert!(!rec.to_string().contains("Temporary-2026"), "no password in a record: {rec}");

    // Grants and revocations.
    let role = json!({"role": "auditor"});
    status(&post(&s, "/api/v1/tenants/xxjd/users/xx-duchazu2/roles", Some(&sec), &role), 200);
    let rec = newest(&s, &aud, "role_granted");
    assert_eq!((rec["role"].as_str(), rec["object"].as_str()), (Some("security_admin"), Some("user:xx-duchazu2")));
    assert!(rec["detail"].as_str().unwrap().contains("auditor"), "{rec}");
    status(&post(&s, "/api/v1/tenants/xxjd/users/xx-duchazu2/roles/revoke", Some(&sec), &role), 200);
    assert_eq!(newest(&s, &aud, "role_revoked")["object"], "user:xx-duchazu2");
    // An account created and disabled.
    let new = json!({"username": "xx-temp", "display_name": "临时账号", "password": "Temp-acct-2026"});
    status(&post(&s, "/api/v1/tenants/xxjd/users", Some(&sys), &new), 201);
    assert_eq!(newest(&s, &aud, "account_created")["object"], "user:xx-temp");
    status(&post(&s, "/api/v1/tenants/xxjd/users/xx-temp/disable", Some(&sys), &json!({"reason": "测试"})), 200);
    assert_eq!(newest(&s, &aud, "account_disabled")["detail"], "测试");

    // Every download or export: report, ledger, circular, event log, evidence.
    let downloads = [
        ("/api/v1/tenants/xxjd/inspections/2023-ideology/report", "document_downloaded", "report:xxjd/2023-ideology"),
        ("/api/v1/tenants/xxjd/ledger.xlsx", "ledger_exported", "ledger:xxjd"),
        ("/api/v1/districts/xxq/circular?year=2023", "circular_exported", "circular:xxq"),
        ("/api/v1/tenants/xxjd/events?limit=5", "events_exported", "events:xxjd"),
        ("/api/v1/tenants/xxjd/streams/inspection-2023-ideology/events", "events_exported", "stream:xxjd/"),
    ];
    let officer = s.login("qu-xcb");
    let auditor = s.login("xx-jiwei");
    for (path, action, object) in downloads {
        let token = if path.contains("circular") {
            &officer
        } else if path.contains("events") {
            &auditor
        } else {
            &admin
        };
        status(&get(&s, path, Some(token)), 200);
        let rec = newest(&s, &aud, action);
        assert!(rec["object"].as_str().unwrap().starts_with(object), "{path}: {rec}");
        assert_eq!(rec["result"], "success");
    }
    let boundary = "sec-boundary-1";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"整改台账.pdf\"\r\n\
             Content-Type: application/pdf\r\n\r\n%PDF-1.4\n%security test\n%%EOF\n\r\n--{boundary}--\r\n"
        )
        .as_bytes(),
    );
    let ct = format!("multipart/form-data; boundary={boundary}");
    let auth = format!("Bearer {admin}");
    let up = s.request(
        "POST",
        "/api/v1/tenants/xxjd/evidence",
        None,
        &[("Content-Type", &ct), ("Authorization", &auth)],
        Some(&body),
    );
    let sha = status(&up, 201)["sha256"].as_str().expect("sha256").to_owned();
    status(&get(&s, &format!("/api/v1/tenants/xxjd/evidence/{sha}"), Some(&admin)), 200);
    assert_eq!(newest(&s, &aud, "evidence_downloaded")["object"], format!("evidence:xxjd/{sha}"));

    // A refused request (403), with who and what.
    let inspector = s.login("xx-duchazu1");
    code(
        &post(&s, "/api/v1/tenants/xxjd/categories", Some(&inspector), &json!({"code": "zz", "name": "x"})),
        403,
        "forbidden",
    );
    let rec = newest(&s, &aud, "access_denied");
    assert_eq!((rec["username"].as_str(), rec["result"].as_str()), (Some("xx-duchazu1"), Some("refused")));
    assert_eq!(rec["object"], "POST /api/v1/tenants/xxjd/categories");

    // The audit administrator's own searches and exports.
    let rec = newest(&s, &aud, "audit_searched");
    assert_eq!((rec["username"].as_str(), rec["detail"].as_str()), (Some("audadmin"), Some("action=audit_searched")));
    let x = get(&s, "/api/v1/security/audit.xlsx?result=refused", Some(&aud));
    status(&x, 200);
    assert!(x.body.starts_with(b"PK"), "an XLSX (zip) file");
    assert_eq!(newest(&s, &aud, "audit_exported")["detail"], "result=refused");
    // The export read by an independent reader (openpyxl): the refused requests are its rows.
    let file = s.data_dir.path().join("audit.xlsx");
    std::fs::write(&file, &x.body).unwrap();
    let out = Command::new("python3")
        .args([
            "-c",
            "import openpyxl,sys,json; ws=openpyxl.load_workbook(sys.argv[1]).active; \
             print(json.dumps([[c.value for c in r] for r in ws.iter_rows(min_row=2)]))",
        ])
        .arg(&file)
        .output()
        .expect("openpyxl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows[0][2], "操作");
    assert!(rows.len() >= 2, "{rows:?}");
    assert!(rows[1..].iter().all(|r| r[3] == "拒绝"), "{rows:?}");

    // Searches filter by user, result, address and time.
    let by_user = records(&s, &aud, "user=xx-jiwei&result=failure");
    assert_eq!(by_user.len(), 5, "the five failures");
    assert!(records(&s, &aud, "addr=10.").is_empty());
    assert!(records(&s, &aud, "from=2099-01-01T00:00:00Z").is_empty());
    assert!(!records(&s, &aud, "to=2099-01-01T00:00:00Z").is_empty());
    code(&get(&s, "/api/v1/security/audit?from=yesterday", Some(&aud)), 400, "invalid_query");
    code(&get(&s, "/api/v1/security/audit?result=maybe", Some(&aud)), 400, "invalid_query");
    code(&get(&s, "/api/v1/security/audit?limit=0", Some(&aud)), 400, "invalid_query");

    // The policy (last: from here on the real policy applies to logins).
    let mut policy = real_policy("administrators");
    policy["max_age_days"] = json!(60);
    status(&post(&s, "/api/v1/security/policy", Some(&sec), &policy), 200);
    assert!(newest(&s, &aud, "policy_changed")["detail"].as_str().unwrap().contains("\"max_age_days\":60"));

    // The records are a chain of their own, which `ducha verify` and the independent checker cover.
    let mut s = s;
    s.kill();
    let out = ducha(s.data_dir.path(), &["verify", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let chains = report["tenants"].as_array().expect("tenants");
    let security = chains.iter().find(|t| t["tenant"] == "_security").expect("the _security chain is verified");
    assert!(security["events"].as_u64().unwrap() > 30, "{security}");
    let script = repo_root().join("tests/audit/verify_chain.py");
    let out = Command::new("python3").arg(script).arg(s.data_dir.path().join("ducha.db")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let independent: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(independent["tenants"]["_security"]["head"], security["head"]);
}

/// Makes every append to the security audit log fail (a trigger on the real SQLite file, added by
/// another process while the server runs), or lifts that again.
fn break_audit_log(s: &Server, broken: bool) {
    let sql = if broken {
        "CREATE TRIGGER no_audit BEFORE INSERT ON events WHEN NEW.tenant = '_security' \
         BEGIN SELECT RAISE(ABORT, 'the audit log is out of service'); END;"
    } else {
        "DROP TRIGGER no_audit;"
    };
    let out = Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()"])
        .arg(s.data_dir.path().join("ducha.db"))
        .arg(sql)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn when_the_audit_record_cannot_be_written_the_action_does_not_happen() {
    let s = Server::demo();
    let sys = s.login("sysadmin");
    let sec = s.login("secadmin");
    let admin = s.login("xx-admin");
    let head = s.head_position();
    let records = s.security_records();
    break_audit_log(&s, true);

    // No login.
    code(&login(&s, "xx-jiwei", "ducha-demo"), 503, "audit_unavailable");
    // No grant, no account, no reset, no policy change: nothing appended.
    let role = json!({"role": "auditor"});
    code(&post(&s, "/api/v1/tenants/xxjd/users/xx-duchazu2/roles", Some(&sec), &role), 503, "audit_unavailable");
    let new = json!({"username": "xx-ghost", "display_name": "x", "password": "Ghost-2026-x"});
    code(&post(&s, "/api/v1/tenants/xxjd/users", Some(&sys), &new), 503, "audit_unavailable");
    let reset = json!({"password": "Another-2026"});
    code(&post(&s, "/api/v1/tenants/xxjd/users/xx-dongfeng/password", Some(&sys), &reset), 503, "audit_unavailable");
    code(&post(&s, "/api/v1/security/policy", Some(&sec), &real_policy("everyone")), 503, "audit_unavailable");
    // No download.
    code(&get(&s, "/api/v1/tenants/xxjd/ledger.xlsx", Some(&admin)), 503, "audit_unavailable");
    code(&get(&s, "/api/v1/tenants/xxjd/inspections/2023-ideology/report", Some(&admin)), 503, "audit_unavailable");
    // No logout (the session stays, as the record of its end could not be written).
    code(&post(&s, "/api/v1/auth/logout", Some(&admin), &json!({})), 503, "audit_unavailable");
    status(&get(&s, "/api/v1/me", Some(&admin)), 200);
    assert_eq!((s.head_position(), s.security_records()), (head, records), "nothing at all was appended");
    let user = status(&get(&s, "/api/v1/tenants/xxjd/users/xx-duchazu2", Some(&sys)), 200);
    assert_eq!(user["grants"].as_array().map(Vec::len), Some(1), "{user}");

    // Back in service: the same actions go through, each recorded.
    break_audit_log(&s, false);
    status(&login(&s, "xx-jiwei", "ducha-demo"), 200);
    status(&post(&s, "/api/v1/tenants/xxjd/users/xx-duchazu2/roles", Some(&sec), &role), 200);
    status(&get(&s, "/api/v1/tenants/xxjd/ledger.xlsx", Some(&admin)), 200);
    assert_eq!(s.security_records(), records + 3);
}

#[test]
fn passwords_follow_the_policy_rule_by_rule() {
    let s = Server::demo();
    let sec = s.login("secadmin");
    let sys = s.login("sysadmin");
    status(&post(&s, "/api/v1/security/policy", Some(&sec), &real_policy("administrators")), 200);

    // The first login of a new account must change its (temporary) password first.
    let new = json!({"username": "xx-lina", "display_name": "督查组 李娜", "password": "Li-na-first-1"});
    status(&post(&s, "/api/v1/tenants/xxjd/users", Some(&sys), &new), 201);
    let first = status(&login(&s, "xx-lina", "Li-na-first-1"), 200);
    assert_eq!(first["next"], "password_change", "{first}");
    assert!(first["next_reason"].as_str().unwrap().contains("首次登录"), "{first}");
    let step = first["access_token"].as_str().unwrap().to_owned();
    code(&get(&s, "/api/v1/me", Some(&step)), 401, "token_wrong_purpose");
    code(&get(&s, "/api/v1/tenants/xxjd/inspections", Some(&step)), 401, "token_wrong_purpose");

    // Each rule, named in Chinese (422 weak_password).
    let change = |token: &str, current: &str, new: &str| {
        post(&s, "/api/v1/auth/password", Some(token), &json!({"current_password": current, "new_password": new}))
    };
    let cases = [
        ("Ab1!x", "至少需要 8 个字符"),
        ("abcdefgh12", "至少 3 类"),
        ("ABCDEFGH!!", "至少 3 类"),
        ("Xx-lina-2026", "不能包含用户名"),
    ];
    for (weak, rule) in cases {
        let r = change(&step, "Li-na-first-1", weak);
        code(&r, 422, "weak_password");
        let p = r.json();
        assert_eq!(p["field"], "password", "{p}");
        assert!(p["detail"].as_str().unwrap().contains(rule), "{weak}: {p}");
    }
    code(&change(&step, "wrong-current", "Good-pass-2026"), 422, "wrong_current_password");
    let done = status(&change(&step, "Li-na-first-1", "Good-pass-2026"), 200);
    assert!(done["next"].is_null(), "an inspector needs no second factor: {done}");
    let token = done["access_token"].as_str().unwrap().to_owned();
    status(&get(&s, "/api/v1/me", Some(&token)), 200);

    // Not one of the last five: walk through five more, then each old one is refused.
    let mut current = "Good-pass-2026".to_owned();
    let mut token = token;
    let used: Vec<String> = (1..=5).map(|i| format!("Next-pass-{i}x")).collect();
    for next in &used {
        let r = status(&change(&token, &current, next), 200);
        token = r["access_token"].as_str().unwrap().to_owned();
        current = next.clone();
    }
    for old in used.iter().take(4) {
        let r = change(&token, &current, old);
        code(&r, 422, "weak_password");
        assert!(r.json()["detail"].as_str().unwrap().contains("最近 5 次"), "{}", r.text());
    }
    // The sixth-last is free again.
    status(&change(&token, &current, "Good-pass-2026"), 200);

    // An administrator's reset is temporary: changed at the next login. A weak reset is refused.
    let r = post(&s, "/api/v1/tenants/xxjd/users/xx-lina/password", Some(&sys), &json!({"password": "short"}));
    code(&r, 422, "weak_password");
    status(
        &post(&s, "/api/v1/tenants/xxjd/users/xx-lina/password", Some(&sys), &json!({"password": "Reset-pass-99"})),
        200,
    );
    let after = status(&login(&s, "xx-lina", "Reset-pass-99"), 200);
    assert_eq!(after["next"], "password_change");
    assert!(after["next_reason"].as_str().unwrap().contains("重置"), "{after}");
}

#[test]
fn lockout_lasts_its_time_unless_a_system_administrator_unlocks() {
    let s = Server::demo();
    let sec = s.login("secadmin");
    let sys = s.login("sysadmin");
    let xx = s.login("xx-admin");
    let mut policy = real_policy("administrators");
    policy["lockout_after"] = json!(3);
    policy["lockout_minutes"] = json!(10);
    status(&post(&s, "/api/v1/security/policy", Some(&sec), &policy), 200);
    for _ in 0..3 {
        code(&login(&s, "yy-chaoyang", "wrong"), 401, "invalid_credentials");
    }
    let r = login(&s, "yy-chaoyang", "ducha-demo");
    code(&r, 429, "too_many_requests");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((590..=601).contains(&wait), "the policy's 10 minutes: {wait}");
    // Other accounts from the same address are not locked.
    status(&login(&s, "yy-admin", "ducha-demo"), 200);
    // The sub-district's own admin may unlock its staff; another sub-district's may not.
    code(&post(&s, "/api/v1/tenants/yyjd/users/yy-chaoyang/unlock", Some(&xx), &json!({})), 403, "forbidden");
    status(&post(&s, "/api/v1/tenants/yyjd/users/yy-chaoyang/unlock", Some(&sys), &json!({})), 200);
    let again = status(&login(&s, "yy-chaoyang", "ducha-demo"), 200);
    assert_eq!(again["next"], "password_change", "the real policy: the demo's temporary password");
}

#[test]
fn sessions_end_when_idle_and_slide_while_used() {
    let s = Server::start(true, &[("DUCHA_SESSION_IDLE_SECONDS", "2")]);
    let busy = s.login("xx-admin");
    let idle = s.login("xx-duchazu1");
    // Used every half second for three seconds: still alive.
    for _ in 0..6 {
        std::thread::sleep(std::time::Duration::from_millis(500));
        status(&get(&s, "/api/v1/me", Some(&busy)), 200);
    }
    // Not used for three seconds: ended, and it stays ended.
    code(&get(&s, "/api/v1/me", Some(&idle)), 401, "session_expired");
    code(&get(&s, "/api/v1/me", Some(&idle)), 401, "session_expired");
    // An administrator's action ends every session of the account at once.
    let sys = s.login("sysadmin");
    status(
        &post(&s, "/api/v1/tenants/xxjd/users/xx-admin/password", Some(&sys), &json!({"password": "Reset-2026-xx"})),
        200,
    );
    code(&get(&s, "/api/v1/me", Some(&busy)), 401, "session_ended");
}

#[test]
fn totp_enrolment_two_step_login_recovery_codes_and_no_secret_in_the_logs() {
    let s = Server::start(true, &[("DUCHA_LOG_LEVEL", "debug")]);
    let sec = s.login("secadmin");
    status(&post(&s, "/api/v1/security/policy", Some(&sec), &real_policy("administrators")), 200);

    // The system administrator's first login under the real policy: a new password, then the
    // second factor the policy requires of the three administrators (enrolled by QR code).
    let first = status(&login(&s, "sysadmin", "ducha-demo"), 200);
    assert_eq!(first["next"], "password_change");
    let step = first["access_token"].as_str().unwrap().to_owned();
    let body = json!({"current_password": "ducha-demo", "new_password": "Sys-admin-2026"});
    let changed = status(&post(&s, "/api/v1/auth/password", Some(&step), &body), 200);
    assert_eq!(changed["next"], "second_factor_enrol", "{changed}");
    let step = changed["access_token"].as_str().unwrap().to_owned();
    code(&get(&s, "/api/v1/me", Some(&step)), 401, "token_wrong_purpose");
    let enrolment = status(&post(&s, "/api/v1/auth/second-factor/enrol", Some(&step), &json!({})), 200);
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    assert!(
        enrolment["qr_svg"].as_str().unwrap().starts_with("<?xml")
            || enrolment["qr_svg"].as_str().unwrap().contains("<svg")
    );
    let uri = parse_uri(enrolment["otpauth_uri"].as_str().unwrap());
    assert_eq!(uri, json!(["Ducha督查", "sysadmin", secret, 6, 30]), "what an authenticator app reads");
    code(
        &post(&s, "/api/v1/auth/second-factor/confirm", Some(&step), &json!({"code": "000000"})),
        422,
        "invalid_second_factor",
    );
    let enrolled =
        status(&post(&s, "/api/v1/auth/second-factor/confirm", Some(&step), &json!({"code": totp(&secret, 0)})), 200);
    let codes: Vec<String> =
        enrolled["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(codes.len(), 10);
    let token = enrolled["login"]["access_token"].as_str().unwrap().to_owned();
    assert!(enrolled["login"]["next"].is_null());
    let state = status(&get(&s, "/api/v1/auth/second-factor", Some(&token)), 200);
    assert_eq!(state, json!({"enrolled": true, "required": true, "recovery_codes_left": 10}));
    status(&post(&s, "/api/v1/auth/logout", Some(&token), &json!({})), 204);

    // Two steps from now on: the password, then a code (pyotp's, for the next time step).
    let one = status(&login(&s, "sysadmin", "Sys-admin-2026"), 200);
    assert_eq!(one["next"], "second_factor");
    let step = one["access_token"].as_str().unwrap().to_owned();
    code(&get(&s, "/api/v1/me", Some(&step)), 401, "token_wrong_purpose");
    code(
        &post(&s, "/api/v1/auth/login/second-factor", Some(&step), &json!({"code": "123456"})),
        401,
        "invalid_second_factor",
    );
    let code_now = totp(&secret, 30);
    let two = status(&post(&s, "/api/v1/auth/login/second-factor", Some(&step), &json!({"code": code_now})), 200);
    assert!(two["next"].is_null());
    status(&get(&s, "/api/v1/me", Some(two["access_token"].as_str().unwrap())), 200);
    // The same code again (a code seen over a shoulder): refused.
    let again = status(&login(&s, "sysadmin", "Sys-admin-2026"), 200);
    let step = again["access_token"].as_str().unwrap().to_owned();
    code(
        &post(&s, "/api/v1/auth/login/second-factor", Some(&step), &json!({"code": code_now})),
        401,
        "invalid_second_factor",
    );
    // A recovery code works once.
    let r = post(&s, "/api/v1/auth/login/second-factor", Some(&step), &json!({"code": codes[0]}));
    let by_recovery = status(&r, 200)["access_token"].as_str().unwrap().to_owned();
    let state = status(&get(&s, "/api/v1/auth/second-factor", Some(&by_recovery)), 200);
    assert_eq!(state["recovery_codes_left"], 9);
    let again = status(&login(&s, "sysadmin", "Sys-admin-2026"), 200);
    let step = again["access_token"].as_str().unwrap().to_owned();
    code(
        &post(&s, "/api/v1/auth/login/second-factor", Some(&step), &json!({"code": codes[0]})),
        401,
        "invalid_second_factor",
    );
    // An access token cannot stand in for the second step, nor a step token for another step.
    code(
        &post(&s, "/api/v1/auth/login/second-factor", Some(&by_recovery), &json!({"code": codes[1]})),
        401,
        "token_wrong_purpose",
    );

    // The security administrator resets an administrator's second factor (the system
    // administrator cannot reset its own kind's); the next login enrols again.
    let aud = walk_login(&s, "audadmin", "ducha-demo", "Aud-admin-2026", None);
    assert!(aud.secret.is_some() && aud.recovery_codes.len() == 10);
    let r = post(
        &s,
        "/api/v1/platform/users/audadmin/second-factor/reset",
        Some(&by_recovery),
        &json!({"reason": "手机丢失"}),
    );
    code(&r, 403, "forbidden");
    let r = post(&s, "/api/v1/platform/users/audadmin/second-factor/reset", Some(&sec), &json!({"reason": "手机丢失"}));
    status(&r, 200);
    code(&get(&s, "/api/v1/me", Some(&aud.token)), 401, "session_ended");
    let again = status(&login(&s, "audadmin", "Aud-admin-2026"), 200);
    assert_eq!(again["next"], "second_factor_enrol");

    // The second factor's records: enrolment, each use (and the failures), the reset.
    let audit = walk_login(&s, "audadmin", "Aud-admin-2026", "unused-Aud-1", None);
    let uses = records(&s, &audit.token, "action=second_factor_used&user=sysadmin");
    let results: Vec<&str> = uses.iter().map(|r| r["result"].as_str().unwrap()).collect();
    assert_eq!(results, ["failure", "success", "failure", "success", "failure"], "newest first");
    assert_eq!(uses[1]["object"], "recovery code");
    assert_eq!(uses[3]["object"], "totp");
    let enrolled = records(&s, &audit.token, "action=second_factor_enrolled&user=sysadmin&result=success");
    assert_eq!(enrolled.len(), 1, "{enrolled:?}");
    let resets = records(&s, &audit.token, "action=second_factor_reset");
    let results: Vec<&str> = resets.iter().map(|r| r["result"].as_str().unwrap()).collect();
    assert_eq!(results, ["success", "refused"], "the security administrator's, and the system administrator's attempt");

    // Not one credential, token, secret or code in the server's log (at debug level).
    let log = s.log();
    assert!(log.len() > 1000, "the log has the scenario in it");
    let mut secrets: Vec<String> = vec![
        "ducha-demo".into(),
        "Sys-admin-2026".into(),
        "Aud-admin-2026".into(),
        secret.clone(),
        code_now.clone(),
        token.clone(),
        by_recovery.clone(),
        sec.clone(),
    ];
    secrets.extend(codes.iter().cloned());
    secrets.extend(aud.recovery_codes.iter().cloned());
    secrets.extend(aud.secret.iter().cloned());
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "the log contains a secret ({} chars)", secret.len());
    }
    // The JWT's signature part alone either.
    let signature = token.rsplit('.').next().unwrap();
    assert!(!log.contains(signature));
}

#[test]
fn security_headers_on_every_answer_and_hsts_when_configured() {
    let s = Server::demo();
    for path in ["/api/v1/healthz", "/api/v1/openapi.json", "/api/v1/nowhere", "/"] {
        let r = get(&s, path, None);
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{path}");
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{path}");
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
        assert!(r.header("content-security-policy").is_some_and(|c| c.contains("frame-ancestors 'none'")), "{path}");
        assert!(r.header("strict-transport-security").is_none(), "no HSTS unless configured: {path}");
    }
    let tls = Server::start(false, &[("DUCHA_HSTS_MAX_AGE_SECONDS", "31536000")]);
    let r = get(&tls, "/api/v1/healthz", None);
    assert_eq!(r.header("strict-transport-security"), Some("max-age=31536000; includeSubDomains"));
}

/// An existing deployment with one all-powerful platform administrator moves to the three with
/// `ducha admin create --role …`; the platform administrator keeps the platform (districts,
/// sub-districts) but no longer manages accounts.
#[test]
fn an_existing_deployment_moves_to_the_three_administrators_by_command() {
    let create = |data: &std::path::Path, args: &[&str], password: &str| {
        use std::io::Write;
        let mut child = Command::new(ducha_bin())
            .arg("--data-dir")
            .arg(data)
            .args(["--synchronous", "off", "admin", "create"])
            .args(args)
            .env_remove("DUCHA_DATA_DIR")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    // The old deployment: one platform administrator, who set up a district.
    let data = tempfile::tempdir().unwrap();
    let out = create(data.path(), &["root"], "Platform-2020");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut s = Server::start_in(data, false, &[]);
    let root = walk_login(&s, "root", "Platform-2020", "Platform-2026", None);
    assert!(root.secret.is_some(), "a platform administrator needs a second factor under the real policy");
    status(&post(&s, "/api/v1/districts", Some(&root.token), &json!({"district_id": "xxq", "name": "XX区"})), 201);
    let account = json!({"username": "qu-xcb", "display_name": "区委宣传部", "password": "District-2026"});
    code(&post(&s, "/api/v1/districts/xxq/users", Some(&root.token), &account), 403, "forbidden");
    s.kill();
    let data = std::mem::replace(&mut s.data_dir, tempfile::tempdir().unwrap());
    drop(s);

    // The move: one command per administrator; no account may hold two of them.
    for (user, role) in [("ops", "system_admin"), ("sec", "security_admin"), ("aud", "audit_admin")] {
        let out = create(data.path(), &[user, "--role", role], "Admin-pass-2026");
        assert!(out.status.success(), "{user}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains(role));
    }
    let out = create(data.path(), &["ops", "--role", "security_admin"], "Admin-pass-2026");
    assert!(!out.status.success(), "the username exists");

    let s = Server::start_in(data, false, &[]);
    let ops = walk_login(&s, "ops", "Admin-pass-2026", "Night-shift-2026", None);
    assert!(ops.secret.is_some(), "the three need a second factor under the real policy");
    let sec = walk_login(&s, "sec", "Admin-pass-2026", "Key-keeper-2026", None);
    status(&post(&s, "/api/v1/districts/xxq/users", Some(&ops.token), &account), 201);
    let role = json!({"role": "district_officer"});
    status(&post(&s, "/api/v1/districts/xxq/users/qu-xcb/roles", Some(&sec.token), &role), 200);
    let officer = walk_login(&s, "qu-xcb", "District-2026", "District-2026-b", None);
    assert!(officer.secret.is_none(), "business roles need no second factor by default");
    status(&get(&s, "/api/v1/districts/xxq/tenants", Some(&officer.token)), 200);
    // The root account still runs the platform.
    let root = walk_login(&s, "root", "Platform-2026", "unused", root.secret.as_deref());
    status(&post(&s, "/api/v1/districts", Some(&root.token), &json!({"district_id": "yyq", "name": "YY区"})), 201);
}
