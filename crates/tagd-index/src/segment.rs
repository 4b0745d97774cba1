//! Segments evaluated in memory: each leaf is a bitmap of ordinals (a group's holders as they
//! are, or its cells tested one by one), combined with croaring's set operations. `not` is
//! taken against every registered user, and inside `all` it subtracts instead of building
//! the complement, so "A and not B" is one `andnot` of two bitmaps.

use super::OrgIndex;
use crate::values;
use croaring::Bitmap;
use tagd_core::segments::{Condition, Member, Node, SegmentPage, TagRef, Test};
use tagd_core::{TagGroup, UserId};

impl OrgIndex {
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
