//! `POST /v2/customers/{userId}/changeLabels` and `GET /v2/customers/{userId}/labels`.

use super::error::{V2Error, V2ErrorBody, V2Warning};
use super::{customer_id_json, parse_customer_id, V2Caller, V2Json};
use crate::gate::{respond, stored_json, RequestScope};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tagd_core::labels::{LabelChange, LabelWarning, MAX_LABEL_CHANGES};
use tagd_core::LabelName;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(Deserialize, ToSchema)]
pub struct LabelEntry {
    /// The label's exact name; blank names are skipped.
    #[serde(rename = "labelName")]
    /// 1–255 characters once surrounding white space is trimmed (the pattern says so: a
    /// `maxLength` would count the white space too).
    #[schema(value_type = crate::schemas::PaddedLabelName, inline)]
    label_name: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ChangeLabels {
    /// Labels to set on the customer.
    #[serde(default)]
    add: Option<Vec<LabelEntry>>,
    /// Labels to take off the customer.
    #[serde(default)]
    remove: Option<Vec<LabelEntry>>,
}

#[derive(Serialize, ToSchema)]
pub struct ChangeLabelsAnswer {
    /// The customer's `userId`, as a number.
    #[schema(value_type = u64)]
    entity: Value,
    warnings: Vec<V2Warning>,
}

fn parse_names(entries: Option<Vec<LabelEntry>>, list: &str) -> Result<Vec<LabelName>, V2Error> {
    let mut names = Vec::new();
    for (i, entry) in entries.unwrap_or_default().into_iter().enumerate() {
        let parsed = LabelName::parse_optional(&entry.label_name)
            .map_err(|e| V2Error::BadRequest(format!("{list}[{i}].labelName: {e}")))?;
        names.extend(parsed);
    }
    Ok(names)
}

/// Add and remove labels on one customer, in one transaction. Unknown labels are warnings
/// (33000), a remove on a customer without labels one warning (33001).
#[utoipa::path(post, path = "/v2/customers/{userId}/changeLabels", tag = "v2",
    params(("userId" = u64, Path, description = "The customer")),
    request_body = ChangeLabels,
    responses(
        (status = 200, description = "Applied; warnings per label", body = ChangeLabelsAnswer),
        (status = 400, description = "Malformed body, non-numeric userId or limits exceeded; nothing applied", body = V2ErrorBody),
        (status = 404, description = "8015: customer not found", body = V2ErrorBody)))]
pub(super) async fn change_labels(
    caller: V2Caller,
    State(state): State<AppState>,
    scope: RequestScope,
    Path(user_id): Path<String>,
    V2Json(body): V2Json<ChangeLabels>,
) -> Result<Response, V2Error> {
    let (number, user_id) = parse_customer_id(&user_id)?;
    let entries = body.add.as_ref().map_or(0, Vec::len) + body.remove.as_ref().map_or(0, Vec::len);
    if entries > MAX_LABEL_CHANGES {
        return Err(V2Error::BadRequest(format!(
            "at most {MAX_LABEL_CHANGES} add and remove entries in total, got {entries}"
        )));
    }
    let change = LabelChange {
        add: parse_names(body.add, "add")?,
        remove: parse_names(body.remove, "remove")?,
    };
    let executor = caller.executor();
    let record = scope.recorder(move |warnings: &Vec<LabelWarning>| {
        let answer = ChangeLabelsAnswer {
            entity: Value::from(number),
            warnings: warnings.iter().cloned().map(V2Warning::from).collect(),
        };
        stored_json(StatusCode::OK, &answer)
    });
    let value = state
        .store
        .change_labels(caller.org, &user_id, &change, &executor, &record)
        .await?;
    Ok(respond(&record, &value))
}

/// One label a customer carries.
#[derive(Serialize, ToSchema)]
pub struct CustomerLabel {
    /// The assignment's id.
    id: i64,
    #[serde(rename = "orgId")]
    org_id: i64,
    /// The app or credential that set it.
    #[serde(rename = "addedBy")]
    added_by: i64,
    #[serde(rename = "labelId")]
    label_id: i64,
    #[serde(rename = "userId")]
    #[schema(value_type = u64)]
    user_id: Value,
    #[serde(rename = "labelName")]
    label_name: String,
    deleted: bool,
}

#[derive(Serialize, ToSchema)]
pub struct CustomerLabels {
    data: Vec<CustomerLabel>,
    warnings: Vec<V2Warning>,
    errors: Vec<V2Warning>,
}

/// The labels a customer carries, oldest first.
#[utoipa::path(get, path = "/v2/customers/{userId}/labels", tag = "v2",
    params(("userId" = u64, Path, description = "The customer")),
    responses(
        (status = 200, description = "The customer's labels", body = CustomerLabels),
        (status = 400, description = "Non-numeric userId", body = V2ErrorBody),
        (status = 404, description = "8015: customer not found", body = V2ErrorBody)))]
pub(super) async fn customer_labels(
    caller: V2Caller,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<CustomerLabels>, V2Error> {
    let (_, user_id) = parse_customer_id(&user_id)?;
    let labels = state.index.list_user_labels(caller.org, &user_id).await?;
    let data = labels
        .into_iter()
        .map(|a| CustomerLabel {
            id: a.id,
            org_id: a.org_id.0,
            added_by: a.executor.id,
            label_id: a.group_id,
            user_id: customer_id_json(&a.user_id),
            label_name: a.group_name.to_string(),
            deleted: a.is_deleted,
        })
        .collect();
    Ok(Json(CustomerLabels {
        data,
        warnings: Vec::new(),
        errors: Vec::new(),
    }))
}

/// This file's endpoints, with their OpenAPI operations.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(change_labels))
        .routes(routes!(customer_labels))
}
