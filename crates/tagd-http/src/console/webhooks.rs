//! Webhooks: each endpoint with its state and most recent delivery attempts, and replay from
//! a version (the v5 API's operations).

use super::session::{Flash, Secret};
use super::{failed, page, refusal, Posted, Signed};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use tagd_core::timefmt::format_unix;
use tagd_core::webhooks::replay_position;
use tagd_core::{operator, Error, ExternalId, Organization, Recorder};

/// Delivery attempts shown per endpoint.
const ATTEMPTS_SHOWN: usize = 20;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/orgs/{corp_id}/webhooks", get(show).post(create))
        .route(
            "/console/orgs/{corp_id}/webhooks/{webhook_id}/replay",
            post(replay),
        )
}

pub(super) struct DeliveryLine {
    at: String,
    event_type: String,
    version: i64,
    attempt: i64,
    status: String,
    duration_ms: i64,
    error: String,
}

pub(super) struct HookView {
    id: String,
    url: String,
    events: String,
    enabled: bool,
    disabled_reason: Option<String>,
    delivered: i64,
    failures: i64,
    deliveries: Vec<DeliveryLine>,
}

#[derive(Template)]
#[template(path = "console/webhooks.html")]
struct WebhooksPage {
    signed_in: bool,
    csrf: String,
    corp_id: String,
    org_name: String,
    hooks: Vec<HookView>,
    flash: Option<Flash>,
    /// A refusal: the form it belongs beside (`create`, or the endpoint's id for its
    /// replay) and its words.
    error: Option<(String, String)>,
}

impl WebhooksPage {
    fn error_for(&self, form: &str) -> Option<&str> {
        self.error
            .as_ref()
            .filter(|(f, _)| f == form)
            .map(|(_, message)| message.as_str())
    }
}

/// The organization's webhooks page.
fn hooks_path(corp_id: &str) -> String {
    format!("/console/orgs/{corp_id}/webhooks")
}

async fn webhooks_page(
    state: &AppState,
    signed: &Signed,
    org: &Organization,
    refused: Option<(StatusCode, String, String)>,
) -> Response {
    let store = state.store.as_ref();
    let loaded = async {
        let mut hooks = Vec::new();
        for hook in store.list_webhooks(org.id).await? {
            let attempts = store
                .webhook_attempts(org.id, &hook.webhook_id, ATTEMPTS_SHOWN)
                .await?;
            hooks.push(HookView {
                id: hook.webhook_id.to_string(),
                url: hook.url.as_str().to_owned(),
                events: hook.event_types.join(", "),
                enabled: hook.enabled,
                disabled_reason: hook.disabled_reason.clone(),
                delivered: hook.delivered_version,
                failures: hook.failures,
                deliveries: attempts
                    .into_iter()
                    .map(|a| DeliveryLine {
                        at: format_unix(a.at),
                        event_type: a.event_type,
                        version: a.version,
                        attempt: a.attempt,
                        status: a
                            .status
                            .map_or_else(|| "no answer".to_owned(), |s| s.to_string()),
                        duration_ms: a.duration_ms,
                        error: a.error.unwrap_or_default(),
                    })
                    .collect(),
            });
        }
        Ok::<_, Error>(hooks)
    };
    let hooks = match loaded.await {
        Ok(hooks) => hooks,
        Err(e) => return failed(e, "/console/orgs", signed),
    };
    let (status, error, flash) = match refused {
        Some((status, form, text)) => (status, Some((form, text)), None),
        None => {
            let flash = signed.take_flash(state, &hooks_path(&org.corp_id.to_string()));
            (StatusCode::OK, None, flash)
        }
    };
    let view = WebhooksPage {
        signed_in: true,
        csrf: signed.csrf().to_owned(),
        corp_id: org.corp_id.to_string(),
        org_name: org.name.clone(),
        hooks,
        flash,
        error,
    };
    page(status, &view)
}

#[derive(Deserialize)]
struct NewEndpoint {
    url: String,
    #[serde(default)]
    description: String,
}

/// Creates an endpoint for every event type, as `POST /api/v5/webhooks/create` does; its
/// signing secret is shown once.
async fn create(
    State(state): State<AppState>,
    Path(corp_id): Path<String>,
    Posted { signed, form }: Posted<NewEndpoint>,
) -> Response {
    let store = state.store.as_ref();
    let org = match operator::org_by_corp_id(store, &corp_id).await {
        Ok(org) => org,
        Err(e) => return failed(e, "/console/orgs", &signed),
    };
    let none = Recorder::none();
    let created = crate::v5::new_webhook(&state, org.id, &form.url, &[], &form.description, &none);
    match created.await {
        Ok(hook) => {
            let path = hooks_path(&org.corp_id.to_string());
            let flash = Flash {
                path: path.clone(),
                notice: "Endpoint created: it receives the events committed from now on."
                    .to_owned(),
                secret: Some(Secret {
                    label: "Signing secret",
                    value: hook.secret.clone(),
                    app_id: None,
                }),
            };
            signed.flash(&state, flash);
            Redirect::to(&path).into_response()
        }
        Err(e) => {
            let (status, text) = refusal(e);
            let refused = Some((status, "create".to_owned(), text));
            webhooks_page(&state, &signed, &org, refused).await
        }
    }
}

async fn show(
    State(state): State<AppState>,
    signed: Signed,
    Path(corp_id): Path<String>,
) -> Response {
    match operator::org_by_corp_id(state.store.as_ref(), &corp_id).await {
        Ok(org) => webhooks_page(&state, &signed, &org, None).await,
        Err(e) => failed(e, "/console/orgs", &signed),
    }
}

#[derive(Deserialize)]
struct HookPath {
    corp_id: String,
    webhook_id: String,
}

#[derive(Deserialize)]
struct ReplayForm {
    from_version: String,
}

/// Delivers again from a version, as `POST /api/v5/webhooks/replay` does.
async fn replay(
    State(state): State<AppState>,
    Path(path): Path<HookPath>,
    Posted { signed, form }: Posted<ReplayForm>,
) -> Response {
    let store = state.store.as_ref();
    let org = match operator::org_by_corp_id(store, &path.corp_id).await {
        Ok(org) => org,
        Err(e) => return failed(e, "/console/orgs", &signed),
    };
    let replayed = async {
        let id = ExternalId::parse("webhook_id", &path.webhook_id)?;
        let from = form
            .from_version
            .trim()
            .parse::<i64>()
            .map_err(|_| Error::invalid("from_version", "must be a whole number"))?;
        store
            .replay_webhook(org.id, &id, replay_position(from)?)
            .await
    };
    match replayed.await {
        Ok(hook) => {
            let path = hooks_path(&org.corp_id.to_string());
            let flash = Flash {
                path: path.clone(),
                notice: format!(
                    "Endpoint {} delivers again from version {}.",
                    hook.webhook_id,
                    hook.delivered_version + 1
                ),
                secret: None,
            };
            signed.flash(&state, flash);
            Redirect::to(&path).into_response()
        }
        Err(e) => {
            let (status, text) = refusal(e);
            let refused = Some((status, path.webhook_id.clone(), text));
            webhooks_page(&state, &signed, &org, refused).await
        }
    }
}
