//! One organization's page: its counts, apps (create, rotate, revoke tokens, delete) and
//! Basic credentials (create, set a password, delete), with its tag groups (`groups.rs`).
//! Each action is the admin API's operation (`tagd_core::operator`); after one, the page is
//! shown again by a redirect, or with the refusal beside the form that caused it.

use super::orgs::{counts, NameForm};
use super::session::{Flash, Secret};
use super::{failed, page, refusal, NoFields, Posted, Signed};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use tagd_core::operator;
use tagd_core::timefmt::format_unix;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/orgs/{corp_id}", get(show))
        .route("/console/orgs/{corp_id}/apps", post(create_app))
        .route(
            "/console/orgs/{corp_id}/apps/{app_id}/rotate",
            post(rotate_app),
        )
        .route(
            "/console/orgs/{corp_id}/apps/{app_id}/revoke-tokens",
            post(revoke_tokens),
        )
        .route(
            "/console/orgs/{corp_id}/apps/{app_id}/delete",
            post(delete_app),
        )
        .route(
            "/console/orgs/{corp_id}/credentials",
            post(create_credential),
        )
        .route(
            "/console/orgs/{corp_id}/credentials/delete",
            post(delete_credential),
        )
        .route(
            "/console/orgs/{corp_id}/credentials/password",
            post(set_password),
        )
}

/// Which form an error belongs beside (`page` when none).
pub(super) struct FormError {
    form: &'static str,
    message: String,
}

pub(super) struct AppRow {
    name: String,
    app_id: String,
    ctime: String,
}

pub(super) struct CredentialRow {
    username: String,
    ctime: String,
}

pub(super) struct GroupRow {
    name: String,
    variable_name: String,
    attribute: &'static str,
    category: String,
    entity_id: String,
    active: bool,
}

#[derive(Template)]
#[template(path = "console/org.html")]
struct OrgPage {
    signed_in: bool,
    csrf: String,
    corp_id: String,
    name: String,
    disabled: bool,
    users: i64,
    assignments: i64,
    apps: Vec<AppRow>,
    credentials: Vec<CredentialRow>,
    groups: Vec<GroupRow>,
    flash: Option<Flash>,
    error: Option<FormError>,
}

impl OrgPage {
    fn error_for(&self, form: &str) -> bool {
        self.error.as_ref().is_some_and(|e| e.form == form)
    }

    fn error_text(&self) -> &str {
        self.error.as_ref().map_or("", |e| e.message.as_str())
    }
}

/// The organization's page, with a secret to show once or an error beside its form.
async fn org_page(
    state: &AppState,
    signed: &Signed,
    corp_id: &str,
    error: Option<(StatusCode, FormError)>,
) -> Response {
    let store = state.store.as_ref();
    let loaded = async {
        let org = operator::org_by_corp_id(store, corp_id).await?;
        let counts = counts(state, org.id).await?;
        let apps = store.list_apps(org.id).await?;
        let credentials = store.list_basic_credentials(org.id).await?;
        let groups = store.all_groups(org.id).await?;
        Ok::<_, tagd_core::Error>((org, counts, apps, credentials, groups))
    };
    let (org, counts, apps, credentials, groups) = match loaded.await {
        Ok(lists) => lists,
        Err(e) => return failed(e, "/console/orgs", signed),
    };
    let (status, error) = match error {
        Some((status, error)) => (status, Some(error)),
        None => (StatusCode::OK, None),
    };
    let flash = match error {
        None => signed.take_flash(state, &org_path(&org.corp_id.to_string())),
        Some(_) => None,
    };
    let view = OrgPage {
        signed_in: true,
        csrf: signed.csrf().to_owned(),
        corp_id: org.corp_id.to_string(),
        name: org.name,
        disabled: org.disabled,
        users: counts.users,
        assignments: counts.live_assignments,
        apps: apps
            .into_iter()
            .map(|a| AppRow {
                name: a.name,
                app_id: a.app_id.to_string(),
                ctime: format_unix(a.ctime),
            })
            .collect(),
        credentials: credentials
            .into_iter()
            .map(|c| CredentialRow {
                username: c.username,
                ctime: format_unix(c.ctime),
            })
            .collect(),
        groups: groups
            .into_iter()
            .filter(|g| !g.is_deleted)
            .map(|g| GroupRow {
                name: g.name.to_string(),
                variable_name: g.variable_name.to_string(),
                attribute: g.attribute.as_str(),
                category: g.category.to_string(),
                entity_id: g.entity_id.to_string(),
                active: g.is_active,
            })
            .collect(),
        flash,
        error,
    };
    page(status, &view)
}

async fn show(
    State(state): State<AppState>,
    signed: Signed,
    Path(corp_id): Path<String>,
) -> Response {
    org_page(&state, &signed, &corp_id, None).await
}

/// The organization's page.
pub(super) fn org_path(corp_id: &str) -> String {
    format!("/console/orgs/{corp_id}")
}

/// After an action: the organization's page again (a redirect, so a reload repeats nothing),
/// or the page with the refusal beside `form`.
pub(super) async fn after(
    state: &AppState,
    signed: &Signed,
    corp_id: &str,
    form: &'static str,
    outcome: tagd_core::Result<()>,
) -> Response {
    match outcome {
        Ok(()) => Redirect::to(&org_path(corp_id)).into_response(),
        Err(e) => {
            let (status, message) = refusal(e);
            let error = FormError { form, message };
            org_page(state, signed, corp_id, Some((status, error))).await
        }
    }
}

async fn create_app(
    State(state): State<AppState>,
    Path(corp_id): Path<String>,
    Posted { signed, form }: Posted<NameForm>,
) -> Response {
    match operator::create_app(state.store.as_ref(), &corp_id, &form.name).await {
        Ok((app, secret)) => {
            let shown = Flash {
                path: org_path(&corp_id),
                notice: "App created.".to_owned(),
                secret: Some(Secret {
                    label: "App secret",
                    value: secret,
                    app_id: Some(app.app_id.to_string()),
                }),
            };
            signed.flash(&state, shown);
            after(&state, &signed, &corp_id, "app", Ok(())).await
        }
        Err(e) => after(&state, &signed, &corp_id, "app", Err(e)).await,
    }
}

#[derive(Deserialize)]
struct AppPath {
    corp_id: String,
    app_id: String,
}

async fn rotate_app(
    State(state): State<AppState>,
    Path(path): Path<AppPath>,
    Posted { signed, form: _ }: Posted<NoFields>,
) -> Response {
    let store = state.store.as_ref();
    match operator::rotate_app_secret(store, &path.corp_id, &path.app_id).await {
        Ok((app, secret)) => {
            state.forget_credentials_of(app.org_id);
            let shown = Flash {
                path: org_path(&path.corp_id),
                notice: "Secret rotated: the old secret and its tokens are refused from now on."
                    .to_owned(),
                secret: Some(Secret {
                    label: "New app secret",
                    value: secret,
                    app_id: Some(app.app_id.to_string()),
                }),
            };
            signed.flash(&state, shown);
            after(&state, &signed, &path.corp_id, "page", Ok(())).await
        }
        Err(e) => after(&state, &signed, &path.corp_id, "page", Err(e)).await,
    }
}

async fn revoke_tokens(
    State(state): State<AppState>,
    Path(path): Path<AppPath>,
    Posted { signed, form: _ }: Posted<NoFields>,
) -> Response {
    let store = state.store.as_ref();
    let outcome = operator::revoke_app_tokens(store, &path.corp_id, &path.app_id).await;
    forget_org(&state, &path.corp_id).await;
    after(&state, &signed, &path.corp_id, "page", outcome.map(drop)).await
}

async fn delete_app(
    State(state): State<AppState>,
    Path(path): Path<AppPath>,
    Posted { signed, form: _ }: Posted<NoFields>,
) -> Response {
    let outcome = operator::delete_app(state.store.as_ref(), &path.corp_id, &path.app_id).await;
    forget_org(&state, &path.corp_id).await;
    after(&state, &signed, &path.corp_id, "page", outcome.map(drop)).await
}

/// Empties this server's credential caches of the organization, as the admin API does after
/// a change to its credentials.
async fn forget_org(state: &AppState, corp_id: &str) {
    if let Ok(org) = operator::org_by_corp_id(state.store.as_ref(), corp_id).await {
        state.forget_credentials_of(org.id);
    }
}

#[derive(Deserialize)]
struct CredentialForm {
    username: String,
    password: String,
}

async fn create_credential(
    State(state): State<AppState>,
    Path(corp_id): Path<String>,
    Posted { signed, form }: Posted<CredentialForm>,
) -> Response {
    let store = state.store.as_ref();
    let password = form.password.as_bytes();
    let outcome = operator::create_basic_credential(store, &corp_id, &form.username, password);
    after(
        &state,
        &signed,
        &corp_id,
        "credential",
        outcome.await.map(drop),
    )
    .await
}

#[derive(Deserialize)]
struct UsernameForm {
    username: String,
}

async fn delete_credential(
    State(state): State<AppState>,
    Path(corp_id): Path<String>,
    Posted { signed, form }: Posted<UsernameForm>,
) -> Response {
    let store = state.store.as_ref();
    let outcome = operator::delete_basic_credential(store, &corp_id, &form.username).await;
    forget_org(&state, &corp_id).await;
    after(&state, &signed, &corp_id, "page", outcome).await
}

/// A new password for a credential (its rotation): the old one is refused from then on.
async fn set_password(
    State(state): State<AppState>,
    Path(corp_id): Path<String>,
    Posted { signed, form }: Posted<CredentialForm>,
) -> Response {
    let store = state.store.as_ref();
    let password = form.password.as_bytes();
    let outcome = operator::set_basic_password(store, &corp_id, &form.username, password).await;
    forget_org(&state, &corp_id).await;
    after(&state, &signed, &corp_id, "password", outcome.map(drop)).await
}
