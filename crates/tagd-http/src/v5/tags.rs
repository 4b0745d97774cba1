//! User tags and users: assign, list, remove (API.md §4.5–4.7) and `user/create` (§4.8).

use super::error::{success, V5ErrorBody, V5Result};
use super::extract::{V5Caller, V5Json, V5Query};
use super::views::{Envelope, Rows, TagRow};
use crate::gate::{respond, send, RequestScope};
use crate::AppState;
use axum::extract::State;
use serde::Deserialize;
use tagd_core::{AssignCommand, Assignment, Error, ExternalId, Source, User, UserId};
use tagd_index::MIN_VERSION_WAIT;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(Deserialize, ToSchema)]
pub struct AssignTag {
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    tags_group_id: String,
    #[schema(value_type = crate::schemas::UserId, inline)]
    user_id: String,
    /// `True`/`False` (also `true`/`false`/`1`/`0`) for define; a finite decimal for number;
    /// up to 1,024 characters for string.
    value: String,
    /// When the value expires: `YYYY-MM-DD HH:MM:SS` (UTC), in the future. Not with
    /// `ttl_secs`; without either, the group's default applies.
    #[schema(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$")]
    expires_at: Option<String>,
    /// Seconds until the value expires: 1 to 315,360,000 (10 years). Not with `expires_at`.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 315360000)]
    ttl_secs: Option<serde_json::Value>,
}

/// Set a user's value of a tag group. Re-assigning keeps the entity id and bumps `version`.
#[utoipa::path(post, path = "/api/v5/entity/user/tags/assign", tag = "v5",
    request_body = AssignTag,
    responses(
        (status = 200, description = "Assigned; data is the assignment's entity id", body = Envelope<String>),
        (status = 400, description = "40001 missing or malformed parameter, 40002 value does not fit the attribute, 40008 expiry not valid", body = V5ErrorBody),
        (status = 404, description = "40401 no such tag group, 40402 no such user", body = V5ErrorBody),
        (status = 409, description = "40004: the tag group is inactive", body = V5ErrorBody)))]
pub(super) async fn assign_tag(
    caller: V5Caller,
    State(state): State<AppState>,
    scope: RequestScope,
    V5Json(body): V5Json<AssignTag>,
) -> V5Result {
    let org = caller.check_corp_id(&body.corp_id)?;
    let command = AssignCommand {
        tags_group_id: ExternalId::parse("tags_group_id", &body.tags_group_id)?,
        user_id: UserId::parse(&body.user_id)?,
        raw_value: body.value,
        expiry: super::expiry::requested(body.expires_at.as_deref(), body.ttl_secs.as_ref())?,
        executor: caller.executor(),
        source: Source::OpenApi,
    };
    let record = scope.recorder(|a: &Assignment| success(a.entity_id.to_string()));
    let value = state.store.assign(org, &command, &record).await?;
    Ok(respond(&record, &value))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListUserTags {
    #[param(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    #[param(value_type = crate::schemas::UserId, inline)]
    user_id: String,
    /// Answer only once this server has applied this version of the organization (an
    /// `X-Tagd-Version` another server answered); after one second the answer comes from the
    /// database.
    #[param(minimum = 0)]
    min_version: Option<i64>,
}

/// A user's live tags, oldest first.
#[utoipa::path(get, path = "/api/v5/entity/user/tags/list", tag = "v5",
    params(ListUserTags),
    responses(
        (status = 200, description = "The user's tags", body = Envelope<Rows<TagRow>>),
        (status = 404, description = "40402: no such user", body = V5ErrorBody)))]
pub(super) async fn list_user_tags(
    caller: V5Caller,
    State(state): State<AppState>,
    V5Query(query): V5Query<ListUserTags>,
) -> V5Result {
    let org = caller.check_corp_id(&query.corp_id)?;
    let user_id = UserId::parse(&query.user_id)?;
    if query.min_version.is_some_and(|v| v < 0) {
        return Err(Error::invalid("min_version", "must be 0 or more").into());
    }
    let assignments = match query.min_version {
        Some(version) if !state.index.caught_up(org, version, MIN_VERSION_WAIT).await => {
            state.store.list_user_assignments(org, &user_id).await?
        }
        _ => state.index.list_user_assignments(org, &user_id).await?,
    };
    let total = i64::try_from(assignments.len()).unwrap_or(i64::MAX);
    let rows = assignments
        .into_iter()
        .map(|a| TagRow::new(a, &caller.corp_id))
        .collect();
    Ok(send(&success(Rows { total, rows })))
}

#[derive(Deserialize, ToSchema)]
pub struct RemoveTag {
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    tags_group_id: String,
    #[schema(value_type = crate::schemas::UserId, inline)]
    user_id: String,
}

/// Remove (soft-delete) a user's tag. Removing a tag the user does not have succeeds with
/// `data: null`.
#[utoipa::path(post, path = "/api/v5/entity/user/tags/remove", tag = "v5",
    request_body = RemoveTag,
    responses(
        (status = 200, description = "Removed; data is the assignment's entity id, or null when there was none", body = Envelope<Option<String>>),
        (status = 404, description = "40401 no such tag group, 40402 no such user", body = V5ErrorBody)))]
pub(super) async fn remove_tag(
    caller: V5Caller,
    State(state): State<AppState>,
    scope: RequestScope,
    V5Json(body): V5Json<RemoveTag>,
) -> V5Result {
    let org = caller.check_corp_id(&body.corp_id)?;
    let group = ExternalId::parse("tags_group_id", &body.tags_group_id)?;
    let user_id = UserId::parse(&body.user_id)?;
    let executor = caller.executor();
    let record = scope.recorder(|removed: &Option<Assignment>| {
        success(removed.as_ref().map(|a| a.entity_id.to_string()))
    });
    let value = state
        .store
        .remove_assignment(org, &group, &user_id, &executor, Source::OpenApi, &record)
        .await?;
    Ok(respond(&record, &value))
}

#[derive(Deserialize, ToSchema)]
pub struct CreateUser {
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    /// 1–64 characters from `[A-Za-z0-9_.:@-]`.
    #[schema(value_type = crate::schemas::UserId, inline)]
    user_id: String,
}

/// Register a user (idempotent).
#[utoipa::path(post, path = "/api/v5/user/create", tag = "v5",
    request_body = CreateUser,
    responses(
        (status = 200, description = "Registered (or already was); data is the user id", body = Envelope<String>)))]
pub(super) async fn create_user(
    caller: V5Caller,
    State(state): State<AppState>,
    scope: RequestScope,
    V5Json(body): V5Json<CreateUser>,
) -> V5Result {
    let org = caller.check_corp_id(&body.corp_id)?;
    let user_id = UserId::parse(&body.user_id)?;
    let record = scope.recorder(|(user, _): &(User, bool)| success(user.user_id.to_string()));
    let value = state.store.create_user(org, &user_id, &record).await?;
    Ok(respond(&record, &value))
}

/// This file's endpoints, with their OpenAPI operations.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(assign_tag))
        .routes(routes!(list_user_tags))
        .routes(routes!(remove_tag))
        .routes(routes!(create_user))
}
