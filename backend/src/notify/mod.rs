//! Reminders that reach people (issue 14): the notifier derives each tenant's reminders from the
//! live read model (`ducha_events::projection::reminders`), puts them in the notification centre of
//! whoever they concern, queues them (and a daily digest) for the tenant's outbound channels, and
//! sends the queue — on the one replica that holds the `notifications` lease ([`job`]).
//!
//! - [`channels`]: the wire formats of 企业微信, 钉钉 and the generic webhook, and their signatures;
//! - [`job`]: the lease loop: derive, queue, send with back-off and a per-channel rate limit.
//!
//! What is stored where: `server_state::notify` (notifications and read marks, settings, channels
//! with their secrets, the queue). Nothing of it goes into the event log.

pub mod channels;
pub mod job;

use crate::server_state::notify::NotifySettings;
use ducha_events::projection::reminders::ReminderPolicy;
use serde::{Deserialize, Serialize};

/// The default Shanghai hour of the daily digest.
pub const DEFAULT_DIGEST_HOUR: u32 = 8;

/// A tenant's settings, or the defaults.
pub fn policy_of(settings: Option<&NotifySettings>) -> (ReminderPolicy, u32) {
    match settings {
        Some(s) => {
            (ReminderPolicy { due_soon_days: s.due_soon_days, verify_wait_days: s.verify_wait_days }, s.digest_hour)
        }
        None => (ReminderPolicy::default(), DEFAULT_DIGEST_HOUR),
    }
}

/// What is queued for a channel: one reminder or a tenant's digest, channel-neutral (each channel
/// formats it when it is sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub tenant: String,
    /// The reminder's key, or `digest/{date}`.
    pub key: String,
    /// A reminder kind (`overdue`, …) or `digest`.
    pub kind: String,
    /// A short title (`逾期催办`, `XX街道 整改提醒汇总（2024-06-28）`).
    pub title: String,
    /// Plain text.
    pub text: String,
    /// Markdown (digests).
    #[serde(default)]
    pub markdown: String,
    #[serde(default)]
    pub finding_id: Option<String>,
    /// The digest's lines.
    #[serde(default)]
    pub lines: Vec<String>,
}

impl Message {
    pub fn is_digest(&self) -> bool {
        self.kind == "digest"
    }
}
