//! Webhooks over HTTP (API.md §12): endpoints managed with v5 credentials (secret shown
//! once, limits, clear errors, tenancy), and delivery to a real receiver: every change in
//! version order, signed as Standard Webhooks says (checked by a second implementation),
//! retried with the same id until the receiver recovers, 410 disabling, rotation signing
//! with both secrets, retries running out.

use super::*;
use crate::helpers::default_config;
use crate::support::receiver::{signed_by, Receiver};
use std::time::Duration;
use tagd_http::HttpConfig;

crate::on_both_backends!(
    a_webhook_is_created_with_a_secret_shown_once_and_listed_without_it,
    webhook_requests_with_bad_input_are_refused_and_change_nothing,
    an_organization_keeps_at_most_25_webhooks,
    another_organizations_webhooks_cannot_be_seen_changed_or_replayed,
);

/// Deliveries to 127.0.0.1, with retries in fractions of a second.
fn delivering() -> HttpConfig {
    HttpConfig {
        webhook_allow_private: true,
        webhook_retry_schedule: "200ms,200ms,200ms".into(),
        ..default_config()
    }
}

crate::on_both_backends_with!(super::delivering(); delivering_sqlite, delivering_postgres;
    every_change_is_delivered_in_version_order_signed_as_standard_webhooks_says,
    a_failing_receiver_gets_the_same_event_again_until_it_recovers_then_the_rest_in_order,
    an_endpoint_answering_410_is_disabled_and_a_replay_resumes_it,
    after_a_rotation_deliveries_carry_both_signatures,
    when_the_retries_run_out_the_endpoint_is_disabled_with_its_position_kept,
    users_moving_in_and_out_of_a_saved_segment_are_announced_once_each_in_order,
);

const CREATE: &str = "/api/v5/webhooks/create";
const UPDATE: &str = "/api/v5/webhooks/update";
const DELETE: &str = "/api/v5/webhooks/delete";
const ROTATE: &str = "/api/v5/webhooks/rotate_secret";
const REPLAY: &str = "/api/v5/webhooks/replay";

fn list(org: &V5Org) -> String {
    format!("/api/v5/webhooks/list?corp_id={}", org.corp_id)
}

fn deliveries(org: &V5Org, id: &str) -> String {
    format!(
        "/api/v5/webhooks/deliveries?corp_id={}&webhook_id={id}",
        org.corp_id
    )
}

/// Creates an endpoint: (webhook_id, secret).
async fn create(org: &V5Org, url: &str, types: &[&str]) -> (String, String) {
    let body = json!({"corp_id": org.corp_id, "url": url, "event_types": types});
    let data = success(&org.post(CREATE, &body).await).clone();
    (
        data["webhook_id"].as_str().expect("id").to_owned(),
        data["secret"].as_str().expect("secret").to_owned(),
    )
}

fn code(answer: &V5Answer) -> (u16, i64) {
    (answer.0, answer.1["code"].as_i64().unwrap_or(-1))
}

async fn a_webhook_is_created_with_a_secret_shown_once_and_listed_without_it(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let (id, secret) = create(&org, "https://hooks.example.com/tagd", &["tag.assigned"]).await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    let listed = success(&org.get(&list(&org)).await).clone();
    let rows = listed["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row["webhook_id"], json!(id));
    assert_eq!(row["url"], json!("https://hooks.example.com/tagd"));
    assert_eq!(row["event_types"], json!(["tag.assigned"]));
    assert_eq!(row["enabled"], json!(true));
    assert!(
        !listed.to_string().contains(&secret),
        "no secret in the list"
    );

    let body = json!({"corp_id": org.corp_id, "webhook_id": id, "event_types": [],
                      "description": "all events"});
    let updated = success(&org.post(UPDATE, &body).await).clone();
    assert_eq!(updated["event_types"], json!([]));
    assert_eq!(updated["description"], json!("all events"));
    assert_eq!(
        updated["url"],
        json!("https://hooks.example.com/tagd"),
        "kept"
    );

    let body = json!({"corp_id": org.corp_id, "webhook_id": id});
    success(&org.post(DELETE, &body).await);
    let listed = success(&org.get(&list(&org)).await).clone();
    assert_eq!(listed["rows"], json!([]));
    assert_eq!(code(&org.post(DELETE, &body).await), (404, 40404));
}

async fn webhook_requests_with_bad_input_are_refused_and_change_nothing(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let refused = [
        (json!({"url": "ftp://example.com/"}), "url"),
        (json!({"url": "not a url"}), "url"),
        (json!({"url": "http://127.0.0.1:9/hook"}), "url"),
        (json!({"url": "http://localhost/hook"}), "url"),
        (json!({"url": "http://169.254.169.254/latest"}), "url"),
        (json!({"url": "http://[::1]/"}), "url"),
        (
            json!({"url": format!("https://example.com/{}", "a".repeat(2048))}),
            "url",
        ),
        (
            json!({"url": "https://example.com/", "event_types": ["tag.nope"]}),
            "event_types[0]",
        ),
        (
            json!({"url": "https://example.com/", "description": "d".repeat(1025)}),
            "description",
        ),
    ];
    for (mut body, field) in refused {
        body["corp_id"] = json!(org.corp_id);
        let answer = org.post(CREATE, &body).await;
        assert_eq!(code(&answer), (400, 40001), "{body}: {}", answer.1);
        let msg = answer.1["msg"].as_str().unwrap_or_default();
        assert!(msg.contains(field), "{msg} names {field}");
    }
    let listed = success(&org.get(&list(&org)).await).clone();
    assert_eq!(listed["rows"], json!([]), "nothing was created");

    let (id, _) = create(&org, "https://example.com/a", &[]).await;
    let bad_update = json!({"corp_id": org.corp_id, "webhook_id": id, "url": "http://10.0.0.1/"});
    assert_eq!(code(&org.post(UPDATE, &bad_update).await), (400, 40001));
    let replay = json!({"corp_id": org.corp_id, "webhook_id": id, "from_version": 0});
    assert_eq!(code(&org.post(REPLAY, &replay).await), (400, 40001));
    for limit in ["0", "101", "x"] {
        let path = format!("{}&limit={limit}", deliveries(&org, &id));
        assert_eq!(code(&org.get(&path).await), (400, 40001), "limit {limit}");
    }
    let missing = json!({"corp_id": org.corp_id, "webhook_id": "0123456789abcdef0123456789abcdef"});
    for path in [UPDATE, DELETE, ROTATE] {
        assert_eq!(
            code(&org.post(path, &missing).await),
            (404, 40404),
            "{path}"
        );
    }
    let listed = success(&org.get(&list(&org)).await).clone();
    assert_eq!(
        listed["rows"][0]["url"],
        json!("https://example.com/a"),
        "unchanged"
    );
}

async fn an_organization_keeps_at_most_25_webhooks(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    for i in 0..25 {
        create(&org, &format!("https://example.com/{i}"), &[]).await;
    }
    let body = json!({"corp_id": org.corp_id, "url": "https://example.com/26"});
    assert_eq!(code(&org.post(CREATE, &body).await), (409, 40907));
    let other = app.v5_org("Other").await;
    create(&other, "https://example.com/x", &[]).await;
}

async fn another_organizations_webhooks_cannot_be_seen_changed_or_replayed(app: &TestApp) {
    let acme = app.v5_org("Acme").await;
    let rival = app.v5_org("Rival").await;
    let (id, _) = create(&acme, "https://example.com/acme", &[]).await;
    let theirs = json!({"corp_id": rival.corp_id, "webhook_id": id});
    for path in [UPDATE, ROTATE, DELETE] {
        assert_eq!(
            code(&rival.post(path, &theirs).await),
            (404, 40404),
            "{path}"
        );
    }
    let replay = json!({"corp_id": rival.corp_id, "webhook_id": id, "from_version": 1});
    assert_eq!(code(&rival.post(REPLAY, &replay).await), (404, 40404));
    assert_eq!(
        code(&rival.get(&deliveries(&rival, &id)).await),
        (404, 40404)
    );
    let listed = success(&rival.get(&list(&rival)).await).clone();
    assert_eq!(listed["rows"], json!([]));
    // Naming the other organization's corp_id with one's own token is refused outright.
    let foreign = json!({"corp_id": acme.corp_id, "webhook_id": id});
    assert_eq!(rival.post(DELETE, &foreign).await.0, 403);
    let listed = success(&acme.get(&list(&acme)).await).clone();
    assert_eq!(listed["rows"][0]["webhook_id"], json!(id), "still there");
}

const WAIT: Duration = Duration::from_secs(20);

/// The event types [`make_changes`] causes, in order.
const CHANGES_MADE: [&str; 5] = [
    "user.created",
    "group.created",
    "tag.assigned",
    "tag.assigned",
    "tag.removed",
];

/// Makes changes: a user, a group, two assignments and a removal (5 entries).
async fn make_changes(org: &V5Org) -> String {
    org.create_user("u1").await;
    let group = org.create_group("Spend", "spend", "number", "crm").await;
    org.assign(&group, "u1", "10").await;
    org.assign(&group, "u1", "12").await;
    let body = json!({"corp_id": org.corp_id, "tags_group_id": group, "user_id": "u1"});
    success(&org.post(TAG_REMOVE, &body).await);
    group
}

fn types(received: &[crate::support::receiver::Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| r.body["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn every_change_is_delivered_in_version_order_signed_as_standard_webhooks_says(
    app: &TestApp,
) {
    let org = app.v5_org("Acme").await;
    let rival = app.v5_org("Rival").await;
    let all = Receiver::start().await;
    let tags_only = Receiver::start().await;
    let (_, secret) = create(&org, &all.url, &[]).await;
    let (_, tags_secret) = create(&org, &tags_only.url, &["tag.assigned", "tag.removed"]).await;
    make_changes(&org).await;
    make_changes(&rival).await;

    all.wait_until(WAIT, |r| r.len() >= 5).await;
    tags_only.wait_until(WAIT, |r| r.len() >= 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = all.received();
    assert_eq!(types(&received), CHANGES_MADE);
    assert_eq!(
        types(&tags_only.received()),
        ["tag.assigned", "tag.assigned", "tag.removed"]
    );
    let versions: Vec<i64> = received
        .iter()
        .map(|r| r.body["version"].as_i64().expect("present"))
        .collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    for delivery in &received {
        assert!(signed_by(&secret, delivery), "signed: {delivery:?}");
        assert!(
            !signed_by(&tags_secret, delivery),
            "not by another endpoint's secret"
        );
        assert_eq!(delivery.body["id"], json!(delivery.webhook_id));
        assert_eq!(delivery.webhook_id.len(), 32);
        assert_eq!(
            delivery.body["corp_id"],
            json!(org.corp_id),
            "only its own organization"
        );
        let age =
            tagd_core::timefmt::now_unix() - delivery.timestamp.parse::<i64>().expect("present");
        assert!(
            (0..60).contains(&age),
            "timestamp is now: {}",
            delivery.timestamp
        );
    }
    for delivery in tags_only.received() {
        assert!(signed_by(&tags_secret, &delivery));
    }
    let assigned = &received[3].body["data"];
    assert_eq!(assigned["number_value"], json!(12.0));
    assert_eq!(assigned["old_value"], json!(10.0));
    // The events are those of the pull feed, byte for byte the same ids.
    let feed_ids = feed_ids(&org).await;
    let sent_ids: Vec<_> = received.iter().map(|r| json!(r.webhook_id)).collect();
    assert_eq!(feed_ids, sent_ids);
}

async fn a_failing_receiver_gets_the_same_event_again_until_it_recovers_then_the_rest_in_order(
    app: &TestApp,
) {
    let org = app.v5_org("Acme").await;
    let receiver = Receiver::start().await;
    receiver.plan(&[500, 503, 500]);
    let (id, secret) = create(&org, &receiver.url, &[]).await;
    make_changes(&org).await;
    receiver
        .wait_until(WAIT, |r| r.iter().filter(|d| d.status == 200).count() >= 5)
        .await;
    let received = receiver.received();
    let first_id = &received[0].webhook_id;
    assert!(
        received[..4].iter().all(|r| &r.webhook_id == first_id),
        "the same event 4 times"
    );
    assert_eq!(
        received.iter().map(|r| r.status).collect::<Vec<_>>()[..4],
        [500, 503, 500, 200]
    );
    assert_eq!(types(&receiver.accepted()), CHANGES_MADE);
    assert!(received.iter().all(|r| signed_by(&secret, r)));

    let attempts = success(&org.get(&deliveries(&org, &id)).await).clone();
    let rows = attempts["rows"].as_array().expect("rows");
    let failed: Vec<_> = rows.iter().filter(|r| r["status"] == json!(500)).collect();
    assert_eq!(failed.len(), 2, "{attempts}");
    assert!(failed[0]["error"]
        .as_str()
        .expect("present")
        .contains("500"));
    assert_eq!(failed[0]["event_id"], json!(first_id));
    let oldest = rows.last().expect("an attempt");
    assert_eq!(
        (&oldest["attempt"], &oldest["status"]),
        (&json!(1), &json!(500))
    );

    // The operator sees the same on /metrics.
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    let counter = |series: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} in {metrics}"))
    };
    assert!(counter("tagd_webhook_deliveries_total{outcome=\"delivered\"}") >= 5);
    assert_eq!(
        counter("tagd_webhook_deliveries_total{outcome=\"failed\"}"),
        3
    );
}

async fn an_endpoint_answering_410_is_disabled_and_a_replay_resumes_it(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let receiver = Receiver::start().await;
    receiver.plan(&[410]);
    let (id, _) = create(&org, &receiver.url, &[]).await;
    make_changes(&org).await;
    receiver.wait_until(WAIT, |r| !r.is_empty()).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let row = loop {
        let listed = success(&org.get(&list(&org)).await).clone();
        let row = listed["rows"][0].clone();
        if row["enabled"] == json!(false) || tokio::time::Instant::now() > deadline {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(row["enabled"], json!(false), "{row}");
    assert!(row["disabled_reason"]
        .as_str()
        .expect("present")
        .contains("410"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 1, "nothing more after the 410");

    let first_version = receiver.received()[0].body["version"]
        .as_i64()
        .expect("present");
    let replay = json!({"corp_id": org.corp_id, "webhook_id": id, "from_version": first_version});
    let resumed = success(&org.post(REPLAY, &replay).await).clone();
    assert_eq!(resumed["enabled"], json!(true));
    receiver.wait_until(WAIT, |r| r.len() >= 6).await;
    assert_eq!(types(&receiver.accepted()), CHANGES_MADE);
}

async fn after_a_rotation_deliveries_carry_both_signatures(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let receiver = Receiver::start().await;
    let (id, old) = create(&org, &receiver.url, &[]).await;
    org.create_user("before").await;
    receiver.wait_until(WAIT, |r| r.len() == 1).await;
    let body = json!({"corp_id": org.corp_id, "webhook_id": id});
    let rotated = success(&org.post(ROTATE, &body).await).clone();
    let new = rotated["secret"].as_str().expect("secret").to_owned();
    assert!(new.starts_with("whsec_") && new != old);
    let listed = success(&org.get(&list(&org)).await).clone();
    assert!(listed["rows"][0]["previous_secret_expires_at"].is_string());
    // A rotation reaches the delivering worker within a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    org.create_user("after").await;
    receiver.wait_until(WAIT, |r| r.len() == 2).await;
    let received = receiver.received();
    assert!(signed_by(&old, &received[0]) && !signed_by(&new, &received[0]));
    let after = &received[1];
    assert_eq!(after.signature.split(' ').count(), 2, "{}", after.signature);
    assert!(signed_by(&new, after) && signed_by(&old, after));
}

async fn when_the_retries_run_out_the_endpoint_is_disabled_with_its_position_kept(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    let receiver = Receiver::start().await;
    receiver.always(Some(500));
    let (id, _) = create(&org, &receiver.url, &[]).await;
    org.create_user("u1").await;
    // The first try and three retries (the schedule has three waits), then no more.
    receiver.wait_until(WAIT, |r| r.len() >= 4).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 4);
    let listed = success(&org.get(&list(&org)).await).clone();
    let row = &listed["rows"][0];
    assert_eq!(row["enabled"], json!(false), "{row}");
    assert!(row["disabled_reason"]
        .as_str()
        .expect("present")
        .contains("failed 4 times"));

    receiver.always(None);
    let resume = json!({"corp_id": org.corp_id, "webhook_id": id, "enabled": true});
    success(&org.post(UPDATE, &resume).await);
    receiver.wait_until(WAIT, |r| r.len() >= 5).await;
    let received = receiver.received();
    assert_eq!(
        received[4].webhook_id, received[0].webhook_id,
        "resumed where it stopped"
    );
    assert_eq!(received[4].status, 200);
}

async fn users_moving_in_and_out_of_a_saved_segment_are_announced_once_each_in_order(
    app: &TestApp,
) {
    let org = app.v5_org("Acme").await;
    let receiver = Receiver::start().await;
    create(&org, &receiver.url, &["segment.entered", "segment.exited"]).await;
    for user in ["u1", "u2"] {
        org.create_user(user).await;
    }
    let spend = org.create_group("Spend", "spend", "number", "crm").await;
    org.assign(&spend, "u1", "20").await;
    let body = json!({"corp_id": org.corp_id, "name": "Big spenders", "description": "",
                      "filter": {"tag": "spend", "op": "gte", "value": 10}});
    let segment = success(&org.post("/api/v5/segments/create", &body).await)["segment_id"]
        .as_str()
        .expect("id")
        .to_owned();
    // u1 was in it from the start: not announced. The announcer sees the segment first.
    wait_for_announcer(app, &org, 1).await;
    // Each move is awaited before the next change: moves within one announcer round are
    // announced net (an entry and an exit of the same user cancel out).
    org.assign(&spend, "u2", "15").await;
    receiver.wait_until(WAIT, |r| !r.is_empty()).await;
    org.assign(&spend, "u1", "5").await;
    receiver.wait_until(WAIT, |r| r.len() >= 2).await;
    let remove = json!({"corp_id": org.corp_id, "tags_group_id": spend, "user_id": "u2"});
    success(&org.post(TAG_REMOVE, &remove).await);
    receiver.wait_until(WAIT, |r| r.len() >= 3).await;
    org.assign(&spend, "u1", "7").await; // moves nobody
                                         // An edited filter announces whom it moved.
    let edit = json!({"corp_id": org.corp_id, "segment_id": segment, "name": "Big spenders",
                      "filter": {"tag": "spend", "op": "gte", "value": 6}});
    success(&org.post("/api/v5/segments/update", &edit).await);
    receiver.wait_until(WAIT, |r| r.len() >= 4).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let seen: Vec<(String, String)> = receiver
        .received()
        .iter()
        .map(|r| {
            assert_eq!(r.body["data"]["segment_id"], json!(segment));
            assert_eq!(r.body["data"]["segment_name"], json!("Big spenders"));
            (
                r.body["type"].as_str().expect("type").to_owned(),
                r.body["data"]["user_id"].as_str().expect("user").to_owned(),
            )
        })
        .collect();
    let expected = [
        ("segment.entered", "u2"),
        ("segment.exited", "u1"),
        ("segment.exited", "u2"),
        ("segment.entered", "u1"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(t, u)| (t.to_string(), u.to_string()))
        .collect();
    assert_eq!(seen, expected);
    // The pull feed has them too, after the changes that caused them.
    let feed = success(
        &org.get(&format!(
            "/api/v5/changes?corp_id={}&after_version=0&limit=1000",
            org.corp_id
        ))
        .await,
    )
    .clone();
    let kinds: Vec<&str> = feed["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    let saved_at = kinds
        .iter()
        .position(|k| *k == "segment.saved")
        .expect("saved");
    let entered_at = kinds
        .iter()
        .position(|k| *k == "segment.entered")
        .expect("entered");
    assert!(
        kinds[saved_at..entered_at].contains(&"tag.assigned"),
        "a move comes after the change that made it: {kinds:?}"
    );
}
