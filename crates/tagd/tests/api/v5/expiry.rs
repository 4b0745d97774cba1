//! Expiry over HTTP (API.md §11): `expires_at` and `ttl_secs` on assign and batch items, 40008
//! for bad ones with nothing changed, group defaults, renewal by re-assigning, and a value gone
//! from lists and segments the second it expires, recorded by the sweep soon after.

use super::*;
use std::time::Duration;
use tagd_core::timefmt::{format_unix, now_unix, parse_time};

crate::on_both_backends!(
    a_value_with_a_ttl_is_gone_from_lists_and_segments_once_it_expires_and_then_recorded,
    bad_expiries_are_refused_with_40008_and_change_nothing,
    a_group_default_expiry_applies_to_assignments_that_bring_none,
    re_assigning_sets_the_expiry_anew,
);

async fn assign_with(org: &V5Org, group: &str, user: &str, value: &str, expiry: Value) -> V5Answer {
    let mut body =
        json!({"corp_id": org.corp_id, "tags_group_id": group, "user_id": user, "value": value});
    for (key, field) in expiry.as_object().expect("an object") {
        body[key] = field.clone();
    }
    org.post(TAG_ASSIGN, &body).await
}

fn segment_count(answer: &V5Answer) -> Value {
    success(answer)["count"].clone()
}

async fn holders(org: &V5Org, variable: &str) -> V5Answer {
    let body = json!({"corp_id": org.corp_id,
                      "filter": {"tag": variable, "op": "exists"}});
    org.post("/api/v5/segments/query", &body).await
}

/// Waits (in real time) until `secs` is in the past.
async fn wait_until(secs: i64) {
    while now_unix() <= secs {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_value_with_a_ttl_is_gone_from_lists_and_segments_once_it_expires_and_then_recorded(
    app: &TestApp,
) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    let trial = org
        .create_group("Trial", "trial", "define", "campaign")
        .await;
    let vip = org.create_group("VIP", "vip", "define", "campaign").await;
    success(&assign_with(&org, &trial, "u1", "True", json!({"ttl_secs": 2})).await);
    org.assign(&vip, "u1", "True").await;
    let rows = org.user_tags("u1").await["rows"].clone();
    let expires_at = rows[0]["expires_at"]
        .as_str()
        .expect("an expiry")
        .to_owned();
    assert_eq!(rows[1]["expires_at"], json!(null));
    assert_eq!(segment_count(&holders(&org, "trial").await), json!(1));

    wait_until(parse_time(&expires_at).expect("a time")).await;
    let rows = org.user_tags("u1").await;
    assert_eq!(rows["total"], json!(1), "{rows}");
    assert_eq!(rows["rows"][0]["variable_name"], json!("vip"));
    assert_eq!(segment_count(&holders(&org, "trial").await), json!(0));

    // The sweep (every second) records it as an expiry by `system`.
    let path = format!(
        "/api/v5/entity/user/tags/history?corp_id={}&user_id=u1&tags_group_id={trial}",
        org.corp_id
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let newest = loop {
        let page = success(&org.get(&path).await).clone();
        if page["rows"][0]["op"] == json!("expire") || tokio::time::Instant::now() > deadline {
            break page["rows"][0].clone();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        (&newest["op"], &newest["executor_id"], &newest["source"]),
        (&json!("expire"), &json!("system"), &json!("system")),
        "{newest}"
    );
    assert_eq!(
        (&newest["old_value"], &newest["time"]),
        (&json!(true), &json!(expires_at))
    );
    let feed = success(
        &org.get(&format!("/api/v5/changes?corp_id={}", org.corp_id))
            .await,
    )
    .clone();
    let last = feed["rows"]
        .as_array()
        .and_then(|r| r.last())
        .expect("events")
        .clone();
    assert_eq!(
        (&last["type"], &last["data"]["is_deleted"]),
        (&json!("tag.expired"), &json!(true))
    );
}

async fn bad_expiries_are_refused_with_40008_and_change_nothing(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    let vip = org.create_group("VIP", "vip", "define", "crm").await;
    let later = format_unix(now_unix() + 3_600);
    for expiry in [
        json!({"expires_at": later, "ttl_secs": 60}),
        json!({"expires_at": format_unix(now_unix() - 1)}),
        json!({"expires_at": "2030-02-30 00:00:00"}),
        json!({"expires_at": "tomorrow"}),
        json!({"ttl_secs": 0}),
        json!({"ttl_secs": -5}),
        json!({"ttl_secs": 315_360_001}),
        json!({"ttl_secs": "soon"}),
        json!({"ttl_secs": 1.5}),
    ] {
        refused(
            &assign_with(&org, &vip, "u1", "True", expiry).await,
            400,
            40008,
        );
    }
    assert_eq!(org.user_tags("u1").await["total"], json!(0));
    success(&assign_with(&org, &vip, "u1", "True", json!({"ttl_secs": "60"})).await);
    success(&assign_with(&org, &vip, "u1", "True", json!({"ttl_secs": 315_360_000})).await);

    // In a batch, the item with a bad expiry alone is refused.
    let body = json!({"corp_id": org.corp_id, "items": [
        {"tags_group_id": vip, "user_id": "u1", "value": "True", "expires_at": later},
        {"tags_group_id": vip, "user_id": "u1", "value": "True", "ttl_secs": 0},
    ]});
    let results = success(
        &org.post("/api/v5/entity/user/tags/batch_assign", &body)
            .await,
    )["results"]
        .clone();
    assert_eq!(
        (&results[0]["code"], &results[1]["code"]),
        (&json!(0), &json!(40008))
    );
    assert_eq!(
        org.user_tags("u1").await["rows"][0]["expires_at"],
        json!(later)
    );

    // A group's default is checked the same way.
    for expiry in [
        json!({"policy": "forever"}),
        json!({"policy": "relative"}),
        json!({"policy": "relative", "days": 0}),
        json!({"policy": "fixed_date", "date": format_unix(now_unix() - 60)}),
        json!({"policy": "none", "days": 3}),
    ] {
        let body = json!({"corp_id": org.corp_id, "name": "Trial", "variable_name": "trial",
                          "description": "", "attribute": "define", "category": "crm", "expiry": expiry});
        refused(&org.post(GROUP_CREATE, &body).await, 400, 40008);
    }
    assert_eq!(org.groups("crm").await["total"], json!(1));
}

async fn a_group_default_expiry_applies_to_assignments_that_bring_none(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    let body = json!({"corp_id": org.corp_id, "name": "Spring coupon", "variable_name": "spring",
                      "description": "", "attribute": "define", "category": "campaign",
                      "expiry": {"policy": "relative", "days": 30}});
    let spring = success(&org.post(GROUP_CREATE, &body).await)["tags_group_id"].clone();
    let spring = spring.as_str().expect("id");
    let listed = org.groups("campaign").await["rows"][0]["expiry"].clone();
    assert_eq!(
        listed,
        json!({"policy": "relative", "date": null, "days": 30})
    );
    let before = now_unix();
    org.assign(spring, "u1", "True").await;
    let shown = org.user_tags("u1").await["rows"][0]["expires_at"].clone();
    let at = parse_time(shown.as_str().expect("an expiry")).expect("a time");
    assert!(
        (before + 30 * 86_400..=now_unix() + 30 * 86_400).contains(&at),
        "{shown}"
    );

    let date = format_unix(now_unix() + 7 * 86_400);
    let update = json!({"corp_id": org.corp_id, "entity_id": spring, "name": "Spring coupon",
                        "variable_name": "spring", "description": "", "attribute": "define",
                        "category": "campaign", "expiry": {"policy": "fixed_date", "date": date}});
    success(&org.post(GROUP_UPDATE, &update).await);
    org.assign(spring, "u1", "True").await;
    assert_eq!(
        org.user_tags("u1").await["rows"][0]["expires_at"],
        json!(date)
    );
    // Groups made without one have none, and their rows show exactly the seed's fields.
    let plain = org.create_group("VIP", "vip", "define", "crm").await;
    org.assign(&plain, "u1", "True").await;
    assert!(org.groups("crm").await["rows"][0].get("expiry").is_none());
    let rows = org.user_tags("u1").await["rows"].clone();
    let vip = rows
        .as_array()
        .and_then(|r| r.iter().find(|r| r["variable_name"] == "vip"));
    assert_eq!(
        vip.map(|r| r["expires_at"].clone()),
        Some(json!(null)),
        "{rows}"
    );
}

async fn re_assigning_sets_the_expiry_anew(app: &TestApp) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    let vip = org.create_group("VIP", "vip", "define", "crm").await;
    success(&assign_with(&org, &vip, "u1", "True", json!({"ttl_secs": 1})).await);
    org.assign(&vip, "u1", "True").await;
    let rows = org.user_tags("u1").await;
    assert_eq!(rows["rows"][0]["expires_at"], json!(null), "{rows}");
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(
        org.user_tags("u1").await["total"],
        json!(1),
        "renewed without an expiry"
    );
}
