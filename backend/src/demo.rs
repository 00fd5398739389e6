//! The demo data: the sample report's inspection of XX街道 (2023) as events, plus two more
//! sub-districts of XX区 with plausible 2023–2026 data, and users for every role.
//!
//! Every step is a real command through [`crate::commands`], so the demo exercises the same rules as
//! the API. Steps carry their historical dates and run in time order, so "as of" views of the demo
//! show the past as it unfolded.

use crate::commands::{self, CommandError, Meta};
use crate::store::EventStore;
use chrono::{NaiveDate, NaiveTime, TimeZone};
use ducha_events::authz::{Actor, Grant, Role, Scope};
use ducha_events::district::DistrictCommand;
use ducha_events::event::{ChecklistItem, EvidenceRef, Figure, InspectionMethod, Points, Severity, TeamMember};
use ducha_events::finding::FindingCommand;
use ducha_events::ids::*;
use ducha_events::inspection::InspectionCommand;
use ducha_events::platform::PlatformCommand;
use ducha_events::self_inspection::SelfInspectionCommand;
use ducha_events::tenant::DEFAULT_CATEGORIES;
use ducha_events::tenant::TenantCommand;
use ducha_events::time::{Timestamp, shanghai};
use ducha_events::users::UserCommand;

/// The password of every demo account. Demo only: never use demo data in production.
pub const DEMO_PASSWORD: &str = "ducha-demo";
pub const DISTRICT: &str = "xxq";
pub const SAMPLE_TENANT: &str = "xxjd";
pub const SAMPLE_INSPECTION: &str = "2023-ideology";

/// What `ducha demo` did, for printing.
#[derive(Debug, Clone, Default)]
pub struct DemoReport {
    pub already_loaded: bool,
    pub commands: usize,
    pub events: usize,
    /// (username, role name, scope description)
    pub accounts: Vec<(String, String, String)>,
}

impl DemoReport {
    /// `store`: where it was loaded (`sqlite:DIR` or the database, without password).
    pub fn render(&self, store: &str) -> String {
        let mut out = String::new();
        if self.already_loaded {
            out.push_str("演示数据已存在，未重复加载 / demo data already loaded, nothing added\n");
        } else {
            out.push_str(&format!(
                "已加载演示数据：{} 条命令，{} 个事件，存储 {} / demo loaded\n",
                self.commands, self.events, store
            ));
        }
        out.push_str(&format!("演示账号（密码均为 {DEMO_PASSWORD}，仅用于演示）/ demo logins:\n"));
        for (user, role, scope) in &self.accounts {
            out.push_str(&format!("  {user:<16} {role:<10} {scope}\n"));
        }
        out
    }
}

fn id<T: TryFrom<String>>(s: &str) -> T {
    match T::try_from(s.to_owned()) {
        Ok(v) => v,
        // Demo ids are literals checked by the demo test; an invalid one is a programming error.
        Err(_) => unreachable!("invalid demo id {s}"),
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// 09:00 Asia/Shanghai on a date, plus `minute` minutes to keep steps of one day in order.
fn at(day: NaiveDate, minute: u32) -> Timestamp {
    let time = NaiveTime::from_hms_opt(9 + minute / 60 % 10, minute % 60, 0).unwrap_or_default();
    shanghai().from_local_datetime(&day.and_time(time)).single().map(|t| t.to_utc()).unwrap_or_default()
}

/// One demo step: who acts, when, and on what.
enum Step {
    Platform(PlatformCommand),
    District(DistrictId, DistrictCommand),
    Tenant(TenantId, TenantCommand),
    Inspection(TenantId, InspectionId, InspectionCommand),
    Finding(TenantId, InspectionId, FindingId, FindingCommand),
    SelfInspection(TenantId, SelfInspectionId, SelfInspectionCommand),
    SecurityPolicy(ducha_events::security::SecurityPolicyCommand),
}

struct Plan {
    steps: Vec<(Timestamp, Actor, Step)>,
    password_hash: String,
    accounts: Vec<(String, String, String)>,
    district: DistrictId,
    /// 系统管理员 and 安全管理员: who creates accounts and grants roles above a sub-district admin's
    /// reach (三员分立); the system actor until they exist.
    sysadmin: Actor,
    secadmin: Actor,
}

impl Plan {
    fn push(&mut self, when: Timestamp, actor: &Actor, step: Step) {
        self.steps.push((when, actor.clone(), step));
    }

    fn scope_tenant(&self, t: &TenantId) -> Scope {
        Scope::Tenant { district_id: self.district.clone(), tenant_id: t.clone() }
    }

    /// Creates a user with one grant on the stream that owns the scope; returns the user's actor. A
    /// sub-district admin (`by`) creates and grants its own business staff; every other account is
    /// created by the system administrator and granted by the security administrator.
    fn user(
        &mut self,
        when: Timestamp,
        by: &Actor,
        owner: Owner,
        (username, display): (&str, &str),
        grant: Grant,
        scope_name: &str,
    ) -> Actor {
        let user_id: UserId = id(username);
        let create = UserCommand::CreateUser {
            user_id: user_id.clone(),
            username: username.to_owned(),
            display_name: display.to_owned(),
            password_hash: self.password_hash.clone(),
        };
        let grant_cmd =
            UserCommand::GrantRole { user_id: user_id.clone(), role: grant.role, scope: grant.scope.clone() };
        let own_staff = by.grants.iter().any(|g| ducha_events::authz::may_grant(g.role, grant.role));
        let (creator, granter) =
            if own_staff { (by.clone(), by.clone()) } else { (self.sysadmin.clone(), self.secadmin.clone()) };
        for (cmd, actor) in [(create, creator), (grant_cmd, granter)] {
            let step = match &owner {
                Owner::Platform => Step::Platform(PlatformCommand::Users(cmd)),
                Owner::District(d) => Step::District(d.clone(), DistrictCommand::Users(cmd)),
                Owner::Tenant(t) => Step::Tenant(t.clone(), TenantCommand::Users(cmd)),
            };
            self.push(when, &actor, step);
        }
        self.accounts.push((username.to_owned(), grant.role.name_zh().to_owned(), scope_name.to_owned()));
        Actor { user_id, grants: vec![grant] }
    }
}

enum Owner {
    Platform,
    District(DistrictId),
    Tenant(TenantId),
}

const CATEGORIES: [(&str, &str); 7] = [
    ("theory", "理论学习"),
    ("self-check", "督查自查"),
    ("responsibility", "主体责任"),
    ("opinion", "舆情研判"),
    ("staffing", "队伍建设"),
    ("positions", "阵地建设"),
    ("online", "网络意识形态"),
];

const CHECKLIST: [(&str, &str, u32); 6] = [
    ("A1", "理论学习中心组学习和“第一议题”制度落实", 20),
    ("A2", "意识形态工作主体责任落实", 25),
    ("A3", "意识形态阵地建设和管理", 20),
    ("A4", "舆情分析研判和处置", 15),
    ("A5", "意识形态工作队伍建设", 10),
    ("A6", "督查自查和工作台账", 10),
];

/// The sample report's five findings: (category, title, description).
pub const SAMPLE_FINDINGS: [(&str, &str, &str); 5] = [
    (
        "theory",
        "理论学习走过场的情况仍有存在",
        "督查发现，有些社区对政治理论学习的重要性认识不足，理论联系实际、指导实践不够，在开展政治理论学习时，没有认真联系实际学，大多泛泛而谈，存在走过场的现象。",
    ),
    (
        "self-check",
        "对督查工作不够重视",
        "部分社区对意识形态督查工作的重要性认识不足，没有进行认真自查，提交的自查报告质量不高，没有真实反映本部门落实意识形态主体责任情况，意识形态工作台账不够完善，多为不符合要求的内容。",
    ),
    (
        "responsibility",
        "主体责任意识有待增强",
        "个别社区“重业务轻思想教育”问题比较突出，对理论学习尤其是对《中国共产党宣传工作条例》的落实不够全面，对意识形态工作重视不够，导致意识形态领域规范管理的难度加大，意识形态宣传工作停留在表面功夫，不能够持续走向深入。",
    ),
    (
        "opinion",
        "舆情分析研判预警工作不够充分",
        "个别社区舆情分析研判机制不健全，平时对各级新闻媒体的舆情动态了解不够深入，重大决策及项目的舆情风险评估制度、政务舆情回应制度、澄清虚假或不完整信息制度等工作机制不健全，对可能引发群体性事件和社会动荡的言论，搜集、研判、处置不够及时。",
    ),
    (
        "staffing",
        "意识形态队伍建设有待强化",
        "由于人员流动频率快，加上部分社区负责意识形态工作人员身兼数职，对本职工作思考不多、研究不深、汇报不够、履职不到位。",
    ),
];

/// The sample's three achievements: (heading, text, figures).
fn sample_achievements() -> Vec<(&'static str, &'static str, Vec<Figure>)> {
    vec![
        (
            "加强理论武装，坚定理想信念",
            "充分发挥XX社区新时代文明实践站的阵地引领作用，深入学习宣传贯彻习近平总书记系列重要讲话精神以及视察黑龙江省时的重要讲话精神，深入学习宣传贯彻党的XX大和二十届一中全会精神，把落实“第一议题制度”与“学习强国”学习平台推广应用有机结合起来，2023年以来，开展理论宣讲会等10场。",
            vec![Figure { label: "理论宣讲会".to_owned(), value: 10, unit: "场".to_owned() }],
        ),
        (
            "加强意识形态阵地建设",
            "以落实“八进”为切入点，通过载体宣传、榜样示范、教育引导等手段，围绕迎接学习宣传贯彻党的XX大这条主线，开展社会主义核心价值观宣传教育活动，充分整合各类资源，打造社会主义先进文化的阵地。各社区能够坚持以习近平新时代中国特色社会主义思想为指导，全面贯彻落实《中国共产党宣传工作条例》，加强党的理论学习；常态化长效化开展党史学习教育，开展了建党101周年系列群众性主题宣传活动。",
            vec![],
        ),
        (
            "网络安全工作责任制落实情况",
            "各社区均严格落实XX党工委下发的网络意识形态工作制度，加强网络媒体监管。各社区所有发布信息严格按程序规定发布。同时加强舆情监控，有针对性地抓好社会热点问题的引导，确保舆论导向向好。",
            vec![],
        ),
    ]
}

/// The sample's three next-step measures: (finding index answered, title, measure).
pub const SAMPLE_MEASURES: [(usize, &str, &str); 3] = [
    (
        0,
        "狠抓理论学习强化思想武装",
        "结合学习宣传贯彻党的XX大精神，积极推动党的创新理论通俗化大众化，持续做好“学习强国”学习平台的推广使用，进一步加强新时代文明实践站等平台建设，不断推动党的创新理论进机关、进校园、进社区、进企业、进网站，进一步打牢团结奋斗的共同思想基础。进一步抓好《中国共产党宣传工作条例》的宣传贯彻落实，结合意识形态督查调研、巡察反馈、述职评议等工作的开展，加强对各级各部门贯彻落实《条例》情况的督促检查，确保《条例》有效落实。",
    ),
    (
        2,
        "持续抓好意识形态责任制落实",
        "严格执行《党委（党组）意识形态工作责任制实施办法》，把意识形态工作纳入党组织工作、纪律检查、干部考核。严格落实“第一责任人”责任，党组织书记要带头抓意识形态工作、带头管阵地、把导向、强队伍、带头批评错误观点和错误倾向，重要工作要亲自部署、重要问题要亲自过问、重大事件要亲自处置，切实抓好意识形态主体责任的全面落实，做到守土有责、守土负责、守土尽责。",
    ),
    (
        3,
        "加强意识形态阵地建设",
        "一是加强新时代文明实践站的建设和管理，充分发挥新时代文明实践中心引领基层、服务基层的阵地作用。二是加强对XX区政府门户网站、“XX”公众号等所属政务新媒体的管理，健全规范运营的规章制度。三是充分利用好各类平台，不断扩大意识形态阵地。",
    ),
];

const SAMPLE_INTRO: &str = "从督查调研的情况看，各社区对意识形态工作比较重视，对意识形态和党组织理论学习工作进行了安排部署，意识形态主体责任落实情况总体良好，辖区没有发生意识形态安全事故。";

/// A small fake evidence reference (the demo ships no files; the hash is of the description).
fn evidence(name: &str) -> EvidenceRef {
    use sha2::{Digest, Sha256};
    EvidenceRef {
        sha256: hex::encode(Sha256::digest(name.as_bytes())),
        filename: name.to_owned(),
        content_type: "application/pdf".to_owned(),
        size: 1024 + name.len() as u64,
    }
}

fn build(password_hash: &str) -> Plan {
    let district: DistrictId = id(DISTRICT);
    let system = Actor::system();
    let mut plan = Plan {
        steps: Vec::new(),
        password_hash: password_hash.to_owned(),
        accounts: Vec::new(),
        district: district.clone(),
        sysadmin: system.clone(),
        secadmin: system.clone(),
    };
    let t0 = date(2023, 1, 4);

    // The demo's security policy: the level-3 rules, relaxed so that the printed demo logins work
    // as printed (no forced change or expiry; a second factor only once one is enrolled).
    plan.push(
        at(t0, 0),
        &system,
        Step::SecurityPolicy(ducha_events::security::SecurityPolicyCommand::Set(
            ducha_events::security::SecurityPolicy::demo(),
        )),
    );

    // The three administrators of 等保 (三员分立), created from the command line's system actor;
    // then the platform, the district and platform-level users.
    let platform = |role| Grant { role, scope: Scope::Platform };
    let sysadmin = plan.user(
        at(t0, 0),
        &system,
        Owner::Platform,
        ("sysadmin", "系统管理员"),
        platform(Role::SystemAdmin),
        "全平台",
    );
    let secadmin = plan.user(
        at(t0, 0),
        &system,
        Owner::Platform,
        ("secadmin", "安全管理员"),
        platform(Role::SecurityAdmin),
        "全平台",
    );
    plan.user(at(t0, 0), &system, Owner::Platform, ("audadmin", "审计管理员"), platform(Role::AuditAdmin), "全平台");
    plan.sysadmin = sysadmin;
    plan.secadmin = secadmin;
    let platform_admin = Grant { role: Role::PlatformAdmin, scope: Scope::Platform };
    let admin = plan.user(at(t0, 0), &system, Owner::Platform, ("admin", "平台管理员"), platform_admin, "全平台");
    plan.push(
        at(t0, 1),
        &admin,
        Step::District(
            district.clone(),
            DistrictCommand::Create { district_id: district.clone(), name: "XX区".to_owned() },
        ),
    );
    let district_scope = Scope::District { district_id: district.clone() };
    plan.user(
        at(t0, 2),
        &admin,
        Owner::District(district.clone()),
        ("qu-xcb", "区委宣传部 王科长"),
        Grant { role: Role::DistrictOfficer, scope: district_scope.clone() },
        "XX区",
    );
    plan.user(
        at(t0, 3),
        &admin,
        Owner::District(district.clone()),
        ("qu-jjw", "区纪委监委 李审计"),
        Grant { role: Role::Auditor, scope: district_scope },
        "XX区",
    );

    sample_subdistrict(&mut plan, &admin);
    other_subdistrict(
        &mut plan,
        &admin,
        OtherSpec {
            tenant: "yyjd",
            name: "YY街道",
            prefix: "yy",
            communities: &[
                ("chaoyang", "朝阳社区"),
                ("xinghua", "兴华社区"),
                ("binhe", "滨河社区"),
                ("jinqiao", "金桥社区"),
            ],
            seed: 3,
            current_year: true,
        },
    );
    other_subdistrict(
        &mut plan,
        &admin,
        OtherSpec {
            tenant: "zzjd",
            name: "ZZ街道",
            prefix: "zz",
            communities: &[
                ("changan", "长安社区"),
                ("fuqiang", "富强社区"),
                ("minzhu", "民主社区"),
                ("wenming", "文明社区"),
                ("hexie", "和谐社区"),
            ],
            seed: 5,
            current_year: false,
        },
    );
    // Run in time order; steps at the same instant keep their written order.
    plan.steps.sort_by_key(|(when, _, _)| *when);
    plan
}

fn setup_tenant(
    plan: &mut Plan,
    admin: &Actor,
    t: &TenantId,
    name: &str,
    communities: &[(&str, &str)],
    day: NaiveDate,
) {
    plan.push(
        at(day, 0),
        admin,
        Step::Tenant(t.clone(), TenantCommand::Create { tenant_id: t.clone(), name: name.to_owned() }),
    );
    for (i, (c, n)) in communities.iter().enumerate() {
        plan.push(
            at(day, 10 + i as u32),
            admin,
            Step::Tenant(t.clone(), TenantCommand::AddCommunity { community_id: id(c), name: (*n).to_owned() }),
        );
    }
    // A new tenant starts with the sample report's five categories; the demo adds its other ones.
    let extra = CATEGORIES.iter().filter(|(code, _)| !DEFAULT_CATEGORIES.iter().any(|(c, _)| c == code));
    for (i, (code, n)) in extra.enumerate() {
        plan.push(
            at(day, 30 + i as u32),
            admin,
            Step::Tenant(
                t.clone(),
                TenantCommand::AddFindingCategory { code: (*code).to_owned(), name: (*n).to_owned() },
            ),
        );
    }
    let items = CHECKLIST
        .iter()
        .map(|(code, title, max)| ChecklistItem {
            code: (*code).to_owned(),
            title: (*title).to_owned(),
            max_points: Points::whole(*max),
        })
        .collect();
    plan.push(
        at(day, 40),
        admin,
        Step::Tenant(
            t.clone(),
            TenantCommand::DefineChecklist {
                checklist_id: id("ideology-2023"),
                title: "意识形态工作责任制检查考核细则（2023年版）".to_owned(),
                items,
            },
        ),
    );
}

fn sample_subdistrict(plan: &mut Plan, platform_admin: &Actor) {
    let t: TenantId = id(SAMPLE_TENANT);
    let communities = [
        ("dongfeng", "东风社区"),
        ("xiangyang", "向阳社区"),
        ("heping", "和平社区"),
        ("jianshe", "建设社区"),
        ("youyi", "友谊社区"),
        ("guangming", "光明社区"),
    ];
    let day = date(2023, 1, 5);
    setup_tenant(plan, platform_admin, &t, "XX街道", &communities, day);
    let tenant_scope = plan.scope_tenant(&t);
    let d = plan.district.clone();
    let admin = plan.user(
        at(day, 50),
        platform_admin,
        Owner::Tenant(t.clone()),
        ("xx-admin", "XX街道党工委 张主任"),
        Grant { role: Role::SubdistrictAdmin, scope: tenant_scope.clone() },
        "XX街道",
    );
    let insp1 = plan.user(
        at(day, 52),
        &admin,
        Owner::Tenant(t.clone()),
        ("xx-duchazu1", "督查组 刘组长"),
        Grant { role: Role::Inspector, scope: tenant_scope.clone() },
        "XX街道",
    );
    let insp2 = plan.user(
        at(day, 54),
        &admin,
        Owner::Tenant(t.clone()),
        ("xx-duchazu2", "督查组 陈干事"),
        Grant { role: Role::Inspector, scope: tenant_scope.clone() },
        "XX街道",
    );
    let officer_scope = Scope::Community { district_id: d, tenant_id: t.clone(), community_id: id("dongfeng") };
    let officer = plan.user(
        at(day, 56),
        &admin,
        Owner::Tenant(t.clone()),
        ("xx-dongfeng", "东风社区 赵书记"),
        Grant { role: Role::CommunityOfficer, scope: officer_scope },
        "XX街道 东风社区",
    );
    plan.user(
        at(day, 58),
        &admin,
        Owner::Tenant(t.clone()),
        ("xx-jiwei", "街道纪工委 孙委员"),
        Grant { role: Role::Auditor, scope: tenant_scope },
        "XX街道",
    );

    // 自查报告 before the inspection.
    plan.push(at(date(2023, 10, 20), 0), &officer, Step::SelfInspection(t.clone(), id("2023-dongfeng"), SelfInspectionCommand::Submit {
        self_inspection_id: id("2023-dongfeng"),
        community_id: id("dongfeng"),
        year: 2023,
        title: "东风社区2023年度意识形态工作责任制落实情况自查报告".to_owned(),
        text: "按照街道党工委部署，社区党委对照检查考核细则逐项自查：理论学习中心组全年学习12次，开展理论宣讲10场；意识形态工作台账基本完整，舆情研判机制有待健全。".to_owned(),
        inspection_id: None,
        sections: vec![],
    }));

    let i: InspectionId = id(SAMPLE_INSPECTION);
    let ins = |cmd| Step::Inspection(t.clone(), i.clone(), cmd);
    plan.push(
        at(date(2023, 11, 1), 0),
        &admin,
        ins(InspectionCommand::Plan {
            inspection_id: i.clone(),
            year: 2023,
            title: "对下级社区督查2023年度意识形态工作情况".to_owned(),
            subject: "意识形态工作".to_owned(),
            communities: communities.iter().map(|(c, _)| id(c)).collect(),
            team: vec![
                TeamMember { user_id: insp1.user_id.clone(), leader: true },
                TeamMember { user_id: insp2.user_id.clone(), leader: false },
            ],
            methods: vec![InspectionMethod::new("meeting"), InspectionMethod::new("document_review")],
            checklist_id: Some(id("ideology-2023")),
            planned_start: date(2023, 11, 6),
            planned_end: date(2023, 11, 30),
        }),
    );
    plan.push(at(date(2023, 11, 6), 0), &admin, ins(InspectionCommand::Start { started_on: date(2023, 11, 6) }));
    // Deductions per community: (community index, item, points ×10, reason).
    let deductions: [(usize, &str, u32, &str); 8] = [
        (0, "A4", 30, "舆情研判记录不全"),
        (1, "A1", 50, "理论学习联系实际不够，记录泛泛而谈"),
        (1, "A6", 40, "自查报告质量不高"),
        (2, "A2", 30, "“重业务轻思想教育”问题突出"),
        (3, "A6", 50, "意识形态工作台账不完善"),
        (4, "A5", 20, "意识形态工作人员身兼数职"),
        (5, "A4", 45, "重大决策舆情风险评估制度不健全"),
        (5, "A1", 15, "“第一议题”学习记录不规范"),
    ];
    for (k, (c, _)) in communities.iter().enumerate() {
        let day = date(2023, 11, 6 + 2 * k as u32);
        let who = if k % 2 == 0 { &insp1 } else { &insp2 };
        plan.push(
            at(day, 10),
            who,
            ins(InspectionCommand::RecordFieldwork {
                community_id: id(c),
                method: InspectionMethod::new("meeting"),
                held_on: day,
                participants: "社区党组织书记、意识形态工作联络员、党员代表".to_owned(),
                notes: "座谈交流：听取社区落实意识形态工作责任制情况汇报，围绕理论学习、阵地管理、舆情研判逐项交流。"
                    .to_owned(),
            }),
        );
        plan.push(
            at(day, 40),
            who,
            ins(InspectionCommand::RecordFieldwork {
                community_id: id(c),
                method: InspectionMethod::new("document_review"),
                held_on: day,
                participants: "督查组".to_owned(),
                notes: "查阅资料：理论学习记录、意识形态工作台账、舆情报告、自查报告。".to_owned(),
            }),
        );
        for (n, (ci, item, tenths, reason)) in deductions.iter().enumerate() {
            if *ci == k {
                plan.push(
                    at(day, 50 + n as u32),
                    who,
                    ins(InspectionCommand::RecordDeduction {
                        community_id: id(c),
                        item_code: (*item).to_owned(),
                        points: Points::from_hundredths(tenths * 10),
                        reason: (*reason).to_owned(),
                    }),
                );
            }
        }
    }
    for (n, (category, text, figures)) in sample_achievements().into_iter().enumerate() {
        plan.push(
            at(date(2023, 11, 20), n as u32),
            &insp1,
            ins(InspectionCommand::RecordAchievement {
                achievement_id: id(&format!("a{}", n + 1)),
                category: category.to_owned(),
                text: text.to_owned(),
                figures,
                community_id: None,
            }),
        );
    }
    for (n, (category, title, description)) in SAMPLE_FINDINGS.iter().enumerate() {
        plan.push(
            at(date(2023, 11, 21), n as u32),
            &insp1,
            ins(InspectionCommand::RecordFinding {
                finding_id: id(&format!("xx-2023-f{}", n + 1)),
                community_id: None,
                category: (*category).to_owned(),
                title: (*title).to_owned(),
                description: (*description).to_owned(),
                severity: if n == 2 { Severity::Major } else { Severity::General },
            }),
        );
    }
    plan.push(
        at(date(2023, 11, 30), 0),
        &admin,
        ins(InspectionCommand::Conclude { assessment: "总体良好".to_owned(), summary: SAMPLE_INTRO.to_owned() }),
    );

    // Rectifications: (一) verified, (二) returned once then extended and still open, (三) overdue.
    let deadlines = [date(2024, 3, 31), date(2024, 6, 30), date(2024, 5, 31)];
    for (k, (finding, title, measure)) in SAMPLE_MEASURES.iter().enumerate() {
        let f: FindingId = id(&format!("xx-2023-f{}", finding + 1));
        plan.push(
            at(date(2023, 12, 8), k as u32),
            &admin,
            Step::Finding(
                t.clone(),
                i.clone(),
                f,
                FindingCommand::Assign {
                    title: (*title).to_owned(),
                    measure: (*measure).to_owned(),
                    responsible_unit: ["街道宣传办", "街道党建办", "街道综治中心"][k].to_owned(),
                    leader: ["张主任", "王副书记", "李副主任"][k].to_owned(),
                    person: ["刘干事", "周干事", "吴干事"][k].to_owned(),
                    deadline: deadlines[k],
                },
            ),
        );
    }
    let f = |n: usize| -> FindingId { id(&format!("xx-2023-f{n}")) };
    let step = |n: usize, cmd| Step::Finding(t.clone(), i.clone(), f(n), cmd);
    let progress = |text: &str, files: &[&str]| FindingCommand::ReportProgress {
        text: text.to_owned(),
        evidence: files.iter().map(|n| evidence(n)).collect(),
    };
    plan.push(
        at(date(2024, 1, 15), 0),
        &admin,
        step(
            1,
            progress("各社区已制定2024年度理论学习计划，开展“学习强国”推广培训3次。", &["2024年度理论学习计划.pdf"]),
        ),
    );
    plan.push(
        at(date(2024, 3, 10), 0),
        &admin,
        step(
            1,
            FindingCommand::Submit {
                summary: "理论学习计划和记录已规范，宣讲活动常态化开展。".to_owned()
            },
        ),
    );
    plan.push(
        at(date(2024, 3, 20), 0),
        &admin,
        step(1, FindingCommand::Verify { comment: "经核查，整改到位，同意销号。".to_owned() }),
    );
    plan.push(
        at(date(2024, 2, 20), 0),
        &admin,
        step(3, progress("已召开党工委会议专题研究意识形态工作，修订责任清单。", &["党工委会议纪要.pdf"])),
    );
    plan.push(
        at(date(2024, 4, 10), 0),
        &admin,
        step(3, FindingCommand::Submit { summary: "责任清单已修订。".to_owned() }),
    );
    plan.push(
        at(date(2024, 4, 15), 0),
        &admin,
        step(
            3,
            FindingCommand::Return {
                reason: "各社区责任清单未全部签订，台账不完整，请补充后重新提交。".to_owned()
            },
        ),
    );
    plan.push(
        at(date(2024, 5, 20), 0),
        &admin,
        step(3, progress("已完成4个社区责任书签订，其余2个社区正在推进。", &["责任书签订情况.xlsx"])),
    );
    plan.push(
        at(date(2024, 6, 25), 0),
        &admin,
        step(
            3,
            FindingCommand::ExtendDeadline {
                new_deadline: date(2026, 12, 31),
                reason: "涉及制度建设和考核办法修订，需跨年度推进。".to_owned(),
            },
        ),
    );
    plan.push(at(date(2024, 3, 1), 0), &admin, step(4, progress("已起草舆情风险评估制度初稿。", &[])));
    plan.push(
        at(date(2024, 6, 5), 0),
        &admin,
        step(4, FindingCommand::Remind { message: "该项整改已超期，请于两周内报送进展。".to_owned() }),
    );

    sample_2024(plan, &t, &communities, (&admin, &insp1, &officer));
}

/// XX街道's 2024 inspection: community-level findings in every state a 东风社区 officer meets
/// (整改中, 退回, 待销号, 已销号, 逾期), and 东风社区's 自查报告 in the official form, which the
/// 督查报告 cites.
fn sample_2024(plan: &mut Plan, t: &TenantId, communities: &[(&str, &str)], who: (&Actor, &Actor, &Actor)) {
    let (admin, inspector, officer) = who;
    let i: InspectionId = id("2024-ideology");
    let ins = |cmd| Step::Inspection(t.clone(), i.clone(), cmd);
    let sections = [
        (1, "工作开展情况", ""),
        (2, "强化理论武装", "社区党委理论学习中心组全年集中学习12次，开展“第一议题”学习24次；依托新时代文明实践站开展理论宣讲10场，覆盖居民800余人次。"),
        (2, "加强阵地管理", "对辖区宣传栏、电子屏、居民微信群逐一排查，建立阵地台账，明确专人审核发布内容。"),
        (1, "存在的问题", ""),
        (2, "舆情研判机制不够健全", "舆情信息收集主要依靠网格员上报，研判分析不够及时。"),
        (2, "台账资料不够规范", "部分学习记录过于简单，未体现学习成效。"),
        (1, "下一步打算", ""),
        (2, "健全舆情研判机制", "每季度召开一次舆情研判会，建立舆情信息报送和处置台账。"),
        (2, "规范台账资料", "对照考核细则逐项完善台账，做到有计划、有记录、有总结。"),
    ]
    .iter()
    .map(|(level, title, text)| ducha_events::event::ReportSection {
        level: *level,
        title: (*title).to_owned(),
        text: (*text).to_owned(),
    })
    .collect();
    plan.push(
        at(date(2024, 9, 2), 0),
        admin,
        ins(InspectionCommand::Plan {
            inspection_id: i.clone(),
            year: 2024,
            title: "对下级社区督查2024年度意识形态工作情况".to_owned(),
            subject: "意识形态工作".to_owned(),
            communities: communities.iter().map(|(c, _)| id(c)).collect(),
            team: vec![TeamMember { user_id: inspector.user_id.clone(), leader: true }],
            methods: vec![InspectionMethod::new("meeting"), InspectionMethod::new("document_review")],
            checklist_id: Some(id("ideology-2023")),
            planned_start: date(2024, 9, 9),
            planned_end: date(2024, 9, 30),
        }),
    );
    plan.push(
        at(date(2024, 9, 5), 0),
        officer,
        Step::SelfInspection(
            t.clone(),
            id("2024-dongfeng"),
            SelfInspectionCommand::Submit {
                self_inspection_id: id("2024-dongfeng"),
                community_id: id("dongfeng"),
                year: 2024,
                title: "东风社区2024年度意识形态工作责任制落实情况自查报告".to_owned(),
                text: "按照街道党工委《关于开展2024年度意识形态工作责任制督查的通知》要求，社区党委对照检查考核细则开展了自查，现将有关情况报告如下：".to_owned(),
                inspection_id: Some(i.clone()),
                sections,
            },
        ),
    );
    plan.push(at(date(2024, 9, 9), 0), admin, ins(InspectionCommand::Start { started_on: date(2024, 9, 9) }));
    for (k, (c, _)) in communities.iter().enumerate() {
        let day = date(2024, 9, 10 + k as u32);
        plan.push(
            at(day, 10),
            inspector,
            ins(InspectionCommand::RecordFieldwork {
                community_id: id(c),
                method: InspectionMethod::new("meeting"),
                held_on: day,
                participants: "社区党组织书记、意识形态工作联络员".to_owned(),
                notes: "听取汇报，查阅学习记录、意识形态工作台账和自查报告。".to_owned(),
            }),
        );
    }
    plan.push(
        at(date(2024, 9, 24), 0),
        inspector,
        ins(InspectionCommand::RecordAchievement {
            achievement_id: id("a1"),
            category: "加强理论武装，坚定理想信念".to_owned(),
            text: "各社区依托新时代文明实践站开展理论宣讲36场，覆盖居民3000余人次。".to_owned(),
            figures: vec![Figure { label: "理论宣讲".to_owned(), value: 36, unit: "场".to_owned() }],
            community_id: None,
        }),
    );
    // 东风社区's findings, one per state it ends in, and one each for two other communities.
    let findings: [(&str, &str, &str, &str, &str); 6] = [
        (
            "f1",
            "dongfeng",
            "opinion",
            "舆情研判机制不够健全",
            "舆情信息收集主要依靠网格员上报，研判分析不够及时，未形成书面研判报告。",
        ),
        (
            "f2",
            "dongfeng",
            "self-check",
            "自查台账资料不够规范",
            "部分学习记录过于简单，未体现学习成效，台账归档不及时。",
        ),
        (
            "f3",
            "dongfeng",
            "theory",
            "理论宣讲覆盖面不够广",
            "理论宣讲以老党员为主，面向青年居民和“两新”组织的宣讲较少。",
        ),
        (
            "f4",
            "dongfeng",
            "staffing",
            "意识形态联络员培训不足",
            "联络员年内未参加系统培训，对网络阵地管理要求掌握不够。",
        ),
        ("f5", "xiangyang", "responsibility", "责任清单未及时更新", "社区班子调整后，意识形态工作责任清单未及时更新。"),
        ("f6", "heping", "theory", "学习计划落实不到位", "年度学习计划中的专题学习有3次未按期开展。"),
    ];
    for (n, (f, c, category, title, description)) in findings.iter().enumerate() {
        plan.push(
            at(date(2024, 9, 25), n as u32),
            inspector,
            ins(InspectionCommand::RecordFinding {
                finding_id: id(&format!("xx-2024-{f}")),
                community_id: Some(id(c)),
                category: (*category).to_owned(),
                title: (*title).to_owned(),
                description: (*description).to_owned(),
                severity: if n == 0 { Severity::Major } else { Severity::General },
            }),
        );
    }
    plan.push(
        at(date(2024, 9, 30), 0),
        admin,
        ins(InspectionCommand::Conclude {
            assessment: "良好".to_owned(),
            summary: "各社区意识形态工作责任制落实情况总体较好，舆情研判和台账管理仍需加强。".to_owned(),
        }),
    );
    // (finding, measure title, deadline)
    let assignments = [
        ("f1", "健全舆情研判机制", date(2027, 6, 30)),
        ("f2", "规范自查台账资料", date(2027, 3, 31)),
        ("f3", "扩大理论宣讲覆盖面", date(2025, 6, 30)),
        ("f4", "开展联络员专题培训", date(2025, 3, 31)),
        ("f5", "及时更新责任清单", date(2025, 3, 31)),
        ("f6", "抓好学习计划落实", date(2025, 6, 30)),
    ];
    for (k, (f, title, deadline)) in assignments.iter().enumerate() {
        plan.push(
            at(date(2024, 10, 8), k as u32),
            admin,
            Step::Finding(
                t.clone(),
                i.clone(),
                id(&format!("xx-2024-{f}")),
                FindingCommand::Assign {
                    title: (*title).to_owned(),
                    measure: "制定整改方案，明确责任人和时限，按期报送整改进展。".to_owned(),
                    responsible_unit: "社区党委".to_owned(),
                    leader: "社区书记".to_owned(),
                    person: "意识形态联络员".to_owned(),
                    deadline: *deadline,
                },
            ),
        );
    }
    let step = |f: &str, cmd| Step::Finding(t.clone(), i.clone(), id(&format!("xx-2024-{f}")), cmd);
    let progress = |text: &str| FindingCommand::ReportProgress { text: text.to_owned(), evidence: vec![] };
    // f1 整改中: progress reported by the officer.
    plan.push(at(date(2024, 11, 5), 0), officer, step("f1", progress("已制定舆情研判工作制度，首次研判会已召开。")));
    // f2 退回: submitted, returned for more.
    plan.push(at(date(2024, 11, 10), 0), officer, step("f2", progress("已对2024年学习记录逐项补充完善。")));
    plan.push(
        at(date(2024, 12, 2), 0),
        officer,
        step("f2", FindingCommand::Submit { summary: "学习记录和台账已补充完善。".to_owned() }),
    );
    plan.push(
        at(date(2024, 12, 6), 0),
        admin,
        step(
            "f2",
            FindingCommand::Return {
                reason: "台账归档仍不完整，请补齐第四季度资料后重新提交。".to_owned()
            },
        ),
    );
    // f3 已销号.
    plan.push(at(date(2025, 3, 1), 0), officer, step("f3", progress("面向青年居民开展“青春学习会”3场。")));
    plan.push(
        at(date(2025, 5, 20), 0),
        officer,
        step("f3", FindingCommand::Submit { summary: "宣讲已覆盖青年居民和辖区“两新”组织。".to_owned() }),
    );
    plan.push(
        at(date(2025, 5, 28), 0),
        admin,
        step("f3", FindingCommand::Verify { comment: "经核查，整改到位，同意销号。".to_owned() }),
    );
    // f4 逾期: a reminder after the deadline, no answer yet.
    plan.push(
        at(date(2025, 4, 8), 0),
        admin,
        step("f4", FindingCommand::Remind { message: "该项整改已超期，请尽快报送整改进展。".to_owned() }),
    );
    // f5 待销号 (another community, reported by the sub-district).
    plan.push(at(date(2025, 3, 10), 0), admin, step("f5", progress("向阳社区已重新梳理班子成员分工。")));
    plan.push(
        at(date(2025, 3, 20), 0),
        admin,
        step("f5", FindingCommand::Submit { summary: "责任清单已更新并重新签订。".to_owned() }),
    );
}

struct OtherSpec {
    tenant: &'static str,
    name: &'static str,
    prefix: &'static str,
    communities: &'static [(&'static str, &'static str)],
    seed: u32,
    current_year: bool,
}

/// A sub-district with a 2023 and a 2024 inspection (and, for one, a 2026 one under way), community
/// findings in varied states, and a community officer who reports progress.
fn other_subdistrict(plan: &mut Plan, platform_admin: &Actor, spec: OtherSpec) {
    let t: TenantId = id(spec.tenant);
    let setup_day = date(2023, 1, 6);
    setup_tenant(plan, platform_admin, &t, spec.name, spec.communities, setup_day);
    let scope = plan.scope_tenant(&t);
    let d = plan.district.clone();
    let p = spec.prefix;
    let admin = plan.user(
        at(setup_day, 50),
        platform_admin,
        Owner::Tenant(t.clone()),
        (&format!("{p}-admin"), &format!("{}党工委 管理员", spec.name)),
        Grant { role: Role::SubdistrictAdmin, scope: scope.clone() },
        spec.name,
    );
    let inspector = plan.user(
        at(setup_day, 52),
        &admin,
        Owner::Tenant(t.clone()),
        (&format!("{p}-duchazu"), &format!("{}督查组 组长", spec.name)),
        Grant { role: Role::Inspector, scope },
        spec.name,
    );
    let (first_c, first_name) = spec.communities[0];
    let officer_scope = Scope::Community { district_id: d, tenant_id: t.clone(), community_id: id(first_c) };
    let officer = plan.user(
        at(setup_day, 54),
        &admin,
        Owner::Tenant(t.clone()),
        (&format!("{p}-{first_c}"), &format!("{first_name} 联络员")),
        Grant { role: Role::CommunityOfficer, scope: officer_scope },
        &format!("{} {first_name}", spec.name),
    );

    let mut years = vec![2023, 2024];
    if spec.current_year {
        years.push(2026);
    }
    for year in years {
        let i: InspectionId = id(&format!("{year}-ideology"));
        let ins = |cmd| Step::Inspection(t.clone(), i.clone(), cmd);
        let month = if year == 2026 { 10 } else { 9 + spec.seed % 3 };
        let start = date(year, month, 10);
        plan.push(
            at(date(year, month, 1), 0),
            &admin,
            ins(InspectionCommand::Plan {
                inspection_id: i.clone(),
                year,
                title: format!("对下级社区督查{year}年度意识形态工作情况"),
                subject: "意识形态工作".to_owned(),
                communities: spec.communities.iter().map(|(c, _)| id(c)).collect(),
                team: vec![TeamMember { user_id: inspector.user_id.clone(), leader: true }],
                methods: vec![
                    InspectionMethod::new("meeting"),
                    InspectionMethod::new("document_review"),
                    InspectionMethod::new("site_visit"),
                ],
                checklist_id: Some(id("ideology-2023")),
                planned_start: start,
                planned_end: date(year, month, 28),
            }),
        );
        plan.push(at(start, 0), &admin, ins(InspectionCommand::Start { started_on: start }));
        for (k, (c, _)) in spec.communities.iter().enumerate() {
            let day = start + chrono::Days::new(k as u64);
            plan.push(
                at(day, 10),
                &inspector,
                ins(InspectionCommand::RecordFieldwork {
                    community_id: id(c),
                    method: if k % 2 == 0 {
                        InspectionMethod::new("meeting")
                    } else {
                        InspectionMethod::new("site_visit")
                    },
                    held_on: day,
                    participants: "社区书记、联络员".to_owned(),
                    notes: "听取汇报，实地查看新时代文明实践站和宣传栏。".to_owned(),
                }),
            );
            plan.push(
                at(day, 20),
                &inspector,
                ins(InspectionCommand::RecordFieldwork {
                    community_id: id(c),
                    method: InspectionMethod::new("document_review"),
                    held_on: day,
                    participants: "督查组".to_owned(),
                    notes: "查阅学习记录和意识形态工作台账。".to_owned(),
                }),
            );
            let (item, _, max) = CHECKLIST[(k + spec.seed as usize + year as usize) % CHECKLIST.len()];
            let tenths = (10 + 7 * (k as u32 + spec.seed + year as u32)) % (max * 5) + 5;
            plan.push(
                at(day, 30),
                &inspector,
                ins(InspectionCommand::RecordDeduction {
                    community_id: id(c),
                    item_code: item.to_owned(),
                    points: Points::from_hundredths(tenths * 10),
                    reason: "对照考核细则，相关工作记录不完整。".to_owned(),
                }),
            );
        }
        let late = start + chrono::Days::new(spec.communities.len() as u64 + 1);
        plan.push(
            at(late, 0),
            &inspector,
            ins(InspectionCommand::RecordAchievement {
                achievement_id: id("a1"),
                category: "加强理论武装，坚定理想信念".to_owned(),
                text: format!(
                    "{year}年以来，各社区依托新时代文明实践站开展理论宣讲{}场，组织党员集中学习{}次。",
                    6 + spec.seed + (year as u32 % 5),
                    12 + spec.seed
                ),
                figures: vec![
                    Figure {
                        label: "理论宣讲".to_owned(),
                        value: i64::from(6 + spec.seed + (year as u32 % 5)),
                        unit: "场".to_owned(),
                    },
                    Figure {
                        label: "集中学习".to_owned(), value: i64::from(12 + spec.seed), unit: "次".to_owned()
                    },
                ],
                community_id: None,
            }),
        );
        plan.push(
            at(late, 1),
            &inspector,
            ins(InspectionCommand::RecordAchievement {
                achievement_id: id("a2"),
                category: "加强意识形态阵地建设".to_owned(),
                text: "各社区宣传栏、电子屏内容实行专人审核，政务新媒体发布严格执行“三审三校”。".to_owned(),
                figures: vec![],
                community_id: None,
            }),
        );
        // Findings: one per community, rotating categories.
        let findings: Vec<(FindingId, &str)> = spec
            .communities
            .iter()
            .enumerate()
            .map(|(k, (c, _))| (id(&format!("{p}-{year}-f{}", k + 1)), *c))
            .collect();
        for (k, (f, c)) in findings.iter().enumerate() {
            let (cat, name) = CATEGORIES[(k + spec.seed as usize + year as usize) % 5];
            plan.push(
                at(late, 10 + k as u32),
                &inspector,
                ins(InspectionCommand::RecordFinding {
                    finding_id: f.clone(),
                    community_id: Some(id(c)),
                    category: cat.to_owned(),
                    title: format!("{name}方面存在薄弱环节"),
                    description: format!("督查发现，该社区{name}工作记录不完整，落实不够到位，需进一步加强。"),
                    severity: if k == 0 { Severity::Major } else { Severity::General },
                }),
            );
        }
        if year == 2026 {
            // The current year's inspection is still under way: no conclusion, no rectification yet.
            continue;
        }
        let concluded = late + chrono::Days::new(5);
        plan.push(
            at(concluded, 0),
            &admin,
            ins(InspectionCommand::Conclude {
                assessment: if spec.seed == 3 { "总体良好" } else { "良好" }.to_owned(),
                summary: "各社区意识形态工作责任制落实情况总体较好，部分环节仍需加强。".to_owned(),
            }),
        );
        let assigned = concluded + chrono::Days::new(3);
        for (k, (f, c)) in findings.iter().enumerate() {
            let fs = |cmd| Step::Finding(t.clone(), i.clone(), f.clone(), cmd);
            // 2023: all assigned with 2024 deadlines; 2024: deadlines into 2025 and 2027.
            let deadline = match (year, k % 4) {
                (2023, _) => date(2024, 3 + k as u32, 30),
                (_, 0) => date(2025, 3, 31),
                (_, 1) => date(2027, 6, 30),
                (_, 2) => date(2025, 6, 30),
                _ => date(2027, 3, 31),
            };
            plan.push(
                at(assigned, k as u32),
                &admin,
                fs(FindingCommand::Assign {
                    title: "对照问题逐项整改".to_owned(),
                    measure: "制定整改方案，明确责任人和时限，完善相关制度和台账，按期报送整改进展。".to_owned(),
                    responsible_unit: format!("{}党委", spec.communities[k].1),
                    leader: "社区书记".to_owned(),
                    person: "意识形态联络员".to_owned(),
                    deadline,
                }),
            );
            let reporter = if *c == first_c { &officer } else { &admin };
            let p1 = assigned + chrono::Days::new(30 + k as u64);
            let shape = (k + year as usize + spec.seed as usize) % 5;
            if shape == 4 && year == 2024 {
                plan.push(
                    at(p1, 0),
                    &admin,
                    fs(FindingCommand::Dismiss {
                        reason: "经复核，该问题已在区级专项检查中整改，不再重复整改。".to_owned(),
                    }),
                );
                continue;
            }
            plan.push(
                at(p1, 0),
                reporter,
                fs(FindingCommand::ReportProgress {
                    text: "已制定整改方案并召开专题会议部署。".to_owned(),
                    evidence: vec![evidence(&format!("{p}-{year}-{c}-整改方案.pdf"))],
                }),
            );
            let closes = year == 2023 || shape <= 1;
            if !closes {
                continue;
            }
            let p2 = p1 + chrono::Days::new(20);
            plan.push(
                at(p2, 0),
                reporter,
                fs(FindingCommand::Submit { summary: "整改措施已全部落实，台账已补齐。".to_owned() }),
            );
            if shape == 1 && year == 2024 {
                // Submitted and awaiting verification.
                continue;
            }
            plan.push(
                at(p2 + chrono::Days::new(5), 0),
                &admin,
                fs(FindingCommand::Verify { comment: "整改到位，同意销号。".to_owned() }),
            );
        }
    }
}

/// Loads the demo unless it is already there. Every command is idempotent by key as well, so an
/// interrupted load can be run again.
pub async fn load<S: EventStore + ?Sized>(store: &S) -> Result<DemoReport, CommandError> {
    let password_hash = crate::password::hash(DEMO_PASSWORD)
        .map_err(|e| CommandError::Store(crate::store::StoreError::Io(e.to_string())))?;
    let plan = build(&password_hash);
    let mut report = DemoReport { accounts: plan.accounts.clone(), ..DemoReport::default() };
    let district: DistrictId = id(DISTRICT);
    if store.stream_version(&stream::district(&district)).await? > 0 {
        report.already_loaded = true;
        return Ok(report);
    }
    for (n, (when, actor, step)) in plan.steps.into_iter().enumerate() {
        let meta = Meta::new(actor, when).idempotency_key(format!("demo-{n}"));
        let done = match step {
            Step::Platform(cmd) => commands::platform(store, &meta, cmd).await,
            Step::District(d, cmd) => commands::district(store, &meta, &d, cmd).await,
            Step::Tenant(t, cmd) => commands::tenant(store, &meta, &district, &t, cmd).await,
            Step::Inspection(t, i, cmd) => commands::inspection(store, &meta, &t, &i, cmd).await,
            Step::Finding(t, i, f, cmd) => commands::finding(store, &meta, &t, &i, &f, cmd).await,
            Step::SelfInspection(t, s, cmd) => commands::self_inspection(store, &meta, &t, &s, cmd).await,
            Step::SecurityPolicy(cmd) => commands::security_policy(store, &meta, cmd).await,
        }?;
        report.commands += 1;
        report.events += done.events;
    }
    Ok(report)
}
