//! Segments over HTTP (API.md §10): exact counts, paging by cursor, the version answered, the
//! errors that name the offending path, and tenancy.

use super::*;
use crate::helpers::{config_with_token_ttl, TestApp};
use crate::versions::v5_post;
use tagd_http::HttpConfig;

crate::on_both_backends!(
    a_query_counts_the_members_exactly_and_pages_them_once_each_in_registration_order,
    a_query_sees_the_write_just_acknowledged,
    a_server_without_the_index_answers_every_query_the_same_from_the_database,
    bad_queries_are_refused_naming_what_is_wrong,
    another_organizations_tags_answer_exactly_like_tags_that_do_not_exist,
    an_export_streams_every_member_once_as_ndjson_or_csv,
);

pub const QUERY: &str = "/api/v5/segments/query";

/// Ten users u0..u9: vip when even, churned when divisible by 3, score 10 × i, tier `gold…`
/// for i < 5 else `silver`.
pub async fn customers(app: &TestApp, org: &V5Org) -> (i64, Vec<String>) {
    let vip = org.create_group("VIP", "vip", "define", "c").await;
    let churned = org.create_group("Churned", "churned", "define", "c").await;
    let score = org.create_group("Score", "score", "number", "c").await;
    let tier = org.create_group("Tier", "tier", "string", "c").await;
    let mut version = 0;
    for i in 0..10 {
        let user = format!("u{i}");
        org.create_user(&user).await;
        if i % 2 == 0 {
            org.assign(&vip, &user, "True").await;
        }
        if i % 3 == 0 {
            org.assign(&churned, &user, "True").await;
        }
        org.assign(&score, &user, &(10 * i).to_string()).await;
        let body = json!({"corp_id": org.corp_id, "tags_group_id": tier, "user_id": user,
            "value": if i < 5 { format!("gold-{i}") } else { "silver".into() }});
        version = v5_post(app, org, TAG_ASSIGN, body)
            .await
            .0
            .expect("a version");
    }
    (version, vec![vip, churned, score, tier])
}

pub async fn query(org: &V5Org, body: Value) -> V5Answer {
    let mut body = body;
    body["corp_id"] = json!(org.corp_id);
    org.post(QUERY, &body).await
}

pub fn users(data: &Value) -> Vec<String> {
    data["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u.as_str().expect("a user id").to_owned())
        .collect()
}

pub fn vip_not_churned_scoring_40() -> Value {
    json!({"all": [{"tag": "vip"}, {"not": {"tag": "churned"}},
        {"tag": "score", "op": "gte", "value": 40}]})
}

async fn a_query_counts_the_members_exactly_and_pages_them_once_each_in_registration_order(
    app: &TestApp,
) {
    let org = app.v5_org("Acme").await;
    customers(app, &org).await;
    // vip: 0 2 4 6 8; not churned drops 0 and 6; score ≥ 40 drops 2.
    let all = query(&org, json!({"filter": vip_not_churned_scoring_40()})).await;
    let data = success(&all);
    assert_eq!(data["count"], json!(2));
    assert_eq!(users(data), ["u4", "u8"]);
    assert_eq!(data["next_cursor"], Value::Null);

    let everyone = json!({"any": [{"tag": "tier", "op": "prefix", "value": "gold"},
        {"tag": "tier", "op": "eq", "value": "silver"}]});
    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let page = query(
            &org,
            json!({"filter": everyone, "limit": 3, "cursor": cursor}),
        )
        .await;
        let data = success(&page).clone();
        assert_eq!(data["count"], json!(10));
        seen.extend(users(&data));
        cursor = data["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    let expected: Vec<String> = (0..10).map(|i| format!("u{i}")).collect();
    assert_eq!(seen, expected);

    let count_only = query(&org, json!({"filter": {"not": {"all": []}}, "limit": 0})).await;
    let data = success(&count_only);
    assert_eq!((data["count"].clone(), users(data).len()), (json!(0), 0));
    let between = json!({"all": [{"tag": "score", "op": "between", "value": [20, "50"]},
        {"tag": "tier", "op": "in", "value": ["gold-2", "silver"]}]});
    assert_eq!(
        users(success(&query(&org, json!({"filter": between})).await)),
        ["u2", "u5"]
    );
}

async fn a_query_sees_the_write_just_acknowledged(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let (version, groups) = customers(app, &org).await;
    let before = query(&org, json!({"filter": vip_not_churned_scoring_40()})).await;
    assert!(success(&before)["version"].as_i64().expect("version") >= version);
    let body = json!({"corp_id": org.corp_id, "tags_group_id": groups[1], "user_id": "u4"});
    let removed = v5_post(app, &org, TAG_REMOVE, body.clone())
        .await
        .0
        .expect("a version");
    let after = query(
        &org,
        json!({"filter": vip_not_churned_scoring_40(), "min_version": removed}),
    );
    let after = after.await;
    let data = success(&after);
    assert_eq!(
        users(data),
        ["u4", "u8"],
        "u4 was not churned: removing it changes nothing"
    );
    let (churned, _) = v5_post(app, &org, TAG_ASSIGN, {
        let mut b = body;
        b["value"] = json!("True");
        b
    })
    .await;
    let churned = churned.expect("a version");
    // At once, without min_version: the server that took the write shows it...
    let now = query(&org, json!({"filter": vip_not_churned_scoring_40()})).await;
    assert_eq!(users(success(&now)), ["u8"]);
    // ...and with it, the answer says it reflects every change up to that version.
    let body = json!({"filter": vip_not_churned_scoring_40(), "min_version": churned});
    let settled = query(&org, body).await;
    let data = success(&settled);
    assert_eq!(users(data), ["u8"]);
    assert!(data["version"].as_i64().expect("version") >= churned);
}

async fn a_server_without_the_index_answers_every_query_the_same_from_the_database(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    customers(app, &org).await;
    let without = HttpConfig {
        index_memory_mb: 0,
        ..config_with_token_ttl(7200)
    };
    let server = app.serve_other_server(without).await;
    let sql = org.at(&server.address);
    let filters = [
        vip_not_churned_scoring_40(),
        json!({"tag": "tier", "op": "lt", "value": "gold-3"}),
        json!({"not": {"tag": "score", "op": "ne", "value": 30}}),
        json!({"any": [{"tag": "churned", "op": "exists"}, {"tag": "vip", "op": "eq", "value": false}]}),
        json!({"tag": "score", "assigned": {"within_days": 1}, "op": "lte", "value": 20}),
    ];
    for filter in filters {
        let memory = query(&org, json!({"filter": filter})).await;
        let database = query(&sql, json!({"filter": filter})).await;
        let (memory, database) = (success(&memory), success(&database));
        assert_eq!(
            (&memory["count"], &memory["users"]),
            (&database["count"], &database["users"]),
            "{filter}"
        );
    }
}

async fn bad_queries_are_refused_naming_what_is_wrong(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    customers(app, &org).await;
    let cases = [
        (
            json!({"filter": {"all": [{"tag": "vip"}, {"tag": "score", "op": "above"}]}}),
            400,
            40006,
            "filter.all[1].op",
        ),
        (
            json!({"filter": {"tag": "score", "op": "gt", "value": "lots"}}),
            400,
            40006,
            "filter.value",
        ),
        (
            json!({"filter": {"tag": "vip", "op": "prefix", "value": "T"}}),
            400,
            40006,
            "filter.op",
        ),
        (
            json!({"filter": {"not": {"not": {"not": {"not": {"not": {"not": {"tag": "vip"}}}}}}}}),
            400,
            40007,
            "filter.not.not.not.not.not.not",
        ),
        (
            json!({"filter": {"any": [{"tag": "vip"}, {"tag": "platinum"}]}}),
            404,
            40401,
            "`platinum`",
        ),
        (
            json!({"segment_id": "0123456789abcdef0123456789abcdef"}),
            404,
            40403,
            "segment",
        ),
        (
            json!({"filter": {"tag": "vip"}, "limit": 10001}),
            400,
            40001,
            "limit",
        ),
        (
            json!({"filter": {"tag": "vip"}, "segment_id": "0123456789abcdef0123456789abcdef"}),
            400,
            40001,
            "segment_id",
        ),
        (
            json!({"filter": {"tag": "vip"}, "cursor": "page-2"}),
            400,
            40001,
            "cursor",
        ),
        (
            json!({"filter": {"tag": "vip"}, "min_version": -1}),
            400,
            40001,
            "min_version",
        ),
    ];
    for (body, status, code, named) in cases {
        let message = refused(&query(&org, body.clone()).await, status, code);
        assert!(message.contains(named), "{body}: {message}");
    }
}

async fn another_organizations_tags_answer_exactly_like_tags_that_do_not_exist(app: &TestApp) {
    let a = app.v5_org("Acme").await;
    let (_, a_groups) = customers(app, &a).await;
    let b = app.v5_org("Bravo").await;
    b.create_user("u1").await;
    let theirs = query(&b, json!({"filter": {"tag": "vip"}})).await;
    let nobodys = query(&b, json!({"filter": {"tag": "viq"}})).await;
    assert_eq!(
        refused(&theirs, 404, 40401),
        refused(&nobodys, 404, 40401).replace("viq", "vip")
    );
    let by_id = query(&b, json!({"filter": {"tags_group_id": a_groups[0]}})).await;
    let unknown = query(
        &b,
        json!({"filter": {"tags_group_id": "0123456789abcdef0123456789abcdef"}}),
    );
    let unknown = unknown.await;
    assert_eq!(
        refused(&by_id, 404, 40401).replace(&a_groups[0], "X"),
        refused(&unknown, 404, 40401).replace("0123456789abcdef0123456789abcdef", "X")
    );
    // B's view of everyone is B's one user, never A's ten.
    let everyone = success(&query(&b, json!({"filter": {"all": []}})).await).clone();
    assert_eq!(
        (everyone["count"].clone(), users(&everyone)),
        (json!(1), vec!["u1".to_owned()])
    );
    // A's corp_id with B's credentials is refused before anything is read.
    let mut body = json!({"filter": {"all": []}});
    body["corp_id"] = json!(a.corp_id);
    refused(&b.post(QUERY, &body).await, 403, 40301);
}

async fn export(app: &TestApp, org: &V5Org, body: Value) -> (u16, String, String) {
    let mut body = body;
    body["corp_id"] = json!(org.corp_id);
    let response = app
        .client
        .post(org.url("/api/v5/segments/export"))
        .bearer_auth(&org.token)
        .header("X-APP-ID", &org.app_id)
        .json(&body)
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, kind, response.text().await.expect("body"))
}

async fn an_export_streams_every_member_once_as_ndjson_or_csv(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    customers(app, &org).await;
    let everyone = json!({"tag": "score", "op": "exists"});
    let (status, kind, body) = export(app, &org, json!({"filter": everyone})).await;
    assert_eq!(
        (status, kind.as_str()),
        (200, "application/x-ndjson"),
        "{body}"
    );
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let expected: Vec<Value> = (0..10)
        .map(|i| json!({"user_id": format!("u{i}")}))
        .collect();
    assert_eq!(lines, expected);
    let filter = vip_not_churned_scoring_40();
    let (status, kind, body) = export(app, &org, json!({"filter": filter, "format": "csv"})).await;
    assert_eq!((status, kind.as_str()), (200, "text/csv; charset=utf-8"));
    assert_eq!(body, "user_id\nu4\nu8\n");
    // Refusals come before the stream starts, as v5 errors; another organization's segment is
    // unknown.
    let (status, _, body) = export(app, &org, json!({"filter": {"tag": "gold"}})).await;
    assert_eq!(
        (
            status,
            serde_json::from_str::<Value>(&body).expect("json")["code"].clone()
        ),
        (404, json!(40401))
    );
    let (status, _, _) = export(app, &org, json!({"filter": everyone, "format": "xml"})).await;
    assert_eq!(status, 400);
    let b = app.v5_org("Bravo").await;
    let body = json!({"corp_id": org.corp_id, "name": "All", "filter": everyone});
    let saved = success(&org.post("/api/v5/segments/create", &body).await)["segment_id"].clone();
    let (status, _, body) = export(app, &b, json!({"segment_id": saved})).await;
    assert_eq!(
        (
            status,
            serde_json::from_str::<Value>(&body).expect("json")["code"].clone()
        ),
        (404, json!(40403))
    );
}
