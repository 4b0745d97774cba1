//! Tag groups: create, list, update, deactivate, activate (API.md §4.1–4.4).

use super::error::{success, V5Error, V5ErrorBody, V5Result};
use super::expiry::ExpiryBody;
use super::extract::{V5Caller, V5Json, V5Query};
use super::views::{Envelope, GroupRow, Rows};
use crate::gate::{respond, send, RequestScope};
use crate::AppState;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tagd_core::idempotency::Reply;
use tagd_core::{Category, ExternalId, TagGroup, TagGroupFields};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest page `step` may ask for.
pub const MAX_STEP: i64 = 1000;

#[derive(Deserialize, ToSchema)]
pub struct CreateGroup {
    /// 1–255 characters, unique in the organization.
    #[schema(value_type = crate::schemas::Name, inline)]
    name: String,
    /// `^[A-Za-z_][A-Za-z0-9_]{0,63}$`, unique in the organization.
    #[schema(value_type = crate::schemas::VariableName, inline)]
    variable_name: String,
    /// At most 1,024 characters; may be empty.
    #[schema(max_length = 1024, pattern = r"^[^\x00\u202A-\u202E\u2066-\u2069]*$")]
    description: String,
    /// `define`, `number` or `string`.
    #[schema(pattern = r"^(define|number|string)$")]
    attribute: String,
    /// 1–64 characters.
    #[schema(value_type = crate::schemas::Category, inline)]
    category: String,
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    /// The expiry its assignments take when they bring none of their own (none when
    /// left out).
    expiry: Option<ExpiryBody>,
}

#[derive(Serialize, ToSchema)]
pub struct GroupCreated {
    tags_group_id: String,
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    #[schema(value_type = crate::schemas::Name, inline)]
    name: String,
}

/// Create a tag group: active, not auto, not locked, type `custom`, version 0.
#[utoipa::path(post, path = "/api/v5/entity/tags/group/create", tag = "v5",
    request_body = CreateGroup,
    responses(
        (status = 200, description = "Created", body = Envelope<GroupCreated>),
        (status = 400, description = "40001 missing or malformed parameter, 40008 expiry not valid", body = V5ErrorBody),
        (status = 409, description = "40901: name or variable_name already used; 40905: the organization is at its cap on tag groups", body = V5ErrorBody)))]
pub(super) async fn create_group(
    caller: V5Caller,
    State(state): State<AppState>,
    scope: RequestScope,
    V5Json(body): V5Json<CreateGroup>,
) -> V5Result {
    let org = caller.check_corp_id(&body.corp_id)?;
    let mut fields = TagGroupFields::parse(
        &body.name,
        &body.variable_name,
        &body.description,
        &body.attribute,
        &body.category,
    )?;
    fields.expiry = body.expiry.as_ref().map(ExpiryBody::policy).transpose()?;
    let corp_id = caller.corp_id.to_string();
    let executor = caller.executor();
    let record = scope.recorder(move |group: &TagGroup| {
        success(GroupCreated {
            tags_group_id: group.entity_id.to_string(),
            corp_id: corp_id.clone(),
            name: group.name.to_string(),
        })
    });
    let value = state
        .store
        .create_tag_group(org, &fields, &executor, &record)
        .await?;
    Ok(respond(&record, &value))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListGroups {
    #[param(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    #[param(value_type = crate::schemas::Category, inline)]
    category: String,
    /// Zero-based row offset.
    #[param(minimum = 0)]
    start_index: i64,
    /// Page size, 1–1,000.
    #[param(minimum = 1, maximum = 1000)]
    step: i64,
}

/// List the organization's groups of one category, by `ctime` then `entity_id`; deleted
/// groups are left out, inactive ones shown.
#[utoipa::path(get, path = "/api/v5/entity/tags/group/list", tag = "v5",
    params(ListGroups),
    responses(
        (status = 200, description = "One page and the total", body = Envelope<Rows<GroupRow>>)))]
pub(super) async fn list_groups(
    caller: V5Caller,
    State(state): State<AppState>,
    V5Query(query): V5Query<ListGroups>,
) -> V5Result {
    let org = caller.check_corp_id(&query.corp_id)?;
    let category = Category::parse(&query.category)?;
    if query.start_index < 0 {
        return Err(V5Error::invalid("start_index", "must be 0 or more"));
    }
    if !(1..=MAX_STEP).contains(&query.step) {
        return Err(V5Error::invalid("step", format!("must be 1 to {MAX_STEP}")));
    }
    let page = state
        .store
        .list_tag_groups(org, &category, query.start_index, query.step)
        .await?;
    let rows = page
        .rows
        .into_iter()
        .map(|g| GroupRow::new(g, &caller.corp_id))
        .collect();
    Ok(send(&success(Rows {
        total: page.total,
        rows,
    })))
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateGroup {
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    entity_id: String,
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    #[schema(value_type = crate::schemas::Name, inline)]
    name: String,
    #[schema(value_type = crate::schemas::VariableName, inline)]
    variable_name: String,
    #[schema(max_length = 1024, pattern = r"^[^\x00\u202A-\u202E\u2066-\u2069]*$")]
    description: String,
    #[schema(pattern = r"^(define|number|string)$")]
    attribute: String,
    #[schema(value_type = crate::schemas::Category, inline)]
    category: String,
    /// Optional optimistic concurrency: the version last read; a stale one gets 40902.
    #[serde(default, deserialize_with = "crate::body::optional_integer")]
    version: Option<i64>,
    /// A new default expiry for its assignments; left out, the group's stays as it is.
    /// Assignments already made keep theirs.
    expiry: Option<ExpiryBody>,
}

/// Replace a group's five editable fields; bumps `version`.
#[utoipa::path(post, path = "/api/v5/entity/tags/group/update", tag = "v5",
    request_body = UpdateGroup,
    responses(
        (status = 200, description = "Updated; data is the entity id", body = Envelope<String>),
        (status = 404, description = "40401: no such tag group", body = V5ErrorBody),
        (status = 409, description = "40003 attribute in use, 40005 locked, 40901 name taken, 40902 stale version", body = V5ErrorBody)))]
pub(super) async fn update_group(
    caller: V5Caller,
    State(state): State<AppState>,
    scope: RequestScope,
    V5Json(body): V5Json<UpdateGroup>,
) -> V5Result {
    let org = caller.check_corp_id(&body.corp_id)?;
    let entity_id = ExternalId::parse("entity_id", &body.entity_id)?;
    let mut fields = TagGroupFields::parse(
        &body.name,
        &body.variable_name,
        &body.description,
        &body.attribute,
        &body.category,
    )?;
    fields.expiry = body.expiry.as_ref().map(ExpiryBody::policy).transpose()?;
    let executor = caller.executor();
    let record = scope.recorder(entity_id_of);
    let value = state
        .store
        .update_tag_group(org, &entity_id, &fields, body.version, &executor, &record)
        .await?;
    Ok(respond(&record, &value))
}

/// The answer of update, deactivate and activate: the group's entity id.
fn entity_id_of(group: &TagGroup) -> Reply {
    success(group.entity_id.to_string())
}

#[derive(Deserialize, ToSchema)]
pub struct GroupRef {
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    entity_id: String,
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
}

async fn set_active(
    caller: V5Caller,
    state: AppState,
    scope: RequestScope,
    body: GroupRef,
    on: bool,
) -> V5Result {
    let org = caller.check_corp_id(&body.corp_id)?;
    let entity_id = ExternalId::parse("entity_id", &body.entity_id)?;
    let executor = caller.executor();
    let record = scope.recorder(entity_id_of);
    let value = state
        .store
        .set_tag_group_active(org, &entity_id, on, &executor, &record)
        .await?;
    Ok(respond(&record, &value))
}

/// Deactivate a group (idempotent): it keeps its assignments and refuses new ones.
#[utoipa::path(post, path = "/api/v5/entity/tags/group/deactivate", tag = "v5",
    request_body = GroupRef,
    responses(
        (status = 200, description = "Inactive; data is the entity id", body = Envelope<String>),
        (status = 404, description = "40401: no such tag group", body = V5ErrorBody),
        (status = 409, description = "40005: the group is locked", body = V5ErrorBody)))]
pub(super) async fn deactivate_group(
    caller: V5Caller,
    State(state): State<AppState>,
    scope: RequestScope,
    V5Json(body): V5Json<GroupRef>,
) -> V5Result {
    set_active(caller, state, scope, body, false).await
}

/// Activate a group (idempotent).
#[utoipa::path(post, path = "/api/v5/entity/tags/group/activate", tag = "v5",
    request_body = GroupRef,
    responses(
        (status = 200, description = "Active; data is the entity id", body = Envelope<String>),
        (status = 404, description = "40401: no such tag group", body = V5ErrorBody),
        (status = 409, description = "40005: the group is locked", body = V5ErrorBody)))]
pub(super) async fn activate_group(
    caller: V5Caller,
    State(state): State<AppState>,
    scope: RequestScope,
    V5Json(body): V5Json<GroupRef>,
) -> V5Result {
    set_active(caller, state, scope, body, true).await
}

/// This file's endpoints, with their OpenAPI operations.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_group))
        .routes(routes!(list_groups))
        .routes(routes!(update_group))
        .routes(routes!(deactivate_group))
        .routes(routes!(activate_group))
}
