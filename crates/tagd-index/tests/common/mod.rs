//! What the index's property tests share: a small organization, random writes to it, and
//! the ways an index is brought level with the store.

#![allow(dead_code)] // each test file uses its part

use proptest::prelude::*;
use std::sync::{Arc, RwLock};
use tagd_core::bulk::{GroupRef, ImportAssignment, ImportRow};
use tagd_core::labels::LabelChange;
use tagd_core::*;
use tagd_index::{Index, IndexConfig, OrgIndex};
use tagd_store_tests::harness::{self, Fixture};
use tagd_store_tests::suite::{self, app_executor, fields, v2_executor};

pub const USERS: u8 = 6;
/// flag, number, text, and the labels Gold and Silver.
pub const GROUPS: u8 = 5;
const LABELS: [&str; 2] = ["Gold", "Silver"];

#[derive(Debug, Clone)]
pub enum Op {
    Register(u8),
    Assign(u8, u8, u8),
    Remove(u8, u8),
    SetActive(u8, bool),
    Relabel(u8, Vec<u8>, Vec<u8>),
    Import(Vec<(u8, u8, u8)>),
    /// An assignment with an expiry: already passed (`true`: written expired, as a value
    /// whose time ran out before the sweep) or an hour ahead.
    AssignExpiring(u8, u8, u8, bool),
    /// The expiry sweep records what has expired.
    Sweep,
}

pub fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS;
    let group = 0..GROUPS;
    let labels = || prop::collection::vec(0..2u8, 0..3);
    prop_oneof![
        1 => user.clone().prop_map(Op::Register),
        4 => (user.clone(), group.clone(), any::<u8>()).prop_map(|(u, g, v)| Op::Assign(u, g, v)),
        2 => (user.clone(), group.clone()).prop_map(|(u, g)| Op::Remove(u, g)),
        1 => (group.clone(), any::<bool>()).prop_map(|(g, on)| Op::SetActive(g, on)),
        2 => (user.clone(), labels(), labels()).prop_map(|(u, a, r)| Op::Relabel(u, a, r)),
        1 => prop::collection::vec((user.clone(), group.clone(), any::<u8>()), 1..6).prop_map(Op::Import),
        2 => (user, group, any::<u8>(), any::<bool>())
            .prop_map(|(u, g, v, expired)| Op::AssignExpiring(u, g, v, expired)),
        1 => Just(Op::Sweep),
    ]
}

pub fn user(i: u8) -> UserId {
    suite::user(&format!("u{i}"))
}

pub fn value(group: &TagGroup, seed: u8) -> String {
    match group.attribute {
        Attribute::Define => ["True", "False"][usize::from(seed % 2)].to_owned(),
        Attribute::Number => format!("{}.5", seed % 7),
        Attribute::String => ["Pune", "Delhi", "Gold"][usize::from(seed % 3)].to_owned(),
    }
}

pub struct World {
    pub store: Arc<dyn Store>,
    pub org: OrgId,
    pub groups: Vec<TagGroup>,
}

pub async fn world(store: Arc<dyn Store>) -> World {
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
    /// Assigns user `u` the value `v` of `group`, as the test app, with `expiry`.
    async fn assign(
        &self,
        u: u8,
        group: &TagGroup,
        v: u8,
        expiry: Option<tagd_core::expiry::RequestedExpiry>,
    ) -> Result<()> {
        let command = AssignCommand {
            expiry,
            tags_group_id: group.entity_id.clone(),
            user_id: user(u),
            raw_value: value(group, v),
            executor: app_executor(),
            source: Source::OpenApi,
        };
        let none = Recorder::none();
        self.store
            .assign(self.org, &command, &none)
            .await
            .map(|_| ())
    }

    /// Applies `op`; a refusal (an unregistered user, an inactive group) is part of the test.
    pub async fn apply(&self, op: &Op) {
        let (store, org) = (&self.store, self.org);
        let group = |g: &u8| &self.groups[usize::from(*g)];
        let _ = match op {
            Op::Register(u) => store
                .create_user(org, &user(*u), &Recorder::none())
                .await
                .map(|_| ()),
            Op::Assign(u, g, v) => self.assign(*u, group(g), *v, None).await,
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
                    expiry: Default::default(),
                    add: names(add),
                    remove: names(remove),
                };
                store
                    .change_labels(org, &user(*u), &change, &v2_executor(), &Recorder::none())
                    .await
                    .map(|_| ())
            }
            Op::AssignExpiring(u, g, v, expired) => {
                let now = tagd_core::timefmt::now_unix();
                let at = if *expired { now - 1 } else { now + 3_600 };
                let expiry = Some(tagd_core::expiry::RequestedExpiry::At(at));
                self.assign(*u, group(g), *v, expiry).await
            }
            Op::Sweep => {
                let now = tagd_core::timefmt::now_unix();
                store.expire_due(now, None, 1_000).await.map(|_| ())
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
}

pub fn config() -> IndexConfig {
    IndexConfig::default()
}

/// Loads the world's organization into `index` and follows the log to its head. On
/// PostgreSQL a load may start below the head (the horizon waits while any transaction in the
/// cluster runs, autoanalyze's included) and reads come from SQL until the cursor reaches it.
pub async fn loaded(index: &Arc<Index>, world: &World) -> Arc<RwLock<OrgIndex>> {
    index.load(world.org).await;
    let view = index.org_index(world.org).expect("loaded");
    follow_to_head(index, world).await;
    view
}

/// Follows until the follower has applied the organization's head (on PostgreSQL the horizon
/// waits for transactions running anywhere in the cluster).
pub async fn follow_to_head(index: &Arc<Index>, world: &World) {
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
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs `test` on a fresh database of `backend` (skipped when PostgreSQL is not configured).
pub fn on<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Fixture) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
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
        if let Some(fixture) = fixture {
            test(fixture).await;
        }
    });
}
