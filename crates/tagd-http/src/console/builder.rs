//! The segment page's filter builder: rows of "tag, operator, value" (each may be negated),
//! combined by `all` or `any`, composed into the filter language of API.md §10. The filter it
//! makes is shown under the count, so an operator learns the JSON the APIs take; a filter
//! typed as JSON is used instead of the rows when given.

use serde_json::{json, Value};
use std::collections::HashMap;
use tagd_core::{Attribute, Error, Result};

/// Rows the page offers.
pub const ROWS: usize = 5;

/// The operators offered, with their labels.
pub const OPERATORS: [(&str, &str); 11] = [
    ("holds", "has it (define: true)"),
    ("exists", "has any value"),
    ("eq", "="),
    ("ne", "≠"),
    ("lt", "<"),
    ("lte", "≤"),
    ("gt", ">"),
    ("gte", "≥"),
    ("between", "between (a, b)"),
    ("in", "one of (a, b, …)"),
    ("prefix", "starts with"),
];

/// One row as the form sent it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    pub tag: String,
    pub op: String,
    pub value: String,
    pub negated: bool,
}

/// The builder's state as the form sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Builder {
    pub any: bool,
    pub rows: Vec<Row>,
}

impl Builder {
    /// The builder in a posted form (`combine`, `tag0`, `op0`, `value0`, `not0`, …).
    pub fn from_form(form: &HashMap<String, String>) -> Self {
        let field = |name: String| form.get(&name).map(|v| v.trim().to_owned());
        Builder {
            any: form.get("combine").is_some_and(|c| c == "any"),
            rows: (0..ROWS)
                .map(|i| Row {
                    tag: field(format!("tag{i}")).unwrap_or_default(),
                    op: field(format!("op{i}")).unwrap_or_else(|| "holds".to_owned()),
                    value: field(format!("value{i}")).unwrap_or_default(),
                    negated: form.contains_key(&format!("not{i}")),
                })
                .collect(),
        }
    }

    /// The filter the rows with a tag make, or `None` when no row names one. `attribute`
    /// gives each tag's attribute (a define tag's value is true or false).
    pub fn compose(&self, attribute: impl Fn(&str) -> Option<Attribute>) -> Result<Option<Value>> {
        let mut leaves = Vec::new();
        for (i, row) in self
            .rows
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.tag.is_empty())
        {
            let field = format!("row {}", i + 1);
            let define = attribute(&row.tag) == Some(Attribute::Define);
            let value = |text: &str| -> Result<Value> {
                if !define {
                    return Ok(Value::String(text.to_owned()));
                }
                match text.to_ascii_lowercase().as_str() {
                    "true" | "yes" => Ok(Value::Bool(true)),
                    "false" | "no" => Ok(Value::Bool(false)),
                    _ => Err(Error::invalid(
                        &field,
                        "a define tag's value is true or false",
                    )),
                }
            };
            let list = |text: &str| -> Result<Vec<Value>> {
                text.split(',').map(|v| value(v.trim())).collect()
            };
            let leaf = match row.op.as_str() {
                "holds" => json!({"tag": row.tag}),
                "exists" => json!({"tag": row.tag, "op": "exists"}),
                "between" => json!({"tag": row.tag, "op": "between", "value": list(&row.value)?}),
                "in" => json!({"tag": row.tag, "op": "in", "value": list(&row.value)?}),
                op => json!({"tag": row.tag, "op": op, "value": value(&row.value)?}),
            };
            leaves.push(if row.negated {
                json!({ "not": leaf })
            } else {
                leaf
            });
        }
        Ok(match leaves.len() {
            0 => None,
            1 => leaves.pop(),
            _ if self.any => Some(json!({ "any": leaves })),
            _ => Some(json!({ "all": leaves })),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn attribute(tag: &str) -> Option<Attribute> {
        match tag {
            "vip" | "churned" => Some(Attribute::Define),
            "score" => Some(Attribute::Number),
            _ => Some(Attribute::String),
        }
    }

    #[test]
    fn rows_compose_the_filter_language_and_blank_rows_are_left_out() {
        let sent = form(&[
            ("combine", "all"),
            ("tag0", "vip"),
            ("op0", "holds"),
            ("tag1", "churned"),
            ("op1", "holds"),
            ("not1", "on"),
            ("tag2", "score"),
            ("op2", "gte"),
            ("value2", "80"),
            ("tag4", "city"),
            ("op4", "in"),
            ("value4", "Pune, Mumbai"),
        ]);
        let filter = Builder::from_form(&sent).compose(attribute).expect("valid");
        assert_eq!(
            filter,
            Some(json!({"all": [
                {"tag": "vip"},
                {"not": {"tag": "churned"}},
                {"tag": "score", "op": "gte", "value": "80"},
                {"tag": "city", "op": "in", "value": ["Pune", "Mumbai"]},
            ]}))
        );
    }

    #[test]
    fn one_row_is_its_leaf_and_no_row_is_no_filter() {
        let one = form(&[
            ("combine", "any"),
            ("tag3", "vip"),
            ("op3", "eq"),
            ("value3", "No"),
        ]);
        let filter = Builder::from_form(&one).compose(attribute).expect("valid");
        assert_eq!(
            filter,
            Some(json!({"tag": "vip", "op": "eq", "value": false}))
        );
        let none = Builder::from_form(&HashMap::new());
        assert_eq!(none.compose(attribute).expect("valid"), None);
    }

    #[test]
    fn a_define_value_that_is_not_true_or_false_names_its_row() {
        let bad = form(&[("tag1", "vip"), ("op1", "eq"), ("value1", "maybe")]);
        let refused = Builder::from_form(&bad).compose(attribute);
        assert!(refused.is_err_and(|e| e.to_string().contains("row 2")));
    }
}
