//! Event counters for auditors (纪检 / 巡察): per tenant and per stream, with the first and last
//! times and who acted last. Counters only — the events themselves stay in the store, where the
//! auditor API reads them and checks the chain.

use super::ReadModel;
use crate::authz::Role;
use crate::envelope::{ActorRef, RecordedEvent};
use crate::ids::{TenantId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Counter {
    events: u64,
    first_at: String,
    last_at: String,
    last_actor: ActorRef,
    last_position: u64,
}

impl Counter {
    fn new(e: &RecordedEvent) -> Self {
        Counter {
            events: 1,
            first_at: e.occurred_at.clone(),
            last_at: e.occurred_at.clone(),
            last_actor: e.actor.clone(),
            last_position: e.position,
        }
    }

    /// Allocation-free in the common case: times are copied into the existing buffer and the actor
    /// is replaced only when it changes.
    fn bump(&mut self, e: &RecordedEvent) {
        self.events += 1;
        self.last_at.clear();
        self.last_at.push_str(&e.occurred_at);
        if self.last_actor.user_id != e.actor.user_id {
            self.last_actor.user_id = e.actor.user_id.clone();
        }
        self.last_actor.role = e.actor.role;
        self.last_position = e.position;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StreamCounter {
    counter: Counter,
    version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TenantCounter {
    counter: Counter,
    last_seq: u64,
    by_type: BTreeMap<String, u64>,
    streams: HashMap<String, StreamCounter>,
}

/// The counters of every tenant (the platform's own streams under the `_platform` pseudo-tenant).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuditLog {
    tenants: BTreeMap<TenantId, TenantCounter>,
}

impl AuditLog {
    pub(crate) fn record(&mut self, e: &RecordedEvent) {
        let Some(t) = self.tenants.get_mut(&e.tenant) else {
            let t = TenantCounter {
                counter: Counter::new(e),
                last_seq: e.tenant_seq,
                by_type: BTreeMap::from([(e.event_type.clone(), 1)]),
                streams: HashMap::from([(
                    e.stream.clone(),
                    StreamCounter { counter: Counter::new(e), version: e.stream_version },
                )]),
            };
            self.tenants.insert(e.tenant.clone(), t);
            return;
        };
        t.counter.bump(e);
        t.last_seq = e.tenant_seq;
        match t.by_type.get_mut(e.event_type.as_str()) {
            Some(n) => *n += 1,
            None => {
                t.by_type.insert(e.event_type.clone(), 1);
            }
        }
        match t.streams.get_mut(e.stream.as_str()) {
            Some(s) => {
                s.counter.bump(e);
                s.version = e.stream_version;
            }
            None => {
                t.streams
                    .insert(e.stream.clone(), StreamCounter { counter: Counter::new(e), version: e.stream_version });
            }
        }
    }

    /// The tenants that have any event, with their event counts.
    pub fn tenants(&self) -> impl Iterator<Item = (&TenantId, u64)> {
        self.tenants.iter().map(|(id, t)| (id, t.counter.events))
    }
}

/// Who acted, with the role's Chinese name.
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSummary {
    pub stream: String,
    pub events: u64,
    /// The stream's version after its last event.
    pub version: u64,
    pub first_at: String,
    pub last_at: String,
    pub last_actor: ActorView,
    pub last_position: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeCount {
    pub event_type: String,
    pub count: u64,
}

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
    /// The counters of one tenant (empty for a tenant with no events).
    pub fn audit(&self, tenant: &TenantId) -> AuditSummary {
        let Some(t) = self.audit_log().tenants.get(tenant) else {
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
                first_at: s.counter.first_at.clone(),
                last_at: s.counter.last_at.clone(),
                last_actor: ActorView::of(&s.counter.last_actor),
                last_position: s.counter.last_position,
            })
            .collect();
        streams.sort_by(|a, b| a.stream.cmp(&b.stream));
        AuditSummary {
            tenant_id: tenant.clone(),
            events: t.counter.events,
            last_tenant_seq: t.last_seq,
            first_at: Some(t.counter.first_at.clone()),
            last_at: Some(t.counter.last_at.clone()),
            last_actor: Some(ActorView::of(&t.counter.last_actor)),
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
        assert_eq!(f1.first_at, "2023-12-05T02:00:00.000000Z");
        assert_eq!(f1.last_at, "2024-03-20T02:00:00.000000Z");
        assert_eq!(f1.last_actor.role, Role::SubdistrictAdmin);
        let i1 = a.streams.iter().find(|s| s.stream == "t1/inspection-i1").unwrap();
        assert_eq!(i1.last_actor.user_id.as_str(), "admin1", "the conclusion, after the inspectors' records");
        assert_eq!(a.streams.iter().map(|s| s.events).sum::<u64>(), a.events);

        // Isolation: t2's and the platform's events are counted apart.
        assert_eq!(m.audit(&tid("t2")).events, log.iter().filter(|(e, _)| e.tenant.as_str() == "t2").count() as u64);
        assert_eq!(m.audit(&TenantId::platform()).streams.len(), 2);
        assert_eq!(m.audit(&tid("nope")).events, 0);
        assert_eq!(m.audit_log().tenants().map(|(_, n)| n).sum::<u64>(), log.len() as u64);
    }
}
