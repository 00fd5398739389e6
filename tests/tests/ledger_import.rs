//! Issue 14: importing an existing 整改台账 through the real server and the real `ducha` binary.
//! The round trip (export XX街道's ledger, import it into a fresh sub-district, export again →
//! the same rows, read by openpyxl), dry runs that write nothing, a broken file answered with every
//! problem by sheet, row and column and nothing written, the same file twice adding nothing, the
//! audit trail naming the file's SHA-256 and the importer, follow-up on an imported finding, and
//! `ducha import-ledger`.

use ducha_tests::{Response, Server, ducha, edit_xlsx as edited, ledger_rows as rows_of};
use serde_json::{Value, json};

const BOUNDARY: &str = "----ducha-ledger-import-boundary";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

fn multipart(filename: &str, bytes: &[u8], mapping: Option<&str>) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
             Content-Type: {XLSX}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    if let Some(m) = mapping {
        body.extend_from_slice(
            format!("\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"mapping\"\r\n\r\n{m}").as_bytes(),
        );
    }
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

fn import(
    s: &Server,
    token: &str,
    tenant: &str,
    dry_run: bool,
    name: &str,
    bytes: &[u8],
    mapping: Option<&str>,
) -> Response {
    let (ct, body) = multipart(name, bytes, mapping);
    let path = format!("/api/v1/tenants/{tenant}/ledger/import?dry_run={dry_run}");
    s.request("POST", &path, Some(token), &[("Content-Type", ct.as_str())], Some(&body))
}

fn expect(r: &Response, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    r.json()
}

/// A sub-district with XX街道's communities and categories, so its ledger can be imported.
fn fresh_tenant(s: &Server, root: &str, xx_admin: &str, id: &str) {
    let r = s.post_json("/api/v1/districts/xxq/tenants", Some(root), &json!({"tenant_id": id, "name": "新街道"}));
    expect(&r, 201);
    let xx = expect(&s.get("/api/v1/tenants/xxjd", Some(xx_admin)), 200);
    for c in xx["communities"].as_array().unwrap() {
        let body = json!({"community_id": c["community_id"], "name": c["name"]});
        expect(&s.post_json(&format!("/api/v1/tenants/{id}/communities"), Some(root), &body), 201);
    }
    let have = expect(&s.get(&format!("/api/v1/tenants/{id}/categories"), Some(root)), 200);
    for c in xx["categories"].as_array().unwrap() {
        if !have.as_array().unwrap().iter().any(|h| h["code"] == c["code"]) {
            let body = json!({"code": c["code"], "name": c["name"]});
            expect(&s.post_json(&format!("/api/v1/tenants/{id}/categories"), Some(root), &body), 201);
        }
    }
}

#[test]
fn an_exported_ledger_imports_into_a_fresh_sub_district_with_the_same_rows() {
    let s = Server::demo();
    let root = s.login("admin");
    let xx_admin = s.login("xx-admin");
    let exported = s.get("/api/v1/tenants/xxjd/ledger.xlsx", Some(&xx_admin));
    assert_eq!(exported.status, 200);
    let original = rows_of(&exported.body);
    assert!(original.len() >= 5, "the demo ledger has rows");
    fresh_tenant(&s, &root, &xx_admin, "newjd");

    // A dry run: what would be created, nothing written.
    let head = s.head_position();
    let dry = expect(&import(&s, &root, "newjd", true, "XX街道整改台账.xlsx", &exported.body, None), 200);
    assert_eq!(s.head_position(), head, "a dry run writes nothing");
    assert_eq!(dry["problems"], json!([]));
    assert_eq!(dry["created"]["findings"], original.len());
    assert_eq!(dry["header_row"], 2);
    assert_eq!(dry["sheet"], "整改台账");
    assert_eq!(dry["preview"].as_array().map(Vec::len), Some(original.len()));

    // The import: rows with their business dates; the ledger exported again has the same rows.
    let done = expect(&import(&s, &root, "newjd", false, "XX街道整改台账.xlsx", &exported.body, None), 200);
    assert_eq!(
        (done["imported"].as_bool(), done["created"]["findings"].as_u64()),
        (Some(true), Some(original.len() as u64))
    );
    let again = s.get("/api/v1/tenants/newjd/ledger.xlsx", Some(&root));
    assert_eq!(again.status, 200);
    let round = rows_of(&again.body);
    assert_eq!(round, original, "export → import → export gives the same rows");

    // The same file again adds nothing.
    let head = s.head_position();
    let twice = expect(&import(&s, &root, "newjd", false, "XX街道整改台账.xlsx", &exported.body, None), 200);
    assert_eq!(
        (twice["imported"].as_bool(), twice["already_imported"].as_u64()),
        (Some(false), Some(original.len() as u64))
    );
    assert_eq!(s.head_position(), head, "importing the same rows twice adds nothing");

    // The audit trail: each imported rectification names the file's SHA-256, sheet and row, and
    // the importer is the event's actor; the event's time is the import's.
    let sha = done["file_sha256"].as_str().unwrap().to_owned();
    let first = &done["preview"][0];
    let stream = format!("finding-{}", first["finding_id"].as_str().unwrap());
    let auditor = s.login("qu-jjw");
    let events = expect(&s.get(&format!("/api/v1/tenants/newjd/streams/{stream}/events"), Some(&auditor)), 200);
    let e = &events["events"][0];
    assert_eq!(e["event_type"], "RectificationImported");
    assert_eq!(e["payload"]["file"]["file_sha256"], sha.as_str());
    assert_eq!(e["payload"]["file"]["row"], first["row"]);
    assert_eq!(e["actor"]["user_id"], "admin");
}

#[test]
fn a_broken_file_is_answered_with_every_problem_and_nothing_is_written() {
    let s = Server::demo();
    let xx_admin = s.login("xx-admin");
    let exported = s.get("/api/v1/tenants/xxjd/ledger.xlsx", Some(&xx_admin)).body;
    let root = s.login("admin");
    fresh_tenant(&s, &root, &xx_admin, "brokenjd");
    let broken = edited(&exported, &[("C3", "无此社区"), ("D4", "无此类别"), ("J5", "下个月底"), ("L6", "差不多了")]);
    let head = s.head_position();
    let r = import(&s, &root, "brokenjd", false, "坏台账.xlsx", &broken, None);
    let p = expect(&r, 422);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(p["code"], "import_invalid");
    assert_eq!(s.head_position(), head, "nothing written");
    let at = |row: u64, col: &str| {
        p["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["row"] == row && x["column"] == col && x["sheet"] == "整改台账")
    };
    assert!(at(3, "C") && at(4, "D") && at(5, "J") && at(6, "L"), "{}", p["problems"]);
    assert!(p["problems"].as_array().unwrap().iter().all(|x| x["message"].as_str().is_some_and(|m| !m.is_empty())));
    // The dry run lists the same problems with 200.
    let dry = expect(&import(&s, &root, "brokenjd", true, "坏台账.xlsx", &broken, None), 200);
    assert_eq!(dry["problems"], p["problems"]);

    // Not a workbook, an empty file, a missing part, bad mapping JSON: clear 4xx, nothing written.
    let not_xlsx = import(&s, &root, "brokenjd", false, "a.xlsx", b"just text", None);
    assert_eq!(expect(&not_xlsx, 422)["code"], "invalid_file");
    assert_eq!(expect(&import(&s, &root, "brokenjd", false, "a.xlsx", b"", None), 422)["field"], "file");
    let bad_mapping = import(&s, &root, "brokenjd", true, "a.xlsx", &exported, Some("{not json"));
    assert_eq!(expect(&bad_mapping, 422)["field"], "mapping");
    let r = s.request(
        "POST",
        "/api/v1/tenants/brokenjd/ledger/import",
        Some(&root),
        &[("Content-Type", "application/json")],
        Some(b"{}"),
    );
    assert_eq!(r.status, 415, "{}", r.text());
    // Only the sub-district's administrators import; another sub-district's admin may not.
    let inspector = s.login("xx-duchazu1");
    assert_eq!(import(&s, &inspector, "xxjd", true, "a.xlsx", &exported, None).status, 403);
    let yy = s.login("yy-admin");
    assert_eq!(import(&s, &yy, "xxjd", true, "a.xlsx", &exported, None).status, 403);
    assert_eq!(s.head_position(), head);
}

#[test]
fn another_layout_imports_through_a_column_mapping_and_the_cli_checks_files() {
    let s = Server::demo();
    let xx_admin = s.login("xx-admin");
    // A layout of its own: the headings renamed and the columns of Ducha's export reused.
    let exported = s.get("/api/v1/tenants/xxjd/ledger.xlsx", Some(&xx_admin)).body;
    let other = edited(&exported, &[("C2", "所在社区"), ("D2", "分类"), ("E2", "问题描述"), ("J2", "期限")]);
    let p = expect(&import(&s, &xx_admin, "xxjd", true, "其他格式.xlsx", &other, None), 200);
    assert!(p["problems"][0]["message"].as_str().unwrap().contains("找不到表头"), "{p}");
    assert!(p["headings"].as_array().unwrap().iter().any(|h| h == "所在社区"), "headings offered for a mapping");
    let mapping = r#"{"community":"所在社区","category":"D","problem":"问题描述","deadline":"期限","status":"完成情况","measure":"整改措施","verified_on":"销号日期","source":"来源"}"#;
    let p = expect(&import(&s, &xx_admin, "xxjd", true, "其他格式.xlsx", &other, Some(mapping)), 200);
    assert_eq!(p["problems"], json!([]), "{p}");
    // XX街道 already has these very findings (its own export): nothing new.
    assert_eq!(p["created"]["findings"], 0, "{p}");
    assert!(p["already_imported"].as_u64().unwrap() >= 5);

    // A new open row imported into XX街道 itself; its follow-up continues like any other.
    let rows = rows_of(&exported);
    let open = rows.iter().position(|r| r[11] == "整改中" || r[11] == "已交办").expect("the demo has open rows");
    let cell = format!("E{}", open + 3);
    let one_new = edited(&exported, &[(cell.as_str(), "宣传栏更新不及时。部分宣传栏内容仍为去年的。")]);
    let done = expect(&import(&s, &xx_admin, "xxjd", false, "补充台账.xlsx", &one_new, None), 200);
    // Its source is XX街道's own inspection (same year and title): no new source.
    assert_eq!((done["created"]["findings"].as_u64(), done["created"]["inspections"].as_u64()), (Some(1), Some(0)));
    let position = done["last_position"].as_u64().unwrap();
    let ledger = expect(
        &s.get(&format!("/api/v1/tenants/xxjd/ledger?page_size=500&min_position={position}"), Some(&xx_admin)),
        200,
    );
    let row = ledger["rows"].as_array().unwrap().iter().find(|r| r["title"] == "宣传栏更新不及时").cloned().unwrap();
    assert_eq!(row["imported"], true);
    assert_eq!(row["status_name"], rows[open][11]);
    assert_eq!(row["source"]["inspection_id"], "2023-ideology");
    let path = format!(
        "/api/v1/tenants/xxjd/inspections/{}/findings/{}/progress",
        row["source"]["inspection_id"].as_str().unwrap(),
        row["finding_id"].as_str().unwrap()
    );
    let r = s.post_json(&path, Some(&xx_admin), &json!({"text": "导入后继续整改：已更新宣传栏", "evidence": []}));
    assert_eq!(r.status, 200, "{}", r.text());

    // `ducha import-ledger --dry-run` beside the running server (read-only), on a good and a bad file.
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("台账.xlsx");
    std::fs::write(&good, &exported).unwrap();
    let out = ducha(s.data_dir.path(), &["import-ledger", "--tenant", "xxjd", "--dry-run", good.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("检查通过"), "{stdout}");
    let bad = dir.path().join("坏.xlsx");
    std::fs::write(&bad, edited(&exported, &[("C3", "无此社区")])).unwrap();
    let out = ducha(s.data_dir.path(), &["import-ledger", "--tenant", "xxjd", "--dry-run", bad.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("第3行C列") && stderr.contains("无此社区"), "{stderr}");
}
