//! `GET /v2/customers/labels/search`: customers who carry a label whose name starts with `q`,
//! ignoring case (API.md §3.5). With `limit=-1` every customer is streamed, fetched in bounded
//! chunks by customer key (each chunk starts where the last ended, so the whole stream walks
//! the customers once), and memory stays flat however many there are. A stream still running
//! at the request deadline is cut off: the client sees a truncated body, not a complete one.

use super::error::{V2Error, V2ErrorBody, V2Warning};
use super::{customer_id_json, V2Caller};
use crate::body::parse_query;
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use tagd_core::{Assignment, OrgId, Store, UserId};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest page a client may ask for; `-1` streams everything.
pub const MAX_PAGE: i64 = 1000;
/// Customers fetched per round trip while streaming.
const STREAM_CHUNK: i64 = 500;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// The start of the label's name, compared ignoring case (`pre` finds `Premium`); `%`
    /// and `_` are ordinary characters.
    #[param(required = true, min_length = 1, pattern = r"\S")]
    q: Option<String>,
    /// Customers to skip; default 0.
    #[param(minimum = 0)]
    offset: Option<i64>,
    /// Page size 0–1,000, default 10 (0 counts without rows); -1 for all (streamed).
    #[param(minimum = -1, maximum = 1000)]
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct HolderLabel {
    #[serde(rename = "orgId")]
    org_id: i64,
    #[serde(rename = "labelId")]
    label_id: i64,
    #[serde(rename = "userId")]
    #[schema(value_type = u64)]
    user_id: Value,
    #[serde(rename = "labelName")]
    label_name: String,
}

#[derive(Serialize, ToSchema)]
pub struct Holder {
    #[serde(rename = "userId")]
    #[schema(value_type = u64)]
    user_id: Value,
    #[serde(rename = "customerLabels")]
    customer_labels: Vec<HolderLabel>,
}

#[derive(Serialize, ToSchema)]
pub struct Pagination {
    limit: i64,
    offset: i64,
    total: i64,
}

#[derive(Serialize, ToSchema)]
pub struct SearchAnswer {
    pagination: Pagination,
    data: Vec<Holder>,
    warnings: Vec<V2Warning>,
    errors: Vec<V2Warning>,
}

/// Folds (customer, label) rows, which come grouped by customer, into one entry per customer.
fn holders(rows: Vec<Assignment>) -> Vec<Holder> {
    let mut out: Vec<Holder> = Vec::new();
    let mut last: Option<UserId> = None;
    for a in rows {
        let user_id = customer_id_json(&a.user_id);
        let label = HolderLabel {
            org_id: a.org_id.0,
            label_id: a.group_id,
            user_id: user_id.clone(),
            label_name: a.group_name.to_string(),
        };
        match out.last_mut() {
            Some(holder) if last.as_ref() == Some(&a.user_id) => holder.customer_labels.push(label),
            _ => out.push(Holder {
                user_id,
                customer_labels: vec![label],
            }),
        }
        last = Some(a.user_id);
    }
    out
}

/// Customers carrying a label whose name starts with `q` (ignoring case), ordered by `userId`,
/// each once with every matching label.
#[utoipa::path(get, path = "/v2/customers/labels/search", tag = "v2",
    params(SearchQuery),
    responses(
        (status = 200, description = "One page of customers, or all of them for limit=-1", body = SearchAnswer),
        (status = 400, description = "Missing q, bad offset or limit", body = V2ErrorBody)))]
pub(super) async fn search_customers(
    caller: V2Caller,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, V2Error> {
    let query: SearchQuery = parse_query(query.as_deref())?;
    let name = query
        .q
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| V2Error::BadRequest("invalid parameter `q`: required".into()))?;
    let name = name.trim().to_owned();
    let offset = query.offset.unwrap_or(0);
    let limit = query.limit.unwrap_or(10);
    if offset < 0 {
        return Err(V2Error::BadRequest(
            "invalid parameter `offset`: must be 0 or more".into(),
        ));
    }
    if !(-1..=MAX_PAGE).contains(&limit) {
        return Err(V2Error::BadRequest(format!(
            "invalid parameter `limit`: must be 0 to {MAX_PAGE}, or -1 for all"
        )));
    }
    let total = state.store.count_label_holders(caller.org, &name).await?;
    let pagination = Pagination {
        limit,
        offset,
        total,
    };
    if limit == 0 {
        let answer = SearchAnswer {
            pagination,
            data: Vec::new(),
            warnings: Vec::new(),
            errors: Vec::new(),
        };
        return Ok(Json(answer).into_response());
    }
    if limit != -1 {
        let rows = state
            .store
            .label_holders(caller.org, &name, None, offset, limit)
            .await?;
        let answer = SearchAnswer {
            pagination,
            data: holders(rows),
            warnings: Vec::new(),
            errors: Vec::new(),
        };
        return Ok(Json(answer).into_response());
    }
    let deadline = std::time::Instant::now()
        + std::time::Duration::from_secs(state.config.request_timeout_secs);
    Ok(stream_all(
        state.store.clone(),
        (caller.org, name),
        pagination,
        deadline,
    ))
}

/// Where the streamed answer is.
enum Phase {
    Head,
    Chunk { after: Option<UserId>, first: bool },
    Done,
}

fn stream_all(
    store: Arc<dyn Store>,
    (org, name): (OrgId, String),
    pagination: Pagination,
    deadline: std::time::Instant,
) -> Response {
    let head = format!(
        "{{\"pagination\":{},\"data\":[",
        serde_json::to_string(&pagination).unwrap_or_default()
    );
    let offset = pagination.offset;
    let chunks = stream::unfold(Phase::Head, move |phase| {
        let store = store.clone();
        let name = name.clone();
        let head = head.clone();
        async move {
            match phase {
                Phase::Head => Some((
                    Ok(Bytes::from(head)),
                    Phase::Chunk {
                        after: None,
                        first: true,
                    },
                )),
                Phase::Chunk { after, first } => {
                    if std::time::Instant::now() >= deadline {
                        tracing::warn!("label search stream cut off at the request deadline");
                        return Some((
                            Err(std::io::Error::other("request deadline passed")),
                            Phase::Done,
                        ));
                    }
                    let skip = if after.is_none() { offset } else { 0 };
                    let rows = match store
                        .label_holders(org, &name, after.as_ref(), skip, STREAM_CHUNK)
                        .await
                    {
                        Ok(rows) => rows,
                        Err(e) => {
                            tracing::error!(cause = %e, "label search stream failed");
                            return Some((
                                Err(std::io::Error::other("stream failed")),
                                Phase::Done,
                            ));
                        }
                    };
                    let Some(last) = rows.last().map(|a| a.user_id.clone()) else {
                        let tail = "],\"warnings\":[],\"errors\":[]}";
                        return Some((Ok(Bytes::from_static(tail.as_bytes())), Phase::Done));
                    };
                    let mut text = String::new();
                    for (i, holder) in holders(rows).iter().enumerate() {
                        if !(first && i == 0) {
                            text.push(',');
                        }
                        text.push_str(&serde_json::to_string(holder).unwrap_or_default());
                    }
                    Some((
                        Ok(Bytes::from(text)),
                        Phase::Chunk {
                            after: Some(last),
                            first: false,
                        },
                    ))
                }
                Phase::Done => None,
            }
        }
    });
    (
        [(CONTENT_TYPE, "application/json")],
        Body::from_stream(chunks),
    )
        .into_response()
}

/// This file's endpoints, with their OpenAPI operations.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search_customers))
}
