//! Event counters for auditors (纪检 / 巡察): per tenant and per stream, with the first and last
//! times and who acted last. Counters only — the events themselves stay in the store, where the
//! auditor API reads them and checks the chain.

use super::{FxHashMap, ReadModel, format_micros, micros_of};
use crate::authz::Role;
use crate::envelope::{ActorRef, RecordedEvent};
use crate::ids::{TenantId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Counts and bounds, kept inline (no heap per stream): times as microseconds since the epoch, the
/// last actor as an index into the tenant's actor table. A rebuild touches one small record per
/// event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
struct Counter {
    events: u64,
    first_at: Option<i64>,
    last_at: Option<i64>,
    last_actor: u32,
    last_position: u64,
}

impl Counter {
    fn new(at: Option<i64>, actor: u32, position: u64) -> Self {
        Counter { events: 1, first_at: at, last_at: at, last_actor: actor, last_position: position }
    }

    fn bump(&mut self, at: Option<i64>, actor: u32, position: u64) {
        self.events += 1;
        self.first_at = self.first_at.or(at);
        self.last_at = at.or(self.last_at);
        self.last_actor = actor;
        self.last_position = position;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct StreamCounter {
    counter: Counter,
    version: u64,
}

/// One tenant's counters (kept in its [`super::TenantShare`], packed with it when cold).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(super) struct TenantCounter {
    counter: Counter,
    last_seq: u64,
    by_type: BTreeMap<String, u64>,
    streams: FxHashMap<String, StreamCounter>,
    /// Every (user, role) that acted, interned.
    actors: Vec<ActorRef>,
}

impl TenantCounter {
    fn actor(&mut self, a: &ActorRef) -> u32 {
        // Consecutive events mostly share their actor.
        let last = self.counter.last_actor as usize;
        if self.actors.get(last).is_some_and(|x| x == a) {
            return last as u32;
        }
        match self.actors.iter().position(|x| x == a) {
            Some(n) => n as u32,
            None => {
                self.actors.push(a.clone());
                (self.actors.len() - 1) as u32
            }
        }
    }

    pub(super) fn record(&mut self, e: &RecordedEvent) {
        let at = micros_of(&e.occurred_at);
        let actor = self.actor(&e.actor);
        self.counter.bump(at, actor, e.position);
        self.last_seq = e.tenant_seq;
        match self.by_type.get_mut(e.event_type.as_str()) {
            Some(n) => *n += 1,
            None => {
                self.by_type.insert(e.event_type.clone(), 1);
            }
        }
        match self.streams.get_mut(e.stream.as_str()) {
            Some(s) => {
                s.counter.bump(at, actor, e.position);
                s.version = e.stream_version;
            }
            None => {
                let s = StreamCounter { counter: Counter::new(at, actor, e.position), version: e.stream_version };
                self.streams.insert(e.stream.clone(), s);
            }
        }
    }
}

/// Every tenant's event count and last position (the platform's own streams under the
/// `_platform` pseudo-tenant): small and always resident, unlike the tenants' full counters.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuditLog {
    tenants: BTreeMap<TenantId, (u64, u64)>,
}

impl AuditLog {
    pub(crate) fn record(&mut self, e: &RecordedEvent) {
        match self.tenants.get_mut(&e.tenant) {
            Some((events, last)) => {
                *events += 1;
                *last = e.position;
            }
            None => {
                self.tenants.insert(e.tenant.clone(), (1, e.position));
            }
        }
    }

    /// The position of the tenant's last event (0 when it has none).
    pub fn last_position(&self, tenant: &TenantId) -> u64 {
        self.tenants.get(tenant).map_or(0, |t| t.1)
    }

    /// The tenants that have any event, with their event counts.
    pub fn tenants(&self) -> impl Iterator<Item = (&TenantId, u64)> {
        self.tenants.iter().map(|(id, t)| (id, t.0))
    }
}

/// Who acted, with the role's Chinese name.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorView {
    pub user_id: UserId,
    pub role: Role,
    pub role_name: String,
}

impl ActorView {
    fn of(a: &ActorRef) -> Self {
        ActorView { user_id: a.user_id.clone(), role: a.role, role_name: a.role.name_zh().to_owned() }
    }
    fn nth(actors: &[ActorRef], n: u32) -> Option<Self> {
        actors.get(n as usize).map(ActorView::of)
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSummary {
    pub stream: String,
    pub events: u64,
    /// The stream's version after its last event.
    pub version: u64,
    pub first_at: Option<String>,
    pub last_at: Option<String>,
    pub last_actor: Option<ActorView>,
    pub last_position: u64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeCount {
    pub event_type: String,
    pub count: u64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditSummary {
    pub tenant_id: TenantId,
    pub events: u64,
    /// The tenant's chain length (last `tenant_seq` seen).
    pub last_tenant_seq: u64,
    pub first_at: Option<String>,
    pub last_at: Option<String>,
    pub last_actor: Option<ActorView>,
    /// By type name.
    pub by_type: Vec<TypeCount>,
    /// By stream name.
    pub streams: Vec<StreamSummary>,
}

impl ReadModel {
    /// A stream's version after its last event (0 for a stream with none): one lookup, where
    /// [`Self::audit`] lists every stream of the tenant.
    pub fn stream_version(&self, tenant: &TenantId, stream: &str) -> u64 {
        self.tenants.get(tenant).and_then(|s| s.get().audit.streams.get(stream)).map_or(0, |s| s.version)
    }

    /// The counters of one tenant (empty for a tenant with no events).
    pub fn audit(&self, tenant: &TenantId) -> AuditSummary {
        let Some(t) = self.tenants.get(tenant).map(|s| &s.get().audit) else {
            return AuditSummary {
                tenant_id: tenant.clone(),
                events: 0,
                last_tenant_seq: 0,
                first_at: None,
                last_at: None,
                last_actor: None,
                by_type: Vec::new(),
                streams: Vec::new(),
            };
        };
        let mut streams: Vec<StreamSummary> = t
            .streams
            .iter()
            .map(|(name, s)| StreamSummary {
                stream: name.clone(),
                events: s.counter.events,
                version: s.version,
                first_at: s.counter.first_at.and_then(format_micros),
                last_at: s.counter.last_at.and_then(format_micros),
                last_actor: ActorView::nth(&t.actors, s.counter.last_actor),
                last_position: s.counter.last_position,
            })
            .collect();
        streams.sort_by(|a, b| a.stream.cmp(&b.stream));
        AuditSummary {
            tenant_id: tenant.clone(),
            events: t.counter.events,
            last_tenant_seq: t.last_seq,
            first_at: t.counter.first_at.and_then(format_micros),
            last_at: t.counter.last_at.and_then(format_micros),
            last_actor: ActorView::nth(&t.actors, t.counter.last_actor),
            by_type: t.by_type.iter().map(|(k, v)| TypeCount { event_type: k.clone(), count: *v }).collect(),
            streams,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn audit_counts_per_tenant_stream_and_type() {
        let log = sample_log();
        let m = fold(&log);
        let a = m.audit(&tid("t1"));
        let t1_events = log.iter().filter(|(e, _)| e.tenant.as_str() == "t1").count() as u64;
        assert_eq!((a.events, a.last_tenant_seq), (t1_events, t1_events));
        assert_eq!(a.first_at.as_deref(), Some("2023-01-01T00:00:00.000000Z"));
        assert_eq!(a.last_at.as_deref(), Some("2023-11-11T02:00:00.000000Z"), "the last t1 event is s2's report");
        let last = a.last_actor.unwrap();
        assert_eq!(
            (last.user_id.as_str(), last.role, last.role_name.as_str()),
            ("off1", Role::CommunityOfficer, "社区联络员")
        );
        let count = |t: &str| a.by_type.iter().find(|c| c.event_type == t).map_or(0, |c| c.count);
        assert_eq!((count("FindingRecorded"), count("RectificationAssigned"), count("CommunityAdded")), (5, 3, 6));
        assert_eq!(a.by_type.iter().map(|c| c.count).sum::<u64>(), a.events);

        let f1 = a.streams.iter().find(|s| s.stream == "t1/finding-f1").unwrap();
        assert_eq!((f1.events, f1.version), (4, 4));
        assert_eq!(f1.first_at.as_deref(), Some("2023-12-05T02:00:00.000000Z"));
        assert_eq!(f1.last_at.as_deref(), Some("2024-03-20T02:00:00.000000Z"));
        assert_eq!(f1.last_actor.as_ref().unwrap().role, Role::SubdistrictAdmin);
        let i1 = a.streams.iter().find(|s| s.stream == "t1/inspection-i1").unwrap();
        assert_eq!(
            i1.last_actor.as_ref().unwrap().user_id.as_str(),
            "admin1",
            "the conclusion, after the inspectors' records"
        );
        assert_eq!(a.streams.iter().map(|s| s.events).sum::<u64>(), a.events);

        // Isolation: t2's and the platform's events are counted apart.
        assert_eq!(m.audit(&tid("t2")).events, log.iter().filter(|(e, _)| e.tenant.as_str() == "t2").count() as u64);
        assert_eq!(m.audit(&TenantId::platform()).streams.len(), 2);
        assert_eq!(m.audit(&tid("nope")).events, 0);
        for s in &a.streams {
            assert_eq!(m.stream_version(&tid("t1"), &s.stream), s.version, "{}", s.stream);
        }
        assert_eq!(m.stream_version(&tid("t1"), "t1/finding-nope"), 0);
        assert_eq!(m.stream_version(&tid("nope"), "nope/tenant"), 0);
        assert_eq!(m.audit_log().tenants().map(|(_, n)| n).sum::<u64>(), log.len() as u64);
    }
}
