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
