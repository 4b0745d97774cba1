//! The v5 tag-group dialect (API.md §4, §5): token auth, tag groups, user tags, users.

mod error;
mod extract;
mod groups;
mod tags;
mod token;
mod views;

pub use error::{V5Error, V5ErrorBody};

use crate::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(token::issue_token))
        .routes(routes!(groups::create_group))
        .routes(routes!(groups::list_groups))
        .routes(routes!(groups::update_group))
        .routes(routes!(groups::deactivate_group))
        .routes(routes!(groups::activate_group))
        .routes(routes!(tags::assign_tag))
        .routes(routes!(tags::list_user_tags))
        .routes(routes!(tags::remove_tag))
        .routes(routes!(tags::create_user))
}
