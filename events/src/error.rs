//! Typed refusals of the domain. Each has a stable `code` (for clients and tests), a Chinese message
//! for people and an English one (the `Display`) for logs.

use crate::authz::Action;
use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum DomainError {
    #[error("actor may not perform {action:?} here")]
    Forbidden { action: Action },
    #[error("{what} already exists")]
    AlreadyExists { what: String },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("community {community} is not in the inspection's scope")]
    CommunityOutOfScope { community: String },
    #[error("inspection is {state}; this is not allowed now")]
    InspectionState { state: String },
    #[error("inspection is concluded and accepts no more records")]
    InspectionConcluded,
    #[error("inspector is not on the inspection team")]
    NotOnTeam,
    #[error("deadline {deadline} is before the assignment date {assigned_on}")]
    DeadlineBeforeAssignment { deadline: String, assigned_on: String },
    #[error("deduction of {requested} exceeds what is left ({remaining}) of item {item}")]
    DeductionExceedsItem { item: String, requested: String, remaining: String },
    #[error("rectification is {status}; this needs it to be {needed}")]
    RectificationState { status: String, needed: String },
    #[error("finding is closed ({status}) and accepts no progress")]
    FindingClosed { status: String },
    #[error("user is disabled")]
    UserDisabled,
    /// A role this actor may not hand out (a sub-district admin granting an admin or auditor role).
    #[error("role {role} may not be granted by this actor")]
    RoleNotGrantable { role: String },
    /// 三员分立: the account holds a role that excludes this one.
    #[error("the account holds {held}, which excludes {role}")]
    RoleConflict { role: String, held: String },
    /// A password that breaks the security policy; `rule` says which rule, in Chinese.
    #[error("weak password: {rule}")]
    WeakPassword { rule: String },
}

impl DomainError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::Forbidden { .. } => "forbidden",
            DomainError::AlreadyExists { .. } => "already_exists",
            DomainError::NotFound { .. } => "not_found",
            DomainError::Invalid { .. } => "invalid",
            DomainError::CommunityOutOfScope { .. } => "community_out_of_scope",
            DomainError::InspectionState { .. } => "inspection_state",
            DomainError::InspectionConcluded => "inspection_concluded",
            DomainError::NotOnTeam => "not_on_team",
            DomainError::DeadlineBeforeAssignment { .. } => "deadline_before_assignment",
            DomainError::DeductionExceedsItem { .. } => "deduction_exceeds_item",
            DomainError::RectificationState { .. } => "rectification_state",
            DomainError::FindingClosed { .. } => "finding_closed",
            DomainError::UserDisabled => "user_disabled",
            DomainError::RoleNotGrantable { .. } => "role_not_grantable",
            DomainError::RoleConflict { .. } => "role_conflict",
            DomainError::WeakPassword { .. } => "weak_password",
        }
    }

    /// The message for people, in Chinese.
    pub fn message_zh(&self) -> String {
        match self {
            DomainError::Forbidden { .. } => "您没有执行此操作的权限".to_owned(),
            DomainError::AlreadyExists { what } => format!("{what}已存在"),
            DomainError::NotFound { what } => format!("未找到{what}"),
            DomainError::Invalid { field, reason } => format!("字段“{field}”无效：{reason}"),
            DomainError::CommunityOutOfScope { community } => {
                format!("社区“{community}”不在本次督查范围内")
            }
            DomainError::InspectionState { state } => {
                format!("督查当前状态为“{state}”，不能执行此操作")
            }
            DomainError::InspectionConcluded => "督查已结束，不能再录入".to_owned(),
            DomainError::NotOnTeam => "您不是本次督查组成员".to_owned(),
            DomainError::DeadlineBeforeAssignment { deadline, assigned_on } => {
                format!("整改时限（{deadline}）不能早于交办日期（{assigned_on}）")
            }
            DomainError::DeductionExceedsItem { item, requested, remaining } => {
                format!("扣分（{requested}分）超过评分项“{item}”剩余分值（{remaining}分）")
            }
            DomainError::RectificationState { status, needed } => {
                format!("整改当前为“{status}”，此操作需要“{needed}”")
            }
            DomainError::FindingClosed { status } => format!("问题已{status}，不能再报送进展"),
            DomainError::UserDisabled => "该用户已停用".to_owned(),
            DomainError::RoleNotGrantable { role } => {
                format!("您不能授予或撤销“{role}”角色：管理员与审计角色由安全管理员授予")
            }
            DomainError::RoleConflict { role, held } => {
                format!(
                    "该账号已担任“{held}”，不能再担任“{role}”（三员分立：系统、安全、审计管理员互斥，且不兼任业务角色）"
                )
            }
            DomainError::WeakPassword { rule } => format!("密码不符合安全策略：{rule}"),
        }
    }

    /// The field at fault, when there is one (the API reports it next to the form field).
    pub fn field(&self) -> Option<&str> {
        match self {
            DomainError::Invalid { field, .. } => Some(field),
            DomainError::CommunityOutOfScope { .. } => Some("community_id"),
            DomainError::DeadlineBeforeAssignment { .. } => Some("deadline"),
            DomainError::DeductionExceedsItem { .. } => Some("points"),
            DomainError::RoleNotGrantable { .. } | DomainError::RoleConflict { .. } => Some("role"),
            DomainError::WeakPassword { .. } => Some("password"),
            _ => None,
        }
    }

    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        DomainError::Invalid { field: field.to_owned(), reason: reason.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_messages_chinese() {
        let e = DomainError::InspectionConcluded;
        assert_eq!(e.code(), "inspection_concluded");
        assert!(e.message_zh().contains("督查"));
        assert_eq!(DomainError::invalid("title", "不能为空").field(), Some("title"));
    }
}
