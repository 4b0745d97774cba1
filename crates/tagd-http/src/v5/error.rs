//! The v5 dialect's one error mapping (API.md §5): every answer is the envelope
//! `{"code", "msg", "data"}`, the HTTP status gives the class and `code` the exact error.

use super::views::Envelope;
use crate::gate::stored_json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tagd_core::idempotency::Reply;
use tagd_core::Error;
use utoipa::ToSchema;

/// Why a v5 request was refused.
#[derive(Debug)]
pub enum V5Error {
    /// 40101: missing, malformed, expired or revoked token; wrong app secret.
    Unauthorized,
    /// 40301: `corp_id` or `X-APP-ID` does not match the token.
    Forbidden(&'static str),
    /// A refusal of the domain.
    Domain(Error),
    /// 41301: the body is over 1 MiB.
    TooLarge,
    /// 42901: over the organization's rate limit, or too many failed logins; retry after this
    /// many seconds.
    RateLimited(u64),
    /// 50001 with 503: the request ran too long and was rolled back.
    TimedOut,
    /// 50001 with 503: the write was still committing long past the deadline.
    OutcomeUnknown,
}

impl From<crate::gate::GateError> for V5Error {
    fn from(e: crate::gate::GateError) -> Self {
        use crate::gate::GateError;
        match e {
            GateError::TooLarge => V5Error::TooLarge,
            GateError::RateLimited { retry_after_secs } => V5Error::RateLimited(retry_after_secs),
            GateError::TimedOut => V5Error::TimedOut,
            GateError::OutcomeUnknown => V5Error::OutcomeUnknown,
            GateError::Domain(e) => V5Error::Domain(e),
        }
    }
}

/// The v5 envelope around an error: `data` is always null.
#[derive(Serialize, ToSchema)]
pub struct V5ErrorBody {
    /// The exact error, e.g. 40001.
    #[schema(example = 40001)]
    code: u32,
    /// What went wrong, in words.
    msg: String,
    /// Always null on errors.
    #[schema(value_type = Option<String>)]
    data: Option<()>,
}

impl From<Error> for V5Error {
    fn from(e: Error) -> Self {
        V5Error::Domain(e)
    }
}

impl V5Error {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        V5Error::Domain(Error::invalid(field, message))
    }

    /// (HTTP status, v5 code, message).
    pub(crate) fn parts(self) -> (StatusCode, u32, String) {
        use StatusCode as S;
        match self {
            V5Error::Unauthorized => (
                S::UNAUTHORIZED,
                40101,
                "missing, malformed, expired or revoked token".into(),
            ),
            V5Error::TooLarge => (
                S::PAYLOAD_TOO_LARGE,
                41301,
                "request body over 1 MiB".into(),
            ),
            V5Error::RateLimited(_) => (
                S::TOO_MANY_REQUESTS,
                42901,
                "rate limit exceeded; retry after Retry-After seconds".into(),
            ),
            V5Error::TimedOut => (
                S::SERVICE_UNAVAILABLE,
                50001,
                "the request took too long and was rolled back; retry it".into(),
            ),
            V5Error::OutcomeUnknown => (
                S::SERVICE_UNAVAILABLE,
                50001,
                crate::gate::OUTCOME_UNKNOWN_MESSAGE.into(),
            ),
            V5Error::Forbidden(what) => (
                S::FORBIDDEN,
                40301,
                format!("{what} does not match the token"),
            ),
            V5Error::Domain(e) => match e {
                Error::InvalidParameter { .. } => (S::BAD_REQUEST, 40001, e.to_string()),
                Error::InvalidValue(_) => (S::BAD_REQUEST, 40002, e.to_string()),
                Error::AttributeInUse => (S::CONFLICT, 40003, e.to_string()),
                Error::GroupInactive => (S::CONFLICT, 40004, e.to_string()),
                Error::GroupLocked => (S::CONFLICT, 40005, e.to_string()),
                Error::GroupNotFound => (
                    S::NOT_FOUND,
                    40401,
                    "tag group not found in this organization".into(),
                ),
                Error::UserNotFound => (
                    S::NOT_FOUND,
                    40402,
                    "user not found in this organization".into(),
                ),
                // The token's organization or app vanished: the token is as good as revoked.
                Error::FilterInvalid { .. } => (S::BAD_REQUEST, 40006, e.to_string()),
                Error::FilterTooLarge(_) => (S::BAD_REQUEST, 40007, e.to_string()),
                Error::InvalidExpiry(_) => (S::BAD_REQUEST, 40008, e.to_string()),
                Error::TagNotFound(_) => (S::NOT_FOUND, 40401, e.to_string()),
                Error::SegmentNotFound => (
                    S::NOT_FOUND,
                    40403,
                    "segment not found in this organization".into(),
                ),
                Error::SegmentInUse(_) => (S::CONFLICT, 40904, e.to_string()),
                Error::WebhookNotFound => (
                    S::NOT_FOUND,
                    40404,
                    "webhook not found in this organization".into(),
                ),
                Error::WebhookLimit { .. } => (S::CONFLICT, 40907, e.to_string()),
                Error::SegmentLimit { .. } => (S::CONFLICT, 40906, e.to_string()),
                Error::TagGroupLimit { .. } => (S::CONFLICT, 40905, e.to_string()),
                Error::OrgNotFound | Error::AppNotFound | Error::CredentialNotFound => (
                    S::UNAUTHORIZED,
                    40101,
                    "missing, malformed, expired or revoked token".into(),
                ),
                Error::Duplicate(_) => (S::CONFLICT, 40901, e.to_string()),
                Error::IdempotencyInFlight => (S::CONFLICT, 40903, e.to_string()),
                Error::IdempotencyMismatch => (S::UNPROCESSABLE_ENTITY, 42201, e.to_string()),
                Error::StaleVersion => (
                    S::CONFLICT,
                    40902,
                    "stale version: the tag group changed since it was read".into(),
                ),
                Error::Busy(cause) | Error::Conflict(cause) => {
                    tracing::warn!(%cause, "database busy");
                    (
                        S::SERVICE_UNAVAILABLE,
                        50001,
                        crate::gate::UNAVAILABLE_MESSAGE.into(),
                    )
                }
                Error::OutcomeUnknown(cause) => {
                    tracing::warn!(%cause, "commit outcome unknown");
                    (
                        S::SERVICE_UNAVAILABLE,
                        50001,
                        crate::gate::CONNECTION_LOST_MESSAGE.into(),
                    )
                }
                Error::Internal(cause) => {
                    tracing::error!(%cause, "v5 request failed");
                    (
                        S::INTERNAL_SERVER_ERROR,
                        50001,
                        "internal error; quote the X-Request-Id header when reporting it".into(),
                    )
                }
            },
        }
    }
}

impl IntoResponse for V5Error {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            V5Error::RateLimited(secs) => Some(*secs),
            // The database's state (busy, restarting, unreachable, full) or the deadline: the
            // same request may succeed in a moment (with the same Idempotency-Key when the
            // outcome is unknown).
            V5Error::TimedOut | V5Error::OutcomeUnknown => Some(1),
            V5Error::Domain(e) if e.is_transient() => Some(1),
            _ => None,
        };
        let (status, code, msg) = self.parts();
        let mut response = (
            status,
            Json(V5ErrorBody {
                code,
                msg,
                data: None,
            }),
        )
            .into_response();
        if let Some(secs) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        response
    }
}

/// The success envelope: code 0, msg `success.`, rendered as it is sent and recorded.
pub fn success<T: Serialize>(data: T) -> Reply {
    stored_json(
        StatusCode::OK,
        &Envelope {
            code: 0,
            msg: "success.".to_owned(),
            data,
        },
    )
}

pub type V5Result = Result<Response, V5Error>;
