//! Command handling: load an aggregate by folding its stream, `decide`, append with the expected
//! version. This is the only path by which anything is written.
//!
//! When the caller gives no expected version (no `If-Match`), a version conflict means someone else
//! wrote first: the command is decided again on the fresh state, a few times at most. With an
//! expected version the conflict is returned to the caller.

use crate::store::{AppendOutcome, AppendRequest, EventStore, ExpectedVersion, StoreError, Upto};
use ducha_events::aggregate::Command;
use ducha_events::authz::{Actor, Role, Target};
use ducha_events::envelope::{ActorRef, NewEvent};
use ducha_events::event::DecodeError;
use ducha_events::ids::{DistrictId, FindingId, InspectionId, SelfInspectionId, TenantId, stream};
use ducha_events::time::Timestamp;
use ducha_events::{DomainError, Event};
use ducha_events::{district, finding, inspection, platform, self_inspection, tenant};

/// Runs once, after the command is decided and before its events are appended: if it fails,
/// nothing is appended (the security audit log's rule: no record, no action).
#[derive(Clone)]
pub struct Gate(std::sync::Arc<GateInner>);

type GateFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), CommandError>> + Send>>;

struct GateInner {
    run: Box<dyn Fn() -> GateFuture + Send + Sync>,
    passed: tokio::sync::OnceCell<()>,
}

impl Gate {
    pub fn new(run: impl Fn() -> GateFuture + Send + Sync + 'static) -> Gate {
        Gate(std::sync::Arc::new(GateInner { run: Box::new(run), passed: tokio::sync::OnceCell::new() }))
    }

    /// Passes the gate (at most once, however many times the command is retried).
    pub(crate) async fn pass(&self) -> Result<(), CommandError> {
        self.0.passed.get_or_try_init(|| (self.0.run)()).await.map(drop)
    }

    /// Whether the gate was passed (so the events were about to be appended).
    pub fn passed(&self) -> bool {
        self.0.passed.initialized()
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").field("passed", &self.passed()).finish()
    }
}

/// Everything about a command that is not its body.
#[derive(Debug, Clone)]
pub struct Meta {
    pub actor: Actor,
    pub at: Timestamp,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub idempotency_key: Option<String>,
    /// The aggregate version the client saw (`If-Match`); `None` = decide on the latest.
    pub expected_version: Option<u64>,
    /// Passed before the events are appended (see [`Gate`]).
    pub gate: Option<Gate>,
}

impl Meta {
    pub fn new(actor: Actor, at: Timestamp) -> Self {
        Meta {
            actor,
            at,
            correlation_id: None,
            causation_id: None,
            idempotency_key: None,
            expected_version: None,
            gate: None,
        }
    }
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Domain(#[from] DomainError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("stored event cannot be decoded: {0}")]
    Decode(#[from] DecodeError),
    /// The command's gate refused (the security audit record could not be written).
    #[error("the command's audit record could not be written: {0}")]
    Gate(String),
}

/// What a successful command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    pub outcome: AppendOutcome,
    /// How many events were appended (0 when deduplicated or when the command changed nothing).
    pub events: usize,
}

/// Attempts of a command that lost a race (no `If-Match`): with several writers on one stream —
/// more so with several replicas — a handful of losses in a row is normal.
const RETRIES: usize = 10;

/// A random pause before the next attempt, growing with the attempt (1 ms … 64 ms), so that racing
/// writers spread out instead of colliding again in lock step.
fn backoff(attempt: usize) -> std::time::Duration {
    let cap = 1u64 << attempt.min(6);
    let mut byte = [0u8; 1];
    let jitter = getrandom::fill(&mut byte).map_or(cap / 2, |()| u64::from(byte[0]) % cap);
    std::time::Duration::from_millis(1 + jitter)
}

/// Folds one stream into an aggregate state, returning it with the stream version. Starts from
/// the state the store keeps for the stream, if any ([`crate::store::states`]), and keeps the result.
pub async fn load<S: EventStore + ?Sized, T: Clone + Send + Sync + 'static>(
    store: &S,
    stream: &str,
    init: T,
    evolve: impl Fn(T, &Event) -> T,
) -> Result<(T, u64), CommandError> {
    let cache = store.states();
    let mut found = cache.and_then(|c| c.get::<T>(stream));
    // Nothing kept: fold from the first event, one command at a time per stream; a command that
    // waited starts from what the one before it kept.
    let mut first = None;
    if let (None, Some(c)) = (&found, cache) {
        let held = c.first_fold(stream).await;
        found = c.get::<T>(stream);
        if found.is_none() {
            c.count_fold_from_start();
            first = Some(held);
        }
    }
    let (mut state, mut version) = found.unwrap_or((init, 0));
    let kept = version;
    loop {
        let batch = store.read_stream(stream, version, 1000, Upto::Head).await?;
        if batch.is_empty() {
            if version > kept
                && let Some(cache) = cache
            {
                cache.put(stream, version, state.clone());
            }
            drop(first);
            return Ok((state, version));
        }
        for e in &batch {
            state = evolve(state, &e.decode()?);
            version = e.stream_version;
        }
    }
}

/// The role recorded in the envelope: the first (in role order) of the actor's roles whose scope
/// covers the target, so the same actor on the same target is always recorded the same way.
pub fn acting_role(actor: &Actor, target: &Target) -> Role {
    let mut roles: Vec<Role> = actor.grants.iter().filter(|g| g.scope.covers(target)).map(|g| g.role).collect();
    roles.sort();
    roles.first().copied().or_else(|| actor.grants.first().map(|g| g.role)).unwrap_or(Role::PlatformAdmin)
}

/// Appends decided events, turning a version conflict into "try again" when the caller allows it.
async fn append<S: EventStore + ?Sized>(
    store: &S,
    meta: &Meta,
    tenant: &TenantId,
    stream: String,
    version: u64,
    role: Role,
    events: Vec<Event>,
) -> Result<Option<Executed>, CommandError> {
    let n = events.len();
    // A command that changes nothing appends nothing (and passes no gate), with or without an
    // idempotency key:
    // repeating a no-op is still a no-op.
    if n == 0 {
        let outcome =
            AppendOutcome { first_position: 0, last_position: 0, stream_version: version, deduplicated: false };
        return Ok(Some(Executed { outcome, events: 0 }));
    }
    let new_events = new_events(meta, role, &events);
    let expected = ExpectedVersion::Exact(version);
    let req = AppendRequest {
        tenant: tenant.clone(),
        stream,
        expected,
        events: new_events,
        idempotency_key: meta.idempotency_key.clone(),
    };
    if let Some(gate) = &meta.gate {
        gate.pass().await?;
    }
    match store.append(req).await {
        Ok(outcome) => Ok(Some(Executed { events: if outcome.deduplicated { 0 } else { n }, outcome })),
        Err(StoreError::WrongExpectedVersion { .. }) if meta.expected_version.is_none() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A command sent again with the `Idempotency-Key` of an append that happened (its answer lost,
/// say, to a crash) is that append, not a new decision: deciding again on the state it produced
/// could refuse it ("already exists") although it succeeded. The same key on another stream is
/// refused as reused.
async fn replayed<S: EventStore + ?Sized>(
    store: &S,
    meta: &Meta,
    tenant: &TenantId,
    stream: &str,
) -> Result<Option<Executed>, CommandError> {
    let Some(key) = &meta.idempotency_key else { return Ok(None) };
    match store.idempotent(tenant, key).await? {
        Some((used, outcome)) if used == stream => Ok(Some(Executed { outcome, events: 0 })),
        Some((used, _)) => Err(StoreError::IdempotencyKeyReused { key: key.clone(), stream: used }.into()),
        None => Ok(None),
    }
}

/// The envelopes of decided events: fresh time-ordered ids, the command's time, actor and role,
/// and its correlation (a fresh one when the caller gave none) shared by all of them.
pub(crate) fn new_events(meta: &Meta, role: Role, events: &[Event]) -> Vec<NewEvent> {
    let correlation = meta.correlation_id.clone().unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    events
        .iter()
        .map(|e| {
            NewEvent::from_event(
                e,
                uuid::Uuid::now_v7().to_string(),
                meta.at,
                ActorRef { user_id: meta.actor.user_id.clone(), role },
                correlation.clone(),
                meta.causation_id.clone(),
            )
        })
        .collect()
}

/// Checks the client's expected version against the loaded one before deciding.
fn check_expected(meta: &Meta, stream: &str, version: u64) -> Result<(), CommandError> {
    match meta.expected_version {
        Some(v) if v != version => Err(StoreError::WrongExpectedVersion {
            stream: stream.to_owned(),
            expected: ExpectedVersion::Exact(v),
            actual: version,
        }
        .into()),
        _ => Ok(()),
    }
}

/// Runs decide-and-append with retries on concurrent writes. `decide` loads whatever it needs and
/// returns (stream version it decided on, events).
macro_rules! run {
    ($store:expr, $meta:expr, $tenant:expr, $stream:expr, $target:expr, |$version:ident| $decide:expr) => {{
        let stream: String = $stream;
        let role = acting_role(&$meta.actor, &$target);
        let mut attempt = 0;
        loop {
            if attempt == 0
                && let Some(done) = replayed($store, $meta, $tenant, &stream).await?
            {
                break Ok(done);
            }
            let ($version, events): (u64, Vec<Event>) = $decide;
            check_expected($meta, &stream, $version)?;
            if let Some(done) = append($store, $meta, $tenant, stream.clone(), $version, role, events).await? {
                break Ok(done);
            }
            attempt += 1;
            if attempt < RETRIES {
                tokio::time::sleep(backoff(attempt)).await;
            }
            if attempt >= RETRIES {
                break Err(CommandError::Store(StoreError::WrongExpectedVersion {
                    stream: stream.clone(),
                    expected: ExpectedVersion::Exact($version),
                    actual: $store.stream_version(&stream).await?,
                }));
            }
        }
    }};
}

pub async fn load_district<S: EventStore + ?Sized>(
    store: &S,
    d: &DistrictId,
) -> Result<(district::DistrictState, u64), CommandError> {
    load(store, &stream::district(d), district::DistrictState::default(), district::evolve).await
}

pub async fn load_tenant<S: EventStore + ?Sized>(
    store: &S,
    t: &TenantId,
) -> Result<(tenant::TenantState, u64), CommandError> {
    load(store, &stream::tenant(t), tenant::TenantState::default(), tenant::evolve).await
}

pub async fn load_inspection<S: EventStore + ?Sized>(
    store: &S,
    t: &TenantId,
    i: &InspectionId,
) -> Result<(inspection::InspectionState, u64), CommandError> {
    load(store, &stream::inspection(t, i), inspection::InspectionState::default(), inspection::evolve).await
}

pub async fn platform<S: EventStore + ?Sized>(
    store: &S,
    meta: &Meta,
    cmd: platform::PlatformCommand,
) -> Result<Executed, CommandError> {
    let cmd = Command::new(meta.actor.clone(), meta.at, cmd);
    let t = TenantId::platform();
    run!(store, meta, &t, stream::platform(), Target::platform(), |version| {
        let (state, version) =
            load(store, &stream::platform(), platform::PlatformState::default(), platform::evolve).await?;
        (version, platform::decide(&state, &cmd)?)
    })
}

/// Sets the security policy (`_platform/security-policy`, on the platform's chain).
pub async fn security_policy<S: EventStore + ?Sized>(
    store: &S,
    meta: &Meta,
    cmd: ducha_events::security::SecurityPolicyCommand,
) -> Result<Executed, CommandError> {
    use ducha_events::security;
    let cmd = Command::new(meta.actor.clone(), meta.at, cmd);
    let t = TenantId::platform();
    let s = stream::security_policy();
    run!(store, meta, &t, s.clone(), Target::platform(), |version| {
        let (state, version) = load(store, &s, security::SecurityPolicyState::default(), security::evolve).await?;
        (version, security::decide(&state, &cmd)?)
    })
}

pub async fn district<S: EventStore + ?Sized>(
    store: &S,
    meta: &Meta,
    d: &DistrictId,
    cmd: district::DistrictCommand,
) -> Result<Executed, CommandError> {
    let cmd = Command::new(meta.actor.clone(), meta.at, cmd);
    let t = TenantId::platform();
    run!(store, meta, &t, stream::district(d), Target::district(d), |version| {
        let (state, version) = load_district(store, d).await?;
        (version, district::decide(&state, &cmd)?)
    })
}

pub async fn tenant<S: EventStore + ?Sized>(
    store: &S,
    meta: &Meta,
    d: &DistrictId,
    t: &TenantId,
    cmd: tenant::TenantCommand,
) -> Result<Executed, CommandError> {
    let cmd = Command::new(meta.actor.clone(), meta.at, cmd);
    run!(store, meta, t, stream::tenant(t), Target::tenant(d, t), |version| {
        let (district_state, _) = load_district(store, d).await?;
        let (state, version) = load_tenant(store, t).await?;
        (version, tenant::decide(&district_state, &state, &cmd)?)
    })
}

pub async fn inspection<S: EventStore + ?Sized>(
    store: &S,
    meta: &Meta,
    t: &TenantId,
    i: &InspectionId,
    cmd: inspection::InspectionCommand,
) -> Result<Executed, CommandError> {
    let cmd = Command::new(meta.actor.clone(), meta.at, cmd);
    let (tenant_state, _) = load_tenant(store, t).await?;
    let target = tenant_state.target().unwrap_or_default();
    run!(store, meta, t, stream::inspection(t, i), target, |version| {
        let (state, version) = load_inspection(store, t, i).await?;
        (version, inspection::decide(&tenant_state, &state, &cmd)?)
    })
}

pub async fn finding<S: EventStore + ?Sized>(
    store: &S,
    meta: &Meta,
    t: &TenantId,
    i: &InspectionId,
    f: &FindingId,
    cmd: finding::FindingCommand,
) -> Result<Executed, CommandError> {
    let cmd = Command::new(meta.actor.clone(), meta.at, cmd);
    let (tenant_state, _) = load_tenant(store, t).await?;
    let (inspection_state, _) = load_inspection(store, t, i).await?;
    let community = inspection_state.finding(f).and_then(|r| r.community_id.clone());
    let target = tenant_state.community_target(community.as_ref()).unwrap_or_default();
    run!(store, meta, t, stream::finding(t, f), target, |version| {
        let (state, version) =
            load(store, &stream::finding(t, f), finding::FindingState::default(), finding::evolve).await?;
        (version, finding::decide(&tenant_state, &inspection_state, f, &state, &cmd)?)
    })
}

pub async fn self_inspection<S: EventStore + ?Sized>(
    store: &S,
    meta: &Meta,
    t: &TenantId,
    s: &SelfInspectionId,
    cmd: self_inspection::SelfInspectionCommand,
) -> Result<Executed, CommandError> {
    let cmd = Command::new(meta.actor.clone(), meta.at, cmd);
    let (tenant_state, _) = load_tenant(store, t).await?;
    let self_inspection::SelfInspectionCommand::Submit { community_id, .. } = &cmd.body;
    let target = tenant_state.community_target(Some(community_id)).unwrap_or_default();
    run!(store, meta, t, stream::self_inspection(t, s), target, |version| {
        let (state, version) = load(
            store,
            &stream::self_inspection(t, s),
            self_inspection::SelfInspectionState::default(),
            self_inspection::evolve,
        )
        .await?;
        (version, self_inspection::decide(&tenant_state, &state, &cmd)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::{SqliteOptions, SqliteStore, Synchronous};
    use ducha_events::ids::CommunityId;

    /// The fold of a stream from its first event, without the kept states.
    async fn fresh_tenant(store: &SqliteStore, t: &TenantId) -> (tenant::TenantState, u64) {
        let (mut state, mut version) = (tenant::TenantState::default(), 0);
        for e in store.read_stream(&stream::tenant(t), 0, 100_000, Upto::Head).await.unwrap() {
            state = tenant::evolve(state, &e.decode().unwrap());
            version = e.stream_version;
        }
        (state, version)
    }

    /// A kept state is only a starting point: what was appended after it (here by a command, which
    /// does not update the kept state; on another replica it would not even be seen) is read and
    /// folded on the next load, which then equals a fold from the first event.
    #[tokio::test]
    async fn a_kept_state_is_extended_by_what_was_appended_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteOptions { synchronous: Synchronous::Off, read_only: false, ..SqliteOptions::default() };
        let store = SqliteStore::open(&dir.path().join("ducha.db"), opts).unwrap();
        crate::demo::load(&store).await.unwrap();
        let (d, t) = (DistrictId::parse("xxq").unwrap(), TenantId::parse("xxjd").unwrap());
        let name = stream::tenant(&t);

        let (first, v1) = load_tenant(&store, &t).await.unwrap();
        assert_eq!((first.clone(), v1), fresh_tenant(&store, &t).await);
        let kept = store.states().unwrap();
        assert_eq!(kept.get::<tenant::TenantState>(&name).map(|(_, v)| v), Some(v1));

        let model = crate::projector::rebuild(&store, |_| {}).await.unwrap();
        let admin = model.directory().user_by_username("xx-admin").unwrap().actor();
        for (n, c) in ["xinhua", "minzhu"].into_iter().enumerate() {
            let cmd = tenant::TenantCommand::AddCommunity {
                community_id: CommunityId::parse(c).unwrap(),
                name: format!("{c}社区"),
            };
            let done = tenant(&store, &Meta::new(admin.clone(), chrono::Utc::now()), &d, &t, cmd).await.unwrap();
            assert_eq!(done.outcome.stream_version, v1 + n as u64 + 1);
        }
        // Appended straight to the store too, as another writer would.
        let extra: Event = ducha_events::event::CommunityAdded {
            community_id: CommunityId::parse("tuanjie").unwrap(),
            name: "团结社区".into(),
        }
        .into();
        let meta = Meta::new(admin, chrono::Utc::now());
        let events = new_events(&meta, Role::SubdistrictAdmin, &[extra]);
        store
            .append(AppendRequest {
                tenant: t.clone(),
                stream: name.clone(),
                expected: ExpectedVersion::Exact(v1 + 2),
                events,
                idempotency_key: None,
            })
            .await
            .unwrap();

        let (state, version) = load_tenant(&store, &t).await.unwrap();
        assert_eq!(version, v1 + 3);
        assert_ne!(state, first);
        assert_eq!((state, version), fresh_tenant(&store, &t).await);
        assert_eq!(kept.get::<tenant::TenantState>(&name).map(|(_, v)| v), Some(v1 + 3));
    }

    /// After a start, commands that need the same stream at once fold it from its first event
    /// once: the others wait and start from the state it kept. Each answer equals a fresh fold.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_first_loads_of_a_stream_fold_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteOptions { synchronous: Synchronous::Off, read_only: false, ..SqliteOptions::default() };
        let path = dir.path().join("ducha.db");
        let (t, name, v) = {
            let store = SqliteStore::open(&path, opts.clone()).unwrap();
            crate::demo::load(&store).await.unwrap();
            let t = TenantId::parse("xxjd").unwrap();
            let name = stream::tenant(&t);
            let (_, v) = fresh_tenant(&store, &t).await;
            let model = crate::projector::rebuild(&store, |_| {}).await.unwrap();
            let admin = model.directory().user_by_username("xx-admin").unwrap().actor();
            let meta = Meta::new(admin, chrono::Utc::now());
            // A long tenant stream, so that a fold from the first event takes a while.
            let added: Vec<Event> = (0..3_000)
                .map(|n| {
                    ducha_events::event::CommunityAdded {
                        community_id: CommunityId::parse(format!("c{n}")).unwrap(),
                        name: format!("第{n}社区"),
                    }
                    .into()
                })
                .collect();
            let events = new_events(&meta, Role::SubdistrictAdmin, &added);
            let req = AppendRequest {
                tenant: t.clone(),
                stream: name.clone(),
                expected: ExpectedVersion::Exact(v),
                events,
                idempotency_key: None,
            };
            store.append(req).await.unwrap();
            (t, name, v + 3_000)
        };
        // A store opened afresh keeps nothing, as after a start.
        let store = std::sync::Arc::new(SqliteStore::open(&path, opts).unwrap());
        let kept = store.states().unwrap();
        assert_eq!((kept.len(), kept.folds_from_start()), (0, 0));
        let expected = fresh_tenant(&store, &t).await;
        assert_eq!(expected.1, v);
        let loads: Vec<_> = (0..16)
            .map(|_| {
                let (store, t) = (store.clone(), t.clone());
                tokio::spawn(async move { load_tenant(store.as_ref(), &t).await.unwrap() })
            })
            .collect();
        for l in loads {
            assert_eq!(l.await.unwrap(), expected);
        }
        let kept = store.states().unwrap();
        assert_eq!(kept.folds_from_start(), 1, "16 loads at once folded the stream from its start once");
        assert_eq!(kept.get::<tenant::TenantState>(&name).map(|(_, v)| v), Some(v));
        assert_eq!(kept.folding(), 0, "no place is left behind once the folds are done");
    }
}
