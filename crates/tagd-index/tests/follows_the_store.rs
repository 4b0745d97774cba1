//! The index is derived state: after random sequences of writes, on both backends, every
//! user's tags and labels, every group's holders, and the organization's counts of users and
//! live values read from memory equal what SQL answers.
//! Three indexes watch each sequence: one kept current by the store's own writes (this
//! server), one that only follows the log (another server), and one loaded afresh at the end.

mod common;

use common::*;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::sync::RwLock;
use tagd_core::*;
use tagd_index::{Index, OrgIndex};
use tagd_store_tests::harness::Fixture;

/// Every user's tags and labels, and every group's holders, from memory and from SQL.
async fn assert_matches(world: &World, index: &RwLock<OrgIndex>, which: &str) {
    type Answer = Option<Vec<Assignment>>;
    let (memory, holders): (Vec<(Answer, Answer)>, Vec<Vec<UserId>>) = {
        let index = index.read().expect("not poisoned");
        assert!(index.fresh(), "{which}: stale");
        let users = (0..USERS)
            .map(|u| {
                (
                    index.user_assignments(&user(u)),
                    index.user_labels(&user(u)),
                )
            })
            .collect();
        let holders = world.groups.iter().map(|g| index.holders(g.id)).collect();
        (users, holders)
    };
    let mut sql_holders = vec![BTreeSet::new(); world.groups.len()];
    for (u, (tags, labels)) in (0..USERS).zip(memory) {
        let sql_tags = world.store.list_user_assignments(world.org, &user(u)).await;
        let sql_labels = world.store.list_user_labels(world.org, &user(u)).await;
        match sql_tags {
            Ok(rows) => {
                for row in &rows {
                    let g = world.groups.iter().position(|g| g.id == row.group_id);
                    sql_holders[g.expect("a world group")].insert(user(u));
                }
                assert_eq!(tags, Some(rows), "{which}: tags of u{u}");
                assert_eq!(labels, sql_labels.ok(), "{which}: labels of u{u}");
            }
            Err(Error::UserNotFound) => {
                assert_eq!((tags, labels), (None, None), "{which}: u{u} is unknown");
            }
            Err(e) => panic!("SQL failed: {e}"),
        }
    }
    for ((group, memory), sql) in world.groups.iter().zip(holders).zip(sql_holders) {
        let sql: Vec<UserId> = sql.into_iter().collect();
        assert_eq!(memory, sql, "{which}: holders of {}", group.variable_name);
    }
    // An overview's counts (the console's): users and live values once due expiries are
    // dropped, as `Index::counts` answers them, equal SQL's count of every row.
    let counted = {
        let mut index = index.write().expect("not poisoned");
        index.expire_due(tagd_core::timefmt::now_unix());
        (index.user_count() as i64, index.live_values() as i64)
    };
    let sql = world.store.org_counts(world.org).await.expect("SQL counts");
    let sql = (sql.users, sql.live_assignments);
    assert_eq!(counted, sql, "{which}: users and live values");
}

/// Gives every other assignment a random external id, as ids made before they were computed
/// from the pair look (behind tagd's back: the one thing done to the database directly).
async fn make_legacy_ids(fixture: &Fixture, backend: Backend) {
    use sqlx::Connection;
    let (sqlite, postgres) = (
        "UPDATE tag_assignments SET entity_id = lower(hex(randomblob(16))) WHERE id % 2 = 0",
        "UPDATE tag_assignments SET entity_id = md5(random()::text) WHERE id % 2 = 0",
    );
    match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&fixture.url)
                .await
                .expect("connects");
            sqlx::query(sqlite).execute(&mut conn).await.expect("ids");
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&fixture.url)
                .await
                .expect("connects");
            sqlx::query(postgres).execute(&mut conn).await.expect("ids");
        }
    }
}

async fn check(fixture: Fixture, backend: Backend, ops: Vec<Op>) {
    let world = world(fixture.store.clone()).await;
    let own = Index::new(world.store.clone(), config());
    let follower = Index::follower(world.store.clone(), config());
    let own_view = loaded(&own, &world).await;
    let follower_view = loaded(&follower, &world).await;
    assert_matches(&world, &own_view, "own writes").await;
    for (step, op) in ops.iter().enumerate() {
        world.apply(op).await;
        let which = format!("own writes after step {step} {op:?}");
        assert_matches(&world, &own_view, &which).await;
        follow_to_head(&follower, &world).await;
        let which = format!("follower after step {step} {op:?}");
        assert_matches(&world, &follower_view, &which).await;
    }
    let fresh = Index::follower(world.store.clone(), config());
    let fresh_view = loaded(&fresh, &world).await;
    assert_matches(&world, &fresh_view, "loaded afresh").await;
    make_legacy_ids(&fixture, backend).await;
    let legacy = Index::follower(world.store.clone(), config());
    let legacy_view = loaded(&legacy, &world).await;
    assert_matches(
        &world,
        &legacy_view,
        "loaded with ids of an earlier version",
    )
    .await;
    fixture.cleanup().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn on_sqlite_the_index_answers_what_sql_answers_after_any_writes(
        ops in prop::collection::vec(op(), 1..30)
    ) {
        on(Backend::Sqlite, |f| check(f, Backend::Sqlite, ops));
    }

    #[test]
    fn on_postgres_the_index_answers_what_sql_answers_after_any_writes(
        ops in prop::collection::vec(op(), 1..30)
    ) {
        on(Backend::Postgres, |f| check(f, Backend::Postgres, ops));
    }
}
