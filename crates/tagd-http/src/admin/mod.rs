//! The operator's admin API (API.md §6), behind the admin bearer token.

mod error;
mod handlers;

pub use error::{AdminError, AdminErrorBody};

use crate::AppState;
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use tagd_core::secrets::matches_sha256;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::create_org))
        .routes(routes!(handlers::create_app))
        .routes(routes!(handlers::revoke_tokens))
        .routes(routes!(handlers::create_basic_credential))
        .routes(routes!(handlers::create_user))
        .routes(routes!(handlers::lock_group))
}

/// Proof that the request carries the admin token.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AdminError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(AdminError::Unauthorized)?;
        if matches_sha256(token.trim(), &state.config.admin_token_hash) {
            Ok(Operator)
        } else {
            Err(AdminError::Unauthorized)
        }
    }
}

/// A JSON body whose rejections answer in the admin API's error shape.
pub struct AdminJson<T>(pub T);

impl<T: serde::de::DeserializeOwned> FromRequest<AppState> for AdminJson<T> {
    type Rejection = AdminError;

    async fn from_request(
        request: axum::extract::Request,
        state: &AppState,
    ) -> Result<Self, AdminError> {
        crate::body::read_json(request, state)
            .await
            .map(AdminJson)
            .map_err(AdminError::from)
    }
}
