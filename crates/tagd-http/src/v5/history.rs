//! History read back (API.md §11): a user's and a tag group's tag changes, newest first, and
//! the organization's change feed in version order, with long polling.

use super::error::{success, V5Error, V5ErrorBody, V5Result};
use super::events::{event, typed_json, Event};
use super::extract::{V5Caller, V5Query};
use super::views::Envelope;
use crate::gate::send;
use crate::AppState;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;
use tagd_core::history::{
    op_name, HistoryFilter, HistoryRow, DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT,
};
use tagd_core::timefmt::format_unix;
use tagd_core::{ExternalId, OrgId, UserId};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The longest a change-feed call may wait for a change.
pub const MAX_WAIT_SECS: u64 = 30;
/// How often a waiting change-feed call looks again when no write of this server wakes it
/// (another server's writes reach it this way).
const FEED_LOOK_EVERY: Duration = Duration::from_millis(250);

/// One tag change.
#[derive(Serialize, ToSchema)]
pub struct HistoryRowView {
    /// The change's place in the organization's log.
    version: i64,
    /// `assign`, `remove` or `expire`.
    op: &'static str,
    tags_group_id: String,
    variable_name: String,
    user_id: String,
    /// The live value before the change (typed as in `user/tags/list`), or null.
    old_value: Value,
    /// The value the change set, or null for a removal or an expiry.
    new_value: Value,
    /// The app, Basic user, `operator`, or `system` (an expiry).
    executor_id: String,
    /// `open_api`, `v2_api`, `import` or `system`.
    source: &'static str,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    time: String,
    /// The expiry the change set (`YYYY-MM-DD HH:MM:SS`), or null.
    expires_at: Option<String>,
}

impl From<HistoryRow> for HistoryRowView {
    fn from(row: HistoryRow) -> Self {
        HistoryRowView {
            version: row.version,
            op: op_name(row.kind),
            tags_group_id: row.tags_group_id.to_string(),
            variable_name: row.variable_name.to_string(),
            user_id: row.user_id.to_string(),
            old_value: typed_json(row.old_value.as_ref()),
            new_value: typed_json(row.new_value.as_ref()),
            executor_id: row.executor_id,
            source: row.source.as_str(),
            time: format_unix(row.at),
            expires_at: row.expires_at.map(format_unix),
        }
    }
}

/// A page of history.
#[derive(Serialize, ToSchema)]
pub struct HistoryPage {
    rows: Vec<HistoryRowView>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    next_cursor: Option<String>,
}

/// `limit` as asked (1 to 1,000; 100 when left out).
fn page_limit(limit: Option<i64>) -> Result<usize, V5Error> {
    match limit {
        None => Ok(DEFAULT_HISTORY_LIMIT),
        Some(n) if (1..=MAX_HISTORY_LIMIT as i64).contains(&n) => Ok(n as usize),
        Some(_) => Err(V5Error::invalid(
            "limit",
            format!("must be 1 to {MAX_HISTORY_LIMIT}"),
        )),
    }
}

/// A history cursor: the version the next page starts below.
fn parse_cursor(cursor: Option<&str>) -> Result<Option<i64>, V5Error> {
    cursor
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.parse::<i64>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| V5Error::invalid("cursor", "is not a cursor this API answered"))
        })
        .transpose()
}

async fn history_page(
    state: &AppState,
    org: OrgId,
    filter: HistoryFilter,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> V5Result {
    let limit = page_limit(limit)?;
    let before = parse_cursor(cursor)?;
    let rows = state.store.tag_history(org, &filter, before, limit).await?;
    let next_cursor = match rows.last() {
        Some(last) if rows.len() == limit => Some(last.version.to_string()),
        _ => None,
    };
    let rows = rows.into_iter().map(HistoryRowView::from).collect();
    Ok(send(&success(HistoryPage { rows, next_cursor })))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserHistory {
    #[param(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    #[param(value_type = crate::schemas::UserId, inline)]
    user_id: String,
    /// Only this tag group's changes.
    #[param(value_type = Option<crate::schemas::ExternalId>, inline)]
    tags_group_id: Option<String>,
    /// `next_cursor` of the page before.
    #[param(pattern = "^[1-9][0-9]{0,17}$")]
    cursor: Option<String>,
    /// 1–1,000 (100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// A user's tag changes (assign, remove, expire), newest first.
#[utoipa::path(get, path = "/api/v5/entity/user/tags/history", tag = "v5",
    params(UserHistory),
    responses(
        (status = 200, description = "A page of changes", body = Envelope<HistoryPage>),
        (status = 400, description = "40001: missing or malformed parameter", body = V5ErrorBody),
        (status = 404, description = "40401 no such tag group, 40402 no such user", body = V5ErrorBody)))]
pub(super) async fn user_history(
    caller: V5Caller,
    State(state): State<AppState>,
    V5Query(query): V5Query<UserHistory>,
) -> V5Result {
    let org = caller.check_corp_id(&query.corp_id)?;
    let filter = HistoryFilter {
        user: Some(UserId::parse(&query.user_id)?),
        group: query
            .tags_group_id
            .as_deref()
            .map(|g| ExternalId::parse("tags_group_id", g))
            .transpose()?,
        since: None,
    };
    history_page(&state, org, filter, query.cursor.as_deref(), query.limit).await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GroupHistory {
    #[param(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    #[param(value_type = crate::schemas::ExternalId, inline)]
    tags_group_id: String,
    /// `next_cursor` of the page before.
    #[param(pattern = "^[1-9][0-9]{0,17}$")]
    cursor: Option<String>,
    /// 1–1,000 (100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// A tag group's changes (assign, remove, expire) for every user, newest first.
#[utoipa::path(get, path = "/api/v5/entity/tags/group/history", tag = "v5",
    params(GroupHistory),
    responses(
        (status = 200, description = "A page of changes", body = Envelope<HistoryPage>),
        (status = 400, description = "40001: missing or malformed parameter", body = V5ErrorBody),
        (status = 404, description = "40401: no such tag group", body = V5ErrorBody)))]
pub(super) async fn group_history(
    caller: V5Caller,
    State(state): State<AppState>,
    V5Query(query): V5Query<GroupHistory>,
) -> V5Result {
    let org = caller.check_corp_id(&query.corp_id)?;
    let filter = HistoryFilter {
        group: Some(ExternalId::parse("tags_group_id", &query.tags_group_id)?),
        ..HistoryFilter::default()
    };
    history_page(&state, org, filter, query.cursor.as_deref(), query.limit).await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Changes {
    #[param(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    /// Answer the changes after this version (0).
    #[param(minimum = 0)]
    after_version: Option<i64>,
    /// 1–1,000 (100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// 0–30: when there is no change yet, wait this long for one (long poll).
    #[param(minimum = 0, maximum = 30)]
    wait_secs: Option<i64>,
}

/// A page of the change feed.
#[derive(Serialize, ToSchema)]
pub struct ChangesPage {
    /// The events, in version order.
    rows: Vec<Event>,
    /// The version of the last event answered, or `after_version` when there is none: pass
    /// it as `after_version` next.
    version: i64,
}

/// The organization's change log as events, in version order, after a version; waits up to
/// `wait_secs` for the next change when there is none yet.
#[utoipa::path(get, path = "/api/v5/changes", tag = "v5",
    params(Changes),
    responses(
        (status = 200, description = "Events after after_version", body = Envelope<ChangesPage>),
        (status = 400, description = "40001: missing or malformed parameter", body = V5ErrorBody)))]
pub(super) async fn changes(
    caller: V5Caller,
    State(state): State<AppState>,
    V5Query(query): V5Query<Changes>,
) -> V5Result {
    let org = caller.check_corp_id(&query.corp_id)?;
    let after = query.after_version.unwrap_or(0);
    if after < 0 {
        return Err(V5Error::invalid("after_version", "must be 0 or more"));
    }
    let limit = page_limit(query.limit)?;
    let wait = match query.wait_secs.unwrap_or(0) {
        secs @ 0..=30 => Duration::from_secs(secs as u64),
        _ => {
            return Err(V5Error::invalid(
                "wait_secs",
                format!("must be 0 to {MAX_WAIT_SECS}"),
            ))
        }
    };
    // Answered before the request's own deadline cuts it short.
    let timeout = Duration::from_secs(state.config.request_timeout_secs);
    let wait = wait.min(timeout.saturating_sub(Duration::from_secs(2)));
    let deadline = tokio::time::Instant::now() + wait;
    let mut commits = state.index.commits();
    let page = loop {
        commits.mark_unchanged();
        let page = state.store.change_feed(org, after, limit).await?;
        let now = tokio::time::Instant::now();
        if !page.entries.is_empty() || now >= deadline {
            break page;
        }
        let look_again = (deadline - now).min(FEED_LOOK_EVERY);
        let _ = tokio::time::timeout(look_again, commits.changed()).await;
    };
    let rows: Vec<Event> = page
        .entries
        .iter()
        .map(|entry| event(&caller.corp_id, entry, &page))
        .collect();
    let version = page.entries.last().map_or(after, |e| e.version);
    Ok(send(&success(ChangesPage { rows, version })))
}

/// This file's endpoints, with their OpenAPI operations.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(user_history))
        .routes(routes!(group_history))
        .routes(routes!(changes))
}
