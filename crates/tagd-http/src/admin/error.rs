//! The admin API's one error mapping: conventional HTTP statuses and a JSON body
//! `{"error": {"code": "...", "message": "..."}}`.

use crate::body::BodyError;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tagd_core::Error;
use utoipa::ToSchema;

#[derive(Debug)]
pub enum AdminError {
    Unauthorized,
    /// Too many failed admin authentications from this address; retry after this many seconds.
    RateLimited(u64),
    Domain(Error),
    /// The body is not the JSON the route takes (400), or is over 1 MiB (413).
    BadBody(StatusCode, String),
}

#[derive(Serialize, ToSchema)]
pub struct AdminErrorBody {
    error: AdminErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct AdminErrorDetail {
    /// A stable word: `unauthorized`, `rate_limited`, `invalid_parameter`, `not_found`, `conflict`,
    /// `busy`, `internal`.
    code: &'static str,
    message: String,
}

impl From<Error> for AdminError {
    fn from(e: Error) -> Self {
        AdminError::Domain(e)
    }
}

impl From<BodyError> for AdminError {
    fn from(e: BodyError) -> Self {
        if e.too_large {
            return AdminError::BadBody(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body over 1 MiB".into(),
            );
        }
        AdminError::BadBody(
            StatusCode::BAD_REQUEST,
            format!("invalid parameter `{}`: {}", e.field, e.message),
        )
    }
}

impl AdminError {
    /// Seconds to wait before trying again, when waiting helps.
    pub(crate) fn retry_after(&self) -> Option<u64> {
        match self {
            AdminError::RateLimited(secs) => Some(*secs),
            AdminError::Domain(e) if e.is_transient() => Some(1),
            _ => None,
        }
    }

    /// The HTTP status, the stable code word and the message in words: what the admin API
    /// answers in JSON and the console shows on its pages.
    pub(crate) fn classify(self) -> (StatusCode, &'static str, String) {
        match self {
            AdminError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid admin token is required".to_owned(),
            ),
            AdminError::RateLimited(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many failed admin logins from this address; retry after Retry-After seconds"
                    .to_owned(),
            ),
            AdminError::BadBody(status, message) => (status, "invalid_parameter", message),
            AdminError::Domain(e) => match e {
                Error::InvalidParameter { .. }
                | Error::InvalidValue(_)
                | Error::FilterInvalid { .. }
                | Error::FilterTooLarge(_)
                | Error::InvalidExpiry(_) => {
                    (StatusCode::BAD_REQUEST, "invalid_parameter", e.to_string())
                }
                Error::OrgNotFound
                | Error::AppNotFound
                | Error::CredentialNotFound
                | Error::GroupNotFound
                | Error::UserNotFound
                | Error::TagNotFound(_)
                | Error::SegmentNotFound
                | Error::WebhookNotFound => (StatusCode::NOT_FOUND, "not_found", e.to_string()),
                Error::Duplicate(_)
                | Error::StaleVersion
                | Error::AttributeInUse
                | Error::GroupInactive
                | Error::GroupLocked
                | Error::TagGroupLimit { .. }
                | Error::SegmentInUse(_)
                | Error::SegmentLimit { .. }
                | Error::WebhookLimit { .. }
                | Error::IdempotencyInFlight => (StatusCode::CONFLICT, "conflict", e.to_string()),
                Error::IdempotencyMismatch => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "conflict", e.to_string())
                }
                Error::Busy(cause) | Error::Conflict(cause) => {
                    tracing::warn!(%cause, "database busy");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "busy",
                        crate::gate::UNAVAILABLE_MESSAGE.to_owned(),
                    )
                }
                Error::OutcomeUnknown(cause) => {
                    tracing::warn!(%cause, "commit outcome unknown");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "outcome_unknown",
                        crate::gate::CONNECTION_LOST_MESSAGE.to_owned(),
                    )
                }
                Error::Internal(cause) => {
                    tracing::error!(%cause, "admin request failed");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "internal error; see the server log for this request id".to_owned(),
                    )
                }
            },
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after();
        let (status, code, message) = self.classify();
        let body = Json(AdminErrorBody {
            error: AdminErrorDetail { code, message },
        });
        let mut response = (status, body).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"tagd-admin\""),
            );
        }
        response
    }
}
