//! Segments are derived state too: after random writes, on both backends, every random
//! filter's count and members (in pages, by cursor) from the index equal what the same filter
//! compiled to SQL answers.

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::sync::RwLock;
use tagd_core::saved_segments::SegmentFields;
use tagd_core::segments::{self, Node, SegmentPage};
use tagd_core::timefmt::now_unix;
use tagd_core::*;
use tagd_index::{Index, OrgIndex};
use tagd_store_tests::harness::Fixture;

/// The world's groups by variable name, with their attributes (see `common::world`).
const TAGS: [(&str, Attribute); 5] = [
    ("vip", Attribute::Define),
    ("spend", Attribute::Number),
    ("city", Attribute::String),
    ("gold", Attribute::Define),
    ("silver", Attribute::Define),
];

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0..7i32).prop_map(|n| json!(f64::from(n) + 0.5)),
        (0..7i32).prop_map(|n| json!(n))
    ]
}

fn text() -> impl Strategy<Value = Value> {
    prop::sample::select(vec!["Pune", "Delhi", "Gold", "M", "", "pune"]).prop_map(|t| json!(t))
}

fn test_of(attribute: Attribute) -> BoxedStrategy<Value> {
    let value = match attribute {
        Attribute::Define => any::<bool>().prop_map(|b| json!(b)).boxed(),
        Attribute::Number => number().boxed(),
        Attribute::String => text().boxed(),
    };
    let ordered = ["lt", "lte", "gt", "gte"];
    let mut ops: Vec<BoxedStrategy<Value>> = vec![
        Just(json!({})).boxed(),
        Just(json!({"op": "exists"})).boxed(),
        (prop::sample::select(vec!["eq", "ne"]), value.clone())
            .prop_map(|(op, v)| json!({"op": op, "value": v}))
            .boxed(),
        prop::collection::vec(value.clone(), 1..4)
            .prop_map(|vs| json!({"op": "in", "value": vs}))
            .boxed(),
    ];
    if attribute != Attribute::Define {
        ops.push(
            (prop::sample::select(ordered.to_vec()), value.clone())
                .prop_map(|(op, v)| json!({"op": op, "value": v}))
                .boxed(),
        );
        ops.push(
            (value.clone(), value)
                .prop_filter_map("low above high", |(a, b)| {
                    let ordered = match (a.as_f64(), b.as_f64(), a.as_str(), b.as_str()) {
                        (Some(x), Some(y), _, _) => x <= y,
                        (_, _, Some(x), Some(y)) => x <= y,
                        _ => false,
                    };
                    ordered.then(|| json!({"op": "between", "value": [a, b]}))
                })
                .boxed(),
        );
    }
    if attribute == Attribute::String {
        ops.push(
            prop::sample::select(vec!["P", "De", "", "Gol", "x"])
                .prop_map(|p| json!({"op": "prefix", "value": p}))
                .boxed(),
        );
    }
    prop::strategy::Union::new(ops).boxed()
}

fn window() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        4 => Just(None),
        1 => Just(Some(json!({"within_days": 1}))),
        1 => Just(Some(json!({"before": "2000-01-01 00:00:00"}))),
        1 => Just(Some(json!({"after": "2000-01-01 00:00:00", "before": "2999-01-01 00:00:00"}))),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    (0..TAGS.len())
        .prop_flat_map(|t| (Just(t), test_of(TAGS[t].1), window()))
        .prop_map(|(t, test, window)| {
            let mut leaf = test;
            leaf["tag"] = json!(TAGS[t].0);
            if let Some(window) = window {
                leaf["assigned"] = window;
            }
            leaf
        })
}

fn filter() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|c| json!({"all": c})),
            prop::collection::vec(inner.clone(), 0..4).prop_map(|c| json!({"any": c})),
            inner.prop_map(|c| json!({"not": c})),
        ]
    })
}

/// Every member, page by page of `size`, following the cursor.
fn walk(mut page: impl FnMut(i64) -> SegmentPage) -> (u64, Vec<UserId>) {
    let (mut after, mut members, mut count) = (0, Vec::new(), None);
    loop {
        let p = page(after);
        let first = *count.get_or_insert(p.count);
        assert_eq!(p.count, first, "the count changed between pages");
        after = p.members.last().map_or(after, |m| m.user_ref);
        members.extend(p.members.into_iter().map(|m| m.user_id));
        if !p.has_more {
            return (first, members);
        }
    }
}

/// Every filter selects in memory what it selects in SQL; and where the filter is also a saved
/// segment whose members the index keeps, the kept members are the same users.
async fn assert_segments_match(
    world: &World,
    index: &RwLock<OrgIndex>,
    filters: &[(Node, Option<i64>)],
    which: &str,
) {
    for (node, saved) in filters {
        let sql = world
            .store
            .segment_page(world.org, node, 0, 1000)
            .await
            .expect("SQL answers");
        let sql_members: Vec<UserId> = sql.members.iter().map(|m| m.user_id.clone()).collect();
        let index = index.read().expect("not poisoned");
        assert!(index.fresh(), "{which}: stale");
        let (count, members) = walk(|after| index.segment_page(node, after, 2));
        assert_eq!(
            (count, &members),
            (sql.count, &sql_members),
            "{which}: {node:?}"
        );
        let Some(kept) = saved.and_then(|id| index.kept_members(id)) else {
            continue;
        };
        let kept_users: Vec<UserId> = (0..=u8::MAX)
            .map(user)
            .filter(|u| index.ordinal_of(u).is_some_and(|o| kept.contains(&o)))
            .collect();
        let mut expected = sql_members.clone();
        expected.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        let mut kept_sorted = kept_users;
        kept_sorted.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        assert_eq!(kept_sorted, expected, "{which}: kept members of {node:?}");
    }
}

/// Saves each filter as a segment; its internal id where the store took it.
async fn saved(world: &World, filters: &[Value]) -> Vec<Option<i64>> {
    let mut ids = Vec::new();
    for (i, filter) in filters.iter().enumerate() {
        let fields = SegmentFields {
            name: format!("segment {i}"),
            description: Description::parse("description", "", 1024).expect("empty"),
            filter: filter.clone(),
        };
        let made = world
            .store
            .create_segment(world.org, &fields, &Recorder::none())
            .await;
        ids.push(made.ok().map(|s| s.id));
    }
    ids
}

fn resolved(world: &World, filters: &[Value]) -> Vec<Node> {
    let now = now_unix();
    let group = |tag: &segments::TagRef| world.groups.iter().find(|g| tag.names(g)).cloned();
    filters
        .iter()
        .map(|f| {
            let parsed = segments::parse(f, "filter").expect("a valid filter");
            segments::resolve(&parsed, &group, &|_| None, now).expect("resolves")
        })
        .collect()
}

async fn check(fixture: Fixture, ops: Vec<Op>, filters: Vec<Value>) -> usize {
    let world = world(fixture.store.clone()).await;
    let ids = saved(&world, &filters).await;
    let filters: Vec<(Node, Option<i64>)> =
        resolved(&world, &filters).into_iter().zip(ids).collect();
    let own = Index::new(world.store.clone(), config());
    let follower = Index::follower(world.store.clone(), config());
    let own_view = loaded(&own, &world).await;
    let follower_view = loaded(&follower, &world).await;
    for (step, op) in ops.iter().enumerate() {
        world.apply(op).await;
        let which = format!("own writes after step {step} {op:?}");
        assert_segments_match(&world, &own_view, &filters, &which).await;
        follow_to_head(&follower, &world).await;
        let which = format!("follower after step {step} {op:?}");
        assert_segments_match(&world, &follower_view, &filters, &which).await;
    }
    let fresh = Index::follower(world.store.clone(), config());
    let fresh_view = loaded(&fresh, &world).await;
    assert_segments_match(&world, &fresh_view, &filters, "loaded afresh").await;
    let kept = {
        let index = fresh_view.read().expect("not poisoned");
        filters
            .iter()
            .filter(|(_, id)| id.is_some_and(|id| index.kept_members(id).is_some()))
            .count()
    };
    fixture.cleanup().await;
    kept
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn on_sqlite_every_filter_selects_in_memory_what_it_selects_in_sql(
        ops in prop::collection::vec(op(), 1..24),
        filters in prop::collection::vec(filter(), 1..6),
    ) {
        on(Backend::Sqlite, |f| async { check(f, ops, filters).await; });
    }

    #[test]
    fn on_postgres_every_filter_selects_in_memory_what_it_selects_in_sql(
        ops in prop::collection::vec(op(), 1..24),
        filters in prop::collection::vec(filter(), 1..6),
    ) {
        on(Backend::Postgres, |f| async { check(f, ops, filters).await; });
    }
}

/// Two users with `vip` among a hundred with `spend` and `city`: the cells of so few candidates
/// are looked up one by one instead of read in order, a path the small random worlds above
/// rarely take.
fn few_candidates_among_many_holders() -> (Vec<Op>, Vec<Value>) {
    let mut ops: Vec<Op> = (0..100).map(Op::Register).collect();
    ops.push(Op::Import(
        (0..100).flat_map(|u| [(u, 1, u), (u, 2, u)]).collect(),
    ));
    // Seed 0 is `True` for a define group (`common::value`).
    ops.extend([
        Op::Assign(3, 0, 0),
        Op::Assign(52, 0, 0),
        Op::Assign(7, 0, 0),
    ]);
    let filters = vec![
        json!({"all": [{"tag": "vip"}, {"tag": "spend", "op": "gt", "value": 2}]}),
        json!({"all": [{"tag": "vip", "op": "eq", "value": true}, {"tag": "city", "op": "prefix", "value": "P"},
                       {"not": {"tag": "spend", "op": "lt", "value": 1}}]}),
    ];
    (ops, filters)
}

#[test]
fn on_sqlite_a_few_candidates_among_many_holders_select_what_sql_selects() {
    let (ops, filters) = few_candidates_among_many_holders();
    on(Backend::Sqlite, |f| async {
        assert_eq!(check(f, ops, filters).await, 2, "both saved segments kept");
    });
}

#[test]
fn on_postgres_a_few_candidates_among_many_holders_select_what_sql_selects() {
    let (ops, filters) = few_candidates_among_many_holders();
    on(Backend::Postgres, |f| async {
        assert_eq!(check(f, ops, filters).await, 2, "both saved segments kept");
    });
}
