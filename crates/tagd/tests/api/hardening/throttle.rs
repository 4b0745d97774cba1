//! Security round 2 (issue 10): what an unauthenticated client can make the server hold or
//! spend. Made-up methods cannot grow `/metrics`; failed logins are counted before they are
//! verified, per address and per user name or app; admin failures are throttled too; the
//! client address comes from `X-Forwarded-For` only through a trusted proxy.

use crate::helpers::{config_with_token_ttl, TestApp, ADMIN_TOKEN};
use crate::on_both_backends;
use crate::v2::{basic, V2Org};
use serde_json::json;
use std::collections::BTreeSet;
use tagd_http::HttpConfig;

on_both_backends!(
    made_up_methods_leave_the_metrics_series_unchanged,
    concurrent_bad_logins_from_one_address_verify_at_most_the_allowance,
    a_user_name_under_attack_from_many_addresses_is_throttled_and_known_good_clients_go_on,
    wrong_app_secrets_end_in_429,
    wrong_secrets_for_one_app_from_rotating_addresses_end_in_429,
    failed_admin_logins_are_throttled,
    forwarded_addresses_count_only_behind_a_trusted_proxy,
);

/// The metric series (every line but comments, without its value).
async fn series(app: &TestApp) -> BTreeSet<String> {
    let text = app.get("/metrics").await.text().await.expect("metrics");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' ').map(|(name, _)| name.to_owned()))
        .filter(|name| !name.contains("route=\"/metrics\""))
        .collect()
}

async fn made_up_methods_leave_the_metrics_series_unchanged(app: &TestApp) {
    let send = |method: String| {
        let request = app
            .client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("a method token"),
                app.url("/healthz"),
            )
            .send();
        async move { request.await.expect("sent").status().as_u16() }
    };
    assert_eq!(send("FIRSTMADEUP".into()).await, 405);
    let before = series(app).await;
    let size_before = app.get("/metrics").await.text().await.expect("text").len();
    for i in 0..400 {
        let status = send(format!("M{i}{}", "X".repeat(200))).await;
        assert_eq!(status, 405);
    }
    assert_eq!(series(app).await, before, "no new series for new methods");
    let size_after = app.get("/metrics").await.text().await.expect("text").len();
    assert!(
        size_after <= size_before + 64,
        "only counters grew: {size_before} -> {size_after} bytes"
    );
    let text = app.get("/metrics").await.text().await.expect("text");
    assert!(text.contains("method=\"other\",route=\"/healthz\",status=\"405\"} 401"));
}

async fn concurrent_bad_logins_from_one_address_verify_at_most_the_allowance(app: &TestApp) {
    V2Org::create(app, "Acme", "loyalty", "right").await;
    let config = HttpConfig {
        auth_failures_per_minute: 20,
        password_verify_queue: 200,
        ..config_with_token_ttl(7200)
    };
    let server = app.serve_alongside(config).await;
    let url = format!("{}/v2/organization/labels", server.address);
    let attempts: Vec<_> = (0..150)
        .map(|i| {
            let request = app
                .client
                .get(&url)
                .header("Authorization", basic("loyalty", &format!("wrong{i}")))
                .send();
            tokio::spawn(async move { request.await.expect("sent").status().as_u16() })
        })
        .collect();
    let (mut verified, mut throttled) = (0, 0);
    for attempt in attempts {
        match attempt.await.expect("task") {
            401 => verified += 1,
            429 => throttled += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        verified <= 20,
        "{verified} verifications ran, the allowance is 20"
    );
    assert_eq!(verified + throttled, 150);
    server.stop().await;
}

async fn a_user_name_under_attack_from_many_addresses_is_throttled_and_known_good_clients_go_on(
    app: &TestApp,
) {
    let v2 = V2Org::create(app, "Acme", "loyalty", "right").await;
    let config = HttpConfig {
        auth_failures_per_minute: 3,
        trusted_proxies: vec!["127.0.0.1/32".parse().expect("cidr")],
        ..config_with_token_ttl(7200)
    };
    let server = app.serve_alongside(config).await;
    let url = format!("{}/v2/organization/labels", server.address);
    let get = |authorization: String, client_address: String| {
        let request = app
            .client
            .get(&url)
            .header("Authorization", authorization)
            .header("X-Forwarded-For", client_address)
            .send();
        async move { request.await.expect("sent").status().as_u16() }
    };
    assert_eq!(
        get(v2.authorization.clone(), "10.9.9.9".into()).await,
        200,
        "a client verified before the attack"
    );
    for i in 0..3 {
        assert_eq!(
            get(basic("loyalty", "guess"), format!("10.0.0.{i}")).await,
            401
        );
    }
    assert_eq!(
        get(basic("loyalty", "guess"), "10.0.1.1".into()).await,
        429,
        "a fresh address still runs into the user name's allowance"
    );
    assert_eq!(
        get(v2.authorization.clone(), "10.9.9.9".into()).await,
        200,
        "a credential this server verified keeps working (no verification needed)"
    );
    server.stop().await;
}

async fn wrong_app_secrets_end_in_429(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let mut statuses = Vec::new();
    for _ in 0..90 {
        let response = app
            .client
            .post(app.url("/api/v5/auth/token"))
            .json(&json!({"app_id": org.app_id, "app_secret": "wrong"}))
            .send()
            .await
            .expect("sent");
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
            let body: serde_json::Value = response.json().await.expect("json");
            assert_eq!(body["code"], 42901);
        }
    }
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 60);
    assert_eq!(statuses.last(), Some(&429));
    let right = app
        .client
        .post(app.url("/api/v5/auth/token"))
        .json(&json!({"app_id": org.app_id, "app_secret": org.app_secret}))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        right.status(),
        429,
        "the address and the app are out of tries"
    );
}

async fn wrong_secrets_for_one_app_from_rotating_addresses_end_in_429(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let server = app
        .serve_alongside(HttpConfig {
            auth_failures_per_minute: 5,
            trusted_proxies: vec!["127.0.0.0/8".parse().expect("cidr")],
            ..config_with_token_ttl(7200)
        })
        .await;
    let ask = |secret: &str, client: String| {
        let request = app
            .client
            .post(format!("{}/api/v5/auth/token", server.address))
            .header("X-Forwarded-For", client)
            .json(&json!({"app_id": org.app_id, "app_secret": secret}))
            .send();
        async move { request.await.expect("sent").status().as_u16() }
    };
    for i in 0..5 {
        assert_eq!(ask("wrong", format!("203.0.113.{i}")).await, 401);
    }
    assert_eq!(
        ask("wrong", "203.0.113.99".into()).await,
        429,
        "a new address still runs into the app's allowance"
    );
    let other = app.v5_org("Other").await;
    let unrelated = app
        .client
        .post(format!("{}/api/v5/auth/token", server.address))
        .header("X-Forwarded-For", "203.0.113.100")
        .json(&json!({"app_id": other.app_id, "app_secret": other.app_secret}))
        .send()
        .await
        .expect("sent");
    assert_eq!(unrelated.status(), 200, "another app is not affected");
    server.stop().await;
}

async fn failed_admin_logins_are_throttled(app: &TestApp) {
    let config = HttpConfig {
        auth_failures_per_minute: 5,
        ..config_with_token_ttl(7200)
    };
    let server = app.serve_alongside(config).await;
    let url = format!("{}/admin/v1/orgs", server.address);
    let login = |token: &'static str| {
        let request = app.client.get(&url).bearer_auth(token).send();
        async move { request.await.expect("sent") }
    };
    for _ in 0..5 {
        assert_eq!(login("guess").await.status(), 401);
    }
    let refused = login("guess").await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let right = login(ADMIN_TOKEN).await;
    assert_eq!(
        right.status(),
        429,
        "the address waits whatever token it sends"
    );
    server.stop().await;
}

/// Sends a wrong v2 login as each (user name, `X-Forwarded-For`) of `tries`, in turn, to a
/// server of its own with `config`; returns the statuses.
async fn wrong_logins(app: &TestApp, config: HttpConfig, tries: &[(&str, &str)]) -> Vec<u16> {
    let server = app.serve_alongside(config).await;
    let mut statuses = Vec::new();
    for (user, forwarded) in tries {
        let response = app
            .client
            .get(format!("{}/v2/organization/labels", server.address))
            .header("Authorization", basic(user, "guess"))
            .header("X-Forwarded-For", *forwarded)
            .send()
            .await
            .expect("sent");
        statuses.push(response.status().as_u16());
    }
    server.stop().await;
    statuses
}

async fn forwarded_addresses_count_only_behind_a_trusted_proxy(app: &TestApp) {
    V2Org::create(app, "Acme", "loyalty", "right").await;
    let direct = HttpConfig {
        auth_failures_per_minute: 2,
        ..config_with_token_ttl(7200)
    };
    let behind_proxy = HttpConfig {
        trusted_proxies: vec!["127.0.0.0/8".parse().expect("cidr")],
        ..direct.clone()
    };
    // A new user name each try, so only the address's allowance is at stake.
    let tries = [
        ("n1", "203.0.113.7"),
        ("n2", "203.0.113.7"),
        ("n3", "203.0.113.7"),
        ("n4", "198.51.100.1, 203.0.113.8"),
    ];
    let statuses = wrong_logins(app, behind_proxy, &tries).await;
    assert_eq!(statuses[..3], [401, 401, 429]);
    assert_eq!(
        statuses[3], 401,
        "another client behind the proxy has its own allowance (the last untrusted hop)"
    );

    let tries = [
        ("n1", "198.51.100.1"),
        ("n2", "198.51.100.2"),
        ("n3", "198.51.100.3"),
    ];
    let statuses = wrong_logins(app, direct, &tries).await;
    assert_eq!(statuses[..2], [401, 401]);
    assert_eq!(
        statuses[2], 429,
        "without a trusted proxy a forged X-Forwarded-For changes nothing"
    );
}
