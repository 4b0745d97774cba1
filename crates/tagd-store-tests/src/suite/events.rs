//! Event delivery state (API.md §12): webhook endpoints scoped to their organization, leases
//! that let one worker at a time deliver an endpoint or a sink, progress that a replay is
//! never overwritten by, attempts kept to the newest 100, and the announcer's membership
//! records written with its position in one transaction.

use super::*;
use tagd_core::log::{ChangeKind, Subject};
use tagd_core::saved_segments::{MemberChanges, MemberMove, SegmentFields};
use tagd_core::webhooks::{DeliveryAttempt, Lease, WebhookFields, WebhookProgress, WebhookUrl};

fn lease(owner: &str, now: i64) -> Lease<'_> {
    Lease {
        owner,
        now,
        until: now + 30,
    }
}

async fn new_webhook(store: &DynStore, org: OrgId, url: &str) -> tagd_core::webhooks::Webhook {
    store
        .create_webhook(
            org,
            &WebhookUrl::from_trusted(url.into()),
            &["tag.assigned".to_owned()],
            &Description::from_trusted(String::new()),
            "whsec_c2VjcmV0",
            &Recorder::none(),
        )
        .await
        .expect("created")
}

fn attempt(version: i64) -> DeliveryAttempt {
    DeliveryAttempt {
        event_id: format!("{version:032x}"),
        event_type: "tag.assigned".into(),
        version,
        attempt: 1,
        status: Some(200),
        duration_ms: 3,
        error: None,
        at: 1,
    }
}

fn progress(delivered_version: i64) -> WebhookProgress {
    WebhookProgress {
        delivered_version,
        failures: 0,
        next_attempt_ms: None,
        disabled_reason: None,
    }
}

pub async fn a_webhook_belongs_to_its_organization_alone(store: DynStore) {
    let acme = store.create_org("Acme").await.expect("org");
    let rival = store.create_org("Rival").await.expect("org");
    let hook = new_webhook(&store, acme.id, "https://example.com/a").await;
    let id = &hook.webhook_id;
    assert_eq!(hook.event_types, ["tag.assigned"]);
    assert!(store
        .find_webhook(rival.id, id)
        .await
        .expect("read")
        .is_none());
    assert!(store
        .list_webhooks(rival.id)
        .await
        .expect("read")
        .is_empty());
    let fields = WebhookFields {
        enabled: Some(false),
        ..WebhookFields::default()
    };
    for refused in [
        store.update_webhook(rival.id, id, &fields).await.err(),
        store
            .rotate_webhook_secret(rival.id, id, "whsec_eA==", 9, &Recorder::none())
            .await
            .err(),
        store.replay_webhook(rival.id, id, 0).await.err(),
        store.delete_webhook(rival.id, id).await.err(),
        store.webhook_attempts(rival.id, id, 10).await.err(),
    ] {
        assert_eq!(refused, Some(Error::WebhookNotFound));
    }
    let kept = store.find_webhook(acme.id, id).await.expect("read");
    assert_eq!(kept, Some(hook), "untouched by the other organization");
}

pub async fn one_worker_at_a_time_holds_a_webhook_and_a_replay_is_never_overwritten(
    store: DynStore,
) {
    let org = store.create_org("Acme").await.expect("org").id;
    let hook = new_webhook(&store, org, "https://example.com/a").await;
    let now = 1_000;
    let mine = store
        .claim_webhook(org, hook.id, &lease("a", now))
        .await
        .expect("claim");
    let mine = mine.expect("free, so taken");
    let theirs = store
        .claim_webhook(org, hook.id, &lease("b", now + 1))
        .await;
    assert_eq!(theirs.expect("claim"), None, "held by a");
    let saved = store
        .save_webhook_progress(
            org,
            hook.id,
            (&lease("b", now), mine.replays),
            &progress(5),
            &[],
        )
        .await
        .expect("save");
    assert!(!saved, "b holds no lease");
    let saved = store
        .save_webhook_progress(
            org,
            hook.id,
            (&lease("a", now), mine.replays),
            &progress(5),
            &[attempt(5)],
        )
        .await
        .expect("save");
    assert!(saved);
    store
        .replay_webhook(org, &hook.webhook_id, 2)
        .await
        .expect("replayed");
    let saved = store
        .save_webhook_progress(
            org,
            hook.id,
            (&lease("a", now), mine.replays),
            &progress(9),
            &[],
        )
        .await
        .expect("save");
    assert!(!saved, "a replay came since a loaded it");
    let after = store
        .find_webhook(org, &hook.webhook_id)
        .await
        .expect("read");
    assert_eq!(after.expect("live").delivered_version, 2);
    // The lease runs out: another worker takes it.
    let taken = store
        .claim_webhook(org, hook.id, &lease("b", now + 31))
        .await;
    assert!(taken.expect("claim").is_some());
    let deliverable = store.deliverable_webhooks().await.expect("listed");
    assert!(deliverable
        .iter()
        .any(|(o, id, _)| *o == org && *id == hook.id));
    store
        .delete_webhook(org, &hook.webhook_id)
        .await
        .expect("deleted");
    let deliverable = store.deliverable_webhooks().await.expect("listed");
    assert!(!deliverable.iter().any(|(o, _, _)| *o == org));
    let claimed = store
        .claim_webhook(org, hook.id, &lease("b", now + 100))
        .await;
    assert_eq!(
        claimed.expect("claim"),
        None,
        "a deleted endpoint is never delivered"
    );
}

pub async fn delivery_attempts_keep_the_newest_hundred(store: DynStore) {
    let org = store.create_org("Acme").await.expect("org").id;
    let hook = new_webhook(&store, org, "https://example.com/a").await;
    let held = store
        .claim_webhook(org, hook.id, &lease("a", 1))
        .await
        .expect("claim");
    let held = held.expect("taken");
    for page in 0..3 {
        let attempts: Vec<_> = (1..=60).map(|i| attempt(page * 60 + i)).collect();
        let saved = store
            .save_webhook_progress(
                org,
                hook.id,
                (&lease("a", 1), held.replays),
                &progress(page * 60 + 60),
                &attempts,
            )
            .await
            .expect("saved");
        assert!(saved);
    }
    let kept = store
        .webhook_attempts(org, &hook.webhook_id, 1000)
        .await
        .expect("read");
    assert_eq!(kept.len(), 100);
    assert_eq!(kept.first().map(|a| a.version), Some(180), "newest first");
    assert_eq!(kept.last().map(|a| a.version), Some(81));
}

pub async fn a_sink_position_is_held_by_one_worker_and_starts_at_the_beginning(store: DynStore) {
    let acme = store.create_org("Acme").await.expect("org").id;
    let rival = store.create_org("Rival").await.expect("org").id;
    assert_eq!(
        store
            .claim_sink(acme, "nats", &lease("a", 10))
            .await
            .expect("claim"),
        Some(0)
    );
    assert_eq!(
        store
            .claim_sink(acme, "nats", &lease("b", 11))
            .await
            .expect("claim"),
        None
    );
    assert!(store
        .save_sink(acme, "nats", &lease("a", 12), 7)
        .await
        .expect("save"));
    assert!(!store
        .save_sink(acme, "nats", &lease("b", 12), 9)
        .await
        .expect("save"));
    assert_eq!(
        store
            .claim_sink(rival, "nats", &lease("b", 12))
            .await
            .expect("claim"),
        Some(0)
    );
    assert_eq!(
        store
            .claim_sink(acme, "nats", &lease("b", 50))
            .await
            .expect("claim"),
        Some(7)
    );
}

pub async fn announced_moves_are_logged_with_the_position_or_not_at_all(store: DynStore) {
    let w = world(&store, "Acme").await;
    let org = w.org.id;
    let fields =
        SegmentFields::parse("VIP", "", serde_json::json!({"tag": "vip"})).expect("fields");
    let segment = store
        .create_segment(org, &fields, &Recorder::none())
        .await
        .expect("segment");
    let u1 = store
        .find_user(org, &user("u1"))
        .await
        .expect("read")
        .expect("u1");
    let entered = MemberMove {
        segment: segment.clone(),
        user_ref: u1.id,
        user_id: u1.user_id.clone(),
        entered: true,
        announce: true,
    };
    let moves = [entered.clone()];
    let changes = MemberChanges {
        moves: &moves,
        started: &[segment.id],
        forget: &[],
    };
    // Without the lease nothing is written.
    assert!(!store
        .record_member_moves(org, &lease("a", 1), &changes, 5)
        .await
        .expect("record"));
    assert!(store
        .announced_memberships(org, &[u1.id])
        .await
        .expect("read")
        .is_empty());
    assert_eq!(
        store
            .claim_sink(org, "segments", &lease("a", 1))
            .await
            .expect("claim"),
        Some(0)
    );
    assert!(store
        .record_member_moves(org, &lease("a", 1), &changes, 5)
        .await
        .expect("record"));
    assert_eq!(
        store
            .announced_memberships(org, &[u1.id])
            .await
            .expect("read"),
        [(segment.id, u1.id)]
    );
    assert_eq!(
        store.announced_segments(org).await.expect("read"),
        [segment.id]
    );
    let log = super::log::whole_log(&store, org, 1000).await;
    let last = log.last().expect("an entry");
    assert_eq!(last.change.kind, ChangeKind::SegmentEntered);
    let Subject::Membership(moved) = &last.change.subject else {
        panic!("a membership entry: {last:?}");
    };
    assert_eq!(
        (moved.segment.id, moved.user_id.as_str()),
        (segment.id, "u1")
    );
    assert_eq!(
        store
            .claim_sink(org, "segments", &lease("a", 2))
            .await
            .expect("claim"),
        Some(5)
    );
    // Forgetting a segment drops its memberships silently.
    let forget = MemberChanges {
        forget: &[segment.id],
        ..MemberChanges::default()
    };
    assert!(store
        .record_member_moves(org, &lease("a", 2), &forget, 6)
        .await
        .expect("record"));
    assert!(store
        .announced_members(org, segment.id)
        .await
        .expect("read")
        .is_empty());
    assert!(store
        .announced_segments(org)
        .await
        .expect("read")
        .is_empty());
    assert_eq!(
        super::log::whole_log(&store, org, 1000).await.len(),
        log.len()
    );
}
