//! Concurrent assignments over HTTP: re-assignments of one (user, group) serialize into one
//! live row with one history entry each; assignments to distinct users all succeed.

use super::*;
use crate::helpers::TestApp;
use std::collections::BTreeSet;
use tagd_core::ExternalId;
use tokio::task::JoinSet;

crate::on_both_backends!(
    a_hundred_concurrent_re_assignments_leave_one_row_at_version_99_and_100_history_entries,
    two_hundred_concurrent_assignments_to_distinct_users_all_succeed,
);

async fn a_hundred_concurrent_re_assignments_leave_one_row_at_version_99_and_100_history_entries(
    app: &TestApp,
) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    let group = org.create_group("spend", "spend", "number", "cat").await;
    let mut tasks = JoinSet::new();
    for i in 0..100 {
        let org = org.clone();
        let group = group.clone();
        tasks.spawn(async move { org.assign_answer(&group, "u1", &i.to_string()).await });
    }
    let mut entity_ids = BTreeSet::new();
    while let Some(joined) = tasks.join_next().await {
        let answer = joined.expect("the task ran");
        let data = success(&answer);
        entity_ids.insert(data.as_str().expect("entity id").to_owned());
    }
    assert_eq!(entity_ids.len(), 1, "one assignment: {entity_ids:?}");
    let entity_id = entity_ids.pop_first().expect("one id");

    let tags = org.user_tags("u1").await;
    assert_eq!(tags["total"], json!(1));
    let row = &tags["rows"][0];
    assert_eq!(row["entity_id"], entity_id);
    assert_eq!(row["version"], json!(99));

    let org_id = org_id(app, &org).await;
    let assignment = ExternalId::parse("entity_id", &entity_id).expect("hex");
    let history = app
        .store
        .assignment_history(org_id, &assignment)
        .await
        .expect("history");
    assert_eq!(history.len(), 100);
    let versions: Vec<i64> = history.iter().map(|h| h.version).collect();
    assert_eq!(versions, (0..100).collect::<Vec<i64>>());
    assert_eq!(history[0].old_value, None);
    // Each entry's old value is the previous entry's new value: no write was lost.
    for pair in history.windows(2) {
        assert_eq!(pair[1].old_value, pair[0].new_value);
    }
    let written: BTreeSet<String> = history
        .iter()
        .map(|h| h.new_value.clone().expect("a value"))
        .collect();
    assert_eq!(written.len(), 100, "every request wrote once");
    let last = history[99].new_value.as_deref().expect("a value");
    assert_eq!(row["number_value"].as_f64(), last.parse::<f64>().ok());
}

async fn two_hundred_concurrent_assignments_to_distinct_users_all_succeed(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let group = org.create_group("vip", "vip", "define", "cat").await;
    let users: Vec<String> = (0..200).map(|i| format!("user-{i:03}")).collect();
    let mut registering = JoinSet::new();
    for user in &users {
        let (org, user) = (org.clone(), user.clone());
        registering.spawn(async move { org.create_user(&user).await });
    }
    while let Some(joined) = registering.join_next().await {
        joined.expect("registered");
    }
    let mut tasks = JoinSet::new();
    for (i, user) in users.iter().enumerate() {
        let (org, group, user) = (org.clone(), group.clone(), user.clone());
        let value = if i % 2 == 0 { "True" } else { "False" };
        tasks.spawn(async move { (user.clone(), org.assign_answer(&group, &user, value).await) });
    }
    let mut entity_ids = BTreeSet::new();
    while let Some(joined) = tasks.join_next().await {
        let (user, answer) = joined.expect("the task ran");
        let data = success(&answer);
        assert!(is_hex_id(data), "{user}: {data}");
        entity_ids.insert(data.as_str().expect("id").to_owned());
    }
    assert_eq!(entity_ids.len(), 200, "one assignment per user");
    for (i, user) in users.iter().enumerate() {
        let tags = org.user_tags(user).await;
        assert_eq!(tags["total"], json!(1), "{user}");
        let row = &tags["rows"][0];
        assert_eq!(row["version"], json!(0));
        assert_eq!(row["define_value"], json!(i % 2 == 0), "{user}");
        assert!(entity_ids.contains(row["entity_id"].as_str().expect("id")));
    }
}
