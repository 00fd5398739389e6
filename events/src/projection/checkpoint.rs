//! The read model in parts, for checkpoints: a head (the position, the directory, every tenant's
//! event count and last position, and the order of the parts) and one part per tenant (its
//! [`TenantShare`]: facts and audit counters).
//!
//! Taking the parts shares every tenant with the live model (no copy), so a checkpoint holds the
//! model's lock for microseconds, not for a copy of gigabytes; a tenant still packed since the
//! last checkpoint gives its bytes as they are ([`Take::Packed`]), so a checkpoint encodes only the
//! tenants written to since. Each part is encoded and decoded on its own (the server runs them on
//! every core and loads the parts beyond its memory budget without unpacking them:
//! `ducha::model_checkpoint`).

use super::audit::AuditLog;
use super::{Directory, Held, ReadModel, Take, TenantShare};
use crate::ids::TenantId;
use serde::{Deserialize, Serialize};

/// Everything but the tenants' shares: small next to them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelHead {
    position: u64,
    directory: Directory,
    audit: AuditLog,
    /// The tenant of each part, in the parts' order.
    tenants: Vec<TenantId>,
}

impl ModelHead {
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The tenant of each part, in order.
    pub fn tenants(&self) -> &[TenantId] {
        &self.tenants
    }
}

impl ReadModel {
    /// The model as a head and one part per tenant, sharing the tenants with `self`.
    pub fn parts(&self) -> (ModelHead, Vec<Take<TenantShare>>) {
        let head = ModelHead {
            position: self.position,
            directory: self.directory.clone(),
            audit: self.audit.clone(),
            tenants: self.tenants.keys().cloned().collect(),
        };
        (head, self.tenants.values().map(Held::take).collect())
    }

    /// The model [`ReadModel::parts`] was taken from, given each tenant's share as held (in the
    /// head's order); `None` when the numbers differ.
    pub fn from_parts(head: ModelHead, shares: Vec<Held<TenantShare>>) -> Option<ReadModel> {
        if head.tenants.len() != shares.len() {
            return None;
        }
        Some(ReadModel {
            position: head.position,
            directory: head.directory,
            tenants: head.tenants.into_iter().zip(shares).collect(),
            audit: head.audit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Packed;
    use super::super::testkit::*;
    use super::*;
    use std::sync::Arc;

    /// A share packed as plain JSON (the server compresses it as well).
    #[derive(Debug)]
    struct Json(Vec<u8>);

    impl Packed<TenantShare> for Json {
        fn unpack(&self) -> Option<TenantShare> {
            serde_json::from_slice(&self.0).ok()
        }
        fn bytes(&self) -> &[u8] {
            &self.0
        }
        fn weight(&self) -> usize {
            self.0.len()
        }
    }

    fn pack(take: &Take<TenantShare>) -> Arc<dyn Packed<TenantShare>> {
        match take {
            Take::Value(v) => Arc::new(Json(serde_json::to_vec(&**v).unwrap())),
            Take::Packed(p) => Arc::clone(p),
        }
    }

    /// The model with every share packed, as a checkpoint is loaded.
    fn packed(model: &ReadModel) -> ReadModel {
        let (head, parts) = model.parts();
        let head: ModelHead = serde_json::from_slice(&serde_json::to_vec(&head).unwrap()).unwrap();
        ReadModel::from_parts(head, parts.iter().map(|p| Held::packed(pack(p))).collect()).unwrap()
    }

    /// At every cut of the sample log (two tenants and the platform), the parts encoded one by one
    /// and put together again are the model.
    #[test]
    fn parts_encoded_apart_make_the_same_model_at_every_cut() {
        let log = sample_log();
        for cut in 0..=log.len() {
            let model = fold(&log[..cut]);
            let (head, _) = model.parts();
            assert_eq!(head.position(), model.position());
            assert_eq!(packed(&model), model, "cut {cut}");
        }
        let (head, parts) = fold(&log).parts();
        assert_eq!(head.tenants().iter().map(TenantId::as_str).collect::<Vec<_>>(), ["_platform", "t1", "t2"]);
        assert_eq!(ReadModel::from_parts(head, parts[1..].iter().map(|p| Held::packed(pack(p))).collect()), None);
    }

    /// The parts share the tenants: folding on after taking them copies the tenant written to and
    /// leaves the parts as they were (what a checkpoint being encoded sees).
    #[test]
    fn parts_taken_are_not_changed_by_the_fold_that_goes_on() {
        let log = sample_log();
        let half = log.len() / 2;
        let mut model = fold(&log[..half]);
        let before = model.clone();
        let (head, parts) = model.parts();
        for (e, ev) in &log[half..] {
            model.apply(e, ev);
        }
        assert_ne!(model, before);
        let shares = parts.iter().map(|p| Held::packed(pack(p))).collect();
        assert_eq!(ReadModel::from_parts(head, shares).unwrap(), before);
        assert_eq!(model, fold(&log));
    }

    /// A model loaded packed folds on, is packed again (adopting fresh bytes) and has its unpacked
    /// values dropped at any point, and still equals the fold of the whole log; a checkpoint after
    /// reuses the bytes of every tenant not written to since.
    #[test]
    fn packing_and_evicting_between_events_never_changes_the_model() {
        let log = sample_log();
        for cut in [1, log.len() / 3, log.len() / 2, log.len() - 2] {
            let mut model = packed(&fold(&log[..cut]));
            for (n, (e, ev)) in log[cut..].iter().enumerate() {
                model.apply(e, ev);
                let tenants: Vec<TenantId> = model.shares().map(|(t, _)| t.clone()).collect();
                for t in &tenants {
                    let share = model.share_mut(t).unwrap();
                    if let Take::Value(v) = share.take() {
                        assert!(share.adopt(&v, pack(&Take::Value(v.clone())), n % 2 == 0));
                    }
                    if n % 3 == 0 {
                        share.evict();
                    }
                }
                assert!(model.shares().all(|(_, s)| matches!(s.take(), Take::Packed(_))), "all packed");
            }
            assert_eq!(model, fold(&log), "cut {cut}");
            model.apply(&log[0].0, &log[0].1);
            let (_, parts) = model.parts();
            assert!(parts.iter().all(|p| matches!(p, Take::Packed(_))), "a re-delivered event writes nothing");
        }
    }
}
