//! Segments (API.md §10): who matches a filter, counted exactly and paged in registration
//! order. Answered from the in-memory index when it holds the organization, else from SQL.

use super::error::{success, V5ErrorBody, V5Result};
use super::extract::{V5Caller, V5Json};
use super::views::Envelope;
use crate::gate::send;
use crate::AppState;
use axum::extract::State;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tagd_core::segments::{self, Filter};
use tagd_core::{Error, ExternalId};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Members one query answers at most.
pub const MAX_QUERY_LIMIT: i64 = 10_000;
const DEFAULT_QUERY_LIMIT: i64 = 100;

#[derive(Deserialize, ToSchema)]
pub struct SegmentQuery {
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    /// The filter (API.md §10), e.g. `{"all": [{"tag": "vip"}, {"not": {"tag": "churned"}}]}`.
    /// Give either this or `segment_id`.
    #[schema(value_type = Option<Object>)]
    filter: Option<serde_json::Value>,
    /// A saved segment to evaluate instead of a filter.
    #[schema(value_type = Option<crate::schemas::ExternalId>, inline)]
    segment_id: Option<String>,
    /// Members per page, 0–10,000 (0: the count alone). Default 100.
    #[schema(minimum = 0, maximum = 10000)]
    limit: Option<i64>,
    /// `next_cursor` of the page before.
    cursor: Option<String>,
    /// Answer only once this server has applied this version of the organization; after one
    /// second the answer comes from the database.
    #[schema(minimum = 0)]
    min_version: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct SegmentQueryAnswer {
    /// How many users match, exactly.
    count: u64,
    /// This page of them, in registration order.
    users: Vec<String>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
    /// The organization version the answer reflects.
    version: i64,
}

/// A cursor: the internal id of the last user of a page. Opaque to clients.
fn cursor_of(user_ref: i64) -> String {
    format!("u{user_ref}")
}

fn parse_cursor(raw: &str) -> Result<i64, Error> {
    raw.strip_prefix('u')
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n >= 0)
        .ok_or_else(|| Error::invalid("cursor", "is not a cursor this API answered"))
}

/// Who matches a filter: the exact count and one page of user ids.
#[utoipa::path(post, path = "/api/v5/segments/query", tag = "v5",
    request_body = SegmentQuery,
    responses(
        (status = 200, description = "The count and one page of members", body = Envelope<SegmentQueryAnswer>),
        (status = 400, description = "40001 missing or malformed parameter, 40006 malformed filter, 40007 filter over the limits", body = V5ErrorBody),
        (status = 404, description = "40401 a tag the filter names does not exist, 40403 no such segment", body = V5ErrorBody)))]
pub(super) async fn query_segment(
    caller: V5Caller,
    State(state): State<AppState>,
    V5Json(body): V5Json<SegmentQuery>,
) -> V5Result {
    let org = caller.check_corp_id(&body.corp_id)?;
    let filter = match (&body.filter, &body.segment_id) {
        (Some(filter), None) => segments::parse(filter, "filter")?,
        (None, Some(id)) => Filter::Segment {
            path: "segment_id".into(),
            id: ExternalId::parse("segment_id", id)?,
        },
        _ => return Err(Error::invalid("filter", "give either `filter` or `segment_id`").into()),
    };
    let limit = body.limit.unwrap_or(DEFAULT_QUERY_LIMIT);
    if !(0..=MAX_QUERY_LIMIT).contains(&limit) {
        return Err(Error::invalid("limit", format!("must be 0 to {MAX_QUERY_LIMIT}")).into());
    }
    if body.min_version.is_some_and(|v| v < 0) {
        return Err(Error::invalid("min_version", "must be 0 or more").into());
    }
    let after = body
        .cursor
        .as_deref()
        .map(parse_cursor)
        .transpose()?
        .unwrap_or(0);
    let answer = state
        .index
        .segment_page(org, &filter, after, limit as usize, body.min_version)
        .await?;
    let next_cursor = answer
        .page
        .has_more
        .then(|| answer.page.members.last().map(|m| cursor_of(m.user_ref)))
        .flatten();
    Ok(send(&success(SegmentQueryAnswer {
        count: answer.page.count,
        users: answer
            .page
            .members
            .into_iter()
            .map(|m| m.user_id.as_str().to_owned())
            .collect(),
        next_cursor,
        version: answer.version,
    })))
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(query_segment))
        .routes(routes!(export_segment))
}

/// Members fetched per chunk of an export.
const EXPORT_CHUNK: usize = 10_000;

#[derive(Deserialize, ToSchema)]
pub struct SegmentExport {
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    /// The filter (API.md §10); give either this or `segment_id`.
    #[schema(value_type = Option<Object>)]
    filter: Option<serde_json::Value>,
    #[schema(value_type = Option<crate::schemas::ExternalId>, inline)]
    segment_id: Option<String>,
    /// `ndjson` (default): one `{"user_id": ...}` a line; `csv`: a `user_id` header, then one
    /// id a line.
    #[schema(value_type = Option<String>, pattern = "^(csv|ndjson)$")]
    format: Option<String>,
}

/// The filter a query or export names: `filter` or `segment_id`, exactly one.
fn chosen_filter(
    filter: Option<&serde_json::Value>,
    segment_id: Option<&str>,
) -> Result<Filter, Error> {
    match (filter, segment_id) {
        (Some(filter), None) => segments::parse(filter, "filter"),
        (None, Some(id)) => Ok(Filter::Segment {
            path: "segment_id".into(),
            id: ExternalId::parse("segment_id", id)?,
        }),
        _ => Err(Error::invalid(
            "filter",
            "give either `filter` or `segment_id`",
        )),
    }
}

/// Every member of an audience, streamed in registration order (for audiences of millions).
/// The first chunk is read before the answer starts, so a bad filter is a v5 error; a stream
/// still running at the request deadline is cut off (the body ends early, without its last
/// line break).
#[utoipa::path(post, path = "/api/v5/segments/export", tag = "v5",
    request_body = SegmentExport,
    responses(
        (status = 200, description = "The members, streamed", content(
            (String = "application/x-ndjson"), (String = "text/csv"))),
        (status = 400, description = "40001 missing or malformed parameter, 40006 malformed filter, 40007 filter over the limits", body = V5ErrorBody),
        (status = 404, description = "40401 a tag the filter names does not exist, 40403 no such segment", body = V5ErrorBody)))]
pub(super) async fn export_segment(
    caller: V5Caller,
    State(state): State<AppState>,
    V5Json(body): V5Json<SegmentExport>,
) -> Result<axum::response::Response, super::error::V5Error> {
    let org = caller.check_corp_id(&body.corp_id)?;
    let filter = chosen_filter(body.filter.as_ref(), body.segment_id.as_deref())?;
    let csv = match body.format.as_deref() {
        None | Some("ndjson") => false,
        Some("csv") => true,
        Some(_) => return Err(Error::invalid("format", "must be csv or ndjson").into()),
    };
    Ok(stream_members(&state, org, filter, csv).await?)
}

/// Every member of `filter`'s audience in `org` as a streamed body, CSV (`user_id` header,
/// one id a line) or NDJSON, in registration order: the v5 export and the console's. The
/// first chunk is read before the answer starts, so a bad filter is an error, not a body.
pub(crate) async fn stream_members(
    state: &AppState,
    org: tagd_core::OrgId,
    filter: Filter,
    csv: bool,
) -> Result<axum::response::Response, Error> {
    use axum::response::IntoResponse;
    let first = state
        .index
        .segment_members(org, &filter, 0, EXPORT_CHUNK)
        .await?;
    let deadline = std::time::Instant::now()
        + std::time::Duration::from_secs(state.config.request_timeout_secs);
    let index = state.index.clone();
    let head = csv.then(|| axum::body::Bytes::from_static(b"user_id\n"));
    let line = move |id: &str| -> String {
        if csv {
            format!("{id}\n")
        } else {
            format!("{}\n", serde_json::json!({ "user_id": id }))
        }
    };
    // Each step writes the chunk it holds and fetches the next after its last member.
    let chunks = futures_util::stream::unfold(Some(first), move |held| {
        let index = index.clone();
        let filter = filter.clone();
        async move {
            let members = held?;
            if members.is_empty() {
                return None;
            }
            let text: String = members.iter().map(|m| line(m.user_id.as_str())).collect();
            let next = if members.len() < EXPORT_CHUNK {
                None
            } else if std::time::Instant::now() >= deadline {
                tracing::warn!("segment export cut off at the request deadline");
                return Some((Err(std::io::Error::other("request deadline passed")), None));
            } else {
                let after = members.last().map_or(0, |m| m.user_ref);
                match index
                    .segment_members(org, &filter, after, EXPORT_CHUNK)
                    .await
                {
                    Ok(next) => Some(next),
                    Err(e) => {
                        tracing::error!(cause = %e, "segment export failed");
                        return Some((Err(std::io::Error::other("export failed")), None));
                    }
                }
            };
            Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(text)), next))
        }
    });
    let stream = futures_util::stream::iter(head.map(Ok)).chain(chunks);
    let content_type = if csv {
        "text/csv; charset=utf-8"
    } else {
        "application/x-ndjson"
    };
    Ok((
        [(axum::http::header::CONTENT_TYPE, content_type)],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}
