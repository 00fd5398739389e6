//! The suite every [`ServerState`] backend passes. Each case takes two handles on the same state
//! (`a`, `b`): for PostgreSQL two replicas on one database; for SQLite the same state twice (a
//! SQLite deployment has one replica), so "seen by the other" holds trivially there and for real on
//! PostgreSQL.

use super::{EvidenceMeta, FailureKind, FailureRule, ServerState, StoredKey, StoredReply, now_ms};
use std::time::Duration;

/// Runs every case; panics on the first failure. `dir` is a scratch folder for upload files.
pub async fn run_all(a: &ServerState, b: &ServerState, dir: &std::path::Path) {
    sessions(a, b).await;
    second_factors(a, b).await;
    replies(a, b).await;
    login_failures(a, b).await;
    evidence(a, b, dir).await;
    leases(a, b).await;
    person_keys(a, b).await;
    notifications(a, b).await;
}

pub async fn person_keys(a: &ServerState, b: &ServerState) {
    let key = |id: &str, index: &str| StoredKey {
        key_id: id.into(),
        index: index.into(),
        algorithm: "sm4-gcm".into(),
        wrapped: format!("sm4-gcm:{id}"),
    };
    assert_eq!(a.person_keys.find("idx-zhang").await.expect("find"), None);
    let first = a.person_keys.get_or_insert(&key("k1", "idx-zhang")).await.expect("insert");
    assert_eq!(first, key("k1", "idx-zhang"));
    // The same person again, from another replica: the key stored first wins.
    let again = b.person_keys.get_or_insert(&key("k2", "idx-zhang")).await.expect("insert");
    assert_eq!(again.key_id, "k1");
    assert_eq!(b.person_keys.get("k2").await.expect("get"), None);
    assert_eq!(b.person_keys.get("k1").await.expect("get"), Some(first.clone()));
    assert_eq!(b.person_keys.find("idx-zhang").await.expect("find"), Some(first));
    b.person_keys.get_or_insert(&key("k3", "idx-li")).await.expect("insert");
    assert_eq!(a.person_keys.list().await.expect("list").len(), 2);
    // Destroyed through one, gone on the other; destroying again is fine.
    assert_eq!(a.person_keys.destroy(&["k1".into(), "nope".into()]).await.expect("destroy"), 1);
    assert_eq!(b.person_keys.get("k1").await.expect("get"), None);
    assert_eq!(b.person_keys.find("idx-zhang").await.expect("find"), None);
    assert_eq!(b.person_keys.destroy(&["k1".into()]).await.expect("destroy"), 0);
    assert_eq!(a.person_keys.list().await.expect("list"), vec![key("k3", "idx-li")]);
}

pub async fn sessions(a: &ServerState, b: &ServerState) {
    use super::SessionStatus::*;
    let now = now_ms();
    let hour = 3_600_000;
    let idle = 30 * 60_000;
    assert_eq!(a.sessions.check("jti-0", now, idle).await.expect("check"), Unknown);
    a.sessions.start("jti-1", "zhang", now, now + hour).await.expect("start");
    a.sessions.start("jti-2", "zhang", now, now + hour).await.expect("start");
    a.sessions.start("jti-3", "li", now, now + hour).await.expect("start");
    assert_eq!(b.sessions.check("jti-1", now + 1_000, idle).await.expect("check"), Active);
    // Active use keeps a session alive past the idle limit counted from its start.
    assert_eq!(b.sessions.check("jti-1", now + idle - 1_000, idle).await.expect("check"), Active);
    assert_eq!(a.sessions.check("jti-1", now + idle + 10_000, idle).await.expect("check"), Active);
    // Idle too long: ended, for good, on both.
    assert_eq!(a.sessions.check("jti-3", now + idle + 1_000, idle).await.expect("check"), Idle);
    assert_eq!(b.sessions.check("jti-3", now + idle + 2_000, idle).await.expect("check"), Ended("idle".into()));
    // A logout through one ends it on the other.
    a.sessions.end("jti-1", now + 5_000, "logout").await.expect("end");
    a.sessions.end("jti-1", now + 6_000, "again").await.expect("ending twice is fine");
    assert_eq!(b.sessions.check("jti-1", now + 7_000, idle).await.expect("check"), Ended("logout".into()));
    // An administrator's action ends all of a user's sessions.
    a.sessions.start("jti-4", "zhang", now, now + hour).await.expect("start");
    assert_eq!(b.sessions.end_user("zhang", now + 8_000, "disabled").await.expect("end_user"), 2);
    assert_eq!(a.sessions.check("jti-2", now + 9_000, idle).await.expect("check"), Ended("disabled".into()));
    assert_eq!(a.sessions.check("jti-4", now + 9_000, idle).await.expect("check"), Ended("disabled".into()));
    assert!(b.sessions.prune(now + 2 * hour).await.expect("prune") >= 4);
    assert_eq!(a.sessions.check("jti-2", now + 9_000, idle).await.expect("check"), Unknown);
}

pub async fn second_factors(a: &ServerState, b: &ServerState) {
    assert_eq!(a.second_factors.get("zhang").await.expect("get"), None);
    a.second_factors.begin("zhang", "JBSWY3DPEHPK3PXP").await.expect("begin");
    let sf = b.second_factors.get("zhang").await.expect("get").expect("there");
    assert!(!sf.confirmed);
    b.second_factors.confirm("zhang", &["h1".into(), "h2".into()]).await.expect("confirm");
    assert!(a.second_factors.get("zhang").await.expect("get").expect("there").confirmed);
    assert_eq!(a.second_factors.recovery_codes_left("zhang").await.expect("left"), 2);
    // A time step is good once, on any replica; an older one never again.
    assert!(a.second_factors.use_step("zhang", 1000).await.expect("step"));
    assert!(!b.second_factors.use_step("zhang", 1000).await.expect("step"));
    assert!(!b.second_factors.use_step("zhang", 999).await.expect("step"));
    assert!(b.second_factors.use_step("zhang", 1001).await.expect("step"));
    // A recovery code is good once.
    assert!(a.second_factors.use_recovery_code("zhang", "h1").await.expect("code"));
    assert!(!b.second_factors.use_recovery_code("zhang", "h1").await.expect("code"));
    assert!(!b.second_factors.use_recovery_code("li", "h2").await.expect("code"), "codes are per user");
    assert_eq!(b.second_factors.recovery_codes_left("zhang").await.expect("left"), 1);
    b.second_factors.remove("zhang").await.expect("remove");
    assert_eq!(a.second_factors.get("zhang").await.expect("get"), None);
    assert_eq!(a.second_factors.recovery_codes_left("zhang").await.expect("left"), 0);
}

pub async fn replies(a: &ServerState, b: &ServerState) {
    let first = StoredReply {
        fingerprint: "fp".into(),
        status: 201,
        body: r#"{"id":"东风"}"#.into(),
        version: Some(3),
        location: Some("/x".into()),
    };
    a.replies.save_reply("t1", "k1", &first, 100).await.expect("save");
    let second = StoredReply { status: 500, body: "{}".into(), ..first.clone() };
    b.replies.save_reply("t1", "k1", &second, 101).await.expect("second save changes nothing");
    assert_eq!(b.replies.reply("t1", "k1").await.expect("reply"), Some(first.clone()));
    assert_eq!(a.replies.reply("t2", "k1").await.expect("reply"), None, "keys are per tenant");
    let none = StoredReply { version: None, location: None, ..first.clone() };
    a.replies.save_reply("t1", "k2", &none, 200).await.expect("save");
    assert_eq!(b.replies.reply("t1", "k2").await.expect("reply"), Some(none));
    assert_eq!(a.replies.prune_replies(150).await.expect("prune"), 1);
    assert_eq!(b.replies.reply("t1", "k1").await.expect("reply"), None);
    assert!(b.replies.reply("t1", "k2").await.expect("reply").is_some());
}

pub async fn login_failures(a: &ServerState, b: &ServerState) {
    let rule = FailureRule { window: Duration::from_secs(60), lock_after: 4, lock: Duration::from_secs(30) };
    let now = now_ms();
    let user = FailureKind::Username;
    assert_eq!(a.logins.entry(user, "张三").await.expect("entry"), None);
    // Concurrent failures on both replicas all count.
    let mut tasks = Vec::new();
    for i in 0..3 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move { s.logins.record_failure(user, "张三", now, &rule).await }));
    }
    for t in tasks {
        t.await.expect("join").expect("record");
    }
    let e = b.logins.entry(user, "张三").await.expect("entry").expect("counted");
    assert_eq!(e.failures, 3);
    assert_eq!(e.locked_until_ms, None);
    let locked = a.logins.record_failure(user, "张三", now + 10, &rule).await.expect("record");
    assert_eq!(locked.locked_until_ms, Some(now + 10 + 30_000));
    let seen = b.logins.entry(user, "张三").await.expect("entry").expect("entry");
    assert!(seen.locked_for(now + 20).is_some(), "the lock holds on the other replica");
    // Addresses are counted apart from usernames.
    assert_eq!(a.logins.entry(FailureKind::Address, "张三").await.expect("entry"), None);
    b.logins.clear(user, "张三").await.expect("clear");
    assert_eq!(a.logins.entry(user, "张三").await.expect("entry"), None);
    // Pruning forgets stale counters, never a lock that still holds.
    a.logins.record_failure(FailureKind::Address, "10.0.0.1", now - 120_000, &rule).await.expect("record");
    for _ in 0..4 {
        a.logins.record_failure(FailureKind::Address, "10.0.0.2", now, &rule).await.expect("record");
    }
    assert_eq!(b.logins.prune(now - 60_000).await.expect("prune"), 1);
    assert_eq!(a.logins.entry(FailureKind::Address, "10.0.0.1").await.expect("entry"), None);
    assert!(a.logins.entry(FailureKind::Address, "10.0.0.2").await.expect("entry").is_some());
}

pub async fn evidence(a: &ServerState, b: &ServerState, dir: &std::path::Path) {
    use sha2::Digest;
    let bytes = "%PDF-1.7 整改佐证".as_bytes().to_vec();
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    let file = dir.join("upload.bin");
    std::fs::write(&file, &bytes).expect("write upload");
    let meta = EvidenceMeta { filename: "整改.pdf".into(), content_type: "application/pdf".into(), size: 19 };
    let meta = EvidenceMeta { size: bytes.len() as u64, ..meta };
    assert!(!a.evidence.has("t1", &sha, meta.size).await.expect("has"));
    assert!(a.evidence.put("t1", &sha, &meta, &file).await.expect("put"), "new bytes");
    let other_meta = EvidenceMeta { filename: "again.pdf".into(), ..meta.clone() };
    assert!(!b.evidence.put("t1", &sha, &other_meta, &file).await.expect("put again"), "the same bytes again");
    let (got, got_meta) = b.evidence.get("t1", &sha).await.expect("get").expect("stored");
    assert_eq!(got, bytes);
    assert_eq!(got_meta, Some(meta.clone()), "the first upload's name is kept");
    assert!(b.evidence.has("t1", &sha, meta.size).await.expect("has"));
    assert!(!b.evidence.has("t1", &sha, meta.size + 1).await.expect("has"), "size must match");
    assert!(!b.evidence.has("t2", &sha, meta.size).await.expect("has"), "another tenant has nothing");
    assert_eq!(a.evidence.get("t2", &sha).await.expect("get"), None);
    assert_eq!(b.evidence.list().await.expect("list"), vec![("t1".to_owned(), sha)]);
}

pub async fn leases(a: &ServerState, b: &ServerState) {
    let ttl = Duration::from_millis(400);
    assert!(a.leases.try_acquire("checkpoint", "replica-a", ttl).await.expect("acquire"));
    assert!(!b.leases.try_acquire("checkpoint", "replica-b", ttl).await.expect("acquire"), "held by a");
    assert!(a.leases.try_acquire("checkpoint", "replica-a", ttl).await.expect("renew"));
    assert_eq!(b.leases.holder("checkpoint").await.expect("holder").as_deref(), Some("replica-a"));
    assert!(b.leases.try_acquire("reminders", "replica-b", ttl).await.expect("another lease is free"));
    // Released: the other takes it at once.
    b.leases.release("checkpoint", "replica-b").await.expect("releasing what one does not hold changes nothing");
    assert!(!b.leases.try_acquire("checkpoint", "replica-b", ttl).await.expect("acquire"));
    a.leases.release("checkpoint", "replica-a").await.expect("release");
    assert!(b.leases.try_acquire("checkpoint", "replica-b", ttl).await.expect("acquire after release"));
    // Expired: the other takes it over.
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    assert_eq!(a.leases.holder("checkpoint").await.expect("holder"), None);
    assert!(a.leases.try_acquire("checkpoint", "replica-a", ttl).await.expect("take over an expired lease"));
}

pub async fn notifications(a: &ServerState, b: &ServerState) {
    use super::notify::{Channel, DeliveryStatus, NewDelivery, NewNotification, NotifySettings, Outcome};
    // Settings per tenant.
    assert_eq!(a.notify.settings("t1").await.expect("settings"), None);
    let s =
        NotifySettings { due_soon_days: 3, verify_wait_days: 5, digest_hour: 8, updated_ms: 1, updated_by: "u".into() };
    a.notify.save_settings("t1", &s).await.expect("save");
    let s2 = NotifySettings { due_soon_days: 7, ..s.clone() };
    b.notify.save_settings("t1", &s2).await.expect("save again");
    assert_eq!(a.notify.settings("t1").await.expect("settings"), Some(s2));
    assert_eq!(b.notify.settings("t2").await.expect("settings"), None, "per tenant");

    // Notifications: once per (tenant, user, key); read marks are per person.
    let n = |user: &str, key: &str| NewNotification {
        tenant: "t1".into(),
        user_id: user.into(),
        key: key.into(),
        kind: "overdue".into(),
        finding_id: Some("f3".into()),
        text: "【逾期催办】新华社区「主体责任意识有待增强」".into(),
    };
    let now = now_ms();
    assert_eq!(a.notify.notify(&[n("zhang", "k1"), n("li", "k1"), n("zhang", "k2")], now).await.expect("notify"), 3);
    assert_eq!(
        b.notify.notify(&[n("zhang", "k1"), n("zhang", "k3")], now).await.expect("notify"),
        1,
        "k1 again: nothing"
    );
    assert_eq!(b.notify.unread_count("zhang").await.expect("count"), 3);
    let list = a.notify.list("zhang", false, None, 10).await.expect("list");
    assert_eq!(list.iter().map(|x| x.key.as_str()).collect::<Vec<_>>(), vec!["k3", "k2", "k1"], "newest first");
    assert_eq!(list[0].finding_id.as_deref(), Some("f3"));
    assert!(!a.notify.mark_read("li", list[0].id, now).await.expect("mark"), "not li's");
    assert!(b.notify.mark_read("zhang", list[0].id, now + 5).await.expect("mark"));
    assert!(a.notify.mark_read("zhang", list[0].id, now + 9).await.expect("again is fine"));
    let again = a.notify.list("zhang", false, None, 1).await.expect("list");
    assert_eq!(again[0].read_ms, Some(now + 5), "the first read time is kept");
    assert_eq!(a.notify.unread_count("zhang").await.expect("count"), 2);
    assert_eq!(a.notify.list("zhang", true, None, 10).await.expect("unread").len(), 2);
    let page2 = a.notify.list("zhang", false, Some(list[0].id), 1).await.expect("page");
    assert_eq!(page2[0].key, "k2");
    assert_eq!(b.notify.mark_all_read("zhang", now).await.expect("all"), 2);
    assert_eq!(a.notify.unread_count("zhang").await.expect("count"), 0);
    assert_eq!(a.notify.unread_count("li").await.expect("count"), 1, "li's is still unread");

    // Channels per tenant; an update keeps the tenant.
    let ch = Channel {
        id: "ch-1".into(),
        tenant: "t1".into(),
        kind: "dingtalk".into(),
        name: "街道工作群".into(),
        url: "http://127.0.0.1:9/robot/send?access_token=x".into(),
        secret: Some("SEC123".into()),
        enabled: true,
        each_reminder: true,
        created_ms: 1,
        updated_by: "u".into(),
    };
    a.notify.save_channel(&ch).await.expect("save");
    b.notify.save_channel(&Channel { tenant: "t2".into(), name: "抢占".into(), ..ch.clone() }).await.expect("save");
    assert_eq!(
        b.notify.channels(Some("t1")).await.expect("channels"),
        vec![ch.clone()],
        "another tenant cannot take it"
    );
    assert_eq!(b.notify.channels(Some("t2")).await.expect("channels"), vec![]);
    assert_eq!(a.notify.channels(None).await.expect("all").len(), 1);

    // The queue: once per (channel, key); claims are exclusive; answers are recorded.
    let d = |key: &str| NewDelivery {
        tenant: "t1".into(),
        channel_id: "ch-1".into(),
        key: key.into(),
        message: "{}".into(),
    };
    assert!(a.notify.enqueue(&d("k1"), now).await.expect("enqueue"));
    assert!(!b.notify.enqueue(&d("k1"), now).await.expect("enqueue"), "queued before");
    assert!(b.notify.enqueue(&d("k2"), now + 1).await.expect("enqueue"));
    assert!(b.notify.enqueue(&d("k3"), now + 2).await.expect("enqueue"));
    let (ca, cb) = tokio::join!(a.notify.claim("ch-1", now + 10, 2), b.notify.claim("ch-1", now + 10, 2));
    let (ca, cb) = (ca.expect("claim"), cb.expect("claim"));
    let mut ids: Vec<i64> = ca.iter().chain(&cb).map(|x| x.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "three claims, none twice: {ca:?} {cb:?}");
    assert!(ca.iter().chain(&cb).all(|x| x.status == DeliveryStatus::Sending && x.attempts == 1));
    assert_eq!(a.notify.attempts_since("ch-1", now).await.expect("attempts"), 3);
    assert_eq!(a.notify.attempts_since("ch-1", now + 10).await.expect("attempts"), 0);
    let by_key = |k: &str| ca.iter().chain(&cb).find(|x| x.key == k).expect("claimed").id;
    a.notify.finish(by_key("k1"), &Outcome::Sent, now + 20).await.expect("finish");
    let retry = Outcome::Failed { error: "HTTP 500".into(), retry_at_ms: Some(now + 1_000) };
    b.notify.finish(by_key("k2"), &retry, now + 20).await.expect("finish");
    assert!(a.notify.claim("ch-1", now + 999, 10).await.expect("claim").is_empty(), "not yet due");
    let again = a.notify.claim("ch-1", now + 1_000, 10).await.expect("claim");
    assert_eq!((again.len(), again[0].attempts), (1, 2));
    b.notify
        .finish(again[0].id, &Outcome::Failed { error: "HTTP 500".into(), retry_at_ms: None }, now)
        .await
        .expect("give up");
    // k3's sender died: after the stale limit it is uncertain, never claimed again on its own.
    assert_eq!(a.notify.abandon_stale(now + 11).await.expect("abandon"), 1);
    assert!(b.notify.claim("ch-1", now + 5_000, 10).await.expect("claim").is_empty());
    let log = b.notify.deliveries("t1", None, 10).await.expect("log");
    let status = |k: &str| log.iter().find(|x| x.key == k).map(|x| (x.status, x.attempts));
    assert_eq!(status("k1"), Some((DeliveryStatus::Sent, 1)));
    assert_eq!(status("k2"), Some((DeliveryStatus::Failed, 2)));
    assert_eq!(status("k3"), Some((DeliveryStatus::Uncertain, 1)));
    assert_eq!(log.iter().find(|x| x.key == "k2").and_then(|x| x.last_error.clone()).as_deref(), Some("HTTP 500"));
    assert!(a.notify.deliveries("t2", None, 10).await.expect("log").is_empty(), "per tenant");
    // The admin requeues an uncertain one; a sent one cannot be.
    assert!(a.notify.requeue("t1", by_key("k3"), now + 6_000).await.expect("requeue"));
    assert!(!a.notify.requeue("t1", by_key("k1"), now + 6_000).await.expect("requeue"));
    assert!(!a.notify.requeue("t2", by_key("k2"), now + 6_000).await.expect("requeue"), "another tenant's");
    assert_eq!(b.notify.claim("ch-1", now + 6_000, 10).await.expect("claim").len(), 1);
    // Deleting a channel drops its pending deliveries.
    assert!(b.notify.enqueue(&d("k9"), now).await.expect("enqueue"));
    assert!(!a.notify.delete_channel("t2", "ch-1").await.expect("delete"), "not t2's");
    assert!(a.notify.delete_channel("t1", "ch-1").await.expect("delete"));
    assert!(b.notify.channels(None).await.expect("channels").is_empty());
    assert!(b.notify.claim("ch-1", now + 9_000, 10).await.expect("claim").is_empty());
}
