//! Test support: envelopes built by hand and a scenario modelled on
//! `domain/sample-inspection-report.txt` (XX街道, 6 communities, 5 findings, 3 rectifications).

use super::ReadModel;
use crate::authz::{Role, Scope};
use crate::envelope::{ActorRef, RecordedEvent};
use crate::event::*;
use crate::ids::*;
use chrono::NaiveDate;

pub fn tid(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}
pub fn did(s: &str) -> DistrictId {
    DistrictId::parse(s).unwrap()
}
pub fn cid(s: &str) -> CommunityId {
    CommunityId::parse(s).unwrap()
}
pub fn uid(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}
pub fn iid(s: &str) -> InspectionId {
    InspectionId::parse(s).unwrap()
}
pub fn fid(s: &str) -> FindingId {
    FindingId::parse(s).unwrap()
}
pub fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// An envelope for `event` (position 0: [`renumber`] or [`Scenario`] numbers the log).
pub fn ev(tenant: &str, stream: &str, at: &str, event: impl Into<Event>) -> (RecordedEvent, Event) {
    ev_by(tenant, stream, at, "admin1", Role::SubdistrictAdmin, event)
}

pub fn ev_by(
    tenant: &str,
    stream: &str,
    at: &str,
    user: &str,
    role: Role,
    event: impl Into<Event>,
) -> (RecordedEvent, Event) {
    let event = event.into();
    let tenant = if tenant == "_platform" { TenantId::platform() } else { tid(tenant) };
    let envelope = RecordedEvent {
        position: 0,
        tenant_seq: 0,
        event_id: String::new(),
        tenant,
        stream: stream.to_owned(),
        stream_version: 0,
        event_type: event.event_type().to_owned(),
        schema_version: event.schema_version(),
        occurred_at: at.to_owned(),
        actor: ActorRef { user_id: uid(user), role },
        correlation_id: "c".to_owned(),
        causation_id: None,
        payload: event.payload_json(),
        prev_hash: String::new(),
        hash: String::new(),
    };
    (envelope, event)
}

/// Gives positions 1.., and stream versions and tenant sequence numbers as a store would.
pub fn renumber(mut log: Vec<(RecordedEvent, Event)>) -> Vec<(RecordedEvent, Event)> {
    let mut streams = std::collections::HashMap::<String, u64>::new();
    let mut tenants = std::collections::HashMap::<String, u64>::new();
    for (n, (e, _)) in log.iter_mut().enumerate() {
        e.position = n as u64 + 1;
        let v = streams.entry(e.stream.clone()).or_default();
        *v += 1;
        e.stream_version = *v;
        let s = tenants.entry(e.tenant.as_str().to_owned()).or_default();
        *s += 1;
        e.tenant_seq = *s;
        e.event_id = format!("ev-{}", e.position);
    }
    log
}

pub fn fold(log: &[(RecordedEvent, Event)]) -> ReadModel {
    let mut m = ReadModel::new();
    for (e, ev) in log {
        m.apply(e, ev);
    }
    m
}

pub const TODAY: &str = "2024-04-15";

pub fn today() -> NaiveDate {
    date(TODAY)
}

pub const COMMUNITIES: [(&str, &str); 6] = [
    ("c1", "东风社区"),
    ("c2", "红旗社区"),
    ("c3", "新华社区"),
    ("c4", "光明社区"),
    ("c5", "幸福社区"),
    ("c6", "和平社区"),
];

pub const CATEGORIES: [(&str, &str); 5] = [
    ("theory", "理论学习"),
    ("self_check", "督查自查"),
    ("responsibility", "主体责任"),
    ("opinion", "舆情研判"),
    ("staffing", "队伍建设"),
];

#[allow(clippy::too_many_arguments)]
fn user(
    log: &mut Vec<(RecordedEvent, Event)>,
    tenant: &str,
    stream: &str,
    id: &str,
    username: &str,
    name: &str,
    role: Role,
    scope: Scope,
) {
    let at = "2023-01-01T00:00:00.000000Z";
    log.push(ev(
        tenant,
        stream,
        at,
        UserCreated { user_id: uid(id), username: username.into(), display_name: name.into() },
    ));
    log.push(ev(tenant, stream, at, PasswordSet { user_id: uid(id), password_hash: "$argon2id$v=19$fake".into() }));
    log.push(ev(tenant, stream, at, RoleGranted { user_id: uid(id), role, scope }));
}

/// The whole scenario (tenant t1 of the sample report plus a small second tenant t2), numbered.
///
/// t1 (XX街道): inspection i1 (2023) of 6 communities, 3 achievements (one with 理论宣讲会 10 场),
/// 5 findings f1..f5 (理论学习 全街道, 督查自查 c2, 主体责任 c3, 舆情研判 c4, 队伍建设 全街道);
/// f1 verified 2024-03-20, f2 in progress (deadline 2024-06-30), f3 overdue (deadline 2024-02-29),
/// f4 and f5 unassigned. Deductions: c1 35 on A1 (30 max), c2 2.5 on A3. Self-inspections by c1, c2.
/// t2 (YY街道): inspection j1 (2024) of 1 community, 1 finding g1 (理论学习), assigned, due 2024-04-20.
pub fn sample_log() -> Vec<(RecordedEvent, Event)> {
    let mut log = Vec::new();
    let p = "_platform";
    let at0 = "2023-01-01T00:00:00.000000Z";
    user(&mut log, p, "_platform/platform", "root", "root", "平台管理员", Role::PlatformAdmin, Scope::Platform);
    log.push(ev(p, "_platform/district-d1", at0, DistrictCreated { district_id: did("d1"), name: "XX区".into() }));
    let d1 = Scope::District { district_id: did("d1") };
    user(&mut log, p, "_platform/district-d1", "qxb1", "qxb", "区委宣传部张三", Role::DistrictOfficer, d1);

    // ---- t1
    let t1 = Scope::Tenant { district_id: did("d1"), tenant_id: tid("t1") };
    let ts = "t1/tenant";
    log.push(ev(
        "t1",
        ts,
        at0,
        TenantCreated {
            tenant_id: tid("t1"),
            district_id: did("d1"),
            name: "XX街道".into(),
            methods: InspectionMethod::builtin_terms(),
            categories: vec![],
        },
    ));
    for (id, name) in COMMUNITIES {
        log.push(ev("t1", ts, at0, CommunityAdded { community_id: cid(id), name: name.into() }));
    }
    for (code, name) in CATEGORIES {
        log.push(ev("t1", ts, at0, FindingCategoryAdded { code: code.into(), name: name.into() }));
    }
    let item = |code: &str, title: &str, p: u32| ChecklistItem {
        code: code.into(),
        title: title.into(),
        max_points: Points::whole(p),
    };
    log.push(ev(
        "t1",
        ts,
        at0,
        ChecklistDefined {
            checklist_id: ChecklistId::parse("cl1").unwrap(),
            title: "意识形态工作责任制检查考核细则".into(),
            items: vec![
                item("A1", "理论学习", 30),
                item("A2", "阵地建设", 30),
                item("A3", "舆情研判", 20),
                item("A4", "队伍建设", 20),
            ],
        },
    ));
    user(&mut log, "t1", ts, "admin1", "t1admin", "李管理", Role::SubdistrictAdmin, t1.clone());
    user(&mut log, "t1", ts, "insp1", "wang", "王督查", Role::Inspector, t1.clone());
    user(&mut log, "t1", ts, "insp2", "zhao", "赵督查", Role::Inspector, t1);
    let c1 = Scope::Community { district_id: did("d1"), tenant_id: tid("t1"), community_id: cid("c1") };
    user(&mut log, "t1", ts, "off1", "dongfeng", "东风社区书记", Role::CommunityOfficer, c1);

    let is = "t1/inspection-i1";
    log.push(ev(
        "t1",
        is,
        "2023-11-01T02:00:00.000000Z",
        InspectionPlanned {
            inspection_id: iid("i1"),
            year: 2023,
            title: "对下级社区督查2023年度意识形态工作情况".into(),
            subject: "意识形态工作".into(),
            communities: COMMUNITIES.iter().map(|(id, _)| cid(id)).collect(),
            team: vec![
                TeamMember { user_id: uid("insp1"), leader: true },
                TeamMember { user_id: uid("insp2"), leader: false },
            ],
            methods: vec![InspectionMethod::new("meeting"), InspectionMethod::new("document_review")],
            checklist_id: Some(ChecklistId::parse("cl1").unwrap()),
            planned_start: date("2023-11-20"),
            planned_end: date("2023-11-30"),
        },
    ));
    log.push(ev("t1", is, "2023-11-20T01:00:00.000000Z", InspectionStarted { started_on: date("2023-11-20") }));
    let insp = |at: &str, event: Event| ev_by("t1", is, at, "insp1", Role::Inspector, event);
    log.push(insp(
        "2023-11-20T02:00:00.000000Z",
        FieldworkRecorded {
            community_id: cid("c1"),
            method: InspectionMethod::new("meeting"),
            held_on: date("2023-11-20"),
            participants: "社区党支部书记、委员".into(),
            notes: "座谈交流".into(),
        }
        .into(),
    ));
    log.push(insp(
        "2023-11-21T02:00:00.000000Z",
        FieldworkRecorded {
            community_id: cid("c2"),
            method: InspectionMethod::new("document_review"),
            held_on: date("2023-11-21"),
            participants: "社区宣传委员".into(),
            notes: "查阅意识形态工作台账".into(),
        }
        .into(),
    ));
    for (c, code, pts, reason) in
        [("c1", "A1", 2500, "理论学习走过场"), ("c1", "A1", 1000, "无学习记录"), ("c2", "A3", 250, "舆情台账缺失")]
    {
        log.push(insp(
            "2023-11-22T02:00:00.000000Z",
            DeductionRecorded {
                community_id: cid(c),
                item_code: code.into(),
                points: Points(pts),
                reason: reason.into(),
            }
            .into(),
        ));
    }
    let achievements = [
        ("a1", "加强理论武装，坚定理想信念", "2023年以来，开展理论宣讲会等10场。", true),
        ("a2", "加强意识形态阵地建设", "开展社会主义核心价值观宣传教育活动。", false),
        ("a3", "网络安全工作责任制落实情况", "各社区均严格落实网络意识形态工作制度。", false),
    ];
    for (id, category, text, figure) in achievements {
        let figures = if figure {
            vec![Figure { label: "理论宣讲会".into(), value: 10, unit: "场".into() }]
        } else {
            Vec::new()
        };
        log.push(insp(
            "2023-11-23T02:00:00.000000Z",
            AchievementRecorded {
                achievement_id: AchievementId::parse(id).unwrap(),
                category: category.into(),
                text: text.into(),
                figures,
                community_id: None,
            }
            .into(),
        ));
    }
    let findings = [
        ("f1", None, "theory", "理论学习走过场的情况仍有存在", "有些社区对政治理论学习的重要性认识不足。"),
        ("f2", Some("c2"), "self_check", "对督查工作不够重视", "没有进行认真自查，提交的自查报告质量不高。"),
        ("f3", Some("c3"), "responsibility", "主体责任意识有待增强", "“重业务轻思想教育”问题比较突出。"),
        ("f4", Some("c4"), "opinion", "舆情分析研判预警工作不够充分", "舆情分析研判机制不健全。"),
        ("f5", None, "staffing", "意识形态队伍建设有待强化", "人员流动频率快，身兼数职。"),
    ];
    for (id, community, category, title, description) in findings {
        log.push(insp(
            "2023-11-24T02:00:00.000000Z",
            FindingRecorded {
                finding_id: fid(id),
                community_id: community.map(cid),
                category: category.into(),
                title: title.into(),
                description: description.into(),
                severity: Severity::General,
            }
            .into(),
        ));
    }
    log.push(ev(
        "t1",
        is,
        "2023-12-01T02:00:00.000000Z",
        InspectionConcluded {
            assessment: "总体良好".into(), summary: "辖区没有发生意识形态安全事故。".into()
        },
    ));
    let assign = |title: &str, deadline: &str| RectificationAssigned {
        inspection_id: iid("i1"),
        title: title.into(),
        measure: format!("{title}：制定整改方案"),
        responsible_unit: "街道党建办".into(),
        leader: "街道党工委副书记".into(),
        person: "宣传委员".into(),
        deadline: date(deadline),
    };
    let assigned_at = "2023-12-05T02:00:00.000000Z";
    log.push(ev("t1", "t1/finding-f1", assigned_at, assign("狠抓理论学习强化思想武装", "2024-03-31")));
    log.push(ev("t1", "t1/finding-f2", assigned_at, assign("认真开展自查", "2024-06-30")));
    log.push(ev("t1", "t1/finding-f3", assigned_at, assign("持续抓好意识形态责任制落实", "2024-02-29")));
    let evidence = EvidenceRef {
        sha256: "ab".repeat(32),
        filename: "学习记录.pdf".into(),
        content_type: "application/pdf".into(),
        size: 1024,
    };
    log.push(ev_by(
        "t1",
        "t1/finding-f1",
        "2024-01-10T02:00:00.000000Z",
        "admin1",
        Role::SubdistrictAdmin,
        ProgressReported { text: "已开展专题学习3次".into(), evidence: vec![evidence] },
    ));
    log.push(ev_by(
        "t1",
        "t1/finding-f2",
        "2024-01-15T02:00:00.000000Z",
        "off1",
        Role::CommunityOfficer,
        ProgressReported { text: "已重新开展自查".into(), evidence: vec![] },
    ));
    log.push(ev(
        "t1",
        "t1/finding-f1",
        "2024-03-01T02:00:00.000000Z",
        RectificationSubmitted { summary: "整改完成".into() },
    ));
    log.push(ev(
        "t1",
        "t1/finding-f1",
        "2024-03-20T02:00:00.000000Z",
        RectificationVerified { comment: "同意销号".into() },
    ));
    for (id, c, at) in [("s1", "c1", "2023-11-10T02:00:00.000000Z"), ("s2", "c2", "2023-11-11T02:00:00.000000Z")] {
        log.push(ev_by(
            "t1",
            &format!("t1/self-inspection-{id}"),
            at,
            "off1",
            Role::CommunityOfficer,
            SelfInspectionSubmitted {
                self_inspection_id: SelfInspectionId::parse(id).unwrap(),
                community_id: cid(c),
                year: 2023,
                title: "2023年度意识形态工作自查报告".into(),
                text: "……".into(),
                inspection_id: Some(iid("i1")),
                sections: vec![],
            },
        ));
    }

    // ---- t2
    log.extend(tenant_two());
    renumber(log)
}

/// The second tenant's events only (unnumbered).
pub fn tenant_two() -> Vec<(RecordedEvent, Event)> {
    let mut log = Vec::new();
    let at0 = "2024-01-01T00:00:00.000000Z";
    let ts = "t2/tenant";
    log.push(ev(
        "t2",
        ts,
        at0,
        TenantCreated {
            tenant_id: tid("t2"),
            district_id: did("d1"),
            name: "YY街道".into(),
            methods: InspectionMethod::builtin_terms(),
            categories: vec![],
        },
    ));
    log.push(ev("t2", ts, at0, CommunityAdded { community_id: cid("k1"), name: "朝阳社区".into() }));
    log.push(ev("t2", ts, at0, FindingCategoryAdded { code: "theory".into(), name: "理论学习".into() }));
    log.push(ev(
        "t2",
        ts,
        at0,
        ChecklistDefined {
            checklist_id: ChecklistId::parse("cl1").unwrap(),
            title: "细则".into(),
            items: vec![ChecklistItem {
                code: "A1".into(), title: "理论学习".into(), max_points: Points::whole(100)
            }],
        },
    ));
    let is = "t2/inspection-j1";
    log.push(ev(
        "t2",
        is,
        "2024-02-01T02:00:00.000000Z",
        InspectionPlanned {
            inspection_id: iid("j1"),
            year: 2024,
            title: "2024年度意识形态工作督查".into(),
            subject: "意识形态工作".into(),
            communities: vec![cid("k1")],
            team: vec![],
            methods: vec![InspectionMethod::new("site_visit")],
            checklist_id: Some(ChecklistId::parse("cl1").unwrap()),
            planned_start: date("2024-02-10"),
            planned_end: date("2024-02-20"),
        },
    ));
    log.push(ev(
        "t2",
        is,
        "2024-02-11T02:00:00.000000Z",
        DeductionRecorded {
            community_id: cid("k1"),
            item_code: "A1".into(),
            points: Points::whole(10),
            reason: "x".into(),
        },
    ));
    log.push(ev(
        "t2",
        is,
        "2024-02-12T02:00:00.000000Z",
        FindingRecorded {
            finding_id: fid("g1"),
            community_id: Some(cid("k1")),
            category: "theory".into(),
            title: "学习不深入".into(),
            description: "学习不深入。".into(),
            severity: Severity::Major,
        },
    ));
    log.push(ev(
        "t2",
        is,
        "2024-02-20T02:00:00.000000Z",
        InspectionConcluded { assessment: "良好".into(), summary: String::new() },
    ));
    log.push(ev(
        "t2",
        "t2/finding-g1",
        "2024-02-21T02:00:00.000000Z",
        RectificationAssigned {
            inspection_id: iid("j1"),
            title: "深入学习".into(),
            measure: "制定学习计划".into(),
            responsible_unit: "朝阳社区".into(),
            leader: "书记".into(),
            person: "委员".into(),
            deadline: date("2024-04-20"),
        },
    ));
    log
}
