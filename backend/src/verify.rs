//! Chain verification over a whole store: every tenant's chain, from its first event.

use crate::store::{EventStore, StoreError, Upto};
use ducha_events::chain::{ChainBreak, ChainVerifier};
use serde_json::json;

/// One tenant's result.
#[derive(Debug, Clone)]
pub struct TenantResult {
    pub tenant: String,
    pub events: u64,
    pub head_hash: String,
    pub error: Option<ChainBreak>,
}

#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// The store's chain hash.
    pub chain_hash: ducha_events::chain::ChainHash,
    pub tenants: Vec<TenantResult>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.tenants.iter().all(|t| t.error.is_none())
    }

    /// The first bad event over all tenants, by global position.
    pub fn first_break(&self) -> Option<&ChainBreak> {
        self.tenants.iter().filter_map(|t| t.error.as_ref()).min_by_key(|b| match b {
            ChainBreak::Gap { position, .. }
            | ChainBreak::PrevMismatch { position, .. }
            | ChainBreak::HashMismatch { position, .. } => *position,
        })
    }

    pub fn render(&self) -> String {
        let mut out = format!("哈希算法 / chain hash：{}\n", self.chain_hash.name_zh());
        for t in &self.tenants {
            match &t.error {
                None => out.push_str(&format!("✓ {}：{} 个事件，链头 {}\n", t.tenant, t.events, t.head_hash)),
                Some(e) => out.push_str(&format!("✗ {}：在第 {} 个事件后断裂：{e}\n", t.tenant, t.events)),
            }
        }
        match self.first_break() {
            None => out.push_str(&format!("哈希链完整：{} 个租户 / all chains verify\n", self.tenants.len())),
            Some(b) => out.push_str(&format!("发现篡改，第一个异常事件 / tampering detected, first bad event: {b}\n")),
        }
        out
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "ok": self.ok(),
            "chain_hash": self.chain_hash.code(),
            "first_bad_event": self.first_break().map(|b| b.to_string()),
            "tenants": self.tenants.iter().map(|t| json!({
                "tenant": t.tenant,
                "events": t.events,
                "head": t.head_hash,
                "error": t.error.as_ref().map(|e| e.to_string()),
            })).collect::<Vec<_>>(),
        })
    }
}

/// Verifies every tenant's chain up to `upto`.
pub async fn verify_all<S: EventStore + ?Sized>(store: &S) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport { chain_hash: store.chain_hash(), ..VerifyReport::default() };
    for head in store.tenants().await? {
        report.tenants.push(verify_tenant(store, &head.tenant, Upto::Head).await?);
    }
    Ok(report)
}

/// Verifies one tenant's chain from its first event up to `upto`.
pub async fn verify_tenant<S: EventStore + ?Sized>(
    store: &S,
    tenant: &ducha_events::ids::TenantId,
    upto: Upto,
) -> Result<TenantResult, StoreError> {
    let mut verifier = ChainVerifier::new(store.chain_hash());
    let mut after = 0;
    let mut head_hash = hex::encode(ducha_events::chain::GENESIS);
    loop {
        let page = store.read_tenant(tenant, after, 10_000, upto).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for e in &page {
            if let Err(b) = verifier.check(e) {
                return Ok(TenantResult {
                    tenant: tenant.to_string(),
                    events: verifier.checked,
                    head_hash,
                    error: Some(b),
                });
            }
            head_hash.clone_from(&e.hash);
        }
    }
    Ok(TenantResult { tenant: tenant.to_string(), events: verifier.checked, head_hash, error: None })
}
