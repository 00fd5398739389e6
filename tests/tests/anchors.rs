//! Signed checkpoints against an insider: whoever can write the database can rewrite a tenant's
//! history and recompute every later hash, so the chain alone still verifies. Anchors exported
//! before (and kept off the system) do not: `ducha verify --anchors` and the independent Python
//! checker name the tenant and sequence. Also: the SM3 chain with SM2 anchors, end to end.

use ducha_events::chain::{ChainFields, ChainHash, parse_hash};
use ducha_tests::{ducha, ducha_ok, repo_root};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn python(args: &[&str]) -> std::process::Output {
    Command::new("python3").args(args).output().expect("python3 is installed by `cargo xtask test`")
}

fn script() -> String {
    repo_root().join("tests/audit/verify_chain.py").display().to_string()
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// What an insider with write access to the file does: change one stored event of `tenant`, then
/// recompute `prev_hash` and `hash` of it and of every later event of that tenant, so that the
/// chain verifies again. Returns the changed event's tenant_seq.
fn rewrite_history(db: &Path, tenant: &str, alg: ChainHash) -> u64 {
    let conn = rusqlite::Connection::open(db).expect("open the database");
    let seq: i64 = conn
        .query_row(
            "SELECT tenant_seq FROM events WHERE tenant = ?1 AND event_type = 'CommunityAdded' \
             AND payload LIKE '%东风社区%'",
            [tenant],
            |r| r.get(0),
        )
        .expect("the demo's 东风社区");
    conn.execute(
        "UPDATE events SET payload = replace(payload, '东风社区', '西风社区') WHERE tenant = ?1 AND tenant_seq = ?2",
        rusqlite::params![tenant, seq],
    )
    .unwrap();
    type Row = (i64, String, String, i64, String, i64, String, String, String, String, Option<String>, String, String);
    let rows: Vec<Row> = conn
        .prepare(
            "SELECT tenant_seq, event_id, stream, stream_version, event_type, schema_version, occurred_at, \
             actor_user, actor_role, correlation_id, causation_id, payload, prev_hash FROM events \
             WHERE tenant = ?1 AND tenant_seq >= ?2 ORDER BY tenant_seq",
        )
        .unwrap()
        .query_map(rusqlite::params![tenant, seq], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
                r.get(11)?,
                r.get(12)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut prev = parse_hash(&rows[0].12).expect("prev hash");
    for (s, event_id, stream, version, event_type, schema, at, user, role, corr, cause, payload, _) in &rows {
        let fields = ChainFields {
            tenant,
            tenant_seq: *s as u64,
            event_id,
            stream,
            stream_version: *version as u64,
            event_type,
            schema_version: *schema as u32,
            occurred_at: at,
            actor_user: user,
            actor_role: role,
            correlation_id: corr,
            causation_id: cause.as_deref().unwrap_or(""),
            payload,
        };
        let hash = fields.hash_with(alg, &prev);
        conn.execute(
            "UPDATE events SET prev_hash = ?1, hash = ?2 WHERE tenant = ?3 AND tenant_seq = ?4",
            rusqlite::params![hex::encode(prev), hex::encode(hash), tenant, s],
        )
        .unwrap();
        prev = hash;
    }
    seq as u64
}

fn head_of(verify_json: &str, tenant: &str) -> u64 {
    let v: Value = serde_json::from_str(verify_json).unwrap();
    v["tenants"].as_array().unwrap().iter().find(|t| t["tenant"] == tenant).unwrap()["events"].as_u64().unwrap()
}

#[test]
fn a_history_rewritten_with_every_hash_recomputed_passes_verify_but_not_the_anchors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ducha_ok(&data, &["demo"]);
    let out = ducha(&data, &["anchors", "public-key"]);
    assert_eq!(out.status.code(), Some(1), "no key yet: {}", text(&out));
    assert!(text(&out).contains("还没有锚点签名密钥"), "{}", text(&out));
    let signed = ducha_ok(&data, &["anchor"]);
    assert!(signed.contains("ed25519") && signed.contains("xxjd"), "{signed}");
    assert!(data.join("anchor.key").is_file(), "the key is generated in the data directory");
    // Nothing moved: a second run signs nothing.
    assert!(ducha_ok(&data, &["anchor"]).contains("已签署 0 个锚点"));
    let file = dir.path().join("anchors.json");
    ducha_ok(&data, &["anchors", "export", "--out", file.to_str().unwrap()]);
    let export: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(export["format"], "ducha-anchors-1");
    assert_eq!(export["chain_hash"], "sha256");
    let public: Value = serde_json::from_str(&ducha_ok(&data, &["anchors", "public-key"])).unwrap();
    assert_eq!(export["public_keys"][0]["public_key"], public["public_key"]);
    let pinned = format!("ed25519:{}", public["public_key"].as_str().unwrap());
    let before = ducha_ok(&data, &["verify", "--anchors", file.to_str().unwrap(), "--public-key", &pinned]);
    assert!(before.contains("锚点核对通过"), "{before}");
    let anchored = head_of(&ducha_ok(&data, &["verify", "--json"]), "xxjd");

    let db = data.join("ducha.db");
    let rewritten = rewrite_history(&db, "xxjd", ChainHash::Sha256);
    assert!(rewritten <= anchored);

    // The chain alone cannot tell: every hash was recomputed.
    let plain = ducha_ok(&data, &["verify"]);
    assert!(plain.contains("哈希链完整"), "{plain}");
    let py = python(&[&script(), db.to_str().unwrap()]);
    assert!(py.status.success(), "{}", text(&py));

    // The anchors can, and name the tenant and the sequence.
    let out = ducha(&data, &["verify", "--anchors", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains(&format!("租户 xxjd，第 {anchored} 个事件")), "{said}");
    assert!(said.contains(&format!("tenant xxjd sequence {anchored}")), "{said}");
    assert!(said.contains(&format!("第 1 至 {anchored} 个事件之间被改写")), "{said}");
    let json: Value =
        serde_json::from_slice(&ducha(&data, &["verify", "--json", "--anchors", file.to_str().unwrap()]).stdout)
            .unwrap();
    assert_eq!(json["ok"], true, "the chains themselves verify");
    assert_eq!(json["anchors"]["ok"], false);
    assert_eq!(json["anchors"]["divergences"][0]["tenant"], "xxjd");
    assert_eq!(json["anchors"]["divergences"][0]["sequence"], anchored);
    // Only the rewritten tenant differs.
    assert_eq!(json["anchors"]["divergences"].as_array().unwrap().len(), 1);

    let py = python(&[&script(), db.to_str().unwrap(), "--anchors", file.to_str().unwrap()]);
    assert_eq!(py.status.code(), Some(1), "{}", text(&py));
    assert!(text(&py).contains(&format!("tenant xxjd sequence {anchored}")), "{}", text(&py));

    // A forged anchors file (a head changed after signing) is refused by both.
    let mut forged = export.clone();
    forged["anchors"][0]["head_hash"] = Value::String("00".repeat(32));
    let forged_file = dir.path().join("forged.json");
    std::fs::write(&forged_file, forged.to_string()).unwrap();
    let out = ducha(&data, &["verify", "--anchors", forged_file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("签名无效"), "{}", text(&out));
    let py = python(&[&script(), db.to_str().unwrap(), "--anchors", forged_file.to_str().unwrap()]);
    assert_eq!(py.status.code(), Some(1));
    assert!(text(&py).contains("bad signature"), "{}", text(&py));
    // Another key pinned: refused.
    let other = format!("ed25519:{}", "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    let out = ducha(&data, &["verify", "--anchors", file.to_str().unwrap(), "--public-key", &other]);
    assert_eq!(out.status.code(), Some(2));
    // Bad input is a clear error, not a panic.
    let out = ducha(&data, &["verify", "--anchors", dir.path().join("missing.json").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("无法读取锚点文件"), "{}", text(&out));
    let out = ducha(&data, &["verify", "--anchors", file.to_str().unwrap(), "--public-key", "zz"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("公钥无效"), "{}", text(&out));
}

#[test]
fn an_sm3_store_with_sm2_anchors_is_checked_by_both_and_keeps_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ducha_ok(&data, &["--chain-hash", "sm3", "demo"]);
    let config = dir.path().join("ducha.toml");
    std::fs::write(&config, "anchor_algorithm = \"sm2\"\n").unwrap();
    let signed = ducha_ok(&data, &["anchor", "--config", config.to_str().unwrap()]);
    assert!(signed.contains("sm2"), "{signed}");
    let verified = ducha_ok(&data, &["verify"]);
    assert!(verified.contains("SM3"), "{verified}");
    let json: Value = serde_json::from_str(&ducha_ok(&data, &["verify", "--json"])).unwrap();
    assert_eq!(json["chain_hash"], "sm3");

    // The store keeps its hash: asking for another is refused, in Chinese, before anything runs.
    let out = ducha(&data, &["--chain-hash", "sha256", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("不能更换哈希算法"), "{}", text(&out));

    let file = dir.path().join("anchors.json");
    ducha_ok(&data, &["anchors", "export", "--out", file.to_str().unwrap()]);
    let export: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(export["chain_hash"], "sm3");
    assert_eq!(export["public_keys"][0]["algorithm"], "sm2");
    assert_eq!(export["public_keys"][0]["distid"], "1234567812345678");

    // The independent checker recomputes the SM3 chains (gmssl) and checks the SM2 signatures.
    let db = data.join("ducha.db");
    let py = python(&[&script(), db.to_str().unwrap(), "--anchors", file.to_str().unwrap()]);
    assert!(py.status.success(), "{}", text(&py));
    let summary: Value = serde_json::from_slice(&py.stdout).unwrap();
    assert_eq!(summary["chain_hash"], "sm3");
    assert_eq!(summary["anchors"]["ok"], true);
    let ours: Value = serde_json::from_str(&ducha_ok(&data, &["verify", "--json"])).unwrap();
    for t in ours["tenants"].as_array().unwrap() {
        let name = t["tenant"].as_str().unwrap();
        assert_eq!(summary["tenants"][name]["head"], t["head"], "{name}");
    }

    let anchored = head_of(&ducha_ok(&data, &["verify", "--json"]), "xxjd");
    rewrite_history(&db, "xxjd", ChainHash::Sm3);
    ducha_ok(&data, &["verify"]);
    let out = ducha(&data, &["verify", "--anchors", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains(&format!("租户 xxjd，第 {anchored} 个事件")), "{}", text(&out));
    let py = python(&[&script(), db.to_str().unwrap(), "--anchors", file.to_str().unwrap()]);
    assert_eq!(py.status.code(), Some(1), "{}", text(&py));
    assert!(text(&py).contains(&format!("tenant xxjd sequence {anchored}")), "{}", text(&py));
}

#[test]
fn the_server_anchors_on_its_interval_publishes_its_key_and_exports_for_the_audit_administrator() {
    let s = ducha_tests::Server::start(
        true,
        &[("DUCHA_ANCHOR_INTERVAL_SECONDS", "1"), ("DUCHA_MAINTENANCE_INTERVAL_SECONDS", "1")],
    );
    // The public key: no login needed, the same as the command line reads from the data directory.
    let key = s.get("/api/v1/anchors/public-key", None);
    assert_eq!(key.status, 200, "{}", key.text());
    let key = key.json();
    assert_eq!(key["algorithm"], "ed25519");
    let cli: Value = serde_json::from_str(&ducha_ok(s.data_dir.path(), &["anchors", "public-key"])).unwrap();
    assert_eq!(cli, key);

    let aud = s.login("audadmin");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let export = loop {
        let r = s.get("/api/v1/anchors", Some(&aud));
        assert_eq!(r.status, 200, "{}", r.text());
        let body = r.json();
        if body["anchors"].as_array().is_some_and(|a| a.iter().any(|x| x["tenant"] == "xxjd")) {
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "no anchors after 30 s: {body}");
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    assert_eq!(export["public_keys"][0]["public_key"], key["public_key"]);
    // Not for everyone: an inspector is refused; no token, 401.
    let inspector = s.login("xx-duchazu1");
    assert_eq!(s.get("/api/v1/anchors", Some(&inspector)).status, 403);
    assert_eq!(s.get("/api/v1/anchors", None).status, 401);

    // The exported file checks the live store (read-only, beside the running server).
    let file = s.data_dir.path().join("exported-anchors.json");
    std::fs::write(&file, export.to_string()).unwrap();
    let pinned = format!("ed25519:{}", key["public_key"].as_str().unwrap());
    let out = ducha_ok(s.data_dir.path(), &["verify", "--anchors", file.to_str().unwrap(), "--public-key", &pinned]);
    assert!(out.contains("锚点核对通过"), "{out}");
}

/// An issued report is signed by the server's key (Ed25519 by default, SM2 by configuration): the
/// independent `verify_report.py` checks the downloaded file against the issue record under the
/// published key, and refuses a changed file, a changed record and another key.
#[test]
fn issued_reports_are_signed_and_checked_independently() {
    for (env, algorithm) in [(None, "ed25519"), (Some("sm2"), "sm2")] {
        let vars: Vec<(&str, &str)> = env.map(|a| ("DUCHA_ANCHOR_ALGORITHM", a)).into_iter().collect();
        let s = ducha_tests::Server::start(true, &vars);
        let admin = s.login("xx-admin");
        let path = "/api/v1/tenants/xxjd/inspections/2023-ideology/report";
        let issued = s.post_json(&format!("{path}/issue"), Some(&admin), &serde_json::json!({"format": "docx"}));
        assert_eq!(issued.status, 201, "{}", issued.text());
        let issued = issued.json();
        assert_eq!(issued["signature"]["algorithm"], algorithm);
        let key = s.get("/api/v1/anchors/public-key", None).json();
        assert_eq!(issued["signature"]["public_key"], key["public_key"]);
        // The same record is listed on the inspection.
        let detail = s.get("/api/v1/tenants/xxjd/inspections/2023-ideology", Some(&admin)).json();
        let listed = detail["issued_reports"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(listed["signature"], issued["signature"]);

        let file = s.get(&format!("{path}?format=docx&at_position={}", issued["log_position"]), Some(&admin));
        assert_eq!(file.status, 200);
        let dir = s.data_dir.path();
        std::fs::write(dir.join("report.docx"), &file.body).unwrap();
        std::fs::write(dir.join("issued.json"), issued.to_string()).unwrap();
        let pinned = format!("{algorithm}:{}", key["public_key"].as_str().unwrap());
        let check = |report: &str, record: &str, key: &str| {
            python(&[
                &repo_root().join("tests/audit/verify_report.py").display().to_string(),
                &dir.join(report).display().to_string(),
                &dir.join(record).display().to_string(),
                "--public-key",
                key,
            ])
        };
        let good = check("report.docx", "issued.json", &pinned);
        assert!(good.status.success(), "{}", text(&good));
        // A changed file, a changed record (another position), another key: refused.
        let mut changed = file.body.clone();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        std::fs::write(dir.join("changed.docx"), &changed).unwrap();
        assert_eq!(check("changed.docx", "issued.json", &pinned).status.code(), Some(1));
        let mut forged = issued.clone();
        forged["log_position"] = serde_json::json!(issued["log_position"].as_u64().unwrap() + 1);
        std::fs::write(dir.join("forged.json"), forged.to_string()).unwrap();
        assert_eq!(check("report.docx", "forged.json", &pinned).status.code(), Some(1));
        let other = format!("{algorithm}:{}", "00".repeat(if algorithm == "sm2" { 65 } else { 32 }));
        assert_eq!(check("report.docx", "issued.json", &other).status.code(), Some(1));
    }
}
