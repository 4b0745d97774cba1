//! History and the change feed over HTTP (API.md §11): a user's and a group's changes newest
//! first with typed values and cursors, the feed of events in version order with long
//! polling, the limits, and tenancy.

use super::*;

crate::on_both_backends!(
    a_users_history_shows_each_change_newest_first_with_typed_values,
    history_pages_by_cursor_and_refuses_bad_limits_and_cursors,
    a_groups_history_covers_every_user_of_that_group_only,
    the_change_feed_answers_events_in_version_order_after_a_version,
    a_long_poll_of_the_change_feed_answers_the_change_that_arrives,
    another_organizations_history_and_changes_cannot_be_read,
);

fn user_history(org: &V5Org, user: &str, extra: &str) -> String {
    format!(
        "/api/v5/entity/user/tags/history?corp_id={}&user_id={user}{extra}",
        org.corp_id
    )
}

fn changes(org: &V5Org, extra: &str) -> String {
    format!("/api/v5/changes?corp_id={}{extra}", org.corp_id)
}

async fn a_users_history_shows_each_change_newest_first_with_typed_values(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    let spend = org.create_group("Spend", "spend", "number", "crm").await;
    org.assign(&spend, "u1", "10").await;
    org.assign(&spend, "u1", "12.5").await;
    let body = json!({"corp_id": org.corp_id, "tags_group_id": spend, "user_id": "u1"});
    success(&org.post(TAG_REMOVE, &body).await);

    let page = success(&org.get(&user_history(&org, "u1", "")).await).clone();
    let rows = page["rows"].as_array().expect("rows");
    let seen: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r["op"].clone(),
                r["old_value"].clone(),
                r["new_value"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (json!("remove"), json!(12.5), json!(null)),
            (json!("assign"), json!(10.0), json!(12.5)),
            (json!("assign"), json!(null), json!(10.0)),
        ]
    );
    let row = &rows[0];
    assert_eq!(
        (
            &row["tags_group_id"],
            &row["variable_name"],
            &row["user_id"]
        ),
        (&json!(spend), &json!("spend"), &json!("u1"))
    );
    assert_eq!(
        (&row["executor_id"], &row["source"]),
        (&json!(org.app_id), &json!("open_api"))
    );
    assert_eq!(row["time"].as_str().map(str::len), Some(19), "{row}");
    let versions: Vec<i64> = rows
        .iter()
        .map(|r| r["version"].as_i64().expect("version"))
        .collect();
    assert!(versions.windows(2).all(|w| w[0] > w[1]), "{versions:?}");
    assert_eq!(page["next_cursor"], json!(null));
}

async fn history_pages_by_cursor_and_refuses_bad_limits_and_cursors(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    let city = org.create_group("City", "city", "string", "crm").await;
    for name in ["Pune", "Goa", "Agra", "Delhi", "Surat"] {
        org.assign(&city, "u1", name).await;
    }
    let mut cursor = String::new();
    let mut names = Vec::new();
    for _ in 0..3 {
        let page = success(
            &org.get(&user_history(&org, "u1", &format!("&limit=2{cursor}")))
                .await,
        )
        .clone();
        for row in page["rows"].as_array().expect("rows") {
            names.push(row["new_value"].as_str().expect("a string").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(names, ["Surat", "Delhi", "Agra", "Goa", "Pune"]);
    for bad in [
        "&limit=0",
        "&limit=1001",
        "&limit=x",
        "&cursor=abc",
        "&cursor=-3",
    ] {
        refused(&org.get(&user_history(&org, "u1", bad)).await, 400, 40001);
    }
    refused(
        &org.get(&user_history(&org, "nobody", "")).await,
        404,
        40402,
    );
}

async fn a_groups_history_covers_every_user_of_that_group_only(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let vip = org.create_group("VIP", "vip", "define", "crm").await;
    let city = org.create_group("City", "city", "string", "crm").await;
    for user in ["u1", "u2"] {
        org.create_user(user).await;
        org.assign(&vip, user, "True").await;
        org.assign(&city, user, "Pune").await;
    }
    let path = format!(
        "/api/v5/entity/tags/group/history?corp_id={}&tags_group_id={vip}",
        org.corp_id
    );
    let page = success(&org.get(&path).await).clone();
    let rows: Vec<_> = page["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["user_id"].clone(),
                r["variable_name"].clone(),
                r["new_value"].clone(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (json!("u2"), json!("vip"), json!(true)),
            (json!("u1"), json!("vip"), json!(true)),
        ]
    );
    let unknown = format!(
        "/api/v5/entity/tags/group/history?corp_id={}&tags_group_id={}",
        org.corp_id,
        "0".repeat(32)
    );
    refused(&org.get(&unknown).await, 404, 40401);
    let only_city = user_history(&org, "u1", &format!("&tags_group_id={city}"));
    let page = success(&org.get(&only_city).await).clone();
    assert_eq!(page["rows"].as_array().map(Vec::len), Some(1));
}

async fn the_change_feed_answers_events_in_version_order_after_a_version(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let vip = org.create_group("VIP", "vip", "define", "crm").await;
    org.create_user("u1").await;
    org.assign(&vip, "u1", "True").await;
    // On PostgreSQL the feed answers what no running transaction can precede, and the other
    // tests of the run hold transactions open for seconds: read until all three are out.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let page = loop {
        let page = success(&org.get(&changes(&org, "&wait_secs=2")).await).clone();
        let answered = page["rows"].as_array().map_or(0, Vec::len);
        if answered >= 3 || std::time::Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let events = page["rows"].as_array().expect("rows");
    let types: Vec<_> = events.iter().map(|e| e["type"].clone()).collect();
    assert_eq!(
        types,
        [
            json!("group.created"),
            json!("user.created"),
            json!("tag.assigned")
        ]
    );
    let last = events.last().expect("an event");
    assert_eq!(page["version"], last["version"]);
    assert_eq!(
        (
            &last["corp_id"],
            &last["data"]["user_id"],
            &last["data"]["define_value"]
        ),
        (&json!(org.corp_id), &json!("u1"), &json!(true))
    );
    assert_eq!(last["data"]["old_value"], json!(null));
    let ids: std::collections::HashSet<&str> = events
        .iter()
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids
        .iter()
        .all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())));
    let versions: Vec<i64> = events
        .iter()
        .map(|e| e["version"].as_i64().expect("version"))
        .collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");

    // After the last version: nothing, and the version stays.
    let after = versions[2];
    let none = success(
        &org.get(&changes(&org, &format!("&after_version={after}")))
            .await,
    )
    .clone();
    assert_eq!(
        (none["rows"].clone(), none["version"].clone()),
        (json!([]), json!(after))
    );
    // The same entry is the same event when read again.
    let again = success(
        &org.get(&changes(&org, &format!("&after_version={}", versions[1])))
            .await,
    )
    .clone();
    assert_eq!(again["rows"][0]["id"], last["id"]);
    let one = success(&org.get(&changes(&org, "&limit=1")).await).clone();
    assert_eq!(one["rows"].as_array().map(Vec::len), Some(1));
    for bad in [
        "&limit=0",
        "&limit=1001",
        "&wait_secs=31",
        "&wait_secs=-1",
        "&after_version=-1",
    ] {
        refused(&org.get(&changes(&org, bad)).await, 400, 40001);
    }
}

async fn a_long_poll_of_the_change_feed_answers_the_change_that_arrives(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let vip = org.create_group("VIP", "vip", "define", "crm").await;
    org.create_user("u1").await;
    // The head once the registration is readable (on PostgreSQL the feed stops below
    // transactions still running, such as other tests' writes, until they end).
    let head = loop {
        let page = success(&org.get(&changes(&org, "&wait_secs=5")).await).clone();
        let types: Vec<&Value> = page["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|e| &e["type"])
            .collect();
        if types.contains(&&json!("user.created")) {
            break page["version"].clone();
        }
    };
    let poll = {
        let (org, head) = (org.clone(), head.clone());
        tokio::spawn(async move {
            let path = changes(&org, &format!("&after_version={head}&wait_secs=20"));
            org.get(&path).await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    org.assign(&vip, "u1", "True").await;
    let answer = poll.await.expect("the poll ran");
    let page = success(&answer);
    assert_eq!(page["rows"][0]["type"], json!("tag.assigned"), "{page}");
    assert!(page["version"].as_i64() > head.as_i64());
}

async fn another_organizations_history_and_changes_cannot_be_read(app: &TestApp) {
    let acme = app.v5_org("Acme").await;
    let globex = app.v5_org("Globex").await;
    acme.create_user("u1").await;
    let vip = acme.create_group("VIP", "vip", "define", "crm").await;
    acme.assign(&vip, "u1", "True").await;
    // Globex's token naming Acme's corp_id is refused.
    let spoofed = globex.with_auth(&globex.token, &globex.app_id);
    let mut as_acme = spoofed.clone();
    as_acme.corp_id = acme.corp_id.clone();
    refused(&as_acme.get(&changes(&as_acme, "")).await, 403, 40301);
    refused(
        &as_acme.get(&user_history(&as_acme, "u1", "")).await,
        403,
        40301,
    );
    // In its own organization, Acme's user and group do not exist.
    refused(
        &globex.get(&user_history(&globex, "u1", "")).await,
        404,
        40402,
    );
    let path = format!(
        "/api/v5/entity/tags/group/history?corp_id={}&tags_group_id={vip}",
        globex.corp_id
    );
    refused(&globex.get(&path).await, 404, 40401);
    let feed = success(&globex.get(&changes(&globex, "")).await).clone();
    assert_eq!(feed["rows"], json!([]), "Globex has made no change");
}
