//! Login throttling: failures are counted per username and per client address within a window;
//! past `slow_after` failures each further failure is answered more slowly, and at the security
//! policy's `lockout_after` (per username; consecutive failures, for `lockout_minutes`) or the
//! configuration's `ip_lock_after` (per address, for `lock_seconds`) that key is locked, during which
//! every attempt, right or wrong, gets 429 with `Retry-After`. A system administrator can unlock an
//! account.
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

/// The account lockout of the security policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountLock {
    pub after: u32,
    pub lock: Duration,
}

impl From<&ducha_events::security::SecurityPolicy> for AccountLock {
    fn from(p: &ducha_events::security::SecurityPolicy) -> Self {
        AccountLock { after: p.lockout_after, lock: Duration::from_secs(u64::from(p.lockout_minutes) * 60) }
    }
}

/// What a failure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed {
    /// Wait this long before answering.
    pub delay: Duration,
    /// This failure locked the username (the lockout starts now).
    pub locked: bool,
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

    fn rule(&self, kind: FailureKind, account: Option<AccountLock>) -> FailureRule {
        match (kind, account) {
            // Consecutive failures: the window is as long as the lock (a success clears the count).
            // The security policy's count, or the configuration's when that is stricter.
            (FailureKind::Username, Some(a)) => FailureRule {
                window: self.limits.window.max(a.lock),
                lock_after: a.after.min(self.limits.lock_after.max(1)),
                lock: a.lock,
            },
            (FailureKind::Username, None) => {
                FailureRule { window: self.limits.window, lock_after: self.limits.lock_after, lock: self.limits.lock }
            }
            (FailureKind::Address, _) => FailureRule {
                window: self.limits.window,
                lock_after: self.limits.ip_lock_after,
                lock: self.limits.lock,
            },
        }
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

    /// Records a failure; returns how long to wait before answering, and whether this failure
    /// locked the username. `account`: the security policy's lockout (else the configuration's).
    pub async fn failed(&self, username: &str, addr: &str, account: Option<AccountLock>) -> Result<Failed, StateError> {
        let now = now_ms();
        let rule = self.rule(FailureKind::Username, account);
        let user = self.store.record_failure(FailureKind::Username, username, now, &rule).await?;
        let rule = self.rule(FailureKind::Address, account);
        let address = self.store.record_failure(FailureKind::Address, addr, now, &rule).await?;
        let locked = user.locked_for(now).is_some() && user.failures == 0;
        let over = user.failures.max(address.failures).saturating_sub(self.limits.slow_after);
        let delay = if over == 0 {
            Duration::ZERO
        } else {
            self.limits.delay.saturating_mul(1u32 << (over - 1).min(16)).min(MAX_DELAY)
        };
        Ok(Failed { delay, locked })
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
        assert_eq!(t.failed("u", "a", None).await.unwrap().delay, Duration::ZERO);
        assert_eq!(t.failed("u", "a", None).await.unwrap().delay, Duration::ZERO);
        assert_eq!(t.failed("u", "a", None).await.unwrap().delay, Duration::from_millis(100));
        assert!(t.locked("u", "b").await.unwrap().is_none());
        t.failed("u", "a", None).await.unwrap();
        let wait = t.locked("u", "b").await.unwrap().unwrap();
        assert!(wait > Duration::from_secs(29) && wait <= Duration::from_secs(30));
        // Another user from the same address is not locked yet …
        assert!(t.locked("v", "a").await.unwrap().is_none());
        t.failed("v", "a", None).await.unwrap();
        // … until the address reaches its own limit (6 failures).
        t.failed("w", "a", None).await.unwrap();
        assert!(t.locked("x", "a").await.unwrap().is_some());
        assert!(t.locked("x", "c").await.unwrap().is_none());
        // The lock survives a restart (a new throttle on the same api.db).
        drop(t);
        assert!(throttle(dir.path()).locked("u", "z").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn the_policys_lockout_counts_consecutive_failures() {
        let dir = tempfile::tempdir().unwrap();
        let t = throttle(dir.path());
        let policy = AccountLock { after: 3, lock: Duration::from_secs(900) };
        assert!(!t.failed("u", "a", Some(policy)).await.unwrap().locked);
        assert!(!t.failed("u", "b", Some(policy)).await.unwrap().locked);
        assert!(t.failed("u", "c", Some(policy)).await.unwrap().locked, "the third failure locks");
        let wait = t.locked("u", "z").await.unwrap().unwrap();
        assert!(wait > Duration::from_secs(890), "{wait:?}");
    }

    #[tokio::test]
    async fn success_clears_the_username() {
        let dir = tempfile::tempdir().unwrap();
        let t = throttle(dir.path());
        for _ in 0..3 {
            t.failed("u", "a", None).await.unwrap();
        }
        t.succeeded("u").await.unwrap();
        assert_eq!(t.failed("u", "b", None).await.unwrap().delay, Duration::ZERO);
        assert!(t.locked("u", "b").await.unwrap().is_none());
    }
}
