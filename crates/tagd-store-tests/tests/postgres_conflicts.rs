//! On PostgreSQL, a write the database rolls back to break a deadlock runs again inside
//! tagd and succeeds: the client never sees the deadlock.

use sqlx::Connection;
use std::time::Duration;
use tagd_core::{Recorder, Store};
use tagd_store_tests::harness::{postgres_at, Fixture, POSTGRES_URL_VAR};
use tagd_store_tests::suite::{assign_command, world, World};

/// Another session that locks `u1`'s assignment row, waits until tagd's write queues
/// behind it (holding its share lock on the group), then asks for the group row: a
/// deadlock, which PostgreSQL breaks by aborting tagd's transaction (this session waits
/// ten seconds before it would look for deadlocks itself, tagd's one second).
async fn deadlock_with(
    fixture: &Fixture,
    w: &World,
    start_write: impl FnOnce() -> tokio::task::JoinHandle<bool>,
) -> bool {
    let mut holder = sqlx::PgConnection::connect(&fixture.url)
        .await
        .expect("second session");
    for statement in ["SET deadlock_timeout = '10s'", "BEGIN"] {
        sqlx::query(statement)
            .execute(&mut holder)
            .await
            .expect(statement);
    }
    sqlx::query("SELECT 1 FROM tag_assignments WHERE org_id = $1 FOR UPDATE")
        .bind(w.org.id.0)
        .execute(&mut holder)
        .await
        .expect("assignment row locked");
    let write = start_write();
    let holder_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut holder)
        .await
        .expect("pid");
    write_waits_for(fixture, holder_pid).await;
    sqlx::query("SELECT 1 FROM tag_groups WHERE org_id = $1 FOR UPDATE")
        .bind(w.org.id.0)
        .execute(&mut holder)
        .await
        .expect("the group lock, once tagd's transaction was aborted");
    sqlx::query("COMMIT")
        .execute(&mut holder)
        .await
        .expect("committed");
    write.await.expect("the write task ran")
}

/// Waits until a session waits for a lock that session `holder_pid` holds.
async fn write_waits_for(fixture: &Fixture, holder_pid: i32) {
    let mut watcher = sqlx::PgConnection::connect(&fixture.url)
        .await
        .expect("watcher session");
    for _ in 0..200 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
        )
        .bind(holder_pid)
        .fetch_one(&mut watcher)
        .await
        .expect("activity");
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("tagd's write never waited for the row lock");
}

async fn fixture_with_u1_assigned() -> Option<(Fixture, World)> {
    let Ok(url) = std::env::var(POSTGRES_URL_VAR) else {
        eprintln!("{POSTGRES_URL_VAR} is not set: PostgreSQL test not run");
        return None;
    };
    let fixture = postgres_at(&url).await?;
    let w = world(&fixture.store, "Acme").await;
    fixture
        .store
        .assign(
            w.org.id,
            &assign_command(&w.number, "u1", "1"),
            &Recorder::none(),
        )
        .await
        .expect("u1 assigned");
    Some((fixture, w))
}

async fn value_of_u1(store: &std::sync::Arc<dyn Store>, w: &World) -> String {
    let listed = store
        .list_user_assignments(w.org.id, &tagd_store_tests::suite::user("u1"))
        .await
        .expect("listed");
    listed
        .iter()
        .find(|a| a.group_id == w.number.id)
        .map(|a| a.value.to_text())
        .expect("u1's number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_assign_aborted_by_a_deadlock_runs_again_and_succeeds() {
    let Some((fixture, w)) = fixture_with_u1_assigned().await else {
        return;
    };
    let (store, org, command) = (
        fixture.store.clone(),
        w.org.id,
        assign_command(&w.number, "u1", "2"),
    );
    let write = || {
        tokio::spawn(async move {
            let outcome = store.assign(org, &command, &Recorder::none()).await;
            outcome.map_err(|e| eprintln!("assign failed: {e}")).is_ok()
        })
    };
    assert!(
        deadlock_with(&fixture, &w, write).await,
        "the deadlock reached the client"
    );
    assert_eq!(value_of_u1(&fixture.store, &w).await, "2");
    fixture.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_aborted_by_a_deadlock_runs_again_and_succeeds() {
    let Some((fixture, w)) = fixture_with_u1_assigned().await else {
        return;
    };
    let (store, org, commands) = (
        fixture.store.clone(),
        w.org.id,
        vec![assign_command(&w.number, "u1", "3")],
    );
    let write = || {
        tokio::spawn(async move {
            match store.assign_batch(org, &commands, &Recorder::none()).await {
                Ok(outcomes) => outcomes.iter().all(Result::is_ok),
                Err(e) => {
                    eprintln!("batch failed: {e}");
                    false
                }
            }
        })
    };
    assert!(
        deadlock_with(&fixture, &w, write).await,
        "the deadlock reached the client"
    );
    assert_eq!(value_of_u1(&fixture.store, &w).await, "3");
    fixture.cleanup().await;
}
