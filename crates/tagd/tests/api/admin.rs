//! The admin API (API.md §6).

use crate::helpers::TestApp;
use serde_json::{json, Value};
use tagd_core::secrets::sha256_hex;
use tagd_core::{CorpId, ExternalId, UserId};

crate::on_both_backends!(
    creating_an_organization_answers_201_with_a_32_hex_corp_id,
    an_app_secret_is_shown_once_and_stored_only_as_its_hash,
    a_basic_credential_password_is_stored_as_argon2_and_its_name_is_unique,
    creating_the_same_user_twice_is_idempotent,
    a_wrong_or_missing_admin_token_gets_401_and_creates_nothing,
    an_unknown_or_malformed_corp_id_is_refused_with_a_json_error,
    a_malformed_body_gets_400_with_a_json_error,
);

async fn creating_an_organization_answers_201_with_a_32_hex_corp_id(app: &TestApp) {
    let response = app
        .admin_post("/admin/v1/orgs", &json!({"name": "Acme"}))
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["name"], "Acme");
    let corp_id = body["corp_id"].as_str().expect("corp_id");
    let parsed = CorpId::parse("corp_id", corp_id).expect("32 hex");
    assert!(app
        .store
        .find_org_by_corp_id(&parsed)
        .await
        .expect("query")
        .is_some());
}

async fn an_app_secret_is_shown_once_and_stored_only_as_its_hash(app: &TestApp) {
    let corp_id = app.create_org("Acme").await;
    let response = app
        .admin_post(
            &format!("/admin/v1/orgs/{corp_id}/apps"),
            &json!({"name": "crm"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("JSON");
    let secret = body["app_secret"].as_str().expect("secret");
    let app_id =
        ExternalId::parse("app_id", body["app_id"].as_str().expect("app_id")).expect("hex");
    let stored = app
        .store
        .find_app(&app_id)
        .await
        .expect("query")
        .expect("app stored");
    assert_eq!(stored.secret_hash, sha256_hex(secret));
    assert_ne!(stored.secret_hash, secret);
}

async fn a_basic_credential_password_is_stored_as_argon2_and_its_name_is_unique(app: &TestApp) {
    let corp_id = app.create_org("Acme").await;
    let path = format!("/admin/v1/orgs/{corp_id}/basic-credentials");
    let body = json!({"username": "sant.p_123", "password": "s3cret-pass"});
    let response = app.admin_post(&path, &body).await;
    assert_eq!(response.status(), 201);
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(
        answer,
        json!({"username": "sant.p_123", "corp_id": corp_id})
    );
    let stored = app
        .store
        .find_basic_credential("sant.p_123")
        .await
        .expect("query")
        .expect("stored");
    assert!(stored.password_hash.starts_with("$argon2id$"));
    assert!(!stored.password_hash.contains("s3cret-pass"));
    let again = app.admin_post(&path, &body).await;
    assert_eq!(again.status(), 409);
    let colon = app
        .admin_post(&path, &json!({"username": "a:b", "password": "x"}))
        .await;
    assert_eq!(colon.status(), 400);
}

async fn creating_the_same_user_twice_is_idempotent(app: &TestApp) {
    let corp_id = app.create_org("Acme").await;
    let path = format!("/admin/v1/orgs/{corp_id}/users");
    let first = app
        .admin_post(&path, &json!({"user_id": "564663098"}))
        .await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.expect("JSON");
    assert_eq!(
        first,
        json!({"user_id": "564663098", "corp_id": corp_id, "created": true})
    );
    let second = app
        .admin_post(&path, &json!({"user_id": "564663098"}))
        .await;
    assert_eq!(second.status(), 201);
    let second: Value = second.json().await.expect("JSON");
    assert_eq!(second["created"], false);
    assert!(user_is_stored(app, &corp_id, "564663098").await);
    let bad = app
        .admin_post(&path, &json!({"user_id": "not valid!"}))
        .await;
    assert_eq!(bad.status(), 400);
}

async fn a_wrong_or_missing_admin_token_gets_401_and_creates_nothing(app: &TestApp) {
    let corp_id = app.create_org("Acme").await;
    let routes = [
        ("/admin/v1/orgs".to_owned(), json!({"name": "Evil"})),
        (
            format!("/admin/v1/orgs/{corp_id}/apps"),
            json!({"name": "evil"}),
        ),
        (
            format!("/admin/v1/orgs/{corp_id}/basic-credentials"),
            json!({"username": "evil", "password": "x"}),
        ),
        (
            format!("/admin/v1/orgs/{corp_id}/users"),
            json!({"user_id": "evil"}),
        ),
    ];
    for (path, body) in &routes {
        for auth in [
            None,
            Some("Bearer wrong-token"),
            Some("Basic dGVzdDp0ZXN0"),
            Some("Bearer "),
        ] {
            let mut request = app.client.post(app.url(path)).json(body);
            if let Some(value) = auth {
                request = request.header("Authorization", value);
            }
            let response = request.send().await.expect("sent");
            assert_eq!(response.status(), 401, "{path} with {auth:?}");
            assert!(response.headers().contains_key("www-authenticate"));
            let body: Value = response.json().await.expect("JSON error");
            assert_eq!(body["error"]["code"], "unauthorized");
        }
    }
    assert!(app
        .store
        .find_basic_credential("evil")
        .await
        .expect("query")
        .is_none());
    assert!(!user_is_stored(app, &corp_id, "evil").await);
}

async fn an_unknown_or_malformed_corp_id_is_refused_with_a_json_error(app: &TestApp) {
    let unknown = ExternalId::generate();
    let response = app
        .admin_post(
            &format!("/admin/v1/orgs/{unknown}/users"),
            &json!({"user_id": "u1"}),
        )
        .await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "not_found");
    let response = app
        .admin_post("/admin/v1/orgs/not-hex/users", &json!({"user_id": "u1"}))
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "invalid_parameter");
}

async fn a_malformed_body_gets_400_with_a_json_error(app: &TestApp) {
    let response = app
        .client
        .post(app.url("/admin/v1/orgs"))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "invalid_parameter");
    let empty_name = app
        .admin_post("/admin/v1/orgs", &json!({"name": "  "}))
        .await;
    assert_eq!(empty_name.status(), 400);
}

/// Whether the store holds `user_id` in the org `corp_id`: what the admin API really wrote.
async fn user_is_stored(app: &TestApp, corp_id: &str, user_id: &str) -> bool {
    let corp_id = CorpId::parse("corp_id", corp_id).expect("hex");
    let org = app
        .store
        .find_org_by_corp_id(&corp_id)
        .await
        .expect("query")
        .expect("org");
    let user = UserId::parse(user_id).expect("valid");
    app.store
        .find_user(org.id, &user)
        .await
        .expect("query")
        .is_some()
}
