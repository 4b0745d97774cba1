//! The one error type of the domain. Stores report into it; each HTTP dialect has exactly one
//! place that turns it into that dialect's envelope and status.

/// Everything that can go wrong in a domain operation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A parameter is missing or malformed; `field` names it (v5 40001, v2 400).
    #[error("invalid parameter `{field}`: {message}")]
    InvalidParameter { field: String, message: String },
    /// A value does not fit the tag group's attribute (v5 40002).
    #[error("value does not fit the tag group's attribute: {0}")]
    InvalidValue(String),
    /// The attribute of a group with live assignments cannot change (v5 40003).
    #[error("attribute cannot change while assignments exist")]
    AttributeInUse,
    /// The tag group is inactive and refuses new assignments (v5 40004).
    #[error("tag group is inactive")]
    GroupInactive,
    /// The tag group is locked and cannot be edited (v5 40005).
    #[error("tag group is locked")]
    GroupLocked,
    /// No such organization.
    #[error("organization not found")]
    OrgNotFound,
    /// No such app in this organization.
    #[error("app not found")]
    AppNotFound,
    /// No such Basic credential in this organization.
    #[error("basic credential not found")]
    CredentialNotFound,
    /// The organization has as many tag groups as its cap allows (v5 40905, v2 warning 33003).
    #[error("the organization has reached its limit of {max} tag groups")]
    TagGroupLimit { max: i64 },
    /// No such tag group in this organization (v5 40401).
    #[error("tag group not found")]
    GroupNotFound,
    /// No such user in this organization (v5 40402, v2 8015).
    #[error("user not found")]
    UserNotFound,
    /// A unique name is already taken in this organization (v5 40901).
    #[error("{0} already used in this organization")]
    Duplicate(String),
    /// Optimistic concurrency: the caller's version is not the current one (v5 40902).
    #[error("stale version")]
    StaleVersion,
    /// The same `Idempotency-Key` is in use by a request still running (v5 40903, v2 409).
    #[error("a request with this Idempotency-Key is still in flight")]
    IdempotencyInFlight,
    /// The `Idempotency-Key` was used with a different request (v5 42201, v2 422).
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyMismatch,
    /// 40006: a segment filter is malformed; the message starts with the path (`filter.all[2].op`).
    #[error("{path}: {message}")]
    FilterInvalid { path: String, message: String },
    /// 40007: a segment filter is over a limit (depth, leaves, `in` values) or refers to
    /// itself; the message names where.
    #[error("{0}")]
    FilterTooLarge(String),
    /// 40008: an expiry is not valid (in the past, both `expires_at` and `ttl_secs`, a
    /// malformed date, out of range); the message says which.
    #[error("{0}")]
    InvalidExpiry(String),
    /// 40401: a filter names a tag the organization does not have; the message names it.
    #[error("{0}")]
    TagNotFound(String),
    /// 40403: no such saved segment in this organization.
    #[error("segment not found")]
    SegmentNotFound,
    /// 40904: the saved segment is referenced by another one.
    #[error("segment is used by segment `{0}`")]
    SegmentInUse(String),
    /// 40906: the organization keeps its most saved segments already.
    #[error("the organization has reached its limit of {max} saved segments")]
    SegmentLimit { max: i64 },
    /// 40404: no such webhook endpoint in this organization.
    #[error("webhook not found")]
    WebhookNotFound,
    /// 40907: the organization keeps its most webhook endpoints already.
    #[error("the organization has reached its limit of {max} webhook endpoints")]
    WebhookLimit { max: i64 },
    /// The database is busy (locked by another process, a lock wait ran out): retry later.
    /// Shown as 503 without internals; the cause is logged.
    #[error("database busy: {0}")]
    Busy(String),
    /// The database rolled the write back to resolve a conflict with a concurrent one (a
    /// deadlock, a serialization failure). The store runs such a write again a few times
    /// ([`CONFLICT_RETRIES`]); after that it is answered like [`Error::Busy`]: nothing was
    /// changed, retry later.
    #[error("write conflict: {0}")]
    Conflict(String),
    /// The connection was lost while the database committed the write: it may or may not
    /// have been applied. Shown as 503 saying so (read before retrying, or retry with the
    /// same `Idempotency-Key`).
    #[error("commit outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// Anything else: a database fault, a bug. Never shown to a client; logged with the request id.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidParameter {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A fault of the database or of tagd, not a refusal by the rules: the transaction it
    /// happened in cannot go on (on PostgreSQL it is aborted), so writes sharing it stop too.
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            Error::Busy(_) | Error::Conflict(_) | Error::OutcomeUnknown(_) | Error::Internal(_)
        )
    }

    /// Whether a client may retry: the database's state, not the request, made it fail
    /// (answered 503 with `Retry-After`).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Busy(_) | Error::Conflict(_) | Error::OutcomeUnknown(_)
        )
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Error::Internal(cause.to_string())
    }
}

/// How many times a store runs a write again after the database rolled it back for a
/// conflict ([`Error::Conflict`]) before it gives the conflict as the answer.
pub const CONFLICT_RETRIES: u32 = 3;

pub type Result<T, E = Error> = std::result::Result<T, E>;
