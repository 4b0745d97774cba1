//! An organization's tag groups from the console: create, edit, activate, deactivate, as the
//! v5 API's store calls do, by the operator.

use super::org::after;
use super::{NoFields, Posted, Signed};
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use tagd_core::{operator, Executor, ExternalId, Recorder, TagGroupFields};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
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
