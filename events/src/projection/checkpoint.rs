//! The read model in parts, for checkpoints: a head (the position and the directory) and one part
//! per tenant (its facts and its audit counters).
//!
//! Taking the parts shares every tenant with the live model (an `Arc` each, no copy), so a
//! checkpoint holds the model's lock for microseconds, not for a copy of gigabytes. Each part is
//! encoded and decoded on its own: a checkpoint of a thousand sub-districts spreads over every
//! core (the server runs the parts on threads: `ducha::model_checkpoint`).

use super::audit::TenantCounter;
use super::{Directory, ReadModel, TenantFacts};
use crate::ids::TenantId;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The position and the directory (districts, tenants, users): small next to the tenants' facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelHead {
    position: u64,
    directory: Directory,
}

impl ModelHead {
    pub fn position(&self) -> u64 {
        self.position
    }
}

/// One tenant's share of the model: its facts (none for a tenant that only has directory or
/// platform events) and its audit counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantPart {
    tenant: TenantId,
    facts: Option<Arc<TenantFacts>>,
    audit: Option<Arc<TenantCounter>>,
}

impl TenantPart {
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }
}

impl ReadModel {
    /// The model as a head and one part per tenant, sharing the tenants with `self`.
    pub fn parts(&self) -> (ModelHead, Vec<TenantPart>) {
        let head = ModelHead { position: self.position, directory: self.directory.clone() };
        let mut parts: Vec<TenantPart> = self
            .tenants
            .iter()
            .map(|(t, f)| TenantPart {
                tenant: t.clone(),
                facts: Some(Arc::clone(f)),
                audit: self.audit.tenants.get(t).map(Arc::clone),
            })
            .collect();
        for (t, a) in &self.audit.tenants {
            if !self.tenants.contains_key(t) {
                parts.push(TenantPart { tenant: t.clone(), facts: None, audit: Some(Arc::clone(a)) });
            }
        }
        (head, parts)
    }

    /// The model [`ReadModel::parts`] was taken from.
    pub fn from_parts(head: ModelHead, parts: Vec<TenantPart>) -> ReadModel {
        let mut model = ReadModel { position: head.position, directory: head.directory, ..ReadModel::default() };
        for part in parts {
            if let Some(f) = part.facts {
                model.tenants.insert(part.tenant.clone(), f);
            }
            if let Some(a) = part.audit {
                model.audit.tenants.insert(part.tenant, a);
            }
        }
        model
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    /// At every cut of the sample log (two tenants and the platform), the parts encoded one by one
    /// and put together again are the model.
    #[test]
    fn parts_encoded_apart_make_the_same_model_at_every_cut() {
        let log = sample_log();
        for cut in 0..=log.len() {
            let model = fold(&log[..cut]);
            let (head, parts) = model.parts();
            assert_eq!(head.position(), model.position());
            let head: ModelHead = serde_json::from_slice(&serde_json::to_vec(&head).unwrap()).unwrap();
            let parts: Vec<TenantPart> =
                parts.iter().map(|p| serde_json::from_slice(&serde_json::to_vec(p).unwrap()).unwrap()).collect();
            assert_eq!(ReadModel::from_parts(head, parts), model, "cut {cut}");
        }
        let (_, parts) = fold(&log).parts();
        let mut tenants: Vec<&str> = parts.iter().map(|p| p.tenant().as_str()).collect();
        tenants.sort_unstable();
        assert_eq!(tenants, ["_platform", "t1", "t2"]);
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
        assert_eq!(ReadModel::from_parts(head, parts), before);
        assert_eq!(model, fold(&log));
    }
}
