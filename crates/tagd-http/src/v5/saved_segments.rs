//! Saved segments (API.md §10): create, update, delete, list, get (with the exact count), and
//! the saved segments one user is in. A filter is checked when saved: its tags and the
//! segments it names must exist, and no reference may lead back to it (40007).

use super::error::{success, V5Error, V5ErrorBody, V5Result};
use super::extract::{V5Caller, V5Json, V5Query};
use super::groups::MAX_STEP;
use super::views::{Envelope, Rows};
use crate::gate::{respond, send, RequestScope};
use crate::AppState;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tagd_core::saved_segments::{SavedSegment, SegmentFields};
use tagd_core::segments::Filter;
use tagd_core::timefmt::format_unix;
use tagd_core::{ExternalId, UserId};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// A saved segment as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct SegmentRow {
    segment_id: String,
    name: String,
    description: String,
    /// The filter as saved.
    #[schema(value_type = Object)]
    filter: serde_json::Value,
    /// Bumped by every update; pass it to `segments/update` to refuse a stale edit (40902).
    version: i64,
    ctime: String,
    mtime: String,
    /// `segments/get` only: how many users are in it now.
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
}

impl SegmentRow {
    pub(super) fn new(saved: &SavedSegment) -> Self {
        SegmentRow {
            segment_id: saved.entity_id.to_string(),
            name: saved.name.clone(),
            description: saved.description.as_str().to_owned(),
            filter: saved.filter.clone(),
            version: saved.version,
            ctime: format_unix(saved.ctime),
            mtime: format_unix(saved.mtime),
            count: None,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SegmentCreated {
    segment_id: String,
}

#[derive(Deserialize, ToSchema)]
pub struct CreateSegment {
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    /// 1–255 characters, unique among the organization's segments.
    #[schema(min_length = 1, max_length = 255)]
    name: String,
    #[serde(default)]
    #[schema(max_length = 1024)]
    description: String,
    /// The filter (API.md §10).
    #[schema(value_type = Object)]
    filter: serde_json::Value,
}

fn segment_id(raw: &str) -> Result<ExternalId, V5Error> {
    Ok(ExternalId::parse("segment_id", raw)?)
}

/// Save a filter as a named segment.
#[utoipa::path(post, path = "/api/v5/segments/create", tag = "v5",
    request_body = CreateSegment,
    responses(
        (status = 200, description = "Saved", body = Envelope<SegmentCreated>),
        (status = 400, description = "40001 bad name or description, 40006 malformed filter, 40007 filter over the limits or a reference cycle", body = V5ErrorBody),
        (status = 404, description = "40401 a tag the filter names does not exist, 40403 a segment it names does not", body = V5ErrorBody),
        (status = 409, description = "40901 the name is taken, 40906 the organization keeps its most segments", body = V5ErrorBody)))]
pub(super) async fn create_segment(
    caller: V5Caller,
    State(state): State<AppState>,
    scope: RequestScope,
    V5Json(body): V5Json<CreateSegment>,
) -> V5Result {
    let org = caller.check_corp_id(&body.corp_id)?;
    let record = scope.recorder(|saved: &SavedSegment| {
        success(SegmentCreated {
            segment_id: saved.entity_id.to_string(),
        })
    });
    let value = save_segment(
        &state,
        org,
        &body.name,
        &body.description,
        body.filter,
        &record,
    )
    .await?;
    Ok(respond(&record, &value))
}

/// Saves a new segment of `org` after checking its fields, and its filter against the
/// organization's tags and saved segments: the v5 API's and the console's one way to save.
pub(crate) async fn save_segment(
    state: &AppState,
    org: tagd_core::OrgId,
    name: &str,
    description: &str,
    filter: serde_json::Value,
    record: &tagd_core::Recorder<SavedSegment>,
) -> Result<SavedSegment, tagd_core::Error> {
    let fields = SegmentFields::parse(name, description, filter)?;
    let filter = tagd_core::segments::parse(&fields.filter, "filter")?;
    state.index.check_saved_filter(org, &filter, None).await?;
    state.store.create_segment(org, &fields, record).await
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateSegment {
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    segment_id: String,
    #[schema(min_length = 1, max_length = 255)]
    name: String,
    #[serde(default)]
    #[schema(max_length = 1024)]
    description: String,
    #[schema(value_type = Object)]
    filter: serde_json::Value,
    /// The version last read; a segment changed since is not overwritten (40902).
    version: Option<i64>,
}

/// Replace a saved segment's name, description and filter.
#[utoipa::path(post, path = "/api/v5/segments/update", tag = "v5",
    request_body = UpdateSegment,
    responses(
        (status = 200, description = "Updated; the segment as saved", body = Envelope<SegmentRow>),
        (status = 400, description = "40001, 40006, 40007 as on create", body = V5ErrorBody),
        (status = 404, description = "40401, or 40403 no such segment", body = V5ErrorBody),
        (status = 409, description = "40901 the name is taken, 40902 stale version", body = V5ErrorBody)))]
pub(super) async fn update_segment(
    caller: V5Caller,
    State(state): State<AppState>,
    scope: RequestScope,
    V5Json(body): V5Json<UpdateSegment>,
) -> V5Result {
    let org = caller.check_corp_id(&body.corp_id)?;
    let id = segment_id(&body.segment_id)?;
    let fields = SegmentFields::parse(&body.name, &body.description, body.filter)?;
    if state.store.find_segment(org, &id).await?.is_none() {
        return Err(tagd_core::Error::SegmentNotFound.into());
    }
    let filter = tagd_core::segments::parse(&fields.filter, "filter")?;
    state
        .index
        .check_saved_filter(org, &filter, Some(&id))
        .await?;
    let record = scope.recorder(|saved: &SavedSegment| success(SegmentRow::new(saved)));
    let value = state
        .store
        .update_segment(org, &id, &fields, body.version, &record)
        .await?;
    Ok(respond(&record, &value))
}

#[derive(Deserialize, ToSchema)]
pub struct DeleteSegment {
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    segment_id: String,
}

/// Delete a saved segment (refused while another segment names it).
#[utoipa::path(post, path = "/api/v5/segments/delete", tag = "v5",
    request_body = DeleteSegment,
    responses(
        (status = 200, description = "Deleted", body = Envelope<SegmentCreated>),
        (status = 404, description = "40403 no such segment", body = V5ErrorBody),
        (status = 409, description = "40904 another segment names it", body = V5ErrorBody)))]
pub(super) async fn delete_segment(
    caller: V5Caller,
    State(state): State<AppState>,
    scope: RequestScope,
    V5Json(body): V5Json<DeleteSegment>,
) -> V5Result {
    let org = caller.check_corp_id(&body.corp_id)?;
    let id = segment_id(&body.segment_id)?;
    let record = scope.recorder(|saved: &SavedSegment| {
        success(SegmentCreated {
            segment_id: saved.entity_id.to_string(),
        })
    });
    let value = state.store.delete_segment(org, &id, &record).await?;
    Ok(respond(&record, &value))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListSegments {
    #[param(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    /// Zero-based row offset.
    #[param(minimum = 0)]
    start_index: i64,
    /// Page size, 1–1,000.
    #[param(minimum = 1, maximum = 1000)]
    step: i64,
}

/// The organization's saved segments, oldest first.
#[utoipa::path(get, path = "/api/v5/segments/list", tag = "v5",
    params(ListSegments),
    responses(
        (status = 200, description = "One page and the total", body = Envelope<Rows<SegmentRow>>)))]
pub(super) async fn list_segments(
    caller: V5Caller,
    State(state): State<AppState>,
    V5Query(query): V5Query<ListSegments>,
) -> V5Result {
    let org = caller.check_corp_id(&query.corp_id)?;
    if query.start_index < 0 {
        return Err(V5Error::invalid("start_index", "must be 0 or more"));
    }
    if !(1..=MAX_STEP).contains(&query.step) {
        return Err(V5Error::invalid("step", format!("must be 1 to {MAX_STEP}")));
    }
    let (total, rows) = state
        .store
        .list_segments(org, query.start_index, query.step)
        .await?;
    let rows = rows.iter().map(SegmentRow::new).collect();
    Ok(send(&success(Rows { total, rows })))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetSegment {
    #[param(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    #[param(value_type = crate::schemas::ExternalId, inline)]
    segment_id: String,
}

/// One saved segment and how many users are in it now.
#[utoipa::path(get, path = "/api/v5/segments/get", tag = "v5",
    params(GetSegment),
    responses(
        (status = 200, description = "The segment and its count", body = Envelope<SegmentRow>),
        (status = 404, description = "40403 no such segment", body = V5ErrorBody)))]
pub(super) async fn get_segment(
    caller: V5Caller,
    State(state): State<AppState>,
    V5Query(query): V5Query<GetSegment>,
) -> V5Result {
    let org = caller.check_corp_id(&query.corp_id)?;
    let id = segment_id(&query.segment_id)?;
    let saved = state
        .store
        .find_segment(org, &id)
        .await?
        .ok_or(tagd_core::Error::SegmentNotFound)?;
    let filter = Filter::Segment {
        path: "segment_id".into(),
        id,
    };
    let answer = state.index.segment_page(org, &filter, 0, 0, None).await?;
    let mut row = SegmentRow::new(&saved);
    row.count = Some(answer.page.count);
    Ok(send(&success(row)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserSegments {
    #[param(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    #[param(value_type = crate::schemas::UserId, inline)]
    user_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserSegmentRow {
    segment_id: String,
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserSegmentRows {
    rows: Vec<UserSegmentRow>,
}

/// The saved segments a user is in now, oldest segment first.
#[utoipa::path(get, path = "/api/v5/user/segments", tag = "v5",
    params(UserSegments),
    responses(
        (status = 200, description = "The user's segments", body = Envelope<UserSegmentRows>),
        (status = 404, description = "40402 no such user", body = V5ErrorBody)))]
pub(super) async fn user_segments(
    caller: V5Caller,
    State(state): State<AppState>,
    V5Query(query): V5Query<UserSegments>,
) -> V5Result {
    let org = caller.check_corp_id(&query.corp_id)?;
    let user_id = UserId::parse(&query.user_id)?;
    let found = state.index.user_segments(org, &user_id).await?;
    let rows = found
        .into_iter()
        .map(|s| UserSegmentRow {
            segment_id: s.entity_id.to_string(),
            name: s.name,
        })
        .collect();
    Ok(send(&success(UserSegmentRows { rows })))
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_segment))
        .routes(routes!(update_segment))
        .routes(routes!(delete_segment))
        .routes(routes!(list_segments))
        .routes(routes!(get_segment))
        .routes(routes!(user_segments))
}
