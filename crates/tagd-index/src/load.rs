//! Loading one organization: the log's horizon first, then a snapshot of users, groups and
//! live assignments, read in pages, then every log entry written since the horizon, so that
//! whatever changed while the pages were read is applied in order. Applying is idempotent
//! (an older state never replaces a newer one), so rows the snapshot already saw in their
//! newest state are left as they are.

use crate::org::{Gap, OrgIndex};
use crate::{read, write, Index, Slot};
use std::sync::{Arc, RwLock};
use std::time::Instant;
use tagd_core::*;

/// Rows read per page of the snapshot and of the log.
pub(crate) const PAGE: usize = 10_000;
/// Own entries kept for an organization while it loads; past this only the newest version is
/// kept, and reads go to the store until the follower has read up to it.
pub(crate) const MAX_HELD_WHILE_LOADING: usize = 100_000;

/// Why a load stopped.
enum Failed {
    TooLarge { needed: usize, free: usize },
    Store(Error),
    Gap(Gap),
}

impl From<Error> for Failed {
    fn from(e: Error) -> Self {
        Failed::Store(e)
    }
}

impl Index {
    /// Loads `org` unless it is loaded, loading, or known too large.
    pub async fn load(self: &Arc<Self>, org: OrgId) {
        {
            let mut orgs = write(&self.orgs);
            if orgs.contains_key(&org) {
                return;
            }
            orgs.insert(org, Slot::Loading(Vec::new(), 0));
        }
        let Ok(_permit) = self.loading.acquire().await else {
            write(&self.orgs).remove(&org);
            return;
        };
        let started = Instant::now();
        let free = self
            .config
            .memory_budget_bytes
            .saturating_sub(self.bytes_of_others(org));
        match build(self.store.as_ref(), org, free).await {
            Ok(mut index) => {
                let bytes = index.estimated_bytes();
                let users = index.user_count();
                let mut orgs = write(&self.orgs);
                if let Some(Slot::Loading(held, newest_dropped)) = orgs.remove(&org) {
                    index.apply_own(&held, self.store.versions_are_dense());
                    index.stale_until(newest_dropped);
                }
                orgs.insert(org, Slot::Ready(Arc::new(RwLock::new(index))));
                drop(orgs);
                self.set_bytes(org, bytes);
                tracing::info!(
                    org = org.0,
                    users,
                    bytes,
                    seconds = started.elapsed().as_secs_f64(),
                    "organization loaded into the index"
                );
            }
            Err(Failed::TooLarge { needed, free }) => {
                write(&self.orgs).insert(org, Slot::TooLarge);
                tracing::warn!(
                    org = org.0,
                    needed_mb = needed / (1024 * 1024),
                    free_mb = free / (1024 * 1024),
                    "organization too large for the index memory budget \
                     (--index-memory-mb): its reads are served from the database"
                );
            }
            Err(Failed::Store(e)) => {
                write(&self.orgs).remove(&org);
                tracing::warn!(org = org.0, cause = %e, "index load failed; retried on next use");
            }
            Err(Failed::Gap(Gap(why))) => {
                write(&self.orgs).remove(&org);
                tracing::warn!(
                    org = org.0,
                    why,
                    "index load found a gap; retried on next use"
                );
            }
        }
    }
}

/// Builds the index of `org` within `free` bytes.
async fn build(store: &dyn Store, org: OrgId, free: usize) -> Result<OrgIndex, Failed> {
    // Writes committed before the load began told no index (there was none): until the
    // cursor passes them all, reads go to the store. On PostgreSQL the horizon can lag
    // behind them while another transaction runs.
    let committed = store.log_head(org).await?;
    let start = store.log_horizon(org).await?;
    let mut index = OrgIndex::new(org, start);
    index.stale_until(committed);
    // Saved segments' members are evaluated once, when every page is in.
    index.pause_memberships();
    let mut after = 0;
    loop {
        let page = store.users_page(org, after, PAGE).await?;
        for user in &page {
            index
                .add_user(user.id, &user.user_id)
                .map_err(Failed::Gap)?;
            after = user.id;
        }
        if page.len() < PAGE {
            break;
        }
    }
    for group in store.all_groups(org).await? {
        index.set_group(group, 0);
    }
    for saved in store.all_segments(org).await? {
        index.set_segment(saved);
    }
    let mut after = 0;
    let mut assignments = 0usize;
    loop {
        let page = store.live_assignments_page(org, after, PAGE).await?;
        for tag in &page {
            after = tag.assignment_id;
            // A user or group the pages above missed was made after `start`: the log below
            // brings it in, with this assignment's entries after it.
            let _ = index.apply_tag(tag, 0);
        }
        assignments += page.len();
        let needed = rough_bytes(index.user_count(), assignments);
        if needed > free {
            return Err(Failed::TooLarge { needed, free });
        }
        if page.len() < PAGE {
            break;
        }
    }
    index.keep_memberships();
    catch_up(store, &mut index).await?;
    index.shrink();
    let needed = index.estimated_bytes();
    if needed > free {
        return Err(Failed::TooLarge { needed, free });
    }
    Ok(index)
}

/// What an organization of this size takes, before it is all read.
fn rough_bytes(users: usize, assignments: usize) -> usize {
    users * 96 + assignments * 64
}

/// Applies the log from the index's cursor to the horizon.
async fn catch_up(store: &dyn Store, index: &mut OrgIndex) -> Result<(), Failed> {
    loop {
        let page = store.read_log(index.org(), index.applied(), PAGE).await?;
        for entry in &page.entries {
            index.apply(entry).map_err(Failed::Gap)?;
        }
        index.advance(page.safe_version);
        if page.entries.len() < PAGE {
            return Ok(());
        }
    }
}

/// Reads the log of a ready organization up to its horizon, applying it under the write lock
/// page by page (readers wait only for one page's apply).
pub(crate) async fn follow(store: &dyn Store, index: &RwLock<OrgIndex>) -> Result<(), String> {
    loop {
        let (org, after) = {
            let index = read(index);
            (index.org(), index.applied())
        };
        let page = store
            .read_log(org, after, PAGE)
            .await
            .map_err(|e| e.to_string())?;
        {
            let mut index = write(index);
            for entry in &page.entries {
                index.apply(entry).map_err(|Gap(why)| why)?;
            }
            index.advance(page.safe_version);
        }
        if page.entries.len() < PAGE {
            return Ok(());
        }
    }
}
