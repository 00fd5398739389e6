//! Outbound channels' endpoints and secrets encrypted at rest (等保 数据保密性): a decorator over any
//! [`Notifications`] that seals a channel's `url` (企业微信's carries the robot's key) and `secret`
//! (钉钉's 加签 secret, the webhook's HMAC key) on the way in and opens them on the way out, under a
//! key derived from the personal-data master key ([`Keyring::seal_labelled`]), bound to the
//! tenant, the channel and the field. They must be readable to sign and send, so they are
//! encrypted, not hashed. A value stored in clear (before this) is read as it is and sealed when
//! the channel is next saved; one that does not open (another master key) makes the channel
//! unusable until it is saved again, never a crash.

use super::*;
use crate::personal::Keyring;
use std::sync::Arc;

const PURPOSE: &[u8] = b"ducha/notify-channel";

pub struct SealedChannels {
    inner: Arc<dyn Notifications>,
    keys: Arc<Keyring>,
}

impl SealedChannels {
    pub fn new(inner: Arc<dyn Notifications>, keys: Arc<Keyring>) -> Self {
        SealedChannels { inner, keys }
    }

    fn aad(ch: &Channel, field: &str) -> String {
        format!("channel:{}/{}:{field}", ch.tenant, ch.id)
    }

    fn seal(&self, ch: &Channel) -> Result<Channel, StateError> {
        let seal = |field: &str, value: &str| {
            self.keys.seal_labelled(PURPOSE, &Self::aad(ch, field), value).map_err(StateError::Io)
        };
        let mut out = ch.clone();
        out.url = seal("url", &ch.url)?;
        out.secret = ch.secret.as_deref().map(|s| seal("secret", s)).transpose()?;
        Ok(out)
    }

    /// The channel as sent with; `None` when a sealed field does not open here.
    fn open(&self, ch: Channel) -> Option<Channel> {
        let url = self.keys.open_labelled(PURPOSE, &Self::aad(&ch, "url"), &ch.url)?;
        let secret = match ch.secret.as_deref() {
            Some(s) => Some(self.keys.open_labelled(PURPOSE, &Self::aad(&ch, "secret"), s)?),
            None => None,
        };
        Some(Channel { url, secret, ..ch })
    }
}

#[async_trait]
impl Notifications for SealedChannels {
    async fn settings(&self, tenant: &str) -> Result<Option<NotifySettings>, StateError> {
        self.inner.settings(tenant).await
    }
    async fn save_settings(&self, tenant: &str, settings: &NotifySettings) -> Result<(), StateError> {
        self.inner.save_settings(tenant, settings).await
    }
    async fn channels(&self, tenant: Option<&str>) -> Result<Vec<Channel>, StateError> {
        let all = self.inner.channels(tenant).await?;
        Ok(all
            .into_iter()
            .map(|ch| {
                let (tenant, id) = (ch.tenant.clone(), ch.id.clone());
                self.open(ch).unwrap_or_else(|| {
                    tracing::error!(%tenant, channel = %id, "a channel's endpoint or secret does not open under this master key: disabled until saved again");
                    Channel {
                        id,
                        tenant,
                        kind: String::new(),
                        name: String::new(),
                        url: String::new(),
                        secret: None,
                        enabled: false,
                        each_reminder: false,
                        created_ms: 0,
                        updated_by: String::new(),
                    }
                })
            })
            .collect())
    }
    async fn save_channel(&self, channel: &Channel) -> Result<(), StateError> {
        self.inner.save_channel(&self.seal(channel)?).await
    }
    async fn delete_channel(&self, tenant: &str, id: &str) -> Result<bool, StateError> {
        self.inner.delete_channel(tenant, id).await
    }
    async fn notify(&self, items: &[NewNotification], now_ms: i64) -> Result<u64, StateError> {
        self.inner.notify(items, now_ms).await
    }
    async fn list(
        &self,
        user_id: &str,
        unread_only: bool,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Notification>, StateError> {
        self.inner.list(user_id, unread_only, before_id, limit).await
    }
    async fn unread_count(&self, user_id: &str) -> Result<u64, StateError> {
        self.inner.unread_count(user_id).await
    }
    async fn mark_read(&self, user_id: &str, id: i64, now_ms: i64) -> Result<bool, StateError> {
        self.inner.mark_read(user_id, id, now_ms).await
    }
    async fn mark_all_read(&self, user_id: &str, now_ms: i64) -> Result<u64, StateError> {
        self.inner.mark_all_read(user_id, now_ms).await
    }
    async fn enqueue(&self, delivery: &NewDelivery, now_ms: i64) -> Result<bool, StateError> {
        self.inner.enqueue(delivery, now_ms).await
    }
    async fn attempts_since(&self, channel_id: &str, since_ms: i64) -> Result<u64, StateError> {
        self.inner.attempts_since(channel_id, since_ms).await
    }
    async fn claim(&self, channel_id: &str, now_ms: i64, limit: u32) -> Result<Vec<Delivery>, StateError> {
        self.inner.claim(channel_id, now_ms, limit).await
    }
    async fn finish(&self, id: i64, outcome: &Outcome, now_ms: i64) -> Result<(), StateError> {
        self.inner.finish(id, outcome, now_ms).await
    }
    async fn abandon_stale(&self, before_ms: i64) -> Result<u64, StateError> {
        self.inner.abandon_stale(before_ms).await
    }
    async fn deliveries(&self, tenant: &str, before_id: Option<i64>, limit: u32) -> Result<Vec<Delivery>, StateError> {
        self.inner.deliveries(tenant, before_id, limit).await
    }
    async fn requeue(&self, tenant: &str, id: i64, now_ms: i64) -> Result<bool, StateError> {
        self.inner.requeue(tenant, id, now_ms).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::personal::MasterKey;
    use crate::personal::cipher::Cipher;
    use crate::server_state::ServerState;

    fn channel(secret: Option<&str>) -> Channel {
        Channel {
            id: "c1".into(),
            tenant: "xxjd".into(),
            kind: "webhook".into(),
            name: "OA".into(),
            url: "https://oa.example/hook?token=tok-123".into(),
            secret: secret.map(str::to_owned),
            enabled: true,
            each_reminder: false,
            created_ms: 1,
            updated_by: "xx-admin".into(),
        }
    }

    #[tokio::test]
    async fn endpoints_and_secrets_are_stored_sealed_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let state = ServerState::sqlite(dir.path(), &dir.path().join("evidence")).unwrap();
        let master = MasterKey::load(None, Some(dir.path())).unwrap().unwrap();
        let keys = Arc::new(Keyring::new(master, Cipher::Sm4Gcm, state.person_keys.clone()));
        let sealed = SealedChannels::new(state.notify.clone(), keys);
        sealed.save_channel(&channel(Some("hook-secret"))).await.unwrap();

        // The store underneath holds neither in clear; through the decorator both read back.
        let raw = state.notify.channels(Some("xxjd")).await.unwrap();
        assert!(raw[0].url.starts_with("sealed:") && !raw[0].url.contains("tok-123"), "{:?}", raw[0]);
        assert!(raw[0].secret.as_deref().is_some_and(|s| s.starts_with("sealed:") && !s.contains("hook-secret")));
        let bytes = std::fs::read(dir.path().join("api.db")).unwrap();
        for clear in [&b"hook-secret"[..], b"tok-123"] {
            assert!(!bytes.windows(clear.len()).any(|w| w == clear), "in clear in api.db");
        }
        assert_eq!(sealed.channels(Some("xxjd")).await.unwrap(), vec![channel(Some("hook-secret"))]);

        // A channel saved in clear before (no master key then) still reads, as it is.
        state.notify.save_channel(&Channel { id: "c2".into(), ..channel(None) }).await.unwrap();
        let both = sealed.channels(Some("xxjd")).await.unwrap();
        assert_eq!(both[1].url, "https://oa.example/hook?token=tok-123");

        // A sealed value moved to another channel's row does not open there: that channel is
        // disabled, nothing crashes.
        let mut moved = raw[0].clone();
        moved.id = "c3".into();
        state.notify.save_channel(&moved).await.unwrap();
        let all = sealed.channels(Some("xxjd")).await.unwrap();
        let c3 = all.iter().find(|c| c.id == "c3").unwrap();
        assert!(!c3.enabled && c3.url.is_empty() && c3.secret.is_none(), "{c3:?}");
    }
}
