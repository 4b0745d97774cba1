//! 40101 (bad token or app credentials) and 40301 (X-APP-ID or corp_id not the token's).

use super::*;
use crate::helpers::{config_with_token_ttl, TestApp};
use reqwest::Method;
use tagd_core::secrets::sha256_hex;
use tagd_core::timefmt::now_unix;
use tagd_core::ExternalId;

crate::on_both_backends!(
    a_missing_malformed_or_unknown_token_answers_40101_the_same_way_and_changes_nothing,
    an_expired_token_answers_40101,
    a_token_issued_with_a_zero_lifetime_is_refused_with_40101,
    a_wrong_secret_an_unknown_app_id_and_a_malformed_one_get_the_same_40101,
    an_x_app_id_other_than_the_tokens_app_answers_40301_even_in_the_same_org,
    revoking_an_apps_tokens_stops_them_at_once_and_only_in_its_organization,
);

async fn a_missing_malformed_or_unknown_token_answers_40101_the_same_way_and_changes_nothing(
    app: &TestApp,
) {
    let org = app.v5_org("Acme").await;
    let before = snapshot(&org, &["cat"], &[]).await;
    let create = group_body(&org, "vip", "vip", "define").to_string();
    let list = format!(
        "{GROUP_LIST}?corp_id={}&category=cat&start_index=0&step=10",
        org.corp_id
    );
    let tampered = format!("Bearer {}x", org.token);
    let lower = format!("Bearer {}", org.token.to_uppercase());
    let authorizations: [Option<&str>; 8] = [
        None,
        Some(""),
        Some("Bearer"),
        Some("Bearer "),
        Some("Basic dXNlcjpwYXNz"),
        Some("Bearer not-a-token"),
        Some(&tampered),
        Some(&lower),
    ];
    let mut bodies = Vec::new();
    for authorization in authorizations {
        let mut headers = vec![
            ("X-APP-ID", org.app_id.as_str()),
            ("Content-Type", "application/json"),
        ];
        if let Some(value) = authorization {
            headers.push(("Authorization", value));
        }
        let created = org
            .send_raw(Method::POST, GROUP_CREATE, &headers, Some(create.clone()))
            .await;
        refused(&created, 401, 40101);
        let listed = org.send_raw(Method::GET, &list, &headers, None).await;
        refused(&listed, 401, 40101);
        // A bad token is refused before the app id, the corp_id or the body are looked at.
        let headers = [("Authorization", authorization.unwrap_or("Bearer x"))];
        let other = org
            .send_raw(
                Method::POST,
                GROUP_CREATE,
                &headers,
                Some("not json".into()),
            )
            .await;
        refused(&other, 401, 40101);
        bodies.extend([created.1, listed.1, other.1]);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "one answer for all"
    );
    assert_eq!(snapshot(&org, &["cat"], &[]).await, before);
}

async fn an_expired_token_answers_40101(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    let app_id = ExternalId::parse("app_id", &org.app_id).expect("hex");
    let stored = app
        .store
        .find_app(&app_id)
        .await
        .expect("query")
        .expect("app");
    let expired = "expired-token-0123456789abcdef0123456789abcdef";
    let just_expired = "just-expired-token-0123456789abcdef0123456789";
    let now = now_unix();
    for (token, expires_at) in [(expired, now - 3600), (just_expired, now)] {
        app.store
            .create_token(stored.org_id, stored.id, &sha256_hex(token), expires_at)
            .await
            .expect("token stored");
        let caller = org.with_auth(token, &org.app_id);
        refused(
            &caller
                .get(&format!("{TAG_LIST}?corp_id={}&user_id=u1", org.corp_id))
                .await,
            401,
            40101,
        );
        let create = group_body(&org, "vip", "vip", "define");
        refused(&caller.post(GROUP_CREATE, &create).await, 401, 40101);
    }
    assert_eq!(org.groups("cat").await["total"], json!(0));
    // A token that is still valid a while longer works.
    let valid = "still-valid-token-0123456789abcdef0123456789ab";
    app.store
        .create_token(stored.org_id, stored.id, &sha256_hex(valid), now + 60)
        .await
        .expect("token stored");
    let caller = org.with_auth(valid, &org.app_id);
    success(
        &caller
            .get(&format!("{TAG_LIST}?corp_id={}&user_id=u1", org.corp_id))
            .await,
    );
}

async fn a_token_issued_with_a_zero_lifetime_is_refused_with_40101(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let short = app.serve_alongside(config_with_token_ttl(0)).await;
    let at_short = org.at(&short.address);
    let issued = at_short
        .post(
            TOKEN,
            &json!({"app_id": org.app_id, "app_secret": org.app_secret}),
        )
        .await;
    let data = success(&issued).clone();
    assert_eq!(data["expires_in"], json!(0));
    let token = data["access_token"].as_str().expect("token");
    let list = format!(
        "{GROUP_LIST}?corp_id={}&category=c&start_index=0&step=1",
        org.corp_id
    );
    for server in [&at_short, &org] {
        refused(
            &server.with_auth(token, &org.app_id).get(&list).await,
            401,
            40101,
        );
    }
    // The long-lived token of the main server is good on both.
    success(&at_short.get(&list).await);
    short.stop().await;
}

async fn a_wrong_secret_an_unknown_app_id_and_a_malformed_one_get_the_same_40101(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let other = app.v5_org("Other").await;
    let requests = [
        json!({"app_id": org.app_id, "app_secret": "wrong"}),
        json!({"app_id": org.app_id, "app_secret": ""}),
        json!({"app_id": org.app_id, "app_secret": other.app_secret}),
        json!({"app_id": unknown_id(), "app_secret": org.app_secret}),
        json!({"app_id": "not-an-app-id", "app_secret": org.app_secret}),
        json!({"app_id": org.app_id.to_uppercase(), "app_secret": org.app_secret}),
    ];
    let mut bodies = Vec::new();
    for request in requests {
        let answer = org
            .send_raw(
                Method::POST,
                TOKEN,
                &[("Content-Type", "application/json")],
                Some(request.to_string()),
            )
            .await;
        refused(&answer, 401, 40101);
        bodies.push(answer.1);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
}

async fn an_x_app_id_other_than_the_tokens_app_answers_40301_even_in_the_same_org(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let (second_app, _) = app.create_app(&org.corp_id, "second").await;
    let before = snapshot(&org, &["cat"], &[]).await;
    let create = group_body(&org, "vip", "vip", "define");
    for app_id in [second_app.as_str(), &unknown_id(), "", "garbage"] {
        let caller = org.with_auth(&org.token, app_id);
        refused(&caller.post(GROUP_CREATE, &create).await, 403, 40301);
    }
    let headers = [("Authorization", format!("Bearer {}", org.token))];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let list = format!(
        "{GROUP_LIST}?corp_id={}&category=cat&start_index=0&step=1",
        org.corp_id
    );
    let missing = org.send_raw(Method::GET, &list, &headers, None).await;
    refused(&missing, 403, 40301);
    assert_eq!(snapshot(&org, &["cat"], &[]).await, before);
}

async fn revoking_an_apps_tokens_stops_them_at_once_and_only_in_its_organization(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let other = app.v5_org("Other").await;
    org.create_user("u1").await;
    other.create_user("u1").await;
    let list = |o: &V5Org| format!("{TAG_LIST}?corp_id={}&user_id=u1", o.corp_id);
    // Used once, so the token sits in the server's cache when it is revoked.
    success(&org.get(&list(&org)).await);
    let revoke =
        |corp: &str, app_id: &str| format!("/admin/v1/orgs/{corp}/apps/{app_id}/revoke-tokens");

    // Another organization's corp_id cannot name this app: not found, nothing revoked.
    let response = app
        .admin_post(&revoke(&other.corp_id, &org.app_id), &json!({}))
        .await;
    assert_eq!(response.status(), 404);
    success(&org.get(&list(&org)).await);

    let response = app
        .admin_post(&revoke(&org.corp_id, &org.app_id), &json!({}))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["revoked"], json!(1));
    refused(&org.get(&list(&org)).await, 401, 40101);
    // The other organization's token is untouched.
    success(&other.get(&list(&other)).await);
    let response = app
        .admin_post(&revoke(&org.corp_id, &org.app_id), &json!({}))
        .await;
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["revoked"], json!(0), "nothing left to revoke");
}
