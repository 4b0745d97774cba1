//! The shapes v5 answers with, field for field as the seed shows them.

use serde::Serialize;
use tagd_core::expiry::ExpiryPolicy;
use tagd_core::timefmt::format_unix;
use tagd_core::{Assignment, CorpId, TagGroup};
use utoipa::ToSchema;

/// The success envelope as documented: code 0, msg `success.`, and the endpoint's data.
#[derive(Serialize, ToSchema)]
pub struct Envelope<T> {
    #[schema(example = 0)]
    pub code: u32,
    #[schema(example = "success.")]
    pub msg: String,
    pub data: T,
}

/// One tag group, as `tags/group/list` shows it.
#[derive(Serialize, ToSchema)]
pub struct GroupRow {
    entity_id: String,
    /// `define`, `number` or `string`.
    attribute: &'static str,
    /// Always a JSON object.
    #[schema(value_type = Object)]
    calculation_rules: serde_json::Value,
    category: String,
    corp_id: String,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    ctime: String,
    description: String,
    is_active: bool,
    is_auto: bool,
    is_deleted: bool,
    is_locked: bool,
    mtime: String,
    name: String,
    /// `custom` or `system`.
    #[serde(rename = "type")]
    group_type: String,
    variable_name: String,
    version: i64,
    /// The expiry its assignments take when they bring none of their own; left out when it
    /// has none, so a group without one shows exactly the seed's fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    expiry: Option<super::expiry::ExpiryView>,
}

impl GroupRow {
    pub fn new(group: TagGroup, corp_id: &CorpId) -> Self {
        GroupRow {
            entity_id: group.entity_id.to_string(),
            attribute: group.attribute.as_str(),
            calculation_rules: group.calculation_rules,
            category: group.category.to_string(),
            corp_id: corp_id.to_string(),
            ctime: format_unix(group.ctime),
            description: group.description.to_string(),
            is_active: group.is_active,
            is_auto: group.is_auto,
            is_deleted: group.is_deleted,
            is_locked: group.is_locked,
            mtime: format_unix(group.mtime),
            name: group.name.to_string(),
            group_type: group.group_type,
            variable_name: group.variable_name.to_string(),
            version: group.version,
            expiry: (group.expiry != ExpiryPolicy::None).then(|| group.expiry.into()),
        }
    }
}

/// One assignment, as `user/tags/list` shows it.
#[derive(Serialize, ToSchema)]
pub struct TagRow {
    entity_id: String,
    attribute: &'static str,
    corp_id: String,
    ctime: String,
    /// The value of a `define` tag; null for other attributes.
    define_value: Option<bool>,
    /// The app (`app_id`) or Basic credential (user name) that last wrote it.
    executor_id: String,
    is_deleted: bool,
    mtime: String,
    /// `open_api`, `v2_api` or `import`.
    source: &'static str,
    tags_group_id: String,
    user_id: String,
    version: i64,
    /// The value of a `number` tag; null for other attributes.
    number_value: Option<f64>,
    /// The value of a `string` tag; null for other attributes.
    string_value: Option<String>,
    variable_name: String,
    /// When the value expires (`YYYY-MM-DD HH:MM:SS`, UTC); null when it does not.
    expires_at: Option<String>,
}

impl TagRow {
    pub fn new(a: Assignment, corp_id: &CorpId) -> Self {
        TagRow {
            entity_id: a.entity_id.to_string(),
            attribute: a.value.attribute().as_str(),
            corp_id: corp_id.to_string(),
            ctime: format_unix(a.ctime),
            define_value: a.value.define_value(),
            executor_id: a.executor.name,
            is_deleted: a.is_deleted,
            mtime: format_unix(a.mtime),
            source: a.source.as_str(),
            tags_group_id: a.tags_group_id.to_string(),
            user_id: a.user_id.to_string(),
            version: a.version,
            number_value: a.value.number_value(),
            string_value: a.value.string_value().map(str::to_owned),
            variable_name: a.variable_name.to_string(),
            expires_at: super::expiry::shown(a.expires_at),
        }
    }
}

/// A list answer: the count of every matching row and the rows of this page.
#[derive(Serialize, ToSchema)]
pub struct Rows<T> {
    pub total: i64,
    pub rows: Vec<T>,
}
