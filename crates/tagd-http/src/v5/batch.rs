//! `POST /api/v5/entity/user/tags/batch_assign` (API.md §5a): up to 1,000 assignments in one
//! request and one transaction; each item answers for itself, valid ones are applied.

use super::error::{success, V5Error, V5ErrorBody, V5Result};
use super::extract::{V5Caller, V5Json};
use super::views::Envelope;
use crate::gate::{respond, RequestScope};
use crate::AppState;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tagd_core::{AssignCommand, Assignment, Error, ExternalId, Source, UserId};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Most items one batch may carry.
pub const MAX_BATCH_ITEMS: usize = 1000;

/// One item. Its fields are checked item by item: a malformed one answers 40001 in its own
/// result, not for the whole batch, so the schema does not constrain them.
#[derive(Deserialize, ToSchema)]
pub struct BatchItem {
    /// A tag group's 32-hex id.
    tags_group_id: String,
    /// 1–64 characters from `[A-Za-z0-9_.:@-]`.
    user_id: String,
    /// As for `assign`.
    value: String,
    /// As for `assign`.
    #[schema(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$")]
    expires_at: Option<String>,
    /// As for `assign`.
    #[schema(value_type = Option<i64>)]
    ttl_secs: Option<serde_json::Value>,
}

#[derive(Deserialize, ToSchema)]
pub struct BatchAssign {
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    corp_id: String,
    #[schema(min_items = 1, max_items = 1000)]
    items: Vec<BatchItem>,
}

/// The answer for one item, in request order.
#[derive(Serialize, ToSchema, Clone)]
pub struct ItemResult {
    index: usize,
    /// 0, or the v5 code `assign` would have answered (40001, 40002, 40004, 40008, 40401,
    /// 40402).
    code: u32,
    msg: String,
    /// The assignment's entity id when applied, else null.
    entity_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchResults {
    results: Vec<ItemResult>,
}

fn refused(index: usize, error: Error) -> ItemResult {
    let (_, code, msg) = V5Error::Domain(error).parts();
    ItemResult {
        index,
        code,
        msg,
        entity_id: None,
    }
}

fn applied(index: usize, assignment: &Assignment) -> ItemResult {
    ItemResult {
        index,
        code: 0,
        msg: "success.".to_owned(),
        entity_id: Some(assignment.entity_id.to_string()),
    }
}

/// Assign many tags at once: each item as `assign` would, all in one transaction.
#[utoipa::path(post, path = "/api/v5/entity/user/tags/batch_assign", tag = "v5",
    request_body = BatchAssign,
    responses(
        (status = 200, description = "One result per item, in order", body = Envelope<BatchResults>),
        (status = 400, description = "40001: missing or malformed parameter, or 0 or over 1,000 items", body = V5ErrorBody)))]
pub(super) async fn batch_assign(
    caller: V5Caller,
    State(state): State<AppState>,
    scope: RequestScope,
    V5Json(body): V5Json<BatchAssign>,
) -> V5Result {
    let org = caller.check_corp_id(&body.corp_id)?;
    if body.items.is_empty() || body.items.len() > MAX_BATCH_ITEMS {
        return Err(V5Error::invalid(
            "items",
            format!("must hold 1 to {MAX_BATCH_ITEMS} items"),
        ));
    }
    // Items that do not parse answer 40001 here; the others go to the store, in order.
    let mut parse_failures = Vec::new();
    let mut commands = Vec::new();
    let mut command_index = Vec::new();
    for (index, item) in body.items.into_iter().enumerate() {
        let parsed = ExternalId::parse("tags_group_id", &item.tags_group_id).and_then(|group| {
            let user = UserId::parse(&item.user_id)?;
            let expiry =
                super::expiry::requested(item.expires_at.as_deref(), item.ttl_secs.as_ref())?;
            Ok((group, user, expiry))
        });
        match parsed {
            Ok((tags_group_id, user_id, expiry)) => {
                commands.push(AssignCommand {
                    tags_group_id,
                    user_id,
                    raw_value: item.value,
                    expiry,
                    executor: caller.executor(),
                    source: Source::OpenApi,
                });
                command_index.push(index);
            }
            Err(e) => parse_failures.push(refused(index, e)),
        }
    }
    let record = scope.recorder(move |outcomes: &Vec<Result<Assignment, Error>>| {
        let mut results = parse_failures.clone();
        for (outcome, &index) in outcomes.iter().zip(&command_index) {
            results.push(match outcome {
                Ok(assignment) => applied(index, assignment),
                Err(e) => refused(index, e.clone()),
            });
        }
        results.sort_by_key(|r| r.index);
        success(BatchResults { results })
    });
    let value = state.store.assign_batch(org, &commands, &record).await?;
    Ok(respond(&record, &value))
}

/// This file's endpoints, with their OpenAPI operations.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(batch_assign))
}
