//! Filters as clients write them: the JSON tree parsed and checked for shape and limits,
//! without the database (40006 and 40007, each naming its path).

use super::Comparison;
use crate::{Error, ExternalId, Result, TagGroup};
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

impl Filter {
    /// Whether who it selects changes with the clock and not only with writes: a leaf (here
    /// or in a saved segment it names, found by `segment`) has an `assigned.within_days`
    /// window. Nesting deeper than any saved filter can (a cycle) counts as moving.
    pub fn moves_with_clock(&self, segment: &dyn Fn(&ExternalId) -> Option<Filter>) -> bool {
        self.moves_within(segment, 0)
    }

    fn moves_within(&self, segment: &dyn Fn(&ExternalId) -> Option<Filter>, depth: usize) -> bool {
        if depth > MAX_DEPTH * MAX_DEPTH {
            return true;
        }
        match self {
            Filter::All(children) | Filter::Any(children) => {
                children.iter().any(|c| c.moves_within(segment, depth + 1))
            }
            Filter::Not(child) => child.moves_within(segment, depth + 1),
            Filter::Segment { id, .. } => {
                segment(id).is_some_and(|f| f.moves_within(segment, depth + 1))
            }
            Filter::Leaf(leaf) => leaf.assigned.within_days.is_some(),
        }
    }
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

    pub(super) fn describe(&self) -> String {
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

pub(super) fn invalid(path: &str, message: impl Into<String>) -> Error {
    Error::FilterInvalid {
        path: path.to_owned(),
        message: message.into(),
    }
}

pub(super) fn too_large(path: &str, message: impl Into<String>) -> Error {
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
