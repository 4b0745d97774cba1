//! Change-log entries as events (API.md §12): `{id, type, corp_id, version, time, data}`. The
//! change feed answers them; webhooks and NATS will send the same.

use super::saved_segments::SegmentRow;
use super::views::GroupRow;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tagd_core::history::FeedPage;
use tagd_core::log::{LogEntry, Subject, TagChange};
use tagd_core::timefmt::format_unix;
use tagd_core::{CorpId, TagValue};
use utoipa::ToSchema;

/// One event.
#[derive(Serialize, ToSchema)]
pub struct Event {
    /// 32 hex characters, the same every time this entry is delivered.
    id: String,
    /// `tag.assigned`, `tag.removed`, `tag.expired`, `group.created`, `group.updated`,
    /// `group.activated`, `group.deactivated`, `label.created`, `user.created`,
    /// `segment.saved`, `segment.deleted`, `segment.entered`, `segment.exited`.
    #[serde(rename = "type")]
    kind: &'static str,
    corp_id: String,
    version: i64,
    /// When the change was made (`YYYY-MM-DD HH:MM:SS`, UTC).
    time: String,
    /// What changed, as the API shows it (a tag event: the assignment row with `old_value`).
    #[schema(value_type = Object)]
    data: Value,
}

impl Event {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The event's type (`tag.assigned`, …).
    pub fn kind(&self) -> &'static str {
        self.kind
    }
}

/// An event's id: derived from the organization's `corp_id` (random, so unique across
/// deployments sharing one NATS) and the version, so a repeated delivery of the same entry
/// carries the same id, and no two entries share one.
pub fn event_id(corp_id: &CorpId, version: i64) -> String {
    let digest = Sha256::digest(format!("tagd-event:{corp_id}:{version}"));
    hex::encode(&digest[..16])
}

/// A tag change as an event's data: the assignment row as `user/tags/list` shows it, after
/// the change (values null after a removal or an expiry), with the value before it.
#[derive(Serialize)]
struct TagData {
    entity_id: String,
    attribute: &'static str,
    corp_id: String,
    ctime: String,
    define_value: Option<bool>,
    executor_id: String,
    is_deleted: bool,
    mtime: String,
    source: &'static str,
    tags_group_id: String,
    user_id: String,
    version: i64,
    number_value: Option<f64>,
    string_value: Option<String>,
    variable_name: String,
    expires_at: Option<String>,
    /// The live value before the change, typed as the others.
    old_value: Value,
}

/// An optional value as typed JSON (null when there is none).
pub fn typed_json(value: Option<&TagValue>) -> Value {
    value.map_or(Value::Null, TagValue::to_json)
}

fn tag_data(tag: &TagChange, corp_id: &CorpId, page: &FeedPage) -> Value {
    let group = page.groups.get(&tag.group_ref);
    let attribute = group.map(|g| g.attribute);
    let value = tag.value.as_ref();
    let old = match (attribute, &tag.old_value) {
        (Some(attribute), Some(text)) => Some(TagValue::from_text(attribute, text)),
        _ => None,
    };
    let data = TagData {
        entity_id: tag.entity_id.to_string(),
        attribute: attribute.map_or("", |a| a.as_str()),
        corp_id: corp_id.to_string(),
        ctime: format_unix(tag.ctime),
        define_value: value.and_then(TagValue::define_value),
        executor_id: tag.executor.name.clone(),
        is_deleted: value.is_none(),
        mtime: format_unix(tag.at),
        source: tag.source.as_str(),
        tags_group_id: group.map_or_else(String::new, |g| g.entity_id.to_string()),
        user_id: page
            .users
            .get(&tag.user_ref)
            .map_or_else(String::new, ToString::to_string),
        version: tag.version,
        number_value: value.and_then(TagValue::number_value),
        string_value: value.and_then(TagValue::string_value).map(str::to_owned),
        variable_name: group.map_or_else(String::new, |g| g.variable_name.to_string()),
        expires_at: tag.expires_at.map(format_unix),
        old_value: typed_json(old.as_ref()),
    };
    serde_json::to_value(data).unwrap_or(Value::Null)
}

/// The event of one entry of `page`.
pub fn event(corp_id: &CorpId, entry: &LogEntry, page: &FeedPage) -> Event {
    let (time, data) = match &entry.change.subject {
        Subject::Tag(tag) => (tag.at, tag_data(tag, corp_id, page)),
        Subject::Group(group) => {
            let row = GroupRow::new(group.as_ref().clone(), corp_id);
            (
                group.mtime,
                serde_json::to_value(row).unwrap_or(Value::Null),
            )
        }
        Subject::User { user_id, ctime, .. } => (
            *ctime,
            serde_json::json!({"user_id": user_id.as_str(), "ctime": format_unix(*ctime)}),
        ),
        Subject::Membership(moved) => (
            moved.at,
            serde_json::json!({
                "segment_id": moved.segment.entity_id.as_str(),
                "segment_name": moved.segment.name,
                "user_id": moved.user_id.as_str(),
            }),
        ),
        Subject::Segment(saved) => {
            let row = SegmentRow::new(saved);
            (
                saved.mtime,
                serde_json::to_value(row).unwrap_or(Value::Null),
            )
        }
    };
    Event {
        id: event_id(corp_id, entry.version),
        kind: entry.change.kind.as_str(),
        corp_id: corp_id.to_string(),
        version: entry.version,
        time: format_unix(time),
        data,
    }
}
