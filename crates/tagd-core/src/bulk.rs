//! Bulk import and export of one organization's users and assignments (API.md §8).
//!
//! A row read from a file is a [`RawRow`] (the four fields as text); [`ImportRow::parse`]
//! turns it into a typed [`ImportRow`] or refuses it. The store applies a batch of rows in one
//! transaction ([`Bulk::import_batch`]) and answers one [`ImportOutcome`] per row, in order.
//! Export pages through the live assignments by key ([`Bulk::export_assignments`]), so it
//! never holds an organization in memory.
//!
//! The rules, written once here and in the store:
//! - a row with only `user_id` registers the user; a row naming a tag group (by
//!   `tags_group_id`, by `variable_name`, or by both, which must then name the same group) sets
//!   that user's value, registering the user too;
//! - the value is parsed exactly as the v5 assign parses it ([`TagValue::parse`]);
//! - a row whose value equals the live value changes nothing (no version, no history), so
//!   importing the same file twice is a no-op the second time;
//! - a refused row (unknown or inactive group, bad value, bad id) has no effect at all, not
//!   even registering its user, and the rows around it still load.

use crate::error::{Error, Result};
use crate::ids::{ExternalId, OrgId, UserId};
use crate::model::{Executor, Source};
use crate::names::VariableName;
use crate::value::{Attribute, TagValue};
use async_trait::async_trait;
use serde::Serialize;
use std::fmt;

/// Rows applied in one transaction unless the caller chooses otherwise.
pub const DEFAULT_BATCH_ROWS: usize = 5_000;
/// Most rows one batch may carry.
pub const MAX_BATCH_ROWS: usize = 50_000;
/// Rows one export page reads.
pub const EXPORT_PAGE_ROWS: i64 = 5_000;
/// The columns an import reads; others (an export's `attribute`, `version`, ...) are ignored.
pub const IMPORT_COLUMNS: [&str; 4] = ["user_id", "tags_group_id", "variable_name", "value"];
/// The columns an export writes, in order.
pub const EXPORT_COLUMNS: [&str; 8] = [
    "user_id",
    "tags_group_id",
    "variable_name",
    "attribute",
    "value",
    "version",
    "source",
    "mtime",
];

/// One row as read from a file, before any check. `None` is a missing field (or, in CSV, an
/// empty cell, except for `value`, where an empty cell is the empty string).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RawRow {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags_group_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variable_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// How a row names its tag group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRef {
    Id(ExternalId),
    VariableName(VariableName),
    /// Both given: they must name the same group.
    Both(ExternalId, VariableName),
}

impl GroupRef {
    pub fn id(&self) -> Option<&ExternalId> {
        match self {
            GroupRef::Id(id) | GroupRef::Both(id, _) => Some(id),
            GroupRef::VariableName(_) => None,
        }
    }

    pub fn variable_name(&self) -> Option<&VariableName> {
        match self {
            GroupRef::VariableName(v) | GroupRef::Both(_, v) => Some(v),
            GroupRef::Id(_) => None,
        }
    }
}

/// The value a row sets: its group and the value as text, parsed by the store per the
/// group's attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportAssignment {
    pub group: GroupRef,
    pub raw_value: String,
}

/// A checked row: a user, and optionally the value to set for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    pub user_id: UserId,
    pub assignment: Option<ImportAssignment>,
}

fn present(field: &Option<String>) -> Option<&str> {
    field.as_deref().filter(|s| !s.is_empty())
}

impl ImportRow {
    /// Checks the fields of a row: `user_id` is required; a group named by id and/or
    /// variable name needs a value; a non-empty value needs a group.
    pub fn parse(raw: &RawRow) -> Result<Self, Refusal> {
        let user_id = present(&raw.user_id).ok_or_else(|| Refusal::InvalidField {
            field: "user_id".into(),
            message: "is required".into(),
        })?;
        let user_id = UserId::parse(user_id).map_err(Refusal::from)?;
        let id = present(&raw.tags_group_id)
            .map(|s| ExternalId::parse("tags_group_id", s))
            .transpose()
            .map_err(Refusal::from)?;
        let variable_name = present(&raw.variable_name)
            .map(VariableName::parse)
            .transpose()
            .map_err(Refusal::from)?;
        let group = match (id, variable_name) {
            (Some(id), Some(v)) => Some(GroupRef::Both(id, v)),
            (Some(id), None) => Some(GroupRef::Id(id)),
            (None, Some(v)) => Some(GroupRef::VariableName(v)),
            (None, None) => None,
        };
        let assignment = match (group, &raw.value) {
            (Some(group), Some(value)) => Some(ImportAssignment {
                group,
                raw_value: value.clone(),
            }),
            (Some(_), None) => return Err(Refusal::MissingValue),
            (None, Some(value)) if !value.is_empty() => return Err(Refusal::ValueWithoutGroup),
            (None, _) => None,
        };
        Ok(ImportRow {
            user_id,
            assignment,
        })
    }

    /// The row's fields as text again, for an error report.
    pub fn to_raw(&self) -> RawRow {
        let group = self.assignment.as_ref().map(|a| &a.group);
        RawRow {
            user_id: Some(self.user_id.to_string()),
            tags_group_id: group.and_then(GroupRef::id).map(ToString::to_string),
            variable_name: group
                .and_then(GroupRef::variable_name)
                .map(ToString::to_string),
            value: self.assignment.as_ref().map(|a| a.raw_value.clone()),
        }
    }
}

/// Why a row was not loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The line is not a row of its format (a CSV record that is not UTF-8, a line that is not
    /// a JSON object, a field that is not a JSON string).
    Malformed(String),
    /// `user_id`, `tags_group_id` or `variable_name` is missing or malformed.
    InvalidField { field: String, message: String },
    /// A tag group is named but no value is given.
    MissingValue,
    /// A value is given but no tag group.
    ValueWithoutGroup,
    /// No tag group of that id or variable name in the organization.
    GroupNotFound,
    /// The tag group is inactive and refuses assignments (as v5's 40004).
    GroupInactive,
    /// `tags_group_id` and `variable_name` name different groups.
    GroupMismatch,
    /// The value does not fit the group's attribute (as v5's 40002).
    InvalidValue(String),
}

impl Refusal {
    /// A stable code for error reports.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Malformed(_) => "malformed",
            Refusal::InvalidField { .. } => "invalid_parameter",
            Refusal::MissingValue => "missing_value",
            Refusal::ValueWithoutGroup => "value_without_group",
            Refusal::GroupNotFound => "group_not_found",
            Refusal::GroupInactive => "group_inactive",
            Refusal::GroupMismatch => "group_mismatch",
            Refusal::InvalidValue(_) => "invalid_value",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Malformed(why) => write!(f, "malformed row: {why}"),
            Refusal::InvalidField { field, message } => write!(f, "`{field}` {message}"),
            Refusal::MissingValue => f.write_str("a tag group is named but `value` is missing"),
            Refusal::ValueWithoutGroup => {
                f.write_str("`value` is given without `tags_group_id` or `variable_name`")
            }
            Refusal::GroupNotFound => f.write_str("tag group not found"),
            Refusal::GroupInactive => f.write_str("tag group is inactive"),
            Refusal::GroupMismatch => {
                f.write_str("`tags_group_id` and `variable_name` name different tag groups")
            }
            Refusal::InvalidValue(why) => {
                write!(f, "value does not fit the tag group's attribute: {why}")
            }
        }
    }
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidParameter { field, message } => Refusal::InvalidField { field, message },
            Error::InvalidValue(why) => Refusal::InvalidValue(why),
            Error::GroupNotFound => Refusal::GroupNotFound,
            Error::GroupInactive => Refusal::GroupInactive,
            other => Refusal::Malformed(other.to_string()),
        }
    }
}

/// What happened to one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// It changed something: a value set (new version, history entry), or a user registered.
    Applied,
    /// Nothing to do: the value is already live, or the user already registered.
    Unchanged,
    Refused(Refusal),
}

/// The outcome of one batch: one outcome per row, in row order, and how many users the
/// batch registered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub outcomes: Vec<ImportOutcome>,
    pub users_created: u64,
}

/// One live assignment as exported.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRow {
    /// The paging key: pass the last row's key as `after` for the next page.
    pub key: i64,
    pub user_id: UserId,
    pub tags_group_id: ExternalId,
    pub variable_name: VariableName,
    pub attribute: Attribute,
    pub value: TagValue,
    pub version: i64,
    pub source: Source,
    pub mtime: i64,
}

/// A registered user without any live assignment, exported as a row with only `user_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportUser {
    /// The paging key: pass the last row's key as `after` for the next page.
    pub key: i64,
    pub user_id: UserId,
}

/// The bulk operations of a store. Tenant first, as every store method.
#[async_trait]
pub trait Bulk: Send + Sync {
    /// Applies `rows` in order, in one transaction, with `source` `import` and `executor`:
    /// registers the users of the rows that are not refused, then sets their values under the
    /// same upsert and history rules as `assign`, except that a value equal to the live one
    /// is left alone. Later rows see earlier ones. A database failure refuses the whole batch
    /// (nothing of it is written); a row's refusal refuses that row only.
    async fn import_batch(
        &self,
        org: OrgId,
        rows: &[ImportRow],
        executor: &Executor,
    ) -> Result<ImportReport>;

    /// Called once an import that changed something is done: lets the database refresh
    /// what it knows of the tables the import grew (PostgreSQL's planner statistics), so the
    /// next import and the API find rows by key again. Nothing to do on SQLite.
    async fn import_finished(&self, org: OrgId) -> Result<()>;

    /// Batches of disjoint users an import may write at once: more than one where the
    /// database writes such transactions in parallel (PostgreSQL, a backend process each);
    /// one where writes take turns anyway (SQLite's single writer).
    fn import_streams(&self) -> usize {
        1
    }

    /// Up to `limit` live assignments of groups that are not deleted, in key order, after
    /// the key `after` (from the start when `None`).
    async fn export_assignments(
        &self,
        org: OrgId,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ExportRow>>;

    /// Up to `limit` registered users that have no live assignment, in key order, after the
    /// key `after` (from the start when `None`).
    async fn export_users_without_assignments(
        &self,
        org: OrgId,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ExportUser>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(user: &str, id: &str, var: &str, value: Option<&str>) -> RawRow {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        RawRow {
            user_id: some(user),
            tags_group_id: some(id),
            variable_name: some(var),
            value: value.map(str::to_owned),
        }
    }

    const ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_row_with_only_a_user_registers_it() {
        let row = ImportRow::parse(&raw("u1", "", "", None)).expect("valid");
        assert_eq!(row.user_id.as_str(), "u1");
        assert_eq!(row.assignment, None);
        let empty_value = ImportRow::parse(&raw("u1", "", "", Some(""))).expect("valid");
        assert_eq!(
            empty_value.assignment, None,
            "an empty CSV value cell is no value"
        );
    }

    #[test]
    fn a_group_is_named_by_id_by_variable_name_or_both() {
        let by_id = ImportRow::parse(&raw("u1", ID, "", Some("True"))).expect("valid");
        let by_var = ImportRow::parse(&raw("u1", "", "vip", Some("True"))).expect("valid");
        let both = ImportRow::parse(&raw("u1", ID, "vip", Some(""))).expect("valid");
        assert!(matches!(
            by_id.assignment.map(|a| a.group),
            Some(GroupRef::Id(_))
        ));
        assert!(matches!(
            by_var.assignment.map(|a| a.group),
            Some(GroupRef::VariableName(_))
        ));
        let both = both.assignment.expect("an assignment");
        assert!(matches!(both.group, GroupRef::Both(_, _)));
        assert_eq!(
            both.raw_value, "",
            "the empty string is a value for a group"
        );
    }

    #[test]
    fn bad_rows_are_refused_with_their_reason() {
        let cases = [
            (raw("", "", "", None), "invalid_parameter"),
            (raw("has space", "", "", None), "invalid_parameter"),
            (raw("u1", "ABC", "", Some("1")), "invalid_parameter"),
            (raw("u1", "", "9lives", Some("1")), "invalid_parameter"),
            (raw("u1", ID, "", None), "missing_value"),
            (raw("u1", "", "", Some("True")), "value_without_group"),
        ];
        for (row, code) in cases {
            let refused = ImportRow::parse(&row).expect_err("refused");
            assert_eq!(refused.code(), code, "{row:?}: {refused}");
        }
    }

    #[test]
    fn a_parsed_row_gives_back_its_fields_for_the_report() {
        let row = raw("u1", ID, "vip", Some("True"));
        assert_eq!(ImportRow::parse(&row).expect("valid").to_raw(), row);
    }
}
