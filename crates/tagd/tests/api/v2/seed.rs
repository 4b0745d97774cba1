//! The seed's request and sample responses, reproduced exactly.

use super::V2Org;
use crate::helpers::{TestApp, ADMIN_TOKEN};
use serde_json::json;

const SEED_AUTHORIZATION: &str = "Basic c2FudC5wXzEyMzpiMmVhMGFhYWI1ZThmODg5ZzNGE2NjA5NTIwM2FlNw==";
const SEED_BODY: &str = r#"{
"add": [
{
"labelName":"Valuable Customer shvdshjdvshdvhjsdvjasajshjahadjgciuwyeguhbcwjhbjdshsbcjhwhewbehcbwjdhbckwjhekjhcbw"
},
{
"labelName": "Old1 Customer1"
},
{
"labelName": "Old2 Customer2"
},
{
"labelName": "Testing_UAT_@_123"
}
],
"remove": [
{
"labelName": ""
},
{
"labelName": ""
}
]
}"#;
const SEED_LABELS: [&str; 4] = [
    "Valuable Customer shvdshjdvshdvhjsdvjasajshjahadjgciuwyeguhbcwjhbjdshsbcjhwhewbehcbwjdhbckwjhekjhcbw",
    "Old1 Customer1",
    "Old2 Customer2",
    "Testing_UAT_@_123",
];

crate::on_both_backends!(
    the_seed_request_sent_as_is_gets_exactly_the_sample_response,
    an_unknown_customer_gets_exactly_the_seed_8015_error,
    an_unknown_label_gets_exactly_the_seed_33000_warning,
    a_remove_on_a_customer_without_labels_gets_the_seed_33001_warning,
);

/// The organization of the seed's credential, registered from its exact header.
async fn seed_org(app: &TestApp) -> V2Org {
    let corp_id = app.create_org("Seed").await;
    let path = format!("/admin/v1/orgs/{corp_id}/basic-credentials");
    let response = app
        .admin_post(&path, &json!({"authorization": SEED_AUTHORIZATION}))
        .await;
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let org = V2Org {
        corp_id,
        authorization: SEED_AUTHORIZATION.to_owned(),
        address: app.address.clone(),
        client: app.client.clone(),
    };
    org.labels(&SEED_LABELS).await;
    org
}

async fn the_seed_request_sent_as_is_gets_exactly_the_sample_response(app: &TestApp) {
    let org = seed_org(app).await;
    org.customers(app, &["564663098"]).await;
    let response = app
        .client
        .post(app.url("/v2/customers/564663098/changeLabels"))
        .header("accept", "application/json")
        .header("content-type", "application/json")
        .header("Authorization", SEED_AUTHORIZATION)
        .header(
            "Cookie",
            "_cfuvid=fbS1QUjcPWKTrqnhF5ahlGc4y1sg7UG0MiosK.TUazU-1750677923205-0.0.1.1-604800000",
        )
        .body(SEED_BODY)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.expect("body"),
        r#"{"entity":564663098,"warnings":[]}"#
    );
    let mut carried = org.carried("564663098").await;
    carried.sort();
    let mut expected: Vec<String> = SEED_LABELS.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(carried, expected);
    // The admin token is not a v2 credential.
    let refused = app
        .client
        .post(app.url("/v2/customers/564663098/changeLabels"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(SEED_BODY)
        .send()
        .await
        .expect("sent");
    assert_eq!(refused.status(), 401);
}

async fn an_unknown_customer_gets_exactly_the_seed_8015_error(app: &TestApp) {
    let org = seed_org(app).await;
    let answer = org.change("564663098", &["Old1 Customer1"], &[]).await;
    assert_eq!(answer.status, 404);
    assert_eq!(
        answer.text,
        r#"{"errors":[{"status":false,"message":"Customer not found for the given identifiers","code":8015}]}"#
    );
}

async fn an_unknown_label_gets_exactly_the_seed_33000_warning(app: &TestApp) {
    let org = seed_org(app).await;
    org.customers(app, &["565345934"]).await;
    let answer = org
        .change("565345934", &["123212100000Old Customer000000000000"], &[])
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.text,
        r#"{"entity":565345934,"warnings":[{"status":false,"code":33000,"message":"123212100000Old Customer000000000000 label not found"}]}"#
    );
}

async fn a_remove_on_a_customer_without_labels_gets_the_seed_33001_warning(app: &TestApp) {
    let org = seed_org(app).await;
    org.customers(app, &["564663098"]).await;
    let answer = org.change("564663098", &[], &["Old1 Customer1"]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json["warnings"],
        json!([{"status": false, "code": 33001, "message": "User labels not found"}])
    );
    assert_eq!(
        answer.text,
        r#"{"entity":564663098,"warnings":[{"status":false,"code":33001,"message":"User labels not found"}]}"#
    );
}
