//! Single writes sent together: the store may run them in one transaction (`tagd-sql`'s
//! `coalesce.rs`), and each must still be applied once, refused alone, and answered with its
//! own change-log version.

use super::log::whole_log;
use super::*;
use std::collections::HashMap;
use tagd_core::idempotency::{Reply, WriteProgress};
use tagd_core::log::{ChangeKind, Subject};

/// A recorder that reports progress the way a request's does.
fn progress_recorder<T>() -> (Arc<WriteProgress>, Recorder<T>) {
    let progress = Arc::new(WriteProgress::default());
    let render = |_: &T| Reply {
        code: 200,
        format: "application/json".into(),
        body: String::new(),
    };
    (progress.clone(), Recorder::new(None, progress, render))
}

pub async fn single_writes_sent_together_are_each_applied_once_and_answered_with_their_own_version(
    store: DynStore,
) {
    let w = world(&store, "Acme").await;
    let org = w.org.id;
    for i in 0..32 {
        store
            .create_user(org, &user(&format!("c{i}")), &Recorder::none())
            .await
            .expect("user created");
    }
    let before = whole_log(&store, org, 1000).await.len();
    let unknown_group = TagGroup {
        entity_id: ExternalId::generate(),
        ..w.number.clone()
    };
    let start = Arc::new(tokio::sync::Barrier::new(48));
    let mut sent = Vec::new();
    // 32 users once each, one user 8 times, 4 writes to no group and 4 to no user.
    let targets = (0..32)
        .map(|i| (w.number.clone(), format!("c{i}"), i.to_string()))
        .chain((0..8).map(|i| (w.number.clone(), "u1".to_owned(), format!("{}", 100 + i))))
        .chain((0..4).map(|_| (unknown_group.clone(), "c0".to_owned(), "1".to_owned())))
        .chain((0..4).map(|i| (w.number.clone(), format!("nobody{i}"), "1".to_owned())));
    for (group, user_id, value) in targets {
        let (store, start) = (store.clone(), start.clone());
        sent.push(tokio::spawn(async move {
            let (progress, record) = progress_recorder();
            let command = assign_command(&group, &user_id, &value);
            start.wait().await;
            let outcome = store.assign(org, &command, &record).await;
            (user_id, value, outcome, progress.version())
        }));
    }
    let mut answered = Vec::new();
    for handle in sent {
        answered.push(handle.await.expect("the write task ran"));
    }

    let log = whole_log(&store, org, 1000).await;
    let assigned: Vec<_> = log[before..].iter().collect();
    assert!(
        assigned
            .iter()
            .all(|e| e.change.kind == ChangeKind::TagAssigned),
        "only assigns were logged"
    );
    assert_eq!(assigned.len(), 40, "every accepted write logged once");
    // The log version of each (assignment, assignment version).
    let logged: HashMap<(i64, i64), i64> = assigned
        .iter()
        .filter_map(|e| match &e.change.subject {
            Subject::Tag(tag) => Some(((tag.assignment_id, tag.version), e.version)),
            _ => None,
        })
        .collect();
    assert_eq!(logged.len(), 40, "no (assignment, version) logged twice");
    let mut u1_versions = Vec::new();
    for (user_id, value, outcome, version) in answered {
        match outcome {
            Ok(assignment) => {
                assert_eq!(assignment.value.to_text(), value);
                let entry = logged.get(&(assignment.id, assignment.version));
                assert_eq!(
                    version,
                    entry.copied(),
                    "{user_id}={value} answered the version of its own entry"
                );
                if user_id == "u1" {
                    u1_versions.push(assignment.version);
                }
            }
            Err(Error::GroupNotFound) => assert_eq!(user_id, "c0"),
            Err(Error::UserNotFound) => assert!(user_id.starts_with("nobody")),
            Err(other) => panic!("{user_id}={value}: {other}"),
        }
    }
    u1_versions.sort_unstable();
    assert_eq!(
        u1_versions,
        (0..8).collect::<Vec<_>>(),
        "one pair, eight versions"
    );
    let listed = store
        .list_user_assignments(org, &user("c31"))
        .await
        .expect("listed");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].value.to_text(), "31");
}

/// One write of [`writes_of_two_organizations_and_two_doors_sent_together_answer_as_alone`].
enum Sent {
    Assign(OrgId, AssignCommand),
    Remove(OrgId, TagGroup, String),
}

/// The entries of `org`'s log after its first `before`.
async fn log_after(store: &DynStore, org: OrgId, before: usize) -> Vec<tagd_core::log::LogEntry> {
    whole_log(store, org, 1000).await.split_off(before)
}

pub async fn writes_of_two_organizations_and_two_doors_sent_together_answer_as_alone(
    store: DynStore,
) {
    let (a, b) = (world(&store, "Acme").await, world(&store, "Bolt").await);
    for org in [a.org.id, b.org.id] {
        for i in 0..16 {
            store
                .create_user(org, &user(&format!("c{i}")), &Recorder::none())
                .await
                .expect("user created");
        }
    }
    for i in 0..8 {
        let c = format!("c{i}");
        assign(&store, a.org.id, &a.number, &c, "5")
            .await
            .expect("assigned");
        assign(&store, b.org.id, &b.text, &c, "x")
            .await
            .expect("assigned");
    }
    let before_a = whole_log(&store, a.org.id, 1000).await.len();
    let before_b = whole_log(&store, b.org.id, 1000).await.len();
    let v2_assign = |group: &TagGroup, c: &str| AssignCommand {
        executor: v2_executor(),
        source: Source::V2Api,
        ..assign_command(group, c, "9")
    };
    let mut writes = Vec::new();
    for i in 0..8 {
        let (low, high) = (format!("c{i}"), format!("c{}", i + 8));
        // A: the value it holds again; a first value through the v2 door; a removal of
        // nothing. B: a removal; a first flag; a value its group refuses.
        writes.push(Sent::Assign(a.org.id, assign_command(&a.number, &low, "5")));
        writes.push(Sent::Assign(a.org.id, v2_assign(&a.number, &high)));
        writes.push(Sent::Remove(a.org.id, a.flag.clone(), low.clone()));
        writes.push(Sent::Remove(b.org.id, b.text.clone(), low.clone()));
        writes.push(Sent::Assign(
            b.org.id,
            assign_command(&b.flag, &low, "true"),
        ));
        writes.push(Sent::Assign(
            b.org.id,
            assign_command(&b.number, &low, "abc"),
        ));
    }
    let start = Arc::new(tokio::sync::Barrier::new(writes.len()));
    let mut sent = Vec::new();
    for write in writes {
        let (store, start) = (store.clone(), start.clone());
        sent.push(tokio::spawn(async move {
            start.wait().await;
            match write {
                Sent::Assign(org, command) => {
                    let (progress, record) = progress_recorder();
                    let outcome = store.assign(org, &command, &record).await;
                    (org, Some(command), outcome.map(Some), progress.version())
                }
                Sent::Remove(org, group, c) => {
                    let (progress, record) = progress_recorder();
                    let executor = app_executor();
                    let outcome = store
                        .remove_assignment(
                            org,
                            &group.entity_id,
                            &user(&c),
                            &executor,
                            Source::OpenApi,
                            &record,
                        )
                        .await;
                    (org, None, outcome, progress.version())
                }
            }
        }));
    }
    let mut answered = Vec::new();
    for handle in sent {
        answered.push(handle.await.expect("the write task ran"));
    }
    let log_a = log_after(&store, a.org.id, before_a).await;
    let log_b = log_after(&store, b.org.id, before_b).await;
    assert_eq!(log_a.len(), 16, "A: 8 assigns again and 8 first values");
    assert_eq!(log_b.len(), 16, "B: 8 removals and 8 first flags");
    let entry_of = |log: &[tagd_core::log::LogEntry], id: i64, version: i64| {
        log.iter()
            .find(|e| matches!(&e.change.subject, Subject::Tag(t) if t.assignment_id == id && t.version == version))
            .map(|e| e.version)
    };
    for (org, command, outcome, version) in answered {
        let (own, other, log) = if org == a.org.id {
            (&a, &b, &log_a)
        } else {
            (&b, &a, &log_b)
        };
        match (command, outcome) {
            (Some(command), Ok(Some(answer))) => {
                assert_eq!(answer.org_id, org);
                assert_eq!(answer.tags_group_id, command.tags_group_id);
                assert_eq!(answer.executor, command.executor);
                assert_eq!(answer.source, command.source);
                let listed = store
                    .list_user_assignments(org, &command.user_id)
                    .await
                    .expect("listed");
                let row = listed.iter().find(|r| r.id == answer.id);
                assert_eq!(row, Some(&answer), "the answer is the stored row");
                let again = command.raw_value == "5";
                assert_eq!(answer.version, i64::from(again), "every assign is a write");
                assert_eq!(version, entry_of(log, answer.id, answer.version));
            }
            (Some(command), Err(refused)) => {
                assert!(!refused.is_fault(), "{refused}");
                assert_eq!(command.tags_group_id, own.number.entity_id);
                assert_eq!(command.raw_value, "abc");
                assert_eq!(version, None);
            }
            (None, Ok(None)) => {
                assert_eq!(org, a.org.id, "only A's removals found nothing");
                assert_eq!(version, None);
            }
            (None, Ok(Some(removed))) => {
                assert_eq!(org, b.org.id);
                assert!(removed.is_deleted);
                assert_eq!((removed.version, removed.value.to_text()), (1, "x".into()));
                assert_eq!(removed.executor, app_executor());
                assert_eq!(version, entry_of(log, removed.id, removed.version));
                let listed = store
                    .list_user_assignments(org, &removed.user_id)
                    .await
                    .expect("listed");
                assert!(listed.iter().all(|r| r.id != removed.id), "removed");
            }
            (command, outcome) => panic!("unexpected: {command:?} -> {outcome:?}"),
        }
        for entry in log {
            if let Subject::Tag(tag) = &entry.change.subject {
                let groups = [&other.flag, &other.number, &other.text];
                assert!(
                    groups.iter().all(|g| g.id != tag.group_ref),
                    "an entry of the other organization's group"
                );
            }
        }
    }
}

pub async fn change_labels_sent_together_with_assigns_answer_as_alone_with_their_own_version(
    store: DynStore,
) {
    let w = world(&store, "Acme").await;
    let org = w.org.id;
    let gold = label_group(&store, org, "Gold", "gold").await;
    for i in 0..16 {
        store
            .create_user(org, &user(&format!("c{i}")), &Recorder::none())
            .await
            .expect("user created");
    }
    let before = whole_log(&store, org, 1000).await.len();
    // Per customer: a changeLabels adding VIP and Gold (and an unknown label) and a v5 assign
    // of Gold's group to false; and a changeLabels for a customer who does not exist.
    let start = Arc::new(tokio::sync::Barrier::new(33));
    let mut sent = Vec::new();
    for i in 0..16 {
        let c = format!("c{i}");
        let (store, start) = (store.clone(), start.clone());
        sent.push(tokio::spawn(async move {
            let (progress, record) = progress_recorder();
            let change = change(&["VIP", "Gold", "Nope"], &[]);
            start.wait().await;
            let outcome = store
                .change_labels(org, &user(&c), &change, &v2_executor(), &record)
                .await;
            (c, outcome, progress.version())
        }));
    }
    let mut assigns = Vec::new();
    for i in 0..16 {
        let c = format!("c{i}");
        let (store, start, gold) = (store.clone(), start.clone(), gold.clone());
        assigns.push(tokio::spawn(async move {
            let (progress, record) = progress_recorder();
            let command = assign_command(&gold, &c, "false");
            start.wait().await;
            let outcome = store.assign(org, &command, &record).await;
            (c, outcome, progress.version())
        }));
    }
    let nobody = {
        let (store, start) = (store.clone(), start.clone());
        tokio::spawn(async move {
            let change = change(&["VIP"], &[]);
            start.wait().await;
            store
                .change_labels(
                    org,
                    &user("nobody"),
                    &change,
                    &v2_executor(),
                    &Recorder::none(),
                )
                .await
        })
    };
    assert!(matches!(
        nobody.await.expect("ran"),
        Err(Error::UserNotFound)
    ));
    let mut labelled = Vec::new();
    for handle in sent {
        labelled.push(handle.await.expect("ran"));
    }
    let mut assigned = Vec::new();
    for handle in assigns {
        assigned.push(handle.await.expect("ran"));
    }
    let log = whole_log(&store, org, 1000).await.split_off(before);
    let own_entry = |assignment: i64, version: i64| {
        log.iter()
            .find(|e| matches!(&e.change.subject, Subject::Tag(t) if t.assignment_id == assignment && t.version == version))
            .map(|e| e.version)
    };
    for (c, outcome, version) in labelled {
        let warnings = outcome.expect("applied");
        assert_eq!(warnings, vec![LabelWarning::not_found("Nope")], "{c}");
        let listed = store
            .list_user_assignments(org, &user(&c))
            .await
            .expect("listed");
        let vip = listed
            .iter()
            .find(|a| a.group_id == w.flag.id)
            .expect("VIP carried");
        assert_eq!(vip.value, TagValue::Define(true));
        let gold_row = listed.iter().find(|a| a.group_id == gold.id).expect("gold");
        // The request's own entries: its customer's VIP and Gold, written by the v2 door.
        let own: Vec<i64> = log
            .iter()
            .filter(|e| match &e.change.subject {
                Subject::Tag(t) => {
                    (t.assignment_id == vip.id || t.assignment_id == gold_row.id)
                        && t.executor == v2_executor()
                }
                _ => false,
            })
            .map(|e| e.version)
            .collect();
        assert_eq!(own.len(), 2, "{c}: VIP and Gold");
        assert_eq!(
            version,
            own.iter().max().copied(),
            "{c}: its last entry's version"
        );
    }
    for (c, outcome, version) in assigned {
        let assignment = outcome.expect("assigned");
        assert_eq!(version, own_entry(assignment.id, assignment.version), "{c}");
        // Applied in queue order with the changeLabels of the same customer: the final value
        // is whichever came last, and the versions count both.
        let listed = store
            .list_user_assignments(org, &user(&c))
            .await
            .expect("listed");
        let now = listed.iter().find(|a| a.group_id == gold.id).expect("gold");
        assert!(
            now.version >= 1,
            "{c}: two writes of one pair, two versions"
        );
    }
    assert_eq!(
        log.len(),
        16 * 3,
        "VIP and Gold per changeLabels, one assign per customer"
    );
}
