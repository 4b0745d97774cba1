//! 40001 (missing or malformed parameter), each refused with `data` null and nothing changed.

use super::*;
use crate::helpers::TestApp;
use reqwest::Method;

crate::on_both_backends!(
    a_create_with_a_missing_wrong_typed_or_out_of_bounds_field_answers_40001_and_creates_nothing,
    malformed_json_or_a_non_json_content_type_answers_40001_and_changes_nothing,
    the_group_list_refuses_step_0_and_1001_a_negative_start_index_and_missing_parameters,
    update_assign_and_list_refuse_malformed_ids_and_wrong_types_with_40001,
);

const FIELDS: [&str; 6] = [
    "name",
    "variable_name",
    "description",
    "attribute",
    "category",
    "corp_id",
];

async fn a_create_with_a_missing_wrong_typed_or_out_of_bounds_field_answers_40001_and_creates_nothing(
    app: &TestApp,
) {
    let org = app.v5_org("Acme").await;
    let valid = group_body(&org, "vip", "vip", "define");
    let before = snapshot(&org, &["cat"], &[]).await;
    for field in FIELDS {
        let mut body = valid.clone();
        body.as_object_mut().expect("object").remove(field);
        refused_naming(&org.post(GROUP_CREATE, &body).await, field);
        let mut body = valid.clone();
        body[field] = json!(5);
        refused_naming(&org.post(GROUP_CREATE, &body).await, field);
        body[field] = Value::Null;
        refused_naming(&org.post(GROUP_CREATE, &body).await, field);
    }
    let too_long_or_bad: [(&str, String); 15] = [
        ("name", String::new()),
        ("name", "   ".into()),
        ("name", "n".repeat(256)),
        ("variable_name", "9lives".into()),
        ("variable_name", "has-dash".into()),
        ("variable_name", String::new()),
        ("variable_name", format!("v{}", "a".repeat(64))),
        ("variable_name", "ünï".into()),
        ("description", "d".repeat(1025)),
        ("category", "c".repeat(65)),
        ("category", String::new()),
        ("attribute", "boolean".into()),
        ("attribute", "Define".into()),
        ("corp_id", "not-a-corp-id".into()),
        ("corp_id", org.corp_id.to_uppercase()),
    ];
    for (field, value) in too_long_or_bad {
        let mut body = valid.clone();
        body[field] = json!(value);
        refused_naming(&org.post(GROUP_CREATE, &body).await, field);
    }
    assert_eq!(snapshot(&org, &["cat"], &[]).await, before);

    // The limits themselves are accepted.
    let mut longest = valid.clone();
    longest["name"] = json!("n".repeat(255));
    longest["variable_name"] = json!(format!("_{}", "a".repeat(63)));
    longest["description"] = json!("d".repeat(1024));
    longest["category"] = json!("c".repeat(64));
    success(&org.post(GROUP_CREATE, &longest).await);
    assert_eq!(org.groups(&"c".repeat(64)).await["total"], json!(1));
}

async fn malformed_json_or_a_non_json_content_type_answers_40001_and_changes_nothing(
    app: &TestApp,
) {
    let org = app.v5_org("Acme").await;
    let group = org.create_group("vip", "vip", "define", "cat").await;
    org.create_user("u1").await;
    org.assign(&group, "u1", "True").await;
    let before = snapshot(&org, &["cat"], &["u1"]).await;
    let auth = format!("Bearer {}", org.token);
    let json_type = ("Content-Type", "application/json");
    let creds = [
        ("Authorization", auth.as_str()),
        ("X-APP-ID", org.app_id.as_str()),
    ];
    let valid = group_body(&org, "new", "new", "define").to_string();
    let assign = json!({"corp_id": org.corp_id, "tags_group_id": group, "user_id": "u1",
        "value": "False"})
    .to_string();
    let cases: Vec<(&str, Option<&str>, String)> = vec![
        (
            GROUP_CREATE,
            Some("application/json"),
            "{\"name\": \"x\",".to_owned(),
        ),
        (GROUP_CREATE, Some("application/json"), "[]".into()),
        (GROUP_CREATE, Some("application/json"), String::new()),
        (
            GROUP_CREATE,
            Some("application/json"),
            format!("{valid} trailing"),
        ),
        (GROUP_CREATE, Some("text/plain"), valid.clone()),
        (
            GROUP_CREATE,
            Some("application/x-www-form-urlencoded"),
            valid.clone(),
        ),
        (GROUP_CREATE, Some("text/json"), valid.clone()),
        (GROUP_CREATE, Some("application/jsonp"), valid.clone()),
        (GROUP_CREATE, Some("application/json-seq"), valid.clone()),
        (GROUP_CREATE, None, valid.clone()),
        (TAG_ASSIGN, Some("text/plain"), assign.clone()),
        (TAG_ASSIGN, None, assign),
        (
            TAG_ASSIGN,
            Some("application/json"),
            "{\"corp_id\": }".into(),
        ),
        (
            USER_CREATE,
            Some("text/plain"),
            json!({"corp_id": org.corp_id, "user_id": "u2"}).to_string(),
        ),
        (
            TOKEN,
            Some("text/plain"),
            json!({"app_id": org.app_id, "app_secret": org.app_secret}).to_string(),
        ),
    ];
    for (path, content_type, body) in cases {
        let mut headers = creds.to_vec();
        if let Some(content_type) = content_type {
            headers.push(("Content-Type", content_type));
        }
        let answer = org
            .send_raw(Method::POST, path, &headers, Some(body.clone()))
            .await;
        let msg = refused(&answer, 400, 40001);
        if content_type != Some(json_type.1) {
            assert!(msg.contains("Content-Type"), "{path} {body}: {msg}");
        }
    }
    assert_eq!(snapshot(&org, &["cat"], &["u1"]).await, before);
    // The media type is matched without case, with or without parameters.
    for (i, content_type) in [
        "Application/JSON; charset=utf-8",
        "application/json;charset=UTF-8",
    ]
    .into_iter()
    .enumerate()
    {
        let mut headers = creds.to_vec();
        headers.push(("Content-Type", content_type));
        let body = group_body(&org, &format!("typed {i}"), &format!("typed_{i}"), "define");
        let answer = org
            .send_raw(Method::POST, GROUP_CREATE, &headers, Some(body.to_string()))
            .await;
        success(&answer);
    }
    assert_eq!(org.groups("cat").await["total"], json!(3));
    let u2 = org
        .get(&format!("{TAG_LIST}?corp_id={}&user_id=u2", org.corp_id))
        .await;
    refused(&u2, 404, 40402);
}

async fn the_group_list_refuses_step_0_and_1001_a_negative_start_index_and_missing_parameters(
    app: &TestApp,
) {
    let org = app.v5_org("Acme").await;
    org.create_group("vip", "vip", "define", "cat").await;
    let corp = &org.corp_id;
    let cases = [
        (
            format!("corp_id={corp}&category=cat&start_index=0&step=0"),
            "step",
        ),
        (
            format!("corp_id={corp}&category=cat&start_index=0&step=1001"),
            "step",
        ),
        (
            format!("corp_id={corp}&category=cat&start_index=0&step=-1"),
            "step",
        ),
        (
            format!("corp_id={corp}&category=cat&start_index=0&step=ten"),
            "step",
        ),
        (format!("corp_id={corp}&category=cat&start_index=0"), "step"),
        (
            format!("corp_id={corp}&category=cat&start_index=-1&step=10"),
            "start_index",
        ),
        (
            format!("corp_id={corp}&category=cat&start_index=1.5&step=10"),
            "start_index",
        ),
        (
            format!("corp_id={corp}&category=cat&step=10"),
            "start_index",
        ),
        (format!("corp_id={corp}&start_index=0&step=10"), "category"),
        (
            format!("corp_id={corp}&category=&start_index=0&step=10"),
            "category",
        ),
        (
            format!(
                "corp_id={corp}&category={}&start_index=0&step=10",
                "c".repeat(65)
            ),
            "category",
        ),
        ("category=cat&start_index=0&step=10".to_owned(), "corp_id"),
        (
            "corp_id=nothex&category=cat&start_index=0&step=10".to_owned(),
            "corp_id",
        ),
    ];
    for (query, field) in cases {
        refused_naming(&org.get(&format!("{GROUP_LIST}?{query}")).await, field);
    }
    for step in [1, 1000] {
        let answer = org
            .get(&format!(
                "{GROUP_LIST}?corp_id={corp}&category=cat&start_index=0&step={step}"
            ))
            .await;
        assert_eq!(success(&answer)["total"], json!(1));
    }
}

async fn update_assign_and_list_refuse_malformed_ids_and_wrong_types_with_40001(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let group = org.create_group("vip", "vip", "define", "cat").await;
    org.create_user("u1").await;
    org.assign(&group, "u1", "True").await;
    let before = snapshot(&org, &["cat"], &["u1"]).await;
    let row = group_row(&org, "cat", &group).await;
    let update = update_body(&org, &row);
    let mut cases: Vec<(&str, Value, &str)> = Vec::new();
    for (field, value) in [
        ("entity_id", json!("not-an-id")),
        ("entity_id", json!(group.to_uppercase())),
        ("version", json!("0")),
        ("version", json!(1.5)),
        ("name", json!(["vip"])),
    ] {
        let mut body = update.clone();
        body[field] = value;
        cases.push((GROUP_UPDATE, body, field));
    }
    for path in [GROUP_DEACTIVATE, GROUP_ACTIVATE] {
        cases.push((
            path,
            json!({"entity_id": "x", "corp_id": org.corp_id}),
            "entity_id",
        ));
        cases.push((path, json!({"corp_id": org.corp_id}), "entity_id"));
        cases.push((path, json!({"entity_id": group}), "corp_id"));
    }
    let assign = json!({"corp_id": org.corp_id, "tags_group_id": group, "user_id": "u1",
        "value": "False"});
    for (field, value) in [
        ("value", json!(false)),
        ("value", json!(0)),
        ("value", Value::Null),
        ("user_id", json!("bad user")),
        ("user_id", json!("")),
        ("tags_group_id", json!("xyz")),
    ] {
        let mut body = assign.clone();
        body[field] = value;
        cases.push((TAG_ASSIGN, body, field));
    }
    let mut missing_value = assign.clone();
    missing_value
        .as_object_mut()
        .expect("object")
        .remove("value");
    cases.push((TAG_ASSIGN, missing_value, "value"));
    cases.push((
        TAG_REMOVE,
        json!({"corp_id": org.corp_id, "user_id": "u1"}),
        "tags_group_id",
    ));
    cases.push((USER_CREATE, json!({"corp_id": org.corp_id}), "user_id"));
    cases.push((TOKEN, json!({"app_id": org.app_id}), "app_secret"));
    for (path, body, field) in cases {
        refused_naming(&org.post(path, &body).await, field);
    }
    for query in [
        format!("corp_id={}", org.corp_id),
        format!("corp_id={}&user_id=bad%20user", org.corp_id),
        format!("corp_id={}&user_id={}", org.corp_id, "u".repeat(65)),
    ] {
        refused_naming(&org.get(&format!("{TAG_LIST}?{query}")).await, "user_id");
    }
    assert_eq!(snapshot(&org, &["cat"], &["u1"]).await, before);
}
