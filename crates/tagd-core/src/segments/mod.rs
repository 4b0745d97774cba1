//! Segments: the filter language of API.md §10, parsed, limited and resolved here once. The
//! index evaluates a resolved [`Node`] in memory with [`Test::matches`]; the SQL layer
//! compiles the same tree to SQL (the fallback, and the oracle the index is tested against).
//!
//! Two steps, so each error is found where it can be: [`parse`] needs only the JSON (shape,
//! operators, limits: 40006 and 40007, each naming its path); [`resolve`] needs the
//! organization's tag groups (unknown tags: 40401; a value that does not fit the group's
//! attribute, or an operator the attribute has no meaning for: 40006).

mod filter;
mod resolve;

pub use filter::{parse, Filter, Leaf, Op, TagRef, Window};
pub use filter::{MAX_DEPTH, MAX_IN_VALUES, MAX_LEAVES, MAX_WITHIN_DAYS};
pub use resolve::resolve;

use crate::{Attribute, ExternalId, Result, TagValue};

/// How a leaf compares a live value with the one it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
}

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
mod tests;
