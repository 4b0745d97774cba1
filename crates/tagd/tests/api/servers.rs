//! Several tagd servers over one database (API.md §3.6): a write taken by one server shows on
//! another at once with `min_version`, and without it within two seconds, including after the
//! other server has loaded the organization into its index.

use crate::helpers::{config_with_token_ttl, TestApp, V5Org};
use crate::v5::{success, TAG_ASSIGN, TAG_LIST};
use crate::versions::v5_post;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tagd_core::bulk::{GroupRef, ImportAssignment, ImportRow};
use tagd_core::{CorpId, Executor, ExternalId, UserId};
use tagd_http::HttpConfig;

crate::on_both_backends!(
    a_write_on_one_server_shows_on_another_with_min_version_at_once_and_without_within_two_seconds,
    an_organization_over_the_index_memory_budget_is_served_from_the_database,
);

/// How long another server may take to show a write without `min_version`: 2 s, as promised.
/// On PostgreSQL a follower waits for the oldest transaction running in the whole cluster
/// (docs/DECISIONS.md), and the other tests of this run share it, holding transactions of
/// their own open for seconds (the request-timeout tests): there the test allows 15 s.
fn follow_deadline(app: &TestApp) -> Duration {
    if app.database_url().starts_with("postgres") {
        Duration::from_secs(15)
    } else {
        Duration::from_secs(2)
    }
}

/// Assigns `value` through `server`; answers the write's `X-Tagd-Version`.
async fn assign(app: &TestApp, server: &V5Org, group: &str, value: &str) -> i64 {
    let body = json!({"corp_id": server.corp_id, "tags_group_id": group, "user_id": "u1",
        "value": value});
    let (version, answer) = v5_post(app, server, TAG_ASSIGN, body).await;
    assert_eq!(answer["code"], 0, "{answer}");
    version.expect("a version")
}

/// The value of u1's only tag as `server` lists it.
async fn listed(server: &V5Org, min_version: Option<i64>) -> Value {
    let mut path = format!("{TAG_LIST}?corp_id={}&user_id=u1", server.corp_id);
    if let Some(version) = min_version {
        path.push_str(&format!("&min_version={version}"));
    }
    let data = success(&server.get(&path).await).clone();
    data["rows"][0]["number_value"].clone()
}

/// Waits until `address`'s `/metrics` shows `line`.
async fn metrics_show(app: &TestApp, address: &str, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = app
            .client
            .get(format!("{address}/metrics"))
            .send()
            .await
            .expect("sent")
            .text()
            .await
            .expect("text");
        if metrics.lines().any(|l| l == line) {
            return;
        }
        assert!(Instant::now() < deadline, "never {line}:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_write_on_one_server_shows_on_another_with_min_version_at_once_and_without_within_two_seconds(
    app: &TestApp,
) {
    let a = app.v5_org("Acme").await;
    a.create_user("u1").await;
    let group = a.create_group("spend", "spend", "number", "c").await;
    let other = app.serve_other_server(config_with_token_ttl(7200)).await;
    let b = a.at(&other.address);
    let first = assign(app, &a, &group, "1").await;
    assert_eq!(
        listed(&b, Some(first)).await,
        json!(1.0),
        "min_version reads the write"
    );
    metrics_show(app, &other.address, "tagd_index_organizations_loaded 1").await;

    for value in 2..6 {
        let version = assign(app, &a, &group, &value.to_string()).await;
        assert_eq!(listed(&b, Some(version)).await, json!(f64::from(value)));

        let later = value * 10;
        assign(app, &a, &group, &later.to_string()).await;
        let deadline = Instant::now() + follow_deadline(app);
        while listed(&b, None).await != json!(f64::from(later)) {
            assert!(Instant::now() < deadline, "{later} not shown in time");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        // And the other way round: B's write shows on B at once, and on A with min_version.
        let own = value * 100;
        let version = assign(app, &b, &group, &own.to_string()).await;
        assert_eq!(
            listed(&b, None).await,
            json!(f64::from(own)),
            "read-your-writes"
        );
        assert_eq!(listed(&a, Some(version)).await, json!(f64::from(own)));
    }
}

async fn an_organization_over_the_index_memory_budget_is_served_from_the_database(app: &TestApp) {
    let a = app.v5_org("Acme").await;
    let group = a.create_group("spend", "spend", "number", "c").await;
    let corp_id = CorpId::parse("corp_id", &a.corp_id).expect("corp id");
    let org = app
        .store
        .find_org_by_corp_id(&corp_id)
        .await
        .expect("org")
        .expect("found");
    // 20,000 assignments take about 3 MiB in the index: over a budget of 1 MiB.
    let rows: Vec<ImportRow> = (0..20_000)
        .map(|i| ImportRow {
            user_id: UserId::parse(&format!("u{i}")).expect("user id"),
            assignment: Some(ImportAssignment {
                group: GroupRef::Id(ExternalId::parse("group", &group).expect("id")),
                raw_value: i.to_string(),
            }),
        })
        .collect();
    app.store
        .import_batch(org.id, &rows, &Executor::operator())
        .await
        .expect("imported");
    let small = HttpConfig {
        index_memory_mb: 1,
        ..config_with_token_ttl(7200)
    };
    let server = app.serve_other_server(small).await;
    let b = a.at(&server.address);
    let path = format!("{TAG_LIST}?corp_id={}&user_id=u1", a.corp_id);
    assert_eq!(
        success(&b.get(&path).await)["rows"][0]["number_value"],
        json!(1.0)
    );
    metrics_show(app, &server.address, "tagd_index_organizations_too_large 1").await;
    metrics_show(app, &server.address, "tagd_index_organizations_loaded 0").await;
    // Still answered, from the database, and current.
    b.assign(&group, "u1", "7").await;
    assert_eq!(
        success(&b.get(&path).await)["rows"][0]["number_value"],
        json!(7.0)
    );
}
