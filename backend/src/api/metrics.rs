//! Prometheus metrics, written by hand (the text format is simple and the set is small):
//! requests and latencies by route and status, commands, appended events, logins, and the read
//! model's position and lag behind the log.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Latency buckets in seconds.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Requests {
    /// (method, route, status) → count
    total: BTreeMap<(String, String, u16), u64>,
    /// (method, route) → latency histogram
    latency: BTreeMap<(String, String), Histogram>,
}

#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<Requests>,
    commands_ok: AtomicU64,
    commands_failed: AtomicU64,
    events_appended: AtomicU64,
    logins_ok: AtomicU64,
    logins_failed: AtomicU64,
}

/// Escapes a label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    /// Records one finished request. `route` is the matched pattern (`/api/v1/tenants/{tenant_id}/…`),
    /// never the raw path, so ids do not explode the label set.
    pub fn request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut r = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *r.total.entry((method.to_owned(), route.to_owned(), status)).or_default() += 1;
        let h = r.latency.entry((method.to_owned(), route.to_owned())).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    pub fn command(&self, ok: bool) {
        let c = if ok { &self.commands_ok } else { &self.commands_failed };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn appended(&self, events: u64) {
        self.events_appended.fetch_add(events, Ordering::Relaxed);
    }

    pub fn login(&self, ok: bool) {
        let c = if ok { &self.logins_ok } else { &self.logins_failed };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition format, with the store head and the read model position given.
    pub fn render(&self, head: Option<u64>, projected: u64) -> String {
        let mut out = String::new();
        let r = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "# HELP ducha_http_requests_total HTTP requests by method, route and status.");
        let _ = writeln!(out, "# TYPE ducha_http_requests_total counter");
        for ((m, route, status), n) in &r.total {
            let _ = writeln!(
                out,
                "ducha_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                label(m),
                label(route)
            );
        }
        let _ = writeln!(out, "# HELP ducha_http_request_duration_seconds HTTP request latency.");
        let _ = writeln!(out, "# TYPE ducha_http_request_duration_seconds histogram");
        for ((m, route), h) in &r.latency {
            let (m, route) = (label(m), label(route));
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "ducha_http_request_duration_seconds_bucket{{method=\"{m}\",route=\"{route}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "ducha_http_request_duration_seconds_bucket{{method=\"{m}\",route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ =
                writeln!(out, "ducha_http_request_duration_seconds_sum{{method=\"{m}\",route=\"{route}\"}} {}", h.sum);
            let _ = writeln!(
                out,
                "ducha_http_request_duration_seconds_count{{method=\"{m}\",route=\"{route}\"}} {}",
                h.count
            );
        }
        drop(r);
        let counter = |out: &mut String, name: &str, help: &str, lines: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            for (labels, v) in lines {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            &mut out,
            "ducha_commands_total",
            "Commands run through the API, by outcome.",
            &[("{outcome=\"ok\"}", load(&self.commands_ok)), ("{outcome=\"refused\"}", load(&self.commands_failed))],
        );
        counter(
            &mut out,
            "ducha_events_appended_total",
            "Events appended by API commands.",
            &[("", load(&self.events_appended))],
        );
        counter(
            &mut out,
            "ducha_logins_total",
            "Login attempts, by outcome.",
            &[("{outcome=\"ok\"}", load(&self.logins_ok)), ("{outcome=\"failed\"}", load(&self.logins_failed))],
        );
        let gauge = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(&mut out, "ducha_projection_position", "Global log position folded into the live read model.", projected);
        if let Some(head) = head {
            gauge(&mut out, "ducha_store_head_position", "Last global position in the event store.", head);
            gauge(
                &mut out,
                "ducha_projection_lag_events",
                "Events in the store not yet in the read model.",
                head.saturating_sub(projected),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let m = Metrics::default();
        m.request("GET", "/healthz", 200, Duration::from_micros(300));
        m.request("GET", "/healthz", 200, Duration::from_millis(20));
        m.appended(3);
        let text = m.render(Some(10), 7);
        assert!(text.contains("ducha_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"));
        assert!(text.contains("le=\"0.0005\"} 1"));
        assert!(text.contains("le=\"0.025\"} 2"));
        assert!(text.contains("ducha_events_appended_total 3"));
        assert!(text.contains("ducha_projection_lag_events 3"));
    }
}
