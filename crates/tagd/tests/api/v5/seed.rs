//! The seed's curl examples for tokens, users and tag groups, replayed with the placeholders
//! filled, and their answers checked field by field.

use super::*;
use crate::helpers::TestApp;
use reqwest::Method;

crate::on_both_backends!(
    a_token_is_issued_for_the_apps_id_and_secret_and_lasts_7200_seconds,
    user_create_registers_a_user_once_and_answers_its_id_every_time,
    the_seeds_group_body_posted_to_user_create_is_refused_naming_user_id,
    creating_a_group_answers_its_id_corp_id_and_name_and_lists_it_with_the_seed_fields,
    updating_a_group_as_the_seed_does_replaces_its_fields_and_bumps_its_version,
    deactivate_and_activate_flip_is_active_keep_the_group_listed_and_are_idempotent,
);

pub const GROUP_FIELDS: [&str; 16] = [
    "attribute",
    "calculation_rules",
    "category",
    "corp_id",
    "ctime",
    "description",
    "entity_id",
    "is_active",
    "is_auto",
    "is_deleted",
    "is_locked",
    "mtime",
    "name",
    "type",
    "variable_name",
    "version",
];

/// The keys of a JSON object, sorted.
pub fn keys(row: &Value) -> Vec<String> {
    let mut keys: Vec<String> = row
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// A group row has exactly the seed's fields, with the seed's JSON types.
pub fn assert_group_row_shape(row: &Value, corp_id: &str) {
    assert_eq!(keys(row), GROUP_FIELDS, "{row}");
    assert!(is_hex_id(&row["entity_id"]), "{row}");
    assert_eq!(row["calculation_rules"], json!({}), "{row}");
    assert_eq!(row["corp_id"], corp_id);
    assert!(is_seed_time(&row["ctime"]), "{row}");
    assert!(is_seed_time(&row["mtime"]), "{row}");
    for flag in ["is_active", "is_auto", "is_deleted", "is_locked"] {
        assert!(row[flag].is_boolean(), "{flag} is a JSON boolean: {row}");
    }
    assert!(row["version"].is_i64(), "version is an integer: {row}");
    for text in [
        "attribute",
        "category",
        "description",
        "name",
        "type",
        "variable_name",
    ] {
        assert!(row[text].is_string(), "{text} is a string: {row}");
    }
}

async fn a_token_is_issued_for_the_apps_id_and_secret_and_lasts_7200_seconds(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let body = json!({"app_id": org.app_id, "app_secret": org.app_secret});
    let answer = org
        .send_raw(
            Method::POST,
            TOKEN,
            &[("Content-Type", "application/json; charset=utf-8")],
            Some(body.to_string()),
        )
        .await;
    let data = success(&answer);
    assert_eq!(keys(data), ["access_token", "expires_in"]);
    assert_eq!(data["expires_in"], json!(7200));
    let token = data["access_token"].as_str().expect("a string token");
    assert!(token.len() >= 32, "a high-entropy token: {token}");
    assert_ne!(token, org.token, "every call issues a new token");
    // The new token works, and so does the earlier one.
    let fresh = org.with_auth(token, &org.app_id);
    for caller in [&fresh, &org] {
        let listed = caller
            .get(&format!(
                "{GROUP_LIST}?corp_id={}&category=x&start_index=0&step=1",
                org.corp_id
            ))
            .await;
        assert_eq!(success(&listed), &json!({"total": 0, "rows": []}));
    }
}

async fn user_create_registers_a_user_once_and_answers_its_id_every_time(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let body = json!({"corp_id": org.corp_id, "user_id": "user.1@example-shop:42"});
    for _ in 0..2 {
        let answer = org.post(USER_CREATE, &body).await;
        assert_eq!(success(&answer), &json!("user.1@example-shop:42"));
    }
    assert_eq!(
        org.user_tags("user.1@example-shop:42").await,
        json!({"total": 0, "rows": []})
    );
    for bad in ["", "has space", "slash/y", &"u".repeat(65)] {
        let answer = org
            .post(
                USER_CREATE,
                &json!({"corp_id": org.corp_id, "user_id": bad}),
            )
            .await;
        refused_naming(&answer, "user_id");
    }
}

async fn the_seeds_group_body_posted_to_user_create_is_refused_naming_user_id(app: &TestApp) {
    // The seed's "Create Tag" curl posts the group's fields to /api/v5/user/create.
    let org = app.v5_org("Acme").await;
    let seed_body = json!({"name": "group_possible", "variable_name": "champion_26004",
        "description": "test", "attribute": "define", "category": "follow_up",
        "corp_id": org.corp_id});
    refused_naming(&org.post(USER_CREATE, &seed_body).await, "user_id");
    assert_eq!(org.groups("follow_up").await["total"], json!(0));
}

async fn creating_a_group_answers_its_id_corp_id_and_name_and_lists_it_with_the_seed_fields(
    app: &TestApp,
) {
    let org = app.v5_org("Acme").await;
    let seed_body = format!(
        r#"{{"name": "group_possible", "variable_name": "champion_26004","description": "test","attribute": "define","category": "follow_up","corp_id": "{}"}}"#,
        org.corp_id
    );
    let auth = format!("Bearer {}", org.token);
    let headers = [
        ("Content-Type", "application/json; charset=utf-8"),
        ("Authorization", auth.as_str()),
        ("X-APP-ID", org.app_id.as_str()),
    ];
    let created = org
        .send_raw(Method::POST, GROUP_CREATE, &headers, Some(seed_body))
        .await;
    let data = success(&created);
    assert_eq!(keys(data), ["corp_id", "name", "tags_group_id"]);
    assert!(is_hex_id(&data["tags_group_id"]), "{data}");
    assert_eq!(data["corp_id"], org.corp_id);
    assert_eq!(data["name"], "group_possible");

    // The seed's list curl, Content-Type header and all.
    let list_path = format!(
        "{GROUP_LIST}?corp_id={}&category=follow_up&start_index=0&step=10",
        org.corp_id
    );
    let listed = org.send_raw(Method::GET, &list_path, &headers, None).await;
    let page = success(&listed);
    assert_eq!(keys(page), ["rows", "total"]);
    assert_eq!(page["total"], json!(1));
    let row = &page["rows"][0];
    assert_group_row_shape(row, &org.corp_id);
    assert_eq!(row["entity_id"], data["tags_group_id"]);
    assert_eq!(row["attribute"], "define");
    assert_eq!(row["category"], "follow_up");
    assert_eq!(row["description"], "test");
    assert_eq!(row["name"], "group_possible");
    assert_eq!(row["variable_name"], "champion_26004");
    assert_eq!(row["type"], "custom");
    assert_eq!(row["version"], json!(0));
    assert_eq!(
        [
            &row["is_active"],
            &row["is_auto"],
            &row["is_deleted"],
            &row["is_locked"]
        ],
        [&json!(true), &json!(false), &json!(false), &json!(false)]
    );
    assert_eq!(row["ctime"], row["mtime"]);
    assert_eq!(page["rows"].as_array().expect("rows").len(), 1);
}

async fn updating_a_group_as_the_seed_does_replaces_its_fields_and_bumps_its_version(
    app: &TestApp,
) {
    let org = app.v5_org("Acme").await;
    let group = org
        .create_group("group_possible", "champion_26004", "define", "follow_up")
        .await;
    let before = group_row(&org, "follow_up", &group).await;
    let seed_body = json!({
        "entity_id": group, "corp_id": org.corp_id, "name": "test_update",
        "variable_name": "update", "description": "should update successfully",
        "attribute": "define", "category": "follow_up",
    });
    let answer = org.post(GROUP_UPDATE, &seed_body).await;
    assert_eq!(success(&answer), &json!(group));
    let after = group_row(&org, "follow_up", &group).await;
    assert_group_row_shape(&after, &org.corp_id);
    assert_eq!(after["name"], "test_update");
    assert_eq!(after["variable_name"], "update");
    assert_eq!(after["description"], "should update successfully");
    assert_eq!(after["version"], json!(1));
    assert_eq!(after["ctime"], before["ctime"]);
    assert!(after["mtime"].as_str() >= before["mtime"].as_str());

    // The category is editable too: the group moves to the other list.
    let moved = json!({
        "entity_id": group, "corp_id": org.corp_id, "name": "test_update",
        "variable_name": "update", "description": "", "attribute": "number",
        "category": "b2b", "version": 1,
    });
    assert_eq!(
        success(&org.post(GROUP_UPDATE, &moved).await),
        &json!(group)
    );
    assert_eq!(org.groups("follow_up").await["total"], json!(0));
    let moved_row = group_row(&org, "b2b", &group).await;
    assert_eq!(
        (
            &moved_row["attribute"],
            &moved_row["description"],
            &moved_row["version"]
        ),
        (&json!("number"), &json!(""), &json!(2))
    );
}

async fn deactivate_and_activate_flip_is_active_keep_the_group_listed_and_are_idempotent(
    app: &TestApp,
) {
    let org = app.v5_org("Acme").await;
    let group = org.create_group("g", "g", "define", "follow_up").await;
    let body = json!({"entity_id": group, "corp_id": org.corp_id});
    for (path, active) in [
        (GROUP_DEACTIVATE, false),
        (GROUP_DEACTIVATE, false),
        (GROUP_ACTIVATE, true),
        (GROUP_ACTIVATE, true),
        (GROUP_DEACTIVATE, false),
    ] {
        assert_eq!(success(&org.post(path, &body).await), &json!(group));
        let row = group_row(&org, "follow_up", &group).await;
        assert_group_row_shape(&row, &org.corp_id);
        assert_eq!(row["is_active"], json!(active), "after {path}");
        assert_eq!(row["is_deleted"], json!(false));
    }
    assert_eq!(org.groups("follow_up").await["total"], json!(1));
}
