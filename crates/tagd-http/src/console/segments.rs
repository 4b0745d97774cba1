//! Segments: a filter with its exact count as it is typed (htmx posts the form to `count`
//! after each pause in typing), saved segments, and the members exported as CSV. Counting,
//! saving and exporting are the v5 API's operations on the index.

use super::builder::{Builder, OPERATORS};
use super::session::Flash;
use super::{failed, page, refusal, Posted, Signed};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use std::collections::HashMap;
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
    builder: Builder,
    operators: &'static [(&'static str, &'static str)],
    variables: Vec<String>,
    saved: Vec<SavedRow>,
    count: Option<u64>,
    composed: Option<String>,
    count_error: Option<String>,
    save_error: Option<String>,
    notice: Option<String>,
}

impl SegmentsPage {
    fn same(&self, a: &str, b: &str) -> bool {
        a == b
    }
}

#[derive(Template)]
#[template(path = "console/count_fragment.html")]
struct CountFragment {
    count: Option<u64>,
    composed: Option<String>,
    count_error: Option<String>,
}

/// The organization's segments page.
fn segments_path(corp_id: &str) -> String {
    format!("/console/orgs/{corp_id}/segments")
}

/// What saving or exporting without a filter answers.
fn no_filter() -> Error {
    Error::invalid("filter", "choose a tag in a condition, or type a filter")
}

/// The JSON of a filter typed or composed on the page.
fn filter_json(text: &str) -> Result<serde_json::Value, Error> {
    serde_json::from_str(text).map_err(|e| Error::invalid("filter", format!("not JSON: {e}")))
}

/// `filter` parsed from JSON text.
fn parse_filter(text: &str) -> Result<Filter, Error> {
    segments::parse(&filter_json(text)?, "filter")
}

/// The filter a posted form asks for, as JSON text: the one typed, else the one the
/// builder's rows compose; `None` when it asks for none.
async fn requested(
    state: &AppState,
    org: OrgId,
    form: &HashMap<String, String>,
) -> Result<Option<String>, Error> {
    let typed = form.get("filter").map_or("", |f| f.trim());
    if !typed.is_empty() {
        return Ok(Some(typed.to_owned()));
    }
    let groups = state.store.all_groups(org).await?;
    let attribute = |tag: &str| {
        groups
            .iter()
            .find(|g| !g.is_deleted && g.variable_name.as_str() == tag)
            .map(|g| g.attribute)
    };
    let composed = Builder::from_form(form).compose(attribute)?;
    Ok(composed.map(|filter| filter.to_string()))
}

/// The exact count of the audience the form asks for, the filter it counted, or why not.
async fn count_of(
    state: &AppState,
    org: OrgId,
    form: &HashMap<String, String>,
) -> (Option<u64>, Option<String>, Option<String>) {
    let counted = async {
        let Some(text) = requested(state, org, form).await? else {
            return Ok(None);
        };
        let filter = parse_filter(&text)?;
        let answer = state.index.segment_page(org, &filter, 0, 0, None).await?;
        Ok::<_, Error>(Some((answer.page.count, text)))
    };
    match counted.await {
        Ok(Some((count, text))) => (Some(count), Some(text), None),
        Ok(None) => (None, None, None),
        Err(e) => (None, None, Some(refusal(e).1)),
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
    form: HashMap<String, String>,
    save_error: Option<(StatusCode, String)>,
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
    let (count, composed, count_error) = count_of(state, org.id, &form).await;
    let (status, save_error, notice) = match save_error {
        Some((status, text)) => (status, Some(text), None),
        None => {
            let flash = signed.take_flash(state, &segments_path(&org.corp_id.to_string()));
            (StatusCode::OK, None, flash.map(|f| f.notice))
        }
    };
    let view = SegmentsPage {
        signed_in: true,
        csrf: signed.csrf().to_owned(),
        corp_id: org.corp_id.to_string(),
        org_name: org.name.clone(),
        filter: form.get("filter").cloned().unwrap_or_default(),
        builder: Builder::from_form(&form),
        operators: &OPERATORS,
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
        composed,
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
        Ok(org) => {
            let form = HashMap::from([("filter".to_owned(), opened.filter)]);
            segments_page(&state, &signed, &org, form, None).await
        }
        Err(e) => failed(e, "/console/orgs", &signed),
    }
}

/// The count fragment htmx swaps in under the filter.
async fn count(
    State(state): State<AppState>,
    Path(corp_id): Path<String>,
    Posted { signed: _, form }: Posted<HashMap<String, String>>,
) -> Response {
    let (count, composed, count_error) =
        match operator::org_by_corp_id(state.store.as_ref(), &corp_id).await {
            Ok(org) => count_of(&state, org.id, &form).await,
            Err(e) => (None, None, Some(refusal(e).1)),
        };
    let fragment = CountFragment {
        count,
        composed,
        count_error,
    };
    page(StatusCode::OK, &fragment)
}

/// Saves the filter as a segment, as `POST /api/v5/segments/create` does.
async fn save(
    State(state): State<AppState>,
    Path(corp_id): Path<String>,
    Posted { signed, form }: Posted<HashMap<String, String>>,
) -> Response {
    let store = state.store.as_ref();
    let org = match operator::org_by_corp_id(store, &corp_id).await {
        Ok(org) => org,
        Err(e) => return failed(e, "/console/orgs", &signed),
    };
    let saved = async {
        let text = requested(&state, org.id, &form)
            .await?
            .ok_or_else(no_filter)?;
        let json = filter_json(&text)?;
        let name = form.get("name").map_or("", String::as_str);
        let none = Recorder::none();
        let saved = crate::v5::save_segment(&state, org.id, name, "", json, &none).await?;
        Ok::<_, Error>((saved, text))
    };
    match saved.await {
        Ok((segment, text)) => {
            let path = segments_path(&org.corp_id.to_string());
            let notice = format!("Saved as segment {} ({}).", segment.name, segment.entity_id);
            let flash = Flash {
                path: path.clone(),
                notice,
                secret: None,
            };
            signed.flash(&state, flash);
            let query: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("filter", &text)
                .finish();
            Redirect::to(&format!("{path}?{query}")).into_response()
        }
        Err(e) => segments_page(&state, &signed, &org, form, Some(refusal(e))).await,
    }
}

/// The audience's members as a CSV download, streamed as the v5 export streams them.
async fn export(
    State(state): State<AppState>,
    Path(corp_id): Path<String>,
    Posted { signed, form }: Posted<HashMap<String, String>>,
) -> Response {
    let store = state.store.as_ref();
    let org = match operator::org_by_corp_id(store, &corp_id).await {
        Ok(org) => org,
        Err(e) => return failed(e, "/console/orgs", &signed),
    };
    let streamed = async {
        let text = requested(&state, org.id, &form)
            .await?
            .ok_or_else(no_filter)?;
        let filter = parse_filter(&text)?;
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
        Err(e) => segments_page(&state, &signed, &org, form, Some(refusal(e))).await,
    }
}
