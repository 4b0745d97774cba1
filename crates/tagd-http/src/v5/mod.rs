//! The v5 tag-group dialect (API.md §4, §5): token auth, tag groups, user tags, users.

pub(crate) mod batch;
mod error;
pub mod events;
mod expiry;
mod extract;
pub(crate) mod groups;
mod history;
mod saved_segments;
mod segments;
pub(crate) use saved_segments::save_segment;
pub(crate) use segments::stream_members;
pub(crate) use webhooks::new_webhook;
mod tags;
mod token;
mod views;
mod webhooks;

pub use error::{V5Error, V5ErrorBody};

use crate::gate::{gate, Dialect};
use crate::AppState;
use axum::http::request::Parts;
use extract::V5Caller;
use tagd_core::OrgId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The v5 dialect at the gate.
pub struct V5;

impl Dialect for V5 {
    type Caller = V5Caller;
    type Error = V5Error;

    async fn authenticate(parts: &mut Parts, state: &AppState) -> Result<V5Caller, V5Error> {
        extract::authenticate(parts, state).await
    }

    fn org(caller: &V5Caller) -> OrgId {
        caller.org
    }
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    // The token endpoint is how a caller gets in: it has no organization yet to gate by.
    OpenApiRouter::new()
        .routes(routes!(token::issue_token))
        .merge(gated_routes())
}

fn gated_routes() -> OpenApiRouter<AppState> {
    groups::routes()
        .merge(tags::routes())
        .merge(batch::routes())
        .merge(segments::routes())
        .merge(saved_segments::routes())
        .merge(history::routes())
        .merge(webhooks::routes())
        .route_layer(axum::middleware::from_fn(gate::<V5>))
}
