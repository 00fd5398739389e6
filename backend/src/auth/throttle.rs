//! Login throttling: failures are counted per username and per client address within a window;
//! past `slow_after` failures each further failure is answered more slowly, and at `lock_after`
//! (per username) or `ip_lock_after` (per address) that key is locked for `lock_seconds`, during
//! which every attempt, right or wrong, gets 429 with `Retry-After`.
//!
//! The counters live in the shared server state ([`LoginFailures`]): a lockout on one replica holds
//! on every other, and survives a restart. A success clears the username's count (not the
//! address's: one address trying many usernames stays visible).

use crate::config::Config;
use crate::server_state::{FailureKind, FailureRule, LoginFailures, StateError, now_ms};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub window: Duration,
    pub slow_after: u32,
    pub delay: Duration,
    pub lock_after: u32,
    pub ip_lock_after: u32,
    pub lock: Duration,
}

impl From<&Config> for Limits {
    fn from(c: &Config) -> Self {
        Limits {
            window: Duration::from_secs(c.login_window_seconds),
            slow_after: c.login_slow_after,
            delay: Duration::from_millis(c.login_delay_ms),
            lock_after: c.login_lock_after,
            ip_lock_after: c.login_ip_lock_after,
            lock: Duration::from_secs(c.login_lock_seconds),
        }
    }
}

/// Bounds the slowed answer.
const MAX_DELAY: Duration = Duration::from_secs(5);

pub struct LoginThrottle {
    limits: Limits,
    store: Arc<dyn LoginFailures>,
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginThrottle").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl LoginThrottle {
    pub fn new(limits: Limits, store: Arc<dyn LoginFailures>) -> Self {
        LoginThrottle { limits, store }
    }

    fn rule(&self, kind: FailureKind) -> FailureRule {
        let lock_after = match kind {
            FailureKind::Username => self.limits.lock_after,
            FailureKind::Address => self.limits.ip_lock_after,
        };
        FailureRule { window: self.limits.window, lock_after, lock: self.limits.lock }
    }

    /// `Some(wait)` when the username or the address is locked now.
    pub async fn locked(&self, username: &str, addr: &str) -> Result<Option<Duration>, StateError> {
        let now = now_ms();
        let user = self.store.entry(FailureKind::Username, username).await?.and_then(|e| e.locked_for(now));
        let address = self.store.entry(FailureKind::Address, addr).await?.and_then(|e| e.locked_for(now));
        Ok(match (user, address) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        })
    }

    /// Records a failure; returns how long to wait before answering.
    pub async fn failed(&self, username: &str, addr: &str) -> Result<Duration, StateError> {
        let now = now_ms();
        let rule = self.rule(FailureKind::Username);
        let user = self.store.record_failure(FailureKind::Username, username, now, &rule).await?;
        let rule = self.rule(FailureKind::Address);
        let address = self.store.record_failure(FailureKind::Address, addr, now, &rule).await?;
        let over = user.failures.max(address.failures).saturating_sub(self.limits.slow_after);
        if over == 0 {
            return Ok(Duration::ZERO);
        }
        Ok(self.limits.delay.saturating_mul(1u32 << (over - 1).min(16)).min(MAX_DELAY))
    }

    /// A successful login clears the username's failures.
    pub async fn succeeded(&self, username: &str) -> Result<(), StateError> {
        self.store.clear(FailureKind::Username, username).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server_state::sqlite::SqliteState;

    fn limits() -> Limits {
        Limits {
            window: Duration::from_secs(60),
            slow_after: 2,
            delay: Duration::from_millis(100),
            lock_after: 4,
            ip_lock_after: 6,
            lock: Duration::from_secs(30),
        }
    }

    fn throttle(dir: &std::path::Path) -> LoginThrottle {
        LoginThrottle::new(limits(), Arc::new(SqliteState::open(dir).unwrap()))
    }

    #[tokio::test]
    async fn failures_slow_then_lock_per_user_and_per_address() {
        let dir = tempfile::tempdir().unwrap();
        let t = throttle(dir.path());
        assert_eq!(t.failed("u", "a").await.unwrap(), Duration::ZERO);
        assert_eq!(t.failed("u", "a").await.unwrap(), Duration::ZERO);
        assert_eq!(t.failed("u", "a").await.unwrap(), Duration::from_millis(100));
        assert!(t.locked("u", "b").await.unwrap().is_none());
        t.failed("u", "a").await.unwrap();
        let wait = t.locked("u", "b").await.unwrap().unwrap();
        assert!(wait > Duration::from_secs(29) && wait <= Duration::from_secs(30));
        // Another user from the same address is not locked yet …
        assert!(t.locked("v", "a").await.unwrap().is_none());
        t.failed("v", "a").await.unwrap();
        // … until the address reaches its own limit (6 failures).
        t.failed("w", "a").await.unwrap();
        assert!(t.locked("x", "a").await.unwrap().is_some());
        assert!(t.locked("x", "c").await.unwrap().is_none());
        // The lock survives a restart (a new throttle on the same api.db).
        drop(t);
        assert!(throttle(dir.path()).locked("u", "z").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn success_clears_the_username() {
        let dir = tempfile::tempdir().unwrap();
        let t = throttle(dir.path());
        for _ in 0..3 {
            t.failed("u", "a").await.unwrap();
        }
        t.succeeded("u").await.unwrap();
        assert_eq!(t.failed("u", "b").await.unwrap(), Duration::ZERO);
        assert!(t.locked("u", "b").await.unwrap().is_none());
    }
}
