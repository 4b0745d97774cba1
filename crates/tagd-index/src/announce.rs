//! Saved-segment moves announced (API.md §12): `segment.entered` and `segment.exited`, as
//! change-log entries of their own, within about a second of the change that moved the user.
//!
//! The announcer follows each organization's log from a position kept in the database (sink
//! `segments`, under a lease, so one server announces at a time). For each page it re-tests
//! the users the page touched against every saved segment, from this index (once it has
//! applied the page) or from the store, and compares with the memberships last announced,
//! which the store keeps; the differences are logged, the kept memberships changed and the
//! position moved in one transaction. So a crash repeats nothing and loses nothing, and only
//! net moves are announced: a user who enters and leaves within one page yields no event.
//!
//! A segment saved for the first time has its members recorded silently (its
//! `segment.saved` starts it); an edited one, or any segment after a tag group changed, is
//! compared whole; a deleted one is forgotten silently (`segment.deleted` says it).

use crate::Index;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tagd_core::log::{Backlog, ChangeKind, Subject};
use tagd_core::saved_segments::{MemberChanges, MemberMove, SavedSegment};
use tagd_core::segments::Filter;
use tagd_core::webhooks::{DeliveryCounters, Lease, LEASE_RENEW};
use tagd_core::{OrgId, Result, UserId};

/// The announcer's position is kept as this sink (as `tagd-sql` names it).
const SINK: &str = "segments";
/// Log entries read per page.
const PAGE: usize = 1000;
/// How long the announcer waits for a commit before it looks at the logs anyway.
const IDLE_POLL: Duration = Duration::from_millis(250);
/// How long the index may take to apply a page before the round is given up and retried.
const SETTLE_WAIT: Duration = Duration::from_secs(1);
/// Members read per step when a segment is compared whole.
const MEMBERS_STEP: usize = 10_000;
/// A page that moved nobody saves the position at most this often (re-reading a page after
/// a crash announces nothing twice: moves are compared with what was announced).
const SAVE_IDLE_EVERY: Duration = Duration::from_secs(1);

/// An organization this server announces for: its position and when the lease was taken.
#[derive(Clone, Copy)]
struct Held {
    position: i64,
    claimed: Instant,
    saved: Instant,
}

/// What [`Index::skip_without_segments`] found.
enum Skip {
    /// The organization has segments (or nothing new): read its log.
    Read,
    /// No segment: the position moved to the horizon without reading.
    Jumped(Held),
    /// Another server took the lease meanwhile.
    LeaseLost,
}

fn lease(owner: &str) -> Lease<'_> {
    Lease::from_now(owner)
}

impl Index {
    /// Announces saved-segment moves of every organization, forever (see the module).
    pub async fn announce_segment_moves(
        self: Arc<Self>,
        owner: String,
        counters: Arc<DeliveryCounters>,
    ) {
        let mut held: HashMap<OrgId, Held> = HashMap::new();
        let mut commits = self.commits();
        let mut backlog = Backlog::default();
        loop {
            match backlog.due(self.store.as_ref()).await {
                Ok(due) => {
                    for (org, head) in due {
                        let known = held.get(&org).copied();
                        if let Some(known) = known.filter(|h| h.position >= head) {
                            backlog.reached(org, known.position);
                            continue;
                        }
                        match self.announce_org(org, &owner, known, &counters).await {
                            Ok(Some(now_held)) => {
                                held.insert(org, now_held);
                                backlog.reached(org, now_held.position);
                            }
                            Ok(None) => {
                                held.remove(&org);
                                backlog.later(org, LEASE_RENEW);
                            }
                            Err(e) => {
                                tracing::warn!(cause = %e, org = org.0, "segment moves not announced yet; retrying");
                                held.remove(&org);
                                backlog.later(org, IDLE_POLL);
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(cause = %e, "segment announcer: cannot read log heads"),
            }
            tokio::select! {
                changed = commits.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(IDLE_POLL).await;
                    }
                }
                () = tokio::time::sleep(IDLE_POLL) => {}
            }
        }
    }

    /// Announces the organization's moves after its position, page by page. `None` when
    /// another server holds the lease (or took it meanwhile).
    async fn announce_org(
        self: &Arc<Self>,
        org: OrgId,
        owner: &str,
        known: Option<Held>,
        counters: &DeliveryCounters,
    ) -> Result<Option<Held>> {
        let store = self.store.clone();
        let mut held = match known {
            Some(held) if held.claimed.elapsed() < LEASE_RENEW => held,
            _ => match store.claim_sink(org, SINK, &lease(owner)).await? {
                // The saved position: after another server's turn it may be ahead of ours.
                Some(position) => Held {
                    position,
                    claimed: Instant::now(),
                    saved: Instant::now(),
                },
                None => return Ok(None),
            },
        };
        match self.skip_without_segments(org, owner, held).await? {
            Skip::Read => {}
            Skip::Jumped(jumped) => return Ok(Some(jumped)),
            Skip::LeaseLost => return Ok(None),
        }
        loop {
            let page = store.change_feed(org, held.position, PAGE).await?;
            let Some(last) = page.entries.last().map(|e| e.version) else {
                return Ok(Some(held));
            };
            let mut touched: BTreeMap<i64, UserId> = BTreeMap::new();
            let mut saved: Vec<i64> = Vec::new();
            let mut forget: Vec<i64> = Vec::new();
            let mut groups_changed = false;
            for entry in &page.entries {
                match &entry.change.subject {
                    Subject::Tag(tag) => {
                        if let Some(user_id) = page.users.get(&tag.user_ref) {
                            touched.insert(tag.user_ref, user_id.clone());
                        }
                    }
                    Subject::User {
                        user_ref, user_id, ..
                    } => {
                        touched.insert(*user_ref, user_id.clone());
                    }
                    Subject::Segment(segment)
                        if entry.change.kind == ChangeKind::SegmentDeleted =>
                    {
                        forget.push(segment.id)
                    }
                    Subject::Segment(segment) => saved.push(segment.id),
                    Subject::Group(_) => groups_changed = true,
                    Subject::Membership(_) => {}
                }
            }
            if !self.settled(org, last).await {
                return Ok(Some(held)); // the index lags: this page again next round
            }
            // The segments followed so far and those saved in this page: one saved after
            // this page is left for the page of its own entry.
            let followed: HashSet<i64> = store.announced_segments(org).await?.into_iter().collect();
            let live: Vec<SavedSegment> = store
                .all_segments(org)
                .await?
                .into_iter()
                .filter(|s| followed.contains(&s.id) || saved.contains(&s.id))
                .collect();
            let mut moves = Vec::new();
            let whole: Vec<&SavedSegment> = live
                .iter()
                .filter(|s| groups_changed || saved.contains(&s.id))
                .collect();
            let started: Vec<i64> = whole
                .iter()
                .filter(|s| !followed.contains(&s.id))
                .map(|s| s.id)
                .collect();
            for segment in &whole {
                // Followed from now on: its members start silently.
                let first = !followed.contains(&segment.id);
                self.compare_whole(org, segment, first, &mut moves).await?;
            }
            let rest: Vec<&SavedSegment> = live
                .iter()
                .filter(|s| !whole.iter().any(|w| w.id == s.id))
                .collect();
            if !rest.is_empty() && !touched.is_empty() {
                self.compare_users(org, &rest, &touched, &mut moves).await?;
            }
            let quiet = moves.is_empty() && forget.is_empty() && started.is_empty();
            if quiet && held.saved.elapsed() < SAVE_IDLE_EVERY {
                held.position = last;
                continue;
            }
            let changes = MemberChanges {
                moves: &moves,
                started: &started,
                forget: &forget,
            };
            let recorded = store
                .record_member_moves(org, &lease(owner), &changes, last)
                .await?;
            if !recorded {
                return Ok(None);
            }
            let announced = moves.iter().filter(|m| m.announce).count();
            DeliveryCounters::add(&counters.segment_moves, announced as u64);
            held = Held {
                position: last,
                claimed: Instant::now(),
                saved: Instant::now(),
            };
        }
    }

    /// An organization with no saved segment, live or followed, has nothing to announce: its
    /// position jumps to the log's horizon instead of reading the log (most organizations
    /// never save one, and reading every write's entry cost each of them a page read per
    /// round). The horizon is read before the segments are, so a segment saved after that
    /// look has a later version and its page is read as usual.
    async fn skip_without_segments(&self, org: OrgId, owner: &str, held: Held) -> Result<Skip> {
        let horizon = self.store.log_horizon(org).await?;
        if horizon <= held.position
            || !self.store.announced_segments(org).await?.is_empty()
            || !self.store.all_segments(org).await?.is_empty()
        {
            return Ok(Skip::Read);
        }
        let mut jumped = Held {
            position: horizon,
            ..held
        };
        if held.saved.elapsed() >= SAVE_IDLE_EVERY {
            let nothing = MemberChanges {
                moves: &[],
                started: &[],
                forget: &[],
            };
            if !self
                .store
                .record_member_moves(org, &lease(owner), &nothing, horizon)
                .await?
            {
                return Ok(Skip::LeaseLost);
            }
            jumped.saved = Instant::now();
            jumped.claimed = Instant::now();
        }
        Ok(Skip::Jumped(jumped))
    }

    /// Whether reads of `org` show every change up to `version`: the index holds the
    /// organization and has applied it (waited for up to [`SETTLE_WAIT`]), or it does not
    /// hold it and reads go to the store, the truth (a load that ends meanwhile starts after
    /// `version` was committed, so it holds it too). Asking does not load the organization:
    /// one that moves but never asks about audiences stays out of memory.
    async fn settled(self: &Arc<Self>, org: OrgId, version: i64) -> bool {
        if self.org_index(org).is_none() {
            return true;
        }
        self.caught_up(org, version, SETTLE_WAIT).await
    }

    /// Compares a segment's members now with those last announced.
    async fn compare_whole(
        self: &Arc<Self>,
        org: OrgId,
        segment: &SavedSegment,
        first: bool,
        moves: &mut Vec<MemberMove>,
    ) -> Result<()> {
        let filter = Filter::Segment {
            path: "segment_id".into(),
            id: segment.entity_id.clone(),
        };
        let mut now: HashMap<i64, UserId> = HashMap::new();
        let mut after = 0;
        loop {
            let step = self
                .segment_members(org, &filter, after, MEMBERS_STEP)
                .await?;
            let Some(last) = step.last().map(|m| m.user_ref) else {
                break;
            };
            now.extend(step.into_iter().map(|m| (m.user_ref, m.user_id)));
            after = last;
        }
        let announced: HashSet<i64> = self
            .store
            .announced_members(org, segment.id)
            .await?
            .into_iter()
            .collect();
        let announce = !first;
        for (user_ref, user_id) in &now {
            if !announced.contains(user_ref) {
                moves.push(member_move(segment, *user_ref, user_id, true, announce));
            }
        }
        let gone: Vec<i64> = announced
            .iter()
            .filter(|r| !now.contains_key(r))
            .copied()
            .collect();
        if !gone.is_empty() {
            for (user_ref, user_id) in self.user_ids(org, &gone).await? {
                moves.push(member_move(segment, user_ref, &user_id, false, true));
            }
        }
        Ok(())
    }

    /// Re-tests the touched users against `segments`, against the memberships announced.
    async fn compare_users(
        self: &Arc<Self>,
        org: OrgId,
        segments: &[&SavedSegment],
        touched: &BTreeMap<i64, UserId>,
        moves: &mut Vec<MemberMove>,
    ) -> Result<()> {
        let refs: Vec<i64> = touched.keys().copied().collect();
        let announced: HashSet<(i64, i64)> = self
            .store
            .announced_memberships(org, &refs)
            .await?
            .into_iter()
            .collect();
        for (user_ref, user_id) in touched {
            let now: HashSet<i64> = self
                .user_segments(org, user_id)
                .await?
                .into_iter()
                .map(|s| s.id)
                .collect();
            for segment in segments {
                let is_in = now.contains(&segment.id);
                let was_in = announced.contains(&(segment.id, *user_ref));
                if is_in != was_in {
                    moves.push(member_move(segment, *user_ref, user_id, is_in, true));
                }
            }
        }
        Ok(())
    }

    /// The user ids of internal user ids (users who left a segment compared whole).
    async fn user_ids(&self, org: OrgId, refs: &[i64]) -> Result<Vec<(i64, UserId)>> {
        let mut found = Vec::with_capacity(refs.len());
        let mut sorted = refs.to_vec();
        sorted.sort_unstable();
        let mut wanted = sorted.iter().peekable();
        let mut after = sorted.first().map_or(0, |r| r - 1);
        while wanted.peek().is_some() {
            let users = self.store.users_page(org, after, MEMBERS_STEP).await?;
            let Some(last) = users.last().map(|u| u.id) else {
                break;
            };
            for user in users {
                while wanted.peek().is_some_and(|r| **r < user.id) {
                    wanted.next();
                }
                if wanted.peek() == Some(&&user.id) {
                    found.push((user.id, user.user_id));
                    wanted.next();
                }
            }
            after = last;
        }
        Ok(found)
    }
}

fn member_move(
    segment: &SavedSegment,
    user_ref: i64,
    user_id: &UserId,
    entered: bool,
    announce: bool,
) -> MemberMove {
    MemberMove {
        segment: segment.clone(),
        user_ref,
        user_id: user_id.clone(),
        entered,
        announce,
    }
}
