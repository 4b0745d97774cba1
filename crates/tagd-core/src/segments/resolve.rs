//! A parsed filter tied to one organization: tags to its live groups (40401 naming the tag),
//! saved segments inlined (40403, cycles 40007), values typed by the tag's attribute (40006).

use super::filter::{invalid, too_large};
use super::{
    order, Comparison, Condition, Filter, Leaf, MtimeRange, Node, Op, TagRef, Test, ValueRef,
};
use crate::{Attribute, Error, ExternalId, Result, TagGroup, TagValue};
use serde_json::Value;

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
