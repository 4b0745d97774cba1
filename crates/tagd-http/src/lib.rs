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
pub mod v2;
pub mod v5;

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
}

impl HttpConfig {
    /// The defaults of the command line, for `admin_token_hash`.
    pub fn new(admin_token_hash: String) -> Self {
        HttpConfig {
            admin_token_hash,
            token_ttl_secs: 7200,
            basic_auth_cache_secs: 30,
            token_cache_secs: 10,
            rate_limit_per_sec: 2000,
            rate_limit_burst: 4000,
            auth_failures_per_minute: 60,
            request_timeout_secs: 30,
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
        }
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
    let (router, mut document) = routes().split_for_parts();
    openapi::add_gate_responses(&mut document);
    let document = Arc::new(document);
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
