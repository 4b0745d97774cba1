//! A user of an organization: their live tags with expiry, and their history newest first.

use super::{failed, page, refusal, Signed};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use tagd_core::history::HistoryFilter;
use tagd_core::timefmt::format_unix;
use tagd_core::{operator, TagValue, UserId};

/// History rows shown.
const HISTORY_LIMIT: usize = 50;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/console/orgs/{corp_id}/user", get(show))
}

pub(super) struct TagRow {
    group: String,
    variable: String,
    value: String,
    expires: String,
    by: String,
    at: String,
}

pub(super) struct HistoryLine {
    at: String,
    kind: &'static str,
    variable: String,
    old: String,
    new: String,
    by: String,
    version: i64,
}

#[derive(Template)]
#[template(path = "console/user.html")]
struct UserPage {
    signed_in: bool,
    csrf: String,
    corp_id: String,
    org_name: String,
    user_id: String,
    error: Option<String>,
    found: bool,
    tags: Vec<TagRow>,
    history: Vec<HistoryLine>,
    history_limit: usize,
}

#[derive(Deserialize)]
struct Lookup {
    #[serde(default)]
    user_id: String,
}

fn text(value: Option<&TagValue>) -> String {
    value.map_or_else(String::new, TagValue::to_text)
}

async fn show(
    State(state): State<AppState>,
    signed: Signed,
    Path(corp_id): Path<String>,
    Query(lookup): Query<Lookup>,
) -> Response {
    let store = state.store.as_ref();
    let org = match operator::org_by_corp_id(store, &corp_id).await {
        Ok(org) => org,
        Err(e) => return failed(e, "/console/orgs", &signed),
    };
    let mut view = UserPage {
        signed_in: true,
        csrf: signed.csrf().to_owned(),
        corp_id: org.corp_id.to_string(),
        org_name: org.name.clone(),
        user_id: lookup.user_id.trim().to_owned(),
        error: None,
        found: false,
        tags: Vec::new(),
        history: Vec::new(),
        history_limit: HISTORY_LIMIT,
    };
    if view.user_id.is_empty() {
        return page(StatusCode::OK, &view);
    }
    let found = async {
        let user = UserId::parse(&view.user_id)?;
        let tags = state.index.list_user_assignments(org.id, &user).await?;
        let of_user = HistoryFilter {
            user: Some(user),
            ..Default::default()
        };
        let history = store
            .tag_history(org.id, &of_user, None, HISTORY_LIMIT)
            .await?;
        Ok::<_, tagd_core::Error>((tags, history))
    };
    match found.await {
        Ok((tags, history)) => {
            view.found = true;
            view.tags = tags
                .into_iter()
                .map(|t| TagRow {
                    group: t.group_name.to_string(),
                    variable: t.variable_name.to_string(),
                    value: t.value.to_text(),
                    expires: t.expires_at.map_or_else(|| "never".to_owned(), format_unix),
                    by: t.executor.name,
                    at: format_unix(t.mtime),
                })
                .collect();
            view.history = history
                .into_iter()
                .map(|h| HistoryLine {
                    at: format_unix(h.at),
                    kind: h.kind.as_str(),
                    variable: h.variable_name.to_string(),
                    old: text(h.old_value.as_ref()),
                    new: text(h.new_value.as_ref()),
                    by: h.executor_id,
                    version: h.version,
                })
                .collect();
            page(StatusCode::OK, &view)
        }
        Err(e) => {
            let (status, message) = refusal(e);
            view.error = Some(message);
            page(status, &view)
        }
    }
}
