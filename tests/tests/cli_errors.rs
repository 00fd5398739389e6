//! Bad input to the command line gets a clear error, a non-zero exit and changes nothing.

use ducha_tests::{ducha, ducha_ok};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn missing_data_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    for args in [&["verify"][..], &["rollup", "--district", "xxq"], &["export", "--tenant", "xxjd"]] {
        let out = ducha(&missing, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains("数据目录不存在"), "{args:?}: {}", stderr(&out));
    }
    assert!(!missing.exists(), "a reader must not create the directory");
}

#[test]
fn corrupt_database_is_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ducha.db"), b"this is not a database at all, just text".repeat(200)).unwrap();
    for args in [&["verify"][..], &["demo"]] {
        let out = ducha(dir.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("损坏") || err.contains("corrupt"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn locked_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let held = ducha::datadir::DataDir::open_for_write(dir.path()).unwrap();
    let out = ducha(dir.path(), &["demo"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("正被另一个"), "{}", stderr(&out));
    drop(held);
    ducha_ok(dir.path(), &["demo"]);
}

#[test]
fn bad_flags_and_values_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    ducha_ok(dir.path(), &["demo"]);
    let out = ducha(dir.path(), &["rollup", "--district", "xxq", "--year", "abc"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--year"), "{}", stderr(&out));
    let out = ducha(dir.path(), &["rollup", "--district", "xxq", "--as-of", "yesterday"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("RFC 3339"), "{}", stderr(&out));
    let out = ducha(dir.path(), &["rollup", "--district", "../etc"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("区编号无效"), "{}", stderr(&out));
    let out = ducha(dir.path(), &["rollup", "--district", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("未找到区"), "{}", stderr(&out));
    let out = ducha(dir.path(), &["export", "--tenant", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    let out = ducha(dir.path(), &["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_import_files_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    ducha_ok(src.path(), &["demo"]);
    let export = src.path().join("xx.jsonl");
    ducha_ok(src.path(), &["export", "--tenant", "xxjd", "--out", export.to_str().unwrap()]);
    let text = std::fs::read_to_string(&export).unwrap();

    // Garbage line.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, format!("{text}{{not json\n")).unwrap();
    let target = dir.path().join("target");
    let out = ducha(&target, &["import", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("不是有效的事件"), "{}", stderr(&out));

    // A tampered payload breaks the file's chain: refused before anything is written.
    let tampered = dir.path().join("tampered.jsonl");
    std::fs::write(&tampered, text.replacen("东风社区", "西风社区", 1)).unwrap();
    let out = ducha(&target, &["import", tampered.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("哈希链无效"), "{}", stderr(&out));
    let out = ducha(&target, &["verify", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let events: u64 =
        v["tenants"].as_array().map(|a| a.iter().map(|t| t["events"].as_u64().unwrap()).sum()).unwrap_or(0);
    assert_eq!(events, 0, "nothing was imported: {v}");

    // Missing file.
    let out = ducha(&target, &["import", "/nonexistent/file.jsonl"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("无法打开导入文件"));
}
