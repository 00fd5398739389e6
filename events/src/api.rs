//! Request and response bodies of the REST API, shared with the web app. Each request maps onto one
//! domain command; unknown fields are rejected. Ids of new things are optional in requests: the
//! server makes one (a UUID) when the client sends none.

use crate::authz::Role;
use crate::event::{ChecklistItem, EvidenceRef, Figure, InspectionMethod, Points, ReportSection, Severity, TeamMember};
use crate::finding::FindingCommand;
use crate::ids::*;
use crate::inspection::InspectionCommand;
use crate::self_inspection::SelfInspectionCommand;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

macro_rules! request {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(deny_unknown_fields)]
        pub struct $name { $($(#[$fdoc])* pub $field: $ty),* }
    };
}

request!(
    /// 新建区 (platform admin).
    CreateDistrictRequest { district_id: DistrictId, name: String }
);
request!(
    /// 新建街道 (tenant) in a district (platform admin).
    CreateTenantRequest { tenant_id: TenantId, name: String }
);
request!(
    /// 新增社区.
    AddCommunityRequest { community_id: CommunityId, name: String }
);
request!(
    /// 社区更名.
    RenameCommunityRequest { name: String }
);
request!(
    /// 新增问题类别 (e.g. code `theory`, name 理论学习).
    AddFindingCategoryRequest { code: String, name: String }
);
request!(
    /// 新增督查方式 (e.g. code `letters_visits`, name 受理来信来访). Adding a retired code brings it back.
    AddMethodRequest { code: String, name: String }
);
request!(
    /// 督查方式或问题类别更名.
    RenameTermRequest { name: String }
);
request!(
    /// 定义检查考核细则. Checklists are immutable; a new version gets a new id.
    DefineChecklistRequest { checklist_id: ChecklistId, title: String, items: Vec<ChecklistItem> }
);
request!(
    /// 新建用户, with one role. `community_id` is required for `community_officer` and only then.
    CreateUserRequest {
        #[serde(default)]
        user_id: Option<UserId>,
        username: String,
        display_name: String,
        password: String,
        /// The first role (needs the right to grant it); none: an account without a role yet, for
        /// the security administrator to grant one.
        #[serde(default)]
        role: Option<Role>,
        #[serde(default)]
        community_id: Option<CommunityId>,
    }
);
request!(
    /// 授予或撤销角色. `community_id` binds a community officer to a community.
    RoleRequest {
        role: Role,
        #[serde(default)]
        community_id: Option<CommunityId>,
    }
);
request!(
    /// 重置密码.
    ResetPasswordRequest { password: String }
);
request!(
    /// 停用用户.
    DisableUserRequest { reason: String }
);

request!(
    /// 制定督查计划.
    PlanInspectionRequest {
        #[serde(default)]
        inspection_id: Option<InspectionId>,
        year: i32,
        title: String,
        subject: String,
        communities: Vec<CommunityId>,
        team: Vec<TeamMember>,
        methods: Vec<InspectionMethod>,
        #[serde(default)]
        checklist_id: Option<ChecklistId>,
        planned_start: NaiveDate,
        planned_end: NaiveDate,
    }
);
request!(
    /// 调整督查范围.
    ChangeScopeRequest { communities: Vec<CommunityId> }
);
request!(
    /// 调整督查组.
    ChangeTeamRequest { team: Vec<TeamMember> }
);
request!(
    /// 启动督查.
    StartInspectionRequest { started_on: NaiveDate }
);
request!(
    /// 记录座谈交流、查阅资料等.
    RecordFieldworkRequest {
        community_id: CommunityId,
        method: InspectionMethod,
        held_on: NaiveDate,
        #[serde(default)]
        participants: String,
        notes: String,
    }
);
request!(
    /// 记录扣分.
    RecordDeductionRequest { community_id: CommunityId, item_code: String, points: Points, reason: String }
);
request!(
    /// 记录主要工作开展情况.
    RecordAchievementRequest {
        #[serde(default)]
        achievement_id: Option<AchievementId>,
        category: String,
        text: String,
        #[serde(default)]
        figures: Vec<Figure>,
        #[serde(default)]
        community_id: Option<CommunityId>,
    }
);
request!(
    /// 记录存在问题. Without `community_id` the finding is cross-cutting (全街道).
    RecordFindingRequest {
        #[serde(default)]
        finding_id: Option<FindingId>,
        #[serde(default)]
        community_id: Option<CommunityId>,
        category: String,
        title: String,
        description: String,
        #[serde(default)]
        severity: Severity,
    }
);
request!(
    /// 督查结论.
    ConcludeInspectionRequest {
        assessment: String,
        #[serde(default)]
        summary: String,
    }
);

request!(
    /// 交办整改.
    AssignRectificationRequest {
        #[serde(default)]
        title: String,
        measure: String,
        responsible_unit: String,
        leader: String,
        person: String,
        deadline: NaiveDate,
    }
);
request!(
    /// 报送整改进展 (evidence is uploaded separately and referenced by its SHA-256).
    ReportProgressRequest {
        text: String,
        #[serde(default)]
        evidence: Vec<EvidenceRef>,
    }
);
request!(
    /// 提交销号申请.
    SubmitRectificationRequest {
        #[serde(default)]
        summary: String,
    }
);
request!(
    /// 销号.
    VerifyRectificationRequest {
        #[serde(default)]
        comment: String,
    }
);
request!(
    /// 退回.
    ReturnRectificationRequest { reason: String }
);
request!(
    /// 延期.
    ExtendDeadlineRequest { new_deadline: NaiveDate, reason: String }
);
request!(
    /// 催办.
    RemindRequest { message: String }
);
request!(
    /// 撤销问题.
    DismissFindingRequest { reason: String }
);
request!(
    /// 提交自查报告.
    SubmitSelfInspectionRequest {
        #[serde(default)]
        self_inspection_id: Option<SelfInspectionId>,
        community_id: CommunityId,
        year: i32,
        #[serde(default)]
        title: String,
        /// The report as free text; with `sections`, the opening paragraph(s) (may be empty).
        #[serde(default)]
        text: String,
        #[serde(default)]
        inspection_id: Option<InspectionId>,
        /// The report in the official form: its parts in order, each a heading at level 1 (一、),
        /// 2 (（一）) or 3 (1.) and its text. Numbers are given by position; a number typed in front
        /// of a title is dropped.
        #[serde(default)]
        sections: Vec<ReportSection>,
    }
);

/// The answer to every accepted command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommandAccepted {
    /// The id of what the command created or changed.
    pub id: String,
    /// The aggregate's version after the command (also sent as `ETag`).
    pub version: u64,
    /// Global log positions of the appended events (0 when nothing was appended).
    pub first_position: u64,
    pub last_position: u64,
    /// How many events were appended.
    pub events: usize,
    /// True when this was a retry with the same `Idempotency-Key`: nothing new was appended.
    pub deduplicated: bool,
}

impl PlanInspectionRequest {
    pub fn into_command(self, inspection_id: InspectionId) -> InspectionCommand {
        InspectionCommand::Plan {
            inspection_id,
            year: self.year,
            title: self.title,
            subject: self.subject,
            communities: self.communities,
            team: self.team,
            methods: self.methods,
            checklist_id: self.checklist_id,
            planned_start: self.planned_start,
            planned_end: self.planned_end,
        }
    }
}

impl From<ChangeScopeRequest> for InspectionCommand {
    fn from(r: ChangeScopeRequest) -> Self {
        InspectionCommand::ChangeScope { communities: r.communities }
    }
}
impl From<ChangeTeamRequest> for InspectionCommand {
    fn from(r: ChangeTeamRequest) -> Self {
        InspectionCommand::ChangeTeam { team: r.team }
    }
}
impl From<StartInspectionRequest> for InspectionCommand {
    fn from(r: StartInspectionRequest) -> Self {
        InspectionCommand::Start { started_on: r.started_on }
    }
}
impl From<RecordFieldworkRequest> for InspectionCommand {
    fn from(r: RecordFieldworkRequest) -> Self {
        InspectionCommand::RecordFieldwork {
            community_id: r.community_id,
            method: r.method,
            held_on: r.held_on,
            participants: r.participants,
            notes: r.notes,
        }
    }
}
impl From<RecordDeductionRequest> for InspectionCommand {
    fn from(r: RecordDeductionRequest) -> Self {
        InspectionCommand::RecordDeduction {
            community_id: r.community_id,
            item_code: r.item_code,
            points: r.points,
            reason: r.reason,
        }
    }
}
impl RecordAchievementRequest {
    pub fn into_command(self, achievement_id: AchievementId) -> InspectionCommand {
        InspectionCommand::RecordAchievement {
            achievement_id,
            category: self.category,
            text: self.text,
            figures: self.figures,
            community_id: self.community_id,
        }
    }
}
impl RecordFindingRequest {
    pub fn into_command(self, finding_id: FindingId) -> InspectionCommand {
        InspectionCommand::RecordFinding {
            finding_id,
            community_id: self.community_id,
            category: self.category,
            title: self.title,
            description: self.description,
            severity: self.severity,
        }
    }
}
impl From<ConcludeInspectionRequest> for InspectionCommand {
    fn from(r: ConcludeInspectionRequest) -> Self {
        InspectionCommand::Conclude { assessment: r.assessment, summary: r.summary }
    }
}

impl From<AssignRectificationRequest> for FindingCommand {
    fn from(r: AssignRectificationRequest) -> Self {
        FindingCommand::Assign {
            title: r.title,
            measure: r.measure,
            responsible_unit: r.responsible_unit,
            leader: r.leader,
            person: r.person,
            deadline: r.deadline,
        }
    }
}
impl From<ReportProgressRequest> for FindingCommand {
    fn from(r: ReportProgressRequest) -> Self {
        FindingCommand::ReportProgress { text: r.text, evidence: r.evidence }
    }
}
impl From<SubmitRectificationRequest> for FindingCommand {
    fn from(r: SubmitRectificationRequest) -> Self {
        FindingCommand::Submit { summary: r.summary }
    }
}
impl From<VerifyRectificationRequest> for FindingCommand {
    fn from(r: VerifyRectificationRequest) -> Self {
        FindingCommand::Verify { comment: r.comment }
    }
}
impl From<ReturnRectificationRequest> for FindingCommand {
    fn from(r: ReturnRectificationRequest) -> Self {
        FindingCommand::Return { reason: r.reason }
    }
}
impl From<ExtendDeadlineRequest> for FindingCommand {
    fn from(r: ExtendDeadlineRequest) -> Self {
        FindingCommand::ExtendDeadline { new_deadline: r.new_deadline, reason: r.reason }
    }
}
impl From<RemindRequest> for FindingCommand {
    fn from(r: RemindRequest) -> Self {
        FindingCommand::Remind { message: r.message }
    }
}
impl From<DismissFindingRequest> for FindingCommand {
    fn from(r: DismissFindingRequest) -> Self {
        FindingCommand::Dismiss { reason: r.reason }
    }
}

impl SubmitSelfInspectionRequest {
    pub fn into_command(self, self_inspection_id: SelfInspectionId) -> SelfInspectionCommand {
        SelfInspectionCommand::Submit {
            self_inspection_id,
            community_id: self.community_id,
            year: self.year,
            title: self.title,
            text: self.text,
            inspection_id: self.inspection_id,
            sections: self.sections,
        }
    }
}

// ---------------------------------------------------------------- login and the current user

/// `POST /auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[cfg_attr(feature = "openapi", schema(example = "xx-admin", min_length = 1, max_length = 64))]
    pub username: String,
    #[cfg_attr(feature = "openapi", schema(example = "ducha-demo", min_length = 1, max_length = 1024, format = Password))]
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginResponse {
    /// A JWT; send it as `Authorization: Bearer …`.
    pub access_token: String,
    /// Always `Bearer`.
    #[cfg_attr(feature = "openapi", schema(example = "Bearer"))]
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
    /// What the login still needs before the token opens anything: `second_factor` (send a code
    /// to `/auth/login/second-factor`), `password_change` (`/auth/password`) or
    /// `second_factor_enrol` (`/auth/second-factor/enrol`, then `…/confirm`). Absent: logged in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Why, in Chinese, when `next` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_reason: Option<String>,
}

/// `POST /auth/login/second-factor`: a TOTP code (6 digits) or a recovery code (`xxxxx-xxxxx`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SecondFactorCodeRequest {
    #[cfg_attr(feature = "openapi", schema(example = "123456", min_length = 6, max_length = 32))]
    pub code: String,
}

/// `POST /auth/password`: the current password and a new one that meets the security policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[cfg_attr(feature = "openapi", schema(format = Password, max_length = 1024))]
    pub current_password: String,
    #[cfg_attr(feature = "openapi", schema(format = Password, max_length = 1024))]
    pub new_password: String,
}

/// The start of a second-factor enrolment: what an authenticator app needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecondFactorEnrolment {
    /// The secret, base32 (to type in by hand).
    pub secret: String,
    /// `otpauth://totp/…` (what the QR code holds).
    pub otpauth_uri: String,
    /// The QR code, an SVG document.
    pub qr_svg: String,
}

/// The end of an enrolment: the recovery codes (shown once) and, when the enrolment was a login
/// step, the access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecondFactorEnrolled {
    pub recovery_codes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<LoginResponse>,
}

/// The caller's second factor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecondFactorStatus {
    pub enrolled: bool,
    /// The security policy requires one for this account.
    pub required: bool,
    pub recovery_codes_left: u64,
}

/// Where a grant applies, with names for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScopeView {
    /// `platform`, `district`, `tenant` or `community`.
    #[cfg_attr(feature = "openapi", schema(example = "tenant"))]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community_id: Option<String>,
    /// e.g. `XX区 / XX街道 / 东风社区`, or `全平台`.
    #[cfg_attr(feature = "openapi", schema(example = "XX区 / XX街道"))]
    pub name: String,
}

/// One role held in one scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GrantView {
    /// The role code (`platform_admin`, `district_officer`, `subdistrict_admin`, `inspector`,
    /// `community_officer`, `auditor`).
    #[cfg_attr(feature = "openapi", schema(example = "subdistrict_admin"))]
    pub role: String,
    /// The role's Chinese name.
    #[cfg_attr(feature = "openapi", schema(example = "街道管理员"))]
    pub role_name: String,
    pub scope: ScopeView,
}

/// `GET /me`: the account behind the token and the grants it holds now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MeResponse {
    pub user_id: String,
    pub username: String,
    pub display_name: String,
    pub grants: Vec<GrantView>,
}

// ------------------------------------------------------------------ notifications (issue 14)

/// One notification in a person's notification centre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationView {
    pub id: i64,
    pub tenant_id: String,
    /// `due_soon` (临期), `overdue` (逾期), `awaiting_verification` (待销号), `manual` (催办).
    pub kind: String,
    /// The kind in Chinese.
    pub kind_name: String,
    pub text: String,
    pub finding_id: Option<String>,
    pub inspection_id: Option<String>,
    /// The web app's page of the finding (`/tenants/{t}/inspections/{i}/findings/{f}`), when known.
    pub link: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; absent while unread.
    pub read_at: Option<String>,
}

/// A page of a person's notifications, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationList {
    pub items: Vec<NotificationView>,
    /// How many of the person's notifications are unread (all pages).
    pub unread: u64,
    /// Pass as `before` for the next page; absent on the last.
    pub next_before: Option<i64>,
}

/// The unread count (the bell).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnreadCount {
    pub unread: u64,
}

/// A tenant's reminder settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NotificationSettings {
    /// 临期: remind this many days before a deadline (0–60; default 3).
    pub due_soon_days: u32,
    /// 待销号: remind when a submitted rectification has waited this many days (1–60; default 5).
    pub verify_wait_days: u32,
    /// The Shanghai hour (0–23) from which the daily digest goes out (default 8).
    pub digest_hour: u32,
}

/// Adds or changes an outbound channel. The secret is never shown again; on a change, leave it out
/// to keep the stored one (send `""` to remove it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChannelRequest {
    /// `wecom` (企业微信群机器人), `dingtalk` (钉钉自定义机器人) or `webhook`.
    pub kind: String,
    /// A name for people (1–50 characters), e.g. 街道整改工作群.
    pub name: String,
    /// The full endpoint: `https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`,
    /// `https://oapi.dingtalk.com/robot/send?access_token=…` or any `http(s)` URL.
    pub url: String,
    /// 钉钉's 加签 secret (`SEC…`) or the webhook's HMAC key; 企业微信 takes none.
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Send each reminder as it falls due, not only the daily digest.
    #[serde(default = "yes")]
    pub each_reminder: bool,
}

fn yes() -> bool {
    true
}

/// An outbound channel as shown to its tenant's admin: the URL masked, the secret never.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelView {
    pub id: String,
    pub kind: String,
    pub kind_name: String,
    pub name: String,
    /// Scheme, host and path; the query (which carries 企业微信's key or 钉钉's token) as `?…`.
    pub url_masked: String,
    pub has_secret: bool,
    pub enabled: bool,
    pub each_reminder: bool,
}

/// One entry of a tenant's delivery log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryView {
    pub id: i64,
    pub channel_id: String,
    /// The channel's name (empty when it was removed).
    pub channel_name: String,
    /// The reminder's key or `digest/{date}`.
    pub key: String,
    /// What was (or is to be) sent.
    pub title: String,
    pub text: String,
    /// `pending`, `sending`, `sent`, `failed` (given up) or `uncertain` (the sender stopped while the
    /// request was in flight: not resent unless requeued).
    pub status: String,
    pub status_name: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at: String,
    /// When it will be tried (pending).
    pub next_attempt_at: Option<String>,
    pub sent_at: Option<String>,
}

/// A page of the delivery log, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryLog {
    pub items: Vec<DeliveryView>,
    pub next_before: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_rejected_and_defaults_apply() {
        let ok: RecordFindingRequest =
            serde_json::from_str(r#"{"category":"theory","title":"理论学习走过场","description":"督查发现……"}"#)
                .unwrap();
        assert_eq!(ok.severity, Severity::General);
        assert!(ok.community_id.is_none());
        let bad = serde_json::from_str::<RecordFindingRequest>(
            r#"{"category":"theory","title":"t","description":"d","colour":"red"}"#,
        );
        assert!(bad.unwrap_err().to_string().contains("unknown field"));
    }

    #[test]
    fn requests_map_onto_commands() {
        let r = AssignRectificationRequest {
            title: "狠抓理论学习".into(),
            measure: "m".into(),
            responsible_unit: "街道宣传办".into(),
            leader: "张主任".into(),
            person: "刘干事".into(),
            deadline: NaiveDate::from_ymd_opt(2024, 3, 31).unwrap(),
        };
        match FindingCommand::from(r) {
            FindingCommand::Assign { responsible_unit, .. } => assert_eq!(responsible_unit, "街道宣传办"),
            other => panic!("{other:?}"),
        }
    }
}
