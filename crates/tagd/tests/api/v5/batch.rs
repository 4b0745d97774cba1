//! `POST /api/v5/entity/user/tags/batch_assign` (API.md §5a).

use super::{refused, snapshot, success, unknown_id};
use crate::helpers::TestApp;
use serde_json::{json, Value};

const BATCH: &str = "/api/v5/entity/user/tags/batch_assign";

crate::on_both_backends!(
    a_batch_applies_valid_items_and_answers_each_item_in_order,
    a_batch_of_none_or_over_1000_items_is_refused_whole,
    a_batch_naming_another_organizations_group_refuses_those_items_only,
);

async fn a_batch_applies_valid_items_and_answers_each_item_in_order(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    org.create_user("u2").await;
    let spend = org.create_group("Spend", "spend", "number", "cat").await;
    let vip = org.create_group("VIP", "vip", "define", "cat").await;
    let items = json!([
        {"tags_group_id": spend, "user_id": "u1", "value": "10"},
        {"tags_group_id": spend, "user_id": "u2", "value": "ten"},
        {"tags_group_id": vip, "user_id": "ghost", "value": "True"},
        {"tags_group_id": "not-hex", "user_id": "u1", "value": "True"},
        {"tags_group_id": unknown_id(), "user_id": "u1", "value": "True"},
        {"tags_group_id": vip, "user_id": "u2", "value": "true"},
        {"tags_group_id": spend, "user_id": "u1", "value": "11"},
    ]);
    let answer = org
        .post(BATCH, &json!({"corp_id": org.corp_id, "items": items}))
        .await;
    let results = success(&answer)["results"]
        .as_array()
        .expect("results")
        .clone();
    let codes: Vec<u64> = results
        .iter()
        .map(|r| r["code"].as_u64().expect("code"))
        .collect();
    assert_eq!(codes, vec![0, 40002, 40402, 40001, 40401, 0, 0]);
    let indexes: Vec<u64> = results
        .iter()
        .map(|r| r["index"].as_u64().expect("index"))
        .collect();
    assert_eq!(indexes, (0..7).collect::<Vec<u64>>());
    assert_eq!(
        results[0]["entity_id"], results[6]["entity_id"],
        "the same assignment, re-assigned"
    );
    assert_eq!(results[1]["entity_id"], Value::Null);
    assert!(results[3]["msg"]
        .as_str()
        .expect("msg")
        .contains("tags_group_id"));
    let u1 = org.user_tags("u1").await;
    assert_eq!(
        (
            u1["rows"][0]["number_value"].clone(),
            u1["rows"][0]["version"].clone()
        ),
        (json!(11.0), json!(1))
    );
    assert_eq!(org.user_tags("u2").await["rows"][0]["define_value"], true);
}

async fn a_batch_of_none_or_over_1000_items_is_refused_whole(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    let spend = org.create_group("Spend", "spend", "number", "cat").await;
    let before = snapshot(&org, &["cat"], &["u1"]).await;
    let item = json!({"tags_group_id": spend, "user_id": "u1", "value": "1"});
    for items in [json!([]), Value::Array(vec![item; 1001])] {
        let answer = org
            .post(BATCH, &json!({"corp_id": org.corp_id, "items": items}))
            .await;
        refused(&answer, 400, 40001);
    }
    assert_eq!(
        snapshot(&org, &["cat"], &["u1"]).await,
        before,
        "nothing written"
    );
}

async fn a_batch_naming_another_organizations_group_refuses_those_items_only(app: &TestApp) {
    let a = app.v5_org("A").await;
    let b = app.v5_org("B").await;
    a.create_user("u1").await;
    b.create_user("u1").await;
    let theirs = b.create_group("Theirs", "theirs", "define", "cat").await;
    let ours = a.create_group("Ours", "ours", "define", "cat").await;
    let before = snapshot(&b, &["cat"], &["u1"]).await;
    let items = json!([
        {"tags_group_id": theirs, "user_id": "u1", "value": "True"},
        {"tags_group_id": ours, "user_id": "u1", "value": "True"},
    ]);
    let answer = a
        .post(BATCH, &json!({"corp_id": a.corp_id, "items": items}))
        .await;
    let results = success(&answer)["results"].clone();
    assert_eq!(
        (results[0]["code"].clone(), results[1]["code"].clone()),
        (json!(40401), json!(0))
    );
    assert_eq!(snapshot(&b, &["cat"], &["u1"]).await, before, "B unchanged");
    let forged = a
        .post(BATCH, &json!({"corp_id": b.corp_id, "items": items}))
        .await;
    refused(&forged, 403, 40301);
}
