//! The HTTP layer of tagd: the v2 and v5 dialects, the admin API and the operational routes,
//! on axum. Each dialect has exactly one place that turns a domain error into its envelope
//! and status; no SQL lives here, only calls to the [`Store`](tagd_core::Store).
#![forbid(unsafe_code)]

pub mod admin;
mod body;
mod cache;
mod console;
pub mod gate;
pub mod limits;
mod metrics;
mod middleware;
mod openapi;
mod ops;
pub mod schemas;
pub mod v2;
pub mod v5;
pub mod verify;

use axum::Router;
use std::sync::Arc;
use tagd_core::Store;
use utoipa_axum::router::OpenApiRouter;

pub use metrics::Metrics;
pub use middleware::REQUEST_ID;

/// Settings of the HTTP layer. The command line reads them directly (`tagd serve` flattens
/// this struct), so each setting's flag, environment variable, bounds and default are written
/// once, here; the README's table is checked against `tagd serve --help`.
#[derive(Debug, Clone, clap::Args)]
pub struct HttpConfig {
    /// SHA-256 (hex) of the operator's admin token (set by the binary, not a flag).
    #[arg(skip)]
    pub admin_token_hash: String,
    /// Lifetime of v5 access tokens, in seconds.
    #[arg(long, env = "TAGD_TOKEN_TTL_SECS", default_value_t = defaults::TOKEN_TTL_SECS,
          value_parser = clap::value_parser!(i64).range(1..=31_536_000))]
    pub token_ttl_secs: i64,
    /// How long a successful v2 Basic verification is remembered, in seconds; 0 disables it.
    #[arg(long, env = "TAGD_BASIC_AUTH_CACHE_SECS", default_value_t = defaults::BASIC_AUTH_CACHE_SECS,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub basic_auth_cache_secs: u64,
    /// How long a valid v5 token is remembered without a database lookup, in seconds; a
    /// revoked token keeps working at most this long. 0 disables it.
    #[arg(long, env = "TAGD_TOKEN_CACHE_SECS", default_value_t = defaults::TOKEN_CACHE_SECS,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub token_cache_secs: u64,
    /// Requests a second each organization may make on average (per process).
    #[arg(long, env = "TAGD_RATE_LIMIT_PER_SEC", default_value_t = defaults::RATE_LIMIT_PER_SEC,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_per_sec: u32,
    /// Requests an organization may make in a burst (per process).
    #[arg(long, env = "TAGD_RATE_LIMIT_BURST", default_value_t = defaults::RATE_LIMIT_BURST,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: u32,
    /// Failed authentications a client address may make a minute before it gets 429.
    #[arg(long, env = "TAGD_AUTH_FAILURES_PER_MINUTE", default_value_t = defaults::AUTH_FAILURES_PER_MINUTE,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub auth_failures_per_minute: u32,
    /// Longest a request may run before it is cut short and rolled back, in seconds.
    #[arg(long, env = "TAGD_REQUEST_TIMEOUT_SECS", default_value_t = defaults::REQUEST_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub request_timeout_secs: u64,
    /// Proxies (CIDR list, e.g. `10.0.0.0/8,127.0.0.1/32`) whose `X-Forwarded-For` names the
    /// client address for the login throttle.
    #[arg(long, env = "TAGD_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_cidr)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Threads that verify Basic passwords (argon2, about 50 ms and 19 MiB each); at most 32
    /// more verifications wait (`defaults::PASSWORD_VERIFY_QUEUE`), further ones get 429.
    #[arg(long, env = "TAGD_PASSWORD_VERIFIERS", default_value_t = defaults::PASSWORD_VERIFIERS,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub password_verifiers: u16,
    /// Verifications that may wait for a verifier thread (not a flag: tests lower it).
    #[arg(skip = defaults::PASSWORD_VERIFY_QUEUE)]
    pub password_verify_queue: usize,
    /// Memory the in-memory tag index may take, all organizations together, in MiB; an
    /// organization that does not fit is served from the database. 0 turns the index off.
    #[arg(long, env = "TAGD_INDEX_MEMORY_MB", default_value_t = defaults::INDEX_MEMORY_MB,
          value_parser = clap::value_parser!(u64).range(0..=1_048_576))]
    pub index_memory_mb: u64,
    /// Lets webhook endpoints be at loopback, private, link-local and metadata addresses
    /// (refused otherwise, after DNS resolution too): for tests and closed networks only.
    #[arg(long, env = "TAGD_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,
    /// The waits before each retry of a failed webhook delivery (`ms`, `s`, `m`, `h`); after
    /// the last one fails the endpoint is disabled, its position kept.
    #[arg(long, env = "TAGD_WEBHOOK_RETRY_SCHEDULE", default_value = defaults::WEBHOOK_RETRY_SCHEDULE,
          value_parser = check_retry_schedule)]
    pub webhook_retry_schedule: String,
    /// How long a webhook receiver may take to answer, in seconds.
    #[arg(long, env = "TAGD_WEBHOOK_TIMEOUT_SECS", default_value_t = defaults::WEBHOOK_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=60))]
    pub webhook_timeout_secs: u64,
    /// Also publish every event to NATS JetStream here (`nats://HOST:PORT`): stream `TAGD`,
    /// subject `tagd.<corp_id>.<type>`.
    #[arg(long, env = "TAGD_NATS_URL")]
    pub nats_url: Option<String>,
}

fn check_retry_schedule(raw: &str) -> std::result::Result<String, String> {
    tagd_core::webhooks::parse_retry_schedule(raw).map(|_| raw.to_owned())
}

impl HttpConfig {
    /// How this server delivers events, from the flags.
    pub fn delivery_settings(&self) -> tagd_core::webhooks::DeliverySettings {
        tagd_core::webhooks::DeliverySettings {
            allow_private: self.webhook_allow_private,
            retry_schedule: tagd_core::webhooks::parse_retry_schedule(&self.webhook_retry_schedule)
                .unwrap_or_else(|_| tagd_core::webhooks::DEFAULT_RETRY_SCHEDULE.to_vec()),
            timeout: std::time::Duration::from_secs(self.webhook_timeout_secs),
            nats_url: self.nats_url.clone(),
        }
    }
}

/// A network in CIDR notation; a bare address is the network of that one address.
fn parse_cidr(raw: &str) -> std::result::Result<ipnet::IpNet, String> {
    let raw = raw.trim();
    raw.parse::<ipnet::IpNet>()
        .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("`{raw}` is not an address or CIDR network"))
}

/// The default of every setting of the HTTP layer: what the command line shows in `--help`
/// and what `HttpConfig::new` uses.
pub mod defaults {
    pub const TOKEN_TTL_SECS: i64 = 7200;
    pub const BASIC_AUTH_CACHE_SECS: u64 = 30;
    pub const TOKEN_CACHE_SECS: u64 = 10;
    pub const RATE_LIMIT_PER_SEC: u32 = 2000;
    pub const RATE_LIMIT_BURST: u32 = 4000;
    pub const AUTH_FAILURES_PER_MINUTE: u32 = 60;
    pub const REQUEST_TIMEOUT_SECS: u64 = 30;
    pub const PASSWORD_VERIFIERS: u16 = 2;
    /// Verifications that may wait for a verifier thread before a login gets 429.
    pub const PASSWORD_VERIFY_QUEUE: usize = 32;
    pub const INDEX_MEMORY_MB: u64 = 1024;
    pub const WEBHOOK_RETRY_SCHEDULE: &str = "5s,5m,30m,2h,5h,10h,14h,20h,24h";
    pub const WEBHOOK_TIMEOUT_SECS: u64 = 10;
}

impl HttpConfig {
    /// Every setting at its default in [`defaults`] (what a command line without flags
    /// reads), with the admin token hash `admin_token_hash`.
    pub fn new(admin_token_hash: String) -> Self {
        HttpConfig {
            admin_token_hash,
            token_ttl_secs: defaults::TOKEN_TTL_SECS,
            basic_auth_cache_secs: defaults::BASIC_AUTH_CACHE_SECS,
            token_cache_secs: defaults::TOKEN_CACHE_SECS,
            rate_limit_per_sec: defaults::RATE_LIMIT_PER_SEC,
            rate_limit_burst: defaults::RATE_LIMIT_BURST,
            auth_failures_per_minute: defaults::AUTH_FAILURES_PER_MINUTE,
            request_timeout_secs: defaults::REQUEST_TIMEOUT_SECS,
            trusted_proxies: Vec::new(),
            password_verifiers: defaults::PASSWORD_VERIFIERS,
            password_verify_queue: defaults::PASSWORD_VERIFY_QUEUE,
            index_memory_mb: defaults::INDEX_MEMORY_MB,
            webhook_allow_private: false,
            webhook_retry_schedule: defaults::WEBHOOK_RETRY_SCHEDULE.to_owned(),
            webhook_timeout_secs: defaults::WEBHOOK_TIMEOUT_SECS,
            nats_url: None,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<HttpConfig>,
    pub metrics: Arc<Metrics>,
    /// What this server's event delivery did (`tagd-events` and the announcer count).
    pub deliveries: Arc<tagd_core::webhooks::DeliveryCounters>,
    pub basic_auth_cache: Arc<v2::BasicAuthCache>,
    pub token_cache: Arc<cache::TtlCache<tagd_core::TokenRecord>>,
    pub rate_limiter: Arc<limits::RateLimiter>,
    pub auth_throttle: Arc<limits::AuthThrottle>,
    pub verifier: Arc<verify::Verifier>,
    /// Keys the credential caches, with a key drawn at start.
    pub cache_keyer: Arc<cache::CacheKeyer>,
    /// The in-memory tag index the reads of users' tags go through.
    pub index: Arc<tagd_index::Index>,
    /// The console's signed-in sessions (this process only).
    pub console: Arc<console::Sessions>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, config: HttpConfig) -> Self {
        let cache_ttl = std::time::Duration::from_secs(config.basic_auth_cache_secs);
        let index_config = tagd_index::IndexConfig {
            memory_budget_bytes: usize::try_from(config.index_memory_mb)
                .unwrap_or(usize::MAX)
                .saturating_mul(1024 * 1024),
            ..tagd_index::IndexConfig::default()
        };
        AppState {
            index: tagd_index::Index::new(store.clone(), index_config),
            store,
            config: Arc::new(config.clone()),
            metrics: Arc::new(Metrics::default()),
            deliveries: Arc::default(),
            basic_auth_cache: Arc::new(v2::BasicAuthCache::new(cache_ttl)),
            token_cache: Arc::new(cache::TtlCache::new(std::time::Duration::from_secs(
                config.token_cache_secs,
            ))),
            rate_limiter: Arc::new(limits::RateLimiter::new(
                config.rate_limit_per_sec,
                config.rate_limit_burst,
            )),
            auth_throttle: Arc::new(limits::AuthThrottle::new(config.auth_failures_per_minute)),
            verifier: Arc::new(verify::Verifier::new(
                usize::from(config.password_verifiers),
                config.password_verify_queue,
            )),
            cache_keyer: Arc::new(cache::CacheKeyer::random()),
            console: Arc::default(),
        }
    }

    /// Forgets every cached credential of an organization (after an operator change to its
    /// credentials), so this server refuses a revoked one at once.
    pub fn forget_credentials_of(&self, org: tagd_core::OrgId) {
        self.basic_auth_cache.forget_partition(org.0);
        self.token_cache.forget_partition(org.0);
    }
}

impl cache::Partitioned for tagd_core::TokenRecord {
    fn partition(&self) -> i64 {
        self.org_id.0
    }
}

/// Every route with its OpenAPI description; the document is built from the same list, so
/// a route cannot exist without being documented.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(ops::routes())
        .merge(admin::routes())
        .merge(v5::routes())
        .merge(v2::routes())
}

/// The OpenAPI 3.1 document of every route.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut document = routes().split_for_parts().1;
    openapi::add_gate_responses(&mut document);
    document
}

/// The complete application: routes, the console, `/openapi.json`, and the observing
/// middleware.
pub fn app(state: AppState) -> Router {
    let router = routes().split_for_parts().0.merge(console::routes());
    finish(router, state)
}

/// The application split for `--admin-listen`: the dialects and operational routes for the
/// public address, and the admin API for the operator's address. Both serve `/openapi.json`
/// (the whole document) and the operational routes.
pub fn app_split(state: AppState) -> (Router, Router) {
    let public = OpenApiRouter::new()
        .merge(ops::routes())
        .merge(v5::routes())
        .merge(v2::routes())
        .split_for_parts()
        .0;
    let admin = OpenApiRouter::new()
        .merge(ops::routes())
        .merge(admin::routes())
        .split_for_parts()
        .0
        .merge(console::routes());
    (finish(public, state.clone()), finish(admin, state))
}

/// `/openapi.json`, the body limit and the observing middleware around `router`.
fn finish(router: Router<AppState>, state: AppState) -> Router {
    let document = Arc::new(openapi_document());
    router
        .merge(ops::openapi_route(document))
        // The dialects read bodies with their own limit (and drain what is over it); this one
        // guards every other route.
        .layer(axum::extract::DefaultBodyLimit::max(gate::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::observe,
        ))
        .with_state(state)
}
