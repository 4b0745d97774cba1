//! Idempotency keys on writes of both dialects.

use super::{assign_body, tags_of, v5_post, v5_world};
use crate::helpers::TestApp;
use crate::v2::V2Org;
use serde_json::json;
use tagd_core::idempotency::{fingerprint, Claim, ClaimOutcome};
use tagd_core::ExternalId;

const ASSIGN: &str = "/api/v5/entity/user/tags/assign";

crate::on_both_backends!(
    a_replayed_v5_write_returns_the_first_response_byte_for_byte_with_one_effect,
    a_replayed_v2_change_returns_the_first_response_with_one_effect,
    a_key_reused_with_another_body_gets_422_and_changes_nothing,
    a_key_still_in_flight_gets_409,
    keys_are_scoped_per_organization,
    a_refusal_is_replayed_too_while_the_key_lives,
    purged_keys_are_forgotten,
    a_malformed_key_is_refused,
);

async fn a_replayed_v5_write_returns_the_first_response_byte_for_byte_with_one_effect(
    app: &TestApp,
) {
    let (org, group) = v5_world(app, "Acme").await;
    let body = assign_body(&org, &group, "u1", "12.5");
    let first = v5_post(app, &org, ASSIGN, &body, Some("order-1")).await;
    assert_eq!(first.status, 200, "{}", first.text);
    for _ in 0..3 {
        let again = v5_post(app, &org, ASSIGN, &body, Some("order-1")).await;
        assert_eq!((again.status, &again.text), (200, &first.text));
        assert_eq!(again.headers["idempotent-replayed"], "true");
    }
    let tags = tags_of(&org, "u1").await;
    assert_eq!(tags["rows"][0]["version"], 0, "one effect: {tags}");
    let entity =
        ExternalId::parse("e", tags["rows"][0]["entity_id"].as_str().expect("id")).expect("hex");
    let org_id = crate::v5::org_id(app, &org).await;
    assert_eq!(
        app.store
            .assignment_history(org_id, &entity)
            .await
            .expect("history")
            .len(),
        1
    );
    let unkeyed = v5_post(app, &org, ASSIGN, &body, None).await;
    assert_eq!(unkeyed.status, 200);
    assert_eq!(
        tags_of(&org, "u1").await["rows"][0]["version"],
        1,
        "without a key, a second write"
    );
}

async fn a_replayed_v2_change_returns_the_first_response_with_one_effect(app: &TestApp) {
    let org = V2Org::create(app, "Acme", "loyalty", "pw").await;
    org.customers(app, &["42"]).await;
    org.labels(&["VIP"]).await;
    let send = || async {
        let response = app
            .client
            .post(app.url("/v2/customers/42/changeLabels"))
            .header("Authorization", &org.authorization)
            .header("content-type", "application/json")
            .header("Idempotency-Key", "change-1")
            .body(r#"{"add":[{"labelName":"VIP"},{"labelName":"Nope"}]}"#)
            .send()
            .await
            .expect("sent");
        (
            response.status().as_u16(),
            response.text().await.expect("body"),
        )
    };
    let first = send().await;
    assert_eq!(first.0, 200, "{}", first.1);
    org.change("42", &[], &["VIP"]).await;
    let again = send().await;
    assert_eq!(again, first, "the first response again");
    assert!(org.carried("42").await.is_empty(), "and no second effect");
}

async fn a_key_reused_with_another_body_gets_422_and_changes_nothing(app: &TestApp) {
    let (org, group) = v5_world(app, "Acme").await;
    let first = v5_post(
        app,
        &org,
        ASSIGN,
        &assign_body(&org, &group, "u1", "1"),
        Some("k"),
    )
    .await;
    assert_eq!(first.status, 200);
    let other = v5_post(
        app,
        &org,
        ASSIGN,
        &assign_body(&org, &group, "u1", "2"),
        Some("k"),
    )
    .await;
    assert_eq!(
        (other.status, other.json()["code"].clone()),
        (422, json!(42201))
    );
    assert_eq!(tags_of(&org, "u1").await["rows"][0]["number_value"], 1.0);
    let v2 = V2Org::create(app, "Other", "loyalty", "pw").await;
    v2.customers(app, &["7"]).await;
    let keyed = |body: &'static str| {
        app.client
            .post(app.url("/v2/customers/7/changeLabels"))
            .header("Authorization", &v2.authorization)
            .header("content-type", "application/json")
            .header("Idempotency-Key", "k")
            .body(body)
            .send()
    };
    assert_eq!(keyed(r#"{"add":[]}"#).await.expect("sent").status(), 200);
    let reused = keyed(r#"{"add":[],"remove":[]}"#).await.expect("sent");
    assert_eq!(reused.status(), 422);
    let body: serde_json::Value = reused.json().await.expect("JSON");
    assert_eq!(body["errors"][0]["code"], 422);
}

async fn a_key_still_in_flight_gets_409(app: &TestApp) {
    let (org, group) = v5_world(app, "Acme").await;
    let body = assign_body(&org, &group, "u1", "3");
    let org_id = crate::v5::org_id(app, &org).await;
    // Another request with this key is running: it holds the claim.
    let claim = Claim {
        org: org_id,
        key: "busy".into(),
        fingerprint: fingerprint("POST", ASSIGN, body.as_bytes()),
        lease_secs: 45,
    };
    assert_eq!(
        app.store
            .claim_idempotency_key(&claim)
            .await
            .expect("claimed"),
        ClaimOutcome::Fresh
    );
    let answer = v5_post(app, &org, ASSIGN, &body, Some("busy")).await;
    assert_eq!(
        (answer.status, answer.json()["code"].clone()),
        (409, json!(40903))
    );
    assert_eq!(tags_of(&org, "u1").await["total"], 0, "nothing applied");
    app.store
        .release_idempotency_key(&claim)
        .await
        .expect("released");
    assert_eq!(
        v5_post(app, &org, ASSIGN, &body, Some("busy")).await.status,
        200
    );
}

async fn keys_are_scoped_per_organization(app: &TestApp) {
    let (a, group_a) = v5_world(app, "A").await;
    let (b, group_b) = v5_world(app, "B").await;
    let first = v5_post(
        app,
        &a,
        ASSIGN,
        &assign_body(&a, &group_a, "u1", "1"),
        Some("shared"),
    )
    .await;
    let second = v5_post(
        app,
        &b,
        ASSIGN,
        &assign_body(&b, &group_b, "u1", "1"),
        Some("shared"),
    )
    .await;
    assert_eq!((first.status, second.status), (200, 200));
    assert!(second.headers.get("idempotent-replayed").is_none());
    assert_eq!(tags_of(&b, "u1").await["total"], 1, "B's write took effect");
    assert_ne!(first.text, second.text);
}

async fn a_refusal_is_replayed_too_while_the_key_lives(app: &TestApp) {
    let (org, group) = v5_world(app, "Acme").await;
    let body = assign_body(&org, &group, "u2", "5");
    let refused = v5_post(app, &org, ASSIGN, &body, Some("early")).await;
    assert_eq!(refused.json()["code"], 40402);
    org.create_user("u2").await;
    let again = v5_post(app, &org, ASSIGN, &body, Some("early")).await;
    assert_eq!((again.status, &again.text), (refused.status, &refused.text));
    assert_eq!(
        v5_post(app, &org, ASSIGN, &body, Some("later"))
            .await
            .status,
        200
    );
}

async fn purged_keys_are_forgotten(app: &TestApp) {
    let (org, group) = v5_world(app, "Acme").await;
    let body = assign_body(&org, &group, "u1", "1");
    v5_post(app, &org, ASSIGN, &body, Some("old")).await;
    assert!(app.store.purge_idempotency_keys(-1).await.expect("purged") >= 1);
    let after = v5_post(app, &org, ASSIGN, &body, Some("old")).await;
    assert!(after.headers.get("idempotent-replayed").is_none());
    assert_eq!(
        tags_of(&org, "u1").await["rows"][0]["version"],
        1,
        "a new effect"
    );
}

async fn a_malformed_key_is_refused(app: &TestApp) {
    let (org, group) = v5_world(app, "Acme").await;
    let body = assign_body(&org, &group, "u1", "1");
    let long = "k".repeat(256);
    let answer = v5_post(app, &org, ASSIGN, &body, Some(&long)).await;
    assert_eq!(
        (answer.status, answer.json()["code"].clone()),
        (400, json!(40001))
    );
    assert_eq!(tags_of(&org, "u1").await["total"], 0);
}
