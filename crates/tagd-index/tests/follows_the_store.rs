//! The index is derived state: after random sequences of writes, on both backends, every
//! user's tags and labels and every group's holders read from memory equal what SQL answers.
//! Three indexes watch each sequence: one kept current by the store's own writes (this
//! server), one that only follows the log (another server), and one loaded afresh at the end.

use proptest::prelude::*;
use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};
use tagd_core::bulk::{GroupRef, ImportAssignment, ImportRow};
use tagd_core::labels::LabelChange;
use tagd_core::*;
use tagd_index::{Index, IndexConfig, OrgIndex};
use tagd_store_tests::harness::{self, Fixture};
use tagd_store_tests::suite::{self, app_executor, fields, v2_executor};

const USERS: u8 = 6;
/// flag, number, text, and the labels Gold and Silver.
const GROUPS: u8 = 5;
const LABELS: [&str; 2] = ["Gold", "Silver"];

#[derive(Debug, Clone)]
enum Op {
    Register(u8),
    Assign(u8, u8, u8),
    Remove(u8, u8),
    SetActive(u8, bool),
    Relabel(u8, Vec<u8>, Vec<u8>),
    Import(Vec<(u8, u8, u8)>),
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS;
    let group = 0..GROUPS;
    let labels = || prop::collection::vec(0..2u8, 0..3);
    prop_oneof![
        1 => user.clone().prop_map(Op::Register),
        4 => (user.clone(), group.clone(), any::<u8>()).prop_map(|(u, g, v)| Op::Assign(u, g, v)),
        2 => (user.clone(), group.clone()).prop_map(|(u, g)| Op::Remove(u, g)),
        1 => (group.clone(), any::<bool>()).prop_map(|(g, on)| Op::SetActive(g, on)),
        2 => (user.clone(), labels(), labels()).prop_map(|(u, a, r)| Op::Relabel(u, a, r)),
        1 => prop::collection::vec((user, group, any::<u8>()), 1..6).prop_map(Op::Import),
    ]
}

fn user(i: u8) -> UserId {
    suite::user(&format!("u{i}"))
}

fn value(group: &TagGroup, seed: u8) -> String {
    match group.attribute {
        Attribute::Define => ["True", "False"][usize::from(seed % 2)].to_owned(),
        Attribute::Number => format!("{}.5", seed % 7),
        Attribute::String => ["Pune", "Delhi", "Gold"][usize::from(seed % 3)].to_owned(),
    }
}

struct World {
    store: Arc<dyn Store>,
    org: OrgId,
    groups: Vec<TagGroup>,
}

async fn world(store: Arc<dyn Store>) -> World {
    let org = store.create_org("Acme").await.expect("org").id;
    for i in 0..2 {
        store
            .create_user(org, &user(i), &Recorder::none())
            .await
            .expect("user");
    }
    let specs = [
        ("VIP", "vip", Attribute::Define, "c", app_executor()),
        ("Spend", "spend", Attribute::Number, "c", app_executor()),
        ("City", "city", Attribute::String, "c", app_executor()),
        ("Gold", "gold", Attribute::Define, "label", v2_executor()),
        (
            "Silver",
            "silver",
            Attribute::Define,
            "label",
            v2_executor(),
        ),
    ];
    let mut groups = Vec::new();
    for (name, variable, attribute, category, executor) in specs {
        let f = fields(name, variable, attribute, category);
        let group = store
            .create_tag_group(org, &f, &executor, &Recorder::none())
            .await
            .expect("group");
        groups.push(group);
    }
    World { store, org, groups }
}

impl World {
    /// Applies `op`; a refusal (an unregistered user, an inactive group) is part of the test.
    async fn apply(&self, op: &Op) {
        let (store, org) = (&self.store, self.org);
        let group = |g: &u8| &self.groups[usize::from(*g)];
        let _ = match op {
            Op::Register(u) => store
                .create_user(org, &user(*u), &Recorder::none())
                .await
                .map(|_| ()),
            Op::Assign(u, g, v) => {
                let command = AssignCommand {
                    tags_group_id: group(g).entity_id.clone(),
                    user_id: user(*u),
                    raw_value: value(group(g), *v),
                    executor: app_executor(),
                    source: Source::OpenApi,
                };
                store
                    .assign(org, &command, &Recorder::none())
                    .await
                    .map(|_| ())
            }
            Op::Remove(u, g) => {
                let id = &group(g).entity_id;
                let source = Source::OpenApi;
                store
                    .remove_assignment(
                        org,
                        id,
                        &user(*u),
                        &app_executor(),
                        source,
                        &Recorder::none(),
                    )
                    .await
                    .map(|_| ())
            }
            Op::SetActive(g, on) => {
                let id = &group(g).entity_id;
                store
                    .set_tag_group_active(org, id, *on, &app_executor(), &Recorder::none())
                    .await
                    .map(|_| ())
            }
            Op::Relabel(u, add, remove) => {
                let names = |list: &Vec<u8>| -> Vec<LabelName> {
                    list.iter()
                        .map(|l| LabelName::parse_optional(LABELS[usize::from(*l)]))
                        .map(|n| n.expect("valid").expect("not blank"))
                        .collect()
                };
                let change = LabelChange {
                    add: names(add),
                    remove: names(remove),
                };
                store
                    .change_labels(org, &user(*u), &change, &v2_executor(), &Recorder::none())
                    .await
                    .map(|_| ())
            }
            Op::Import(rows) => {
                let rows: Vec<ImportRow> = rows
                    .iter()
                    .map(|(u, g, v)| ImportRow {
                        user_id: user(*u),
                        assignment: Some(ImportAssignment {
                            group: GroupRef::Id(group(g).entity_id.clone()),
                            raw_value: value(group(g), *v),
                        }),
                    })
                    .collect();
                store
                    .import_batch(org, &rows, &Executor::operator())
                    .await
                    .map(|_| ())
            }
        };
    }

    /// Every user's tags and labels, and every group's holders, from memory and from SQL.
    async fn assert_matches(&self, index: &RwLock<OrgIndex>, which: &str) {
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
            let holders = self.groups.iter().map(|g| index.holders(g.id)).collect();
            (users, holders)
        };
        let mut sql_holders = vec![BTreeSet::new(); self.groups.len()];
        for (u, (tags, labels)) in (0..USERS).zip(memory) {
            let sql_tags = self.store.list_user_assignments(self.org, &user(u)).await;
            let sql_labels = self.store.list_user_labels(self.org, &user(u)).await;
            match sql_tags {
                Ok(rows) => {
                    for row in &rows {
                        let g = self.groups.iter().position(|g| g.id == row.group_id);
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
        for ((group, memory), sql) in self.groups.iter().zip(holders).zip(sql_holders) {
            let sql: Vec<UserId> = sql.into_iter().collect();
            assert_eq!(memory, sql, "{which}: holders of {}", group.variable_name);
        }
    }
}

fn config() -> IndexConfig {
    IndexConfig::default()
}

async fn loaded(index: &Arc<Index>, org: OrgId) -> Arc<RwLock<OrgIndex>> {
    index.load(org).await;
    index.org_index(org).expect("loaded")
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

async fn check(fixture: Option<Fixture>, backend: Backend, ops: Vec<Op>) {
    let Some(fixture) = fixture else { return };
    let world = world(fixture.store.clone()).await;
    let own = Index::new(world.store.clone(), config());
    let follower = Index::follower(world.store.clone(), config());
    let own_view = loaded(&own, world.org).await;
    let follower_view = loaded(&follower, world.org).await;
    world.assert_matches(&own_view, "own writes").await;
    for (step, op) in ops.iter().enumerate() {
        world.apply(op).await;
        let which = format!("own writes after step {step} {op:?}");
        world.assert_matches(&own_view, &which).await;
        follow_to_head(&follower, &world).await;
        let which = format!("follower after step {step} {op:?}");
        world.assert_matches(&follower_view, &which).await;
    }
    let fresh = Index::follower(world.store.clone(), config());
    let fresh_view = loaded(&fresh, world.org).await;
    world.assert_matches(&fresh_view, "loaded afresh").await;
    make_legacy_ids(&fixture, backend).await;
    let legacy = Index::follower(world.store.clone(), config());
    let legacy_view = loaded(&legacy, world.org).await;
    world
        .assert_matches(&legacy_view, "loaded with ids of an earlier version")
        .await;
    fixture.cleanup().await;
}

/// Follows until the follower has applied the organization's head (on PostgreSQL the horizon
/// waits for transactions running anywhere in the cluster).
async fn follow_to_head(index: &Arc<Index>, world: &World) {
    let head = world.store.log_head(world.org).await.expect("head");
    for _ in 0..3000 {
        index.follow_once().await;
        let view = index.org_index(world.org).expect("still loaded");
        if view.read().expect("not poisoned").applied() >= head {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the follower never reached version {head}");
}

#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

fn run(backend: Backend, ops: Vec<Op>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let fixture = match backend {
            Backend::Sqlite => harness::sqlite().await,
            Backend::Postgres => harness::postgres().await,
        };
        check(fixture, backend, ops).await
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn on_sqlite_the_index_answers_what_sql_answers_after_any_writes(
        ops in prop::collection::vec(op(), 1..30)
    ) {
        run(Backend::Sqlite, ops);
    }

    #[test]
    fn on_postgres_the_index_answers_what_sql_answers_after_any_writes(
        ops in prop::collection::vec(op(), 1..30)
    ) {
        run(Backend::Postgres, ops);
    }
}
