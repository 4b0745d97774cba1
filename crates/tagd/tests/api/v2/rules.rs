//! Each numbered rule of API.md §3.1, and Basic authentication (§2).

use super::{basic, V2Org};
use crate::helpers::TestApp;
use serde_json::{json, Value};

crate::on_both_backends!(
    rule_1_an_unknown_customer_gets_404_8015_and_nothing_changes,
    rule_2_known_labels_are_set_idempotently_and_unknown_ones_warn_33000,
    rule_3_removes_warn_for_unknown_labels_and_once_for_a_customer_without_labels,
    rule_4_warnings_come_in_request_order_and_entity_is_the_user_id_as_a_number,
    rule_5_malformed_bodies_and_exceeded_limits_get_400_and_apply_nothing,
    rule_6_bad_or_missing_credentials_get_the_same_401,
    blank_label_names_are_skipped_without_a_warning,
    a_wrong_password_is_never_accepted_even_after_a_right_one,
    one_organizations_credential_cannot_see_or_change_another_organizations_customers,
);

async fn org_with_customer(app: &TestApp) -> V2Org {
    let org = V2Org::create(app, "Acme", "loyalty", "pw-1").await;
    org.customers(app, &["42"]).await;
    org.labels(&["VIP", "Churn risk", "Gold"]).await;
    org
}

async fn rule_1_an_unknown_customer_gets_404_8015_and_nothing_changes(app: &TestApp) {
    let org = org_with_customer(app).await;
    let answer = org.change("43", &["VIP"], &[]).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json["errors"][0]["code"], 8015);
    let labels = org.get("/v2/customers/43/labels").await;
    assert_eq!(
        (labels.status, labels.json["errors"][0]["code"].clone()),
        (404, json!(8015))
    );
    let search = org.get("/v2/customers/labels/search?q=VIP").await;
    assert_eq!(search.json["pagination"]["total"], 0);
}

async fn rule_2_known_labels_are_set_idempotently_and_unknown_ones_warn_33000(app: &TestApp) {
    let org = org_with_customer(app).await;
    let answer = org.change("42", &["VIP", "Platinum"], &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json["warnings"],
        json!([{"status": false, "code": 33000, "message": "Platinum label not found"}])
    );
    assert_eq!(org.carried("42").await, vec!["VIP"]);
    let first = org.get("/v2/customers/42/labels").await.json;
    let again = org.change("42", &["VIP"], &[]).await;
    assert_eq!(again.json["warnings"], json!([]));
    assert_eq!(
        org.get("/v2/customers/42/labels").await.json,
        first,
        "adding again changes nothing"
    );
    let case = org.change("42", &["vip"], &[]).await;
    assert_eq!(
        case.json["warnings"][0]["code"], 33000,
        "names compare case-sensitively"
    );
    let padded = org.change("42", &["  Gold  "], &[]).await;
    assert_eq!(
        padded.json["warnings"],
        json!([]),
        "surrounding white space is trimmed"
    );
    assert_eq!(org.carried("42").await, vec!["VIP", "Gold"]);
}

async fn rule_3_removes_warn_for_unknown_labels_and_once_for_a_customer_without_labels(
    app: &TestApp,
) {
    let org = org_with_customer(app).await;
    let none = org.change("42", &[], &["VIP", "Nope", "Gold"]).await;
    assert_eq!(
        none.json["warnings"],
        json!([
            {"status": false, "code": 33001, "message": "User labels not found"},
            {"status": false, "code": 33000, "message": "Nope label not found"},
        ])
    );
    org.change("42", &["VIP"], &[]).await;
    let not_carried = org.change("42", &[], &["Gold"]).await;
    assert_eq!(
        not_carried.json["warnings"],
        json!([]),
        "removing a label not carried is a no-op"
    );
    let removed = org.change("42", &[], &["VIP"]).await;
    assert_eq!(removed.json["warnings"], json!([]));
    assert!(org.carried("42").await.is_empty());
}

async fn rule_4_warnings_come_in_request_order_and_entity_is_the_user_id_as_a_number(
    app: &TestApp,
) {
    let org = org_with_customer(app).await;
    let answer = org.change("42", &["A1", "VIP", "A2"], &["R1"]).await;
    assert_eq!(answer.json["entity"], json!(42));
    let messages: Vec<&str> = answer.json["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| w["message"].as_str().expect("message"))
        .collect();
    assert_eq!(
        messages,
        vec![
            "A1 label not found",
            "A2 label not found",
            "R1 label not found"
        ]
    );
}

async fn rule_5_malformed_bodies_and_exceeded_limits_get_400_and_apply_nothing(app: &TestApp) {
    let org = org_with_customer(app).await;
    let path = "/v2/customers/42/changeLabels";
    let too_many: Vec<Value> = (0..1001).map(|_| json!({"labelName": "VIP"})).collect();
    let long_name = "x".repeat(256);
    let bodies = [
        json!({"add": "VIP"}),
        json!({"add": [{"labelName": 5}]}),
        json!({"add": [{"name": "VIP"}]}),
        json!({"add": [{"labelName": "VIP"}], "remove": {"labelName": "Gold"}}),
        json!({"add": too_many}),
        json!({"add": [{"labelName": "VIP"}, {"labelName": long_name}]}),
        json!([1, 2]),
    ];
    for body in &bodies {
        let answer = org.post(path, body).await;
        assert_eq!(answer.status, 400, "{body}");
        assert_eq!(answer.json["errors"][0]["code"], 400);
        assert_eq!(answer.json["errors"][0]["status"], false);
        assert!(!answer.json["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .is_empty());
    }
    let raw = app
        .client
        .post(app.url(path))
        .header("Authorization", &org.authorization)
        .header("content-type", "application/json")
        .body("{\"add\": [")
        .send()
        .await
        .expect("sent");
    assert_eq!(raw.status(), 400);
    let not_numeric = org.change("abc", &["VIP"], &[]).await;
    assert_eq!(
        (
            not_numeric.status,
            not_numeric.json["errors"][0]["code"].clone()
        ),
        (400, json!(400))
    );
    let negative = org.change("-42", &["VIP"], &[]).await;
    assert_eq!(negative.status, 400);
    assert!(org.carried("42").await.is_empty(), "nothing was applied");
}

async fn rule_6_bad_or_missing_credentials_get_the_same_401(app: &TestApp) {
    let org = org_with_customer(app).await;
    let body = json!({"add": [{"labelName": "VIP"}]});
    let mut bodies = Vec::new();
    for header in [
        None,
        Some(basic("loyalty", "wrong")),
        Some(basic("nobody", "pw-1")),
        Some("Basic not-base64!".to_owned()),
        Some("Bearer pw-1".to_owned()),
        Some(basic("loyalty", "")),
    ] {
        let mut request = app
            .client
            .post(app.url("/v2/customers/42/changeLabels"))
            .json(&body);
        if let Some(h) = &header {
            request = request.header("Authorization", h);
        }
        let response = request.send().await.expect("sent");
        assert_eq!(response.status(), 401, "{header:?}");
        assert!(response.headers().contains_key("www-authenticate"));
        bodies.push(response.text().await.expect("body"));
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every failure answers alike: {bodies:?}"
    );
    let parsed: Value = serde_json::from_str(&bodies[0]).expect("JSON");
    assert_eq!(parsed["errors"][0]["code"], 401);
    assert!(org.carried("42").await.is_empty());
}

async fn blank_label_names_are_skipped_without_a_warning(app: &TestApp) {
    let org = org_with_customer(app).await;
    let answer = org.change("42", &["", "VIP", "   "], &["", "\t"]).await;
    assert_eq!(answer.json["warnings"], json!([]));
    assert_eq!(org.carried("42").await, vec!["VIP"]);
}

async fn a_wrong_password_is_never_accepted_even_after_a_right_one(app: &TestApp) {
    let org = org_with_customer(app).await;
    assert_eq!(org.get("/v2/organization/labels").await.status, 200);
    for _ in 0..3 {
        let wrong = app
            .client
            .get(app.url("/v2/organization/labels"))
            .header("Authorization", basic("loyalty", "pw-2"))
            .send()
            .await
            .expect("sent");
        assert_eq!(wrong.status(), 401);
    }
    assert_eq!(
        org.get("/v2/organization/labels").await.status,
        200,
        "the right one still works"
    );
}

async fn one_organizations_credential_cannot_see_or_change_another_organizations_customers(
    app: &TestApp,
) {
    let a = org_with_customer(app).await;
    a.change("42", &["VIP"], &[]).await;
    let b = V2Org::create(app, "Other", "other-loyalty", "pw-b").await;
    b.labels(&["VIP"]).await;
    let before = a.get("/v2/customers/42/labels").await.text;
    assert_eq!(
        b.change("42", &[], &["VIP"]).await.status,
        404,
        "A's customer is unknown to B"
    );
    assert_eq!(b.change("42", &["VIP"], &[]).await.status, 404);
    assert_eq!(b.get("/v2/customers/42/labels").await.status, 404);
    let search = b.get("/v2/customers/labels/search?q=VIP").await;
    assert_eq!(search.json["pagination"]["total"], 0);
    let catalog = b.get("/v2/organization/labels").await;
    assert_eq!(
        catalog.json["data"].as_array().map(Vec::len),
        Some(1),
        "only B's own label"
    );
    assert_eq!(
        a.get("/v2/customers/42/labels").await.text,
        before,
        "A unchanged"
    );
}
