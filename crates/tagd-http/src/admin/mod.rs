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

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    handlers::routes().merge(manage::routes())
}

/// The organization an admin path names.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrgPath {
    /// The organization's 32-hex id
    #[param(value_type = crate::schemas::ExternalId, inline)]
    pub corp_id: String,
}

/// An app of the organization an admin path names.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrgAppPath {
    /// The organization's 32-hex id
    #[param(value_type = crate::schemas::ExternalId, inline)]
    pub corp_id: String,
    /// The app's 32-hex id
    #[param(value_type = crate::schemas::ExternalId, inline)]
    pub app_id: String,
}

/// A tag group of the organization an admin path names.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrgGroupPath {
    /// The organization's 32-hex id
    #[param(value_type = crate::schemas::ExternalId, inline)]
    pub corp_id: String,
    /// The tag group's 32-hex id
    #[param(value_type = crate::schemas::ExternalId, inline)]
    pub entity_id: String,
}

/// A Basic credential of the organization an admin path names.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrgCredentialPath {
    /// The organization's 32-hex id
    #[param(value_type = crate::schemas::ExternalId, inline)]
    pub corp_id: String,
    /// The credential's user name
    pub username: String,
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
