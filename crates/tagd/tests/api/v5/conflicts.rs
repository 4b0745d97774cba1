//! 40003, 40004, 40005, 40401, 40402, 40901 and 40902: each refused with `data` null and the
//! organization's groups and tags unchanged.

use super::*;
use crate::helpers::TestApp;

crate::on_both_backends!(
    changing_the_attribute_of_a_group_with_a_live_assignment_answers_40003_and_changes_nothing,
    assigning_to_an_inactive_group_answers_40004_and_changes_nothing,
    updating_or_toggling_a_group_locked_by_the_operator_answers_40005_and_changes_nothing,
    an_unknown_group_answers_40401_on_every_endpoint_that_names_one,
    an_unregistered_user_answers_40402_on_assign_list_and_remove,
    a_duplicate_name_or_variable_name_answers_40901_on_create_and_update,
    a_stale_version_on_update_answers_40902_and_changes_nothing,
);

async fn changing_the_attribute_of_a_group_with_a_live_assignment_answers_40003_and_changes_nothing(
    app: &TestApp,
) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    let group = org.create_group("vip", "vip", "define", "cat").await;
    org.assign(&group, "u1", "True").await;
    let before = snapshot(&org, &["cat"], &["u1"]).await;
    let mut body = update_body(&org, &group_row(&org, "cat", &group).await);
    for attribute in ["number", "string"] {
        body["attribute"] = json!(attribute);
        refused(&org.post(GROUP_UPDATE, &body).await, 409, 40003);
    }
    assert_eq!(snapshot(&org, &["cat"], &["u1"]).await, before);

    // Other fields can still change; once the assignment is removed, so can the attribute.
    body["attribute"] = json!("define");
    body["description"] = json!("still define");
    success(&org.post(GROUP_UPDATE, &body).await);
    let remove = json!({"corp_id": org.corp_id, "tags_group_id": group, "user_id": "u1"});
    success(&org.post(TAG_REMOVE, &remove).await);
    body["attribute"] = json!("number");
    success(&org.post(GROUP_UPDATE, &body).await);
    assert_eq!(group_row(&org, "cat", &group).await["attribute"], "number");
}

async fn assigning_to_an_inactive_group_answers_40004_and_changes_nothing(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    org.create_user("u2").await;
    let group = org.create_group("vip", "vip", "define", "cat").await;
    org.assign(&group, "u1", "True").await;
    let toggle = json!({"entity_id": group, "corp_id": org.corp_id});
    success(&org.post(GROUP_DEACTIVATE, &toggle).await);
    let before = snapshot(&org, &["cat"], &["u1", "u2"]).await;
    // The inactive group keeps its assignment.
    assert_eq!(before[1]["rows"][0]["define_value"], json!(true));
    for (user, value) in [("u1", "False"), ("u2", "True"), ("u1", "not a bool")] {
        refused(&org.assign_answer(&group, user, value).await, 409, 40004);
    }
    assert_eq!(snapshot(&org, &["cat"], &["u1", "u2"]).await, before);
    success(&org.post(GROUP_ACTIVATE, &toggle).await);
    org.assign(&group, "u2", "True").await;
    assert_eq!(org.user_tags("u2").await["total"], json!(1));
}

async fn updating_or_toggling_a_group_locked_by_the_operator_answers_40005_and_changes_nothing(
    app: &TestApp,
) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    let group = org.create_group("vip", "vip", "define", "cat").await;
    let lock_path = format!("/admin/v1/orgs/{}/tag-groups/{group}/lock", org.corp_id);
    let locked = app.admin_post(&lock_path, &json!({"locked": true})).await;
    assert_eq!(locked.status(), 200);
    let answer: Value = locked.json().await.expect("JSON");
    assert_eq!(answer, json!({"entity_id": group, "locked": true}));

    let before = snapshot(&org, &["cat"], &["u1"]).await;
    assert_eq!(before[0]["rows"][0]["is_locked"], json!(true));
    let mut update = update_body(&org, &before[0]["rows"][0]);
    update["name"] = json!("renamed");
    refused(&org.post(GROUP_UPDATE, &update).await, 409, 40005);
    let toggle = json!({"entity_id": group, "corp_id": org.corp_id});
    refused(&org.post(GROUP_DEACTIVATE, &toggle).await, 409, 40005);
    refused(&org.post(GROUP_ACTIVATE, &toggle).await, 409, 40005);
    assert_eq!(snapshot(&org, &["cat"], &["u1"]).await, before);

    // A locked group's assignments can still change.
    org.assign(&group, "u1", "True").await;
    let unlocked = app.admin_post(&lock_path, &json!({"locked": false})).await;
    assert_eq!(unlocked.status(), 200);
    success(&org.post(GROUP_UPDATE, &update).await);
    let row = group_row(&org, "cat", &group).await;
    assert_eq!(
        (&row["name"], &row["is_locked"]),
        (&json!("renamed"), &json!(false))
    );
}

async fn an_unknown_group_answers_40401_on_every_endpoint_that_names_one(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    let group = org.create_group("vip", "vip", "define", "cat").await;
    org.assign(&group, "u1", "True").await;
    let before = snapshot(&org, &["cat"], &["u1"]).await;
    let unknown = unknown_id();
    let mut update = update_body(&org, &before[0]["rows"][0]);
    update["entity_id"] = json!(unknown);
    update["name"] = json!("other");
    update["variable_name"] = json!("other");
    let by_ref = json!({"entity_id": unknown, "corp_id": org.corp_id});
    let tag = json!({"corp_id": org.corp_id, "tags_group_id": unknown, "user_id": "u1",
        "value": "True"});
    let mut answers = vec![
        org.post(GROUP_UPDATE, &update).await,
        org.post(GROUP_DEACTIVATE, &by_ref).await,
        org.post(GROUP_ACTIVATE, &by_ref).await,
        org.post(TAG_ASSIGN, &tag).await,
        org.post(TAG_REMOVE, &tag).await,
    ];
    // The group is checked before the user.
    let mut both_unknown = tag.clone();
    both_unknown["user_id"] = json!("nobody");
    answers.push(org.post(TAG_ASSIGN, &both_unknown).await);
    for answer in &answers {
        refused(answer, 404, 40401);
    }
    assert_eq!(snapshot(&org, &["cat"], &["u1"]).await, before);
}

async fn an_unregistered_user_answers_40402_on_assign_list_and_remove(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    let group = org.create_group("vip", "vip", "define", "cat").await;
    org.assign(&group, "u1", "True").await;
    let before = snapshot(&org, &["cat"], &["u1"]).await;
    let tag = json!({"corp_id": org.corp_id, "tags_group_id": group, "user_id": "nobody",
        "value": "True"});
    refused(&org.post(TAG_ASSIGN, &tag).await, 404, 40402);
    refused(&org.post(TAG_REMOVE, &tag).await, 404, 40402);
    let list = format!("{TAG_LIST}?corp_id={}&user_id=nobody", org.corp_id);
    refused(&org.get(&list).await, 404, 40402);
    assert_eq!(snapshot(&org, &["cat"], &["u1"]).await, before);
    // Once registered, the same calls succeed.
    org.create_user("nobody").await;
    assert_eq!(
        success(&org.get(&list).await),
        &json!({"total": 0, "rows": []})
    );
    success(&org.post(TAG_ASSIGN, &tag).await);
}

async fn a_duplicate_name_or_variable_name_answers_40901_on_create_and_update(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let first = org.create_group("vip", "vip_flag", "define", "cat").await;
    let second = org.create_group("spend", "spend", "number", "other").await;
    success(
        &org.post(
            GROUP_DEACTIVATE,
            &json!({"entity_id": first, "corp_id": org.corp_id}),
        )
        .await,
    );
    let before = snapshot(&org, &["cat", "other", "third"], &[]).await;
    for (name, variable_name, field) in [
        ("vip", "another", "name"),
        ("  vip  ", "another", "name"),
        ("fresh", "vip_flag", "variable_name"),
        ("vip", "vip_flag", "name"),
    ] {
        let mut body = group_body(&org, name, variable_name, "string");
        body["category"] = json!("third");
        let msg = refused(&org.post(GROUP_CREATE, &body).await, 409, 40901);
        assert!(msg.contains(field), "{msg}");
    }
    let second_row = group_row(&org, "other", &second).await;
    for (field, value) in [("name", "vip"), ("variable_name", "vip_flag")] {
        let mut update = update_body(&org, &second_row);
        update[field] = json!(value);
        let msg = refused(&org.post(GROUP_UPDATE, &update).await, 409, 40901);
        assert!(msg.contains(field), "{msg}");
    }
    assert_eq!(
        snapshot(&org, &["cat", "other", "third"], &[]).await,
        before
    );

    // Names compare exactly: another case is another name. A group may keep its own names.
    org.create_group("VIP", "VIP_FLAG", "define", "third").await;
    success(
        &org.post(GROUP_UPDATE, &update_body(&org, &second_row))
            .await,
    );
}

async fn a_stale_version_on_update_answers_40902_and_changes_nothing(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let group = org.create_group("vip", "vip", "define", "cat").await;
    let row = group_row(&org, "cat", &group).await;
    let mut update = update_body(&org, &row);
    update["description"] = json!("first edit");
    update["version"] = json!(0);
    success(&org.post(GROUP_UPDATE, &update).await);
    let before = snapshot(&org, &["cat"], &[]).await;
    assert_eq!(before[0]["rows"][0]["version"], json!(1));
    update["description"] = json!("edit from a stale read");
    for stale in [0, 2, 7, -1] {
        update["version"] = json!(stale);
        refused(&org.post(GROUP_UPDATE, &update).await, 409, 40902);
    }
    assert_eq!(snapshot(&org, &["cat"], &[]).await, before);
    update["version"] = json!(1);
    success(&org.post(GROUP_UPDATE, &update).await);
    let after = group_row(&org, "cat", &group).await;
    assert_eq!(
        (&after["description"], &after["version"]),
        (&json!("edit from a stale read"), &json!(2))
    );
    // Without a version the update is unconditional.
    update.as_object_mut().expect("object").remove("version");
    success(&org.post(GROUP_UPDATE, &update).await);
    assert_eq!(group_row(&org, "cat", &group).await["version"], json!(3));
}
