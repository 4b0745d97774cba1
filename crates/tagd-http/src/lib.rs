//! The HTTP layer of tagd: the v2 and v5 dialects, the admin API and the operational routes,
//! on axum. Each dialect has exactly one place that turns a domain error into its envelope
//! and status; no SQL lives here, only calls to the [`Store`](tagd_core::Store).
#![forbid(unsafe_code)]

pub mod admin;
mod body;
mod cache;
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

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// SHA-256 (hex) of the operator's admin token.
    pub admin_token_hash: String,
    /// Lifetime of v5 access tokens, in seconds.
    pub token_ttl_secs: i64,
    /// How long a successful v2 Basic verification is remembered, in seconds (0: never).
    pub basic_auth_cache_secs: u64,
    /// How long a valid v5 token is remembered without asking the database, in seconds
    /// (0: never); a revoked token keeps working at most this long.
    pub token_cache_secs: u64,
    /// Requests a second each organization may make on average...
    pub rate_limit_per_sec: u32,
    /// ...and in a burst.
    pub rate_limit_burst: u32,
    /// Failed authentications a client address may make a minute before it is refused.
    pub auth_failures_per_minute: u32,
    /// Longest a request may run before it is cut short (and rolled back).
    pub request_timeout_secs: u64,
    /// Proxies whose `X-Forwarded-For` names the client address.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Threads that verify Basic passwords (argon2), and verifications that may wait for one.
    pub password_verifiers: usize,
    pub password_verify_queue: usize,
}

/// The default of every setting of the HTTP layer: what `HttpConfig::new` uses and what the
/// command line shows in `--help` (the README's table is checked against that help).
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
}

impl HttpConfig {
    /// The defaults of [`defaults`], for `admin_token_hash`.
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
            password_verifiers: usize::from(defaults::PASSWORD_VERIFIERS),
            password_verify_queue: defaults::PASSWORD_VERIFY_QUEUE,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<HttpConfig>,
    pub metrics: Arc<Metrics>,
    pub basic_auth_cache: Arc<v2::BasicAuthCache>,
    pub token_cache: Arc<cache::TtlCache<tagd_core::TokenRecord>>,
    pub rate_limiter: Arc<limits::RateLimiter>,
    pub auth_throttle: Arc<limits::AuthThrottle>,
    pub verifier: Arc<verify::Verifier>,
    /// Keys the credential caches, with a key drawn at start.
    pub cache_keyer: Arc<cache::CacheKeyer>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, config: HttpConfig) -> Self {
        let cache_ttl = std::time::Duration::from_secs(config.basic_auth_cache_secs);
        AppState {
            store,
            config: Arc::new(config.clone()),
            metrics: Arc::new(Metrics::default()),
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
                config.password_verifiers,
                config.password_verify_queue,
            )),
            cache_keyer: Arc::new(cache::CacheKeyer::random()),
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

/// The complete application: routes, `/openapi.json`, and the observing middleware.
pub fn app(state: AppState) -> Router {
    let router = routes().split_for_parts().0;
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
        .0;
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
