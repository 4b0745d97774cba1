//! The HTTP layer of tagd: the v2 and v5 dialects, the admin API and the operational routes,
//! on axum. Each dialect has exactly one place that turns a domain error into its envelope
//! and status; no SQL lives here, only calls to the [`Store`](tagd_core::Store).
#![forbid(unsafe_code)]

pub mod admin;
mod body;
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
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<HttpConfig>,
    pub metrics: Arc<Metrics>,
    pub basic_auth_cache: Arc<v2::BasicAuthCache>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, config: HttpConfig) -> Self {
        let cache_ttl = std::time::Duration::from_secs(config.basic_auth_cache_secs);
        AppState {
            store,
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
            basic_auth_cache: Arc::new(v2::BasicAuthCache::new(cache_ttl)),
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
    routes().split_for_parts().1
}

/// The complete application: routes, `/openapi.json`, and the observing middleware.
pub fn app(state: AppState) -> Router {
    let (router, document) = routes().split_for_parts();
    let document = Arc::new(document);
    router
        .merge(ops::openapi_route(document))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::observe,
        ))
        .with_state(state)
}
