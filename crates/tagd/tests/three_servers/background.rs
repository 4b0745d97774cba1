//! What every server runs in the background, done once between three: the expiry sweep
//! (API.md §4.14: each expiry recorded exactly once, though every server sweeps every second)
//! and webhook delivery (EVENTS.md §3: one server at a time per endpoint).

use super::*;
use crate::support::receiver::{signed_by, Receiver};
use std::collections::HashMap;

/// Users written, round-robin; each gets a value that expires and one that stays.
const USERS: usize = 12;
const TTL_SECS: u64 = 2;

/// How many `tag.expired` events `feed` holds per assignment id.
fn expiries(feed: &[Value]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for event in feed.iter().filter(|e| e["type"] == "tag.expired") {
        let id = event["data"]["entity_id"].as_str().expect("entity_id");
        *counts.entry(id.to_owned()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sweeping_servers_record_each_expiry_once_and_deliver_each_event_once_in_order() {
    let Some(trio) = Trio::start(&["--webhook-allow-private"]).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let orgs = trio.org("Background").await;
    let vip = orgs[0].create_group("VIP", "vip", "define", "crm").await;
    let spend = orgs[1]
        .create_group("Spend", "spend", "number", "crm")
        .await;
    let (_, secret, start) = create_endpoint(&trio, &orgs[2], &receiver.url).await;

    let mut expiring = Vec::new();
    for i in 0..USERS {
        let user = format!("u{i}");
        orgs[i % 3].create_user(&user).await;
        let mut body = assign_body(&orgs[(i + 1) % 3], &vip, &user, "True");
        body["ttl_secs"] = json!(TTL_SECS);
        let answer = trio.post(&orgs[(i + 1) % 3], ASSIGN, &body, None).await;
        assert!(answer.ok(), "{}", answer.body);
        expiring.push(answer.body["data"].as_str().expect("entity id").to_owned());
        orgs[(i + 2) % 3]
            .assign(&spend, &user, &i.to_string())
            .await;
    }

    // Each expiry recorded, by whichever server swept it; none twice on the way.
    let sweeps = Duration::from_secs(TTL_SECS + 20);
    let (org, expiring) = (&orgs[0], &expiring);
    eventually(sweeps, "every expiry recorded", move || async move {
        let counts = expiries(&org.whole_feed().await);
        let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "expiries recorded more than once: {twice:?}"
        );
        expiring
            .iter()
            .all(|id| counts.get(id) == Some(&1))
            .then_some(())
    })
    .await;
    // Three more sweeps of every server record nothing more.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let feed = orgs[1].whole_feed().await;
    let counts = expiries(&feed);
    assert_eq!(
        counts.len(),
        USERS,
        "only the values that expire: {counts:?}"
    );
    assert!(
        expiring.iter().all(|id| counts.get(id) == Some(&1)),
        "{counts:?}"
    );
    for (i, org) in orgs.iter().enumerate() {
        let tags = org.user_tags("u0").await;
        assert_eq!(
            tags["total"], 1,
            "server {i} lists the value that stays: {tags}"
        );
    }

    // The endpoint gets every event of the log from its start on, exactly once, in version
    // order. (It starts at the log's horizon when it was created, which may be a little
    // before the position `list` showed; docs/EVENTS.md, "about the moment it is created".)
    let feed_ids: Vec<&str> = feed.iter().map(|e| e["id"].as_str().expect("id")).collect();
    let last = *feed_ids.last().expect("events");
    receiver
        .wait_until(Duration::from_secs(20), |got| {
            got.iter().any(|r| r.webhook_id == last)
        })
        .await;
    // Time for a second deliverer, were there one, to send its copies too.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received = receiver.received();
    let ids: Vec<&str> = received.iter().map(|r| r.webhook_id.as_str()).collect();
    let from = feed_ids
        .iter()
        .position(|id| *id == ids[0])
        .expect("the first delivery is an event of the log");
    let after_start = feed
        .iter()
        .position(|e| e["version"].as_i64().expect("version") > start)
        .expect("events after the endpoint's start");
    assert!(from <= after_start, "events after the start skipped");
    assert_eq!(ids, feed_ids[from..], "every event once, in version order");
    for delivery in &received {
        assert!(signed_by(&secret, delivery), "signed: {delivery:?}");
        assert_eq!(delivery.body["id"], delivery.webhook_id);
    }
    trio.stop().await;
}
