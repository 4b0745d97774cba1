//! `POST /v2/customers/{userId}/changeLabels` and `GET /v2/customers/{userId}/labels`.

use super::error::{V2Error, V2ErrorBody, V2Warning};
use super::{customer_id_json, parse_customer_id, V2Caller, V2Json};
use crate::body::parse_query;
use crate::gate::{respond, stored_json, RequestScope};
use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use tagd_core::labels::{LabelChange, LabelWarning, MAX_LABEL_CHANGES};
use tagd_core::timefmt::{format_date_ending, now_unix, parse_date_end};
use tagd_core::LabelName;
use utoipa::{IntoParams, ToSchema};
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
    /// On `add` entries: the last day (`YYYY-MM-DD`, UTC) the label counts; it expires at the
    /// end of that day. Ignored on `remove` entries.
    #[serde(rename = "expiryDate", default)]
    #[schema(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    expiry_date: Option<String>,
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

/// The names of `entries`, blank ones dropped, and, when `expiry` is given (the `add` list),
/// the expiry each entry asked for by name, which must not be over. A malformed `expiryDate`
/// refuses the request in either list (a `remove` entry's is otherwise ignored).
fn parse_names(
    entries: Option<Vec<LabelEntry>>,
    list: &str,
    mut expiry: Option<&mut HashMap<String, i64>>,
) -> Result<Vec<LabelName>, V2Error> {
    let mut names = Vec::new();
    let now = now_unix();
    for (i, entry) in entries.unwrap_or_default().into_iter().enumerate() {
        let parsed = LabelName::parse_optional(&entry.label_name)
            .map_err(|e| V2Error::BadRequest(format!("{list}[{i}].labelName: {e}")))?;
        let end = entry
            .expiry_date
            .as_deref()
            .map(|date| {
                parse_date_end(date).ok_or_else(|| {
                    V2Error::BadRequest(format!(
                        "{list}[{i}].expiryDate: must be YYYY-MM-DD, not `{date}`"
                    ))
                })
            })
            .transpose()?;
        if let (Some(name), Some(end), Some(expiry)) = (&parsed, end, expiry.as_deref_mut()) {
            if end <= now {
                return Err(V2Error::BadRequest(format!(
                    "{list}[{i}].expiryDate: that day is over"
                )));
            }
            expiry.insert(name.as_str().to_owned(), end);
        }
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
    let mut expiry = HashMap::new();
    let change = LabelChange {
        add: parse_names(body.add, "add", Some(&mut expiry))?,
        remove: parse_names(body.remove, "remove", None)?,
        expiry,
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
    /// True for a label removed or expired (shown only with `includeInactive=true`).
    deleted: bool,
    /// The last day the label counts (`YYYY-MM-DD`, UTC), or null when it does not expire.
    #[serde(rename = "expiryDate")]
    expiry_date: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LabelsQuery {
    /// `true` also lists the labels the customer carried once (removed or expired), with
    /// `deleted: true`.
    #[serde(rename = "includeInactive", default)]
    #[param(
        rename = "includeInactive",
        pattern = "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$"
    )]
    include_inactive: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CustomerLabels {
    data: Vec<CustomerLabel>,
    warnings: Vec<V2Warning>,
    errors: Vec<V2Warning>,
}

/// The labels a customer carries, oldest first.
#[utoipa::path(get, path = "/v2/customers/{userId}/labels", tag = "v2",
    params(("userId" = u64, Path, description = "The customer"), LabelsQuery),
    responses(
        (status = 200, description = "The customer's labels", body = CustomerLabels),
        (status = 400, description = "Non-numeric userId", body = V2ErrorBody),
        (status = 404, description = "8015: customer not found", body = V2ErrorBody)))]
pub(super) async fn customer_labels(
    caller: V2Caller,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<CustomerLabels>, V2Error> {
    let (_, user_id) = parse_customer_id(&user_id)?;
    let query: LabelsQuery = parse_query(query.as_deref())?;
    let include_inactive = match query.include_inactive.as_deref() {
        None => false,
        Some(flag) if flag.eq_ignore_ascii_case("true") => true,
        Some(flag) if flag.eq_ignore_ascii_case("false") => false,
        Some(other) => {
            return Err(V2Error::BadRequest(format!(
                "includeInactive must be true or false, not `{other}`"
            )))
        }
    };
    let labels = if include_inactive {
        state
            .store
            .list_user_labels_ever(caller.org, &user_id)
            .await?
    } else {
        state.index.list_user_labels(caller.org, &user_id).await?
    };
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
            expiry_date: a.expires_at.map(format_date_ending),
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
