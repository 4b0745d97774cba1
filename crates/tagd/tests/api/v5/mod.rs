//! The v5 dialect over HTTP (API.md §2, §4, §5): the seed's curl examples replayed, every error
//! code the dialect gives, tenancy, concurrency and the OpenAPI document.

mod auth;
mod batch;
mod concurrency;
mod conflicts;
mod expiry;
mod history;
mod nats;
mod openapi;
mod pagination;
mod saved_segments;
mod seed;
mod segment_events;
mod segments;
mod tags;
mod tenancy;
mod validation;
mod values;
mod webhooks;

use crate::helpers::{TestApp, V5Answer, V5Org};
use serde_json::{json, Value};

pub const TOKEN: &str = "/api/v5/auth/token";
pub const USER_CREATE: &str = "/api/v5/user/create";
pub const GROUP_CREATE: &str = "/api/v5/entity/tags/group/create";
pub const GROUP_LIST: &str = "/api/v5/entity/tags/group/list";
pub const GROUP_UPDATE: &str = "/api/v5/entity/tags/group/update";
pub const GROUP_DEACTIVATE: &str = "/api/v5/entity/tags/group/deactivate";
pub const GROUP_ACTIVATE: &str = "/api/v5/entity/tags/group/activate";
pub const TAG_ASSIGN: &str = "/api/v5/entity/user/tags/assign";
pub const TAG_LIST: &str = "/api/v5/entity/user/tags/list";
pub const TAG_REMOVE: &str = "/api/v5/entity/user/tags/remove";

/// Checks a success answer (HTTP 200, code 0, msg `success.`, exactly these three keys) and
/// returns its `data`.
pub fn success(answer: &V5Answer) -> &Value {
    let (status, body) = answer;
    assert_eq!(*status, 200, "{body}");
    assert_eq!(body["code"], json!(0), "{body}");
    assert_eq!(body["msg"], json!("success."), "{body}");
    let keys: Vec<&str> = body
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 3, "only code, msg and data: {body}");
    &body["data"]
}

/// Checks a refusal: the HTTP status, the v5 code, `data` null and a message in words.
/// Returns the message.
pub fn refused(answer: &V5Answer, status: u16, code: u32) -> String {
    let (got_status, body) = answer;
    assert_eq!(
        (*got_status, &body["code"]),
        (status, &json!(code)),
        "expected {status}/{code}, got {body}"
    );
    assert!(body.get("data").is_some_and(Value::is_null), "{body}");
    let msg = body["msg"].as_str().expect("msg is a string").to_owned();
    assert!(!msg.is_empty());
    msg
}

/// 40001 whose message names `field`.
pub fn refused_naming(answer: &V5Answer, field: &str) {
    let msg = refused(answer, 400, 40001);
    assert!(msg.contains(field), "the message names `{field}`: {msg}");
}

/// `YYYY-MM-DD HH:MM:SS`, i.e. `^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$`.
pub fn is_seed_time(value: &Value) -> bool {
    let Some(text) = value.as_str() else {
        return false;
    };
    text.len() == 19
        && text.char_indices().all(|(i, c)| match i {
            4 | 7 => c == '-',
            10 => c == ' ',
            13 | 16 => c == ':',
            _ => c.is_ascii_digit(),
        })
}

/// A 32-character lowercase hex id.
pub fn is_hex_id(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.len() == 32 && s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')))
}

/// A random id that names nothing.
pub fn unknown_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The create body for a group of the org.
pub fn group_body(org: &V5Org, name: &str, variable_name: &str, attribute: &str) -> Value {
    json!({
        "name": name, "variable_name": variable_name, "description": "a group",
        "attribute": attribute, "category": "cat", "corp_id": org.corp_id,
    })
}

/// The update body that keeps a listed group as it is (`row` from the group list).
pub fn update_body(org: &V5Org, row: &Value) -> Value {
    json!({
        "entity_id": row["entity_id"], "corp_id": org.corp_id, "name": row["name"],
        "variable_name": row["variable_name"], "description": row["description"],
        "attribute": row["attribute"], "category": row["category"],
    })
}

/// Everything the org can see of `categories` and `users`, to compare before and after.
pub async fn snapshot(org: &V5Org, categories: &[&str], users: &[&str]) -> Value {
    let mut all = Vec::new();
    for category in categories {
        all.push(org.groups(category).await);
    }
    for user in users {
        all.push(org.user_tags(user).await);
    }
    Value::Array(all)
}

/// The one row of `entity_id` in the org's group list of `category`.
pub async fn group_row(org: &V5Org, category: &str, entity_id: &str) -> Value {
    let data = org.groups(category).await;
    data["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|row| row["entity_id"] == entity_id)
        .cloned()
        .expect("the group is listed")
}

/// The store's id of the org, for direct store checks.
pub async fn org_id(app: &TestApp, org: &V5Org) -> tagd_core::OrgId {
    let corp_id = tagd_core::CorpId::parse("corp_id", &org.corp_id).expect("32 hex");
    app.store
        .find_org_by_corp_id(&corp_id)
        .await
        .expect("query")
        .expect("the org exists")
        .id
}

/// The ids of the organization's events in the pull feed, in version order (up to 1,000).
pub async fn feed_ids(org: &V5Org) -> Vec<Value> {
    let path = format!(
        "/api/v5/changes?corp_id={}&after_version=0&limit=1000",
        org.corp_id
    );
    let feed = success(&org.get(&path).await).clone();
    feed["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|e| e["id"].clone())
        .collect()
}

/// Waits until the segment announcer follows `count` saved segments of the organization
/// (it has recorded their first members), or panics after 20 s.
pub async fn wait_for_announcer(app: &TestApp, org: &V5Org, count: usize) {
    let corp_id = tagd_core::CorpId::parse("corp_id", &org.corp_id).expect("a corp_id");
    let found = app.store.find_org_by_corp_id(&corp_id).await.expect("read");
    let org_id = found.expect("the organization").id;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let followed = app.store.announced_segments(org_id).await.expect("read");
        if followed.len() >= count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the announcer follows {} of {count} segments",
            followed.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
