//! Segments evaluated in memory: each leaf is a bitmap of ordinals (a group's holders as they
//! are, or its cells tested one by one), combined with croaring's set operations. `not` is
//! taken against every registered user, and inside `all` it subtracts instead of building
//! the complement, so "A and not B" is one `andnot` of two bitmaps.

use super::OrgIndex;
use crate::values;
use croaring::Bitmap;
use tagd_core::saved_segments::SavedSegment;
use tagd_core::segments::{Condition, Filter, Member, Node, SegmentPage, TagRef, Test};
use tagd_core::{ExternalId, TagGroup, UserId};

impl OrgIndex {
    /// Keeps a saved segment's state, unless a later one (a higher version) is kept already.
    pub fn set_segment(&mut self, saved: SavedSegment) {
        match self.saved.get(&saved.id) {
            Some(kept) if kept.version >= saved.version => {}
            _ => {
                self.saved.insert(saved.id, saved);
            }
        }
    }

    /// A live saved segment's filter, by its external id.
    pub fn saved_filter(&self, id: &ExternalId) -> Option<Filter> {
        self.saved
            .values()
            .find(|s| !s.is_deleted && &s.entity_id == id)
            .and_then(|s| s.parsed_filter().ok())
    }

    /// The live saved segments, by creation.
    pub fn saved_segments(&self) -> Vec<&SavedSegment> {
        let mut live: Vec<&SavedSegment> = self.saved.values().filter(|s| !s.is_deleted).collect();
        live.sort_by_key(|s| s.id);
        live
    }

    /// The live tag group `tag` names.
    pub fn group_named(&self, tag: &TagRef) -> Option<TagGroup> {
        self.groups
            .iter()
            .find(|column| tag.names(&column.group))
            .map(|column| TagGroup::clone(&column.group))
    }

    /// The ordinals of the users `node` holds for.
    pub fn evaluate(&self, node: &Node) -> Bitmap {
        match node {
            Node::Leaf(condition) => self.leaf(condition),
            Node::Not(child) => {
                let mut everyone = self.everyone();
                everyone.andnot_inplace(&self.evaluate(child));
                everyone
            }
            Node::Any(children) => {
                let mut union = Bitmap::new();
                for child in children {
                    union.or_inplace(&self.evaluate(child));
                }
                union
            }
            Node::All(children) => {
                let (negated, positive): (Vec<&Node>, Vec<&Node>) =
                    children.iter().partition(|c| matches!(c, Node::Not(_)));
                let mut result = match positive.split_first() {
                    None => self.everyone(),
                    Some((first, rest)) => {
                        let mut result = self.evaluate(first);
                        for child in rest {
                            if result.is_empty() {
                                break;
                            }
                            result.and_inplace(&self.evaluate(child));
                        }
                        result
                    }
                };
                for child in negated {
                    if let Node::Not(inner) = child {
                        if result.is_empty() {
                            break;
                        }
                        result.andnot_inplace(&self.evaluate(inner));
                    }
                }
                result
            }
        }
    }

    /// Whether `node` holds for one user: the same rules as [`Self::evaluate`], asking only
    /// that user's cells (a user's saved segments are found without evaluating any segment
    /// whole).
    pub fn holds_for(&self, node: &Node, ordinal: u32) -> bool {
        match node {
            Node::Leaf(condition) => self.leaf_holds_for(condition, ordinal),
            Node::Not(child) => !self.holds_for(child, ordinal),
            Node::Any(children) => children.iter().any(|c| self.holds_for(c, ordinal)),
            Node::All(children) => children.iter().all(|c| self.holds_for(c, ordinal)),
        }
    }

    fn leaf_holds_for(&self, condition: &Condition, ordinal: u32) -> bool {
        let Some(&g) = self.group_by_ref.get(&condition.group_ref) else {
            return false;
        };
        let Some(cell) = self.groups[g as usize].get(ordinal) else {
            return false;
        };
        let kind = self.stamps.get(cell.stamp).kind;
        condition.mtime.contains(i64::from(cell.mtime))
            && condition
                .test
                .matches(values::value_ref(cell.value, kind, &self.strings))
    }

    /// The ordinal of a registered user.
    pub fn ordinal_of(&self, user_id: &UserId) -> Option<u32> {
        self.users.ordinal_of(user_id.as_str())
    }

    fn everyone(&self) -> Bitmap {
        let mut all = Bitmap::new();
        all.add_range(0..self.users.len() as u32);
        all
    }

    fn leaf(&self, condition: &Condition) -> Bitmap {
        let Some(&g) = self.group_by_ref.get(&condition.group_ref) else {
            return Bitmap::new();
        };
        let column = &self.groups[g as usize];
        if condition.test == Test::Exists && condition.mtime.is_unbounded() {
            return column.members.clone();
        }
        let mut matched = Vec::new();
        for (ordinal, cell) in column.cells() {
            if !condition.mtime.contains(i64::from(cell.mtime)) {
                continue;
            }
            let kind = self.stamps.get(cell.stamp).kind;
            if condition
                .test
                .matches(values::value_ref(cell.value, kind, &self.strings))
            {
                matched.push(ordinal);
            }
        }
        // Cells come in ordinal order: the bitmap is built in one pass.
        Bitmap::of(&matched)
    }

    /// One page of `node`'s members registered after the user `after_ref`, and their count.
    pub fn segment_page(&self, node: &Node, after_ref: i64, limit: usize) -> SegmentPage {
        let members = self.evaluate(node);
        let count = members.cardinality();
        let member = |ordinal: u32| Member {
            user_ref: self.users.user_ref(ordinal),
            user_id: UserId::from_trusted(self.users.id(ordinal).to_owned()),
        };
        let mut page: Vec<Member> = match self.users.first_after(after_ref) {
            Some(start) => {
                let mut iter = members.iter();
                iter.reset_at_or_after(start);
                iter.take(limit.saturating_add(1)).map(member).collect()
            }
            None => {
                let mut refs: Vec<(i64, u32)> = members
                    .iter()
                    .map(|o| (self.users.user_ref(o), o))
                    .filter(|(r, _)| *r > after_ref)
                    .collect();
                refs.sort_unstable();
                refs.into_iter()
                    .take(limit.saturating_add(1))
                    .map(|(_, o)| member(o))
                    .collect()
            }
        };
        let has_more = page.len() > limit;
        page.truncate(limit);
        SegmentPage {
            count,
            members: page,
            has_more,
        }
    }
}
