//! Export of a tenant's events as JSON Lines (one `RecordedEvent` with its envelope per line) and
//! import of such a file into another store, keeping event ids, times, actors and hashes.

use crate::store::{AppendRequest, EventStore, ExpectedVersion, Upto};
use anyhow::{Context, bail};
use ducha_events::chain::ChainVerifier;
use ducha_events::envelope::{NewEvent, RecordedEvent};
use ducha_events::ids::TenantId;
use std::io::{BufRead, Write};

/// Writes every event of `tenant` as one JSON object per line; returns how many.
pub async fn export<S: EventStore + ?Sized>(store: &S, tenant: &TenantId, out: &mut impl Write) -> anyhow::Result<u64> {
    let mut n = 0;
    let mut after = 0;
    loop {
        let page = store.read_tenant(tenant, after, 10_000, Upto::Head).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for e in &page {
            serde_json::to_writer(&mut *out, e)?;
            out.write_all(b"\n")?;
            n += 1;
        }
    }
    Ok(n)
}

/// Reads an export, checks its chain, and appends it to `store`. The tenant must be new to the
/// store. Each appended event must come out with the same hash as in the file, or the import stops.
pub async fn import<S: EventStore + ?Sized>(store: &S, input: impl BufRead) -> anyhow::Result<u64> {
    let mut events: Vec<RecordedEvent> = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("读取第 {} 行失败 / cannot read line", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let e: RecordedEvent = serde_json::from_str(&line)
            .with_context(|| format!("第 {} 行不是有效的事件 / line {} is not a valid event", i + 1, i + 1))?;
        events.push(e);
    }
    let Some(first) = events.first() else { bail!("导入文件为空 / the import file is empty") };
    let tenant = first.tenant.clone();
    if events.iter().any(|e| e.tenant != tenant) {
        bail!("导入文件包含多个租户 / the file mixes tenants");
    }
    let mut verifier = ChainVerifier::default();
    for e in &events {
        e.decode().with_context(|| format!("事件 {} 无法解码 / cannot decode", e.event_id))?;
        verifier.check(e).map_err(|b| anyhow::anyhow!("导入文件的哈希链无效 / the file's chain is broken: {b}"))?;
    }
    if store.tenants().await?.iter().any(|h| h.tenant == tenant) {
        bail!("租户 {tenant} 在目标库中已存在 / tenant already exists in the target store");
    }
    // The store never lets time go backwards; an import older than the store's last event would
    // get new times and so new hashes. Refuse before writing anything.
    let head = store.head().await?;
    if let Some(last) = store.read_all(head.saturating_sub(1), 1, Upto::Head).await?.first()
        && last.occurred_at > first.occurred_at
    {
        bail!(
            "目标库中已有晚于导入数据（{}）的事件（{}），请导入到新的数据目录 / import into a fresh data directory",
            first.occurred_at,
            last.occurred_at
        );
    }
    // Consecutive events of one stream go in one append (they were one or more commands; the chain
    // does not record command boundaries).
    let mut i = 0;
    while i < events.len() {
        let stream = events[i].stream.clone();
        let mut j = i;
        while j < events.len() && events[j].stream == stream {
            j += 1;
        }
        let batch = &events[i..j];
        let new_events = batch
            .iter()
            .map(|e| {
                Ok(NewEvent {
                    event_id: e.event_id.clone(),
                    event_type: e.event_type.clone(),
                    schema_version: e.schema_version,
                    payload: e.payload.clone(),
                    occurred_at: e.occurred_at().context("时间无效 / invalid occurred_at")?,
                    actor: e.actor.clone(),
                    correlation_id: e.correlation_id.clone(),
                    causation_id: e.causation_id.clone(),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let req = AppendRequest {
            tenant: tenant.clone(),
            stream: stream.clone(),
            expected: ExpectedVersion::Exact(
                batch[0].stream_version.checked_sub(1).context("流版本无效 / invalid stream_version")?,
            ),
            events: new_events,
            idempotency_key: None,
        };
        store.append(req).await?;
        i = j;
    }
    // Compare what the store recorded with the file, hash by hash.
    let mut stored = Vec::new();
    let mut after = 0;
    loop {
        let page = store.read_tenant(&tenant, after, 10_000, Upto::Head).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        stored.extend(page.into_iter().map(|e| (e.event_id, e.hash)));
    }
    if stored.len() != events.len() || stored.iter().zip(&events).any(|((id, h), e)| *id != e.event_id || *h != e.hash)
    {
        bail!("导入后的哈希与文件不一致（目标库中已有更晚的事件？） / imported hashes differ from the file");
    }
    Ok(events.len() as u64)
}
