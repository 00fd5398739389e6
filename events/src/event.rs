//! Every domain event: its payload, its type name and its schema version.
//!
//! Events are immutable. A payload is stored as the JSON its schema version had when it was written;
//! when an older version is read, [`upcast`] brings it to the current shape before it is decoded.
//! The store never rewrites a stored event.

use crate::authz::{Role, Scope};
use crate::ids::*;
use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Checklist points, held exactly in hundredths (so sums never drift) and written as a JSON number
/// with at most two decimals (`2.5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = f64, minimum = 0, maximum = 10000))]
pub struct Points(pub u32);

impl Points {
    pub fn from_hundredths(h: u32) -> Self {
        Points(h)
    }
    pub fn whole(p: u32) -> Self {
        Points(p * 100)
    }
    pub fn hundredths(self) -> u32 {
        self.0
    }
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 100.0
    }
    /// Parses a non-negative number with at most two decimals, up to 10,000 points.
    pub fn from_f64(v: f64) -> Option<Self> {
        if !v.is_finite() || !(0.0..=10_000.0).contains(&v) {
            return None;
        }
        let h = (v * 100.0).round();
        if ((h / 100.0) - v).abs() > 1e-9 {
            return None;
        }
        Some(Points(h as u32))
    }
}

impl std::fmt::Display for Points {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (w, r) = (self.0 / 100, self.0 % 100);
        match r {
            0 => write!(f, "{w}"),
            r if r % 10 == 0 => write!(f, "{w}.{}", r / 10),
            r => write!(f, "{w}.{r:02}"),
        }
    }
}

impl Serialize for Points {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_multiple_of(100) { s.serialize_u32(self.0 / 100) } else { s.serialize_f64(self.as_f64()) }
    }
}

impl<'de> Deserialize<'de> for Points {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        Points::from_f64(v)
            .ok_or_else(|| serde::de::Error::custom("points must be 0..=10000 with at most two decimals"))
    }
}

/// An inspection method (督查方式), by its code in the tenant's own list of methods (座谈交流,
/// 查阅资料, 听取汇报, …). Stored as the bare code, as the five built-in methods always were.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InspectionMethod(pub String);

impl InspectionMethod {
    /// The five methods every tenant had before methods became tenant data; a tenant created
    /// before then has exactly these (see the upcaster of `TenantCreated` v1).
    pub const BUILTIN: [(&'static str, &'static str); 5] = [
        ("meeting", "座谈交流"),
        ("document_review", "查阅资料"),
        ("site_visit", "实地查看"),
        ("interview", "个别访谈"),
        ("questionnaire", "问卷调查"),
    ];

    pub fn new(code: &str) -> Self {
        InspectionMethod(code.to_owned())
    }

    /// The built-in methods as vocabulary entries.
    pub fn builtin_terms() -> Vec<Term> {
        Self::BUILTIN.iter().map(|(c, n)| Term::new(c, n)).collect()
    }

    pub fn code(&self) -> &str {
        &self.0
    }

    /// The built-in name of a built-in code (the fallback when a tenant's own list has no entry).
    pub fn builtin_name(&self) -> Option<&'static str> {
        Self::BUILTIN.iter().find(|(c, _)| *c == self.0).map(|(_, n)| *n)
    }
}

impl std::fmt::Display for InspectionMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A code and its Chinese name: an entry of a tenant's own vocabulary (methods, finding categories).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Term {
    pub code: String,
    pub name: String,
}

impl Term {
    pub fn new(code: &str, name: &str) -> Self {
        Term { code: code.to_owned(), name: name.to_owned() }
    }
}

/// How serious a finding is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    #[default]
    General,
    Major,
    Serious,
}

impl Severity {
    pub fn name_zh(self) -> &'static str {
        match self {
            Severity::General => "一般",
            Severity::Major => "较重",
            Severity::Serious => "严重",
        }
    }
}

/// One line of a 评分表.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecklistItem {
    pub code: String,
    pub title: String,
    pub max_points: Points,
}

/// A member of the 督查组.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamMember {
    pub user_id: UserId,
    #[serde(default)]
    pub leader: bool,
}

/// A figure quoted in an achievement ("开展理论宣讲会等10场": label 理论宣讲会, value 10, unit 场).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Figure {
    pub label: String,
    pub value: i64,
    pub unit: String,
}

/// A piece of evidence, stored content-addressed; the event keeps only its hash and description.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceRef {
    pub sha256: String,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
}

// ---------------------------------------------------------------- platform and tenant administration

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistrictCreated {
    pub district_id: DistrictId,
    pub name: String,
}

/// The first event of a tenant's own stream; it also registers the tenant with its district.
/// Schema v2 added the tenant's starting vocabulary: its inspection methods and finding categories
/// (v1 tenants had the five built-in methods and no categories until they added some).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantCreated {
    pub tenant_id: TenantId,
    pub district_id: DistrictId,
    pub name: String,
    pub methods: Vec<Term>,
    pub categories: Vec<Term>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommunityAdded {
    pub community_id: CommunityId,
    pub name: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommunityRenamed {
    pub community_id: CommunityId,
    pub name: String,
}

/// Finding categories are tenant data (理论学习, 督查自查, 主体责任, 舆情研判, 队伍建设, …).
/// Adding a retired code again brings it back.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingCategoryAdded {
    pub code: String,
    pub name: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingCategoryRenamed {
    pub code: String,
    pub name: String,
}

/// A retired category is kept (old findings keep their category and name) but new findings cannot
/// use it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingCategoryRetired {
    pub code: String,
}

/// Inspection methods are tenant data too (听取汇报, 个别访谈, 受理来信来访, 专题座谈会, …).
/// Adding a retired code again brings it back.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodAdded {
    pub code: String,
    pub name: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodRenamed {
    pub code: String,
    pub name: String,
}

/// A retired method stays in the plans and fieldwork that used it; new plans cannot choose it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodRetired {
    pub code: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistDefined {
    pub checklist_id: ChecklistId,
    pub title: String,
    pub items: Vec<ChecklistItem>,
}

/// Users are recorded on the stream of the scope that owns them (platform, district or tenant).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCreated {
    pub user_id: UserId,
    pub username: String,
    pub display_name: String,
}

/// An argon2id PHC string; the password itself is never recorded.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordSet {
    pub user_id: UserId,
    pub password_hash: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleGranted {
    pub user_id: UserId,
    pub role: Role,
    pub scope: Scope,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRevoked {
    pub user_id: UserId,
    pub role: Role,
    pub scope: Scope,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDisabled {
    pub user_id: UserId,
    pub reason: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEnabled {
    pub user_id: UserId,
}

/// A password was set. `temporary`: set by an administrator (creation, reset), so the user must
/// change it at the next login. (Schema 2; schema 1 had no flag: upcast as not temporary.)
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordChanged {
    pub user_id: UserId,
    pub password_hash: String,
    pub temporary: bool,
}

// ---------------------------------------------------------------- security (等保)

/// The user enrolled a second factor (TOTP). The secret is not here: it is kept in the server's
/// shared state, never in the log.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondFactorEnrolled {
    pub user_id: UserId,
}

/// A system administrator removed a user's second factor (a lost phone); the user enrolls again.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondFactorReset {
    pub user_id: UserId,
    pub reason: String,
}

/// An account's contact details (a mobile number for reminders). Personal data: stored sealed under
/// the account's key (`crate::personal`), shown masked to all but the roles that need it. An empty
/// `phone` removes it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserContactSet {
    pub user_id: UserId,
    pub phone: String,
}

/// A person's data was erased (个人信息删除, PIPL art. 47) by destroying their keys: every value
/// sealed under these keys now reads as 「已删除的个人信息」. Names nobody: only the key ids, the
/// kind of person, how many values were sealed, and why. Recorded on `_security/personal-data`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalDataErased {
    /// `user` (an account) or `name` (a person named in a tenant's records).
    pub subject_kind: String,
    /// The account, for `user` (its id is not personal data; its name is).
    pub user_id: Option<UserId>,
    /// The tenant whose records named the person, for `name`.
    pub tenant: Option<TenantId>,
    pub key_ids: Vec<String>,
    /// Why (the request's reference, e.g. a letter number); never the person's name.
    pub reason: String,
}

/// The security policy, as the security administrator set it (the whole policy each time).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityPolicySet {
    pub policy: crate::security::SecurityPolicy,
}

/// A signed checkpoint (锚点) of one tenant's chain head, recorded in a chain of its own
/// (`_anchors`). The signature covers the fields as `docs/AUDIT.md` specifies (`DUCHA-ANCHOR-1`);
/// kept outside the system, anchors show whether a chain was later rewritten, even by someone who
/// could recompute every hash.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchorRecorded {
    /// The anchored tenant.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub tenant: TenantId,
    /// The tenant_seq of its head event (how many events its chain had).
    pub sequence: u64,
    /// The head event's hash (hex).
    pub head_hash: String,
    /// The head event's global log position in this store.
    pub position: u64,
    /// When the anchor was made (RFC 3339, UTC).
    pub anchored_at: String,
    /// The store's chain hash: `sha256` or `sm3`.
    pub chain_hash: String,
    /// `ed25519` or `sm2`.
    pub algorithm: String,
    /// The signing key's id: the first 16 hex digits of SHA-256 over the public key.
    pub key_id: String,
    /// The public key (hex: 32 bytes for Ed25519; 65 bytes SEC1 uncompressed for SM2).
    pub public_key: String,
    /// The signature (hex: 64 bytes; SM2 as r ‖ s).
    pub signature: String,
}

/// One record of the security audit log (安全审计): who did what to what, from where, with which
/// result. Recorded in a chain of its own (`_security`); never a credential, token or code.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityAuditRecorded {
    /// A stable code: `login`, `login_failed`, `locked_out`, `unlock`, `logout`, `session_ended`,
    /// `password_changed`, `password_reset`, `second_factor_enrolled`, `second_factor_used`,
    /// `account_created`, `account_disabled`, `account_enabled`, `role_granted`, `role_revoked`,
    /// `policy_changed`, `download`, `forbidden`, `audit_search`, `audit_export`.
    pub action: String,
    /// `success`, `failure` or `refused`.
    pub result: String,
    /// The acting account, when known (a failed login of an unknown name has none).
    pub user_id: Option<UserId>,
    /// The username as given (logins) or the account's.
    pub username: Option<String>,
    /// The role the actor acted in, when there is one.
    pub role: Option<Role>,
    pub client_addr: String,
    pub user_agent: String,
    /// What it was done to: `user:xx-duchazu1`, `GET /api/v1/tenants/xxjd/ledger.xlsx`, ….
    pub object: String,
    pub request_id: String,
    /// A short note (the reason, the role granted, the error code); never a secret.
    pub detail: String,
}

// ---------------------------------------------------------------- inspection

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionPlanned {
    pub inspection_id: InspectionId,
    pub year: i32,
    /// e.g. 对下级社区督查2023年度意识形态工作情况
    pub title: String,
    /// e.g. 意识形态工作
    pub subject: String,
    pub communities: Vec<CommunityId>,
    pub team: Vec<TeamMember>,
    pub methods: Vec<InspectionMethod>,
    pub checklist_id: Option<ChecklistId>,
    pub planned_start: NaiveDate,
    pub planned_end: NaiveDate,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionScopeChanged {
    pub communities: Vec<CommunityId>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionTeamChanged {
    pub team: Vec<TeamMember>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionStarted {
    pub started_on: NaiveDate,
}

/// A meeting (座谈交流), document review (查阅资料) or other method, held with one community.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldworkRecorded {
    pub community_id: CommunityId,
    pub method: InspectionMethod,
    pub held_on: NaiveDate,
    pub participants: String,
    pub notes: String,
}

/// A deduction (扣分) against a checklist item for one community.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeductionRecorded {
    pub community_id: CommunityId,
    pub item_code: String,
    pub points: Points,
    pub reason: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AchievementRecorded {
    pub achievement_id: AchievementId,
    /// A heading of 主要工作开展情况, e.g. 加强理论武装，坚定理想信念
    pub category: String,
    pub text: String,
    pub figures: Vec<Figure>,
    pub community_id: Option<CommunityId>,
}

/// A 存在问题. Schema v2 added `title` and `severity`; v1 events are upcast (see [`upcast`]).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingRecorded {
    pub finding_id: FindingId,
    /// `None`: a cross-cutting finding about several communities.
    pub community_id: Option<CommunityId>,
    /// A finding category code of the tenant.
    pub category: String,
    /// e.g. 理论学习走过场的情况仍有存在
    pub title: String,
    pub description: String,
    pub severity: Severity,
}

// ---------------------------------------------------------------- an imported 整改台账 (issue 14)

/// Where imported data came from: the file's SHA-256 and name, and the sheet and row (1-based, as
/// Excel numbers them; 0 for what the whole file gave, such as an imported inspection).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedFrom {
    pub file_sha256: String,
    pub file_name: String,
    pub sheet: String,
    pub row: u32,
}

/// The source (来源) of imported ledger rows: an inspection held before Ducha, concluded as far as
/// Ducha knows. First event of `{tenant}/inspection-{id}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionImported {
    pub inspection_id: InspectionId,
    pub year: i32,
    pub title: String,
    pub file: ImportedFrom,
}

/// A finding of an imported ledger row, on its inspection's stream (like `FindingRecorded`), with
/// the date it was found on when the file says.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingImported {
    pub finding_id: FindingId,
    pub community_id: Option<CommunityId>,
    pub category: String,
    pub title: String,
    pub description: String,
    pub found_on: Option<NaiveDate>,
    pub file: ImportedFrom,
}

/// The rectification of an imported ledger row as the file states it: its original business dates
/// (assigned on, deadline, verified on) are data; the event's own time is the import's. First
/// event of `{tenant}/finding-{id}`; follow-up continues from `status` like any other.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RectificationImported {
    pub inspection_id: InspectionId,
    pub status: crate::finding::RectificationStatus,
    pub title: String,
    pub measure: String,
    pub responsible_unit: String,
    pub leader: String,
    pub person: String,
    pub assigned_on: Option<NaiveDate>,
    /// `None` only for a finding never assigned (待交办) or dismissed before assignment.
    pub deadline: Option<NaiveDate>,
    /// The deadline before extensions, when the file says it was extended.
    pub original_deadline: Option<NaiveDate>,
    pub latest_progress: Option<String>,
    pub progress_count: u32,
    /// Names of the evidence files the ledger lists (the files themselves are not in the ledger).
    pub evidence_names: Vec<String>,
    pub verified_on: Option<NaiveDate>,
    pub file: ImportedFrom,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionConcluded {
    /// The overall assessment, e.g. 总体良好
    pub assessment: String,
    pub summary: String,
}

/// The format of a generated document.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentFormat {
    Docx,
    Html,
    Txt,
}

impl DocumentFormat {
    pub const ALL: [DocumentFormat; 3] = [DocumentFormat::Docx, DocumentFormat::Html, DocumentFormat::Txt];
    pub fn code(self) -> &'static str {
        match self {
            DocumentFormat::Docx => "docx",
            DocumentFormat::Html => "html",
            DocumentFormat::Txt => "txt",
        }
    }
    pub fn from_code(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.code() == s)
    }
}

/// A 督查报告 was issued: the SHA-256 of the exact document bytes and the global log position it was
/// generated from, so the same bytes can be regenerated from the log and compared. Recorded on the
/// inspection's stream; allowed after conclusion (issuing changes no fact of the inspection).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportIssued {
    /// Lower-case hex SHA-256 of the document as issued.
    pub sha256: String,
    /// The report was generated from the log up to and including this global position.
    pub log_position: u64,
    /// The "as of" time asked for, as given (RFC 3339), when the report was of a past state.
    pub as_of: Option<String>,
    pub format: DocumentFormat,
    /// The server's signature over what was issued (absent where the deployment has no signing
    /// key, and in reports issued before signatures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<ReportSignature>,
}

/// A signature over an issued report: Ed25519 or SM2 (GB/T 32918, SM3, identifier
/// `1234567812345678`) by the anchors' key, over the length-prefixed fields `DUCHA-REPORT-1`,
/// tenant, inspection id, SHA-256, log position, format, algorithm, key id (docs/AUDIT.md). A
/// printed report can be checked against the deployment's published public key.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSignature {
    /// `ed25519` or `sm2`.
    pub algorithm: String,
    pub key_id: String,
    /// Hex (Ed25519: 32 bytes; SM2: 65 bytes uncompressed).
    pub public_key: String,
    /// Hex, 64 bytes (SM2: r ‖ s).
    pub signature: String,
}

// ---------------------------------------------------------------- finding follow-up (整改)

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RectificationAssigned {
    pub inspection_id: InspectionId,
    /// e.g. 狠抓理论学习强化思想武装
    pub title: String,
    pub measure: String,
    pub responsible_unit: String,
    pub leader: String,
    pub person: String,
    pub deadline: NaiveDate,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressReported {
    pub text: String,
    pub evidence: Vec<EvidenceRef>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RectificationSubmitted {
    pub summary: String,
}

/// 销号.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RectificationVerified {
    pub comment: String,
}

/// 退回.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RectificationReturned {
    pub reason: String,
}

/// 延期.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineExtended {
    pub new_deadline: NaiveDate,
    pub reason: String,
}

/// 催办.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderIssued {
    pub message: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingDismissed {
    pub reason: String,
}

// ---------------------------------------------------------------- self-inspection

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelfInspectionSubmitted {
    pub self_inspection_id: SelfInspectionId,
    pub community_id: CommunityId,
    pub year: i32,
    pub title: String,
    /// A free-text report (v1), or, with `sections`, the opening paragraph(s) before them (may then
    /// be empty).
    pub text: String,
    pub inspection_id: Option<InspectionId>,
    /// The report in the official form (v2): numbered parts and sub-parts, in order. Empty in
    /// free-text reports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<ReportSection>,
}

/// One part of a report in the official form: a heading at `level` 1 (一、), 2 (（一）) or 3 (1.),
/// numbered by its position (the title is stored without a number), and its text (paragraphs
/// separated by line breaks; may be empty under a heading that only groups sub-parts).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSection {
    pub level: u8,
    pub title: String,
    #[serde(default)]
    pub text: String,
}

/// Why a stored event could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("event {event_type} has schema version {found}, newer than this build knows ({known})")]
    FutureVersion { event_type: String, found: u32, known: u32 },
    #[error("event {event_type} v{version}: {message}")]
    Payload { event_type: String, version: u32, message: String },
}

macro_rules! domain_events {
    ($( $variant:ident = $version:literal; )*) => {
        /// A domain event. The variant name is the stored type name.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "type", content = "data")]
        pub enum Event { $( $variant($variant), )* }

        impl Event {
            /// Every event type with its current schema version.
            pub const TYPES: &'static [(&'static str, u32)] = &[$( (stringify!($variant), $version), )*];

            pub fn event_type(&self) -> &'static str {
                match self { $( Event::$variant(_) => stringify!($variant), )* }
            }

            pub fn schema_version(&self) -> u32 {
                match self { $( Event::$variant(_) => $version, )* }
            }

            /// The payload as stored: compact JSON of the variant's struct (no type tag).
            pub fn payload_json(&self) -> String {
                // Serialising these plain structs cannot fail: no maps with non-string keys, no
                // custom serialisers that error.
                match self { $( Event::$variant(p) => serde_json::to_string(p).unwrap_or_default(), )* }
            }

            /// Decodes a stored payload, upcasting older schema versions first.
            ///
            /// Sealed personal data (`crate::personal`) decodes as [`crate::personal::SEALED`]: open
            /// the payload with the keys first where the plaintext is needed.
            pub fn decode(event_type: &str, version: u32, payload: &str) -> Result<Event, DecodeError> {
                let opened = crate::personal::open(payload, &mut |_| crate::personal::SEALED.to_owned());
                let payload = opened.as_deref().unwrap_or(payload);
                let bad = |m: serde_json::Error| DecodeError::Payload {
                    event_type: event_type.to_owned(), version, message: m.to_string(),
                };
                match event_type {
                    $( stringify!($variant) => {
                        if version == $version {
                            serde_json::from_str(payload).map(Event::$variant).map_err(bad)
                        } else if version > $version {
                            Err(DecodeError::FutureVersion { event_type: event_type.to_owned(), found: version, known: $version })
                        } else {
                            let value = serde_json::from_str(payload).map_err(bad)?;
                            let value = upcast(event_type, version, value)?;
                            serde_json::from_value(value).map(Event::$variant).map_err(bad)
                        }
                    } )*
                    other => Err(DecodeError::UnknownType(other.to_owned())),
                }
            }
        }

        $( impl From<$variant> for Event { fn from(e: $variant) -> Event { Event::$variant(e) } } )*
    };
}

domain_events! {
    DistrictCreated = 1;
    TenantCreated = 2;
    CommunityAdded = 1;
    CommunityRenamed = 1;
    FindingCategoryAdded = 1;
    FindingCategoryRenamed = 1;
    FindingCategoryRetired = 1;
    MethodAdded = 1;
    MethodRenamed = 1;
    MethodRetired = 1;
    ChecklistDefined = 1;
    UserCreated = 1;
    PasswordSet = 1;
    RoleGranted = 1;
    RoleRevoked = 1;
    UserDisabled = 1;
    UserEnabled = 1;
    PasswordChanged = 1;
    SecondFactorEnrolled = 1;
    SecondFactorReset = 1;
    SecurityPolicySet = 1;
    UserContactSet = 1;
    PersonalDataErased = 1;
    SecurityAuditRecorded = 1;
    AnchorRecorded = 1;
    InspectionPlanned = 1;
    InspectionScopeChanged = 1;
    InspectionTeamChanged = 1;
    InspectionStarted = 1;
    FieldworkRecorded = 1;
    DeductionRecorded = 1;
    AchievementRecorded = 1;
    FindingRecorded = 2;
    InspectionConcluded = 1;
    ReportIssued = 1;
    RectificationAssigned = 1;
    ProgressReported = 1;
    RectificationSubmitted = 1;
    RectificationVerified = 1;
    RectificationReturned = 1;
    DeadlineExtended = 1;
    ReminderIssued = 1;
    FindingDismissed = 1;
    SelfInspectionSubmitted = 2;
    InspectionImported = 1;
    FindingImported = 1;
    RectificationImported = 1;
}

/// The upcasting hook: turns a payload of an older schema version into the next one, step by step,
/// until it has the current shape. Add a match arm when a schema version is bumped; never change a
/// stored event.
pub fn upcast(
    event_type: &str,
    mut version: u32,
    mut value: serde_json::Value,
) -> Result<serde_json::Value, DecodeError> {
    loop {
        let current = Event::TYPES.iter().find(|(t, _)| *t == event_type).map(|(_, v)| *v).unwrap_or(version);
        if version >= current {
            return Ok(value);
        }
        match (event_type, version) {
            // v1 tenants had the five built-in methods and no categories of their own.
            ("TenantCreated", 1) => {
                if let Some(obj) = value.as_object_mut() {
                    let methods = InspectionMethod::BUILTIN
                        .iter()
                        .map(|(code, name)| serde_json::json!({ "code": code, "name": name }))
                        .collect();
                    obj.entry("methods").or_insert(serde_json::Value::Array(methods));
                    obj.entry("categories").or_insert(serde_json::Value::Array(Vec::new()));
                }
            }
            // v1 (pre-release) had no title or severity: the title is the description's first
            // sentence, the severity "general".
            ("FindingRecorded", 1) => {
                if let Some(obj) = value.as_object_mut() {
                    let description = obj.get("description").and_then(|d| d.as_str()).unwrap_or_default();
                    let title = description.split(['。', '.']).next().unwrap_or_default().to_owned();
                    obj.entry("title").or_insert(serde_json::Value::String(title));
                    obj.entry("severity").or_insert(serde_json::Value::String("general".to_owned()));
                }
            }
            // v1 self-inspections were one free text: no sections.
            ("SelfInspectionSubmitted", 1) => {
                if let Some(obj) = value.as_object_mut() {
                    obj.entry("sections").or_insert(serde_json::Value::Array(Vec::new()));
                }
            }
            _ => {
                return Err(DecodeError::Payload {
                    event_type: event_type.to_owned(),
                    version,
                    message: "no upcaster from this version".to_owned(),
                });
            }
        }
        version += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_with_type_and_version() {
        let e = Event::from(CommunityAdded {
            community_id: CommunityId::parse("c1").unwrap(),
            name: "东风社区".into(),
        });
        assert_eq!(e.event_type(), "CommunityAdded");
        assert_eq!(e.schema_version(), 1);
        let back = Event::decode(e.event_type(), e.schema_version(), &e.payload_json()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn old_finding_version_is_upcast() {
        let v1 = r#"{"finding_id":"f1","community_id":null,"category":"theory","description":"理论学习走过场。督查发现有些社区……"}"#;
        let e = Event::decode("FindingRecorded", 1, v1).unwrap();
        match e {
            Event::FindingRecorded(f) => {
                assert_eq!(f.title, "理论学习走过场");
                assert_eq!(f.severity, Severity::General);
            }
            other => panic!("decoded to {other:?}"),
        }
    }

    #[test]
    fn a_v1_tenant_has_the_five_builtin_methods_and_no_categories() {
        let v1 = r#"{"tenant_id":"t1","district_id":"d1","name":"XX街道"}"#;
        let Event::TenantCreated(t) = Event::decode("TenantCreated", 1, v1).unwrap() else { panic!("not a tenant") };
        let codes: Vec<&str> = t.methods.iter().map(|m| m.code.as_str()).collect();
        assert_eq!(codes, ["meeting", "document_review", "site_visit", "interview", "questionnaire"]);
        assert_eq!(t.methods[0].name, "座谈交流");
        assert!(t.categories.is_empty());
        // Built-in method codes are stored as they always were: bare strings.
        let fw = r#"{"community_id":"c1","method":"site_visit","held_on":"2024-03-05","participants":"","notes":""}"#;
        let Event::FieldworkRecorded(f) = Event::decode("FieldworkRecorded", 1, fw).unwrap() else { panic!() };
        assert_eq!(f.method, InspectionMethod::new("site_visit"));
        assert_eq!(f.method.builtin_name(), Some("实地查看"));
    }

    #[test]
    fn unknown_and_future_versions_are_errors() {
        assert!(matches!(Event::decode("Nope", 1, "{}"), Err(DecodeError::UnknownType(_))));
        assert!(matches!(Event::decode("CommunityAdded", 9, "{}"), Err(DecodeError::FutureVersion { .. })));
        assert!(matches!(Event::decode("CommunityAdded", 1, "{"), Err(DecodeError::Payload { .. })));
    }

    #[test]
    fn points_are_exact_hundredths() {
        let p: Points = serde_json::from_str("2.5").unwrap();
        assert_eq!(p, Points(250));
        assert_eq!(serde_json::to_string(&p).unwrap(), "2.5");
        assert_eq!(serde_json::to_string(&Points::whole(10)).unwrap(), "10");
        assert!(serde_json::from_str::<Points>("-1").is_err());
        assert!(serde_json::from_str::<Points>("0.001").is_err());
        assert_eq!(Points(1005).to_string(), "10.05");
        assert_eq!(Points(1050).to_string(), "10.5");
    }
}
