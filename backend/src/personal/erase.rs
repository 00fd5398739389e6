//! Erasing a person's data (个人信息删除): record the erasure, then destroy the person's key.
//!
//! The order matters. The `PersonalDataErased` event is appended first (on
//! `_security/personal-data`, in the security log's chain), naming the key ids and nobody; then the
//! key is destroyed in the shared vault and forgotten by this process. Every replica that folds the
//! event forgets the keys and folds its read model again, and whoever reads the event while the key
//! still exists (a crash between the two steps) destroys it ([`reconcile`]). Nothing else is touched:
//! the events keep their ciphertext, so every chain and every anchor still verifies.

use super::Keyring;
use crate::commands::{CommandError, Meta};
use crate::store::{AppendRequest, EventStore, ExpectedVersion, StoreError, Upto};
use ducha_events::authz::Role;
use ducha_events::event::{Event, PersonalDataErased};
use ducha_events::ids::{TenantId, UserId, stream};
use ducha_events::personal::Subject;

/// Whom to erase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whom {
    /// An account: its name, phone and the addresses in its security records.
    User(UserId),
    /// A person named in a tenant's records (责任人, 参加人员), exactly as written.
    Name { tenant: TenantId, name: String },
}

impl Whom {
    fn subject(&self) -> Subject {
        match self {
            Whom::User(u) => Subject::User(u.to_string()),
            Whom::Name { tenant, name } => Subject::Name { tenant: tenant.to_string(), name: name.trim().to_owned() },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    pub key_ids: Vec<String>,
    pub outcome: crate::store::AppendOutcome,
}

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    /// No data of this person is sealed in this deployment (never recorded, or erased already).
    #[error("没有此人的个人信息（从未记录，或已删除） / no personal data of this person is kept")]
    NotFound,
    #[error("删除原因不能为空（如来函编号），不超过 200 字 / a reason (at most 200 characters) is required")]
    Reason,
    #[error("{0}")]
    Command(#[from] CommandError),
}

impl From<EraseError> for CommandError {
    fn from(e: EraseError) -> Self {
        match e {
            EraseError::NotFound => ducha_events::DomainError::NotFound { what: "此人的个人信息".into() }.into(),
            EraseError::Reason => {
                ducha_events::DomainError::invalid("reason", "删除原因不能为空（如来函编号），不超过 200 字").into()
            }
            EraseError::Command(c) => c,
        }
    }
}

impl From<StoreError> for EraseError {
    fn from(e: StoreError) -> Self {
        EraseError::Command(e.into())
    }
}

/// Checks a request before anything is recorded: the reason, and that the person has a key.
/// Returns the key id.
pub async fn check(keys: &Keyring, whom: &Whom, reason: &str) -> Result<String, EraseError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(EraseError::Reason);
    }
    let index = keys.index_of(&whom.subject());
    let found = keys.vault().find(&index).await.map_err(super::store::state_err)?.ok_or(EraseError::NotFound)?;
    Ok(found.key_id)
}

/// Erases `whom`. `meta` names who asked (the security administrator, or the system at the command
/// line).
pub async fn erase<S: EventStore + ?Sized>(
    store: &S,
    keys: &Keyring,
    meta: &Meta,
    whom: &Whom,
    reason: &str,
) -> Result<Erased, EraseError> {
    let key_ids = vec![check(keys, whom, reason).await?];
    let reason = reason.trim();
    let (subject_kind, user_id, tenant) = match whom {
        Whom::User(u) => ("user", Some(u.clone()), None),
        Whom::Name { tenant, .. } => ("name", None, Some(tenant.clone())),
    };
    let event: Event = PersonalDataErased {
        subject_kind: subject_kind.into(),
        user_id,
        tenant,
        key_ids: key_ids.clone(),
        reason: reason.to_owned(),
    }
    .into();
    let events = crate::commands::new_events(meta, Role::SecurityAdmin, std::slice::from_ref(&event));
    if let Some(gate) = &meta.gate {
        gate.pass().await?;
    }
    let outcome = store
        .append(AppendRequest {
            tenant: TenantId::security(),
            stream: stream::personal_data(),
            expected: ExpectedVersion::Any,
            events,
            idempotency_key: meta.idempotency_key.clone(),
        })
        .await?;
    keys.vault().destroy(&key_ids).await.map_err(super::store::state_err)?;
    keys.forget(&key_ids);
    Ok(Erased { key_ids, outcome })
}

/// Destroys every key an erasure named that still exists (an erasure cut between recording it and
/// destroying the key, or a vault restored from a backup older than the erasure). Returns how many.
pub async fn reconcile<S: EventStore + ?Sized>(store: &S, keys: &Keyring) -> Result<u64, EraseError> {
    // Only the erasures' own stream (small), not the whole security log.
    let mut after = 0;
    let mut named = Vec::new();
    loop {
        let page = store.read_stream(&stream::personal_data(), after, 1_000, Upto::Head).await?;
        let Some(last) = page.last() else { break };
        after = last.stream_version;
        for e in page.iter().filter(|e| e.event_type == "PersonalDataErased") {
            if let Ok(Event::PersonalDataErased(x)) = e.decode() {
                named.extend(x.key_ids);
            }
        }
    }
    if named.is_empty() {
        return Ok(0);
    }
    keys.forget(&named);
    Ok(keys.vault().destroy(&named).await.map_err(super::store::state_err)?)
}
