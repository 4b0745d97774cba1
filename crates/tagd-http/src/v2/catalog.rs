//! The organization's label catalog: `POST` and `GET /v2/organization/labels` (API.md §3.3,
//! §3.4). A label is a `define` tag group in category `label`.

use super::error::{V2Error, V2ErrorBody, V2Warning};
use super::{V2Caller, V2Json};
use crate::gate::{respond, stored_json, RequestScope};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use tagd_core::labels::LabelWarning;
use tagd_core::TagGroup;
use tagd_core::{
    Attribute, Category, Description, ExternalId, GroupName, TagGroupFields, VariableName,
};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Longest v2 label description, in characters.
pub const MAX_LABEL_DESCRIPTION_CHARS: usize = 255;
/// Most labels one request may create.
pub const MAX_LABELS_PER_REQUEST: usize = 1000;
/// The category v2 labels are created in.
pub const LABEL_CATEGORY: &str = "label";

#[derive(Deserialize, ToSchema)]
pub struct NewLabel {
    /// 1–255 characters, unique in the organization.
    #[schema(value_type = crate::schemas::Name, inline)]
    name: String,
    /// At most 255 characters.
    #[serde(default)]
    #[schema(max_length = 255, pattern = r"^[^\x00\u202A-\u202E\u2066-\u2069]*$")]
    description: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct CreateLabels {
    #[serde(rename = "orgLabels")]
    #[schema(min_items = 1, max_items = 1000)]
    org_labels: Vec<NewLabel>,
}

#[derive(Serialize, ToSchema)]
pub struct LabelsCreated {
    /// `labelId` of the last label created; null when every name was already in use.
    entity: Option<i64>,
    warnings: Vec<V2Warning>,
}

fn label_fields(label: &NewLabel, index: usize) -> Result<TagGroupFields, V2Error> {
    let at = |e: tagd_core::Error| V2Error::BadRequest(format!("orgLabels[{index}]: {e}"));
    let name = GroupName::parse(&label.name).map_err(at)?;
    let description = Description::parse(
        "description",
        label.description.as_deref().unwrap_or_default(),
        MAX_LABEL_DESCRIPTION_CHARS,
    )
    .map_err(at)?;
    // Labels have no variable name of their own: one is generated from the random tail of
    // an id (its head is a timestamp, shared by labels made together), unique in practice.
    let variable = format!("label_{}", &ExternalId::generate().as_str()[16..]);
    Ok(TagGroupFields {
        name,
        variable_name: VariableName::parse(&variable).map_err(at)?,
        description,
        attribute: Attribute::Define,
        category: Category::parse(LABEL_CATEGORY).map_err(at)?,
        expiry: None,
    })
}

/// Create labels; a name already in use gets warning 33002 and the others are still created,
/// all in one transaction.
#[utoipa::path(post, path = "/v2/organization/labels", tag = "v2",
    request_body = CreateLabels,
    responses(
        (status = 200, description = "Created; warnings for names in use", body = LabelsCreated),
        (status = 400, description = "Malformed body or limits exceeded; nothing created", body = V2ErrorBody)))]
pub(super) async fn create_labels(
    caller: V2Caller,
    State(state): State<AppState>,
    scope: RequestScope,
    V2Json(body): V2Json<CreateLabels>,
) -> Result<Response, V2Error> {
    let count = body.org_labels.len();
    if count == 0 || count > MAX_LABELS_PER_REQUEST {
        return Err(V2Error::BadRequest(format!(
            "orgLabels must hold 1 to {MAX_LABELS_PER_REQUEST} labels, got {count}"
        )));
    }
    let batch = body
        .org_labels
        .iter()
        .enumerate()
        .map(|(i, label)| label_fields(label, i))
        .collect::<Result<Vec<_>, _>>()?;
    let names: Vec<String> = batch.iter().map(|f| f.name.to_string()).collect();
    let executor = caller.executor();
    let record = scope.recorder(move |created: &Vec<tagd_core::Result<TagGroup>>| {
        let warnings = created
            .iter()
            .zip(&names)
            .filter_map(|(group, name)| match group {
                Ok(_) => None,
                Err(tagd_core::Error::TagGroupLimit { .. }) => {
                    Some(LabelWarning::limit_reached(name).into())
                }
                Err(_) => Some(LabelWarning::exists(name).into()),
            })
            .collect();
        let entity = created
            .iter()
            .rev()
            .find_map(|g| g.as_ref().ok().map(|g| g.id));
        stored_json(StatusCode::OK, &LabelsCreated { entity, warnings })
    });
    let value = state
        .store
        .create_tag_groups(caller.org, &batch, &executor, &record)
        .await?;
    Ok(respond(&record, &value))
}

/// One label of the catalog.
#[derive(Serialize, ToSchema)]
pub struct CatalogLabel {
    /// The label's id (`labelId`).
    id: i64,
    #[serde(rename = "orgId")]
    org_id: i64,
    description: String,
    /// The app or credential that last changed it (0: the operator).
    #[serde(rename = "lastUpdatedBy")]
    last_updated_by: i64,
    #[schema(value_type = crate::schemas::Name, inline)]
    name: String,
    active: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Catalog {
    data: Vec<CatalogLabel>,
    warnings: Vec<V2Warning>,
    errors: Vec<V2Warning>,
}

/// Every label (`define` tag group) of the organization, active or not.
#[utoipa::path(get, path = "/v2/organization/labels", tag = "v2",
    responses(
        (status = 200, description = "The catalog", body = Catalog)))]
pub(super) async fn list_labels(
    caller: V2Caller,
    State(state): State<AppState>,
) -> Result<Json<Catalog>, V2Error> {
    let groups = state.store.list_label_groups(caller.org).await?;
    let data = groups
        .into_iter()
        .map(|g| CatalogLabel {
            id: g.id,
            org_id: g.org_id.0,
            description: g.description.to_string(),
            last_updated_by: g.updated_by.id,
            name: g.name.to_string(),
            active: g.is_active,
        })
        .collect();
    Ok(Json(Catalog {
        data,
        warnings: Vec::new(),
        errors: Vec::new(),
    }))
}

/// This file's endpoints, with their OpenAPI operations.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_labels, list_labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tagd_core::names::MAX_NAME_CHARS;

    #[test]
    fn a_label_longer_than_255_characters_is_refused() {
        let label = NewLabel {
            name: "x".repeat(MAX_NAME_CHARS + 1),
            description: None,
        };
        assert!(label_fields(&label, 0).is_err());
    }

    #[test]
    fn a_generated_variable_name_fits_the_pattern() {
        let label = NewLabel {
            name: "VIP".into(),
            description: Some("d".into()),
        };
        assert!(label_fields(&label, 0).is_ok());
    }
}
