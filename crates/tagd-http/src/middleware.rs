//! The one layer every request passes through: a request id (taken from a well-formed
//! incoming `X-Request-Id`, else generated) in a tracing span around the request, echoed in the
//! response header; one log line per request; the request metrics.

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;
use tracing::Instrument;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn incoming_request_id(request: &Request) -> Option<String> {
    let raw = request.headers().get(&REQUEST_ID)?.to_str().ok()?;
    let well_formed = !raw.is_empty()
        && raw.len() <= 128
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    well_formed.then(|| raw.to_owned())
}

/// The method as a metrics label: one of the standard methods, else `other`, so a client
/// sending made-up methods cannot grow `/metrics`.
fn metric_method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

pub async fn observe(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = incoming_request_id(&request)
        .unwrap_or_else(|| tagd_core::ExternalId::generate().to_string());
    let method = metric_method(request.method());
    // A route template, never the raw path: the label set stays bounded.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let span = tracing::info_span!("request", request_id = %request_id, %method, %route);
    // The dialect gates run as route layers, where only extensions reach them.
    request.extensions_mut().insert(state.clone());
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    state.metrics.observe(method, &route, status, elapsed);
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "answered"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}
