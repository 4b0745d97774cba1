//! Operational routes (API.md §7): liveness, readiness, metrics, the OpenAPI document.

use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// How long readiness waits for the database before calling it unreachable.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` when a dependency does not answer.
    status: &'static str,
    /// For `/readyz`: the database backend, `sqlite` or `postgres`.
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<&'static str>,
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// The process is up. Never touches the database.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "The process is up", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        database: None,
    })
}

/// The database answers a trivial query within two seconds.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses(
        (status = 200, description = "Ready to serve", body = Health),
        (status = 503, description = "The database does not answer", body = Health)))]
async fn readyz(State(state): State<AppState>) -> Response {
    let database = Some(state.store.backend());
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Json(Health {
            status: "ok",
            database,
        })
        .into_response(),
        outcome => {
            let cause = match outcome {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".to_owned(),
            };
            tracing::warn!(%cause, "readiness check failed");
            let body = Health {
                status: "unavailable",
                database,
            };
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

/// The in-memory index: what it holds and what it refused.
fn render_index(state: &AppState, out: &mut String) {
    use std::fmt::Write as _;
    let stats = state.index.stats();
    let budget = state.config.index_memory_mb.saturating_mul(1024 * 1024);
    let gauges = [
        (
            "tagd_index_bytes",
            "Estimated memory the tag index holds.",
            stats.bytes as u64,
        ),
        (
            "tagd_index_budget_bytes",
            "The index's memory budget (--index-memory-mb).",
            budget,
        ),
        (
            "tagd_index_organizations_loaded",
            "Organizations served from the index.",
            stats.organizations_loaded as u64,
        ),
        (
            "tagd_index_organizations_too_large",
            "Organizations over the memory budget, served from the database.",
            stats.organizations_too_large as u64,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
}

/// Event delivery since this server started (API.md §12).
fn render_deliveries(state: &AppState, out: &mut String) {
    use std::fmt::Write as _;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    let c = &state.deliveries;
    // (family, help, its series as (labels, counter))
    type Family<'a> = (&'a str, &'a str, &'a [(&'a str, &'a AtomicU64)]);
    let families: [Family; 5] = [
        (
            "tagd_webhook_deliveries_total",
            "Webhook requests, by outcome (delivered: answered 2xx).",
            &[
                ("{outcome=\"delivered\"}", &c.webhook_delivered),
                ("{outcome=\"failed\"}", &c.webhook_failed),
            ],
        ),
        (
            "tagd_webhook_endpoints_disabled_total",
            "Endpoints this server disabled (410 Gone, retries exhausted).",
            &[("", &c.webhook_disabled)],
        ),
        (
            "tagd_nats_events_published_total",
            "Events JetStream acknowledged.",
            &[("", &c.nats_published)],
        ),
        (
            "tagd_nats_publish_failures_total",
            "Publishing rounds that failed and are retried (NATS down, the database busy).",
            &[("", &c.nats_failures)],
        ),
        (
            "tagd_segment_moves_total",
            "segment.entered and segment.exited events recorded.",
            &[("", &c.segment_moves)],
        ),
    ];
    for (family, help, series) in families {
        let _ = writeln!(out, "# HELP {family} {help}\n# TYPE {family} counter");
        for (labels, value) in series {
            let _ = writeln!(out, "{family}{labels} {}", value.load(Relaxed));
        }
    }
}

/// Prometheus text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Metrics in Prometheus text format", body = String,
        content_type = "text/plain; version=0.0.4")))]
async fn metrics(State(state): State<AppState>) -> Response {
    let mut body = state
        .metrics
        .render(&state.store.pool_stats(), state.store.backend());
    render_tag_groups(&state, &mut body).await;
    render_index(&state, &mut body);
    render_deliveries(&state, &mut body);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Tag groups in all organizations and in the largest one, beside the default cap.
/// Organizations are not named: `/metrics` answers anyone, and a `corp_id` label would list
/// every tenant and its size. Per organization: `GET /admin/v1/orgs/{corp_id}/limits`.
async fn render_tag_groups(state: &AppState, out: &mut String) {
    use std::fmt::Write;
    let counts = match tokio::time::timeout(READY_TIMEOUT, state.store.tag_groups_per_org()).await {
        Ok(Ok(counts)) => counts,
        Ok(Err(e)) => {
            tracing::warn!(cause = %e, "tag group counts unavailable for /metrics");
            return;
        }
        Err(_) => return,
    };
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    let largest = counts.iter().map(|(_, n)| *n).max().unwrap_or(0);
    for (name, help, value) in [
        (
            "tagd_tag_groups",
            "Tag groups (labels included, not deleted) of all organizations.",
            total,
        ),
        (
            "tagd_tag_groups_largest_org",
            "Tag groups of the organization that has the most.",
            largest,
        ),
        (
            "tagd_tag_groups_default_max",
            "The cap on tag groups of organizations without their own.",
            state.store.default_max_tag_groups(),
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        let _ = writeln!(out, "{name} {value}");
    }
}

/// `/openapi.json`: served from the document built with the routes. It describes itself too.
pub(crate) fn openapi_route(mut document: Arc<utoipa::openapi::OpenApi>) -> Router<AppState> {
    let doc = Arc::make_mut(&mut document);
    let path = utoipa::openapi::path::PathItem::new(
        utoipa::openapi::HttpMethod::Get,
        utoipa::openapi::path::OperationBuilder::new()
            .tag("ops")
            .summary(Some("This OpenAPI 3.1 document"))
            .response(
                "200",
                utoipa::openapi::ResponseBuilder::new()
                    .description("The OpenAPI document")
                    .content(
                        "application/json",
                        utoipa::openapi::ContentBuilder::new()
                            .schema(Some(utoipa::openapi::ObjectBuilder::new()))
                            .build(),
                    ),
            ),
    );
    doc.paths.paths.insert("/openapi.json".to_owned(), path);
    let document = Arc::new(doc.clone());
    Router::new().route(
        "/openapi.json",
        get(move || {
            let document = document.clone();
            async move { Json(document.as_ref().clone()) }
        }),
    )
}
