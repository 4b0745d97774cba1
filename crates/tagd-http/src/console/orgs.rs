//! Organizations (list with counts, create, disable and enable) and one organization's page:
//! its apps, Basic credentials and tag groups, with their actions. Each action is the admin
//! API's operation (`tagd_core::operator`) or the v5 API's store call.

use super::session::Flash;
use super::{failed, page, refusal, NoFields, Posted, Signed};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use tagd_core::timefmt::format_unix;
use tagd_core::{operator, Executor, ExternalId, OrgCounts, OrgId, Recorder, TagGroupFields};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/orgs", get(list).post(create))
        .route("/console/orgs/{corp_id}", get(show))
        .route("/console/orgs/{corp_id}/disable", post(disable))
        .route("/console/orgs/{corp_id}/enable", post(enable))
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
        .route("/console/orgs/{corp_id}/groups", post(create_group))
        .route(
            "/console/orgs/{corp_id}/groups/{entity_id}/activate",
            post(activate_group),
        )
        .route(
            "/console/orgs/{corp_id}/groups/{entity_id}/deactivate",
            post(deactivate_group),
        )
        .route(
            "/console/orgs/{corp_id}/groups/{entity_id}/edit",
            post(edit_group),
        )
}

/// An organization's counts for a page: users and live values from the index when it holds
/// the organization (counting them in SQL reads every row: seconds at millions), the small
/// tables from the store; everything from the store otherwise.
async fn counts(state: &AppState, org: OrgId) -> tagd_core::Result<OrgCounts> {
    let Some((users, live_assignments)) = state.index.counts(org) else {
        return state.store.org_counts(org).await;
    };
    let store = state.store.as_ref();
    let groups = store.all_groups(org).await?;
    Ok(OrgCounts {
        users,
        tag_groups: groups.iter().filter(|g| !g.is_deleted).count() as i64,
        live_assignments,
        apps: store.list_apps(org).await?.len() as i64,
        basic_credentials: store.list_basic_credentials(org).await?.len() as i64,
    })
}

pub(super) struct OrgRow {
    corp_id: String,
    name: String,
    users: i64,
    tag_groups: i64,
    assignments: i64,
    apps: i64,
    disabled: bool,
}

#[derive(Template)]
#[template(path = "console/orgs.html")]
struct OrgsPage {
    signed_in: bool,
    csrf: String,
    rows: Vec<OrgRow>,
    error: Option<String>,
}

async fn orgs_page(state: &AppState, signed: &Signed, error: Option<String>) -> Response {
    let orgs = match state.store.list_orgs().await {
        Ok(orgs) => orgs,
        Err(e) => return failed(e, "/console/orgs", signed),
    };
    let mut rows = Vec::with_capacity(orgs.len());
    for org in orgs {
        let counts = match counts(state, org.id).await {
            Ok(counts) => counts,
            Err(e) => return failed(e, "/console/orgs", signed),
        };
        rows.push(OrgRow {
            corp_id: org.corp_id.to_string(),
            name: org.name,
            users: counts.users,
            tag_groups: counts.tag_groups,
            assignments: counts.live_assignments,
            apps: counts.apps,
            disabled: org.disabled,
        });
    }
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let view = OrgsPage {
        signed_in: true,
        csrf: signed.csrf().to_owned(),
        rows,
        error,
    };
    page(status, &view)
}

async fn list(State(state): State<AppState>, signed: Signed) -> Response {
    orgs_page(&state, &signed, None).await
}

#[derive(Deserialize)]
struct NameForm {
    name: String,
}

async fn create(
    State(state): State<AppState>,
    Posted { signed, form }: Posted<NameForm>,
) -> Response {
    match operator::create_org(state.store.as_ref(), &form.name).await {
        Ok(org) => Redirect::to(&format!("/console/orgs/{}", org.corp_id)).into_response(),
        Err(e) => orgs_page(&state, &signed, Some(refusal(e).1)).await,
    }
}

async fn set_disabled(state: AppState, signed: Signed, corp_id: &str, disabled: bool) -> Response {
    match operator::set_org_disabled(state.store.as_ref(), corp_id, disabled).await {
        Ok(org) => {
            state.forget_credentials_of(org.id);
            Redirect::to("/console/orgs").into_response()
        }
        Err(e) => failed(e, "/console/orgs", &signed),
    }
}

async fn disable(
    State(state): State<AppState>,
    Path(corp_id): Path<String>,
    Posted { signed, form: _ }: Posted<NoFields>,
) -> Response {
    set_disabled(state, signed, &corp_id, true).await
}

async fn enable(
    State(state): State<AppState>,
    Path(corp_id): Path<String>,
    Posted { signed, form: _ }: Posted<NoFields>,
) -> Response {
    set_disabled(state, signed, &corp_id, false).await
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
    shown_secret: Option<Flash>,
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
    shown_secret: Option<Flash>,
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
        shown_secret,
        error,
    };
    page(status, &view)
}

async fn show(
    State(state): State<AppState>,
    signed: Signed,
    Path(corp_id): Path<String>,
) -> Response {
    let shown = signed.take_flash(&state);
    org_page(&state, &signed, &corp_id, shown, None).await
}

/// After an action: the organization's page again (a redirect, so a reload repeats nothing),
/// or the page with the refusal beside `form`.
async fn after(
    state: &AppState,
    signed: &Signed,
    corp_id: &str,
    form: &'static str,
    outcome: tagd_core::Result<()>,
) -> Response {
    match outcome {
        Ok(()) => Redirect::to(&format!("/console/orgs/{corp_id}")).into_response(),
        Err(e) => {
            let (status, message) = refusal(e);
            org_page(
                state,
                signed,
                corp_id,
                None,
                Some((status, FormError { form, message })),
            )
            .await
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
                what: "App created",
                label: "App secret",
                secret,
                app_id: Some(app.app_id.to_string()),
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
                what: "Secret rotated: the old secret and its tokens are refused from now on",
                label: "New app secret",
                secret,
                app_id: Some(app.app_id.to_string()),
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
    after(&state, &signed, &corp_id, "credential", outcome.map(drop)).await
}

#[derive(Deserialize)]
struct GroupForm {
    name: String,
    variable_name: String,
    attribute: String,
    category: String,
}

async fn create_group(
    State(state): State<AppState>,
    Path(corp_id): Path<String>,
    Posted { signed, form }: Posted<GroupForm>,
) -> Response {
    let store = state.store.as_ref();
    let outcome = async {
        let org = operator::org_by_corp_id(store, &corp_id).await?;
        let fields = TagGroupFields::parse(
            &form.name,
            &form.variable_name,
            "",
            &form.attribute,
            &form.category,
        )?;
        let executor = Executor::operator();
        store
            .create_tag_group(org.id, &fields, &executor, &Recorder::none())
            .await
            .map(drop)
    };
    after(&state, &signed, &corp_id, "group", outcome.await).await
}

#[derive(Deserialize)]
struct GroupPath {
    corp_id: String,
    entity_id: String,
}

async fn set_group_active(
    state: AppState,
    signed: Signed,
    path: GroupPath,
    active: bool,
) -> Response {
    let store = state.store.as_ref();
    let outcome = async {
        let org = operator::org_by_corp_id(store, &path.corp_id).await?;
        let entity_id = ExternalId::parse("tags_group_id", &path.entity_id)?;
        let executor = Executor::operator();
        store
            .set_tag_group_active(org.id, &entity_id, active, &executor, &Recorder::none())
            .await
            .map(drop)
    };
    after(&state, &signed, &path.corp_id, "page", outcome.await).await
}

async fn activate_group(
    State(state): State<AppState>,
    Path(path): Path<GroupPath>,
    Posted { signed, form: _ }: Posted<NoFields>,
) -> Response {
    set_group_active(state, signed, path, true).await
}

async fn deactivate_group(
    State(state): State<AppState>,
    Path(path): Path<GroupPath>,
    Posted { signed, form: _ }: Posted<NoFields>,
) -> Response {
    set_group_active(state, signed, path, false).await
}

#[derive(Deserialize)]
struct GroupEdit {
    name: String,
    variable_name: String,
    attribute: String,
    category: String,
}

/// Edits a group's name, variable name, type and category, as `tags/group/update` does
/// (its description stays); refused while it is locked, or a type change while it has live
/// assignments.
async fn edit_group(
    State(state): State<AppState>,
    Path(path): Path<GroupPath>,
    Posted { signed, form }: Posted<GroupEdit>,
) -> Response {
    let store = state.store.as_ref();
    let outcome = async {
        let org = operator::org_by_corp_id(store, &path.corp_id).await?;
        let entity_id = ExternalId::parse("tags_group_id", &path.entity_id)?;
        let group = store
            .find_tag_group(org.id, &entity_id)
            .await?
            .ok_or(tagd_core::Error::GroupNotFound)?;
        let fields = TagGroupFields::parse(
            &form.name,
            &form.variable_name,
            group.description.as_str(),
            &form.attribute,
            &form.category,
        )?;
        let executor = Executor::operator();
        store
            .update_tag_group(
                org.id,
                &entity_id,
                &fields,
                None,
                &executor,
                &Recorder::none(),
            )
            .await
            .map(drop)
    };
    after(&state, &signed, &path.corp_id, "page", outcome.await).await
}
