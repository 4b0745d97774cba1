//! Saved segments over HTTP (API.md §10): create, list, get with its count, query by id,
//! references without cycles, unique names, stale updates, a user's segments, tenancy, and
//! the same answers from a server without the index.

use super::segments::{customers, query, users, vip_not_churned_scoring_40, QUERY};
use super::*;
use crate::helpers::{config_with_token_ttl, TestApp};
use tagd_http::HttpConfig;

crate::on_both_backends!(
    a_saved_segment_is_listed_counted_and_queried_by_its_id,
    segments_may_name_segments_but_never_in_a_cycle,
    names_are_unique_and_a_stale_update_is_refused,
    a_refused_save_changes_nothing,
    a_users_segments_follow_the_writes_that_move_them,
    a_server_without_the_index_counts_and_places_users_the_same,
    another_organizations_segments_answer_exactly_like_segments_that_do_not_exist,
);

const CREATE: &str = "/api/v5/segments/create";
const UPDATE: &str = "/api/v5/segments/update";
const DELETE: &str = "/api/v5/segments/delete";

async fn save(org: &V5Org, name: &str, filter: Value) -> String {
    let body = json!({"corp_id": org.corp_id, "name": name, "description": "", "filter": filter});
    success(&org.post(CREATE, &body).await)["segment_id"]
        .as_str()
        .expect("segment_id")
        .to_owned()
}

async fn get(org: &V5Org, id: &str) -> V5Answer {
    org.get(&format!(
        "/api/v5/segments/get?corp_id={}&segment_id={id}",
        org.corp_id
    ))
    .await
}

async fn list(org: &V5Org) -> Value {
    let path = format!(
        "/api/v5/segments/list?corp_id={}&start_index=0&step=100",
        org.corp_id
    );
    success(&org.get(&path).await).clone()
}

async fn segments_of(org: &V5Org, user: &str) -> Vec<String> {
    let path = format!(
        "/api/v5/user/segments?corp_id={}&user_id={user}",
        org.corp_id
    );
    success(&org.get(&path).await)["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["name"].as_str().expect("name").to_owned())
        .collect()
}

async fn a_saved_segment_is_listed_counted_and_queried_by_its_id(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    customers(app, &org).await;
    let loyal = save(&org, "Loyal", vip_not_churned_scoring_40()).await;
    let listed = list(&org).await;
    assert_eq!(listed["total"], json!(1));
    let row = &listed["rows"][0];
    assert_eq!(
        (&row["segment_id"], &row["name"]),
        (&json!(loyal), &json!("Loyal"))
    );
    assert_eq!(
        (&row["filter"], &row["version"]),
        (&vip_not_churned_scoring_40(), &json!(0))
    );
    assert_eq!(success(&get(&org, &loyal).await)["count"], json!(2));
    let by_id = query(&org, json!({"segment_id": loyal})).await;
    assert_eq!(users(success(&by_id)), ["u4", "u8"]);
    assert_eq!(segments_of(&org, "u4").await, ["Loyal"]);
    assert!(segments_of(&org, "u0").await.is_empty());
    refused(
        &org.get(&format!(
            "/api/v5/user/segments?corp_id={}&user_id=nobody",
            org.corp_id
        ))
        .await,
        404,
        40402,
    );
}

async fn segments_may_name_segments_but_never_in_a_cycle(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    customers(app, &org).await;
    let vip = save(&org, "VIP", json!({"tag": "vip"})).await;
    let rich = json!({"all": [{"segment": vip}, {"tag": "score", "op": "gte", "value": 40}]});
    let rich_vip = save(&org, "Rich VIP", rich.clone()).await;
    assert_eq!(
        users(success(&query(&org, json!({"segment_id": rich_vip})).await)),
        ["u4", "u6", "u8"]
    );
    // VIP naming Rich VIP would close a loop.
    let looped = json!({"corp_id": org.corp_id, "segment_id": vip, "name": "VIP",
        "filter": {"any": [{"tag": "vip"}, {"segment": rich_vip}]}});
    let message = refused(&org.post(UPDATE, &looped).await, 400, 40007);
    assert!(message.contains(&vip), "{message}");
    let self_loop = json!({"corp_id": org.corp_id, "name": "Self", "filter": {"segment": "0123456789abcdef0123456789abcdef"}});
    refused(&org.post(CREATE, &self_loop).await, 404, 40403);
    let message = refused(
        &org.post(DELETE, &json!({"corp_id": org.corp_id, "segment_id": vip}))
            .await,
        409,
        40904,
    );
    assert!(message.contains(&rich_vip), "{message}");
    success(
        &org.post(
            DELETE,
            &json!({"corp_id": org.corp_id, "segment_id": rich_vip}),
        )
        .await,
    );
    success(
        &org.post(DELETE, &json!({"corp_id": org.corp_id, "segment_id": vip}))
            .await,
    );
    refused(&get(&org, &vip).await, 404, 40403);
    assert_eq!(list(&org).await["total"], json!(0));
}

async fn names_are_unique_and_a_stale_update_is_refused(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    customers(app, &org).await;
    let id = save(&org, "VIP", json!({"tag": "vip"})).await;
    let again = json!({"corp_id": org.corp_id, "name": "VIP", "filter": {"tag": "churned"}});
    refused(&org.post(CREATE, &again).await, 409, 40901);
    let mut update = json!({"corp_id": org.corp_id, "segment_id": id, "name": "VIPs",
        "filter": {"tag": "vip", "op": "exists"}, "version": 3});
    refused(&org.post(UPDATE, &update).await, 409, 40902);
    update["version"] = json!(0);
    let saved = success(&org.post(UPDATE, &update).await).clone();
    assert_eq!(
        (&saved["name"], &saved["version"]),
        (&json!("VIPs"), &json!(1))
    );
    assert_eq!(success(&get(&org, &id).await)["count"], json!(5));
}

async fn a_refused_save_changes_nothing(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    customers(app, &org).await;
    let cases = [
        (json!({"name": "A", "filter": {"tag": "gold"}}), 404, 40401),
        (
            json!({"name": "A", "filter": {"tag": "vip", "op": "gt", "value": true}}),
            400,
            40006,
        ),
        (json!({"name": " ", "filter": {"tag": "vip"}}), 400, 40001),
        (
            json!({"name": "A", "filter": {"tag": "vip"}, "description": "x".repeat(1025)}),
            400,
            40001,
        ),
    ];
    for (mut body, status, code) in cases {
        body["corp_id"] = json!(org.corp_id);
        refused(&org.post(CREATE, &body).await, status, code);
    }
    assert_eq!(list(&org).await["total"], json!(0));
}

async fn a_users_segments_follow_the_writes_that_move_them(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let (_, groups) = customers(app, &org).await;
    save(&org, "Loyal", vip_not_churned_scoring_40()).await;
    save(
        &org,
        "Gold tier",
        json!({"tag": "tier", "op": "prefix", "value": "gold"}),
    )
    .await;
    assert_eq!(segments_of(&org, "u4").await, ["Loyal", "Gold tier"]);
    org.assign(&groups[1], "u4", "True").await;
    assert_eq!(segments_of(&org, "u4").await, ["Gold tier"]);
    org.assign(&groups[3], "u4", "silver").await;
    assert!(segments_of(&org, "u4").await.is_empty());
}

async fn a_server_without_the_index_counts_and_places_users_the_same(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    customers(app, &org).await;
    let loyal = save(&org, "Loyal", vip_not_churned_scoring_40()).await;
    let not_loyal = save(&org, "Not loyal", json!({"not": {"segment": loyal}})).await;
    let without = HttpConfig {
        index_memory_mb: 0,
        ..config_with_token_ttl(7200)
    };
    let server = app.serve_other_server(without).await;
    let sql = org.at(&server.address);
    for id in [&loyal, &not_loyal] {
        assert_eq!(
            success(&get(&org, id).await)["count"],
            success(&get(&sql, id).await)["count"]
        );
    }
    for i in 0..10 {
        let user = format!("u{i}");
        assert_eq!(
            segments_of(&org, &user).await,
            segments_of(&sql, &user).await,
            "{user}"
        );
    }
}

async fn another_organizations_segments_answer_exactly_like_segments_that_do_not_exist(
    app: &TestApp,
) {
    let a = app.v5_org("Acme").await;
    customers(app, &a).await;
    let theirs = save(&a, "Loyal", vip_not_churned_scoring_40()).await;
    let b = app.v5_org("Bravo").await;
    b.create_group("VIP", "vip", "define", "c").await;
    b.create_user("u4").await;
    let nobodys = "0123456789abcdef0123456789abcdef";
    let same = |x: String, y: String| assert_eq!(x.replace(&theirs, "X"), y.replace(nobodys, "X"));
    same(
        refused(&get(&b, &theirs).await, 404, 40403),
        refused(&get(&b, nobodys).await, 404, 40403),
    );
    let by_id = |id: &str| json!({"segment_id": id});
    same(
        refused(&query(&b, by_id(&theirs)).await, 404, 40403),
        refused(&query(&b, by_id(nobodys)).await, 404, 40403),
    );
    let referring =
        |id: &str| json!({"corp_id": b.corp_id, "name": "Mine", "filter": {"segment": id}});
    same(
        refused(&b.post(CREATE, &referring(&theirs)).await, 404, 40403),
        refused(&b.post(CREATE, &referring(nobodys)).await, 404, 40403),
    );
    for path in [DELETE, UPDATE] {
        let body = |id: &str| json!({"corp_id": b.corp_id, "segment_id": id, "name": "Taken", "filter": {"tag": "vip"}});
        same(
            refused(&b.post(path, &body(&theirs)).await, 404, 40403),
            refused(&b.post(path, &body(nobodys)).await, 404, 40403),
        );
    }
    assert!(segments_of(&b, "u4").await.is_empty());
    assert_eq!(list(&b).await["total"], json!(0));
    // A's segment is untouched.
    assert_eq!(success(&get(&a, &theirs).await)["name"], json!("Loyal"));
    let _ = QUERY;
}
