//! Login throttling: failures are counted per username and per client address within a window;
//! past `slow_after` failures each further failure is answered more slowly, and at `lock_after`
//! (per username) or `ip_lock_after` (per address) that key is locked for `lock_seconds`, during
//! which every attempt, right or wrong, gets 429 with `Retry-After`.
//!
//! Kept in memory on purpose: a restart forgets the counters, which only gives an attacker one more
//! window after a restart they cannot cause. A success clears the username's count (not the
//! address's: one address trying many usernames stays visible).

use crate::config::Config;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    window_start: Instant,
    locked_until: Option<Instant>,
}

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

/// Bounds memory under a flood of distinct usernames: stale entries are dropped past this size.
const MAX_ENTRIES: usize = 100_000;
const MAX_DELAY: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct LoginThrottle {
    limits: Limits,
    users: Mutex<HashMap<String, Entry>>,
    addrs: Mutex<HashMap<String, Entry>>,
}

fn remaining(entry: Option<&Entry>, now: Instant) -> Option<Duration> {
    entry.and_then(|e| e.locked_until).filter(|until| *until > now).map(|until| until - now)
}

fn bump(map: &mut HashMap<String, Entry>, key: &str, now: Instant, limits: &Limits, lock_after: u32) -> u32 {
    if map.len() >= MAX_ENTRIES {
        map.retain(|_, e| {
            now.duration_since(e.window_start) < limits.window || e.locked_until.is_some_and(|u| u > now)
        });
    }
    let e = map.entry(key.to_owned()).or_insert(Entry { failures: 0, window_start: now, locked_until: None });
    if now.duration_since(e.window_start) >= limits.window && e.locked_until.is_none_or(|u| u <= now) {
        *e = Entry { failures: 0, window_start: now, locked_until: None };
    }
    e.failures += 1;
    if e.failures >= lock_after {
        e.locked_until = Some(now + limits.lock);
        // The next window starts when the lock ends.
        e.failures = 0;
        e.window_start = now + limits.lock;
    }
    e.failures
}

impl LoginThrottle {
    pub fn new(limits: Limits) -> Self {
        LoginThrottle { limits, users: Mutex::new(HashMap::new()), addrs: Mutex::new(HashMap::new()) }
    }

    /// `Some(wait)` when the username or the address is locked now.
    pub fn locked(&self, username: &str, addr: &str) -> Option<Duration> {
        let now = Instant::now();
        let users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        let addrs = self.addrs.lock().unwrap_or_else(|p| p.into_inner());
        match (remaining(users.get(username), now), remaining(addrs.get(addr), now)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Records a failure; returns how long to wait before answering.
    pub fn failed(&self, username: &str, addr: &str) -> Duration {
        let now = Instant::now();
        let limits = self.limits;
        let n =
            bump(&mut self.users.lock().unwrap_or_else(|p| p.into_inner()), username, now, &limits, limits.lock_after);
        let m =
            bump(&mut self.addrs.lock().unwrap_or_else(|p| p.into_inner()), addr, now, &limits, limits.ip_lock_after);
        let over = n.max(m).saturating_sub(limits.slow_after);
        if over == 0 {
            return Duration::ZERO;
        }
        limits.delay.saturating_mul(1u32 << (over - 1).min(16)).min(MAX_DELAY)
    }

    /// A successful login clears the username's failures.
    pub fn succeeded(&self, username: &str) {
        self.users.lock().unwrap_or_else(|p| p.into_inner()).remove(username);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn failures_slow_then_lock_per_user_and_per_address() {
        let t = LoginThrottle::new(limits());
        assert_eq!(t.failed("u", "a"), Duration::ZERO);
        assert_eq!(t.failed("u", "a"), Duration::ZERO);
        assert_eq!(t.failed("u", "a"), Duration::from_millis(100));
        assert!(t.locked("u", "b").is_none());
        t.failed("u", "a");
        let wait = t.locked("u", "b").unwrap();
        assert!(wait > Duration::from_secs(29) && wait <= Duration::from_secs(30));
        // Another user from the same address is not locked yet …
        assert!(t.locked("v", "a").is_none());
        t.failed("v", "a");
        // … until the address reaches its own limit (6 failures).
        t.failed("w", "a");
        assert!(t.locked("x", "a").is_some());
        assert!(t.locked("x", "c").is_none());
    }

    #[test]
    fn success_clears_the_username() {
        let t = LoginThrottle::new(limits());
        for _ in 0..3 {
            t.failed("u", "a");
        }
        t.succeeded("u");
        assert_eq!(t.failed("u", "b"), Duration::ZERO);
        assert!(t.locked("u", "b").is_none());
    }
}
