//! The change log (API.md §9): every change of an organization's data, appended in the
//! change's own transaction with the organization's next **version**. Everything derived from
//! the data (the in-memory index, history, events, other servers) follows this log and keeps
//! only the last version it applied.
//!
//! Versions increase strictly per organization and are gap-safe: a reader that has seen
//! version V never later finds an entry below V. How a backend assigns them is its own
//! choice (docs/DECISIONS.md): a counter per organization on SQLite, whose one writer commits
//! in order; on PostgreSQL the writing transaction's id, so ordering costs no lock, and
//! readers stop below the oldest transaction still running.

use crate::error::Result;
use crate::ids::{ExternalId, OrgId, UserId};
use crate::model::{Executor, Source, TagGroup, User};
use crate::value::TagValue;
use async_trait::async_trait;
use std::sync::Arc;

/// Bits of a PostgreSQL version below the transaction id: the entry's place in its
/// transaction. No transaction writes more entries than this allows (an import batch is at
/// most 50,000 rows, each at most a user and an assignment).
pub const ENTRIES_PER_TRANSACTION_BITS: u32 = 20;

/// What kind of change an entry records: the event type of API.md §12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    TagAssigned,
    TagRemoved,
    /// Gone because its expiry passed: recorded by the sweep, or by the write that found it
    /// expired first.
    TagExpired,
    GroupCreated,
    /// Edited, locked or unlocked.
    GroupUpdated,
    GroupActivated,
    GroupDeactivated,
    /// A label (a `define` group) made through v2.
    LabelCreated,
    UserCreated,
    SegmentSaved,
    SegmentDeleted,
    /// A change moved a user into a saved segment (recorded after it, by the server).
    SegmentEntered,
    /// A change moved a user out of a saved segment.
    SegmentExited,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 13] = [
        ChangeKind::TagAssigned,
        ChangeKind::TagRemoved,
        ChangeKind::TagExpired,
        ChangeKind::GroupCreated,
        ChangeKind::GroupUpdated,
        ChangeKind::GroupActivated,
        ChangeKind::GroupDeactivated,
        ChangeKind::LabelCreated,
        ChangeKind::UserCreated,
        ChangeKind::SegmentSaved,
        ChangeKind::SegmentDeleted,
        ChangeKind::SegmentEntered,
        ChangeKind::SegmentExited,
    ];

    /// The event type, as stored and as events name it.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::TagAssigned => "tag.assigned",
            ChangeKind::TagRemoved => "tag.removed",
            ChangeKind::TagExpired => "tag.expired",
            ChangeKind::GroupCreated => "group.created",
            ChangeKind::GroupUpdated => "group.updated",
            ChangeKind::GroupActivated => "group.activated",
            ChangeKind::GroupDeactivated => "group.deactivated",
            ChangeKind::LabelCreated => "label.created",
            ChangeKind::UserCreated => "user.created",
            ChangeKind::SegmentSaved => "segment.saved",
            ChangeKind::SegmentDeleted => "segment.deleted",
            ChangeKind::SegmentEntered => "segment.entered",
            ChangeKind::SegmentExited => "segment.exited",
        }
    }

    pub fn from_db(raw: &str) -> Result<Self> {
        ChangeKind::ALL
            .into_iter()
            .find(|k| k.as_str() == raw)
            .ok_or_else(|| crate::Error::internal(format!("unknown change kind {raw}")))
    }
}

/// One assignment as a change left it: enough to apply it without reading the row again.
#[derive(Debug, Clone, PartialEq)]
pub struct TagChange {
    pub assignment_id: i64,
    pub entity_id: ExternalId,
    pub user_ref: i64,
    pub group_ref: i64,
    /// The live value after the change; `None` after a removal or an expiry.
    pub value: Option<TagValue>,
    /// When the value set expires (Unix seconds); `None` when it does not.
    pub expires_at: Option<i64>,
    /// Canonical text of the live value before the change.
    pub old_value: Option<String>,
    /// The assignment's own version after the change.
    pub version: i64,
    pub ctime: i64,
    /// When the change was made (the assignment's new `mtime`).
    pub at: i64,
    pub executor: Executor,
    pub source: Source,
}

/// What changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    Tag(TagChange),
    /// The group as the change left it.
    Group(Box<TagGroup>),
    User {
        user_ref: i64,
        user_id: UserId,
        ctime: i64,
    },
    /// The saved segment as the change left it (deleted ones too).
    Segment(Box<crate::saved_segments::SavedSegment>),
    /// A user entered or left a saved segment.
    Membership(Box<Membership>),
}

/// A user's move into or out of a saved segment, as the log keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Membership {
    pub segment: crate::saved_segments::SavedSegment,
    pub user_ref: i64,
    pub user_id: UserId,
    /// When the move was recorded (Unix seconds).
    pub at: i64,
}

/// One change, as the write that made it describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub kind: ChangeKind,
    pub subject: Subject,
}

/// A change with its place in the organization's log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub version: i64,
    pub change: Change,
}

/// Told of every write's entries once they are committed, before the write answers: how a
/// server's own index stays current with what it wrote (read-your-writes).
pub trait ChangeSink: Send + Sync {
    fn committed(&self, org: OrgId, entries: &[LogEntry]);
}

/// A page of the log: the entries after a version, and how far a reader may now say it has
/// read (`safe_version`: every entry at or below it is in this page or an earlier one).
#[derive(Debug, Clone, PartialEq)]
pub struct LogPage {
    pub entries: Vec<LogEntry>,
    pub safe_version: i64,
}

/// See [`ChangeLog::log_heads`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogHeads {
    pub horizon: i64,
    pub heads: Vec<(OrgId, i64)>,
}

/// Reading the change log back.
#[async_trait]
pub trait ChangeLog: Send + Sync {
    /// The entries with a version above `after`, oldest first, at most `limit`, and never one
    /// that a transaction still running could precede.
    async fn read_log(&self, org: OrgId, after: i64, limit: usize) -> Result<LogPage>;
    /// The organization's latest committed version (0 before its first change).
    async fn log_head(&self, org: OrgId) -> Result<i64>;
    /// The newest version below which no entry can still appear: what a reader that starts
    /// now has seen once it has read every entry up to it.
    async fn log_horizon(&self, org: OrgId) -> Result<i64>;
    /// What a follower of many organizations asks first, so that it reads only the logs that
    /// moved: the organizations with entries above `after`, each with its latest committed
    /// version, and a horizon to pass as `after` next time (no entry at or below it is still
    /// to come). Where versions are not comparable across organizations (SQLite), every
    /// organization is answered and the horizon is 0.
    async fn log_heads(&self, after: i64) -> Result<LogHeads>;
    /// Registered users with an internal id above `after`, by that id, at most `limit`.
    async fn users_page(&self, org: OrgId, after: i64, limit: usize) -> Result<Vec<User>>;
    /// Every tag group of the organization, deleted ones included.
    async fn all_groups(&self, org: OrgId) -> Result<Vec<TagGroup>>;
    /// Live assignments with an id above `after`, by id, at most `limit`, as changes that
    /// would set them (`old_value` none, `at` their mtime).
    async fn live_assignments_page(
        &self,
        org: OrgId,
        after: i64,
        limit: usize,
    ) -> Result<Vec<TagChange>>;
    /// Whether versions count 1, 2, 3... per organization without gaps (a counter): then a
    /// reader that has applied up to V and applies V + 1 has applied everything up to V + 1,
    /// and a server's own writes can move its cursor without reading them back.
    fn versions_are_dense(&self) -> bool;
    /// Tells `sink` of every write's entries from now on, once committed and before the write
    /// returns. A store keeps one sink: the first set.
    fn subscribe(&self, sink: Arc<dyn ChangeSink>);
}

/// Which organizations a follower of every organization's log (an event sink, the segment
/// announcer) should visit this round: those whose log moved since its last look, and those
/// it has not caught up with yet (a round given up, a failure, a lease held by another
/// server). [`ChangeLog::log_heads`] after a horizon names only organizations written since,
/// so without this one left behind would wait for its next write, however long that is.
#[derive(Debug, Default)]
pub struct Backlog {
    horizon: i64,
    /// Each organization not caught up with: its head, and when to look again (a lease
    /// held elsewhere is not asked for at every round).
    behind: std::collections::HashMap<OrgId, (i64, Option<std::time::Instant>)>,
}

impl Backlog {
    /// The organizations due now, each with the head to reach.
    pub async fn due(&mut self, log: &(impl ChangeLog + ?Sized)) -> Result<Vec<(OrgId, i64)>> {
        let heads = log.log_heads(self.horizon).await?;
        for (org, head) in heads.heads {
            let known = self.behind.entry(org).or_insert((head, None));
            known.0 = known.0.max(head);
        }
        self.horizon = self.horizon.max(heads.horizon);
        let now = std::time::Instant::now();
        let mut due: Vec<(OrgId, i64)> = self
            .behind
            .iter()
            .filter(|(_, (_, later))| later.is_none_or(|at| at <= now))
            .map(|(org, (head, _))| (*org, *head))
            .collect();
        due.sort_unstable_by_key(|(org, _)| org.0);
        Ok(due)
    }

    /// The follower got to `position` in `org`'s log: done with it once that reaches the head.
    pub fn reached(&mut self, org: OrgId, position: i64) {
        if self
            .behind
            .get(&org)
            .is_some_and(|(head, _)| position >= *head)
        {
            self.behind.remove(&org);
        }
    }

    /// Not due again before `wait` has passed (another server holds its lease, or it failed).
    pub fn later(&mut self, org: OrgId, wait: std::time::Duration) {
        if let Some((_, later)) = self.behind.get_mut(&org) {
            *later = Some(std::time::Instant::now() + wait);
        }
    }
}
