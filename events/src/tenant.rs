//! The tenant aggregate (a 街道): communities, finding categories, checklists and its users.
//! Stream: `{tenant}/tenant`.
//!
//! A tenant is created by a platform admin inside an existing district (the district's state comes
//! in as read-only context); everything after that is the sub-district's own administration.

use crate::DomainError;
use crate::aggregate::{Command, require_text};
use crate::authz::{self, Action, Scope, Target};
use crate::district::DistrictState;
use crate::event::{
    ChecklistDefined, ChecklistItem, CommunityAdded, CommunityRenamed, Event, FindingCategoryAdded,
    FindingCategoryRenamed, FindingCategoryRetired, MethodAdded, MethodRenamed, MethodRetired, Points, TenantCreated,
    Term,
};
use crate::ids::{ChecklistId, CommunityId, DistrictId, TenantId};
use crate::users::{self, UserCommand, Users};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub const NAME_MAX: usize = 100;
pub const CATEGORY_CODE_MAX: usize = 32;
pub const CHECKLIST_TITLE_MAX: usize = 200;
pub const CHECKLIST_ITEMS_MAX: usize = 200;
pub const ITEM_CODE_MAX: usize = 32;
pub const ITEM_TITLE_MAX: usize = 200;

/// The inspection methods a new tenant starts with (its admin can add, rename and retire them).
pub const DEFAULT_METHODS: [(&str, &str); 8] = [
    ("listen_report", "听取汇报"),
    ("meeting", "座谈交流"),
    ("document_review", "查阅资料"),
    ("site_visit", "实地查看"),
    ("interview", "个别访谈"),
    ("questionnaire", "问卷调查"),
    ("letters_visits", "受理来信来访"),
    ("forum", "专题座谈会"),
];

/// The finding categories a new tenant starts with: the five of the sample 督查报告's 存在主要问题.
pub const DEFAULT_CATEGORIES: [(&str, &str); 5] = [
    ("theory", "理论学习"),
    ("self-check", "督查自查"),
    ("responsibility", "主体责任"),
    ("opinion", "舆情研判"),
    ("staffing", "队伍建设"),
];

/// One entry of a tenant's vocabulary as the aggregate knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermState {
    pub name: String,
    pub retired: bool,
}

impl TermState {
    fn active(name: &str) -> Self {
        TermState { name: name.to_owned(), retired: false }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checklist {
    pub title: String,
    pub items: Vec<ChecklistItem>,
}

/// State of `{tenant}/tenant`. `created` is false until `TenantCreated`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TenantState {
    pub created: bool,
    pub tenant_id: Option<TenantId>,
    pub district_id: Option<DistrictId>,
    pub name: String,
    /// community id → name
    pub communities: BTreeMap<CommunityId, String>,
    /// category code → name (and whether it is retired)
    pub categories: BTreeMap<String, TermState>,
    /// inspection method code → name (and whether it is retired)
    pub methods: BTreeMap<String, TermState>,
    pub checklists: BTreeMap<ChecklistId, Checklist>,
    pub users: Users,
}

impl TenantState {
    /// Whether a finding may be filed under `code` now (it exists and is not retired).
    pub fn category_usable(&self, code: &str) -> bool {
        self.categories.get(code).is_some_and(|c| !c.retired)
    }

    /// Whether a new plan may choose the method `code` (it exists and is not retired).
    pub fn method_usable(&self, code: &str) -> bool {
        self.methods.get(code).is_some_and(|m| !m.retired)
    }

    /// The authz target of the whole tenant; `None` before the tenant is created.
    pub fn target(&self) -> Option<Target> {
        Some(Target::tenant(self.district_id.as_ref()?, self.tenant_id.as_ref()?))
    }

    /// The authz target of one community of the tenant (`None`: the tenant itself, e.g. a
    /// cross-cutting finding). It does not check that the community exists.
    pub fn community_target(&self, c: Option<&CommunityId>) -> Option<Target> {
        Some(Target::community(self.district_id.as_ref()?, self.tenant_id.as_ref()?, c))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantCommand {
    /// Platform admins register a sub-district in the district given as context.
    Create {
        tenant_id: TenantId,
        name: String,
    },
    AddCommunity {
        community_id: CommunityId,
        name: String,
    },
    RenameCommunity {
        community_id: CommunityId,
        name: String,
    },
    /// A finding category (理论学习, 舆情研判, …); `code` is `[a-z0-9_-]{1,32}`. Adding a retired
    /// code brings it back under the given name.
    AddFindingCategory {
        code: String,
        name: String,
    },
    RenameFindingCategory {
        code: String,
        name: String,
    },
    RetireFindingCategory {
        code: String,
    },
    /// An inspection method (听取汇报, 个别访谈, …); codes as categories'.
    AddMethod {
        code: String,
        name: String,
    },
    RenameMethod {
        code: String,
        name: String,
    },
    RetireMethod {
        code: String,
    },
    /// A 检查考核细则. Checklists are immutable: a new version gets a new id.
    DefineChecklist {
        checklist_id: ChecklistId,
        title: String,
        items: Vec<ChecklistItem>,
    },
    Users(UserCommand),
}

/// `district` is the district the caller addressed: `Create` registers the tenant in it, and every
/// other command is refused (not found) unless the tenant belongs to it.
pub fn decide(
    district: &DistrictState,
    state: &TenantState,
    cmd: &Command<TenantCommand>,
) -> Result<Vec<Event>, DomainError> {
    let actor = &cmd.actor;
    // Every command but `Create` needs the tenant to exist in the addressed district.
    let existing = || match state.target() {
        Some(t) if state.created && district.district_id == state.district_id => Ok(t),
        _ => Err(DomainError::NotFound { what: "街道".to_owned() }),
    };
    let manage_tenant = || {
        let target = existing()?;
        authz::authorize(actor, Action::ManageTenant, &target)
    };
    match &cmd.body {
        TenantCommand::Create { tenant_id, name } => {
            authz::authorize(actor, Action::ManagePlatform, &Target::platform())?;
            let (Some(district_id), true) = (&district.district_id, district.created) else {
                return Err(DomainError::NotFound { what: "区".to_owned() });
            };
            if state.created {
                return Err(DomainError::AlreadyExists { what: format!("街道“{}”", state.name) });
            }
            if !tenant_id.is_user_choosable() {
                return Err(DomainError::invalid("tenant_id", "以“_”开头的标识为系统保留"));
            }
            require_text("name", name, NAME_MAX)?;
            let name = name.trim().to_owned();
            let terms = |list: &[(&str, &str)]| list.iter().map(|(c, n)| Term::new(c, n)).collect();
            Ok(vec![
                TenantCreated {
                    tenant_id: tenant_id.clone(),
                    district_id: district_id.clone(),
                    name,
                    methods: terms(&DEFAULT_METHODS),
                    categories: terms(&DEFAULT_CATEGORIES),
                }
                .into(),
            ])
        }
        TenantCommand::Users(c) => {
            let target = existing()?;
            users::decide(&state.users, &target, |s| grantable(state, s), actor, c)
        }
        TenantCommand::AddCommunity { community_id, name } => {
            manage_tenant()?;
            if state.communities.contains_key(community_id) {
                return Err(DomainError::AlreadyExists { what: format!("社区“{community_id}”") });
            }
            require_text("name", name, NAME_MAX)?;
            Ok(vec![CommunityAdded { community_id: community_id.clone(), name: name.trim().to_owned() }.into()])
        }
        TenantCommand::RenameCommunity { community_id, name } => {
            manage_tenant()?;
            let Some(current) = state.communities.get(community_id) else {
                return Err(DomainError::NotFound { what: format!("社区“{community_id}”") });
            };
            require_text("name", name, NAME_MAX)?;
            if current == name.trim() {
                return Ok(vec![]);
            }
            Ok(vec![CommunityRenamed { community_id: community_id.clone(), name: name.trim().to_owned() }.into()])
        }
        TenantCommand::AddFindingCategory { code, name } => {
            manage_tenant()?;
            let name = add_term(&state.categories, "问题类别", code, name)?;
            Ok(vec![FindingCategoryAdded { code: code.clone(), name }.into()])
        }
        TenantCommand::RenameFindingCategory { code, name } => {
            manage_tenant()?;
            Ok(rename_term(&state.categories, "问题类别", code, name)?
                .map(|name| FindingCategoryRenamed { code: code.clone(), name }.into())
                .into_iter()
                .collect())
        }
        TenantCommand::RetireFindingCategory { code } => {
            manage_tenant()?;
            Ok(retire_term(&state.categories, "问题类别", code)?
                .then(|| FindingCategoryRetired { code: code.clone() }.into())
                .into_iter()
                .collect())
        }
        TenantCommand::AddMethod { code, name } => {
            manage_tenant()?;
            let name = add_term(&state.methods, "督查方式", code, name)?;
            Ok(vec![MethodAdded { code: code.clone(), name }.into()])
        }
        TenantCommand::RenameMethod { code, name } => {
            manage_tenant()?;
            Ok(rename_term(&state.methods, "督查方式", code, name)?
                .map(|name| MethodRenamed { code: code.clone(), name }.into())
                .into_iter()
                .collect())
        }
        TenantCommand::RetireMethod { code } => {
            manage_tenant()?;
            let active = state.methods.values().filter(|m| !m.retired).count();
            if state.methods.get(code).is_some_and(|m| !m.retired) && active == 1 {
                return Err(DomainError::invalid("code", "至少保留一种可用的督查方式"));
            }
            Ok(retire_term(&state.methods, "督查方式", code)?
                .then(|| MethodRetired { code: code.clone() }.into())
                .into_iter()
                .collect())
        }
        TenantCommand::DefineChecklist { checklist_id, title, items } => {
            manage_tenant()?;
            if state.checklists.contains_key(checklist_id) {
                return Err(DomainError::AlreadyExists { what: format!("评分表“{checklist_id}”") });
            }
            require_text("title", title, CHECKLIST_TITLE_MAX)?;
            let items = check_items(items)?;
            Ok(vec![
                ChecklistDefined { checklist_id: checklist_id.clone(), title: title.trim().to_owned(), items }.into(),
            ])
        }
    }
}

pub fn evolve(mut state: TenantState, e: &Event) -> TenantState {
    match e {
        Event::TenantCreated(e) => {
            state.created = true;
            state.tenant_id = Some(e.tenant_id.clone());
            state.district_id = Some(e.district_id.clone());
            state.name = e.name.clone();
            for t in &e.methods {
                state.methods.insert(t.code.clone(), TermState::active(&t.name));
            }
            for t in &e.categories {
                state.categories.insert(t.code.clone(), TermState::active(&t.name));
            }
        }
        Event::CommunityAdded(e) => {
            state.communities.insert(e.community_id.clone(), e.name.clone());
        }
        Event::CommunityRenamed(e) => {
            if let Some(name) = state.communities.get_mut(&e.community_id) {
                name.clone_from(&e.name);
            }
        }
        Event::FindingCategoryAdded(e) => {
            state.categories.insert(e.code.clone(), TermState::active(&e.name));
        }
        Event::FindingCategoryRenamed(e) => {
            if let Some(t) = state.categories.get_mut(&e.code) {
                t.name.clone_from(&e.name);
            }
        }
        Event::FindingCategoryRetired(e) => {
            if let Some(t) = state.categories.get_mut(&e.code) {
                t.retired = true;
            }
        }
        Event::MethodAdded(e) => {
            state.methods.insert(e.code.clone(), TermState::active(&e.name));
        }
        Event::MethodRenamed(e) => {
            if let Some(t) = state.methods.get_mut(&e.code) {
                t.name.clone_from(&e.name);
            }
        }
        Event::MethodRetired(e) => {
            if let Some(t) = state.methods.get_mut(&e.code) {
                t.retired = true;
            }
        }
        Event::ChecklistDefined(e) => {
            state
                .checklists
                .insert(e.checklist_id.clone(), Checklist { title: e.title.clone(), items: e.items.clone() });
        }
        other => users::evolve(&mut state.users, other),
    }
    state
}

/// Which grants a tenant may hand out: sub-district admin, inspector and auditor of this tenant;
/// community officer of one of its existing communities.
fn grantable(state: &TenantState, scope: &Scope) -> Result<(), DomainError> {
    let own_tenant =
        |d: &DistrictId, t: &TenantId| state.district_id.as_ref() == Some(d) && state.tenant_id.as_ref() == Some(t);
    match scope {
        Scope::Tenant { district_id, tenant_id } if own_tenant(district_id, tenant_id) => Ok(()),
        Scope::Community { district_id, tenant_id, community_id } if own_tenant(district_id, tenant_id) => {
            if state.communities.contains_key(community_id) {
                Ok(())
            } else {
                Err(DomainError::NotFound { what: format!("社区“{community_id}”") })
            }
        }
        _ => Err(DomainError::invalid("scope", "街道账号只能授予本街道或本街道社区范围的角色")),
    }
}

/// Adding a code: new, or retired (then it comes back). Returns the trimmed name.
fn add_term(terms: &BTreeMap<String, TermState>, what: &str, code: &str, name: &str) -> Result<String, DomainError> {
    check_category_code(code)?;
    if terms.get(code).is_some_and(|t| !t.retired) {
        return Err(DomainError::AlreadyExists { what: format!("{what}“{code}”") });
    }
    require_text("name", name, NAME_MAX)?;
    let name = name.trim();
    if let Some((other, _)) = terms.iter().find(|(c, t)| !t.retired && c.as_str() != code && t.name == name) {
        return Err(DomainError::invalid("name", format!("名称“{name}”已被{what}“{other}”使用")));
    }
    Ok(name.to_owned())
}

/// Renaming: `None` when the name is unchanged (nothing to record).
fn rename_term(
    terms: &BTreeMap<String, TermState>,
    what: &str,
    code: &str,
    name: &str,
) -> Result<Option<String>, DomainError> {
    let Some(current) = terms.get(code) else {
        return Err(DomainError::NotFound { what: format!("{what}“{code}”") });
    };
    require_text("name", name, NAME_MAX)?;
    let name = name.trim();
    if current.name == name {
        return Ok(None);
    }
    if let Some((other, _)) = terms.iter().find(|(c, t)| !t.retired && c.as_str() != code && t.name == name) {
        return Err(DomainError::invalid("name", format!("名称“{name}”已被{what}“{other}”使用")));
    }
    Ok(Some(name.to_owned()))
}

/// Retiring: `false` when it already is (nothing to record).
fn retire_term(terms: &BTreeMap<String, TermState>, what: &str, code: &str) -> Result<bool, DomainError> {
    match terms.get(code) {
        None => Err(DomainError::NotFound { what: format!("{what}“{code}”") }),
        Some(t) => Ok(!t.retired),
    }
}

fn check_category_code(code: &str) -> Result<(), DomainError> {
    let ok = !code.is_empty()
        && code.len() <= CATEGORY_CODE_MAX
        && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid("code", "请使用1至32个小写字母、数字、“-”或“_”"))
    }
}

/// Checks a checklist's items and returns them with titles and codes trimmed.
fn check_items(items: &[ChecklistItem]) -> Result<Vec<ChecklistItem>, DomainError> {
    if items.is_empty() || items.len() > CHECKLIST_ITEMS_MAX {
        return Err(DomainError::invalid("items", format!("评分项应为1至{CHECKLIST_ITEMS_MAX}项")));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let code = item.code.trim();
        require_text(&format!("items[{i}].code"), code, ITEM_CODE_MAX)?;
        if !seen.insert(code) {
            return Err(DomainError::invalid(&format!("items[{i}].code"), format!("评分项编号“{code}”重复")));
        }
        require_text(&format!("items[{i}].title"), &item.title, ITEM_TITLE_MAX)?;
        if item.max_points <= Points(0) {
            return Err(DomainError::invalid(&format!("items[{i}].max_points"), "分值必须大于0"));
        }
        out.push(ChecklistItem {
            code: code.to_owned(),
            title: item.title.trim().to_owned(),
            max_points: item.max_points,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::{Actor, Role};
    use crate::district::{self, DistrictCommand};
    use crate::users::fixtures::*;

    fn d(s: &str) -> DistrictId {
        DistrictId::parse(s).unwrap()
    }
    fn t(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }
    fn c(s: &str) -> CommunityId {
        CommunityId::parse(s).unwrap()
    }
    fn tenant_scope() -> Scope {
        Scope::Tenant { district_id: d("d1"), tenant_id: t("t1") }
    }
    fn admin() -> Actor {
        actor("admin", &[(Role::SubdistrictAdmin, tenant_scope())])
    }
    fn district_d1() -> DistrictState {
        let body = DistrictCommand::Create { district_id: d("d1"), name: "XX区".into() };
        let events = district::decide(&DistrictState::default(), &cmd(&platform_admin(), body)).unwrap();
        events.iter().fold(DistrictState::default(), district::evolve)
    }
    fn run(state: &TenantState, a: &Actor, body: TenantCommand) -> Result<Vec<Event>, DomainError> {
        decide(&district_d1(), state, &cmd(a, body))
    }
    fn code(r: Result<Vec<Event>, DomainError>) -> (&'static str, Option<String>) {
        let e = r.unwrap_err();
        (e.code(), e.field().map(str::to_owned))
    }
    fn step(state: TenantState, a: &Actor, body: TenantCommand) -> TenantState {
        let events = run(&state, a, body).unwrap();
        events.iter().fold(state, evolve)
    }
    /// XX街道 with one community (东风社区), the default vocabulary and one checklist.
    fn tenant() -> TenantState {
        let s = step(
            TenantState::default(),
            &platform_admin(),
            TenantCommand::Create { tenant_id: t("t1"), name: "XX街道".into() },
        );
        let s = step(s, &admin(), TenantCommand::AddCommunity { community_id: c("c1"), name: "东风社区".into() });
        step(s, &admin(), define("k1", items(&[("1", 10)])))
    }
    fn items(spec: &[(&str, u32)]) -> Vec<ChecklistItem> {
        spec.iter()
            .map(|(code, p)| ChecklistItem {
                code: (*code).into(),
                title: "落实“第一议题制度”".into(),
                max_points: Points::whole(*p),
            })
            .collect()
    }
    fn define(id: &str, items: Vec<ChecklistItem>) -> TenantCommand {
        TenantCommand::DefineChecklist {
            checklist_id: ChecklistId::parse(id).unwrap(),
            title: "2023年度意识形态工作责任制检查考核细则".into(),
            items,
        }
    }

    // ------------------------------------------------------------ creation

    #[test]
    fn platform_admin_creates_a_tenant_in_an_existing_district_once() {
        let s = tenant();
        assert!(s.created);
        assert_eq!(
            (s.tenant_id.clone(), s.district_id.clone(), s.name.as_str()),
            (Some(t("t1")), Some(d("d1")), "XX街道")
        );
        let again = TenantCommand::Create { tenant_id: t("t1"), name: "XX街道".into() };
        assert_eq!(code(run(&s, &platform_admin(), again)).0, "already_exists");
    }

    #[test]
    fn creating_a_tenant_needs_manage_platform() {
        let body = TenantCommand::Create { tenant_id: t("t1"), name: "XX街道".into() };
        assert_eq!(code(run(&TenantState::default(), &admin(), body.clone())).0, "forbidden");
        let officer = actor("liu", &[(Role::DistrictOfficer, Scope::District { district_id: d("d1") })]);
        assert_eq!(code(run(&TenantState::default(), &officer, body)).0, "forbidden");
    }

    #[test]
    fn creating_a_tenant_needs_the_district() {
        let body = TenantCommand::Create { tenant_id: t("t1"), name: "XX街道".into() };
        let r = decide(&DistrictState::default(), &TenantState::default(), &cmd(&platform_admin(), body));
        assert_eq!(code(r).0, "not_found");
    }

    #[test]
    fn tenant_id_must_be_user_choosable_and_name_required() {
        let reserved = TenantCommand::Create { tenant_id: TenantId::platform(), name: "平台".into() };
        assert_eq!(
            code(run(&TenantState::default(), &platform_admin(), reserved)),
            ("invalid", Some("tenant_id".into()))
        );
        for bad in ["", " ", &"街".repeat(101)] {
            let body = TenantCommand::Create { tenant_id: t("t1"), name: bad.into() };
            assert_eq!(code(run(&TenantState::default(), &platform_admin(), body)), ("invalid", Some("name".into())));
        }
    }

    // ------------------------------------------------------------ after creation

    #[test]
    fn other_commands_need_the_tenant_in_the_addressed_district() {
        let add = TenantCommand::AddCommunity { community_id: c("c2"), name: "西山社区".into() };
        assert_eq!(code(run(&TenantState::default(), &platform_admin(), add.clone())).0, "not_found");
        let users = TenantCommand::Users(UserCommand::CreateUser {
            user_id: uid("wang"),
            username: "wangfang".into(),
            display_name: "王芳".into(),
            password_hash: HASH.into(),
        });
        assert_eq!(code(run(&TenantState::default(), &platform_admin(), users)).0, "not_found");
        // The tenant exists, but in d1, not in the district the caller addressed.
        let body = DistrictCommand::Create { district_id: d("d2"), name: "YY区".into() };
        let d2 = district::decide(&DistrictState::default(), &cmd(&platform_admin(), body)).unwrap();
        let d2 = d2.iter().fold(DistrictState::default(), district::evolve);
        assert_eq!(code(decide(&d2, &tenant(), &cmd(&platform_admin(), add.clone()))).0, "not_found");
        assert!(run(&tenant(), &platform_admin(), add).is_ok());
    }

    #[test]
    fn tenant_administration_needs_manage_tenant_on_this_tenant() {
        let inspector = actor("zhang", &[(Role::Inspector, tenant_scope())]);
        let other =
            actor("admin2", &[(Role::SubdistrictAdmin, Scope::Tenant { district_id: d("d1"), tenant_id: t("t2") })]);
        let officer = actor("liu", &[(Role::DistrictOfficer, Scope::District { district_id: d("d1") })]);
        let bodies = [
            TenantCommand::AddCommunity { community_id: c("c2"), name: "西山社区".into() },
            TenantCommand::RenameCommunity { community_id: c("c1"), name: "东风新村社区".into() },
            TenantCommand::AddFindingCategory { code: "culture".into(), name: "文化阵地".into() },
            TenantCommand::RenameFindingCategory { code: "theory".into(), name: "理论武装".into() },
            TenantCommand::RetireFindingCategory { code: "theory".into() },
            TenantCommand::AddMethod { code: "hearing".into(), name: "听证会".into() },
            TenantCommand::RenameMethod { code: "meeting".into(), name: "座谈会".into() },
            TenantCommand::RetireMethod { code: "meeting".into() },
            define("k2", items(&[("1", 5)])),
        ];
        for body in bodies {
            for a in [&inspector, &other, &officer] {
                assert_eq!(code(run(&tenant(), a, body.clone())).0, "forbidden", "{a:?} {body:?}");
            }
            assert_eq!(run(&tenant(), &admin(), body.clone()).map(|e| e.len()), Ok(1), "{body:?}");
            assert!(run(&tenant(), &platform_admin(), body).is_ok());
        }
    }

    #[test]
    fn communities_are_unique_and_named() {
        let s = tenant();
        assert_eq!(s.communities[&c("c1")], "东风社区");
        let dup = TenantCommand::AddCommunity { community_id: c("c1"), name: "另一个社区".into() };
        let e = run(&s, &admin(), dup).unwrap_err();
        assert_eq!((e.code(), e.message_zh().as_str()), ("already_exists", "社区“c1”已存在"));
        for bad in ["", "  ", &"社".repeat(101)] {
            let body = TenantCommand::AddCommunity { community_id: c("c2"), name: bad.into() };
            assert_eq!(code(run(&s, &admin(), body)), ("invalid", Some("name".into())));
        }
        let s = step(s, &admin(), TenantCommand::AddCommunity { community_id: c("c2"), name: " 西山社区 ".into() });
        assert_eq!(s.communities[&c("c2")], "西山社区");
    }

    #[test]
    fn renaming_a_community() {
        let s = tenant();
        let rename = |id: &str, name: &str| TenantCommand::RenameCommunity { community_id: c(id), name: name.into() };
        assert_eq!(code(run(&s, &admin(), rename("c9", "新社区"))).0, "not_found");
        assert_eq!(code(run(&s, &admin(), rename("c1", ""))), ("invalid", Some("name".into())));
        assert_eq!(run(&s, &admin(), rename("c1", "东风社区")), Ok(vec![]), "unchanged name is a no-op");
        let s = step(s, &admin(), rename("c1", "东风新村社区"));
        assert_eq!(s.communities[&c("c1")], "东风新村社区");
    }

    #[test]
    fn finding_categories_have_unique_slug_codes() {
        let s = tenant();
        assert_eq!(s.categories["theory"].name, "理论学习");
        let add = |code: &str, name: &str| TenantCommand::AddFindingCategory { code: code.into(), name: name.into() };
        assert_eq!(code(run(&s, &admin(), add("theory", "理论学习"))).0, "already_exists");
        for bad in ["", "Theory", "舆情", "public opinion", "a/b", &"x".repeat(33)] {
            assert_eq!(code(run(&s, &admin(), add(bad, "舆情研判"))), ("invalid", Some("code".into())), "{bad:?}");
        }
        assert_eq!(code(run(&s, &admin(), add("culture", ""))), ("invalid", Some("name".into())));
        for good in ["culture", "staff_2", "self-check-2", &"x".repeat(32)] {
            assert!(run(&s, &admin(), add(good, "文化阵地")).is_ok(), "{good:?}");
        }
        // A name already used by another active category would make two rows of the report alike.
        assert_eq!(code(run(&s, &admin(), add("culture", "舆情研判"))), ("invalid", Some("name".into())));
    }

    #[test]
    fn a_new_tenant_starts_with_the_default_methods_and_categories() {
        let s = tenant();
        let methods: Vec<(&str, &str)> = DEFAULT_METHODS.to_vec();
        for (code, name) in methods {
            assert_eq!(s.methods[code], TermState::active(name), "{code}");
        }
        assert_eq!(s.methods.len(), DEFAULT_METHODS.len());
        let cats: Vec<&str> = s.categories.values().map(|t| t.name.as_str()).collect();
        for (_, name) in DEFAULT_CATEGORIES {
            assert!(cats.contains(&name), "{name}");
        }
        assert_eq!(s.categories.len(), 5);
    }

    #[test]
    fn methods_are_added_renamed_and_retired_by_the_tenant_admin() {
        let s = tenant();
        let add = |code: &str, name: &str| TenantCommand::AddMethod { code: code.into(), name: name.into() };
        let s = step(s, &admin(), add("hearing", "听证会"));
        assert!(s.method_usable("hearing"));
        assert_eq!(code(run(&s, &admin(), add("hearing", "听证"))).0, "already_exists");
        assert_eq!(code(run(&s, &admin(), add("Bad Code", "听证"))), ("invalid", Some("code".into())));
        assert_eq!(code(run(&s, &admin(), add("x2", "听证会"))), ("invalid", Some("name".into())));
        // Only the tenant's administrators manage its vocabulary.
        let officer = actor(
            "zhao",
            &[(
                Role::CommunityOfficer,
                Scope::Community { district_id: d("d1"), tenant_id: t("t1"), community_id: c("c1") },
            )],
        );
        assert_eq!(code(run(&s, &officer, add("x3", "其他"))).0, "forbidden");

        let rename = |code: &str, name: &str| TenantCommand::RenameMethod { code: code.into(), name: name.into() };
        let s = step(s, &admin(), rename("hearing", "专题听证会"));
        assert_eq!(s.methods["hearing"].name, "专题听证会");
        assert!(run(&s, &admin(), rename("hearing", "专题听证会")).unwrap().is_empty(), "unchanged name: no event");
        assert_eq!(code(run(&s, &admin(), rename("nope", "无"))).0, "not_found");

        let retire = |code: &str| TenantCommand::RetireMethod { code: code.into() };
        let s = step(s, &admin(), retire("hearing"));
        assert!(!s.method_usable("hearing"));
        assert_eq!(s.methods["hearing"].name, "专题听证会", "a retired method keeps its name");
        assert!(run(&s, &admin(), retire("hearing")).unwrap().is_empty(), "retired twice: no event");
        // Adding it again brings it back.
        let s = step(s, &admin(), add("hearing", "听证会"));
        assert!(s.method_usable("hearing"));
        // The last usable method cannot be retired.
        let mut s = s;
        let codes: Vec<String> = s.methods.keys().cloned().collect();
        for code in &codes[1..] {
            s = step(s, &admin(), retire(code));
        }
        assert_eq!(code(run(&s, &admin(), retire(&codes[0]))), ("invalid", Some("code".into())));
    }

    #[test]
    fn categories_are_renamed_and_retired() {
        let s = tenant();
        let s =
            step(s, &admin(), TenantCommand::RenameFindingCategory { code: "theory".into(), name: "理论武装".into() });
        assert_eq!(s.categories["theory"].name, "理论武装");
        let s = step(s, &admin(), TenantCommand::RetireFindingCategory { code: "theory".into() });
        assert!(!s.category_usable("theory"));
        let r = run(&s, &admin(), TenantCommand::RetireFindingCategory { code: "nope".into() });
        assert_eq!(code(r).0, "not_found");
    }

    #[test]
    fn checklists_are_defined_once_and_immutable() {
        let s = tenant();
        let k1 = &s.checklists[&ChecklistId::parse("k1").unwrap()];
        assert_eq!(k1.items.len(), 1);
        assert_eq!(code(run(&s, &admin(), define("k1", items(&[("1", 5)])))).0, "already_exists");
        assert!(run(&s, &admin(), define("k2", items(&[("1", 5)]))).is_ok());
    }

    #[test]
    fn checklist_title_and_item_count_are_bounded() {
        let s = tenant();
        let mut body = define("k2", items(&[("1", 5)]));
        if let TenantCommand::DefineChecklist { title, .. } = &mut body {
            *title = " ".into();
        }
        assert_eq!(code(run(&s, &admin(), body)), ("invalid", Some("title".into())));
        assert_eq!(code(run(&s, &admin(), define("k2", vec![]))), ("invalid", Some("items".into())));
        let many: Vec<(String, u32)> = (0..201).map(|i| (format!("{i}"), 1)).collect();
        let spec = |n: usize| many[..n].iter().map(|(c, p)| (c.as_str(), *p)).collect::<Vec<_>>();
        assert_eq!(code(run(&s, &admin(), define("k2", items(&spec(201))))), ("invalid", Some("items".into())));
        assert!(run(&s, &admin(), define("k2", items(&spec(200)))).is_ok());
    }

    #[test]
    fn checklist_items_need_unique_codes_titles_and_positive_points() {
        let s = tenant();
        let r = run(&s, &admin(), define("k2", items(&[("1.1", 5), ("1.2", 5), ("1.1", 2)])));
        assert_eq!(code(r), ("invalid", Some("items[2].code".into())));
        let r = run(&s, &admin(), define("k2", items(&[("1.1", 5), (" 1.1 ", 5)])));
        assert_eq!(code(r), ("invalid", Some("items[1].code".into())), "codes compare trimmed");
        let r = run(&s, &admin(), define("k2", items(&[("1", 5), ("  ", 5)])));
        assert_eq!(code(r), ("invalid", Some("items[1].code".into())));
        let r = run(&s, &admin(), define("k2", items(&[("1", 0)])));
        assert_eq!(code(r), ("invalid", Some("items[0].max_points".into())));
        let mut untitled = items(&[("1", 5)]);
        untitled[0].title = String::new();
        assert_eq!(code(run(&s, &admin(), define("k2", untitled))), ("invalid", Some("items[0].title".into())));
        let mut half = items(&[("1", 5)]);
        half[0].max_points = Points::from_hundredths(50);
        assert!(run(&s, &admin(), define("k2", half)).is_ok(), "0.5 points is positive");
    }

    // ------------------------------------------------------------ users and targets

    fn with_user(s: TenantState) -> TenantState {
        let create = UserCommand::CreateUser {
            user_id: uid("wang"),
            username: "wangfang".into(),
            display_name: "王芳".into(),
            password_hash: HASH.into(),
        };
        step(s, &admin(), TenantCommand::Users(create))
    }
    fn grant(role: Role, scope: Scope) -> TenantCommand {
        TenantCommand::Users(UserCommand::GrantRole { user_id: uid("wang"), role, scope })
    }

    #[test]
    fn tenant_users_are_managed_with_manage_users_on_this_tenant() {
        let s = with_user(tenant());
        assert!(s.users.by_id.contains_key(&uid("wang")));
        let inspector = actor("zhang", &[(Role::Inspector, tenant_scope())]);
        assert_eq!(code(run(&s, &inspector, grant(Role::Inspector, tenant_scope()))).0, "forbidden");
        assert_eq!(code(run(&s, &platform_admin(), grant(Role::Inspector, tenant_scope()))).0, "forbidden");
        assert!(run(&s, &security_admin(), grant(Role::Inspector, tenant_scope())).is_ok());
    }

    #[test]
    fn tenant_grants_stay_inside_the_tenant() {
        let s = with_user(tenant());
        assert_eq!(run(&s, &admin(), grant(Role::Inspector, tenant_scope())).unwrap().len(), 1);
        for role in [Role::SubdistrictAdmin, Role::Auditor] {
            assert_eq!(code(run(&s, &admin(), grant(role, tenant_scope()))).0, "role_not_grantable", "{role:?}");
            assert_eq!(run(&s, &security_admin(), grant(role, tenant_scope())).unwrap().len(), 1, "{role:?}");
        }
        let community = |id: &str| Scope::Community { district_id: d("d1"), tenant_id: t("t1"), community_id: c(id) };
        assert_eq!(run(&s, &admin(), grant(Role::CommunityOfficer, community("c1"))).unwrap().len(), 1);
        // An unknown community of this tenant.
        assert_eq!(code(run(&s, &admin(), grant(Role::CommunityOfficer, community("c9")))).0, "not_found");
        let refused = [
            (Role::Inspector, Scope::Tenant { district_id: d("d1"), tenant_id: t("t2") }),
            (Role::Inspector, Scope::Tenant { district_id: d("d2"), tenant_id: t("t1") }),
            (
                Role::CommunityOfficer,
                Scope::Community { district_id: d("d1"), tenant_id: t("t2"), community_id: c("c1") },
            ),
            (Role::DistrictOfficer, Scope::District { district_id: d("d1") }),
            (Role::Auditor, Scope::Platform),
            (Role::PlatformAdmin, Scope::Platform),
            // Fits nowhere: a community officer needs a community scope.
            (Role::CommunityOfficer, tenant_scope()),
        ];
        for (role, scope) in refused {
            let r = run(&s, &security_admin(), grant(role, scope.clone()));
            assert_eq!(code(r), ("invalid", Some("scope".into())), "{role:?} {scope:?}");
        }
    }

    #[test]
    fn targets_come_from_the_tenants_ids() {
        assert_eq!(TenantState::default().target(), None);
        assert_eq!(TenantState::default().community_target(Some(&c("c1"))), None);
        let s = tenant();
        assert_eq!(s.target(), Some(Target::tenant(&d("d1"), &t("t1"))));
        assert_eq!(s.community_target(Some(&c("c1"))), Some(Target::community(&d("d1"), &t("t1"), Some(&c("c1")))));
        assert_eq!(s.community_target(None), Some(Target::community(&d("d1"), &t("t1"), None)));
    }
}
