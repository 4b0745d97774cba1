//! The seed's assign and list-user-tags curl examples, and the values of each attribute.

use super::seed::keys;
use super::*;
use crate::helpers::TestApp;
use reqwest::Method;

crate::on_both_backends!(
    assigning_a_define_tag_as_the_seed_does_lists_it_with_the_seed_fields,
    number_and_string_tags_list_their_value_and_null_in_the_other_value_fields,
    re_assigning_keeps_the_entity_id_replaces_the_value_and_bumps_the_version,
    define_values_take_true_false_1_and_0_in_any_case,
    a_string_tag_takes_exactly_1024_characters_and_keeps_them_as_sent,
    removing_a_tag_hides_it_and_a_second_remove_answers_null,
);

const TAG_FIELDS: [&str; 16] = [
    "attribute",
    "corp_id",
    "ctime",
    "define_value",
    "entity_id",
    "executor_id",
    "expires_at",
    "is_deleted",
    "mtime",
    "number_value",
    "source",
    "string_value",
    "tags_group_id",
    "user_id",
    "variable_name",
    "version",
];

/// A tag row has the seed's fields plus the three of API.md §4.6, written by this org's app.
fn assert_tag_row(row: &Value, org: &V5Org, group: &str, user_id: &str) {
    assert_eq!(keys(row), TAG_FIELDS, "{row}");
    assert!(is_hex_id(&row["entity_id"]), "{row}");
    assert_eq!(row["corp_id"], org.corp_id);
    assert!(
        is_seed_time(&row["ctime"]) && is_seed_time(&row["mtime"]),
        "{row}"
    );
    assert_eq!(row["executor_id"], org.app_id);
    assert_eq!(row["is_deleted"], json!(false));
    assert_eq!(row["source"], "open_api");
    assert_eq!(row["tags_group_id"], group);
    assert_eq!(row["user_id"], user_id);
    assert!(row["version"].is_i64(), "{row}");
}

async fn assigning_a_define_tag_as_the_seed_does_lists_it_with_the_seed_fields(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    let group = org
        .create_group("group_possible", "champion_26004", "define", "follow_up")
        .await;
    let auth = format!("Bearer {}", org.token);
    let body = json!({"corp_id": org.corp_id, "tags_group_id": group, "user_id": "u1",
        "value": "True"});
    let assigned = org
        .send_raw(
            Method::POST,
            TAG_ASSIGN,
            &[
                ("Content-Type", "application/json; charset=utf-8"),
                ("Authorization", &auth),
                ("X-APP-ID", &org.app_id),
            ],
            Some(body.to_string()),
        )
        .await;
    let entity_id = success(&assigned).clone();
    assert!(is_hex_id(&entity_id), "{entity_id}");

    // The seed's list curl sends no Content-Type.
    let path = format!("{TAG_LIST}?corp_id={}&user_id=u1", org.corp_id);
    let listed = org
        .send_raw(
            Method::GET,
            &path,
            &[("Authorization", &auth), ("X-APP-ID", &org.app_id)],
            None,
        )
        .await;
    let data = success(&listed);
    assert_eq!(keys(data), ["rows", "total"]);
    assert_eq!(data["total"], json!(1));
    let row = &data["rows"][0];
    assert_tag_row(row, &org, &group, "u1");
    assert_eq!(row["entity_id"], entity_id);
    assert_eq!(row["attribute"], "define");
    assert_eq!(row["define_value"], json!(true));
    assert_eq!(row["number_value"], Value::Null);
    assert_eq!(row["string_value"], Value::Null);
    assert_eq!(row["variable_name"], "champion_26004");
    assert_eq!(row["version"], json!(0));
    assert_eq!(row["ctime"], row["mtime"]);
}

async fn number_and_string_tags_list_their_value_and_null_in_the_other_value_fields(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    let number = org.create_group("spend", "spend", "number", "c").await;
    let string = org.create_group("tier", "tier", "string", "c").await;
    let flag = org.create_group("vip", "vip", "define", "c").await;
    org.assign(&number, "u1", "-12.5e1").await;
    org.assign(&string, "u1", "Gold \"plus\" ✓").await;
    org.assign(&flag, "u1", "false").await;
    let data = org.user_tags("u1").await;
    assert_eq!(data["total"], json!(3));
    let rows = data["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 3);
    let row_of = |group: &str| {
        rows.iter()
            .find(|r| r["tags_group_id"] == group)
            .expect("listed")
            .clone()
    };
    let n = row_of(&number);
    assert_tag_row(&n, &org, &number, "u1");
    assert_eq!(
        (
            &n["attribute"],
            &n["define_value"],
            &n["string_value"],
            &n["variable_name"]
        ),
        (
            &json!("number"),
            &Value::Null,
            &Value::Null,
            &json!("spend")
        )
    );
    assert!(n["number_value"].is_number(), "{n}");
    assert_eq!(n["number_value"].as_f64(), Some(-125.0));
    let s = row_of(&string);
    assert_tag_row(&s, &org, &string, "u1");
    assert_eq!(
        (&s["attribute"], &s["define_value"], &s["number_value"]),
        (&json!("string"), &Value::Null, &Value::Null)
    );
    assert_eq!(s["string_value"], "Gold \"plus\" ✓");
    let f = row_of(&flag);
    assert_tag_row(&f, &org, &flag, "u1");
    assert_eq!(
        (&f["define_value"], &f["number_value"], &f["string_value"]),
        (&json!(false), &Value::Null, &Value::Null)
    );
}

async fn re_assigning_keeps_the_entity_id_replaces_the_value_and_bumps_the_version(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    let group = org.create_group("spend", "spend", "number", "c").await;
    let first = org.assign(&group, "u1", "1").await;
    let first_row = org.user_tags("u1").await["rows"][0].clone();
    for (i, value) in ["2", "3.25"].iter().enumerate() {
        assert_eq!(org.assign(&group, "u1", value).await, first);
        let data = org.user_tags("u1").await;
        assert_eq!(data["total"], json!(1));
        assert_eq!(data["rows"][0]["version"], json!(i + 1));
    }
    let row = &org.user_tags("u1").await["rows"][0];
    assert_eq!(row["number_value"].as_f64(), Some(3.25));
    assert_eq!(row["entity_id"], first);
    assert_eq!(row["ctime"], first_row["ctime"]);
}

async fn define_values_take_true_false_1_and_0_in_any_case(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    let group = org.create_group("vip", "vip", "define", "c").await;
    for (value, expected) in [
        ("True", true),
        ("FALSE", false),
        ("tRuE", true),
        ("false", false),
        ("1", true),
        ("0", false),
        ("true", true),
        ("False", false),
    ] {
        org.assign(&group, "u1", value).await;
        let row = &org.user_tags("u1").await["rows"][0];
        assert_eq!(row["define_value"], json!(expected), "value {value}");
    }
}

async fn a_string_tag_takes_exactly_1024_characters_and_keeps_them_as_sent(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    let group = org.create_group("note", "note", "string", "c").await;
    let longest = format!(" {}", "é".repeat(1023));
    org.assign(&group, "u1", &longest).await;
    assert_eq!(
        org.user_tags("u1").await["rows"][0]["string_value"],
        longest
    );
    org.assign(&group, "u1", "").await;
    assert_eq!(org.user_tags("u1").await["rows"][0]["string_value"], "");
}

async fn removing_a_tag_hides_it_and_a_second_remove_answers_null(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    let group = org.create_group("vip", "vip", "define", "c").await;
    let entity_id = org.assign(&group, "u1", "True").await;
    let body = json!({"corp_id": org.corp_id, "tags_group_id": group, "user_id": "u1"});
    assert_eq!(
        success(&org.post(TAG_REMOVE, &body).await),
        &json!(entity_id)
    );
    assert_eq!(org.user_tags("u1").await, json!({"total": 0, "rows": []}));
    assert_eq!(success(&org.post(TAG_REMOVE, &body).await), &Value::Null);
    // Assigning again brings the same assignment back.
    assert_eq!(org.assign(&group, "u1", "True").await, entity_id);
    assert_eq!(org.user_tags("u1").await["total"], json!(1));
}
