//! Prometheus metrics, rendered in the text exposition format: request count and latency
//! histogram per route and status, and connection pool gauges.
//!
//! A hand-rolled registry: a few counters behind one mutex cost less than a metrics framework,
//! and the label set is bounded (routes are templates, never raw paths).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;
use tagd_core::PoolStats;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), Histogram>>,
}

impl Metrics {
    /// Records one finished request.
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let Ok(mut requests) = self.requests.lock() else {
            return;
        };
        let h = requests
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default();
        for (bound, count) in BUCKETS.iter().zip(h.buckets.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// The whole registry in Prometheus text format.
    pub fn render(&self, pools: &[PoolStats], backend: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP tagd_http_requests_total HTTP requests answered, by route and status."
        );
        let _ = writeln!(out, "# TYPE tagd_http_requests_total counter");
        let requests = match self.requests.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        for ((method, route, status), h) in requests.iter() {
            let _ = writeln!(
                out,
                "tagd_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {}",
                h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP tagd_http_request_duration_seconds Time to answer, by route and status."
        );
        let _ = writeln!(out, "# TYPE tagd_http_request_duration_seconds histogram");
        for ((method, route, status), h) in requests.iter() {
            let labels = format!("method=\"{method}\",route=\"{route}\",status=\"{status}\"");
            for (bound, count) in BUCKETS.iter().zip(h.buckets.iter()) {
                let _ = writeln!(
                    out,
                    "tagd_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "tagd_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "tagd_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "tagd_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        drop(requests);
        let _ = writeln!(
            out,
            "# HELP tagd_db_pool_connections Open database connections, by pool and state."
        );
        let _ = writeln!(out, "# TYPE tagd_db_pool_connections gauge");
        for p in pools {
            let busy = p.size.saturating_sub(p.idle);
            let _ = writeln!(
                out,
                "tagd_db_pool_connections{{backend=\"{backend}\",pool=\"{}\",state=\"idle\"}} {}",
                p.pool, p.idle
            );
            let _ = writeln!(out, "tagd_db_pool_connections{{backend=\"{backend}\",pool=\"{}\",state=\"busy\"}} {busy}", p.pool);
        }
        let _ = writeln!(
            out,
            "# HELP tagd_db_pool_max_connections Configured size of each pool."
        );
        let _ = writeln!(out, "# TYPE tagd_db_pool_max_connections gauge");
        for p in pools {
            let _ = writeln!(
                out,
                "tagd_db_pool_max_connections{{backend=\"{backend}\",pool=\"{}\"}} {}",
                p.pool, p.max
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_counted_in_every_bucket_at_or_above_its_latency() {
        let m = Metrics::default();
        m.observe("GET", "/healthz", 200, Duration::from_millis(3));
        let text = m.render(&[], "sqlite");
        assert!(text.contains(
            "tagd_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"
        ));
        assert!(text.contains("route=\"/healthz\",status=\"200\",le=\"0.0025\"} 0"));
        assert!(text.contains("route=\"/healthz\",status=\"200\",le=\"0.005\"} 1"));
        assert!(text.contains("le=\"+Inf\"} 1"));
    }
}
