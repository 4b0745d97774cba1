//! Per-organization rate limits (a token bucket each) and a per-address throttle on failed
//! authentication. Both live in memory, per process: with several tagd processes behind a
//! balancer, each enforces its own share.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
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

/// What failed authentications are counted against: the client address, and the identity
/// tried, so an attacker rotating addresses still runs out on the one user name or app.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuthSubject {
    /// Build with [`AuthSubject::address`]: an IPv6 client counts as its /64, the block one
    /// host is usually given, so it cannot rotate through its own addresses.
    Address(IpAddr),
    /// A v2 Basic user name.
    User(String),
    /// A v5 app id (token requests).
    App(String),
}

impl AuthSubject {
    pub fn address(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                AuthSubject::Address(IpAddr::V6(prefix.into()))
            }
            v4 => AuthSubject::Address(v4),
        }
    }
}

/// Counts failed authentications per subject in fixed one-minute windows. A verification
/// takes a slot in each of its subjects *before* it starts ([`AuthThrottle::begin`]), so
/// concurrent attempts count, and gives them back only when it succeeds: a failure, or a
/// request dropped mid-way, keeps its slot. Past the allowance the subject is refused (429)
/// until its window ends, before any verification runs.
pub struct AuthThrottle {
    per_minute: u32,
    failures: Mutex<Failures>,
    /// When ended windows were last swept from a full map (at most once a second, so a full
    /// map does not cost a scan per request).
    swept: Mutex<Instant>,
}

const WINDOW: Duration = Duration::from_secs(60);

impl AuthThrottle {
    pub fn new(failures_per_minute: u32) -> Self {
        AuthThrottle {
            per_minute: failures_per_minute.max(1),
            failures: Mutex::new(HashMap::new()),
            swept: Mutex::new(Instant::now()),
        }
    }

    /// Takes a slot in every subject, or none and answers the seconds to wait when one of
    /// them is out of slots.
    pub fn begin(self: &Arc<Self>, subjects: Vec<AuthSubject>) -> Result<AuthAttempt, u64> {
        let Ok(mut failures) = self.failures.lock() else {
            return Err(1);
        };
        let room = self.make_room(&mut failures);
        if !room && subjects.iter().any(|s| !failures.contains_key(s)) {
            // Full of live windows (a flood of made-up subjects): fail closed for new ones
            // rather than let their verifications run uncounted.
            return Err(1);
        }
        let now = Instant::now();
        let mut wait = None;
        for subject in &subjects {
            if let Some((count, since)) = failures.get_mut(subject) {
                if since.elapsed() >= WINDOW {
                    (*count, *since) = (0, now);
                }
                if *count >= self.per_minute {
                    let left = (WINDOW - since.elapsed()).as_secs().max(1);
                    wait = Some(wait.map_or(left, |w: u64| w.max(left)));
                }
            }
        }
        if let Some(wait) = wait {
            return Err(wait);
        }
        for subject in &subjects {
            count_one(&mut failures, subject, now, room);
        }
        Ok(AuthAttempt {
            throttle: self.clone(),
            subjects,
        })
    }

    /// Drops windows that ended when the map is full (at most once a second); answers whether
    /// new subjects fit. Memory stays bounded at [`MAX_TRACKED`] entries: when an attacker
    /// fills the map with live windows, tracked subjects still count, a verification for an
    /// untracked one is refused, and a cheap failure of an untracked one goes uncounted.
    fn make_room(&self, failures: &mut Failures) -> bool {
        if failures.len() >= MAX_TRACKED {
            let due = self.swept.lock().map_or(true, |mut swept| {
                let due = swept.elapsed() >= Duration::from_secs(1);
                if due {
                    *swept = Instant::now();
                }
                due
            });
            if due {
                failures.retain(|_, (_, since)| since.elapsed() < WINDOW);
            }
        }
        failures.len() < MAX_TRACKED
    }

    /// Seconds `subject` must wait, when it is out of slots.
    pub fn blocked_for(&self, subject: &AuthSubject) -> Option<u64> {
        let failures = self.failures.lock().ok()?;
        let (count, since) = failures.get(subject)?;
        let elapsed = since.elapsed();
        (*count >= self.per_minute && elapsed < WINDOW).then(|| (WINDOW - elapsed).as_secs().max(1))
    }

    /// For checks too cheap to be worth racing (a token lookup, a SHA-256 comparison): refused
    /// while any subject is out of slots, otherwise nothing is taken until [`Self::failed`].
    pub fn check(&self, subjects: &[AuthSubject]) -> Result<(), u64> {
        match subjects.iter().filter_map(|s| self.blocked_for(s)).max() {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Counts one failure against every subject.
    pub fn failed(&self, subjects: &[AuthSubject]) {
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        let room = self.make_room(&mut failures);
        let now = Instant::now();
        for subject in subjects {
            count_one(&mut failures, subject, now, room);
        }
    }

    fn give_back(&self, subjects: &[AuthSubject]) {
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        for subject in subjects {
            if let Some((count, _)) = failures.get_mut(subject) {
                *count = count.saturating_sub(1);
            }
        }
    }
}

type Failures = HashMap<AuthSubject, (u32, Instant)>;

fn count_one(failures: &mut Failures, subject: &AuthSubject, now: Instant, room: bool) {
    match failures.get_mut(subject) {
        Some(entry) => {
            if entry.1.elapsed() >= WINDOW {
                *entry = (0, now);
            }
            entry.0 += 1;
        }
        None if room => {
            failures.insert(subject.clone(), (1, now));
        }
        None => {}
    }
}

/// The slots one verification holds; they stay counted as failures unless
/// [`AuthAttempt::succeeded`] gives them back.
#[must_use = "an attempt that is dropped counts as a failure"]
pub struct AuthAttempt {
    throttle: Arc<AuthThrottle>,
    subjects: Vec<AuthSubject>,
}

impl AuthAttempt {
    pub fn succeeded(self) {
        self.throttle.give_back(&self.subjects);
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

    fn address(last: u8) -> AuthSubject {
        AuthSubject::Address([127, 0, 0, last].into())
    }

    #[test]
    fn an_address_is_blocked_after_its_allowance_of_failures() {
        let throttle = Arc::new(AuthThrottle::new(2));
        drop(throttle.begin(vec![address(1)]));
        assert_eq!(throttle.blocked_for(&address(1)), None);
        drop(throttle.begin(vec![address(1)]));
        assert!(throttle.blocked_for(&address(1)).is_some());
        assert!(throttle.begin(vec![address(1)]).is_err());
        assert_eq!(throttle.blocked_for(&address(2)), None);
    }

    #[test]
    fn concurrent_attempts_each_hold_a_slot_until_they_succeed() {
        let throttle = Arc::new(AuthThrottle::new(3));
        let held: Vec<_> = (0..3)
            .map(|_| throttle.begin(vec![address(1)]).expect("a slot"))
            .collect();
        assert!(
            throttle.begin(vec![address(1)]).is_err(),
            "three verifications in flight use the allowance"
        );
        for attempt in held {
            attempt.succeeded();
        }
        assert!(
            throttle.begin(vec![address(1)]).is_ok(),
            "successes give slots back"
        );
    }

    #[test]
    fn an_ipv6_host_counts_as_its_64_and_a_mapped_ipv4_as_itself() {
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(AuthSubject::address(a), AuthSubject::address(b));
        assert_ne!(AuthSubject::address(a), AuthSubject::address(other));
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().expect("ip");
        assert_eq!(
            AuthSubject::address(mapped),
            AuthSubject::Address([10, 1, 2, 3].into())
        );
    }

    #[test]
    fn a_full_map_refuses_verifications_for_new_subjects_and_stays_bounded() {
        let throttle = Arc::new(AuthThrottle::new(5));
        {
            let mut failures = throttle.failures.lock().expect("lock");
            for n in 0..MAX_TRACKED {
                failures.insert(AuthSubject::User(n.to_string()), (1, Instant::now()));
            }
        }
        assert!(throttle
            .begin(vec![AuthSubject::User("new".into())])
            .is_err());
        throttle.failed(&[AuthSubject::User("new too".into())]);
        assert!(
            throttle.begin(vec![AuthSubject::User("7".into())]).is_ok(),
            "a tracked subject still has its allowance"
        );
        assert_eq!(throttle.failures.lock().expect("lock").len(), MAX_TRACKED);
    }

    #[test]
    fn a_user_name_runs_out_whatever_address_tries_it() {
        let throttle = Arc::new(AuthThrottle::new(2));
        let user = || AuthSubject::User("loyalty".into());
        for last in [1, 2] {
            drop(throttle.begin(vec![address(last), user()]));
        }
        assert!(throttle.begin(vec![address(3), user()]).is_err());
        assert!(
            throttle.begin(vec![address(3)]).is_ok(),
            "a refused attempt took no slot of the address"
        );
    }
}
