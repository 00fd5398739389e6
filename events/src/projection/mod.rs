//! Read models as pure folds over the log (GUIDE §3 rule 4).
//!
//! One [`ReadModel`] covers every tenant: [`ReadModel::apply`] takes each recorded event (already
//! decoded by the caller) in global order, and the queries read it. The model keeps facts only
//! (dates, statuses, texts the views show); everything derived — warning levels, rates, averages,
//! scores — is computed at query time from `today` and a [`WarningPolicy`], so a checkpoint never goes
//! stale and an "as of" view is the same fold over a prefix of the log.
//!
//! The map:
//! - [`directory`]: districts, tenants (communities, categories, checklists) and users, for login;
//! - [`facts`]: what each tenant's inspections, findings and self-inspections amount to so far;
//! - [`warning`]: the 红黄蓝绿 rule;
//! - [`dashboard`], [`inspection_detail`], [`ledger`] (整改台账), [`scorecard`], [`rollup`], [`audit`]: the queries.
//!
//! `apply` is cheap by design (rebuilds run at more than a million events a second): every lookup is
//! by key, nothing is scanned or cloned wholesale per event, and the audit counters keep no payloads.

pub mod audit;
pub mod checkpoint;
pub mod dashboard;
pub mod directory;
pub mod facts;
pub mod held;
pub mod inspection_detail;
pub mod ledger;
pub mod reminders;
pub mod rollup;
pub mod scorecard;
pub mod warning;

#[cfg(test)]
mod bench;
#[cfg(test)]
pub(crate) mod testkit;

pub use audit::{ActorView, AuditLog, AuditSummary, StreamSummary, TypeCount};
pub use dashboard::{CategoryCount, MonthTrend, StatusCount, TenantDashboard, WarningCounts};
pub use directory::{
    CategoryEntry, ChecklistEntry, CommunityEntry, Directory, DistrictEntry, OwnerScope, TenantEntry, TermEntry,
    UserEntry,
};
pub use facts::{
    AchievementFact, Conclusion, DeductionFact, Dismissal, FieldworkFact, FindingFacts, InspectionFacts,
    InspectionStatus, IssuedReportFact, RectificationFacts, RectificationStatus, ReminderNote, SelfInspectionFact,
    TenantFacts,
};
pub use held::{Held, Packed, Take};
pub use inspection_detail::{
    AchievementView, CommunityFieldwork, CommunityRef, CommunityScore, FieldworkView, FindingView, InspectionDetail,
    IssuedReportView, ItemScore, SelfInspectionRef, TeamMemberView, WHOLE_SUBDISTRICT,
};
pub use ledger::{LEDGER_COLUMNS, LedgerFilter, LedgerPage, LedgerRow, LedgerSort, Page, SourceRef};
pub use rollup::{
    CategoryRollup, CommunityRollup, DistrictRollup, MonthRollup, RankEntry, RollupMetrics, RollupQuery, RollupSource,
    SubdistrictRollup, TenantRollup, YearRollup,
};
pub use scorecard::CommunityScorecard;
pub use warning::{Schedule, WarningLevel, WarningPolicy, warning_level};

use crate::envelope::RecordedEvent;
use crate::event::Event;
use crate::ids::TenantId;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Every read model, for every tenant, as of [`ReadModel::position`].
///
/// It is checkpointed in parts ([`checkpoint`]) and compared with a fresh rebuild, hence
/// `Serialize`, `Deserialize` and `PartialEq`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReadModel {
    position: u64,
    directory: Directory,
    /// Each tenant's share, [`Held`]: shared and copied on write, so a checkpoint takes the tenants
    /// as they are in microseconds and encodes them while the fold goes on (a tenant written to
    /// meanwhile is copied once, the others never); packed when the server's memory budget says so
    /// and unpacked when read again.
    tenants: BTreeMap<TenantId, Held<TenantShare>>,
    /// Each tenant's event count and last position, always resident (the roll-up asks every
    /// tenant's on every request).
    audit: AuditLog,
}

/// One tenant's share of the model: its facts (none for a tenant that only has directory or
/// platform events) and its audit counters.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TenantShare {
    facts: Option<TenantFacts>,
    audit: audit::TenantCounter,
}

impl TenantShare {
    pub fn facts(&self) -> Option<&TenantFacts> {
        self.facts.as_ref()
    }

    /// Folds one event of this share's tenant (in the tenant's order): its audit counters, and its
    /// facts unless the event is about the directory.
    pub fn apply(&mut self, envelope: &RecordedEvent, event: &Event) {
        self.audit.record(envelope);
        if Directory::handles(event) {
            return;
        }
        match &mut self.facts {
            Some(facts) => {
                facts.apply(envelope, event);
            }
            None => {
                let mut facts = TenantFacts::default();
                if facts.apply(envelope, event) {
                    self.facts = Some(facts);
                }
            }
        }
    }
}

impl ReadModel {
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds one event. Events must come in global order; an event at or before [`Self::position`]
    /// has been applied already and is ignored, so a runner may safely re-deliver after a checkpoint.
    pub fn apply(&mut self, envelope: &RecordedEvent, event: &Event) {
        if !self.apply_head(envelope, event) {
            return;
        }
        if let Some(share) = self.tenants.get_mut(&envelope.tenant) {
            share.make_mut().apply(envelope, event);
        }
    }

    /// The first pass of the fold in two passes: folds the event into everything but the tenants'
    /// shares (the position, the audit log, the directory) and makes sure its tenant has a share
    /// (empty until set). False when the event was applied already.
    ///
    /// The fold in two passes is for a model that must not hold every tenant unpacked while it is
    /// folded (the server's memory budget): every event through `apply_head`, then each tenant's
    /// share folded from that tenant's events alone ([`TenantShare::apply`]) and set
    /// ([`Self::set_share`]). A share depends on its own tenant's events only, so the result is
    /// the model [`Self::apply`] folds (tested at every cut of the sample log).
    pub fn apply_head(&mut self, envelope: &RecordedEvent, event: &Event) -> bool {
        if self.position > 0 && envelope.position <= self.position {
            return false;
        }
        self.position = envelope.position;
        self.audit.record(envelope);
        if !self.tenants.contains_key(&envelope.tenant) {
            self.tenants.insert(envelope.tenant.clone(), Held::default());
        }
        self.directory.apply(envelope, event);
        true
    }

    /// Replaces the share of a tenant the model knows (second pass of the fold in two passes, see
    /// [`Self::apply_head`]); false, and nothing changes, for a tenant it does not know.
    pub fn set_share(&mut self, tenant: &TenantId, share: Held<TenantShare>) -> bool {
        match self.tenants.get_mut(tenant) {
            Some(held) => {
                *held = share;
                true
            }
            None => false,
        }
    }

    /// The global position of the last applied event (0 before any).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Districts, tenants and users (login, `Actor` building, names for the views).
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The raw facts of one tenant (for callers that need more than the views).
    pub fn tenant_facts(&self, tenant: &TenantId) -> Option<&TenantFacts> {
        self.tenants.get(tenant).and_then(|s| s.get().facts.as_ref())
    }

    /// `f` of the raw facts of one tenant, read without being kept when the tenant is packed (for
    /// what reads every tenant in turn: the roll-up, the reminders).
    pub fn with_tenant_facts<R>(&self, tenant: &TenantId, f: impl FnOnce(Option<&TenantFacts>) -> R) -> R {
        match self.tenants.get(tenant) {
            Some(share) => share.peek(|s| f(s.facts.as_ref())),
            None => f(None),
        }
    }

    /// Every tenant's event count and last position (see [`Self::audit`] for one tenant's summary).
    pub fn audit_log(&self) -> &AuditLog {
        &self.audit
    }

    /// Each tenant's share as held (for the server's memory budget and checkpoints).
    pub fn shares(&self) -> impl Iterator<Item = (&TenantId, &Held<TenantShare>)> {
        self.tenants.iter()
    }

    /// One tenant's share, to pack it or drop its unpacked value ([`Held::adopt`], [`Held::evict`]).
    pub fn share_mut(&mut self, tenant: &TenantId) -> Option<&mut Held<TenantShare>> {
        self.tenants.get_mut(tenant)
    }

    /// Facts and directory entry of a tenant; empty facts when nothing was recorded yet.
    pub(crate) fn tenant_parts(&self, tenant: &TenantId) -> (&TenantFacts, Option<&TenantEntry>) {
        static EMPTY: std::sync::OnceLock<TenantFacts> = std::sync::OnceLock::new();
        let facts = self.tenant_facts(tenant).unwrap_or_else(|| EMPTY.get_or_init(TenantFacts::default));
        (facts, self.directory.tenant(tenant))
    }
}

// ---------------------------------------------------------------- helpers shared by the folds

/// The entity a stream is about, from its name (`{tenant}/inspection-{id}` and so on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamKind<'a> {
    Platform,
    District(&'a str),
    Tenant,
    Inspection(&'a str),
    Finding(&'a str),
    SelfInspection(&'a str),
    Other,
}

pub(crate) fn stream_kind(stream: &str) -> StreamKind<'_> {
    let Some((_, rest)) = stream.split_once('/') else { return StreamKind::Other };
    if rest == "tenant" {
        StreamKind::Tenant
    } else if rest == "platform" {
        StreamKind::Platform
    } else if let Some(id) = rest.strip_prefix("inspection-") {
        StreamKind::Inspection(id)
    } else if let Some(id) = rest.strip_prefix("finding-") {
        StreamKind::Finding(id)
    } else if let Some(id) = rest.strip_prefix("self-inspection-") {
        StreamKind::SelfInspection(id)
    } else if let Some(id) = rest.strip_prefix("district-") {
        StreamKind::District(id)
    } else {
        StreamKind::Other
    }
}

/// The Asia/Shanghai calendar date of a stored `occurred_at`.
///
/// The store writes one fixed form (`2023-03-01T00:00:00.000000Z`); that is read directly, which is
/// much cheaper than a general RFC 3339 parse. Any other form goes through [`crate::time::parse`];
/// unreadable text gives `None`.
pub(crate) fn local_date_of(occurred_at: &str) -> Option<NaiveDate> {
    let b = occurred_at.as_bytes();
    if b.len() >= 20 && b[b.len() - 1] == b'Z' && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' {
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            b[r].iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
        };
        if let (Some(y), Some(m), Some(d), Some(h)) = (num(0..4), num(5..7), num(8..10), num(11..13)) {
            let date = NaiveDate::from_ymd_opt(y as i32, m, d)?;
            // UTC+8: from 16:00 UTC on it is already the next day in Shanghai.
            return if h >= 16 { date.succ_opt() } else { Some(date) };
        }
    }
    crate::time::parse(occurred_at).ok().map(|t| crate::time::local_date(&t))
}

/// A month as `YYYYMM` (sorts as time does).
pub(crate) fn month_key(d: NaiveDate) -> u32 {
    (d.year().max(0) as u32) * 100 + d.month()
}

/// `202403` → `2024-03`.
pub(crate) fn month_label(key: u32) -> String {
    format!("{:04}-{:02}", key / 100, key % 100)
}

/// A share, kept as its two counts with the percentage rounded to one decimal.
///
/// `percent` is `None` when nothing is counted in the denominator (shown as "—", never as 0 %).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Rate {
    pub done: u64,
    pub of: u64,
    pub percent: Option<f64>,
}

impl Rate {
    pub fn new(done: u64, of: u64) -> Self {
        let percent = (of > 0).then(|| ((done * 1000 + of / 2) / of) as f64 / 10.0);
        Rate { done, of, percent }
    }
}

/// A fast, non-cryptographic hasher for the fold's indexes (the rustc "Fx" hash).
///
/// The keys are ids and stream names from an authenticated, append-only log, so SipHash's flood
/// resistance buys nothing here, and its cost shows in a million-event rebuild.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl std::hash::Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A `HashMap` with [`FxHasher`].
pub type FxHashMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<FxHasher>>;

/// Microseconds since the Unix epoch of a stored `occurred_at` (fixed form read directly, any
/// other RFC 3339 form parsed), `None` when unreadable.
pub(crate) fn micros_of(occurred_at: &str) -> Option<i64> {
    let b = occurred_at.as_bytes();
    if b.len() == 27 && b[26] == b'Z' && b[4] == b'-' && b[10] == b'T' && b[19] == b'.' {
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            b[r].iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
        };
        if let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(s), Some(us)) =
            (num(0..4), num(5..7), num(8..10), num(11..13), num(14..16), num(17..19), num(20..26))
        {
            return NaiveDate::from_ymd_opt(y as i32, mo, d)
                .and_then(|date| date.and_hms_micro_opt(h, mi, s, us))
                .map(|t| t.and_utc().timestamp_micros());
        }
    }
    crate::time::parse(occurred_at).ok().map(|t| t.timestamp_micros())
}

/// The stored text form of [`micros_of`]'s value.
pub(crate) fn format_micros(micros: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_micros(micros).map(|t| crate::time::format(&t))
}

/// Rounds to two decimals (scores are points with at most two decimals).
pub(crate) fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;

    #[test]
    fn stream_kinds() {
        assert_eq!(stream_kind("t1/inspection-i1"), StreamKind::Inspection("i1"));
        assert_eq!(stream_kind("t1/finding-f-1"), StreamKind::Finding("f-1"));
        assert_eq!(stream_kind("t1/self-inspection-s1"), StreamKind::SelfInspection("s1"));
        assert_eq!(stream_kind("t1/tenant"), StreamKind::Tenant);
        assert_eq!(stream_kind("_platform/platform"), StreamKind::Platform);
        assert_eq!(stream_kind("_platform/district-d1"), StreamKind::District("d1"));
        assert_eq!(stream_kind("nonsense"), StreamKind::Other);
    }

    #[test]
    fn local_dates_are_shanghai_dates() {
        let d = |s: &str| local_date_of(s).map(|d| d.to_string());
        assert_eq!(d("2023-02-28T15:59:59.999999Z").as_deref(), Some("2023-02-28"));
        assert_eq!(d("2023-02-28T16:00:00.000000Z").as_deref(), Some("2023-03-01"));
        assert_eq!(d("2023-12-31T16:00:00.000000Z").as_deref(), Some("2024-01-01"));
        assert_eq!(d("2023-03-01T07:00:00+08:00").as_deref(), Some("2023-03-01"));
        assert_eq!(d("2023-13-01T00:00:00.000000Z"), None);
        assert_eq!(d("garbage"), None);
    }

    #[test]
    fn stored_times_round_trip_through_micros() {
        for s in ["2023-02-28T15:59:59.999999Z", "1999-12-31T00:00:00.000001Z"] {
            assert_eq!(micros_of(s).and_then(format_micros).as_deref(), Some(s));
        }
        assert_eq!(micros_of("2023-03-01T08:00:00+08:00"), micros_of("2023-03-01T00:00:00.000000Z"));
        assert_eq!(micros_of("2023-02-30T00:00:00.000000Z"), None);
    }

    #[test]
    fn fx_hash_spreads_similar_keys() {
        use std::hash::BuildHasher;
        let b = std::hash::BuildHasherDefault::<FxHasher>::default();
        let hashes: std::collections::HashSet<u64> =
            (0..10_000).map(|n| b.hash_one(format!("t1/finding-f{n}"))).collect();
        assert_eq!(hashes.len(), 10_000);
    }

    #[test]
    fn rates_round_to_one_decimal() {
        assert_eq!(Rate::new(1, 3).percent, Some(33.3));
        assert_eq!(Rate::new(2, 3).percent, Some(66.7));
        assert_eq!(Rate::new(3, 3).percent, Some(100.0));
        assert_eq!(Rate::new(0, 0).percent, None);
    }

    #[test]
    fn folding_in_two_halves_equals_folding_at_once() {
        let log = sample_log();
        let whole = fold(&log);
        for cut in [1, log.len() / 3, log.len() / 2, log.len() - 1] {
            let mut first = fold(&log[..cut]);
            // Through a checkpoint, as the runner does.
            let json = serde_json::to_string(&first).unwrap();
            first = serde_json::from_str(&json).unwrap();
            for (e, ev) in &log[cut..] {
                first.apply(e, ev);
            }
            assert_eq!(first, whole, "cut at {cut}");
        }
        assert_eq!(whole.position(), log.len() as u64);
    }

    #[test]
    fn serde_round_trip_equals_the_original() {
        let model = fold(&sample_log());
        let json = serde_json::to_string(&model).unwrap();
        let back: ReadModel = serde_json::from_str(&json).unwrap();
        assert_eq!(back, model);
        assert_eq!(serde_json::to_string(&back).unwrap().len(), json.len());
    }

    #[test]
    fn redelivered_events_are_ignored() {
        let log = sample_log();
        let whole = fold(&log);
        let mut again = whole.clone();
        for (e, ev) in &log[log.len() - 5..] {
            again.apply(e, ev);
        }
        assert_eq!(again, whole);
    }

    /// The fold in two passes (every event into the head, then each tenant's share from its own
    /// events) is the fold, at every cut of the sample log; the shares are set in any order.
    #[test]
    fn the_fold_in_two_passes_is_the_fold_at_every_cut() {
        let log = sample_log();
        let mut seen_directory = 0;
        for cut in 0..=log.len() {
            let events = &log[..cut];
            let mut model = ReadModel::default();
            for (e, ev) in events {
                assert!(model.apply_head(e, ev));
                assert!(!model.apply_head(e, ev), "an event applied already is ignored");
            }
            let tenants: Vec<TenantId> = model.shares().map(|(t, _)| t.clone()).collect();
            for t in tenants.iter().rev() {
                let mut share = TenantShare::default();
                for (e, ev) in events.iter().filter(|(e, _)| &e.tenant == t) {
                    share.apply(e, ev);
                }
                assert!(model.set_share(t, Held::new(share)));
            }
            assert_eq!(model, fold(events), "cut {cut}");
            assert!(!model.set_share(&tid("nobody"), Held::default()), "an unknown tenant gets no share");
            if let Some((e, ev)) = events.last() {
                // What `handles` says is what the directory folds: nothing else changes it.
                let mut directory = Directory::default();
                let before = directory.clone();
                let folded = directory.apply(e, ev);
                assert_eq!(folded, Directory::handles(ev));
                if !folded {
                    assert_eq!(directory, before, "{}", e.event_type);
                } else {
                    seen_directory += 1;
                }
            }
        }
        assert!(seen_directory > 3, "the sample log has directory events: {seen_directory}");
    }
}
