//! History (API.md §11): the change log read back, per user or per tag group, newest first,
//! and the organization's whole log in version order (the change feed).

use crate::error::Result;
use crate::ids::{ExternalId, OrgId, UserId};
use crate::log::{ChangeKind, LogEntry};
use crate::model::{Source, TagGroup};
use crate::names::VariableName;
use crate::value::{Attribute, TagValue};
use async_trait::async_trait;
use std::collections::HashMap;

/// Rows a history page answers unless asked otherwise.
pub const DEFAULT_HISTORY_LIMIT: usize = 100;
/// The most rows one history or change-feed page answers.
pub const MAX_HISTORY_LIMIT: usize = 1_000;

/// One change of one assignment, as history shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    pub version: i64,
    /// `TagAssigned`, `TagRemoved` or `TagExpired`.
    pub kind: ChangeKind,
    pub tags_group_id: ExternalId,
    pub variable_name: VariableName,
    /// The group's attribute, which types the values.
    pub attribute: Attribute,
    pub user_id: UserId,
    /// The live value before the change, if there was one.
    pub old_value: Option<TagValue>,
    /// The value the change set; `None` for a removal or an expiry.
    pub new_value: Option<TagValue>,
    /// Who made it: an app id, a Basic user name, `operator`, or `system` for an expiry.
    pub executor_id: String,
    pub source: Source,
    pub at: i64,
    /// The expiry the change set, if any.
    pub expires_at: Option<i64>,
}

/// `assign`, `remove` or `expire`: the `op` of a history row.
pub fn op_name(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::TagRemoved => "remove",
        ChangeKind::TagExpired => "expire",
        _ => "assign",
    }
}

/// Which tag changes a history read covers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryFilter {
    /// One user's changes (`UserNotFound` when the user is not registered).
    pub user: Option<UserId>,
    /// One tag group's changes (`GroupNotFound` when there is no such live group).
    pub group: Option<ExternalId>,
    /// Only changes made at or after this time.
    pub since: Option<i64>,
}

/// A page of the change feed: log entries in version order, with the user ids and groups
/// their tag entries name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeedPage {
    pub entries: Vec<LogEntry>,
    /// Every entry at or below it has been answered, in this page or an earlier one.
    pub safe_version: i64,
    pub users: HashMap<i64, UserId>,
    pub groups: HashMap<i64, TagGroup>,
}

/// Reading history back.
#[async_trait]
pub trait History: Send + Sync {
    /// Tag changes that `filter` selects, newest first, with a version below `before` (all
    /// when `None`), at most `limit`.
    async fn tag_history(
        &self,
        org: OrgId,
        filter: &HistoryFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<HistoryRow>>;
    /// The organization's log after version `after`, oldest first, at most `limit`, never an
    /// entry that a transaction still running could precede.
    async fn change_feed(&self, org: OrgId, after: i64, limit: usize) -> Result<FeedPage>;
}
