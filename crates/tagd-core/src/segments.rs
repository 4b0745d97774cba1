//! Segments: the filter language of API.md §10, parsed, limited and resolved here once. The
//! index evaluates a resolved [`Node`] in memory with [`Test::matches`]; the SQL layer
//! compiles the same tree to SQL (the fallback, and the oracle the index is tested against).
//!
//! Two steps, so each error is found where it can be: [`parse`] needs only the JSON (shape,
//! operators, limits: 40006 and 40007, each naming its path); [`resolve`] needs the
//! organization's tag groups (unknown tags: 40401; a value that does not fit the group's
//! attribute, or an operator the attribute has no meaning for: 40006).

use crate::{Attribute, Error, ExternalId, Result, TagGroup, TagValue};
use serde_json::{Map, Value};

/// A filter may nest this deep (a lone leaf is depth 1).
pub const MAX_DEPTH: usize = 6;
/// Leaves in one filter.
pub const MAX_LEAVES: usize = 64;
/// Values of one `in` list.
pub const MAX_IN_VALUES: usize = 1000;
/// `within_days` of an `assigned` window: ten years.
pub const MAX_WITHIN_DAYS: i64 = 3653;

/// A filter as a client wrote it, checked for shape and limits.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    All(Vec<Filter>),
    Any(Vec<Filter>),
    Not(Box<Filter>),
    Segment { path: String, id: ExternalId },
    Leaf(Leaf),
}

/// How a leaf names its tag group.
#[derive(Debug, Clone, PartialEq)]
pub enum TagRef {
    Variable(String),
    GroupId(ExternalId),
}

impl TagRef {
    /// Whether `group` is the one this names (deleted groups are never named).
    pub fn names(&self, group: &TagGroup) -> bool {
        !group.is_deleted
            && match self {
                TagRef::Variable(name) => group.variable_name.as_str() == name,
                TagRef::GroupId(id) => &group.entity_id == id,
            }
    }

    fn describe(&self) -> String {
        match self {
            TagRef::Variable(name) => format!("tag `{name}`"),
            TagRef::GroupId(id) => format!("tag group `{id}`"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Leaf {
    /// Where the leaf is, as errors name it (`filter.all[2]`).
    pub path: String,
    pub tag: TagRef,
    pub op: Op,
    pub assigned: Window,
}

/// An operator with the JSON values it was given; typed when the group is known.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// No operator: has a live value, and for `define` groups the value true.
    Holds,
    Exists,
    Compare(Comparison, Value),
    Between(Value, Value),
    In(Vec<Value>),
    Prefix(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
}

/// `assigned`: when the live value was last set (its mtime), in Unix seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// mtime ≥ after.
    pub after: Option<i64>,
    /// mtime < before.
    pub before: Option<i64>,
    /// mtime ≥ now − days.
    pub within_days: Option<i64>,
}

fn invalid(path: &str, message: impl Into<String>) -> Error {
    Error::FilterInvalid {
        path: path.to_owned(),
        message: message.into(),
    }
}

fn too_large(path: &str, message: impl Into<String>) -> Error {
    Error::FilterTooLarge(format!("{path}: {}", message.into()))
}

/// Parses a filter; `path` names its root in errors (`filter`).
pub fn parse(json: &Value, path: &str) -> Result<Filter> {
    let mut leaves = 0;
    let filter = parse_node(json, path, 1, &mut leaves)?;
    Ok(filter)
}

fn parse_node(json: &Value, path: &str, depth: usize, leaves: &mut usize) -> Result<Filter> {
    if depth > MAX_DEPTH {
        return Err(too_large(
            path,
            format!("the filter nests deeper than {MAX_DEPTH} levels"),
        ));
    }
    let Value::Object(node) = json else {
        return Err(invalid(path, "must be an object"));
    };
    let kinds: Vec<&str> = ["all", "any", "not", "segment", "tag", "tags_group_id"]
        .into_iter()
        .filter(|k| node.contains_key(*k))
        .collect();
    let kind = match kinds.as_slice() {
        [one] => *one,
        [] => {
            return Err(invalid(
                path,
                "must have one of `all`, `any`, `not`, `segment`, `tag` or `tags_group_id`",
            ))
        }
        [first, second, ..] => {
            return Err(invalid(
                path,
                format!("has both `{first}` and `{second}`; a node is one of them"),
            ))
        }
    };
    match kind {
        "all" | "any" => {
            only_keys(node, path, &[kind])?;
            let Value::Array(children) = &node[kind] else {
                return Err(invalid(&format!("{path}.{kind}"), "must be a list"));
            };
            let children = children
                .iter()
                .enumerate()
                .map(|(i, child)| {
                    parse_node(child, &format!("{path}.{kind}[{i}]"), depth + 1, leaves)
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(if kind == "all" {
                Filter::All(children)
            } else {
                Filter::Any(children)
            })
        }
        "not" => {
            only_keys(node, path, &["not"])?;
            let child = parse_node(&node["not"], &format!("{path}.not"), depth + 1, leaves)?;
            Ok(Filter::Not(Box::new(child)))
        }
        "segment" => {
            only_keys(node, path, &["segment"])?;
            let at = format!("{path}.segment");
            let id = node["segment"]
                .as_str()
                .ok_or_else(|| invalid(&at, "must be a segment id (32 hex characters)"))?;
            let id = ExternalId::parse("segment", id)
                .map_err(|_| invalid(&at, "must be a segment id (32 hex characters)"))?;
            Ok(Filter::Segment { path: at, id })
        }
        _ => {
            *leaves += 1;
            if *leaves > MAX_LEAVES {
                return Err(too_large(
                    path,
                    format!("the filter has more than {MAX_LEAVES} leaves"),
                ));
            }
            parse_leaf(node, path, kind).map(Filter::Leaf)
        }
    }
}

fn only_keys(node: &Map<String, Value>, path: &str, allowed: &[&str]) -> Result<()> {
    match node.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(invalid(&format!("{path}.{key}"), "is not allowed here")),
        None => Ok(()),
    }
}

fn parse_leaf(node: &Map<String, Value>, path: &str, kind: &str) -> Result<Leaf> {
    only_keys(node, path, &[kind, "op", "value", "assigned"])?;
    let at = format!("{path}.{kind}");
    let text = node[kind]
        .as_str()
        .ok_or_else(|| invalid(&at, "must be a string"))?;
    let tag = if kind == "tag" {
        if text.is_empty() {
            return Err(invalid(&at, "must not be empty"));
        }
        TagRef::Variable(text.to_owned())
    } else {
        TagRef::GroupId(
            ExternalId::parse("tags_group_id", text)
                .map_err(|_| invalid(&at, "must be a tag group id (32 hex characters)"))?,
        )
    };
    let value = node.get("value");
    let value_at = format!("{path}.value");
    let op = match node.get("op") {
        None => match value {
            Some(_) => return Err(invalid(&value_at, "needs an `op`")),
            None => Op::Holds,
        },
        Some(op) => {
            let op_at = format!("{path}.op");
            let name = op
                .as_str()
                .ok_or_else(|| invalid(&op_at, "must be a string"))?;
            parse_op(name, value, &op_at, &value_at)?
        }
    };
    let assigned = match node.get("assigned") {
        None => Window::default(),
        Some(window) => parse_window(window, &format!("{path}.assigned"))?,
    };
    Ok(Leaf {
        path: path.to_owned(),
        tag,
        op,
        assigned,
    })
}

fn parse_op(name: &str, value: Option<&Value>, op_at: &str, value_at: &str) -> Result<Op> {
    let needed = || {
        value
            .cloned()
            .ok_or_else(|| invalid(value_at, format!("is required by `{name}`")))
    };
    let comparison = match name {
        "eq" => Comparison::Eq,
        "ne" => Comparison::Ne,
        "lt" => Comparison::Lt,
        "lte" => Comparison::Lte,
        "gt" => Comparison::Gt,
        "gte" => Comparison::Gte,
        "exists" => {
            return match value {
                Some(_) => Err(invalid(value_at, "is not allowed with `exists`")),
                None => Ok(Op::Exists),
            }
        }
        "between" => {
            return match needed()? {
                Value::Array(pair) if pair.len() == 2 => Ok(Op::Between(pair[0].clone(), pair[1].clone())),
                _ => Err(invalid(value_at, "must be a list of two values [low, high]")),
            }
        }
        "in" => {
            let Value::Array(values) = needed()? else {
                return Err(invalid(value_at, "must be a list of values"));
            };
            if values.is_empty() {
                return Err(invalid(value_at, "must hold at least one value"));
            }
            if values.len() > MAX_IN_VALUES {
                return Err(too_large(
                    value_at,
                    format!("an `in` list holds at most {MAX_IN_VALUES} values"),
                ));
            }
            return Ok(Op::In(values));
        }
        "prefix" => {
            return match needed()? {
                Value::String(prefix) => Ok(Op::Prefix(prefix)),
                _ => Err(invalid(value_at, "must be a string")),
            }
        }
        other => {
            return Err(invalid(
                op_at,
                format!(
                    "unknown operator `{other}`; one of eq, ne, lt, lte, gt, gte, between, in, prefix, exists"
                ),
            ))
        }
    };
    Ok(Op::Compare(comparison, needed()?))
}

fn parse_window(json: &Value, path: &str) -> Result<Window> {
    let Value::Object(window) = json else {
        return Err(invalid(path, "must be an object"));
    };
    only_keys(window, path, &["after", "before", "within_days"])?;
    let time = |key: &str| -> Result<Option<i64>> {
        let at = format!("{path}.{key}");
        window
            .get(key)
            .map(|v| {
                v.as_str()
                    .and_then(crate::timefmt::parse_time)
                    .ok_or_else(|| invalid(&at, "must be a time `YYYY-MM-DD HH:MM:SS` (UTC)"))
            })
            .transpose()
    };
    let within_days = window
        .get("within_days")
        .map(|v| {
            v.as_i64()
                .filter(|d| (1..=MAX_WITHIN_DAYS).contains(d))
                .ok_or_else(|| {
                    invalid(
                        &format!("{path}.within_days"),
                        format!("must be a whole number of days from 1 to {MAX_WITHIN_DAYS}"),
                    )
                })
        })
        .transpose()?;
    Ok(Window {
        after: time("after")?,
        before: time("before")?,
        within_days,
    })
}

// ---------------------------------------------------------------------------------------------
// Resolved filters

/// A filter with its tags resolved to the organization's groups and its values typed: what
/// the index evaluates and the SQL layer compiles.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    Leaf(Condition),
}

/// One leaf: the users holding a live value of `group_ref` that passes `test`, set within
/// `mtime`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub group_ref: i64,
    pub attribute: Attribute,
    pub test: Test,
    pub mtime: MtimeRange,
}

/// Which last-set times pass: `from ≤ mtime < until`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MtimeRange {
    pub from: Option<i64>,
    pub until: Option<i64>,
}

impl MtimeRange {
    pub fn contains(&self, mtime: i64) -> bool {
        self.from.is_none_or(|from| mtime >= from) && self.until.is_none_or(|until| mtime < until)
    }

    pub fn is_unbounded(&self) -> bool {
        self.from.is_none() && self.until.is_none()
    }
}

/// What a live value must be. Values are of the group's attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// Any live value.
    Exists,
    Compare(Comparison, TagValue),
    Between(TagValue, TagValue),
    In(Vec<TagValue>),
    Prefix(String),
}

/// A test on numbers, compiled (see [`Test::number_test`]). Bounds are (value, included).
#[derive(Debug, Clone, PartialEq)]
pub enum NumberTest {
    Range { low: (f64, bool), high: (f64, bool) },
    Ne(f64),
    In(Vec<f64>),
    Never,
}

impl NumberTest {
    #[inline]
    pub fn passes(&self, x: f64) -> bool {
        match self {
            NumberTest::Range {
                low: (low, low_in),
                high: (high, high_in),
            } => (x > *low || (*low_in && x == *low)) && (x < *high || (*high_in && x == *high)),
            NumberTest::Ne(w) => x != *w,
            NumberTest::In(values) => values.contains(&x),
            NumberTest::Never => false,
        }
    }
}

/// A live value as the index holds it, borrowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    Define(bool),
    Number(f64),
    Text(&'a str),
}

impl<'a> From<&'a TagValue> for ValueRef<'a> {
    fn from(value: &'a TagValue) -> Self {
        match value {
            TagValue::Define(on) => ValueRef::Define(*on),
            TagValue::Number(n) => ValueRef::Number(*n),
            TagValue::String(s) => ValueRef::Text(s),
        }
    }
}

/// Orders two values of one kind; values of different kinds never compare (no match).
/// Strings order by their UTF-8 bytes (the SQL layer compiles with a binary collation).
fn order(a: ValueRef<'_>, b: &TagValue) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (ValueRef::Define(x), TagValue::Define(y)) => Some(x.cmp(y)),
        (ValueRef::Number(x), TagValue::Number(y)) => x.partial_cmp(y),
        (ValueRef::Text(x), TagValue::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        _ => None,
    }
}

impl Test {
    /// The test on numbers in a form a column scan checks without a call per value; the
    /// same verdicts as [`Test::matches`] on `ValueRef::Number`.
    pub fn number_test(&self) -> NumberTest {
        let number = |v: &TagValue| match v {
            TagValue::Number(n) => Some(*n),
            _ => None,
        };
        let range = |low: Option<(f64, bool)>, high: Option<(f64, bool)>| NumberTest::Range {
            low: low.unwrap_or((f64::NEG_INFINITY, true)),
            high: high.unwrap_or((f64::INFINITY, true)),
        };
        match self {
            Test::Exists => range(None, None),
            Test::Compare(comparison, wanted) => {
                let Some(w) = number(wanted) else {
                    return NumberTest::Never;
                };
                match comparison {
                    Comparison::Eq => range(Some((w, true)), Some((w, true))),
                    Comparison::Ne => NumberTest::Ne(w),
                    Comparison::Lt => range(None, Some((w, false))),
                    Comparison::Lte => range(None, Some((w, true))),
                    Comparison::Gt => range(Some((w, false)), None),
                    Comparison::Gte => range(Some((w, true)), None),
                }
            }
            Test::Between(low, high) => match (number(low), number(high)) {
                (Some(low), Some(high)) => range(Some((low, true)), Some((high, true))),
                _ => NumberTest::Never,
            },
            Test::In(values) => NumberTest::In(values.iter().filter_map(number).collect()),
            Test::Prefix(_) => NumberTest::Never,
        }
    }

    /// Whether a live value passes: the rule the SQL compilation follows.
    pub fn matches(&self, value: ValueRef<'_>) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Test::Exists => true,
            Test::Compare(comparison, wanted) => match order(value, wanted) {
                None => false,
                Some(o) => match comparison {
                    Comparison::Eq => o == Equal,
                    Comparison::Ne => o != Equal,
                    Comparison::Lt => o == Less,
                    Comparison::Lte => o != Greater,
                    Comparison::Gt => o == Greater,
                    Comparison::Gte => o != Less,
                },
            },
            Test::Between(low, high) => {
                order(value, low).is_some_and(|o| o != Less)
                    && order(value, high).is_some_and(|o| o != Greater)
            }
            Test::In(values) => values.iter().any(|v| order(value, v) == Some(Equal)),
            Test::Prefix(prefix) => {
                matches!(value, ValueRef::Text(t) if t.starts_with(prefix.as_str()))
            }
        }
    }
}

/// Resolves a parsed filter for one organization at `now` (Unix seconds, for `within_days`).
/// `group` finds a live tag group; `segment` a saved segment's parsed filter.
pub fn resolve(
    filter: &Filter,
    group: &dyn Fn(&TagRef) -> Option<TagGroup>,
    segment: &dyn Fn(&ExternalId) -> Option<Filter>,
    now: i64,
) -> Result<Node> {
    let mut resolver = Resolver {
        group,
        segment,
        now,
        inlined: Vec::new(),
    };
    resolver.node(filter)
}

struct Resolver<'a> {
    group: &'a dyn Fn(&TagRef) -> Option<TagGroup>,
    segment: &'a dyn Fn(&ExternalId) -> Option<Filter>,
    now: i64,
    /// The saved segments being inlined, outermost first: one seen again is a cycle.
    inlined: Vec<ExternalId>,
}

impl Resolver<'_> {
    fn node(&mut self, filter: &Filter) -> Result<Node> {
        Ok(match filter {
            Filter::All(children) => Node::All(self.nodes(children)?),
            Filter::Any(children) => Node::Any(self.nodes(children)?),
            Filter::Not(child) => Node::Not(Box::new(self.node(child)?)),
            Filter::Leaf(leaf) => Node::Leaf(self.leaf(leaf)?),
            Filter::Segment { path, id } => {
                if let Some(start) = self.inlined.iter().position(|seen| seen == id) {
                    let chain: Vec<String> = self.inlined[start..]
                        .iter()
                        .chain([id])
                        .map(|s| format!("`{s}`"))
                        .collect();
                    return Err(too_large(
                        path,
                        format!(
                            "segments refer to each other in a cycle: {}",
                            chain.join(" → ")
                        ),
                    ));
                }
                let saved = (self.segment)(id).ok_or(Error::SegmentNotFound)?;
                self.inlined.push(id.clone());
                let node = self.node(&saved);
                self.inlined.pop();
                node?
            }
        })
    }

    fn nodes(&mut self, children: &[Filter]) -> Result<Vec<Node>> {
        children.iter().map(|c| self.node(c)).collect()
    }

    fn leaf(&self, leaf: &Leaf) -> Result<Condition> {
        let group = (self.group)(&leaf.tag)
            .filter(|g| !g.is_deleted)
            .ok_or_else(|| {
                Error::TagNotFound(format!(
                    "{}: {} not found in this organization",
                    leaf.path,
                    leaf.tag.describe()
                ))
            })?;
        let attribute = group.attribute;
        let value_at = format!("{}.value", leaf.path);
        let op_at = format!("{}.op", leaf.path);
        let typed = |v: &Value| typed_value(v, attribute, &value_at);
        let test = match &leaf.op {
            Op::Holds if attribute == Attribute::Define => {
                Test::Compare(Comparison::Eq, TagValue::Define(true))
            }
            Op::Holds | Op::Exists => Test::Exists,
            Op::Compare(comparison, value) => {
                let ordered = !matches!(comparison, Comparison::Eq | Comparison::Ne);
                if ordered && attribute == Attribute::Define {
                    return Err(invalid(
                        &op_at,
                        "define tags compare with eq, ne, in or exists only",
                    ));
                }
                Test::Compare(*comparison, typed(value)?)
            }
            Op::Between(low, high) => {
                if attribute == Attribute::Define {
                    return Err(invalid(
                        &op_at,
                        "define tags compare with eq, ne, in or exists only",
                    ));
                }
                let (low, high) = (typed(low)?, typed(high)?);
                if order(ValueRef::from(&low), &high) == Some(std::cmp::Ordering::Greater) {
                    return Err(invalid(&value_at, "the low end is above the high end"));
                }
                Test::Between(low, high)
            }
            Op::In(values) => Test::In(values.iter().map(typed).collect::<Result<_>>()?),
            Op::Prefix(prefix) => {
                if attribute != Attribute::String {
                    return Err(invalid(&op_at, "`prefix` applies to string tags only"));
                }
                Test::Prefix(prefix.clone())
            }
        };
        let window = leaf.assigned;
        let recent = window
            .within_days
            .map(|days| self.now.saturating_sub(days.saturating_mul(86_400)));
        let from = match (window.after, recent) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Ok(Condition {
            group_ref: group.id,
            attribute,
            test,
            mtime: MtimeRange {
                from,
                until: window.before,
            },
        })
    }
}

/// A JSON value as a value of `attribute`: booleans for define tags, numbers (or numeric
/// strings, as values are sent on assign) for number tags, strings for string tags.
fn typed_value(json: &Value, attribute: Attribute, path: &str) -> Result<TagValue> {
    match (attribute, json) {
        (Attribute::Define, Value::Bool(on)) => Ok(TagValue::Define(*on)),
        (Attribute::Define, _) => Err(invalid(path, "must be true or false for a define tag")),
        (Attribute::Number, Value::Number(n)) => n
            .as_f64()
            .filter(|n| n.is_finite())
            .map(TagValue::Number)
            .ok_or_else(|| invalid(path, "must be a finite number")),
        (Attribute::Number, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(TagValue::Number)
            .ok_or_else(|| invalid(path, "must be a number for a number tag")),
        (Attribute::Number, _) => Err(invalid(path, "must be a number for a number tag")),
        (Attribute::String, Value::String(s)) => Ok(TagValue::String(s.clone())),
        (Attribute::String, _) => Err(invalid(path, "must be a string for a string tag")),
    }
}

/// One member of a segment: the user's row id (its place in registration order) and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_ref: i64,
    pub user_id: crate::UserId,
}

/// One page of a segment's members, with the exact count of all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentPage {
    pub count: u64,
    pub members: Vec<Member>,
    /// More members follow the last one of `members`.
    pub has_more: bool,
}

/// Segment evaluation in the store: the fallback when the index does not hold an
/// organization, and the truth the index is tested against.
#[async_trait::async_trait]
pub trait Segments {
    /// The members of `node` in `org` registered after the user `after_ref` (0: from the
    /// first), in registration order, at most `limit`; with the count of every member.
    async fn segment_page(
        &self,
        org: crate::OrgId,
        node: &Node,
        after_ref: i64,
        limit: usize,
    ) -> Result<SegmentPage>;

    /// Whether `node` holds for the user `user_ref` of `org`.
    async fn segment_holds(&self, org: crate::OrgId, node: &Node, user_ref: i64) -> Result<bool>;

    /// [`Segments::segment_page`]'s members without the count: for exports, which walk every
    /// page and need no count on each.
    async fn segment_members(
        &self,
        org: crate::OrgId,
        node: &Node,
        after_ref: i64,
        limit: usize,
    ) -> Result<Vec<Member>>;
}

/// Resolves `filter` against what the store holds now: the organization's live tag groups and
/// saved segments. `replacing` stands for a segment about to be saved with a new filter, so a
/// reference back to it is seen as the cycle it would close.
pub async fn resolve_in_store(
    store: &dyn crate::Store,
    org: crate::OrgId,
    filter: &Filter,
    now: i64,
    replacing: Option<(&ExternalId, &Filter)>,
) -> Result<Node> {
    let groups = store.all_groups(org).await?;
    let saved = store.all_segments(org).await?;
    let group = |tag: &TagRef| groups.iter().find(|g| tag.names(g)).cloned();
    let segment = |id: &ExternalId| match replacing {
        Some((replaced, filter)) if replaced == id => Some(filter.clone()),
        _ => saved
            .iter()
            .find(|s| &s.entity_id == id)
            .and_then(|s| s.parsed_filter().ok()),
    };
    resolve(filter, &group, &segment, now)
}

#[cfg(test)]
#[path = "segments_tests.rs"]
mod tests;
