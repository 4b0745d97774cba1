//! Webhook endpoints (API.md §12), managed with the v5 credentials of their organization:
//! create (the secret shown once), update, delete, rotate the secret (the old one keeps
//! signing for 24 hours), list, recent deliveries, replay from a version. Delivery is
//! `tagd-events`.

use super::error::{success, V5Error, V5ErrorBody, V5Result};
use super::extract::{V5Caller, V5Json, V5Query};
use super::views::Envelope;
use crate::gate::{respond, send, RequestScope};
use crate::AppState;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tagd_core::timefmt::{format_unix, now_unix};
use tagd_core::webhooks::{
    self, DeliveryAttempt, Webhook, WebhookFields, WebhookUrl, KEPT_ATTEMPTS, SECRET_OVERLAP_SECS,
};
use tagd_core::{Description, ExternalId};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// An endpoint as the API shows it (never its secret).
#[derive(Serialize, ToSchema)]
pub struct WebhookRow {
    webhook_id: String,
    url: String,
    /// Empty: every event type.
    event_types: Vec<String>,
    description: String,
    /// `false` once a client paused it, it answered 410, or its retries ran out.
    enabled: bool,
    /// Why delivery stopped, when it has.
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled_reason: Option<String>,
    /// Every event up to this version has been delivered.
    delivered_version: i64,
    /// Failed attempts at the next event so far.
    failures: i64,
    /// When the next event is tried again, after a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_attempt_at: Option<String>,
    /// Until when the secret a rotation replaced still signs, beside the current one.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_secret_expires_at: Option<String>,
    ctime: String,
    mtime: String,
}

impl WebhookRow {
    fn new(hook: &Webhook) -> Self {
        let now = now_unix();
        WebhookRow {
            webhook_id: hook.webhook_id.to_string(),
            url: hook.url.as_str().to_owned(),
            event_types: hook.event_types.clone(),
            description: hook.description.as_str().to_owned(),
            enabled: hook.enabled,
            disabled_reason: hook.disabled_reason.clone(),
            delivered_version: hook.delivered_version,
            failures: hook.failures,
            next_attempt_at: hook.next_attempt_ms.map(|ms| format_unix(ms / 1000)),
            previous_secret_expires_at: hook
                .previous_secret
                .as_ref()
                .filter(|(_, until)| *until > now)
                .map(|(_, until)| format_unix(*until)),
            ctime: format_unix(hook.ctime),
            mtime: format_unix(hook.mtime),
        }
    }
}

/// A new endpoint or a rotated secret: the secret is shown here only.
#[derive(Serialize, ToSchema)]
pub struct WebhookSecret {
    webhook_id: String,
    /// `whsec_` and base64: the key that signs deliveries (Standard Webhooks).
    secret: String,
}

fn secret_reply(hook: &Webhook) -> tagd_core::idempotency::Reply {
    success(WebhookSecret {
        webhook_id: hook.webhook_id.to_string(),
        secret: hook.secret.clone(),
    })
}

fn webhook_id(raw: &str) -> Result<ExternalId, V5Error> {
    Ok(ExternalId::parse("webhook_id", raw)?)
}

fn description(raw: &str) -> Result<Description, V5Error> {
    Ok(Description::parse(
        "description",
        raw,
        tagd_core::names::MAX_DESCRIPTION_CHARS,
    )?)
}

#[derive(Deserialize, ToSchema)]
pub struct CreateWebhook {
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    /// `http` or `https`; not a private address unless the operator allows those.
    #[schema(max_length = 2048)]
    url: String,
    /// Which events to send; empty or absent: all.
    #[serde(default)]
    event_types: Vec<String>,
    #[serde(default)]
    #[schema(max_length = 1024)]
    description: String,
}

/// Create a webhook endpoint; it receives the events committed from now on.
#[utoipa::path(post, path = "/api/v5/webhooks/create", tag = "v5",
    request_body = CreateWebhook,
    responses(
        (status = 200, description = "Created; the secret is shown this once", body = Envelope<WebhookSecret>),
        (status = 400, description = "40001 a bad or refused URL, an unknown event type, a long description", body = V5ErrorBody),
        (status = 409, description = "40907 the organization keeps its most endpoints", body = V5ErrorBody)))]
pub(super) async fn create_webhook(
    caller: V5Caller,
    State(state): State<AppState>,
    scope: RequestScope,
    V5Json(body): V5Json<CreateWebhook>,
) -> V5Result {
    let org = caller.check_corp_id(&body.corp_id)?;
    let record = scope.recorder(secret_reply);
    let hook = new_webhook(
        &state,
        org,
        &body.url,
        &body.event_types,
        &body.description,
        &record,
    )
    .await?;
    Ok(respond(&record, &hook))
}

/// Creates an endpoint of `org` with a new secret, its URL checked against the server's SSRF
/// setting: the v5 API's and the console's one way to make one.
pub(crate) async fn new_webhook(
    state: &AppState,
    org: tagd_core::OrgId,
    url: &str,
    event_types: &[String],
    description: &str,
    record: &tagd_core::Recorder<Webhook>,
) -> Result<Webhook, tagd_core::Error> {
    let url = WebhookUrl::parse(url, state.config.webhook_allow_private)?;
    let event_types = webhooks::parse_event_types(event_types)?;
    let description = Description::parse(
        "description",
        description,
        tagd_core::names::MAX_DESCRIPTION_CHARS,
    )?;
    let secret = webhooks::generate_secret();
    state
        .store
        .create_webhook(org, &url, &event_types, &description, &secret, record)
        .await
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateWebhook {
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    webhook_id: String,
    /// Absent: unchanged.
    #[schema(max_length = 2048)]
    url: Option<String>,
    /// Absent: unchanged; empty: all.
    event_types: Option<Vec<String>>,
    #[schema(max_length = 1024)]
    description: Option<String>,
    /// `false` pauses delivery; `true` resumes it where it stopped (also after a 410 or
    /// after the retries ran out).
    enabled: Option<bool>,
}

/// Change an endpoint; what the body leaves out stays as it is.
#[utoipa::path(post, path = "/api/v5/webhooks/update", tag = "v5",
    request_body = UpdateWebhook,
    responses(
        (status = 200, description = "The endpoint as changed", body = Envelope<WebhookRow>),
        (status = 400, description = "40001 as on create", body = V5ErrorBody),
        (status = 404, description = "40404 no such endpoint in this organization", body = V5ErrorBody)))]
pub(super) async fn update_webhook(
    caller: V5Caller,
    State(state): State<AppState>,
    V5Json(body): V5Json<UpdateWebhook>,
) -> V5Result {
    let org = caller.check_corp_id(&body.corp_id)?;
    let id = webhook_id(&body.webhook_id)?;
    let allow_private = state.config.webhook_allow_private;
    let fields = WebhookFields {
        url: body
            .url
            .as_deref()
            .map(|u| WebhookUrl::parse(u, allow_private))
            .transpose()?,
        event_types: body
            .event_types
            .as_deref()
            .map(webhooks::parse_event_types)
            .transpose()?,
        description: body.description.as_deref().map(description).transpose()?,
        enabled: body.enabled,
    };
    let hook = state.store.update_webhook(org, &id, &fields).await?;
    Ok(send(&success(WebhookRow::new(&hook))))
}

#[derive(Deserialize, ToSchema)]
pub struct WebhookRef {
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    webhook_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookDeleted {
    webhook_id: String,
}

/// Delete an endpoint: nothing more is sent to it.
#[utoipa::path(post, path = "/api/v5/webhooks/delete", tag = "v5",
    request_body = WebhookRef,
    responses(
        (status = 200, description = "Deleted", body = Envelope<WebhookDeleted>),
        (status = 404, description = "40404 no such endpoint in this organization", body = V5ErrorBody)))]
pub(super) async fn delete_webhook(
    caller: V5Caller,
    State(state): State<AppState>,
    V5Json(body): V5Json<WebhookRef>,
) -> V5Result {
    let org = caller.check_corp_id(&body.corp_id)?;
    let id = webhook_id(&body.webhook_id)?;
    state.store.delete_webhook(org, &id).await?;
    Ok(send(&success(WebhookDeleted {
        webhook_id: id.to_string(),
    })))
}

/// A new secret; deliveries carry signatures of both for 24 hours, so the receiver can switch
/// without losing one.
#[utoipa::path(post, path = "/api/v5/webhooks/rotate_secret", tag = "v5",
    request_body = WebhookRef,
    responses(
        (status = 200, description = "The new secret, shown this once", body = Envelope<WebhookSecret>),
        (status = 404, description = "40404 no such endpoint in this organization", body = V5ErrorBody)))]
pub(super) async fn rotate_secret(
    caller: V5Caller,
    State(state): State<AppState>,
    scope: RequestScope,
    V5Json(body): V5Json<WebhookRef>,
) -> V5Result {
    let org = caller.check_corp_id(&body.corp_id)?;
    let id = webhook_id(&body.webhook_id)?;
    let secret = webhooks::generate_secret();
    let until = now_unix() + SECRET_OVERLAP_SECS;
    let record = scope.recorder(secret_reply);
    let hook = state
        .store
        .rotate_webhook_secret(org, &id, &secret, until, &record)
        .await?;
    Ok(respond(&record, &hook))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListWebhooks {
    #[param(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookRows {
    rows: Vec<WebhookRow>,
}

/// The organization's endpoints, oldest first.
#[utoipa::path(get, path = "/api/v5/webhooks/list", tag = "v5",
    params(ListWebhooks),
    responses((status = 200, description = "Every endpoint", body = Envelope<WebhookRows>)))]
pub(super) async fn list_webhooks(
    caller: V5Caller,
    State(state): State<AppState>,
    V5Query(query): V5Query<ListWebhooks>,
) -> V5Result {
    let org = caller.check_corp_id(&query.corp_id)?;
    let hooks = state.store.list_webhooks(org).await?;
    let rows = hooks.iter().map(WebhookRow::new).collect();
    Ok(send(&success(WebhookRows { rows })))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListDeliveries {
    #[param(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    #[param(value_type = crate::schemas::ExternalId, inline)]
    webhook_id: String,
    /// 1–100, default 50.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// One delivery attempt.
#[derive(Serialize, ToSchema)]
pub struct DeliveryRow {
    event_id: String,
    event_type: String,
    version: i64,
    /// 1 for the first try of this event, 2 for its first retry, …
    attempt: i64,
    /// The receiver's HTTP status, when it answered.
    status: Option<i64>,
    duration_ms: i64,
    /// Why it failed; absent on success.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    time: String,
}

impl DeliveryRow {
    fn new(a: DeliveryAttempt) -> Self {
        DeliveryRow {
            event_id: a.event_id,
            event_type: a.event_type,
            version: a.version,
            attempt: a.attempt,
            status: a.status,
            duration_ms: a.duration_ms,
            error: a.error,
            time: format_unix(a.at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryRows {
    rows: Vec<DeliveryRow>,
}

/// An endpoint's most recent delivery attempts, newest first (the last 100 are kept).
#[utoipa::path(get, path = "/api/v5/webhooks/deliveries", tag = "v5",
    params(ListDeliveries),
    responses(
        (status = 200, description = "Recent attempts", body = Envelope<DeliveryRows>),
        (status = 400, description = "40001 a bad limit", body = V5ErrorBody),
        (status = 404, description = "40404 no such endpoint in this organization", body = V5ErrorBody)))]
pub(super) async fn list_deliveries(
    caller: V5Caller,
    State(state): State<AppState>,
    V5Query(query): V5Query<ListDeliveries>,
) -> V5Result {
    let org = caller.check_corp_id(&query.corp_id)?;
    let id = webhook_id(&query.webhook_id)?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=KEPT_ATTEMPTS).contains(&limit) {
        return Err(V5Error::invalid(
            "limit",
            format!("must be 1 to {KEPT_ATTEMPTS}"),
        ));
    }
    let attempts = state
        .store
        .webhook_attempts(org, &id, limit as usize)
        .await?;
    let rows = attempts.into_iter().map(DeliveryRow::new).collect();
    Ok(send(&success(DeliveryRows { rows })))
}

#[derive(Deserialize, ToSchema)]
pub struct ReplayWebhook {
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    webhook_id: String,
    /// Deliver again every event from this version on (in version order), then continue
    /// with new ones. Resumes a disabled endpoint.
    #[serde(deserialize_with = "crate::body::integer")]
    #[schema(minimum = 1)]
    from_version: i64,
}

/// Deliver again from a version: after a receiver lost events, or to resume past a 410.
#[utoipa::path(post, path = "/api/v5/webhooks/replay", tag = "v5",
    request_body = ReplayWebhook,
    responses(
        (status = 200, description = "The endpoint, delivering from that version", body = Envelope<WebhookRow>),
        (status = 400, description = "40001 a bad version", body = V5ErrorBody),
        (status = 404, description = "40404 no such endpoint in this organization", body = V5ErrorBody)))]
pub(super) async fn replay_webhook(
    caller: V5Caller,
    State(state): State<AppState>,
    V5Json(body): V5Json<ReplayWebhook>,
) -> V5Result {
    let org = caller.check_corp_id(&body.corp_id)?;
    let id = webhook_id(&body.webhook_id)?;
    let position = tagd_core::webhooks::replay_position(body.from_version)?;
    let hook = state.store.replay_webhook(org, &id, position).await?;
    Ok(send(&success(WebhookRow::new(&hook))))
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook))
        .routes(routes!(update_webhook))
        .routes(routes!(delete_webhook))
        .routes(routes!(rotate_secret))
        .routes(routes!(list_webhooks))
        .routes(routes!(list_deliveries))
        .routes(routes!(replay_webhook))
}
