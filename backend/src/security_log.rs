//! The security audit log (安全审计, 等保 2.0 level 3): who did what to what, when, from where, with
//! which result — logins and their failures, lockouts and unlocks, logouts and ended sessions,
//! password changes and resets, second factors, account and role changes, policy changes, every
//! download or export, every request refused with 403, and the audit administrator's own searches.
//!
//! Each record is an event (`SecurityAuditRecorded`) on `_security/audit-log`, a chain of its own
//! (`docs/AUDIT.md`'s rules), so `ducha verify` and the independent checker cover it, and nothing in
//! the application can change or delete one. Recording comes *before* the action it records: when
//! a record cannot be written the action does not happen (the caller answers 503).

use crate::store::{AppendRequest, EventStore, ExpectedVersion, StoreError, Upto};
use ducha_events::authz::Role;
use ducha_events::envelope::{ActorRef, NewEvent, RecordedEvent};
use ducha_events::event::{Event, SecurityAuditRecorded};
use ducha_events::ids::{TenantId, UserId, stream};
use ducha_events::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Results.
pub const SUCCESS: &str = "success";
pub const FAILURE: &str = "failure";
pub const REFUSED: &str = "refused";

/// Where a request came from, for its records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub client_addr: String,
    pub user_agent: String,
    pub request_id: String,
}

/// One record to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub action: &'static str,
    pub result: &'static str,
    pub user_id: Option<UserId>,
    pub username: Option<String>,
    pub role: Option<Role>,
    pub object: String,
    pub detail: String,
    pub origin: Origin,
}

impl Entry {
    pub fn new(action: &'static str, result: &'static str, origin: &Origin) -> Entry {
        Entry {
            action,
            result,
            user_id: None,
            username: None,
            role: None,
            object: String::new(),
            detail: String::new(),
            origin: origin.clone(),
        }
    }
    pub fn user(mut self, user_id: &UserId, username: &str) -> Entry {
        self.user_id = Some(user_id.clone());
        self.username = Some(username.to_owned());
        self
    }
    pub fn username(mut self, username: &str) -> Entry {
        self.username = Some(username.to_owned());
        self
    }
    pub fn role(mut self, role: Option<Role>) -> Entry {
        self.role = role;
        self
    }
    pub fn object(mut self, object: impl Into<String>) -> Entry {
        self.object = object.into();
        self
    }
    pub fn detail(mut self, detail: impl Into<String>) -> Entry {
        self.detail = detail.into();
        self
    }
}

/// The recorder of every record in the envelope: the log itself, not the person (who is in the
/// record). A reserved id, never an account.
fn recorder() -> ActorRef {
    ActorRef {
        user_id: UserId::parse("_security").unwrap_or_else(|_| unreachable!("valid literal id")),
        role: Role::AuditAdmin,
    }
}

/// Text fields are bounded so that a client cannot make records of any size (a user agent, a path).
fn bounded(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// Writes one record; its log position. Appends are durable before they are acknowledged.
pub async fn record<S: EventStore + ?Sized>(store: &S, entry: Entry) -> Result<u64, StoreError> {
    let payload = SecurityAuditRecorded {
        action: entry.action.to_owned(),
        result: entry.result.to_owned(),
        user_id: entry.user_id,
        username: entry.username.map(|u| bounded(&u, 64)),
        role: entry.role,
        client_addr: bounded(&entry.origin.client_addr, 64),
        user_agent: bounded(&entry.origin.user_agent, 256),
        object: bounded(&entry.object, 512),
        request_id: bounded(&entry.origin.request_id, 128),
        detail: bounded(&entry.detail, 500),
    };
    let correlation = if payload.request_id.is_empty() || !payload.request_id.bytes().all(|b| b.is_ascii_graphic()) {
        uuid::Uuid::now_v7().to_string()
    } else {
        payload.request_id.clone()
    };
    let event = Event::from(payload);
    let at: Timestamp = crate::clock::now();
    let new = NewEvent::from_event(&event, uuid::Uuid::now_v7().to_string(), at, recorder(), correlation, None);
    let outcome = store
        .append(AppendRequest {
            tenant: TenantId::security(),
            stream: stream::security_audit(),
            expected: ExpectedVersion::Any,
            events: vec![new],
            idempotency_key: None,
        })
        .await?;
    Ok(outcome.last_position)
}

/// A record as the audit administrator reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Log position (the record's id).
    pub position: u64,
    /// When (RFC 3339, UTC).
    pub at: String,
    pub action: String,
    pub result: String,
    #[schema(value_type = Option<String>)]
    pub user_id: Option<UserId>,
    pub username: Option<String>,
    /// Role code.
    pub role: Option<String>,
    /// Role, in Chinese.
    pub role_name: Option<String>,
    pub client_addr: String,
    pub user_agent: String,
    pub object: String,
    pub request_id: String,
    pub detail: String,
    /// The record's hash in the security log's chain.
    pub hash: String,
}

impl AuditRecord {
    fn of(e: &RecordedEvent) -> Option<AuditRecord> {
        let Ok(Event::SecurityAuditRecorded(r)) = e.decode() else { return None };
        Some(AuditRecord {
            position: e.position,
            at: e.occurred_at.clone(),
            action: r.action,
            result: r.result,
            user_id: r.user_id,
            username: r.username,
            role: r.role.map(|x| x.code().to_owned()),
            role_name: r.role.map(|x| x.name_zh().to_owned()),
            client_addr: r.client_addr,
            user_agent: r.user_agent,
            object: r.object,
            request_id: r.request_id,
            detail: r.detail,
            hash: e.hash.clone(),
        })
    }
}

/// What a search asks for; every given part must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    /// From this position (inclusive; from a time: the caller resolves it).
    pub after: u64,
    /// Up to this position.
    pub upto: Upto,
    /// The user id or username contains this.
    pub user: Option<String>,
    pub action: Option<String>,
    pub result: Option<String>,
    /// The client address starts with this.
    pub addr: Option<String>,
    /// Recorded at or after this time.
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Recorded before this time.
    pub to: Option<chrono::DateTime<chrono::Utc>>,
}

impl Search {
    fn matches(&self, r: &AuditRecord) -> bool {
        let contains = |hay: &Option<String>, needle: &str| hay.as_deref().is_some_and(|h| h.contains(needle));
        self.user
            .as_deref()
            .is_none_or(|u| contains(&r.username, u) || r.user_id.as_ref().is_some_and(|id| id.as_str().contains(u)))
            && self.action.as_deref().is_none_or(|a| r.action == a)
            && self.result.as_deref().is_none_or(|x| r.result == x)
            && self.addr.as_deref().is_none_or(|a| r.client_addr.starts_with(a))
            && (self.from.is_none() && self.to.is_none() || {
                let at = ducha_events::time::parse(&r.at).ok();
                at.is_some_and(|at| self.from.is_none_or(|f| at >= f) && self.to.is_none_or(|t| at < t))
            })
    }
}

/// The newest `limit` matching records, newest first, and how many matched in all.
pub async fn search<S: EventStore + ?Sized>(
    store: &S,
    query: &Search,
    limit: usize,
) -> Result<(Vec<AuditRecord>, u64), StoreError> {
    let tenant = TenantId::security();
    let mut after = query.after;
    let mut found: std::collections::VecDeque<AuditRecord> = std::collections::VecDeque::new();
    let mut total = 0u64;
    loop {
        let mut page = store.read_tenant(&tenant, after, 5_000, query.upto).await?;
        store.open_personal(&mut page).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for r in page.iter().filter_map(AuditRecord::of).filter(|r| query.matches(r)) {
            total += 1;
            found.push_back(r);
            if found.len() > limit {
                found.pop_front();
            }
        }
    }
    Ok((found.into_iter().rev().collect(), total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::{SqliteOptions, SqliteStore, Synchronous};

    #[tokio::test]
    async fn records_chain_on_their_own_and_search_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteOptions { synchronous: Synchronous::Off, read_only: false, ..SqliteOptions::default() };
        let store = SqliteStore::open(&dir.path().join("ducha.db"), opts).unwrap();
        let origin =
            Origin {
                client_addr: "10.1.2.3".into(), user_agent: "测试\u{7}浏览器".into(), request_id: "r-1".into()
            };
        let alice = UserId::parse("alice").unwrap();
        for (i, (action, result)) in
            [("login", SUCCESS), ("login_failed", FAILURE), ("download", SUCCESS), ("login", SUCCESS)]
                .iter()
                .enumerate()
        {
            let e = Entry::new(action, result, &origin).user(&alice, "alice").object(format!("o{i}"));
            record(&store, e).await.unwrap();
        }
        let heads = store.tenants().await.unwrap();
        assert_eq!(heads.len(), 1);
        assert_eq!(heads[0].tenant, TenantId::security());
        assert_eq!(heads[0].events, 4);
        let (all, total) = search(&store, &Search::default(), 10).await.unwrap();
        assert_eq!(total, 4);
        assert_eq!(all.iter().map(|r| r.object.as_str()).collect::<Vec<_>>(), ["o3", "o2", "o1", "o0"]);
        assert_eq!(all[0].user_agent, "测试浏览器", "control characters are dropped");
        assert_eq!(all[0].request_id, "r-1");
        let logins = Search { action: Some("login".into()), ..Search::default() };
        let (found, total) = search(&store, &logins, 1).await.unwrap();
        assert_eq!((found.len(), total, found[0].object.as_str()), (1, 2, "o3"));
        let elsewhere = Search { addr: Some("192.168.".into()), ..Search::default() };
        assert_eq!(search(&store, &elsewhere, 10).await.unwrap().1, 0);
        let by_user = Search { user: Some("ali".into()), result: Some(FAILURE.into()), ..Search::default() };
        assert_eq!(search(&store, &by_user, 10).await.unwrap().1, 1);
        store.close().await;
    }
}
