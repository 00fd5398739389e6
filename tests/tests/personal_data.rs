//! Personal data (PIPL, issue 10) end to end against the real `ducha serve --demo` on SQLite: names
//! and phone numbers are sealed in the database file (read by Python's sqlite3, not by Ducha), shown
//! opened by the API and the documents, masked for whoever does not manage the account; erasing a
//! person destroys their key only — every view, export, past state and restart shows
//! 「已删除的个人信息」, the erasure is recorded, and every chain still verifies (`ducha verify` and
//! the independent Python verifier).

use ducha_tests::{Response, Server, ducha_ok, ledger_rows, repo_root};
use serde_json::{Value, json};
use std::process::Command;

const TENANT: &str = "/api/v1/tenants/xxjd";
const F2: &str = "/api/v1/tenants/xxjd/inspections/2023-ideology/findings/xx-2023-f2";
const ERASED: &str = "已删除的个人信息";

fn ok(r: &Response, what: &str) -> Value {
    assert!((200..300).contains(&r.status), "{what}: {} {}", r.status, r.text());
    r.json()
}

fn problem(r: &Response, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"), "{}", r.text());
    r.json()
}

/// Every stored text of the database that contains `needle`, found by Python's sqlite3 over every
/// table and column (the events, idempotency records…), and every read-model checkpoint file
/// beside it (`ducha.db.checkpoints/`) whose bytes contain it (a model in clear is searched
/// decompressed).
fn db_hits(db: &std::path::Path, needle: &str) -> Vec<String> {
    let script = r#"
import sqlite3, sys
c = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)
needle = sys.argv[2]
for (t,) in c.execute("select name from sqlite_master where type='table'").fetchall():
    cols = [r[1] for r in c.execute(f'pragma table_info("{t}")')]
    for row in c.execute(f'select * from "{t}"'):
        for col, v in zip(cols, row):
            if isinstance(v, bytes):
                v = v.decode('utf-8', 'replace')
            if isinstance(v, str) and needle in v:
                print(f'{t}.{col}')
import os, struct, zlib
def opened(data):
    # A read model in clear (DUCHARM5: zlib sections) is searched decompressed; a sealed one is
    # ciphertext whatever it holds.
    i = data.find(b'DUCHARM5')
    if i < 0:
        return data
    (n,) = struct.unpack_from('<I', data, i + 8)
    lens = struct.unpack_from(f'<{2 * n}Q', data, i + 12)[0::2]  # (compressed, JSON) per section
    at, out = i + 12 + 16 * n, data
    for l in lens:
        out += zlib.decompress(data[at:at + l])
        at += l
    return out
folder = sys.argv[1] + '.checkpoints'
for f in (os.listdir(folder) if os.path.isdir(folder) else []):
    if needle.encode() in opened(open(os.path.join(folder, f), 'rb').read()):
        print(f'checkpoint file {f}')
"#;
    let out = Command::new("python3").args(["-c", script]).arg(db).arg(needle).output().expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

fn ledger_row(s: &Server, token: &str, finding: &str) -> Value {
    let page = ok(&s.get(&format!("{TENANT}/ledger?inspection=2023-ideology&page_size=100"), Some(token)), "ledger");
    page["rows"].as_array().unwrap().iter().find(|r| r["finding_id"] == finding).cloned().expect("row")
}

fn verify_both(s: &Server) {
    let out = ducha_ok(s.data_dir.path(), &["verify"]);
    assert!(!out.contains("FAIL"), "{out}");
    let py = Command::new("python3")
        .arg(repo_root().join("tests/audit/verify_chain.py"))
        .arg(s.data_dir.path().join("ducha.db"))
        .output()
        .expect("python3");
    assert!(
        py.status.success(),
        "verify_chain.py: {}{}",
        String::from_utf8_lossy(&py.stdout),
        String::from_utf8_lossy(&py.stderr)
    );
}

#[test]
fn names_are_sealed_and_erasing_one_person_changes_nothing_else() {
    let mut s = Server::demo();
    let db = s.data_dir.path().join("ducha.db");
    let admin = s.login("xx-admin");
    let deadline = (chrono::Utc::now() + chrono::Duration::days(60)).date_naive().to_string();
    ok(
        &s.post_json(
            &format!("{F2}/assign"),
            Some(&admin),
            &json!({"title": "持续抓好意识形态责任制落实", "measure": "严格执行《实施办法》。",
                    "responsible_unit": "街道党政办", "leader": "欧阳明", "person": "司马青、诸葛兰", "deadline": deadline}),
        ),
        "assign",
    );
    // Opened for the views …
    let row = ledger_row(&s, &admin, "xx-2023-f2");
    assert_eq!((row["leader"].as_str(), row["person"].as_str()), (Some("欧阳明"), Some("司马青、诸葛兰")));
    // … sealed in the file: no table holds the names (the events, the checkpoint, anything).
    for name in ["欧阳明", "司马青", "诸葛兰"] {
        assert_eq!(db_hits(&db, name), Vec::<String>::new(), "{name} in clear");
    }
    assert!(!db_hits(&db, "\"$pii\"").is_empty(), "sealed values are in the events");
    // An issued report, and the audit API's raw events: ciphertext and key ids, no names.
    let issued = ok(
        &s.post_json(
            &format!("{TENANT}/inspections/2023-ideology/report/issue"),
            Some(&admin),
            &json!({"format": "txt"}),
        ),
        "issue",
    );
    let auditor = s.login("qu-jjw");
    let raw = ok(&s.get(&format!("{TENANT}/streams/finding-xx-2023-f2/events"), Some(&auditor)), "stream events");
    let raw_text = raw.to_string();
    assert!(raw_text.contains("$pii") && !raw_text.contains("司马青"), "{raw_text}");
    // The history of the finding (opened for those who may read it).
    let history = ok(&s.get(F2, Some(&admin)), "finding").to_string();
    assert!(history.contains("司马青、诸葛兰"), "{history}");

    // Erasure: only the security administrator; bad requests change nothing.
    let secadmin = s.login("secadmin");
    let url = "/api/v1/security/personal-data/erasures";
    let business = s.head_position();
    assert_eq!(
        problem(&s.post_json(url, Some(&admin), &json!({"tenant_id": "xxjd", "name": "司马青", "reason": "r"})), 403)["code"],
        "forbidden"
    );
    assert_eq!(
        problem(
            &s.post_json(
                url,
                Some(&secadmin),
                &json!({"user_id": "xx-duchazu1", "tenant_id": "xxjd", "name": "司马青", "reason": "r"})
            ),
            400
        )["code"],
        "invalid_erasure"
    );
    problem(&s.post_json(url, Some(&secadmin), &json!({"tenant_id": "xxjd", "name": "司马青", "reason": "  "})), 422);
    assert_eq!(
        problem(
            &s.post_json(
                url,
                Some(&secadmin),
                &json!({"tenant_id": "xxjd", "name": "无此人", "reason": "申请 2026-017"})
            ),
            404
        )["code"],
        "not_found"
    );
    assert_eq!(
        problem(
            &s.post_json(
                url,
                Some(&secadmin),
                &json!({"tenant_id": "xxjd", "name": "司马青", "reason": "x", "extra": 1})
            ),
            422,
        )["code"],
        "invalid_body"
    );
    assert_eq!(s.head_position(), business, "refused requests change nothing");
    assert_eq!(db_hits(&db, "PersonalDataErased").len(), 0, "no erasure recorded by a refused request");

    let done = ok(
        &s.post_json(
            url,
            Some(&secadmin),
            &json!({"tenant_id": "xxjd", "name": "司马青", "reason": "个人信息删除申请 2026-017 号"}),
        ),
        "erase",
    );
    assert_eq!(done["key_ids"].as_array().map(Vec::len), Some(1));
    // Gone where it was; the other person named with him stays; nothing else changed.
    let row = ledger_row(&s, &admin, "xx-2023-f2");
    assert_eq!(row["person"].as_str(), Some(format!("{ERASED}、诸葛兰").as_str()));
    assert_eq!(row["leader"].as_str(), Some("欧阳明"));
    assert_eq!(row["responsible_unit"].as_str(), Some("街道党政办"));
    let history = ok(&s.get(F2, Some(&admin)), "finding").to_string();
    assert!(history.contains(ERASED) && !history.contains("司马青"), "{history}");
    // The workbook, read by openpyxl.
    let xlsx = s.get(&format!("{TENANT}/ledger.xlsx?inspection=2023-ideology"), Some(&admin));
    assert_eq!(xlsx.status, 200);
    assert_eq!(xlsx.header("x-ducha-personal-data-erased"), Some("true"), "the workbook says so");
    let cells: String = ledger_rows(&xlsx.body).iter().flatten().filter_map(|v| v.as_str()).collect();
    assert!(cells.contains(&format!("{ERASED}、诸葛兰")) && !cells.contains("司马青"), "{cells}");
    // A past state shows it erased too (erasure reaches history views).
    let past = ok(
        &s.get(
            &format!("{TENANT}/ledger?inspection=2023-ideology&page_size=100&at_position={}", s.log_head()),
            Some(&admin),
        ),
        "ledger as of",
    );
    assert!(past.to_string().contains(ERASED) && !past.to_string().contains("司马青"));
    // The report issued before: regenerating it at its position gives the bytes that were issued
    // (the 督查报告 names no one), so its recorded SHA-256 still holds.
    let again = s.get(
        &format!("{TENANT}/inspections/2023-ideology/report?format=txt&at_position={}", issued["log_position"]),
        Some(&admin),
    );
    assert_eq!(again.status, 200);
    assert_eq!(again.header("x-ducha-sha256"), issued["sha256"].as_str());
    // The erasure is recorded, naming nobody; a second erasure of the same person finds nothing.
    let list = ok(&s.get(url, Some(&secadmin)), "erasures");
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["reason"], "个人信息删除申请 2026-017 号");
    assert!(!list.to_string().contains("司马青"));
    problem(
        &s.post_json(url, Some(&secadmin), &json!({"tenant_id": "xxjd", "name": "司马青", "reason": "again"})),
        404,
    );
    let status = ok(&s.get("/api/v1/security/personal-data", Some(&secadmin)), "status");
    assert_eq!(
        (status["sealed"].as_bool(), status["cipher"].as_str(), status["erasures"].as_u64()),
        (Some(true), Some("sm4-gcm"), Some(1))
    );
    // Every chain verifies, by Ducha and by the independent verifier.
    verify_both(&s);

    // After a restart (checkpoint and all) it is still erased.
    s.restart(&[]);
    let admin = s.login("xx-admin");
    let row = ledger_row(&s, &admin, "xx-2023-f2");
    assert_eq!(row["person"].as_str(), Some(format!("{ERASED}、诸葛兰").as_str()));
    verify_both(&s);
}

#[test]
fn an_account_is_erased_with_its_phone_and_phones_are_masked_for_others() {
    let s = Server::demo();
    let db = s.data_dir.path().join("ducha.db");
    let admin = s.login("xx-admin");
    let user = format!("{TENANT}/users/xx-duchazu1");
    // Bad numbers are refused and change nothing.
    let head = s.head_position();
    assert_eq!(
        problem(&s.post_json(&format!("{user}/contact"), Some(&admin), &json!({"phone": "call me"})), 422)["code"],
        "invalid"
    );
    assert_eq!(s.head_position(), head);
    ok(&s.post_json(&format!("{user}/contact"), Some(&admin), &json!({"phone": "13812341234"})), "contact");
    assert_eq!(db_hits(&db, "13812341234"), Vec::<String>::new(), "the number is sealed in the file");
    // Whole for whoever manages the account and for the user; masked for an auditor.
    assert_eq!(ok(&s.get(&user, Some(&admin)), "user")["phone"], "13812341234");
    let own = s.login("xx-duchazu1");
    assert_eq!(ok(&s.get(&user, Some(&own)), "own")["phone"], "13812341234");
    let auditor = s.login("qu-jjw");
    let seen = s.get(&user, Some(&auditor));
    if seen.status == 200 {
        assert_eq!(seen.json()["phone"], "138****1234");
    }
    let sysadmin = s.login("sysadmin");
    assert_eq!(ok(&s.get(&user, Some(&sysadmin)), "sysadmin")["phone"], "13812341234");
    // The security log records the change with the number masked.
    assert!(!db_hits(&db, "138****1234").is_empty());
    let name = ok(&s.get(&user, Some(&admin)), "user")["display_name"].as_str().unwrap().to_owned();
    assert_eq!(db_hits(&db, &name), Vec::<String>::new(), "{name} in clear");

    let secadmin = s.login("secadmin");
    ok(
        &s.post_json(
            "/api/v1/security/personal-data/erasures",
            Some(&secadmin),
            &json!({"user_id": "xx-duchazu1", "reason": "离职人员信息删除 2026-018"}),
        ),
        "erase",
    );
    let after = ok(&s.get(&user, Some(&admin)), "user after");
    assert_eq!((after["display_name"].as_str(), after["phone"].as_str()), (Some(ERASED), Some(ERASED)));
    // The account itself (its id, username and roles) is untouched; its security records keep
    // their actions with the address erased.
    assert_eq!(after["username"], "xx-duchazu1");
    let audadmin = s.login("audadmin");
    let records = ok(&s.get("/api/v1/security/audit?user=xx-duchazu1&limit=1000", Some(&audadmin)), "audit");
    let records = records["records"].as_array().unwrap().clone();
    assert!(!records.is_empty());
    assert!(records.iter().all(|r| r["client_addr"] == ERASED), "{records:?}");
    verify_both(&s);
}

/// A backup carries the person keys, still wrapped, and never the master key: restored beside the
/// same master key the names open again; beside another master key they cannot.
#[test]
fn backups_carry_the_wrapped_keys_but_not_the_master_key() {
    let s = Server::demo();
    let admin = s.login("xx-admin");
    let deadline = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive().to_string();
    ok(
        &s.post_json(
            &format!("{F2}/assign"),
            Some(&admin),
            &json!({"title": "抓好落实", "measure": "严格执行。", "responsible_unit": "街道党政办",
                    "leader": "欧阳明", "person": "司马青", "deadline": deadline}),
        ),
        "assign",
    );
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("backup.tar");
    ducha_ok(s.data_dir.path(), &["backup", "--out", archive.to_str().unwrap()]);
    let listing = Command::new("python3")
        .args([
            "-c",
            "import sys,tarfile;t=tarfile.open(sys.argv[1]);\
             print('\\n'.join(m.name for m in t.getmembers()));\
             print('NAME-IN-CLEAR' if any('司马青'.encode() in t.extractfile(m).read() for m in t.getmembers() if m.isfile()) else '')",
        ])
        .arg(&archive)
        .output()
        .expect("python3");
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert!(listing.contains("person_keys.json"), "{listing}");
    assert!(!listing.contains("personal.key") && !listing.contains("NAME-IN-CLEAR"), "{listing}");

    let restored = |master: Option<&std::path::Path>| {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("data");
        ducha_ok(dir.path(), &["restore", archive.to_str().unwrap(), "--to", &format!("sqlite:{}", target.display())]);
        if let Some(m) = master {
            std::fs::copy(m, target.join("personal.key")).unwrap();
        }
        let file = dir.path().join("ledger.xlsx");
        ducha_ok(&target, &["ledger", "--tenant", "xxjd", "--out", file.to_str().unwrap()]);
        let cells: String =
            ledger_rows(&std::fs::read(&file).unwrap()).iter().flatten().filter_map(|v| v.as_str()).collect();
        cells
    };
    let same = restored(Some(&s.data_dir.path().join("personal.key")));
    assert!(same.contains("司马青") && same.contains("欧阳明"), "{same}");
    let other = restored(None);
    assert!(!other.contains("司马青") && other.contains(ERASED), "{other}");
}

/// Two replicas on one PostgreSQL database, sharing one master key: names are sealed in the
/// database (read by `psql`, not by Ducha); an erasure made through one replica reaches the other's
/// read model; the chains verify with the independent verifier.
#[test]
fn on_postgresql_an_erasure_through_one_replica_reaches_the_other() {
    let Some(db) = ducha::store::postgres::testing::TestDatabase::create_blocking("personal data: replicas") else {
        return;
    };
    let keys = tempfile::tempdir().unwrap();
    std::fs::write(keys.path().join("jwt.secret"), "共享签名密钥-shared-secret-of-the-deployment-0123456789").unwrap();
    let master = keys.path().join("personal.key");
    let made = Command::new(ducha_tests::ducha_bin()).args(["personal-data", "new-key"]).output().unwrap();
    assert!(made.status.success());
    std::fs::write(&master, &made.stdout).unwrap();
    let master_path = master.display().to_string();
    let env = [("DUCHA_PERSONAL_DATA_KEY_FILE", master_path.as_str())];
    let a = Server::replica(&db.url, &keys.path().join("jwt.secret"), true, &env);
    let b = Server::replica(&db.url, &keys.path().join("jwt.secret"), false, &env);
    let admin = a.login("xx-admin");
    let deadline = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive().to_string();
    ok(
        &a.post_json(
            &format!("{F2}/assign"),
            Some(&admin),
            &json!({"title": "抓好落实", "measure": "严格执行。", "responsible_unit": "街道党政办",
                    "leader": "欧阳明", "person": "司马青", "deadline": deadline}),
        ),
        "assign",
    );
    let psql = |sql: &str| {
        let out = Command::new("psql").args(["--no-psqlrc", "-X", "-q", "-t", "-A", "-d", &db.url, "-c", sql]).output();
        let out = out.expect("psql");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(psql("SELECT count(*) FROM events WHERE payload LIKE '%司马青%'"), "0");
    assert_ne!(psql("SELECT count(*) FROM events WHERE payload LIKE '%$pii%'"), "0");
    assert_ne!(psql("SELECT count(*) FROM person_keys"), "0");
    // Erased through B; A's view follows.
    let secadmin = b.login("secadmin");
    let done = ok(
        &b.post_json(
            "/api/v1/security/personal-data/erasures",
            Some(&secadmin),
            &json!({"tenant_id": "xxjd", "name": "司马青", "reason": "申请 2026-019"}),
        ),
        "erase",
    );
    let at = done["position"].as_u64().unwrap().to_string();
    let admin = a.login("xx-admin");
    let r = a.request(
        "GET",
        &format!("{TENANT}/ledger?inspection=2023-ideology&page_size=100"),
        Some(&admin),
        &[("X-Ducha-Min-Position", at.as_str())],
        None,
    );
    let page = ok(&r, "ledger on A");
    let row = page["rows"].as_array().unwrap().iter().find(|r| r["finding_id"] == "xx-2023-f2").unwrap().clone();
    assert_eq!((row["person"].as_str(), row["leader"].as_str()), (Some(ERASED), Some("欧阳明")));
    let py = Command::new("python3")
        .arg(repo_root().join("tests/audit/verify_chain.py"))
        .args(["--postgres", &db.url])
        .output()
        .expect("python3");
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stdout));
}
