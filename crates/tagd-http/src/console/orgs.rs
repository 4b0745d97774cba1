//! Organizations: the list with counts, create, disable and enable. One organization's page
//! is `org.rs`, its tag groups `groups.rs`. Each action is the admin API's operation
//! (`tagd_core::operator`).

use super::{failed, page, refusal, NoFields, Posted, Signed};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use tagd_core::{operator, OrgCounts, OrgId};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/orgs", get(list).post(create))
        .route("/console/orgs/{corp_id}/disable", post(disable))
        .route("/console/orgs/{corp_id}/enable", post(enable))
}

/// An organization's counts for a page: users and live values from the index when it holds
/// the organization (counting them in SQL reads every row: seconds at millions), the small
/// tables from the store; everything from the store otherwise.
pub(super) async fn counts(state: &AppState, org: OrgId) -> tagd_core::Result<OrgCounts> {
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

async fn orgs_page(
    state: &AppState,
    signed: &Signed,
    refused: Option<(StatusCode, String)>,
) -> Response {
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
    let (status, error) = match refused {
        Some((status, text)) => (status, Some(text)),
        None => (StatusCode::OK, None),
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
pub(super) struct NameForm {
    pub name: String,
}

async fn create(
    State(state): State<AppState>,
    Posted { signed, form }: Posted<NameForm>,
) -> Response {
    match operator::create_org(state.store.as_ref(), &form.name).await {
        Ok(org) => Redirect::to(&format!("/console/orgs/{}", org.corp_id)).into_response(),
        Err(e) => orgs_page(&state, &signed, Some(refusal(e))).await,
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
