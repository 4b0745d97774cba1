//! Segments: a filter with its exact count as it is typed (htmx posts the form to `count`
//! after each pause in typing), saved segments, and the members exported as CSV. Counting,
//! saving and exporting are the v5 API's operations on the index.

use super::{failed, page, refusal, Posted, Signed};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use tagd_core::saved_segments::SegmentFields;
use tagd_core::segments::{self, Filter};
use tagd_core::{operator, Error, OrgId, Organization, Recorder};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/orgs/{corp_id}/segments", get(show).post(save))
        .route("/console/orgs/{corp_id}/segments/count", post(count))
        .route("/console/orgs/{corp_id}/segments/export", post(export))
}

pub(super) struct SavedRow {
    name: String,
    filter: String,
}

#[derive(Template)]
#[template(path = "console/segments.html")]
struct SegmentsPage {
    signed_in: bool,
    csrf: String,
    corp_id: String,
    org_name: String,
    filter: String,
    variables: Vec<String>,
    saved: Vec<SavedRow>,
    count: Option<u64>,
    count_error: Option<String>,
    save_error: Option<String>,
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "console/count_fragment.html")]
struct CountFragment {
    count: Option<u64>,
    count_error: Option<String>,
}

/// `filter` parsed from the text typed into the page.
fn parse_filter(text: &str) -> Result<Filter, Error> {
    let json: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Error::invalid("filter", format!("not JSON: {e}")))?;
    segments::parse(&json, "filter")
}

/// The exact count of `text`'s audience, or why there is none.
async fn count_of(state: &AppState, org: OrgId, text: &str) -> (Option<u64>, Option<String>) {
    if text.trim().is_empty() {
        return (None, None);
    }
    let counted = async {
        let filter = parse_filter(text)?;
        state.index.segment_page(org, &filter, 0, 0, None).await
    };
    match counted.await {
        Ok(answer) => (Some(answer.page.count), None),
        Err(e) => (None, Some(refusal(e).1)),
    }
}

#[derive(Deserialize, Default)]
struct Opened {
    #[serde(default)]
    filter: String,
}

async fn segments_page(
    state: &AppState,
    signed: &Signed,
    org: &Organization,
    filter: String,
    save_error: Option<(StatusCode, String)>,
    notice: Option<String>,
) -> Response {
    let store = state.store.as_ref();
    let listed = async {
        let groups = store.all_groups(org.id).await?;
        let saved = store.all_segments(org.id).await?;
        Ok::<_, Error>((groups, saved))
    };
    let (groups, saved) = match listed.await {
        Ok(lists) => lists,
        Err(e) => return failed(e, "/console/orgs", signed),
    };
    let (count, count_error) = count_of(state, org.id, &filter).await;
    let (status, save_error) = match save_error {
        Some((status, text)) => (status, Some(text)),
        None => (StatusCode::OK, None),
    };
    let view = SegmentsPage {
        signed_in: true,
        csrf: signed.csrf().to_owned(),
        corp_id: org.corp_id.to_string(),
        org_name: org.name.clone(),
        filter,
        variables: groups
            .iter()
            .filter(|g| !g.is_deleted)
            .map(|g| g.variable_name.to_string())
            .collect(),
        saved: saved
            .into_iter()
            .filter(|s| !s.is_deleted)
            .map(|s| SavedRow {
                name: s.name,
                filter: s.filter.to_string(),
            })
            .collect(),
        count,
        count_error,
        save_error,
        notice,
    };
    page(status, &view)
}

async fn show(
    State(state): State<AppState>,
    signed: Signed,
    Path(corp_id): Path<String>,
    Query(opened): Query<Opened>,
) -> Response {
    match operator::org_by_corp_id(state.store.as_ref(), &corp_id).await {
        Ok(org) => segments_page(&state, &signed, &org, opened.filter, None, None).await,
        Err(e) => failed(e, "/console/orgs", &signed),
    }
}

#[derive(Deserialize)]
struct FilterForm {
    #[serde(default)]
    filter: String,
    #[serde(default)]
    name: String,
}

/// The count fragment htmx swaps in under the filter.
async fn count(
    State(state): State<AppState>,
    Path(corp_id): Path<String>,
    Posted { signed: _, form }: Posted<FilterForm>,
) -> Response {
    let (count, count_error) = match operator::org_by_corp_id(state.store.as_ref(), &corp_id).await
    {
        Ok(org) => count_of(&state, org.id, &form.filter).await,
        Err(e) => (None, Some(refusal(e).1)),
    };
    page(StatusCode::OK, &CountFragment { count, count_error })
}

/// Saves the filter as a segment, as `POST /api/v5/segments/create` does.
async fn save(
    State(state): State<AppState>,
    Path(corp_id): Path<String>,
    Posted { signed, form }: Posted<FilterForm>,
) -> Response {
    let store = state.store.as_ref();
    let org = match operator::org_by_corp_id(store, &corp_id).await {
        Ok(org) => org,
        Err(e) => return failed(e, "/console/orgs", &signed),
    };
    let saved = async {
        let json: serde_json::Value = serde_json::from_str(&form.filter)
            .map_err(|e| Error::invalid("filter", format!("not JSON: {e}")))?;
        let fields = SegmentFields::parse(&form.name, "", json)?;
        let filter = segments::parse(&fields.filter, "filter")?;
        state
            .index
            .check_saved_filter(org.id, &filter, None)
            .await?;
        store
            .create_segment(org.id, &fields, &Recorder::none())
            .await
    };
    match saved.await {
        Ok(segment) => {
            let notice = format!("Saved as segment {} ({}).", segment.name, segment.entity_id);
            segments_page(&state, &signed, &org, form.filter, None, Some(notice)).await
        }
        Err(e) => segments_page(&state, &signed, &org, form.filter, Some(refusal(e)), None).await,
    }
}

/// The audience's members as a CSV download, streamed as the v5 export streams them.
async fn export(
    State(state): State<AppState>,
    Path(corp_id): Path<String>,
    Posted { signed, form }: Posted<FilterForm>,
) -> Response {
    let store = state.store.as_ref();
    let org = match operator::org_by_corp_id(store, &corp_id).await {
        Ok(org) => org,
        Err(e) => return failed(e, "/console/orgs", &signed),
    };
    let streamed = async {
        let filter = parse_filter(&form.filter)?;
        crate::v5::stream_members(&state, org.id, filter, true).await
    };
    match streamed.await {
        Ok(mut response) => {
            response.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"segment.csv\""),
            );
            response
        }
        Err(e) => segments_page(&state, &signed, &org, form.filter, Some(refusal(e)), None).await,
    }
}
