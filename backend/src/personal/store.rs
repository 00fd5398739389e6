//! An [`EventStore`] that seals personal data before it is appended and opens it for the read
//! models, around any backend. Only [`EventStore::read_for_fold`] opens: what folds into views,
//! documents and exports. Every other read gives the events exactly as stored (ciphertext and key
//! ids), so that the audit API, `export`, `copy`, `backup` and `verify` carry and check the bytes the
//! chain covers.

use super::Keyring;
use crate::server_state::StateError;
use crate::store::{AppendOutcome, AppendRequest, EventStore, StoreError, TenantHead, Upto};
use async_trait::async_trait;
use ducha_events::chain::ChainHash;
use ducha_events::envelope::RecordedEvent;
use ducha_events::ids::TenantId;
use ducha_events::time::Timestamp;
use std::sync::Arc;

pub struct SealingStore {
    inner: Arc<dyn EventStore>,
    keys: Arc<Keyring>,
}

impl SealingStore {
    pub fn new(inner: Arc<dyn EventStore>, keys: Arc<Keyring>) -> SealingStore {
        SealingStore { inner, keys }
    }

    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keys
    }
}

pub(crate) fn state_err(e: StateError) -> StoreError {
    match e {
        StateError::Full(m) => StoreError::StorageFull(m),
        StateError::Unavailable(m) => StoreError::Unavailable(m),
        other => StoreError::Io(format!("个人信息密钥 / person keys: {other}")),
    }
}

#[async_trait]
impl EventStore for SealingStore {
    async fn append(&self, mut req: AppendRequest) -> Result<AppendOutcome, StoreError> {
        for e in &mut req.events {
            if let Some(sealed) =
                self.keys.seal_payload(&e.event_type, req.tenant.as_str(), &e.payload).await.map_err(state_err)?
            {
                e.payload = sealed;
            }
        }
        self.inner.append(req).await
    }

    fn chain_hash(&self) -> ChainHash {
        self.inner.chain_hash()
    }

    /// The inner store's: commands fold `read_stream`, which this layer passes through unopened.
    fn states(&self) -> Option<&crate::store::states::StateCache> {
        self.inner.states()
    }

    async fn stream_version(&self, stream: &str) -> Result<u64, StoreError> {
        self.inner.stream_version(stream).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        after_version: u64,
        limit: usize,
        upto: Upto,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, after_version, limit, upto).await
    }

    async fn read_tenant(
        &self,
        tenant: &TenantId,
        after_position: u64,
        limit: usize,
        upto: Upto,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_tenant(tenant, after_position, limit, upto).await
    }

    async fn read_all(&self, after_position: u64, limit: usize, upto: Upto) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(after_position, limit, upto).await
    }

    async fn read_for_fold(
        &self,
        tenant: Option<&TenantId>,
        after_position: u64,
        limit: usize,
        upto: Upto,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut events = self.inner.read_for_fold(tenant, after_position, limit, upto).await?;
        self.keys.open_events(&mut events).await.map_err(state_err)?;
        Ok(events)
    }

    async fn head(&self) -> Result<u64, StoreError> {
        self.inner.head().await
    }

    async fn position_at(&self, at: Timestamp) -> Result<u64, StoreError> {
        self.inner.position_at(at).await
    }

    async fn tenants(&self) -> Result<Vec<TenantHead>, StoreError> {
        self.inner.tenants().await
    }

    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.subscribe()
    }

    /// A checkpoint holds opened personal data: it is stored encrypted.
    async fn save_checkpoint(&self, name: &str, position: u64, data: Vec<u8>) -> Result<(), StoreError> {
        let sealed = self.keys.seal_blob(data).map_err(StoreError::Io)?;
        self.inner.save_checkpoint(name, position, sealed).await
    }

    /// A checkpoint that does not open (saved in clear before, or under another master key) is
    /// treated as missing: the model is folded from the log instead.
    async fn load_checkpoint(&self, name: &str) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        Ok(self.inner.load_checkpoint(name).await?.and_then(|(p, blob)| self.keys.open_blob(blob).map(|d| (p, d))))
    }

    async fn close(&self) {
        self.inner.close().await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn idempotent(&self, tenant: &TenantId, key: &str) -> Result<Option<(String, AppendOutcome)>, StoreError> {
        self.inner.idempotent(tenant, key).await
    }

    fn storage_full(&self) -> Option<String> {
        self.inner.storage_full()
    }

    async fn open_personal(&self, events: &mut [RecordedEvent]) -> Result<(), StoreError> {
        self.keys.open_events(events).await.map_err(state_err)
    }
}
