//! On PostgreSQL, a write that fails inside a shared transaction of coalesced writes fails
//! alone: the transaction rolls back and every other write of it runs again and commits.

use sqlx::Connection;
use std::sync::Arc;
use tagd_core::{Error, Recorder};
use tagd_store_tests::harness::{postgres_at, POSTGRES_URL_VAR};
use tagd_store_tests::suite::{assign_command, user, world};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_that_fails_among_coalesced_writes_fails_alone_and_the_others_commit() {
    let Ok(url) = std::env::var(POSTGRES_URL_VAR) else {
        eprintln!("{POSTGRES_URL_VAR} is not set: PostgreSQL test not run");
        return;
    };
    // A write that waits 300 ms for a row lock fails, as a database error.
    let separator = if url.contains('?') { '&' } else { '?' };
    let with_timeout = format!("{url}{separator}options=-c%20lock_timeout%3D300");
    let Some(fixture) = postgres_at(&with_timeout).await else {
        return;
    };
    let store = fixture.store.clone();
    let w = world(&store, "Acme").await;
    let org = w.org.id;
    for i in 0..40 {
        store
            .create_user(org, &user(&format!("c{i}")), &Recorder::none())
            .await
            .expect("user created");
    }
    let command = assign_command(&w.number, "u1", "1");
    store
        .assign(org, &command, &Recorder::none())
        .await
        .expect("u1 assigned");

    // Another session holds u1's assignment row.
    let mut holder = sqlx::PgConnection::connect(&fixture.url)
        .await
        .expect("second session");
    sqlx::query("BEGIN")
        .execute(&mut holder)
        .await
        .expect("begin");
    sqlx::query("SELECT 1 FROM tag_assignments FOR UPDATE")
        .execute(&mut holder)
        .await
        .expect("row locked");

    let start = Arc::new(tokio::sync::Barrier::new(41));
    let mut sent = Vec::new();
    for user_id in std::iter::once("u1".to_owned()).chain((0..40).map(|i| format!("c{i}"))) {
        let (store, start, group) = (store.clone(), start.clone(), w.number.clone());
        sent.push(tokio::spawn(async move {
            let command = assign_command(&group, &user_id, "2");
            start.wait().await;
            (
                user_id,
                store.assign(org, &command, &Recorder::none()).await,
            )
        }));
    }
    for handle in sent {
        let (user_id, outcome) = handle.await.expect("the write task ran");
        match (user_id.as_str(), outcome) {
            ("u1", Err(Error::Busy(_) | Error::Internal(_))) => {}
            ("u1", other) => panic!("u1's row is locked, yet: {other:?}"),
            (_, Ok(assignment)) => assert_eq!(assignment.value.to_text(), "2"),
            (_, Err(e)) => panic!("{user_id} failed with u1: {e}"),
        }
    }
    sqlx::query("ROLLBACK")
        .execute(&mut holder)
        .await
        .expect("released");
    for i in 0..40 {
        let listed = store
            .list_user_assignments(org, &user(&format!("c{i}")))
            .await
            .expect("listed");
        assert_eq!(listed.len(), 1, "c{i} committed once");
    }
    fixture.cleanup().await;
}
