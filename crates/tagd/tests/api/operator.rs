//! Operator operations of API.md §13 over HTTP: every secret can be taken back (rotation,
//! deletion, password change, disabling the organization) and is refused at once on the
//! server that took it, caches included; listings never show a secret; the cap on tag
//! groups is read and set per organization; nothing reaches another organization.

use crate::helpers::{TestApp, ADMIN_TOKEN};
use crate::on_both_backends;
use crate::v2::{basic, V2Org};
use reqwest::Method;
use serde_json::{json, Value};

on_both_backends!(
    rotating_an_app_secret_refuses_the_old_secret_and_its_tokens_at_once,
    deleting_an_app_stops_its_tokens_at_once,
    a_password_change_refuses_the_old_password_at_once_even_when_it_was_cached,
    deleting_a_credential_refuses_it_at_once,
    a_disabled_organization_refuses_every_credential_and_keeps_its_data,
    listings_show_organizations_apps_and_credentials_but_never_a_secret,
    one_organizations_corp_id_cannot_manage_anothers_apps_or_credentials,
    limits_are_read_and_set_per_organization_and_checked,
);

async fn admin(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = app
        .client
        .request(method, app.url(path))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn token_status(app: &TestApp, app_id: &str, secret: &str) -> u16 {
    app.client
        .post(app.url("/api/v5/auth/token"))
        .json(&json!({"app_id": app_id, "app_secret": secret}))
        .send()
        .await
        .expect("sent")
        .status()
        .as_u16()
}

async fn rotating_an_app_secret_refuses_the_old_secret_and_its_tokens_at_once(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await; // the token is now in this server's cache
    let path = format!(
        "/admin/v1/orgs/{}/apps/{}/rotate-secret",
        org.corp_id, org.app_id
    );
    let (status, rotated) = admin(app, Method::POST, &path, None).await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["app_secret"].as_str().expect("secret").to_owned();
    assert_ne!(new_secret, org.app_secret);
    assert_eq!(token_status(app, &org.app_id, &org.app_secret).await, 401);
    let (status, refused) = org
        .get(&format!(
            "/api/v5/entity/user/tags/list?corp_id={}&user_id=u1",
            org.corp_id
        ))
        .await;
    assert_eq!(
        (status, &refused["code"]),
        (401, &json!(40101)),
        "old token refused at once"
    );
    assert_eq!(token_status(app, &org.app_id, &new_secret).await, 200);
}

async fn deleting_an_app_stops_its_tokens_at_once(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    let path = format!("/admin/v1/orgs/{}/apps/{}", org.corp_id, org.app_id);
    let (status, deleted) = admin(app, Method::DELETE, &path, None).await;
    assert_eq!((status, &deleted["deleted"]), (200, &json!(org.app_id)));
    let (status, _) = org
        .get(&format!(
            "/api/v5/entity/user/tags/list?corp_id={}&user_id=u1",
            org.corp_id
        ))
        .await;
    assert_eq!(status, 401);
    assert_eq!(token_status(app, &org.app_id, &org.app_secret).await, 401);
    let (status, _) = admin(app, Method::DELETE, &path, None).await;
    assert_eq!(status, 404, "deleting again finds nothing");
}

async fn a_password_change_refuses_the_old_password_at_once_even_when_it_was_cached(app: &TestApp) {
    let v2 = V2Org::create(app, "Acme", "loyalty", "old-password").await;
    assert_eq!(
        v2.get("/v2/organization/labels").await.status,
        200,
        "now cached"
    );
    let path = format!(
        "/admin/v1/orgs/{}/basic-credentials/loyalty/password",
        v2.corp_id
    );
    let (status, changed) = admin(
        app,
        Method::POST,
        &path,
        Some(json!({"password": "new-password"})),
    )
    .await;
    assert_eq!((status, &changed["username"]), (200, &json!("loyalty")));
    assert_eq!(v2.get("/v2/organization/labels").await.status, 401);
    let fresh = app
        .client
        .get(app.url("/v2/organization/labels"))
        .header("Authorization", basic("loyalty", "new-password"))
        .send()
        .await
        .expect("sent");
    assert_eq!(fresh.status(), 200);
    let (status, _) = admin(app, Method::POST, &path, Some(json!({"password": ""}))).await;
    assert_eq!(status, 400, "an empty password is refused");
}

async fn deleting_a_credential_refuses_it_at_once(app: &TestApp) {
    let v2 = V2Org::create(app, "Acme", "loyalty", "pw").await;
    assert_eq!(v2.get("/v2/organization/labels").await.status, 200);
    let path = format!("/admin/v1/orgs/{}/basic-credentials/loyalty", v2.corp_id);
    let (status, _) = admin(app, Method::DELETE, &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(v2.get("/v2/organization/labels").await.status, 401);
    let (status, _) = admin(app, Method::DELETE, &path, None).await;
    assert_eq!(status, 404);
}

async fn a_disabled_organization_refuses_every_credential_and_keeps_its_data(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    org.create_user("42").await;
    let path = format!("/admin/v1/orgs/{}/basic-credentials", org.corp_id);
    let (status, _) = admin(
        app,
        Method::POST,
        &path,
        Some(json!({"username": "loyalty", "password": "pw"})),
    )
    .await;
    assert_eq!(status, 201);
    let v2_get = || {
        app.client
            .get(app.url("/v2/customers/42/labels"))
            .header("Authorization", basic("loyalty", "pw"))
            .send()
    };
    assert_eq!(v2_get().await.expect("sent").status(), 200);
    let other = app.v5_org("Other").await;

    let (status, disabled) = admin(
        app,
        Method::POST,
        &format!("/admin/v1/orgs/{}/disable", org.corp_id),
        None,
    )
    .await;
    assert_eq!((status, &disabled["disabled"]), (200, &json!(true)));
    let list = format!(
        "/api/v5/entity/user/tags/list?corp_id={}&user_id=42",
        org.corp_id
    );
    let (status, body) = org.get(&list).await;
    assert_eq!((status, &body["code"]), (401, &json!(40101)));
    assert_eq!(v2_get().await.expect("sent").status(), 401);
    assert_eq!(token_status(app, &org.app_id, &org.app_secret).await, 401);
    let (status, _) = other
        .get(&format!(
            "/api/v5/entity/user/tags/list?corp_id={}&user_id=42",
            other.corp_id
        ))
        .await;
    assert_eq!(
        status, 404,
        "another organization still answers (its 42 does not exist)"
    );

    let (status, _) = admin(
        app,
        Method::POST,
        &format!("/admin/v1/orgs/{}/enable", org.corp_id),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = org.get(&list).await;
    assert_eq!(
        (status, &body["code"]),
        (200, &json!(0)),
        "data kept: {body}"
    );
}

async fn listings_show_organizations_apps_and_credentials_but_never_a_secret(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let v2 = V2Org::create(app, "Loyal", "loyalty", "secret-password").await;
    let (status, orgs) = admin(app, Method::GET, "/admin/v1/orgs", None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = orgs
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert_eq!(names, vec!["Acme", "Loyal"]);
    let (status, apps) = admin(
        app,
        Method::GET,
        &format!("/admin/v1/orgs/{}/apps", org.corp_id),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(apps[0]["app_id"], json!(org.app_id));
    let (status, credentials) = admin(
        app,
        Method::GET,
        &format!("/admin/v1/orgs/{}/basic-credentials", v2.corp_id),
        None,
    )
    .await;
    assert_eq!(
        (status, &credentials[0]["username"]),
        (200, &json!("loyalty"))
    );
    let (status, detail) = admin(
        app,
        Method::GET,
        &format!("/admin/v1/orgs/{}", org.corp_id),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(detail["counts"]["apps"], 1);
    for listing in [&orgs, &apps, &credentials, &detail] {
        let text = listing.to_string();
        assert!(!text.contains(&org.app_secret), "{text}");
        assert!(
            !text.contains("secret-password") && !text.contains("argon2"),
            "{text}"
        );
        assert!(
            !text.contains("secret_hash") && !text.contains("password_hash"),
            "{text}"
        );
    }
    let unauthenticated = app.get("/admin/v1/orgs").await;
    assert_eq!(unauthenticated.status(), 401);
}

async fn one_organizations_corp_id_cannot_manage_anothers_apps_or_credentials(app: &TestApp) {
    let a = app.v5_org("A").await;
    let b = V2Org::create(app, "B", "b-user", "pw").await;
    let wrong_org_paths = [
        (
            Method::POST,
            format!(
                "/admin/v1/orgs/{}/apps/{}/rotate-secret",
                b.corp_id, a.app_id
            ),
        ),
        (
            Method::DELETE,
            format!("/admin/v1/orgs/{}/apps/{}", b.corp_id, a.app_id),
        ),
        (
            Method::DELETE,
            format!("/admin/v1/orgs/{}/basic-credentials/b-user", a.corp_id),
        ),
    ];
    for (method, path) in wrong_org_paths {
        let (status, body) = admin(app, method, &path, None).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (404, &json!("not_found")),
            "{path}"
        );
    }
    let (status, _) = admin(
        app,
        Method::POST,
        &format!(
            "/admin/v1/orgs/{}/basic-credentials/b-user/password",
            a.corp_id
        ),
        Some(json!({"password": "hijack"})),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        token_status(app, &a.app_id, &a.app_secret).await,
        200,
        "A's app intact"
    );
    assert_eq!(
        b.get("/v2/organization/labels").await.status,
        200,
        "B's credential intact"
    );
}

async fn limits_are_read_and_set_per_organization_and_checked(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let path = format!("/admin/v1/orgs/{}/limits", org.corp_id);
    let (status, limits) = admin(app, Method::GET, &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        limits,
        json!({"max_tag_groups": 10000, "is_default": true, "tag_groups": 0})
    );
    let (status, limits) = admin(app, Method::PUT, &path, Some(json!({"max_tag_groups": 1}))).await;
    assert_eq!(status, 200);
    assert_eq!(limits["max_tag_groups"], 1);
    for bad in [
        json!({"max_tag_groups": -1}),
        json!({"max_tag_groups": 1_000_001}),
    ] {
        let (status, _) = admin(app, Method::PUT, &path, Some(bad)).await;
        assert_eq!(status, 400);
    }
    let create = |name: &str| {
        json!({"name": name, "variable_name": name, "description": "", "attribute": "define",
               "category": "c", "corp_id": org.corp_id})
    };
    let (status, _) = org
        .post("/api/v5/entity/tags/group/create", &create("first"))
        .await;
    assert_eq!(status, 200);
    let (status, refused) = org
        .post("/api/v5/entity/tags/group/create", &create("second"))
        .await;
    assert_eq!(
        (status, &refused["code"]),
        (409, &json!(40905)),
        "{refused}"
    );
    let (status, limits) = admin(
        app,
        Method::PUT,
        &path,
        Some(json!({"max_tag_groups": null})),
    )
    .await;
    assert_eq!((status, &limits["is_default"]), (200, &json!(true)));
    let (status, _) = org
        .post("/api/v5/entity/tags/group/create", &create("second"))
        .await;
    assert_eq!(status, 200);
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(metrics.contains("\ntagd_tag_groups 2\n"), "{metrics}");
    assert!(metrics.contains("\ntagd_tag_groups_largest_org 2\n"));
    assert!(
        !metrics.contains(&org.corp_id),
        "/metrics answers anyone: it names no organization"
    );
}
