//! `X-Tagd-Version` (API.md §9): every successful v5 and v2 write answers the organization's
//! version after it; refusals and reads answer none.

use crate::helpers::{TestApp, V5Org};
use crate::v2::{basic, V2Org};
use crate::v5::{TAG_ASSIGN, TAG_REMOVE, USER_CREATE};
use reqwest::Response;
use serde_json::{json, Value};

crate::on_both_backends!(
    every_successful_v5_write_answers_the_version_after_it_and_refusals_none,
    v2_writes_answer_the_version_and_reads_do_not,
);

/// The answer's `X-Tagd-Version`, if any.
fn version(response: &Response) -> Option<i64> {
    let raw = response.headers().get("x-tagd-version")?;
    Some(raw.to_str().expect("ascii").parse().expect("an integer"))
}

/// POSTs `body` as `org`'s app; answers the `X-Tagd-Version` and the JSON body.
pub(crate) async fn v5_post(
    app: &TestApp,
    org: &V5Org,
    path: &str,
    body: Value,
) -> (Option<i64>, Value) {
    let response = app
        .client
        .post(org.url(path))
        .bearer_auth(&org.token)
        .header("X-APP-ID", &org.app_id)
        .json(&body)
        .send()
        .await
        .expect("sent");
    let version = version(&response);
    (version, response.json().await.expect("json"))
}

async fn every_successful_v5_write_answers_the_version_after_it_and_refusals_none(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let group = org.create_group("spend", "spend", "number", "c").await;
    let corp = &org.corp_id;
    let (registered, _) = v5_post(
        app,
        &org,
        USER_CREATE,
        json!({"corp_id": corp, "user_id": "u1"}),
    )
    .await;
    let registered = registered.expect("a version");
    let assign = |value: &str| json!({"corp_id": corp, "tags_group_id": group, "user_id": "u1", "value": value});
    let (first, body) = v5_post(app, &org, TAG_ASSIGN, assign("1")).await;
    assert_eq!(body["code"], 0, "{body}");
    let first = first.expect("a version");
    let (second, _) = v5_post(app, &org, TAG_ASSIGN, assign("2")).await;
    let second = second.expect("a version");
    assert!(
        registered < first && first < second,
        "{registered} {first} {second}"
    );

    let (refused, body) = v5_post(app, &org, TAG_ASSIGN, assign("lots")).await;
    assert_ne!(body["code"], 0, "{body}");
    assert_eq!(
        refused, None,
        "a refusal changed nothing and has no version"
    );

    let remove = json!({"corp_id": corp, "tags_group_id": group, "user_id": "u1"});
    let (removed, _) = v5_post(app, &org, TAG_REMOVE, remove.clone()).await;
    let removed = removed.expect("a version");
    assert!(removed > second);
    let (again, body) = v5_post(app, &org, TAG_REMOVE, remove).await;
    assert_eq!(body["code"], 0, "{body}");
    assert_eq!(
        again,
        Some(removed),
        "nothing changed: the version it found"
    );

    let listed = app
        .client
        .get(org.url(&format!(
            "/api/v5/entity/user/tags/list?corp_id={corp}&user_id=u1"
        )))
        .bearer_auth(&org.token)
        .header("X-APP-ID", &org.app_id)
        .send()
        .await
        .expect("sent");
    assert_eq!(version(&listed), None, "a read is not a write");

    // Another organization's writes do not move this one's version.
    let other = app.v5_org("Other").await;
    other.create_user("u1").await;
    let (still, _) = v5_post(
        app,
        &org,
        TAG_REMOVE,
        json!({"corp_id": corp, "tags_group_id": group, "user_id": "u1"}),
    )
    .await;
    assert_eq!(still, Some(removed));
}

async fn v2_writes_answer_the_version_and_reads_do_not(app: &TestApp) {
    let org = V2Org::create(app, "Acme", "loyalty", "s3cret-pass").await;
    org.customers(app, &["1001"]).await;
    let post = |path: String, body: Value| {
        app.client
            .post(format!("{}{}", app.address, path))
            .header("Authorization", basic("loyalty", "s3cret-pass"))
            .json(&body)
            .send()
    };
    let made = post(
        "/v2/organization/labels".into(),
        json!({"orgLabels": [{"name": "Gold"}]}),
    )
    .await
    .expect("sent");
    assert_eq!(made.status(), 200);
    let made = version(&made).expect("a version");
    let changed = post(
        "/v2/customers/1001/changeLabels".into(),
        json!({"add": [{"labelName": "Gold"}], "remove": []}),
    )
    .await
    .expect("sent");
    assert_eq!(changed.status(), 200);
    assert!(version(&changed).expect("a version") > made);
    let read = app
        .client
        .get(format!("{}/v2/customers/1001/labels", app.address))
        .header("Authorization", basic("loyalty", "s3cret-pass"))
        .send()
        .await
        .expect("sent");
    assert_eq!(read.status(), 200);
    assert_eq!(version(&read), None);
}
