//! Body limit, rate limits, failed-login throttle, protected fields, hidden internals.

use super::{assign_body, tags_of, v5_post, v5_world};
use crate::helpers::{config_with_token_ttl, serve_postgres_behind_proxy, TestApp};
use crate::v2::V2Org;
use serde_json::{json, Value};
use tagd_http::HttpConfig;

const ASSIGN: &str = "/api/v5/entity/user/tags/assign";
const GROUP_LIST: &str = "/api/v5/entity/tags/group/list";

crate::on_both_backends!(
    a_body_over_1_mib_gets_413_in_each_dialect_and_other_requests_are_unaffected,
    an_organization_over_its_rate_limit_gets_429_with_headers_and_another_does_not,
    failed_logins_from_one_address_are_throttled,
    unknown_fields_never_change_protected_fields,
    a_request_past_the_timeout_is_cut_short_rolled_back_and_retryable,
);

async fn a_body_over_1_mib_gets_413_in_each_dialect_and_other_requests_are_unaffected(
    app: &TestApp,
) {
    let (org, group) = v5_world(app, "Acme").await;
    let huge = format!(
        r#"{{"corp_id":"{}","tags_group_id":"{group}","user_id":"u1","value":"{}"}}"#,
        org.corp_id,
        "9".repeat(1_100_000)
    );
    let small_body = assign_body(&org, &group, "u1", "1");
    let big_upload = v5_post(app, &org, ASSIGN, &huge, None);
    let small = v5_post(app, &org, ASSIGN, &small_body, None);
    let (big, small) = tokio::join!(big_upload, small);
    assert_eq!(
        (big.status, big.json()["code"].clone()),
        (413, json!(41301))
    );
    assert_eq!(small.status, 200, "a concurrent request is served");
    let keyed = v5_post(app, &org, ASSIGN, &huge, Some("big")).await;
    assert_eq!(
        (keyed.status, keyed.json()["code"].clone()),
        (413, json!(41301))
    );
    assert_eq!(tags_of(&org, "u1").await["rows"][0]["number_value"], 1.0);

    let v2 = V2Org::create(app, "Other", "loyalty", "pw").await;
    v2.customers(app, &["42"]).await;
    let label = "L".repeat(200);
    let entries: Vec<Value> = (0..6000).map(|_| json!({"labelName": label})).collect();
    let answer = v2
        .post("/v2/customers/42/changeLabels", &json!({"add": entries}))
        .await;
    assert_eq!(
        (answer.status, answer.json["errors"][0]["code"].clone()),
        (413, json!(413))
    );
    assert_eq!(app.get("/healthz").await.status(), 200);
}

fn limited() -> HttpConfig {
    HttpConfig {
        rate_limit_per_sec: 1,
        rate_limit_burst: 3,
        ..config_with_token_ttl(7200)
    }
}

async fn an_organization_over_its_rate_limit_gets_429_with_headers_and_another_does_not(
    app: &TestApp,
) {
    let a = app.v5_org("A").await;
    let b = app.v5_org("B").await;
    let server = app.serve_alongside(limited()).await;
    let (a, b) = (a.at(&server.address), b.at(&server.address));
    let list = |org: &crate::helpers::V5Org| {
        format!(
            "{GROUP_LIST}?corp_id={}&category=c&start_index=0&step=10",
            org.corp_id
        )
    };
    for _ in 0..3 {
        assert_eq!(a.get(&list(&a)).await.0, 200);
    }
    let refused = app
        .client
        .get(format!("{}{}", server.address, list(&a)))
        .bearer_auth(&a.token)
        .header("X-APP-ID", &a.app_id)
        .send()
        .await
        .expect("sent");
    assert_eq!(refused.status(), 429);
    let headers = refused.headers().clone();
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(headers["ratelimit-policy"], "\"per-org\";q=3;w=3");
    assert!(headers["ratelimit"]
        .to_str()
        .expect("ascii")
        .starts_with("\"per-org\";r=0;t="));
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(
        (body["code"].clone(), body["data"].clone()),
        (json!(42901), Value::Null)
    );
    assert_eq!(b.get(&list(&b)).await.0, 200, "B has its own budget");

    let v2 = V2Org::create(app, "C", "loyalty-c", "pw").await;
    let v2_url = format!("{}/v2/organization/labels", server.address);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = app
            .client
            .get(&v2_url)
            .header("Authorization", &v2.authorization)
            .send()
            .await
            .expect("sent");
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            let body: Value = r.json().await.expect("JSON");
            assert_eq!(body["errors"][0]["code"], 429);
        }
    }
    assert_eq!(statuses, vec![200, 200, 200, 429]);
    server.stop().await;
}

async fn failed_logins_from_one_address_are_throttled(app: &TestApp) {
    let v2 = V2Org::create(app, "Acme", "loyalty", "pw").await;
    let config = HttpConfig {
        auth_failures_per_minute: 3,
        ..config_with_token_ttl(7200)
    };
    let server = app.serve_alongside(config).await;
    let url = format!("{}/v2/organization/labels", server.address);
    let bad = super::super::v2::basic("loyalty", "wrong");
    for _ in 0..3 {
        let r = app
            .client
            .get(&url)
            .header("Authorization", &bad)
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 401);
    }
    let throttled = app
        .client
        .get(&url)
        .header("Authorization", &v2.authorization)
        .send()
        .await
        .expect("sent");
    assert_eq!(throttled.status(), 429, "even the right password waits");
    assert!(throttled.headers().contains_key("retry-after"));
    assert_eq!(
        app.client
            .get(app.url("/v2/organization/labels"))
            .header("Authorization", &v2.authorization)
            .send()
            .await
            .expect("sent")
            .status(),
        200,
        "the throttle is per server process and address, the main server is unaffected"
    );
    server.stop().await;
}

async fn unknown_fields_never_change_protected_fields(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    let sneaky = json!({"name": "G", "variable_name": "g", "description": "", "attribute": "define",
        "category": "c", "corp_id": org.corp_id, "entity_id": "0123456789abcdef0123456789abcdef",
        "version": 7, "is_locked": true, "is_active": false, "is_auto": true, "is_deleted": true,
        "type": "system", "ctime": "2001-01-01 00:00:00", "calculation_rules": {"x": 1}});
    let (status, created) = org.post("/api/v5/entity/tags/group/create", &sneaky).await;
    assert_eq!(status, 200, "{created}");
    let group = created["data"]["tags_group_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_ne!(group, "0123456789abcdef0123456789abcdef");
    let update = json!({"entity_id": group, "corp_id": org.corp_id, "name": "G2", "variable_name": "g",
        "description": "", "attribute": "define", "category": "c", "is_locked": true, "type": "system",
        "is_active": false, "ctime": "2001-01-01 00:00:00"});
    assert_eq!(
        org.post("/api/v5/entity/tags/group/update", &update)
            .await
            .0,
        200
    );
    let (_, listed) = org
        .get(&format!(
            "{GROUP_LIST}?corp_id={}&category=c&start_index=0&step=10",
            org.corp_id
        ))
        .await;
    let row = &listed["data"]["rows"][0];
    assert_eq!(
        (
            row["version"].clone(),
            row["is_locked"].clone(),
            row["is_active"].clone(),
            row["is_auto"].clone()
        ),
        (json!(1), json!(false), json!(true), json!(false))
    );
    assert_eq!(
        (row["type"].clone(), row["calculation_rules"].clone()),
        (json!("custom"), json!({}))
    );
    assert_ne!(row["ctime"], "2001-01-01 00:00:00");
    let assign = json!({"corp_id": org.corp_id, "tags_group_id": group, "user_id": "u1", "value": "True",
        "version": 9, "source": "import", "executor_id": "someone", "entity_id": "0123456789abcdef0123456789abcdef",
        "is_deleted": true});
    assert_eq!(org.post(ASSIGN, &assign).await.0, 200);
    let tag = &tags_of(&org, "u1").await["rows"][0];
    assert_eq!(
        (
            tag["version"].clone(),
            tag["source"].clone(),
            tag["is_deleted"].clone()
        ),
        (json!(0), json!("open_api"), json!(false))
    );
    assert_eq!(tag["executor_id"], org.app_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_503_without_internals() {
    let Ok(url) = std::env::var(tagd_store_tests::harness::POSTGRES_URL_VAR) else {
        return;
    };
    let (app, proxy) = serve_postgres_behind_proxy(&url).await;
    let (org, group) = v5_world(&app, "Acme").await;
    proxy.cut();
    let answer = v5_post(
        &app,
        &org,
        ASSIGN,
        &assign_body(&org, &group, "u1", "1"),
        None,
    )
    .await;
    assert_eq!(
        (answer.status, answer.json()["code"].clone()),
        (503, json!(50001)),
        "{}",
        answer.text
    );
    assert_eq!(
        answer.headers.get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..]),
        "a client is told to retry"
    );
    let text = answer.text.to_lowercase();
    for leak in [
        "sqlx",
        "pool",
        "connection",
        "postgres",
        "tcp",
        "error returned from database",
    ] {
        assert!(
            !text.contains(leak),
            "the answer leaks {leak}: {}",
            answer.text
        );
    }
    let v2 = app
        .client
        .get(app.url("/v2/organization/labels"))
        .header("Authorization", "Basic eDp5")
        .send()
        .await
        .expect("sent");
    assert_eq!(v2.status().as_u16(), 503);
    assert!(v2.headers().contains_key("retry-after"));
    let v2_text = v2.text().await.expect("body").to_lowercase();
    assert!(
        !v2_text.contains("sqlx") && !v2_text.contains("pool"),
        "{v2_text}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_mid_request_answers_503_and_changes_nothing() {
    use sqlx::Connection;
    let Ok(url) = std::env::var(tagd_store_tests::harness::POSTGRES_URL_VAR) else {
        return;
    };
    let (app, proxy) = serve_postgres_behind_proxy(&url).await;
    let (org, group) = v5_world(&app, "Acme").await;
    // Another session, straight to PostgreSQL, locks the table: tagd's write waits on it.
    let mut direct = url::Url::parse(app.database_url()).expect("URL");
    let port = url::Url::parse(&url)
        .ok()
        .and_then(|u| u.port())
        .unwrap_or(5432);
    direct.set_port(Some(port)).expect("port");
    let mut holder = sqlx::PgConnection::connect(direct.as_str())
        .await
        .expect("direct session");
    for statement in [
        "BEGIN",
        "LOCK TABLE tag_assignments IN ACCESS EXCLUSIVE MODE",
    ] {
        sqlx::query(statement)
            .execute(&mut holder)
            .await
            .expect(statement);
    }
    let holder_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut holder)
        .await
        .expect("pid");
    let body = assign_body(&org, &group, "u1", "1");
    let write = {
        let (client, url) = (app.client.clone(), app.url(ASSIGN));
        let (token, app_id, body) = (org.token.clone(), org.app_id.clone(), body.clone());
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .header("X-APP-ID", app_id)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("sent")
        })
    };
    let mut waiting = false;
    for _ in 0..300 {
        let blocked: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
        )
        .bind(holder_pid)
        .fetch_one(&mut holder)
        .await
        .expect("activity");
        if blocked > 0 {
            waiting = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(waiting, "the write never waited for the lock");
    proxy.drop_connections();
    let answer = write.await.expect("the request ran");
    assert_eq!(answer.status(), 503);
    assert_eq!(
        answer.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    let answer: Value = answer.json().await.expect("JSON");
    assert_eq!(answer["code"], 50001);
    let message = answer["msg"].as_str().expect("msg");
    assert!(message.contains("nothing was changed"), "{message}");
    sqlx::query("ROLLBACK")
        .execute(&mut holder)
        .await
        .expect("released");
    assert_eq!(tags_of(&org, "u1").await["total"], 0, "not applied");
    let retry = v5_post(&app, &org, ASSIGN, &body, None).await;
    assert_eq!(retry.status, 200, "{}", retry.text);
    assert_eq!(tags_of(&org, "u1").await["total"], 1);
    app.stop().await;
}

/// Holds the database's write lock from another connection until dropped.
enum WriteLock {
    Sqlite { _held: sqlx::SqliteConnection },
    Postgres { _held: sqlx::PgConnection },
}

async fn hold_write_lock(url: &str) -> WriteLock {
    use sqlx::Connection;
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url)
            .await
            .expect("SQLite opens");
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut conn)
            .await
            .expect("write lock");
        WriteLock::Sqlite { _held: conn }
    } else {
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .expect("PostgreSQL connects");
        sqlx::query("BEGIN")
            .execute(&mut conn)
            .await
            .expect("begin");
        sqlx::query("LOCK TABLE tag_assignments IN ACCESS EXCLUSIVE MODE")
            .execute(&mut conn)
            .await
            .expect("table lock");
        WriteLock::Postgres { _held: conn }
    }
}

async fn a_request_past_the_timeout_is_cut_short_rolled_back_and_retryable(app: &TestApp) {
    let (org, group) = v5_world(app, "Acme").await;
    let config = HttpConfig {
        request_timeout_secs: 1,
        ..config_with_token_ttl(7200)
    };
    let server = app.serve_alongside(config).await;
    let slow = org.at(&server.address);
    let body = assign_body(&org, &group, "u1", "7");
    let lock = hold_write_lock(app.database_url()).await;
    let keyed = app
        .client
        .post(format!("{}{ASSIGN}", server.address))
        .bearer_auth(&slow.token)
        .header("X-APP-ID", &slow.app_id)
        .header("content-type", "application/json")
        .header("Idempotency-Key", "slow-1")
        .body(body.clone())
        .send()
        .await
        .expect("sent");
    assert_eq!(keyed.status(), 503);
    let answer: Value = keyed.json().await.expect("JSON");
    assert_eq!(
        (answer["code"].clone(), answer["data"].clone()),
        (json!(50001), Value::Null)
    );
    drop(lock);
    assert_eq!(tags_of(&org, "u1").await["total"], 0, "rolled back");
    let retry = v5_post(app, &org, ASSIGN, &body, Some("slow-1")).await;
    assert_eq!(retry.status, 200, "the key was released: {}", retry.text);
    assert!(retry.headers.get("idempotent-replayed").is_none());
    assert_eq!(tags_of(&org, "u1").await["total"], 1);
    server.stop().await;
}
