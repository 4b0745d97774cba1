//! The operator's admin API (API.md §6), behind the admin bearer token.

mod error;
mod handlers;
mod manage;

pub use error::{AdminError, AdminErrorBody};

use crate::limits::AuthSubject;
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
        .routes(routes!(manage::list_orgs))
        .routes(routes!(manage::get_org))
        .routes(routes!(manage::disable_org))
        .routes(routes!(manage::enable_org))
        .routes(routes!(manage::get_limits, manage::set_limits))
        .routes(routes!(manage::list_apps))
        .routes(routes!(manage::rotate_secret))
        .routes(routes!(manage::delete_app))
        .routes(routes!(manage::list_credentials))
        .routes(routes!(manage::set_password))
        .routes(routes!(manage::delete_credential))
}

/// Proof that the request carries the admin token.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = AdminError;

    /// A wrong or missing token counts as a failed login of the client address: past the
    /// allowance the address is refused (429) before any comparison.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AdminError> {
        let address = [AuthSubject::address(crate::gate::client_ip(parts, state))];
        state
            .auth_throttle
            .check(&address)
            .map_err(AdminError::RateLimited)?;
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if token.is_some_and(|t| matches_sha256(t.trim(), &state.config.admin_token_hash)) {
            Ok(Operator)
        } else {
            state.auth_throttle.failed(&address);
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
