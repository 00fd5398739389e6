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
