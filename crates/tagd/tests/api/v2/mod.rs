//! The v2 customer-labels dialect over HTTP (API.md §3), on both backends.

mod endpoints;
mod expiry;
mod interop;
mod prefix_and_cap;
mod rules;
mod seed;

use crate::helpers::TestApp;
use base64::Engine;
use serde_json::{json, Value};

/// One organization as a v2 client sees it: a Basic credential's header.
pub struct V2Org {
    pub corp_id: String,
    pub authorization: String,
    address: String,
    client: reqwest::Client,
}

/// A v2 answer: status, raw body text (for byte-exact checks) and the body as JSON.
pub struct V2Answer {
    pub status: u16,
    pub text: String,
    pub json: Value,
}

async fn answer(response: reqwest::Response) -> V2Answer {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    V2Answer { status, text, json }
}

pub fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

impl V2Org {
    /// A new organization with the credential `user` / `password`.
    pub async fn create(app: &TestApp, name: &str, user: &str, password: &str) -> V2Org {
        let corp_id = app.create_org(name).await;
        let path = format!("/admin/v1/orgs/{corp_id}/basic-credentials");
        let response = app
            .admin_post(&path, &json!({"username": user, "password": password}))
            .await;
        assert_eq!(response.status(), 201);
        V2Org {
            corp_id,
            authorization: basic(user, password),
            address: app.address.clone(),
            client: app.client.clone(),
        }
    }

    /// Registers customers through the admin API.
    pub async fn customers(&self, app: &TestApp, ids: &[&str]) {
        for id in ids {
            let path = format!("/admin/v1/orgs/{}/users", self.corp_id);
            let response = app.admin_post(&path, &json!({"user_id": id})).await;
            assert_eq!(response.status(), 201);
        }
    }

    /// Creates labels through `POST /v2/organization/labels`.
    pub async fn labels(&self, names: &[&str]) {
        let labels: Vec<Value> = names.iter().map(|n| json!({"name": n})).collect();
        let created = self
            .post("/v2/organization/labels", &json!({"orgLabels": labels}))
            .await;
        assert_eq!(created.status, 200, "{}", created.text);
        assert_eq!(created.json["warnings"], json!([]));
    }

    pub async fn post(&self, path: &str, body: &Value) -> V2Answer {
        let response = self
            .client
            .post(format!("{}{}", self.address, path))
            .header("Authorization", &self.authorization)
            .json(body)
            .send()
            .await
            .expect("sent");
        answer(response).await
    }

    pub async fn get(&self, path: &str) -> V2Answer {
        let response = self
            .client
            .get(format!("{}{}", self.address, path))
            .header("Authorization", &self.authorization)
            .send()
            .await
            .expect("sent");
        answer(response).await
    }

    /// changeLabels with lists of names.
    pub async fn change(&self, user_id: &str, add: &[&str], remove: &[&str]) -> V2Answer {
        let entries = |names: &[&str]| {
            names
                .iter()
                .map(|n| json!({"labelName": n}))
                .collect::<Vec<_>>()
        };
        let body = json!({"add": entries(add), "remove": entries(remove)});
        self.post(&format!("/v2/customers/{user_id}/changeLabels"), &body)
            .await
    }

    /// The names of the labels a customer carries.
    pub async fn carried(&self, user_id: &str) -> Vec<String> {
        let listed = self.get(&format!("/v2/customers/{user_id}/labels")).await;
        assert_eq!(listed.status, 200, "{}", listed.text);
        listed.json["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|l| l["labelName"].as_str().expect("labelName").to_owned())
            .collect()
    }
}
