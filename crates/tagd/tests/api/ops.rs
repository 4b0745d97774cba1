//! Operational endpoints (API.md §7), request ids and logs.

use crate::helpers::{serve_postgres_behind_proxy, TestApp};
use serde_json::Value;
use tagd_store_tests::harness;

crate::on_both_backends!(
    healthz_and_readyz_answer_ok_with_the_backend_name,
    metrics_count_requests_per_route_and_status_and_show_pool_gauges,
    openapi_json_is_openapi_3_1_and_lists_every_route,
    every_response_carries_a_request_id_and_a_well_formed_one_is_echoed,
);

async fn healthz_and_readyz_answer_ok_with_the_backend_name(app: &TestApp) {
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.json::<Value>().await.expect("JSON")["status"], "ok");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.expect("JSON");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], app.store.backend());
}

async fn metrics_count_requests_per_route_and_status_and_show_pool_gauges(app: &TestApp) {
    for _ in 0..3 {
        app.get("/healthz").await;
    }
    app.get("/no/such/route").await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.expect("text");
    assert!(
        text.contains(
            "tagd_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 3"
        ),
        "{text}"
    );
    assert!(
        text.contains("route=\"unmatched\",status=\"404\""),
        "unknown paths share one label"
    );
    assert!(text.contains("# TYPE tagd_http_request_duration_seconds histogram"));
    assert!(text.contains("tagd_http_request_duration_seconds_count{method=\"GET\",route=\"/healthz\",status=\"200\"} 3"));
    assert!(text.contains("# TYPE tagd_db_pool_connections gauge"));
    assert!(text.contains(&format!(
        "tagd_db_pool_max_connections{{backend=\"{}\"",
        app.store.backend()
    )));
}

async fn openapi_json_is_openapi_3_1_and_lists_every_route(app: &TestApp) {
    let doc: Value = app.get("/openapi.json").await.json().await.expect("JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/admin/v1/orgs",
        "/admin/v1/orgs/{corp_id}/apps",
        "/admin/v1/orgs/{corp_id}/basic-credentials",
        "/admin/v1/orgs/{corp_id}/users",
        "/admin/v1/orgs/{corp_id}/tag-groups/{entity_id}/lock",
        "/v2/customers/{userId}/changeLabels",
        "/v2/customers/{userId}/labels",
        "/v2/organization/labels",
        "/v2/customers/labels/search",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} is missing from /openapi.json"
        );
    }
    let create_org = &doc["paths"]["/admin/v1/orgs"]["post"];
    for status in ["201", "400", "401"] {
        assert!(
            create_org["responses"].get(status).is_some(),
            "POST /admin/v1/orgs lacks {status}"
        );
    }
    assert!(doc["components"]["securitySchemes"]["admin_token"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["v2_basic"]["scheme"],
        "basic"
    );
    let labels = &doc["paths"]["/v2/organization/labels"];
    assert!(labels["get"].is_object() && labels["post"].is_object());
    let change = &doc["paths"]["/v2/customers/{userId}/changeLabels"]["post"];
    for status in ["200", "400", "401", "404", "500"] {
        assert!(
            change["responses"].get(status).is_some(),
            "changeLabels lacks {status}"
        );
    }
    assert_eq!(change["security"][0]["v2_basic"], serde_json::json!([]));
}

async fn every_response_carries_a_request_id_and_a_well_formed_one_is_echoed(app: &TestApp) {
    let generated = app.get("/healthz").await;
    let id = generated.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(id.len(), 32);
    let echoed = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .expect("sent");
    assert_eq!(echoed.headers()["x-request-id"], "trace-abc-123");
    let hostile = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "evil\" injected")
        .send()
        .await
        .expect("sent");
    assert_ne!(hostile.headers()["x-request-id"], "evil\" injected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_while_healthz_answers_when_postgres_stops() {
    let Ok(url) = std::env::var(harness::POSTGRES_URL_VAR) else {
        eprintln!(
            "{} is not set: PostgreSQL test not run",
            harness::POSTGRES_URL_VAR
        );
        return;
    };
    let (app, proxy) = serve_postgres_behind_proxy(&url).await;
    assert_eq!(app.get("/readyz").await.status(), 200);

    proxy.cut();
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    assert_eq!(
        ready.json::<Value>().await.expect("JSON")["status"],
        "unavailable"
    );
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.stop().await;
}
