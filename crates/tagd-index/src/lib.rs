//! The in-memory tag index (issue 12): per organization, users by dense ordinal, per tag group
//! a roaring bitmap of who holds it, and every user's live tags, so that a user's tags (and
//! the segments of issue 13) are answered without SQL.
//!
//! The database stays the truth; the index is a cache that follows the change log:
//! - **loaded** per organization, lazily on first use and in the background after start, from
//!   a snapshot of the store plus the log entries written while the snapshot was read;
//! - **kept current** from this server's own writes as they commit (read-your-writes), and by
//!   a follower that reads every loaded organization's log (other servers' writes, `tagd
//!   import`);
//! - **bounded**: an organization that does not fit the memory budget is served from SQL;
//! - **never wrong**: an entry it cannot apply (a gap) or a failed read drops the organization,
//!   which is served from SQL until it has been loaded again.

#![forbid(unsafe_code)]

mod announce;
mod column;
mod follow;
mod load;
mod org;
mod queries;
mod users;
mod values;
mod who;

pub use org::{Gap, OrgIndex};

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tagd_core::log::{ChangeSink, LogEntry};
use tagd_core::segments::SegmentPage;
use tagd_core::*;
use tokio::sync::Notify;

/// How long a read with `min_version` waits for this server to apply that version before it
/// answers from the database (API.md §9).
pub const MIN_VERSION_WAIT: Duration = Duration::from_secs(1);

/// A page of a segment and the organization version it reflects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentAnswer {
    pub page: SegmentPage,
    pub version: i64,
}

/// How the index runs.
#[derive(Debug, Clone)]
pub struct IndexConfig {
    /// The most memory all organizations together may take; 0 turns the index off.
    pub memory_budget_bytes: usize,
    /// How often the follower reads the log of every loaded organization.
    pub poll_interval: Duration,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            memory_budget_bytes: 1024 * 1024 * 1024,
            poll_interval: Duration::from_millis(50),
        }
    }
}

/// Where an organization stands.
enum Slot {
    /// This server's own entries committed while loading, applied once loaded; past
    /// `load::MAX_HELD_WHILE_LOADING` only the newest version is kept (reads then wait, as
    /// stale, until the follower has read up to it).
    Loading(Vec<LogEntry>, i64),
    Ready(Arc<RwLock<OrgIndex>>),
    /// Too large for the budget: served from SQL.
    TooLarge,
}

/// What `/metrics` shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub organizations_loaded: usize,
    pub organizations_too_large: usize,
    pub bytes: usize,
}

pub struct Index {
    store: Arc<dyn Store>,
    config: IndexConfig,
    orgs: RwLock<HashMap<OrgId, Slot>>,
    /// Estimated bytes of each ready organization, as of its last load or follow.
    bytes: RwLock<HashMap<OrgId, usize>>,
    /// Wakes the follower before its interval (a `min_version` read waits).
    wake: Notify,
    /// Counts this server's committed writes, so that a long poll of the change feed wakes
    /// at once instead of at its next look.
    commits: tokio::sync::watch::Sender<u64>,
    /// What the follower asks the log's heads after (see `ChangeLog::log_heads`).
    heads_after: AtomicI64,
    /// One load at a time: loads read whole organizations, and the budget is counted against
    /// the organizations already loaded.
    loading: tokio::sync::Semaphore,
}

impl Index {
    /// The index over `store`, subscribed to its writes. Nothing is loaded until
    /// [`Index::start`] runs the follower and the background load.
    pub fn new(store: Arc<dyn Store>, config: IndexConfig) -> Arc<Self> {
        let index = Index::follower(store.clone(), config);
        if index.enabled() {
            store.subscribe(index.clone());
        }
        index
    }

    /// An index that learns of changes only by following the log, as another server's does.
    pub fn follower(store: Arc<dyn Store>, config: IndexConfig) -> Arc<Self> {
        Arc::new(Index {
            store,
            config,
            orgs: RwLock::new(HashMap::new()),
            bytes: RwLock::new(HashMap::new()),
            wake: Notify::new(),
            commits: tokio::sync::watch::Sender::new(0),
            heads_after: AtomicI64::new(0),
            loading: tokio::sync::Semaphore::new(1),
        })
    }

    /// Changes with every write this server commits (of any organization).
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// The organization's index, if it is loaded (for segments, tests and diagnostics).
    pub fn org_index(&self, org: OrgId) -> Option<Arc<RwLock<OrgIndex>>> {
        match read(&self.orgs).get(&org) {
            Some(Slot::Ready(index)) => Some(index.clone()),
            _ => None,
        }
    }

    /// One pass of the follower: reads the log of every loaded organization that moved.
    pub async fn follow_once(&self) {
        let ready = self.ready_orgs();
        if ready.is_empty() {
            return;
        }
        let after = self.heads_after.load(Ordering::SeqCst);
        let moved = match self.store.log_heads(after).await {
            Ok(moved) => moved,
            Err(e) => {
                tracing::warn!(cause = %e, "could not read the change log's heads");
                return;
            }
        };
        let heads: HashMap<OrgId, i64> = moved.heads.into_iter().collect();
        let applied: Vec<i64> = ready.iter().map(|(_, i)| read(i).applied()).collect();
        for ((org, org_index), applied) in ready.into_iter().zip(applied) {
            // An organization whose head is not above its cursor has nothing to read, unless
            // its cursor waits below the head (the horizon held it back).
            match heads.get(&org) {
                Some(head) if *head > applied => {}
                _ => continue,
            }
            match load::follow(self.store.as_ref(), &org_index).await {
                Ok(()) => {
                    let bytes = read(&org_index).estimated_bytes();
                    self.set_bytes(org, bytes);
                }
                Err(why) => self.drop_org(org, &why),
            }
        }
        // Entries still to come are above the horizon read before the organizations' logs
        // were: every cursor moved at least to it.
        self.heads_after.fetch_max(moved.horizon, Ordering::SeqCst);
    }

    pub fn enabled(&self) -> bool {
        self.config.memory_budget_bytes > 0
    }

    /// Runs the follower and loads every organization in the background.
    pub fn start(self: &Arc<Self>) {
        if !self.enabled() {
            return;
        }
        tokio::spawn(follow::run(self.clone()));
        let index = self.clone();
        tokio::spawn(async move {
            match index.store.list_orgs().await {
                Ok(orgs) => {
                    for org in orgs {
                        index.load(org.id).await;
                    }
                }
                Err(e) => tracing::warn!(cause = %e, "could not list organizations to index"),
            }
        });
    }

    /// The organization's index if it is ready; starts loading it otherwise.
    pub(crate) fn ready(self: &Arc<Self>, org: OrgId) -> Option<Arc<RwLock<OrgIndex>>> {
        if !self.enabled() {
            return None;
        }
        if let Some(slot) = read(&self.orgs).get(&org) {
            return match slot {
                Slot::Ready(index) => {
                    expire_due(index);
                    Some(index.clone())
                }
                Slot::Loading(..) | Slot::TooLarge => None,
            };
        }
        let index = self.clone();
        tokio::spawn(async move { index.load(org).await });
        None
    }

    /// An organization's users and live values from memory, when the index holds it and is
    /// fresh (expired values already dropped): what an overview shows without counting every
    /// row in SQL. `None` otherwise (and its load starts).
    pub fn counts(self: &Arc<Self>, org: OrgId) -> Option<(i64, i64)> {
        let index = self.ready(org)?;
        let index = read(&index);
        let users = i64::try_from(index.user_count()).ok()?;
        let values = i64::try_from(index.live_values()).ok()?;
        index.fresh().then_some((users, values))
    }

    /// A registered user's live assignments: from memory when the organization is loaded,
    /// from the store otherwise.
    pub async fn list_user_assignments(
        self: &Arc<Self>,
        org: OrgId,
        user_id: &UserId,
    ) -> Result<Vec<Assignment>> {
        match self.from_memory(org, |index| index.user_assignments(user_id)) {
            Some(rows) => Ok(rows),
            None => self.store.list_user_assignments(org, user_id).await,
        }
    }

    /// The labels a customer carries: from memory when the organization is loaded.
    pub async fn list_user_labels(
        self: &Arc<Self>,
        org: OrgId,
        user_id: &UserId,
    ) -> Result<Vec<Assignment>> {
        match self.from_memory(org, |index| index.user_labels(user_id)) {
            Some(rows) => Ok(rows),
            None => self.store.list_user_labels(org, user_id).await,
        }
    }

    /// `answer` of the organization's index when it is loaded and fresh. `None` (the store
    /// answers) also when `answer` has none: a user this index does not know may have been
    /// registered on another server a moment ago, so "not found" comes from the store.
    fn from_memory<T>(
        self: &Arc<Self>,
        org: OrgId,
        answer: impl FnOnce(&OrgIndex) -> Option<T>,
    ) -> Option<T> {
        let index = self.ready(org)?;
        let index = read(&index);
        if index.fresh() {
            answer(&index)
        } else {
            None
        }
    }

    /// Whether this server's index has applied every entry up to `version` of `org`, waiting
    /// up to `wait` for it. `false` means: answer from the store.
    pub async fn caught_up(self: &Arc<Self>, org: OrgId, version: i64, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match self.ready(org) {
                Some(index) if read(&index).applied() >= version => return true,
                _ => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            self.wake.notify_one();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn stats(&self) -> IndexStats {
        let orgs = read(&self.orgs);
        IndexStats {
            organizations_loaded: orgs
                .values()
                .filter(|s| matches!(s, Slot::Ready(_)))
                .count(),
            organizations_too_large: orgs
                .values()
                .filter(|s| matches!(s, Slot::TooLarge))
                .count(),
            bytes: read(&self.bytes).values().sum(),
        }
    }

    /// Forgets an organization: it is served from SQL until loaded again.
    fn drop_org(&self, org: OrgId, why: &str) {
        tracing::warn!(
            org = org.0,
            why,
            "index of the organization dropped; rebuilt on next use"
        );
        write(&self.orgs).remove(&org);
        write(&self.bytes).remove(&org);
    }

    /// The ready organizations, for the follower.
    fn ready_orgs(&self) -> Vec<(OrgId, Arc<RwLock<OrgIndex>>)> {
        read(&self.orgs)
            .iter()
            .filter_map(|(org, slot)| match slot {
                Slot::Ready(index) => Some((*org, index.clone())),
                _ => None,
            })
            .collect()
    }

    fn set_bytes(&self, org: OrgId, bytes: usize) {
        write(&self.bytes).insert(org, bytes);
    }

    /// Bytes the organizations other than `org` take.
    fn bytes_of_others(&self, org: OrgId) -> usize {
        read(&self.bytes)
            .iter()
            .filter(|(o, _)| **o != org)
            .map(|(_, b)| b)
            .sum()
    }
}

impl ChangeSink for Index {
    fn committed(&self, org: OrgId, entries: &[LogEntry]) {
        self.commits.send_modify(|n| *n = n.wrapping_add(1));
        // The common case under a read lock: reads of every request take it too.
        let ready = match read(&self.orgs).get(&org) {
            Some(Slot::Ready(index)) => Some(index.clone()),
            Some(Slot::Loading(..)) => None,
            _ => return,
        };
        let dense = self.store.versions_are_dense();
        if let Some(index) = ready {
            write(&index).apply_own(entries, dense);
            return;
        }
        let index = match write(&self.orgs).get_mut(&org) {
            Some(Slot::Ready(index)) => index.clone(),
            Some(Slot::Loading(held, newest_dropped)) => {
                if held.len() + entries.len() <= load::MAX_HELD_WHILE_LOADING {
                    held.extend_from_slice(entries);
                } else if let Some(last) = entries.last() {
                    *newest_dropped = (*newest_dropped).max(last.version);
                }
                return;
            }
            _ => return,
        };
        write(&index).apply_own(entries, dense);
    }
}

/// A read guard; a lock poisoned by a panic elsewhere is still read (the index is rebuilt
/// from the store on any doubt, never trusted past a gap).
/// Takes out of `index` what has expired by now, so that a read about to start sees exactly
/// the values that still count (one comparison when nothing is due).
fn expire_due(index: &RwLock<OrgIndex>) {
    let now = tagd_core::timefmt::now_unix();
    if read(index).next_expiry().is_some_and(|at| at <= now) {
        write(index).expire_due(now);
    }
}

pub(crate) fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
