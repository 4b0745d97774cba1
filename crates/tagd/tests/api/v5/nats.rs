//! Events to NATS JetStream (API.md §12): with `--nats-url` every event is published to
//! stream `TAGD`, subject `tagd.<corp_id>.<type>`, with `Nats-Msg-Id` = the event id, so that
//! JetStream drops a repeat. Runs where `TAGD_TEST_NATS_URL` names a NATS server with
//! JetStream (CI starts one).

use super::*;
use crate::helpers::default_config;
use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use std::time::Duration;
use tagd_http::HttpConfig;

fn nats_url() -> Option<String> {
    std::env::var("TAGD_TEST_NATS_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

fn publishing() -> HttpConfig {
    HttpConfig {
        nats_url: nats_url(),
        ..default_config()
    }
}

crate::on_both_backends_with!(super::publishing(); publishing_sqlite, publishing_postgres;
    every_event_reaches_jetstream_once_under_its_subject_with_its_id,
);

/// One message as the test reads it back.
struct Published {
    subject: String,
    msg_id: String,
    body: Value,
}

/// The stream's messages of one organization, read until `count` arrived (or 20 s).
async fn read_back(js: &jetstream::Context, corp_id: &str, count: usize) -> Vec<Published> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let stream = loop {
        match js.get_stream(tagd_events::nats::STREAM).await {
            Ok(stream) => break stream,
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no stream TAGD: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let config = consumer::pull::Config {
        filter_subject: format!("tagd.{corp_id}.>"),
        deliver_policy: consumer::DeliverPolicy::All,
        ack_policy: consumer::AckPolicy::None,
        ..Default::default()
    };
    let reader = stream.create_consumer(config).await.expect("a consumer");
    let mut found = Vec::new();
    while found.len() < count && tokio::time::Instant::now() < deadline {
        let mut batch = reader
            .fetch()
            .max_messages(100)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .expect("a fetch");
        while let Some(message) = batch.next().await {
            let message = message.expect("a message");
            let msg_id = message
                .headers
                .as_ref()
                .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default();
            found.push(Published {
                subject: message.subject.to_string(),
                msg_id,
                body: serde_json::from_slice(&message.payload).expect("JSON"),
            });
        }
    }
    found
}

async fn every_event_reaches_jetstream_once_under_its_subject_with_its_id(app: &TestApp) {
    let Some(url) = nats_url() else {
        eprintln!("TAGD_TEST_NATS_URL is not set: skipped");
        return;
    };
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    let spend = org.create_group("Spend", "spend", "number", "crm").await;
    org.assign(&spend, "u1", "10").await;
    let client = async_nats::connect(url.as_str()).await.expect("NATS");
    let js = jetstream::new(client);
    let published = read_back(&js, &org.corp_id, 3).await;
    let seen: Vec<(&str, &str)> = published
        .iter()
        .map(|p| (p.subject.as_str(), p.body["type"].as_str().expect("type")))
        .collect();
    let subject = |kind: &str| format!("tagd.{}.{kind}", org.corp_id);
    assert_eq!(
        seen,
        [
            (subject("user.created").as_str(), "user.created"),
            (subject("group.created").as_str(), "group.created"),
            (subject("tag.assigned").as_str(), "tag.assigned"),
        ]
    );
    for p in &published {
        assert_eq!(p.body["id"], json!(p.msg_id), "Nats-Msg-Id is the event id");
        assert_eq!(p.body["corp_id"], json!(org.corp_id));
    }
    // The events are those of the pull feed.
    let feed_ids = feed_ids(&org).await;
    let sent: Vec<Value> = published.iter().map(|p| json!(p.msg_id)).collect();
    assert_eq!(feed_ids, sent);

    // A repeat with the same id (a publisher that crashed before saving its position) is
    // dropped by JetStream.
    let again = &published[2];
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, again.msg_id.as_str());
    let ack = js
        .publish_with_headers(
            again.subject.clone(),
            headers,
            serde_json::to_vec(&again.body).expect("JSON").into(),
        )
        .await
        .expect("published")
        .await
        .expect("acknowledged");
    assert!(ack.duplicate, "JetStream saw the id before");
    let more = read_back(&js, &org.corp_id, 4).await;
    assert_eq!(more.len(), 3, "no second copy");
}
