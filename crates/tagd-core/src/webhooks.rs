//! Webhook endpoints (API.md §12): where an organization's events are sent, with the secret
//! that signs them, which events, and how far delivery has got. The rules live here: what a
//! valid endpoint URL is, which addresses may be called, the retry schedule, the secrets that
//! sign at a given moment. Delivery itself is `tagd-events`.

use crate::{Description, ExternalId, OrgId, Result};
use async_trait::async_trait;
use base64::Engine;
use rand::RngCore;
use std::net::IpAddr;
use std::time::Duration;

/// Webhook endpoints one organization may keep.
pub const MAX_WEBHOOKS: i64 = 25;
/// The longest endpoint URL accepted.
pub const MAX_URL_CHARS: usize = 2048;
/// How long the secret a rotation replaced keeps signing beside the new one.
pub const SECRET_OVERLAP_SECS: i64 = 24 * 3600;
/// How long one delivery may take before it counts as failed.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Delivery attempts kept per endpoint for `webhooks/deliveries`.
pub const KEPT_ATTEMPTS: i64 = 100;
/// The waits before each retry of a failed delivery (API.md §12); after the last one fails,
/// the endpoint is disabled with its position kept.
pub const DEFAULT_RETRY_SCHEDULE: [Duration; 9] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(14 * 3600),
    Duration::from_secs(20 * 3600),
    Duration::from_secs(24 * 3600),
];

/// Every event type (API.md §12), as `event_types` names them.
pub const EVENT_TYPES: [&str; 13] = [
    "tag.assigned",
    "tag.removed",
    "tag.expired",
    "group.created",
    "group.updated",
    "group.activated",
    "group.deactivated",
    "label.created",
    "user.created",
    "segment.saved",
    "segment.deleted",
    "segment.entered",
    "segment.exited",
];

/// How this server delivers events: set by the operator, the same for every organization.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliverySettings {
    /// Endpoints at loopback, private, link-local and metadata addresses are allowed
    /// (`--webhook-allow-private`; for tests and closed networks).
    pub allow_private: bool,
    pub retry_schedule: Vec<Duration>,
    pub timeout: Duration,
    /// Every event is also published to NATS JetStream here (`--nats-url`).
    pub nats_url: Option<String>,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            allow_private: false,
            retry_schedule: DEFAULT_RETRY_SCHEDULE.to_vec(),
            timeout: DELIVERY_TIMEOUT,
            nats_url: None,
        }
    }
}

/// Parses a retry schedule such as `5s,5m,30m,2h` (also `250ms`); 1–20 waits of at most
/// 7 days each.
pub fn parse_retry_schedule(raw: &str) -> std::result::Result<Vec<Duration>, String> {
    let waits = raw
        .split(',')
        .map(|part| parse_wait(part.trim()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if waits.is_empty() || waits.len() > 20 {
        return Err("give 1 to 20 waits, such as 5s,5m,30m".into());
    }
    Ok(waits)
}

fn parse_wait(part: &str) -> std::result::Result<Duration, String> {
    let split = part
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{part}` has no unit (ms, s, m or h)"))?;
    let (digits, unit) = part.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{part}` does not start with a number"))?;
    let wait = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("`{part}`: the unit is ms, s, m or h")),
    };
    if wait > Duration::from_secs(7 * 24 * 3600) {
        return Err(format!("`{part}` is longer than 7 days"));
    }
    Ok(wait)
}

/// A new signing secret: `whsec_` and 32 random bytes in base64, as Standard Webhooks has it.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The key bytes of a `whsec_…` secret (what the HMAC is keyed with).
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
}

/// May an endpoint be called at `ip`? Not at loopback, private (RFC 1918, unique local),
/// link-local (which holds the cloud metadata address 169.254.169.254), shared (CGNAT),
/// unspecified, multicast or broadcast addresses, nor at an IPv6 form of one of those.
pub fn address_allowed(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return address_allowed(IpAddr::V4(v4));
            }
            let segments = v6.segments();
            // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [.., a, b] = segments;
                let v4 = std::net::Ipv4Addr::from((u32::from(a) << 16) | u32::from(b));
                return address_allowed(IpAddr::V4(v4));
            }
            let first = segments[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// An endpoint URL: `http` or `https`, with a host, no credentials, at most
/// [`MAX_URL_CHARS`]; with `allow_private` false, a literal address must be allowed
/// ([`address_allowed`]; host names are checked after resolution, at every delivery).
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub fn parse(raw: &str, allow_private: bool) -> Result<Self> {
        let invalid = |message: &str| crate::Error::invalid("url", message);
        if raw.chars().count() > MAX_URL_CHARS {
            return Err(invalid(&format!(
                "must be at most {MAX_URL_CHARS} characters"
            )));
        }
        let url = url::Url::parse(raw.trim()).map_err(|e| invalid(&format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("must be an http or https URL"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("must not carry a user name or password"));
        }
        let host = match url.host() {
            Some(host) => host,
            None => return Err(invalid("has no host")),
        };
        let literal = match host {
            url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
            url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
            url::Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                (name == "localhost" || name.ends_with(".localhost"))
                    .then_some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
            }
        };
        if !allow_private && literal.is_some_and(|ip| !address_allowed(ip)) {
            return Err(invalid(
                "is a loopback, private, link-local or metadata address, which this server \
                 does not call (the operator allows those with --webhook-allow-private)",
            ));
        }
        Ok(WebhookUrl(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn from_trusted(raw: String) -> Self {
        WebhookUrl(raw)
    }
}

/// The event types an endpoint asks for: known names, no repeats; empty means all.
pub fn parse_event_types(raw: &[String]) -> Result<Vec<String>> {
    let mut types: Vec<String> = Vec::with_capacity(raw.len());
    for (i, name) in raw.iter().enumerate() {
        if !EVENT_TYPES.contains(&name.as_str()) {
            return Err(crate::Error::invalid(
                format!("event_types[{i}]"),
                format!("`{name}` is not an event type ({})", EVENT_TYPES.join(", ")),
            ));
        }
        if !types.contains(name) {
            types.push(name.clone());
        }
    }
    Ok(types)
}

/// What a client sets on an endpoint; on update, `None` keeps what is there.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WebhookFields {
    pub url: Option<WebhookUrl>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<Description>,
    /// `false` pauses delivery, `true` resumes it (also after the endpoint was disabled by
    /// a 410 or by running out of retries), from where it stopped.
    pub enabled: Option<bool>,
}

/// One webhook endpoint of an organization.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub org_id: OrgId,
    /// Internal id.
    pub id: i64,
    pub webhook_id: ExternalId,
    pub url: WebhookUrl,
    /// Empty: every type.
    pub event_types: Vec<String>,
    pub description: Description,
    pub secret: String,
    /// The secret a rotation replaced, and until when (Unix seconds) it still signs.
    pub previous_secret: Option<(String, i64)>,
    pub enabled: bool,
    /// Why delivery stopped, when it was not the client who paused it.
    pub disabled_reason: Option<String>,
    /// Every event up to this version has been delivered (or was not wanted).
    pub delivered_version: i64,
    /// Failed attempts at the next event, and when (Unix milliseconds) to try it again.
    pub failures: i64,
    pub next_attempt_ms: Option<i64>,
    /// Bumped by every change a client makes (a worker holding an older copy reloads).
    pub version: i64,
    /// Bumped by every replay: a worker that loaded the endpoint before one never saves its
    /// position over it.
    pub replays: i64,
    pub ctime: i64,
    pub mtime: i64,
}

impl Webhook {
    /// Does the endpoint want events of `kind`?
    pub fn wants(&self, kind: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|t| t == kind)
    }

    /// Takes what a client may change (URL, event types, secrets) from a fresher copy,
    /// keeping this copy's delivery position.
    pub fn adopt_settings(&mut self, fresh: Webhook) {
        self.url = fresh.url;
        self.event_types = fresh.event_types;
        self.description = fresh.description;
        self.secret = fresh.secret;
        self.previous_secret = fresh.previous_secret;
        self.version = fresh.version;
    }

    /// The secrets that sign a delivery made at `now` (Unix seconds): the current one, and
    /// the one it replaced while that is within its 24 hours.
    pub fn signing_secrets(&self, now: i64) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let Some((previous, until)) = &self.previous_secret {
            if now < *until {
                secrets.push(previous.as_str());
            }
        }
        secrets
    }
}

/// Where a replay "from version `from_version`" resumes delivery: after the version before
/// it. Versions start at 1.
pub fn replay_position(from_version: i64) -> Result<i64> {
    if from_version < 1 {
        return Err(crate::Error::invalid("from_version", "must be 1 or more"));
    }
    Ok(from_version - 1)
}

/// A new endpoint fits beside the organization's `live` ones.
pub fn check_room(live: i64) -> Result<()> {
    if live >= MAX_WEBHOOKS {
        return Err(crate::Error::WebhookLimit { max: MAX_WEBHOOKS });
    }
    Ok(())
}

/// One delivery attempt, as `webhooks/deliveries` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryAttempt {
    pub event_id: String,
    pub event_type: String,
    pub version: i64,
    /// 1 for the first try of this event, 2 for its first retry, …
    pub attempt: i64,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<i64>,
    pub duration_ms: i64,
    /// Why it failed (a status that is not 2xx, a timeout, a refused address, …).
    pub error: Option<String>,
    /// Unix seconds.
    pub at: i64,
}

/// Where a worker has got with an endpoint, saved with the attempts it made.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookProgress {
    pub delivered_version: i64,
    pub failures: i64,
    pub next_attempt_ms: Option<i64>,
    /// Set when delivery stops: the endpoint answered 410, or the retries ran out.
    pub disabled_reason: Option<String>,
}

/// What this server delivered since it started, for `/metrics`.
#[derive(Debug, Default)]
pub struct DeliveryCounters {
    /// Webhook requests answered 2xx.
    pub webhook_delivered: std::sync::atomic::AtomicU64,
    /// Webhook requests that failed (another status, a timeout, a refused address).
    pub webhook_failed: std::sync::atomic::AtomicU64,
    /// Endpoints this server disabled (410, retries exhausted).
    pub webhook_disabled: std::sync::atomic::AtomicU64,
    /// Events JetStream acknowledged.
    pub nats_published: std::sync::atomic::AtomicU64,
    /// Publishing rounds that failed (NATS down, the database busy); retried.
    pub nats_failures: std::sync::atomic::AtomicU64,
    /// `segment.entered` and `segment.exited` recorded.
    pub segment_moves: std::sync::atomic::AtomicU64,
}

impl DeliveryCounters {
    pub fn add(counter: &std::sync::atomic::AtomicU64, n: u64) {
        counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How long a lease on a delivery position lasts unless renewed (seconds): a server that
/// dies lets go of what it delivered after this.
pub const LEASE_SECS: i64 = 10;
/// A held lease is renewed after this long (well within [`LEASE_SECS`]).
pub const LEASE_RENEW: Duration = Duration::from_secs(3);

/// A delivery worker's claim on an endpoint or sink: its name and how long it holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease<'a> {
    pub owner: &'a str,
    pub now: i64,
    pub until: i64,
}

impl<'a> Lease<'a> {
    /// A lease of [`LEASE_SECS`] from now.
    pub fn from_now(owner: &'a str) -> Self {
        let now = crate::timefmt::now_unix();
        Lease {
            owner,
            now,
            until: now + LEASE_SECS,
        }
    }
}

/// Webhook endpoints and delivery positions in the store.
#[async_trait]
pub trait Webhooks {
    /// A new endpoint, delivering the events committed from now on. `WebhookLimit` past
    /// [`MAX_WEBHOOKS`].
    async fn create_webhook(
        &self,
        org: OrgId,
        url: &WebhookUrl,
        event_types: &[String],
        description: &Description,
        secret: &str,
        record: &crate::Recorder<Webhook>,
    ) -> Result<Webhook>;
    /// Changes what `fields` sets (`WebhookNotFound`).
    async fn update_webhook(
        &self,
        org: OrgId,
        id: &ExternalId,
        fields: &WebhookFields,
    ) -> Result<Webhook>;
    async fn delete_webhook(&self, org: OrgId, id: &ExternalId) -> Result<()>;
    /// A new secret; the old one signs beside it until `previous_until`.
    async fn rotate_webhook_secret(
        &self,
        org: OrgId,
        id: &ExternalId,
        secret: &str,
        previous_until: i64,
        record: &crate::Recorder<Webhook>,
    ) -> Result<Webhook>;
    /// Delivers again every event after `after_version` (and resumes a disabled endpoint).
    async fn replay_webhook(
        &self,
        org: OrgId,
        id: &ExternalId,
        after_version: i64,
    ) -> Result<Webhook>;
    async fn find_webhook(&self, org: OrgId, id: &ExternalId) -> Result<Option<Webhook>>;
    /// Live endpoints by creation.
    async fn list_webhooks(&self, org: OrgId) -> Result<Vec<Webhook>>;
    /// The most recent attempts at an endpoint, newest first.
    async fn webhook_attempts(
        &self,
        org: OrgId,
        id: &ExternalId,
        limit: usize,
    ) -> Result<Vec<DeliveryAttempt>>;

    // Delivery (every organization; the workers of `tagd-events`).

    /// Every enabled live endpoint, as (organization, internal id, version).
    async fn deliverable_webhooks(&self) -> Result<Vec<(OrgId, i64, i64)>>;
    /// Takes or renews the lease on an endpoint: the endpoint, or `None` when another
    /// worker holds it, or it is deleted or not enabled.
    async fn claim_webhook(
        &self,
        org: OrgId,
        id: i64,
        lease: &Lease<'_>,
    ) -> Result<Option<Webhook>>;
    /// Saves progress and the attempts made, if the lease is still held and no replay came
    /// since the worker's copy (`replays`); `false` otherwise (the worker reloads or lets go).
    async fn save_webhook_progress(
        &self,
        org: OrgId,
        id: i64,
        (lease, replays): (&Lease<'_>, i64),
        progress: &WebhookProgress,
        attempts: &[DeliveryAttempt],
    ) -> Result<bool>;
    /// Takes or renews the lease on the organization's position in `sink` (such as `nats`):
    /// the version delivered so far, or `None` when another worker holds it.
    async fn claim_sink(&self, org: OrgId, sink: &str, lease: &Lease<'_>) -> Result<Option<i64>>;
    /// Saves the position in `sink` if the lease is still held.
    async fn save_sink(
        &self,
        org: OrgId,
        sink: &str,
        lease: &Lease<'_>,
        delivered: i64,
    ) -> Result<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_link_local_and_metadata_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "::",
        ] {
            assert!(
                !address_allowed(ip.parse().expect("present")),
                "{ip} refused"
            );
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "100.128.0.1",
            "64:ff9b::808:808",
        ] {
            assert!(
                address_allowed(ip.parse().expect("present")),
                "{ip} allowed"
            );
        }
    }

    #[test]
    fn endpoint_urls_are_http_or_https_with_a_host_and_no_private_literal() {
        assert!(WebhookUrl::parse("https://hooks.example.com/tagd", false).is_ok());
        assert!(WebhookUrl::parse("http://203.0.113.9:8080/x", false).is_ok());
        for bad in [
            "ftp://example.com/",
            "not a url",
            "http://user:pw@example.com/",
            "http://127.0.0.1:9000/",
            "http://localhost/",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data",
        ] {
            assert!(WebhookUrl::parse(bad, false).is_err(), "{bad} refused");
        }
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/", true).is_ok());
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS));
        assert!(WebhookUrl::parse(&long, true).is_err());
    }

    #[test]
    fn a_retry_schedule_reads_units_and_refuses_nonsense() {
        assert_eq!(
            parse_retry_schedule("250ms, 1s,2m,1h").expect("present"),
            [
                Duration::from_millis(250),
                Duration::from_secs(1),
                Duration::from_secs(120),
                Duration::from_secs(3600)
            ]
        );
        for bad in ["", "5", "5x", "s", "200h"] {
            assert!(parse_retry_schedule(bad).is_err(), "{bad} refused");
        }
    }

    #[test]
    fn a_rotated_secret_signs_beside_the_new_one_for_its_window_only() {
        let hook = Webhook {
            org_id: OrgId(1),
            id: 1,
            webhook_id: ExternalId::generate(),
            url: WebhookUrl::from_trusted("https://example.com/".into()),
            event_types: vec!["tag.assigned".into()],
            description: Description::from_trusted(String::new()),
            secret: "new".into(),
            previous_secret: Some(("old".into(), 100)),
            enabled: true,
            disabled_reason: None,
            delivered_version: 0,
            failures: 0,
            next_attempt_ms: None,
            version: 0,
            replays: 0,
            ctime: 0,
            mtime: 0,
        };
        assert_eq!(hook.signing_secrets(99), ["new", "old"]);
        assert_eq!(hook.signing_secrets(100), ["new"]);
        assert!(hook.wants("tag.assigned") && !hook.wants("tag.removed"));
    }

    #[test]
    fn a_generated_secret_decodes_to_32_key_bytes() {
        let secret = generate_secret();
        assert!(secret.starts_with("whsec_"));
        assert_eq!(secret_key(&secret).map(|k| k.len()), Some(32));
    }
}
