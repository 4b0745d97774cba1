//! Hardening (API.md §5a): idempotency keys, rate limits, limits, malformed input.

mod idempotency;
mod limits;
mod malformed;
mod throttle;

use crate::helpers::{TestApp, V5Org};
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

/// An answer with its raw text, for byte-for-byte comparisons.
pub struct Raw {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Raw {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

/// POSTs `body` (sent exactly as given) with the org's v5 credentials and optional key.
pub async fn v5_post(app: &TestApp, org: &V5Org, path: &str, body: &str, key: Option<&str>) -> Raw {
    let mut request = app
        .client
        .post(app.url(path))
        .bearer_auth(&org.token)
        .header("X-APP-ID", &org.app_id)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("sent");
    Raw {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.expect("body"),
    }
}

/// An organization with user `u1` and a `number` group; returns the group id.
pub async fn v5_world(app: &TestApp, name: &str) -> (V5Org, String) {
    let org = app.v5_org(name).await;
    org.create_user("u1").await;
    let body = json!({"name": "Spend", "variable_name": "spend", "description": "",
        "attribute": "number", "category": "c", "corp_id": org.corp_id});
    let (status, created) = org.post("/api/v5/entity/tags/group/create", &body).await;
    assert_eq!(status, 200, "{created}");
    let group = created["data"]["tags_group_id"]
        .as_str()
        .expect("id")
        .to_owned();
    (org, group)
}

pub fn assign_body(org: &V5Org, group: &str, user: &str, value: &str) -> String {
    json!({"corp_id": org.corp_id, "tags_group_id": group, "user_id": user, "value": value})
        .to_string()
}

/// The user's tags as v5 lists them.
pub async fn tags_of(org: &V5Org, user: &str) -> Value {
    let (_, listed) = org
        .get(&format!(
            "/api/v5/entity/user/tags/list?corp_id={}&user_id={user}",
            org.corp_id
        ))
        .await;
    listed["data"].clone()
}
