//! The v2 dialect's one error mapping (API.md §3): `{"errors":[{"status":false,"message",
//! "code"}]}` with the HTTP status, and the `warnings` entries of successful answers.

use crate::body::BodyError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tagd_core::labels::LabelWarning;
use tagd_core::Error;
use utoipa::ToSchema;

/// v2 code for an unknown customer.
pub const CUSTOMER_NOT_FOUND: u32 = 8015;

#[derive(Debug)]
pub enum V2Error {
    /// 400: malformed body or parameter, limits exceeded.
    BadRequest(String),
    /// 401: missing or wrong Basic credentials, whatever part is wrong.
    Unauthorized,
    /// 404 / 8015: no such customer in the credential's organization.
    CustomerNotFound,
    /// 500: logged with the request id, never shown.
    Internal(String),
    /// 409: the same `Idempotency-Key` is still in flight.
    InFlight,
    /// 413: the body is over 1 MiB.
    TooLarge,
    /// 422: the `Idempotency-Key` was used with a different request.
    KeyReused,
    /// 429: over the rate limit, or too many failed logins; retry after this many seconds.
    RateLimited(u64),
    /// 503: the request took too long and was rolled back.
    TimedOut,
    /// 503: the write was still committing long past the deadline; its outcome is unknown.
    OutcomeUnknown,
    /// 503: the database is unavailable or busy; nothing was changed.
    Unavailable,
    /// 503: the connection to the database broke while the write committed.
    ConnectionLost,
}

impl From<crate::gate::GateError> for V2Error {
    fn from(e: crate::gate::GateError) -> Self {
        use crate::gate::GateError;
        match e {
            GateError::TooLarge => V2Error::TooLarge,
            GateError::RateLimited { retry_after_secs } => V2Error::RateLimited(retry_after_secs),
            GateError::TimedOut => V2Error::TimedOut,
            GateError::OutcomeUnknown => V2Error::OutcomeUnknown,
            GateError::Domain(e) => V2Error::from(e),
        }
    }
}

/// One error or warning entry. Field order follows the seed's samples.
#[derive(Serialize, ToSchema)]
pub struct V2ErrorEntry {
    status: bool,
    message: String,
    code: u32,
}

#[derive(Serialize, ToSchema)]
pub struct V2ErrorBody {
    errors: Vec<V2ErrorEntry>,
}

/// One entry of a `warnings` array: `{"status":false,"code":33000,"message":"..."}`.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct V2Warning {
    status: bool,
    code: u32,
    message: String,
}

impl From<LabelWarning> for V2Warning {
    fn from(w: LabelWarning) -> Self {
        V2Warning {
            status: false,
            code: w.code,
            message: w.message,
        }
    }
}

impl From<Error> for V2Error {
    fn from(e: Error) -> Self {
        match e {
            Error::UserNotFound => V2Error::CustomerNotFound,
            Error::Internal(cause) => V2Error::Internal(cause),
            Error::Busy(cause) | Error::Conflict(cause) => {
                tracing::warn!(%cause, "database busy");
                V2Error::Unavailable
            }
            Error::OutcomeUnknown(cause) => {
                tracing::warn!(%cause, "commit outcome unknown");
                V2Error::ConnectionLost
            }
            Error::OrgNotFound => V2Error::Unauthorized,
            Error::IdempotencyInFlight => V2Error::InFlight,
            Error::IdempotencyMismatch => V2Error::KeyReused,
            other => V2Error::BadRequest(other.to_string()),
        }
    }
}

impl From<BodyError> for V2Error {
    fn from(e: BodyError) -> Self {
        if e.too_large {
            return V2Error::TooLarge;
        }
        V2Error::BadRequest(format!("invalid parameter `{}`: {}", e.field, e.message))
    }
}

impl IntoResponse for V2Error {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            V2Error::RateLimited(secs) => Some(*secs),
            // Rolled back because of the database's state or the deadline: retry in a moment.
            V2Error::TimedOut
            | V2Error::OutcomeUnknown
            | V2Error::Unavailable
            | V2Error::ConnectionLost => Some(1),
            _ => None,
        };
        let (status, code, message) = match self {
            V2Error::BadRequest(message) => (StatusCode::BAD_REQUEST, 400, message),
            V2Error::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                401,
                "Invalid or missing credentials".to_owned(),
            ),
            V2Error::CustomerNotFound => (
                StatusCode::NOT_FOUND,
                CUSTOMER_NOT_FOUND,
                "Customer not found for the given identifiers".to_owned(),
            ),
            V2Error::InFlight => (
                StatusCode::CONFLICT,
                409,
                "a request with this Idempotency-Key is still in flight".to_owned(),
            ),
            V2Error::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                413,
                "request body over 1 MiB".to_owned(),
            ),
            V2Error::KeyReused => (
                StatusCode::UNPROCESSABLE_ENTITY,
                422,
                "this Idempotency-Key was used with a different request".to_owned(),
            ),
            V2Error::RateLimited(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                429,
                "rate limit exceeded; retry after Retry-After seconds".to_owned(),
            ),
            V2Error::TimedOut => (
                StatusCode::SERVICE_UNAVAILABLE,
                503,
                "the request took too long and was rolled back; retry it".to_owned(),
            ),
            V2Error::OutcomeUnknown => (
                StatusCode::SERVICE_UNAVAILABLE,
                503,
                crate::gate::OUTCOME_UNKNOWN_MESSAGE.to_owned(),
            ),
            V2Error::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                503,
                crate::gate::UNAVAILABLE_MESSAGE.to_owned(),
            ),
            V2Error::ConnectionLost => (
                StatusCode::SERVICE_UNAVAILABLE,
                503,
                crate::gate::CONNECTION_LOST_MESSAGE.to_owned(),
            ),
            V2Error::Internal(cause) => {
                tracing::error!(%cause, "v2 request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    500,
                    "internal error; quote the X-Request-Id header when reporting it".to_owned(),
                )
            }
        };
        let body = V2ErrorBody {
            errors: vec![V2ErrorEntry {
                status: false,
                message,
                code,
            }],
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tagd\""),
            );
        }
        response
    }
}
