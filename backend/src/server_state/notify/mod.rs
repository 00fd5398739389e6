//! What the notification centre and the outbound channels keep (issue 14): each person's
//! notifications and what they have read, each tenant's reminder settings and channels (with their
//! secrets — never in the event log), and the delivery queue with its log.
//!
//! None of it is a domain fact: the reminders themselves are derived from the log
//! (`ducha_events::projection::reminders`); this is who was told, when, and whether they read it.
//!
//! The queue is **at most once**: a delivery is claimed (`sending`) before its request leaves and
//! marked `sent` or `failed` when the answer comes. A claim found still open after a restart (the
//! process died while the request was in flight) becomes `uncertain` — it is never sent again on its
//! own; the admin sees it in the delivery log and may requeue it. A definite failure (an error
//! status, a refused connection, the channel's own error code) is retried with back-off.

pub mod postgres;
pub mod sealed;
pub mod sqlite;

use super::StateError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A notification to put in a person's list (once per `(tenant, user_id, key)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    pub tenant: String,
    pub user_id: String,
    /// The reminder's key (`overdue/f3/2024-02-29`, …).
    pub key: String,
    /// `due_soon`, `overdue`, `awaiting_verification`, `manual`.
    pub kind: String,
    pub finding_id: Option<String>,
    pub text: String,
}

/// A notification in a person's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: i64,
    pub tenant: String,
    pub user_id: String,
    pub key: String,
    pub kind: String,
    pub finding_id: Option<String>,
    pub text: String,
    pub created_ms: i64,
    pub read_ms: Option<i64>,
}

/// A tenant's notification settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifySettings {
    pub due_soon_days: u32,
    pub verify_wait_days: u32,
    /// The Shanghai hour (0–23) from which the daily digest is sent.
    pub digest_hour: u32,
    pub updated_ms: i64,
    pub updated_by: String,
}

/// An outbound channel of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// A UUID.
    pub id: String,
    pub tenant: String,
    /// `wecom`, `dingtalk` or `webhook`.
    pub kind: String,
    pub name: String,
    /// The full endpoint (for 企业微信 it carries the robot's key: treated as a secret too).
    pub url: String,
    /// 钉钉's 加签 secret or the webhook's HMAC key.
    pub secret: Option<String>,
    pub enabled: bool,
    /// Also send each reminder as it falls due (else the daily digest only).
    pub each_reminder: bool,
    pub created_ms: i64,
    pub updated_by: String,
}

/// A message to deliver on one channel (once per `(channel_id, key)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub tenant: String,
    pub channel_id: String,
    /// The reminder's key, or `digest/{date}`.
    pub key: String,
    /// The message (JSON of `notify::Message`), formatted for the channel when sent.
    pub message: String,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its time (`next_attempt_ms`).
    Pending,
    /// Claimed by a sender, the request may be in flight.
    Sending,
    Sent,
    /// Given up after the last retry.
    Failed,
    /// The sender died while the request was in flight: it may or may not have arrived. Never
    /// resent on its own (at most once).
    Uncertain,
}

impl DeliveryStatus {
    pub fn code(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Sending => "sending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Uncertain => "uncertain",
        }
    }

    pub fn from_code(s: &str) -> DeliveryStatus {
        match s {
            "sending" => DeliveryStatus::Sending,
            "sent" => DeliveryStatus::Sent,
            "failed" => DeliveryStatus::Failed,
            "uncertain" => DeliveryStatus::Uncertain,
            _ => DeliveryStatus::Pending,
        }
    }
}

/// A delivery, as the queue and the delivery log show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub tenant: String,
    pub channel_id: String,
    pub key: String,
    pub message: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
    pub created_ms: i64,
    pub sent_ms: Option<i64>,
}

/// The answer to one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Failed for sure; retry at `retry_at_ms`, or give up (`None`).
    Failed {
        error: String,
        retry_at_ms: Option<i64>,
    },
    /// The request may have arrived (a timeout after it was sent): `uncertain`, not retried.
    Uncertain {
        error: String,
    },
}

#[async_trait]
pub trait Notifications: Send + Sync {
    async fn settings(&self, tenant: &str) -> Result<Option<NotifySettings>, StateError>;
    async fn save_settings(&self, tenant: &str, settings: &NotifySettings) -> Result<(), StateError>;

    /// A tenant's channels (every tenant's with `None`), oldest first.
    async fn channels(&self, tenant: Option<&str>) -> Result<Vec<Channel>, StateError>;
    /// Adds or replaces a channel (by id, within its tenant).
    async fn save_channel(&self, channel: &Channel) -> Result<(), StateError>;
    /// Removes a channel and its pending deliveries; false when the tenant has no such channel.
    async fn delete_channel(&self, tenant: &str, id: &str) -> Result<bool, StateError>;

    /// Adds notifications, each once per `(tenant, user_id, key)`; returns how many were new.
    async fn notify(&self, items: &[NewNotification], now_ms: i64) -> Result<u64, StateError>;
    /// A person's notifications, newest first: at most `limit`, with an id below `before_id` when given.
    async fn list(
        &self,
        user_id: &str,
        unread_only: bool,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Notification>, StateError>;
    async fn unread_count(&self, user_id: &str) -> Result<u64, StateError>;
    /// Marks one of a person's notifications read (idempotent); false when they have no such one.
    async fn mark_read(&self, user_id: &str, id: i64, now_ms: i64) -> Result<bool, StateError>;
    /// Marks all of a person's notifications read; returns how many were unread.
    async fn mark_all_read(&self, user_id: &str, now_ms: i64) -> Result<u64, StateError>;

    /// Queues a delivery, once per `(channel_id, key)`; false when it was queued before.
    async fn enqueue(&self, delivery: &NewDelivery, now_ms: i64) -> Result<bool, StateError>;
    /// Attempts made on a channel since `since_ms` (for its rate limit).
    async fn attempts_since(&self, channel_id: &str, since_ms: i64) -> Result<u64, StateError>;
    /// Claims up to `limit` due deliveries of a channel, oldest first: they become `sending`, their
    /// attempt is counted (at `now_ms`). Two senders never claim the same one.
    async fn claim(&self, channel_id: &str, now_ms: i64, limit: u32) -> Result<Vec<Delivery>, StateError>;
    /// Records the answer to a claimed delivery's attempt.
    async fn finish(&self, id: i64, outcome: &Outcome, now_ms: i64) -> Result<(), StateError>;
    /// Claims older than `before_ms` still open (their sender died): marked `uncertain`; returns how many.
    async fn abandon_stale(&self, before_ms: i64) -> Result<u64, StateError>;
    /// A tenant's deliveries, newest first (the delivery log).
    async fn deliveries(&self, tenant: &str, before_id: Option<i64>, limit: u32) -> Result<Vec<Delivery>, StateError>;
    /// Requeues a `failed` or `uncertain` delivery of a tenant for now; false when there is none such.
    async fn requeue(&self, tenant: &str, id: i64, now_ms: i64) -> Result<bool, StateError>;
}
