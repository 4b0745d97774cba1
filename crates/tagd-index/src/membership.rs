//! Saved segments' members, kept current as changes are applied: a write to one user's tag
//! re-tests only that user, and only against the saved segments that name the tag's group,
//! so knowing who is in a saved segment (and, for the events issue, who just entered or left
//! it) never evaluates a segment whole after it was first evaluated.
//!
//! Not kept, and tested per user on each read instead: segments whose members move with the
//! clock (an `assigned.within_days` window, here or in a segment they name), and segments
//! that name something this index does not hold yet (made on another server a moment ago).
//! While a load fills the index nothing is kept; the load evaluates every segment once at
//! its end.

use super::OrgIndex;
use croaring::Bitmap;
use std::collections::HashMap;
use tagd_core::saved_segments::SavedSegment;
use tagd_core::segments::{self, Node, TagRef};
use tagd_core::timefmt::now_unix;
use tagd_core::ExternalId;

/// The kept members of the saved segments, by the segments' internal ids.
#[derive(Default)]
pub(crate) struct Memberships {
    /// A load is filling the index: nothing is kept until it is done.
    paused: bool,
    kept: HashMap<i64, Kept>,
}

struct Kept {
    /// The segment's filter as resolved when its members were evaluated.
    node: Node,
    /// The groups its leaves name: a change of any other group cannot move its members.
    groups: Vec<i64>,
    members: Bitmap,
}

impl Memberships {
    pub(crate) fn estimated_bytes(&self) -> usize {
        self.kept
            .values()
            .map(|k| {
                k.members
                    .get_serialized_size_in_bytes::<croaring::Portable>()
                    + 64
            })
            .sum()
    }
}

impl OrgIndex {
    /// For a load: keeps nothing until [`Self::keep_memberships`].
    pub(crate) fn pause_memberships(&mut self) {
        self.memberships.paused = true;
        self.memberships.kept.clear();
    }

    /// For a load that is done: keeps every saved segment's members from now on.
    pub(crate) fn keep_memberships(&mut self) {
        self.memberships.paused = false;
        self.refresh_memberships();
    }

    /// Brings every saved segment's kept members in line with what its filter now means
    /// (after a group or a saved segment changed). A segment whose filter resolves as before
    /// keeps its members (they were kept current); one that resolves otherwise (a group
    /// renamed or deleted, a named segment edited) or is new is evaluated whole; one that
    /// cannot be kept is dropped.
    pub(crate) fn refresh_memberships(&mut self) {
        if self.memberships.paused {
            return;
        }
        let mut before = std::mem::take(&mut self.memberships.kept);
        let mut kept = HashMap::new();
        for saved in self.saved_segments() {
            let Some(node) = self.resolved_for_keeping(saved) else {
                continue;
            };
            let members = match before.remove(&saved.id) {
                Some(old) if old.node == node => old.members,
                _ => self.evaluate(&node),
            };
            let groups = groups_named(&node);
            kept.insert(
                saved.id,
                Kept {
                    node,
                    groups,
                    members,
                },
            );
        }
        self.memberships.kept = kept;
    }

    /// Re-tests user `ordinal` against the kept segments that name `group_ref` (every kept
    /// segment when `None`: a newly registered user may be in one through a `not`).
    pub(crate) fn retest_memberships(&mut self, ordinal: u32, group_ref: Option<i64>) {
        if self.memberships.paused || self.memberships.kept.is_empty() {
            return;
        }
        let mut kept = std::mem::take(&mut self.memberships.kept);
        for segment in kept.values_mut() {
            if group_ref.is_some_and(|g| !segment.groups.contains(&g)) {
                continue;
            }
            if self.holds_for(&segment.node, ordinal) {
                segment.members.add(ordinal);
            } else {
                segment.members.remove(ordinal);
            }
        }
        self.memberships.kept = kept;
    }

    /// Whether saved segment `id` (internal) holds `ordinal`, from its kept members; `None`
    /// when its members are not kept.
    pub fn kept_membership(&self, id: i64, ordinal: u32) -> Option<bool> {
        let kept = self.memberships.kept.get(&id)?;
        Some(kept.members.contains(ordinal))
    }

    /// The kept members of saved segment `id` (internal), in ordinal order.
    pub fn kept_members(&self, id: i64) -> Option<Vec<u32>> {
        Some(self.memberships.kept.get(&id)?.members.to_vec())
    }

    fn resolved_for_keeping(&self, saved: &SavedSegment) -> Option<Node> {
        let filter = saved.parsed_filter().ok()?;
        let named = |id: &ExternalId| self.saved_filter(id);
        if filter.moves_with_clock(&named) {
            return None;
        }
        let group = |tag: &TagRef| self.group_named(tag);
        segments::resolve(&filter, &group, &named, now_unix()).ok()
    }
}

fn groups_named(node: &Node) -> Vec<i64> {
    let mut groups = Vec::new();
    let mut stack = vec![node];
    while let Some(node) = stack.pop() {
        match node {
            Node::All(children) | Node::Any(children) => stack.extend(children),
            Node::Not(child) => stack.push(child),
            Node::Leaf(condition) => groups.push(condition.group_ref),
        }
    }
    groups.sort_unstable();
    groups.dedup();
    groups
}
