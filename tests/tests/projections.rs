//! The live projection (checkpoint + catch-up) equals a full rebuild from the log, and an "as of"
//! fold over a prefix equals what the live model was at that point.

use ducha::commands::{self, Meta};
use ducha::projector;
use ducha::store::sqlite::{SqliteOptions, SqliteStore, Synchronous};
use ducha::store::{EventStore, Upto};
use ducha_events::authz::{Actor, Grant, Role, Scope};
use ducha_events::finding::FindingCommand;
use ducha_events::ids::{DistrictId, FindingId, InspectionId, TenantId, UserId};
use ducha_events::projection::RectificationStatus;
use ducha_tests::ducha_ok;

fn xx_admin() -> Actor {
    Actor {
        user_id: UserId::parse("xx-admin").unwrap(),
        grants: vec![Grant {
            role: Role::SubdistrictAdmin,
            scope: Scope::Tenant {
                district_id: DistrictId::parse("xxq").unwrap(),
                tenant_id: TenantId::parse("xxjd").unwrap(),
            },
        }],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn live_projection_equals_full_rebuild_and_as_of_equals_the_past() {
    let dir = tempfile::tempdir().unwrap();
    ducha_ok(dir.path(), &["demo"]); // leaves a checkpoint at the end of the demo
    let store = SqliteStore::open(
        &dir.path().join("ducha.db"),
        SqliteOptions { synchronous: Synchronous::Full, read_only: false, ..SqliteOptions::default() },
    )
    .unwrap();
    let t = TenantId::parse("xxjd").unwrap();
    let i = InspectionId::parse("2023-ideology").unwrap();
    let f = FindingId::parse("xx-2023-f2").unwrap();
    let live_before = projector::load_live(&store).await.unwrap();
    let checkpoint_position = live_before.position();
    // The demo's checkpoint is sealed (personal data), unreadable through the raw store: save one
    // this store reads.
    projector::checkpoint(&store, &live_before).await.unwrap();

    // New events after the checkpoint: the live model must catch up through them.
    let now = chrono::Utc::now();
    let meta = Meta::new(xx_admin(), now);
    commands::finding(
        &store,
        &meta,
        &t,
        &i,
        &f,
        FindingCommand::Assign {
            title: "完善督查自查工作机制".into(),
            measure: "制定自查报告模板，逐社区审核台账。".into(),
            responsible_unit: "街道宣传办".into(),
            leader: "张主任".into(),
            person: "刘干事".into(),
            deadline: ducha_events::time::local_date(&now) + chrono::Days::new(90),
        },
    )
    .await
    .unwrap();
    let live = projector::load_live(&store).await.unwrap();
    assert!(live.position() > checkpoint_position);
    let rebuilt = projector::rebuild(&store, |_| {}).await.unwrap();
    assert_eq!(live, rebuilt, "live projection equals a full rebuild");
    // The same with every tenant of the checkpoint left packed: the catch-up unpacks only the one
    // written to after it, and reading the others unpacks them to the same model.
    let unreadable = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let packed = projector::load_live_within(&store, 0, &unreadable).await.unwrap();
    let resident: Vec<&TenantId> = packed.shares().filter(|(_, s)| s.is_resident()).map(|(t, _)| t).collect();
    assert_eq!(resident, [&t]);
    assert_eq!(packed, rebuilt);
    assert!(!unreadable.load(std::sync::atomic::Ordering::Acquire));

    // "As of" the checkpoint's position is exactly the model we had then.
    let past = projector::as_of(&store, Upto::Position(checkpoint_position), None).await.unwrap();
    assert_eq!(past, live_before);
    let status = |m: &ducha_events::projection::ReadModel| {
        m.inspection_detail(&t, &i).unwrap().findings.iter().find(|x| x.finding_id == f).unwrap().status
    };
    assert_eq!(status(&past), RectificationStatus::Unassigned);
    assert_eq!(status(&live), RectificationStatus::Assigned);
    assert!(store.head().await.unwrap() == live.position());
}

/// A server whose read model keeps nothing unpacked (`read_model_budget_mb = 0`: every
/// sub-district packed once a second and at start, unpacked to answer) answers every read as the
/// same server with the default budget does.
#[test]
fn a_server_with_every_sub_district_packed_answers_as_with_all_unpacked() {
    use ducha_tests::Server;
    let packed = [("DUCHA_READ_MODEL_BUDGET_MB", "0")];
    let mut server = Server::start(true, &packed);
    assert!(server.terminate().success(), "a SIGTERM saves the checkpoint");
    let reads = |server: &Server| {
        let (xx, admin, auditor) = (server.login("xx-admin"), server.login("admin"), server.login("qu-jjw"));
        let paths = [
            ("/api/v1/tenants/xxjd/dashboard", &xx),
            ("/api/v1/tenants/xxjd/inspections", &xx),
            ("/api/v1/tenants/xxjd/ledger?page=1&page_size=50", &xx),
            ("/api/v1/tenants/yyjd/dashboard", &admin),
            ("/api/v1/districts/xxq/rollup?group_by=subdistrict", &admin),
            ("/api/v1/tenants/xxjd/audit", &auditor),
        ];
        paths
            .iter()
            .map(|(path, token)| {
                let r = server.get(path, Some(token.as_str()));
                assert_eq!(r.status, 200, "{path}: {}", String::from_utf8_lossy(&r.body));
                (path.to_string(), serde_json::from_slice::<serde_json::Value>(&r.body).unwrap())
            })
            .collect::<Vec<_>>()
    };
    server.restart(&[packed[0], ("DUCHA_LOG_LEVEL", "info")]);
    let log = server.log();
    assert!(log.contains("read-model checkpoint loaded") && log.contains("unpacked=0 packed="), "{log}");
    // Once a second the budget packs what was unpacked: read, see it packed again, read again.
    let first = reads(&server);
    let gauge = |server: &Server, name: &str| -> u64 {
        let text = String::from_utf8(server.get("/metrics", None).body).unwrap();
        let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name}"));
        line[name.len() + 1..].parse().unwrap()
    };
    assert!(gauge(&server, "ducha_read_model_packed_bytes") > 0);
    assert_eq!(gauge(&server, "ducha_read_model_budget_bytes"), 0);
    // Read since: packed again by the next round.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while gauge(&server, "ducha_read_model_unpacked_bytes") > 0 {
        assert!(std::time::Instant::now() < deadline, "the budget packs what was read");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(gauge(&server, "ducha_read_model_tenants_unpacked"), 0);
    assert_eq!(reads(&server), first);
    server.restart(&[]);
    assert_eq!(reads(&server), first, "the same answers with every sub-district unpacked");
}
