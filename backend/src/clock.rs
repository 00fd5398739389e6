//! The time events are stamped with: the system clock — or, in tests only, the system clock moved by
//! `DUCHA_TEST_CLOCK_OFFSET_SECONDS` (a signed number of seconds; read once, when first asked).
//!
//! The variable exists so that an end-to-end test can make the server's clock jump backwards (a
//! restart with a negative offset) and show that the log's times still never go backwards and "as
//! of" a time still means a prefix of the log. **Never set it in production**: the server logs a
//! warning at start when it is set.

use chrono::{DateTime, Duration, Utc};
use std::sync::OnceLock;

/// The test-only variable (see the module documentation).
pub const TEST_OFFSET_VAR: &str = "DUCHA_TEST_CLOCK_OFFSET_SECONDS";

fn offset() -> Option<Duration> {
    static OFFSET: OnceLock<Option<Duration>> = OnceLock::new();
    *OFFSET.get_or_init(|| {
        let raw = std::env::var(TEST_OFFSET_VAR).ok()?;
        match raw.trim().parse::<i64>() {
            Ok(secs) => Duration::try_seconds(secs),
            Err(_) => {
                tracing::warn!(value = %raw, "{TEST_OFFSET_VAR} is not a number of seconds: ignored");
                None
            }
        }
    })
}

/// Now, as commands are stamped.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    match offset() {
        Some(d) => now.checked_add_signed(d).unwrap_or(now),
        None => now,
    }
}

/// Logs a warning when the test-only offset is set (called once at start).
pub fn warn_if_offset() {
    if let Some(d) = offset() {
        tracing::warn!(
            offset_seconds = d.num_seconds(),
            "{TEST_OFFSET_VAR} is set: commands are stamped with a shifted clock (for tests only)"
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn without_the_variable_it_is_the_system_clock() {
        // The variable is never set in unit tests.
        let before = chrono::Utc::now();
        let now = super::now();
        assert!(now >= before && now <= chrono::Utc::now());
    }
}
