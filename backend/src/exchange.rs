//! Export of a tenant's events as JSON Lines (one `RecordedEvent` with its envelope per line) and
//! import of such a file into another store, keeping event ids, times, actors and hashes.

use crate::store::{AppendRequest, EventStore, ExpectedVersion, Upto};
use anyhow::{Context, bail};
use ducha_events::chain::{ChainHash, ChainVerifier};
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
    // The file's chain must be in the target's hash: the store re-hashes every event it appends.
    let events = read_export(input, store.chain_hash())?;
    let Some(first) = events.first() else { bail!("导入文件为空 / the import file is empty") };
    let tenant = first.tenant.clone();
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

/// Reads an export (untrusted bytes) without a store: one event per line, one tenant, every payload
/// decodable, the chain hashed with `hash` and unbroken from the genesis. Not empty.
pub fn read_export(input: impl BufRead, hash: ChainHash) -> anyhow::Result<Vec<RecordedEvent>> {
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
    let mut verifier = ChainVerifier::new(hash);
    for e in &events {
        e.decode().with_context(|| format!("事件 {} 无法解码 / cannot decode", e.event_id))?;
        verifier.check(e).map_err(|b| anyhow::anyhow!("导入文件的哈希链无效 / the file's chain is broken: {b}"))?;
    }
    Ok(events)
}

/// What `ducha copy` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    pub events: u64,
    pub tenants: usize,
}

/// Appends every event of `from`, in log order, to the empty store `to`, keeping event ids, times,
/// actors and so every hash; then checks that each tenant's chain verifies in `to` and ends on the
/// same head as in `from`. `progress` is called with the number of events copied so far.
///
/// Appends of one page are sent together (in order; the store commits them as groups), so a copy runs
/// at the store's group-commit speed rather than one commit per event.
pub async fn copy<F, T>(from: &F, to: &T, progress: impl FnMut(u64)) -> anyhow::Result<CopyReport>
where
    F: EventStore + ?Sized,
    T: EventStore + ?Sized,
{
    copy_upto(from, to, Upto::Head, progress).await
}

/// [`copy`] of the events up to `upto` only (a logical backup of a store that is being written:
/// the copy stops at the position taken when it began). With `Upto::Position`, the target's chains
/// are verified but not compared with the source's heads, which may have moved on.
pub async fn copy_upto<F, T>(from: &F, to: &T, upto: Upto, mut progress: impl FnMut(u64)) -> anyhow::Result<CopyReport>
where
    F: EventStore + ?Sized,
    T: EventStore + ?Sized,
{
    if to.head().await? > 0 {
        bail!("目标存储不是空的，拒绝复制（请使用新的数据目录或数据库） / the target store is not empty");
    }
    // The hashes are kept, so both stores must compute them alike.
    if from.chain_hash() != to.chain_hash() {
        bail!(
            "源存储的哈希链使用 {}，目标为 {}；请以 --chain-hash {} 创建目标 / the chain hashes differ ({} → {})",
            from.chain_hash(),
            to.chain_hash(),
            from.chain_hash(),
            from.chain_hash(),
            to.chain_hash()
        );
    }
    let mut copied = 0u64;
    let mut after = 0;
    loop {
        let page = from.read_all(after, 5_000, upto).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        let mut requests = Vec::new();
        let mut i = 0;
        while i < page.len() {
            let mut j = i + 1;
            while j < page.len() && page[j].stream == page[i].stream && page[j].tenant == page[i].tenant {
                j += 1;
            }
            let batch = &page[i..j];
            let events = batch
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
            requests.push(AppendRequest {
                tenant: batch[0].tenant.clone(),
                stream: batch[0].stream.clone(),
                expected: ExpectedVersion::Exact(
                    batch[0].stream_version.checked_sub(1).context("流版本无效 / invalid stream_version")?,
                ),
                events,
                idempotency_key: None,
            });
            i = j;
        }
        // Polled in order on the first poll, so queued in log order.
        let outcomes = futures_util::future::join_all(requests.into_iter().map(|r| to.append(r))).await;
        for o in outcomes {
            o.context("复制时追加失败 / an append failed during the copy")?;
        }
        copied += page.len() as u64;
        progress(copied);
    }
    // Every chain must verify in the target and end where it ends in the source.
    let target = crate::verify::verify_all(to).await?;
    if let Some(b) = target.first_break() {
        bail!("复制后的哈希链校验失败 / the copied chains do not verify: {b}");
    }
    if upto != Upto::Head {
        return Ok(CopyReport { events: copied, tenants: target.tenants.len() });
    }
    let source: Vec<_> = from.tenants().await?;
    let heads: std::collections::BTreeMap<_, _> =
        target.tenants.iter().map(|t| (t.tenant.clone(), (t.events, t.head_hash.clone()))).collect();
    for h in &source {
        if heads.get(h.tenant.as_str()) != Some(&(h.events, h.head_hash.clone())) {
            bail!("租户 {} 复制后的链头与源不一致 / the tenant's chain head differs after the copy", h.tenant);
        }
    }
    if heads.len() != source.len() {
        bail!("复制后的租户数与源不一致 / the number of tenants differs after the copy");
    }
    Ok(CopyReport { events: copied, tenants: source.len() })
}
