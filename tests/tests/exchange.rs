//! Export a tenant as JSON Lines and import it into a fresh store: the chain verifies, the hashes are
//! the same, and the tenant's projections equal the originals.

use ducha::projector;
use ducha::store::Upto;
use ducha::store::sqlite::{SqliteOptions, SqliteStore, Synchronous};
use ducha_events::ids::{InspectionId, TenantId};
use ducha_events::projection::{LedgerFilter, LedgerSort, Page, WarningPolicy};
use ducha_tests::ducha_ok;
use serde_json::Value;

fn open(dir: &std::path::Path) -> SqliteStore {
    SqliteStore::open(
        &dir.join("ducha.db"),
        SqliteOptions { synchronous: Synchronous::Full, read_only: true, ..SqliteOptions::default() },
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn export_then_import_keeps_chain_and_projections() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    ducha_ok(src.path(), &["demo"]);
    let file = src.path().join("xxjd.jsonl");
    ducha_ok(src.path(), &["export", "--tenant", "xxjd", "--out", file.to_str().unwrap()]);
    let lines = std::fs::read_to_string(&file).unwrap().lines().count();
    assert!(lines > 50, "{lines} events exported");

    let out = ducha_ok(dst.path(), &["import", file.to_str().unwrap()]);
    assert!(out.contains("已导入"), "{out}");
    // Importing the same tenant twice is refused.
    let again = ducha_tests::ducha(dst.path(), &["import", file.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));

    let a: Value = serde_json::from_str(&ducha_ok(src.path(), &["verify", "--json"])).unwrap();
    let b: Value = serde_json::from_str(&ducha_ok(dst.path(), &["verify", "--json"])).unwrap();
    let head = |v: &Value| {
        v["tenants"].as_array().unwrap().iter().find(|t| t["tenant"] == "xxjd").map(|t| t["head"].clone()).unwrap()
    };
    assert_eq!(head(&a), head(&b), "same chain head after import");

    let t = TenantId::parse("xxjd").unwrap();
    let (sa, sb) = (open(src.path()), open(dst.path()));
    let ma = projector::as_of(&sa, Upto::Head, Some(&t)).await.unwrap();
    let mb = projector::as_of(&sb, Upto::Head, Some(&t)).await.unwrap();
    let today = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let policy = WarningPolicy::default();
    assert_eq!(ma.dashboard(&t, today, &policy), mb.dashboard(&t, today, &policy));
    let filter = LedgerFilter::default();
    assert_eq!(
        ma.ledger(&t, today, &policy, &filter, LedgerSort::default(), Page::all()),
        mb.ledger(&t, today, &policy, &filter, LedgerSort::default(), Page::all())
    );
    let i = InspectionId::parse("2023-ideology").unwrap();
    assert!(ma.inspection_detail(&t, &i).is_some());
    assert_eq!(ma.inspection_detail(&t, &i), mb.inspection_detail(&t, &i));
    assert_eq!(ma.scorecards(&t, None, today), mb.scorecards(&t, None, today));
    // The audit summary matches except for global positions, which are local to each store.
    let audit = |m: &ducha_events::projection::ReadModel| {
        let mut a = m.audit(&t);
        a.streams.iter_mut().for_each(|s| s.last_position = 0);
        a
    };
    assert_eq!(audit(&ma), audit(&mb));
}
