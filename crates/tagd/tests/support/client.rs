//! The HTTP clients of the tests: the admin API ([`AdminClient`]) and one organization as a v5
//! client sees it ([`V5Org`]), for any server: in-process or a `tagd serve` process.

use reqwest::{Client, Response};
use serde_json::Value;

/// The admin API of one server.
#[derive(Clone)]
pub struct AdminClient {
    client: Client,
    address: String,
    token: String,
}

impl AdminClient {
    pub fn new(client: Client, address: &str, token: &str) -> Self {
        AdminClient {
            client,
            address: address.to_owned(),
            token: token.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// POST with the admin token.
    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// GET with the admin token; its JSON body.
    pub async fn get_json(&self, path: &str) -> Value {
        self.client
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request sent")
            .json()
            .await
            .expect("JSON body")
    }

    /// POST with the admin token that must answer 201; its JSON body.
    pub async fn created(&self, path: &str, body: &Value) -> Value {
        let response = self.post(path, body).await;
        assert_eq!(response.status(), 201, "{path}");
        response.json().await.expect("JSON body")
    }

    /// Creates an organization; its corp_id.
    pub async fn create_org(&self, name: &str) -> String {
        let body = self
            .created("/admin/v1/orgs", &serde_json::json!({"name": name}))
            .await;
        body["corp_id"].as_str().expect("corp_id").to_owned()
    }

    /// Creates an app of `corp_id`: (app_id, app_secret).
    pub async fn create_app(&self, corp_id: &str, name: &str) -> (String, String) {
        let path = format!("/admin/v1/orgs/{corp_id}/apps");
        let body = self
            .created(&path, &serde_json::json!({"name": name}))
            .await;
        (
            body["app_id"].as_str().expect("app_id").to_owned(),
            body["app_secret"].as_str().expect("app_secret").to_owned(),
        )
    }

    /// An organization with one app and a token from `POST /api/v5/auth/token`.
    pub async fn v5_org(&self, name: &str) -> V5Org {
        let corp_id = self.create_org(name).await;
        let (app_id, app_secret) = self.create_app(&corp_id, &format!("{name} app")).await;
        let response = self
            .client
            .post(self.url("/api/v5/auth/token"))
            .json(&serde_json::json!({"app_id": app_id, "app_secret": app_secret}))
            .send()
            .await
            .expect("request sent");
        let (status, body) = v5_answer(response).await;
        assert_eq!(status, 200, "{body}");
        let token = body["data"]["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
        V5Org {
            corp_id,
            app_id,
            app_secret,
            token,
            client: self.client.clone(),
            address: self.address.clone(),
        }
    }
}

/// A v5 answer: the HTTP status and the JSON body (a JSON string holding the text when the
/// body is not JSON).
pub type V5Answer = (u16, Value);

pub async fn v5_answer(response: Response) -> V5Answer {
    let status = response.status().as_u16();
    let text = response.text().await.expect("response body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// One organization as a v5 client sees it: its corp_id, one app and that app's token. Every
/// request carries `Authorization: Bearer <token>` and `X-APP-ID: <app_id>`; `with_auth` makes
/// a copy that sends other ones (to probe tenancy).
#[derive(Clone)]
pub struct V5Org {
    pub corp_id: String,
    pub app_id: String,
    pub app_secret: String,
    pub token: String,
    client: Client,
    address: String,
}

impl V5Org {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A copy that sends `token` and `app_id` instead of its own.
    pub fn with_auth(&self, token: &str, app_id: &str) -> V5Org {
        V5Org {
            token: token.to_owned(),
            app_id: app_id.to_owned(),
            ..self.clone()
        }
    }

    /// A copy that talks to another server (over the same store).
    pub fn at(&self, address: &str) -> V5Org {
        V5Org {
            address: address.to_owned(),
            ..self.clone()
        }
    }

    /// POST a JSON body with this org's token and app id.
    pub async fn post(&self, path: &str, body: &Value) -> V5Answer {
        let response = self
            .client
            .post(self.url(path))
            .bearer_auth(&self.token)
            .header("X-APP-ID", &self.app_id)
            .json(body)
            .send()
            .await
            .expect("request sent");
        v5_answer(response).await
    }

    /// GET `path_with_query` with this org's token and app id.
    /// Every event of the organization's change log, in version order, from the pull feed.
    pub async fn whole_feed(&self) -> Vec<Value> {
        let mut events = Vec::new();
        let mut after = 0;
        loop {
            let path = format!(
                "/api/v5/changes?corp_id={}&after_version={after}&limit=1000",
                self.corp_id
            );
            let (status, body) = self.get(&path).await;
            assert_eq!(status, 200, "{body}");
            let rows = body["data"]["rows"].as_array().expect("rows").clone();
            let Some(last) = rows.last() else {
                return events;
            };
            after = last["version"].as_i64().expect("version");
            events.extend(rows);
        }
    }

    pub async fn get(&self, path_with_query: &str) -> V5Answer {
        let response = self
            .client
            .get(self.url(path_with_query))
            .bearer_auth(&self.token)
            .header("X-APP-ID", &self.app_id)
            .send()
            .await
            .expect("request sent");
        v5_answer(response).await
    }

    /// A request with exactly `headers` (no token or app id unless listed) and a raw body.
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> V5Answer {
        let mut request = self.client.request(method, self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        v5_answer(request.send().await.expect("request sent")).await
    }

    /// Registers `user_id` through `POST /api/v5/user/create`.
    pub async fn create_user(&self, user_id: &str) {
        let body = serde_json::json!({"corp_id": self.corp_id, "user_id": user_id});
        let (status, answer) = self.post("/api/v5/user/create", &body).await;
        assert_eq!(
            (status, &answer["code"]),
            (200, &Value::from(0)),
            "{answer}"
        );
    }

    /// Creates a tag group; its entity id.
    pub async fn create_group(
        &self,
        name: &str,
        variable_name: &str,
        attribute: &str,
        category: &str,
    ) -> String {
        let body = serde_json::json!({
            "name": name, "variable_name": variable_name, "description": "",
            "attribute": attribute, "category": category, "corp_id": self.corp_id,
        });
        let (status, answer) = self.post("/api/v5/entity/tags/group/create", &body).await;
        assert_eq!(status, 200, "{answer}");
        answer["data"]["tags_group_id"]
            .as_str()
            .expect("tags_group_id")
            .to_owned()
    }

    /// Assigns `value` of `group` to `user_id`; the assignment's entity id.
    pub async fn assign(&self, group: &str, user_id: &str, value: &str) -> String {
        let (status, answer) = self.assign_answer(group, user_id, value).await;
        assert_eq!(status, 200, "{answer}");
        answer["data"].as_str().expect("assignment id").to_owned()
    }

    pub async fn assign_answer(&self, group: &str, user_id: &str, value: &str) -> V5Answer {
        let body = serde_json::json!({
            "corp_id": self.corp_id, "tags_group_id": group, "user_id": user_id, "value": value,
        });
        self.post("/api/v5/entity/user/tags/assign", &body).await
    }

    /// The whole `data` of the group list of `category` (one page of up to 1,000 rows).
    pub async fn groups(&self, category: &str) -> Value {
        let (status, answer) = self
            .get(&format!(
                "/api/v5/entity/tags/group/list?corp_id={}&category={category}&start_index=0&step=1000",
                self.corp_id
            ))
            .await;
        assert_eq!(status, 200, "{answer}");
        answer["data"].clone()
    }

    /// The whole `data` of `user_id`'s tag list.
    pub async fn user_tags(&self, user_id: &str) -> Value {
        let (status, answer) = self
            .get(&format!(
                "/api/v5/entity/user/tags/list?corp_id={}&user_id={user_id}",
                self.corp_id
            ))
            .await;
        assert_eq!(status, 200, "{answer}");
        answer["data"].clone()
    }
}
