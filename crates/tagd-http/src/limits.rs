//! Per-organization rate limits (a token bucket each) and a per-address throttle on failed
//! authentication. Both live in memory, per process: with several tagd processes behind a
//! balancer, each enforces its own share.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tagd_core::OrgId;

/// Most buckets kept; idle full buckets are dropped past this.
const MAX_TRACKED: usize = 100_000;

/// A rate limit decision, with what the `RateLimit` headers report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateDecision {
    pub allowed: bool,
    /// Whole requests left in the bucket.
    pub remaining: u64,
    /// Seconds until the bucket is full again.
    pub reset_secs: u64,
    /// Seconds to wait before the next request can pass (when refused).
    pub retry_after_secs: u64,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token bucket per organization: `rate` requests a second on average, bursts up to `burst`.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<OrgId, Bucket>>,
}

impl RateLimiter {
    pub fn new(rate_per_sec: u32, burst: u32) -> Self {
        RateLimiter {
            rate: f64::from(rate_per_sec.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The `RateLimit-Policy` value: quota `q` per window `w` seconds.
    pub fn policy(&self) -> String {
        let window = (self.burst / self.rate).ceil().max(1.0);
        format!("\"per-org\";q={};w={}", self.burst as u64, window as u64)
    }

    /// Takes one token from `org`'s bucket, if there is one.
    pub fn check(&self, org: OrgId) -> RateDecision {
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return RateDecision {
                allowed: true,
                remaining: 0,
                reset_secs: 0,
                retry_after_secs: 0,
            };
        };
        if buckets.len() >= MAX_TRACKED {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(org).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * self.rate;
        bucket.tokens = (bucket.tokens + refill).min(self.burst);
        bucket.at = now;
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        let missing = self.burst - bucket.tokens;
        RateDecision {
            allowed,
            remaining: bucket.tokens.floor() as u64,
            reset_secs: (missing / self.rate).ceil() as u64,
            retry_after_secs: ((1.0 - bucket.tokens).max(0.0) / self.rate).ceil().max(1.0) as u64,
        }
    }
}

/// Counts failed authentications per client address in fixed one-minute windows; past the
/// allowance the address is refused (429) until the window ends, before any password check.
pub struct AuthThrottle {
    per_minute: u32,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

const WINDOW: Duration = Duration::from_secs(60);

impl AuthThrottle {
    pub fn new(failures_per_minute: u32) -> Self {
        AuthThrottle {
            per_minute: failures_per_minute.max(1),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds the address must wait, when it is over its allowance.
    pub fn blocked_for(&self, ip: IpAddr) -> Option<u64> {
        let failures = self.failures.lock().ok()?;
        let (count, since) = failures.get(&ip)?;
        let elapsed = since.elapsed();
        (*count >= self.per_minute && elapsed < WINDOW).then(|| (WINDOW - elapsed).as_secs().max(1))
    }

    pub fn record_failure(&self, ip: IpAddr) {
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, (_, since)| since.elapsed() < WINDOW);
        }
        let entry = failures.entry(ip).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_with_a_retry_time() {
        let limiter = RateLimiter::new(1, 3);
        let org = OrgId(1);
        for left in [2, 1, 0] {
            let d = limiter.check(org);
            assert!(d.allowed);
            assert_eq!(d.remaining, left);
        }
        let refused = limiter.check(org);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_secs, 1);
        assert!(
            limiter.check(OrgId(2)).allowed,
            "another organization has its own bucket"
        );
        assert_eq!(limiter.policy(), "\"per-org\";q=3;w=3");
    }

    #[test]
    fn an_address_is_blocked_after_its_allowance_of_failures() {
        let throttle = AuthThrottle::new(2);
        let ip: IpAddr = [127, 0, 0, 1].into();
        throttle.record_failure(ip);
        assert_eq!(throttle.blocked_for(ip), None);
        throttle.record_failure(ip);
        assert!(throttle.blocked_for(ip).is_some());
        assert_eq!(throttle.blocked_for([10, 0, 0, 1].into()), None);
    }
}
