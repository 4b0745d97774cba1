//! The gate every organization-scoped request of a dialect passes, in this order:
//! authentication (with the per-address throttle on failures), the organization's rate limit,
//! the idempotency key of a write, and the request timeout. Each refusal answers in the
//! dialect's own error shape.

use crate::AppState;
use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tagd_core::idempotency::{self, Claim, ClaimOutcome, Recorder, Reply, WriteProgress};
use tagd_core::{Error, OrgId};

/// Largest request body (API.md §5a).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest response kept for an idempotent replay.
const MAX_RECORDED_BYTES: usize = 16 * 1024 * 1024;

/// Refusals of the gate, rendered by each dialect.
#[derive(Debug)]
pub enum GateError {
    /// The body is over [`MAX_BODY_BYTES`].
    TooLarge,
    /// The organization is over its rate limit, or the address over its failed logins.
    RateLimited {
        retry_after_secs: u64,
    },
    /// The request ran past the timeout; nothing it did was committed.
    TimedOut,
    /// The request's write was committing at the deadline and had not finished a grace period
    /// later: whether it was applied is unknown.
    OutcomeUnknown,
    Domain(Error),
}

/// What the gate needs of a dialect.
pub trait Dialect: Send + Sync + 'static {
    type Caller: Clone + Send + Sync + 'static;
    type Error: IntoResponse + From<GateError> + Send;
    /// Authenticates the request (without reading its body).
    fn authenticate(
        parts: &mut Parts,
        state: &AppState,
    ) -> impl Future<Output = Result<Self::Caller, Self::Error>> + Send;
    fn org(caller: &Self::Caller) -> OrgId;
}

/// The client's address: the peer's, or, when the peer is a trusted proxy, the last address
/// in `X-Forwarded-For` that is not a trusted proxy itself (the ones before it could have
/// been written by the client).
pub fn client_ip(parts: &Parts, state: &AppState) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
        // A dual-stack listener sees IPv4 peers as `::ffff:a.b.c.d`.
        .to_canonical();
    let trusted = &state.config.trusted_proxies;
    if !trusted.iter().any(|net| net.contains(&peer)) {
        return peer;
    }
    let mut client = peer;
    let hops = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.into_iter().rev() {
        let Ok(address) = hop.parse::<IpAddr>().map(|a| a.to_canonical()) else {
            break; // a malformed entry: trust nothing before it
        };
        client = address;
        if !trusted.iter().any(|net| net.contains(&address)) {
            break;
        }
    }
    client
}

fn refuse<D: Dialect>(error: GateError) -> Response {
    let retry_after = match &error {
        GateError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
        _ => None,
    };
    let mut response = D::Error::from(error).into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from(secs));
    }
    response
}

pub async fn gate<D: Dialect>(request: Request, next: Next) -> Response {
    let Some(state) = request.extensions().get::<AppState>().cloned() else {
        return refuse::<D>(GateError::Domain(Error::internal(
            "no state on the request",
        )));
    };
    let (mut parts, body) = request.into_parts();
    // The dialect throttles its own failed authentications (it knows the user name or app).
    let caller = match D::authenticate(&mut parts, &state).await {
        Ok(caller) => caller,
        Err(refusal) => return refusal.into_response(),
    };
    parts.extensions.insert(caller.clone());
    let org = D::org(&caller);
    let decision = state.rate_limiter.check(org);
    let is_write = is_write(&parts);
    let progress = Arc::new(WriteProgress::default());
    let mut response = if decision.allowed {
        run::<D>(&state, org, parts, body, next, progress.clone()).await
    } else {
        refuse::<D>(GateError::RateLimited {
            retry_after_secs: decision.retry_after_secs,
        })
    };
    if is_write && response.status().is_success() {
        add_version(&state, org, &progress, &mut response).await;
    }
    let headers = response.headers_mut();
    if let Ok(policy) = HeaderValue::from_str(&state.rate_limiter.policy()) {
        headers.insert("ratelimit-policy", policy);
    }
    let now = format!(
        "\"per-org\";r={};t={}",
        decision.remaining, decision.reset_secs
    );
    if let Ok(now) = HeaderValue::from_str(&now) {
        headers.insert("ratelimit", now);
    }
    response
}

/// `X-Tagd-Version` (API.md §9): the organization's version after a successful write. A
/// write that changed nothing (or a replay) answers the version it found.
async fn add_version(
    state: &AppState,
    org: OrgId,
    progress: &WriteProgress,
    response: &mut Response,
) {
    let version = match progress.version() {
        Some(version) => version,
        None => match state.store.log_head(org).await {
            Ok(version) => version,
            Err(e) => {
                tracing::warn!(cause = %e, "could not read the organization's version");
                return;
            }
        },
    };
    response
        .headers_mut()
        .insert(VERSION_HEADER, HeaderValue::from(version));
}

/// Requests that change data: every POST but the ones that only read (a segment query
/// takes its filter as a body). Only writes answer a version and honour Idempotency-Key.
fn is_write(parts: &Parts) -> bool {
    const READS: [&str; 2] = ["/api/v5/segments/query", "/api/v5/segments/export"];
    parts.method == Method::POST && !READS.contains(&parts.uri.path())
}

/// The header that carries the organization's version.
pub const VERSION_HEADER: &str = "x-tagd-version";

fn idempotency_key(headers: &HeaderMap) -> Option<Result<String, Error>> {
    let raw = headers.get("idempotency-key")?;
    Some(
        raw.to_str()
            .map_err(|_| Error::invalid("Idempotency-Key", "must be printable ASCII"))
            .and_then(idempotency::parse_key),
    )
}

/// Runs the handler under the timeout, and under a claimed idempotency key for a keyed write.
async fn run<D: Dialect>(
    state: &AppState,
    org: OrgId,
    parts: Parts,
    body: Body,
    next: Next,
    progress: Arc<WriteProgress>,
) -> Response {
    // One deadline for the whole request: reading the body, claiming the key, the handler.
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(state.config.request_timeout_secs);
    let key = match (is_write(&parts), idempotency_key(&parts.headers)) {
        (true, Some(Ok(key))) => key,
        (true, Some(Err(e))) => return refuse::<D>(GateError::Domain(e)),
        _ => {
            let scope = RequestScope::new(None, progress);
            let mut request = Request::from_parts(parts, body);
            request.extensions_mut().insert(scope.clone());
            return match within_deadline(&scope.progress, deadline, next.run(request)).await {
                Ok(response) => response,
                Err(cut) => refuse::<D>(cut),
            };
        }
    };
    let bytes = match crate::body::read_limited(body).await {
        Ok(bytes) => bytes,
        Err(crate::body::ReadError::TooLarge) => return refuse::<D>(GateError::TooLarge),
        Err(crate::body::ReadError::Broken) => {
            return refuse::<D>(GateError::Domain(Error::invalid(
                "body",
                "could not be read",
            )))
        }
    };
    let path = parts.uri.path_and_query().map_or("", |p| p.as_str());
    let lease_secs = i64::try_from(state.config.request_timeout_secs).unwrap_or(i64::MAX / 2)
        + idempotency::LEASE_MARGIN_SECS;
    let claim = Claim {
        org,
        key,
        fingerprint: idempotency::fingerprint(parts.method.as_str(), path, &bytes),
        lease_secs,
    };
    let claimed =
        tokio::time::timeout_at(deadline, state.store.claim_idempotency_key(&claim)).await;
    let Ok(claimed) = claimed else {
        return refuse::<D>(GateError::TimedOut);
    };
    match claimed {
        Ok(ClaimOutcome::Fresh) => {}
        Ok(ClaimOutcome::Replay(stored)) => return replay(&stored),
        Ok(ClaimOutcome::Mismatch) => {
            return refuse::<D>(GateError::Domain(Error::IdempotencyMismatch))
        }
        Ok(ClaimOutcome::InFlight { retry_after_secs }) => {
            let mut refusal = refuse::<D>(GateError::Domain(Error::IdempotencyInFlight));
            let secs = u64::try_from(retry_after_secs.max(1)).unwrap_or(1);
            refusal
                .headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
            return refusal;
        }
        Err(e) => return refuse::<D>(GateError::Domain(e)),
    }
    let scope = RequestScope::new(Some(claim.clone()), progress);
    let mut request = Request::from_parts(parts, Body::from(bytes));
    request.extensions_mut().insert(scope.clone());
    let response = match within_deadline(&scope.progress, deadline, next.run(request)).await {
        Ok(response) => response,
        Err(GateError::OutcomeUnknown) => {
            // Not released: if the write did commit, its response was recorded with it and a
            // retry with the key gets it; if not, the claim's lease runs out and a retry runs.
            return refuse::<D>(GateError::OutcomeUnknown);
        }
        Err(cut) => {
            release(state, &claim).await;
            return refuse::<D>(cut);
        }
    };
    if scope.progress.recorded() {
        return response;
    }
    // No write recorded this response: a refusal, kept so a retry gets it again; or a server
    // error, forgotten so a retry runs again.
    let (head, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_RECORDED_BYTES).await else {
        release(state, &claim).await;
        return refuse::<D>(GateError::Domain(Error::internal(
            "response too large to record",
        )));
    };
    if head.status.is_server_error() {
        release(state, &claim).await;
    } else {
        let stored = Reply {
            code: head.status.as_u16(),
            format: head
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json")
                .to_owned(),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        };
        if let Err(e) = state.store.save_idempotent_response(&claim, &stored).await {
            tracing::error!(cause = %e, "could not record an idempotent response");
        }
    }
    Response::from_parts(head, Body::from(bytes))
}

/// What both dialects say when a write was still committing long past the deadline.
/// The message of a 503 whose write was rolled back (or never began): nothing changed.
pub const UNAVAILABLE_MESSAGE: &str =
    "the database is unavailable or busy; nothing was changed; retry shortly";

/// The message of a 503 whose write lost its connection to the database while committing.
pub const CONNECTION_LOST_MESSAGE: &str = "the connection to the database was lost while the \
     write committed; whether it was applied is unknown: read it back, or retry with the same \
     Idempotency-Key";

pub const OUTCOME_UNKNOWN_MESSAGE: &str = "the write was still committing when the request ran \
     out of time; whether it was applied is unknown: read it back, or retry with the same \
     Idempotency-Key";

/// How long past the deadline a write that had begun to commit is waited for.
const COMMIT_GRACE: Duration = Duration::from_secs(10);

/// Runs the handler until the deadline. At the deadline a handler whose write has not begun
/// to commit is given up and dropped (its transaction rolls back, and a write of it still
/// queued for a coalesced commit will not begin: `TimedOut`, "rolled back"); one whose
/// write is committing is awaited, so the answer is its real outcome and a committed write is
/// never reported as rolled back, for at most [`COMMIT_GRACE`] more (`OutcomeUnknown`).
async fn within_deadline(
    progress: &WriteProgress,
    deadline: tokio::time::Instant,
    handler: impl Future<Output = Response>,
) -> Result<Response, GateError> {
    let mut handler = std::pin::pin!(handler);
    tokio::select! {
        response = &mut handler => Ok(response),
        () = tokio::time::sleep_until(deadline) => {
            if progress.abandon() {
                return Err(GateError::TimedOut);
            }
            tracing::warn!("deadline passed while the write was committing: waiting for its outcome");
            tokio::time::timeout(COMMIT_GRACE, handler)
                .await
                .map_err(|_| GateError::OutcomeUnknown)
        }
    }
}

async fn release(state: &AppState, claim: &Claim) {
    if let Err(e) = state.store.release_idempotency_key(claim).await {
        tracing::error!(cause = %e, "could not release an idempotency key");
    }
}

/// The first response again.
pub fn replay(stored: &Reply) -> Response {
    let mut response = send(stored);
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// Renders a response as it is both sent and recorded.
pub fn stored_json<T: serde::Serialize>(status: StatusCode, value: &T) -> Reply {
    Reply {
        code: status.as_u16(),
        format: "application/json".to_owned(),
        body: serde_json::to_string(value).unwrap_or_default(),
    }
}

/// What a gated request's writes need from the gate: the claimed idempotency key (if the
/// request has one) and where to report their progress. A handler takes it as an extractor
/// and hands each write a [`Recorder`] made by [`RequestScope::recorder`].
#[derive(Clone)]
pub struct RequestScope {
    claim: Option<Claim>,
    progress: Arc<WriteProgress>,
}

impl RequestScope {
    fn new(claim: Option<Claim>, progress: Arc<WriteProgress>) -> Self {
        RequestScope { claim, progress }
    }

    /// The recorder of a write whose response is `render(&result)`: the store records that
    /// response with the write (same transaction) when the request claimed a key.
    pub fn recorder<T>(&self, render: impl Fn(&T) -> Reply + Send + Sync + 'static) -> Recorder<T> {
        Recorder::new(self.claim.clone(), self.progress.clone(), render)
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RequestScope {
    type Rejection = std::convert::Infallible;

    /// The gate's scope; a route outside the gate gets one that records nothing.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestScope>()
            .cloned()
            .unwrap_or_else(|| RequestScope::new(None, Arc::default())))
    }
}

/// The response to a write's result, rendered by the recorder the write was given (so what is
/// sent is what was recorded).
pub fn respond<T>(record: &Recorder<T>, value: &T) -> Response {
    match record.reply(value) {
        Some(reply) => send(&reply),
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A rendered response, as sent.
pub fn send(stored: &Reply) -> Response {
    let status = StatusCode::from_u16(stored.code).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body.clone()).into_response();
    if let Ok(content_type) = HeaderValue::from_str(&stored.format) {
        response.headers_mut().insert("content-type", content_type);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::Instant;

    fn soon() -> Instant {
        Instant::now() + Duration::from_millis(50)
    }

    #[tokio::test]
    async fn a_handler_still_running_at_the_deadline_is_dropped_before_it_commits() {
        let progress = WriteProgress::default();
        let answered = within_deadline(&progress, soon(), async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            StatusCode::OK.into_response()
        })
        .await;
        assert!(
            matches!(answered, Err(GateError::TimedOut)),
            "cut short: the caller answers rolled back"
        );
    }

    #[tokio::test]
    async fn a_write_committing_at_the_deadline_answers_its_real_outcome() {
        let scope = RequestScope::new(None, Arc::default());
        let record = scope.recorder(|_: &()| stored_json(StatusCode::CREATED, &()));
        let answered = within_deadline(&scope.progress, soon(), async {
            record.committing(true);
            // The commit (an fsync, a batch of group commit) outlasts the deadline.
            tokio::time::sleep(Duration::from_millis(300)).await;
            StatusCode::CREATED.into_response()
        })
        .await;
        assert_eq!(
            answered.map(|r| r.status()).ok(),
            Some(StatusCode::CREATED),
            "never \"rolled back\" for a write that committed"
        );
    }
}
