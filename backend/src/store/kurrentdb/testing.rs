//! Fresh stores for tests, on the server named by `DUCHA_TEST_KURRENTDB_URL` (any store URL, e.g.
//! `kurrentdb://admin:changeit@localhost:2113?tls=false`). Each fresh store is a namespace of its own
//! (`ducha_test_…`) on that server; nothing is deleted afterwards: use a throw-away server.
//!
//! Without the variable the tests that need a server are ignored by the harness (with the reason:
//! build.rs sets `cfg(ducha_kurrentdb_server)` only when it is set); one run anyway (with
//! `--include-ignored`) prints [`SKIPPED`] on standard error (written past the harness's capture, so
//! that it shows) and returns. `DUCHA_REQUIRE_KURRENTDB` makes the missing server a failure instead.

use std::io::Write;

pub const URL_VAR: &str = "DUCHA_TEST_KURRENTDB_URL";
pub const REQUIRE_VAR: &str = "DUCHA_REQUIRE_KURRENTDB";
pub const SKIPPED: &str = "skipped: no KurrentDB server (set DUCHA_TEST_KURRENTDB_URL)";

/// The URL of a fresh, empty store on the test server, or `None` after printing [`SKIPPED`].
pub fn fresh_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => {
            Some(with_namespace(url.trim(), &format!("ducha_test_{}", uuid::Uuid::now_v7().simple())))
        }
        _ => {
            assert!(std::env::var_os(REQUIRE_VAR).is_none(), "{REQUIRE_VAR} is set but {URL_VAR} is not");
            // Not `eprintln!`: the harness captures that, and a skip must be seen.
            let _ = writeln!(std::io::stderr().lock(), "{SKIPPED}");
            None
        }
    }
}

/// `url` with `ducha_namespace=NS` (which wins over one already there: the last one counts).
pub fn with_namespace(url: &str, namespace: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}ducha_namespace={namespace}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::kurrentdb::parse_url;

    #[test]
    fn a_fresh_namespace_is_added_to_any_url() {
        for url in ["kurrentdb://localhost:2113", "esdb://a:1,b:2?tls=false", "kurrentdb://h?ducha_namespace=x"] {
            let fresh = with_namespace(url, "ducha_test_1");
            assert_eq!(parse_url(&fresh).unwrap().names.namespace(), "ducha_test_1", "{fresh}");
        }
    }
}
