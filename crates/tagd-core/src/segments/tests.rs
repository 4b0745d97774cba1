use super::*;
use crate::{Attribute, Error, TagGroup};
use serde_json::{json, Value};

fn parsed(filter: Value) -> Result<Filter> {
    parse(&filter, "filter")
}

fn message(e: Error) -> String {
    e.to_string()
}

fn group(id: i64, variable: &str, attribute: Attribute) -> TagGroup {
    let fields = crate::TagGroupFields::parse(variable, variable, "", attribute.as_str(), "test")
        .expect("valid");
    TagGroup {
        expiry: Default::default(),
        org_id: crate::OrgId(1),
        id,
        entity_id: ExternalId::parse("id", &format!("{id:032x}")).expect("valid"),
        name: fields.name,
        variable_name: fields.variable_name,
        description: fields.description,
        attribute: fields.attribute,
        category: fields.category,
        group_type: "custom".into(),
        is_active: true,
        is_auto: false,
        is_locked: false,
        is_deleted: false,
        calculation_rules: Value::Null,
        updated_by: crate::Executor::operator(),
        version: 1,
        ctime: 0,
        mtime: 0,
    }
}

fn groups(tag: &TagRef) -> Option<TagGroup> {
    let all = [
        group(1, "vip", Attribute::Define),
        group(2, "score", Attribute::Number),
        group(3, "tier", Attribute::String),
    ];
    all.into_iter().find(|g| match tag {
        TagRef::Variable(v) => g.variable_name.as_str() == v,
        TagRef::GroupId(id) => &g.entity_id == id,
    })
}

fn resolved(filter: Value) -> Result<Node> {
    resolve(&parsed(filter)?, &groups, &|_| None, 1_000_000)
}

#[test]
fn a_malformed_node_is_refused_naming_its_path() {
    let e = parsed(json!({"all": [{"tag": "vip"}, {"tag": "score", "op": "bigger", "value": 1}]}));
    assert_eq!(
        message(e.expect_err("refused")),
        "filter.all[1].op: unknown operator `bigger`; one of eq, ne, lt, lte, gt, gte, between, in, prefix, exists"
    );
    let e = parsed(json!({"any": [{"not": {"tag": "vip", "colour": 1}}]})).expect_err("refused");
    assert_eq!(message(e), "filter.any[0].not.colour: is not allowed here");
    let e = parsed(json!({"all": [], "any": []})).expect_err("refused");
    assert!(matches!(e, Error::FilterInvalid { .. }), "{e}");
    assert!(matches!(
        parsed(json!([])).expect_err("refused"),
        Error::FilterInvalid { .. }
    ));
    let e = parsed(json!({"tag": "vip", "value": true})).expect_err("refused");
    assert_eq!(message(e), "filter.value: needs an `op`");
}

#[test]
fn a_filter_over_the_limits_is_too_large() {
    let mut deep = json!({"tag": "vip"});
    for _ in 0..MAX_DEPTH - 1 {
        deep = json!({"not": deep});
    }
    assert!(parsed(deep.clone()).is_ok());
    let e = parsed(json!({"not": deep})).expect_err("refused");
    assert!(matches!(e, Error::FilterTooLarge(_)), "{e}");

    let leaves: Vec<Value> = (0..MAX_LEAVES).map(|_| json!({"tag": "vip"})).collect();
    assert!(parsed(json!({"any": leaves.clone()})).is_ok());
    let mut over = leaves;
    over.push(json!({"tag": "vip"}));
    assert!(matches!(
        parsed(json!({"any": over})).expect_err("refused"),
        Error::FilterTooLarge(_)
    ));

    let values: Vec<i64> = (0..=MAX_IN_VALUES as i64).collect();
    let e = parsed(json!({"tag": "score", "op": "in", "value": values})).expect_err("refused");
    assert_eq!(
        message(e),
        "filter.value: an `in` list holds at most 1000 values"
    );
}

#[test]
fn an_unknown_tag_is_named() {
    let e = resolved(json!({"all": [{"tag": "vip"}, {"tag": "gold"}]})).expect_err("refused");
    assert_eq!(
        message(e),
        "filter.all[1]: tag `gold` not found in this organization"
    );
}

#[test]
fn values_must_fit_the_groups_attribute() {
    let e = resolved(json!({"tag": "score", "op": "gt", "value": "many"})).expect_err("refused");
    assert_eq!(
        message(e),
        "filter.value: must be a number for a number tag"
    );
    let e = resolved(json!({"tag": "vip", "op": "gt", "value": true})).expect_err("refused");
    assert!(message(e).starts_with("filter.op: define tags compare"));
    let e = resolved(json!({"tag": "score", "op": "prefix", "value": "1"})).expect_err("refused");
    assert_eq!(
        message(e),
        "filter.op: `prefix` applies to string tags only"
    );
    let e =
        resolved(json!({"tag": "score", "op": "between", "value": [5, 1]})).expect_err("refused");
    assert_eq!(
        message(e),
        "filter.value: the low end is above the high end"
    );
    assert!(resolved(json!({"tag": "score", "op": "gte", "value": "80"})).is_ok());
}

#[test]
fn a_bare_define_tag_means_true_and_a_bare_other_tag_means_any_value() {
    let Node::Leaf(vip) = resolved(json!({"tag": "vip"})).expect("valid") else {
        panic!()
    };
    assert_eq!(
        vip.test,
        Test::Compare(Comparison::Eq, TagValue::Define(true))
    );
    let Node::Leaf(tier) = resolved(json!({"tag": "tier"})).expect("valid") else {
        panic!()
    };
    assert_eq!(tier.test, Test::Exists);
}

#[test]
fn tests_match_as_documented() {
    let score =
        |op: &str, value: Value| match resolved(json!({"tag": "score", "op": op, "value": value}))
            .expect("valid")
        {
            Node::Leaf(c) => c.test,
            _ => unreachable!(),
        };
    assert!(score("gte", json!(80)).matches(ValueRef::Number(80.0)));
    assert!(!score("gt", json!(80)).matches(ValueRef::Number(80.0)));
    assert!(score("between", json!([1, 2])).matches(ValueRef::Number(2.0)));
    assert!(score("in", json!([1, "2.5"])).matches(ValueRef::Number(2.5)));
    assert!(score("ne", json!(1)).matches(ValueRef::Number(2.0)));
    let tier = Test::Prefix("gold".into());
    assert!(tier.matches(ValueRef::Text("golden")));
    assert!(!tier.matches(ValueRef::Text("Gold")));
    let lt = Test::Compare(Comparison::Lt, TagValue::String("b".into()));
    assert!(lt.matches(ValueRef::Text("a")) && !lt.matches(ValueRef::Text("é")));
}

#[test]
fn an_assigned_window_bounds_the_last_set_time() {
    let node = resolved(
        json!({"tag": "vip", "assigned": {"after": "1970-01-01 00:00:10", "within_days": 1}}),
    );
    let Node::Leaf(c) = node.expect("valid") else {
        panic!()
    };
    assert_eq!(
        c.mtime,
        MtimeRange {
            from: Some(1_000_000 - 86_400),
            until: None
        }
    );
    let e = resolved(json!({"tag": "vip", "assigned": {"within_days": 0}})).expect_err("refused");
    assert!(message(e).starts_with("filter.assigned.within_days:"));
}

#[test]
fn a_segment_that_refers_back_to_itself_is_a_cycle() {
    let a = ExternalId::parse("s", "00000000000000000000000000000001").expect("valid");
    let looped = parsed(json!({"any": [{"tag": "vip"}, {"segment": a.as_str()}]})).expect("valid");
    let saved = looped.clone();
    let e = resolve(&looped, &groups, &|_| Some(saved.clone()), 0).expect_err("refused");
    assert!(matches!(e, Error::FilterTooLarge(_)), "{e}");
    let e = resolve(&looped, &groups, &|_| None, 0).expect_err("refused");
    assert!(matches!(e, Error::SegmentNotFound));
}

#[test]
fn the_compiled_number_test_agrees_with_matches() {
    let tests = [
        Test::Exists,
        Test::Compare(Comparison::Eq, TagValue::Number(2.5)),
        Test::Compare(Comparison::Ne, TagValue::Number(2.5)),
        Test::Compare(Comparison::Lt, TagValue::Number(2.5)),
        Test::Compare(Comparison::Lte, TagValue::Number(2.5)),
        Test::Compare(Comparison::Gt, TagValue::Number(2.5)),
        Test::Compare(Comparison::Gte, TagValue::Number(2.5)),
        Test::Between(TagValue::Number(1.0), TagValue::Number(3.0)),
        Test::In(vec![TagValue::Number(1.0), TagValue::Number(2.5)]),
        Test::Prefix("2".into()),
    ];
    for test in &tests {
        let compiled = test.number_test();
        for x in [f64::NEG_INFINITY, -1.0, 0.0, 1.0, 2.5, 3.0, 3.5, f64::MAX] {
            assert_eq!(
                compiled.passes(x),
                test.matches(ValueRef::Number(x)),
                "{test:?} on {x}"
            );
        }
    }
}

#[test]
fn a_filter_moves_with_the_clock_only_through_a_within_days_window_here_or_in_a_named_segment() {
    let still = parsed(json!({"all": [{"tag": "vip"}, {"not": {"tag": "churned",
        "assigned": {"after": "2026-01-01 00:00:00"}}}]}))
    .expect("valid");
    let recent = parsed(
        json!({"any": [{"tag": "vip"}, {"tag": "score", "op": "gt", "value": 1,
        "assigned": {"within_days": 30}}]}),
    )
    .expect("valid");
    let none = |_: &ExternalId| None;
    assert!(!still.moves_with_clock(&none));
    assert!(recent.moves_with_clock(&none));

    let id = ExternalId::generate();
    let naming = parsed(json!({"not": {"segment": id.as_str()}})).expect("valid");
    let recent_named = |wanted: &ExternalId| (wanted == &id).then(|| recent.clone());
    let still_named = |wanted: &ExternalId| (wanted == &id).then(|| still.clone());
    assert!(naming.moves_with_clock(&recent_named));
    assert!(!naming.moves_with_clock(&still_named));
    let cycle = |_: &ExternalId| Some(naming.clone());
    assert!(naming.moves_with_clock(&cycle), "a cycle is never kept");
}
