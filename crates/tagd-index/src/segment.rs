//! Segments evaluated in memory: each leaf is a bitmap of ordinals (a group's holders as they
//! are, or its cells tested one by one), combined with croaring's set operations. `not` is
//! taken against every registered user, and inside `all` it subtracts instead of building
//! the complement, so "A and not B" is one `andnot` of two bitmaps.

use super::OrgIndex;
use crate::column::{Cell, GroupColumn};
use crate::values;
use croaring::Bitmap;
use std::sync::Arc;
use tagd_core::saved_segments::SavedSegment;
use tagd_core::segments::{Condition, Filter, Member, Node, SegmentPage, TagRef, Test, ValueRef};
use tagd_core::{Attribute, ExternalId, TagGroup, UserId};

impl OrgIndex {
    /// Keeps a saved segment's state, unless a later one (a higher version) is kept already.
    pub fn set_segment(&mut self, saved: SavedSegment) {
        self.generation += 1;
        match self.saved.get(&saved.id) {
            Some(kept) if kept.version >= saved.version => {}
            _ => {
                self.saved.insert(saved.id, saved);
                self.refresh_memberships();
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
            Node::All(children) => self.all(children),
        }
    }

    /// `all`: bitmaps first (leaves a bitmap answers, nested nodes), then the `not`s
    /// subtracted, then the leaves that test cells, each asking only the users still in.
    fn all(&self, children: &[Node]) -> Bitmap {
        let scans =
            |c: &&Node| matches!(c, Node::Leaf(condition) if !self.answered_by_bitmaps(condition));
        let (scanned, rest): (Vec<&Node>, Vec<&Node>) = children.iter().partition(scans);
        let (negated, positive): (Vec<&Node>, Vec<&Node>) =
            rest.into_iter().partition(|c| matches!(c, Node::Not(_)));
        let mut result = match positive.split_first() {
            None => self.everyone(),
            Some((first, others)) => {
                let mut result = self.evaluate(first);
                for child in others {
                    if result.is_empty() {
                        return result;
                    }
                    result.and_inplace(&self.evaluate(child));
                }
                result
            }
        };
        for child in negated {
            if let Node::Not(inner) = child {
                if result.is_empty() {
                    return result;
                }
                result.andnot_inplace(&self.evaluate(inner));
            }
        }
        if scanned.is_empty() || result.is_empty() {
            return result;
        }
        // The users still in as plain bits, narrowed by each leaf that tests cells in turn
        // and made a bitmap once at the end: a bitmap per leaf cost more than the tests.
        let mut bits = words_of(&result);
        for child in scanned {
            if let Node::Leaf(condition) = child {
                if bits.iter().all(|word| *word == 0) {
                    break;
                }
                bits = self.scan(condition, Narrow(&bits));
            }
        }
        bitmap_of_words(&bits)
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

    fn walks(&self) -> std::sync::MutexGuard<'_, Walks> {
        self.walks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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
        if condition.mtime.is_unbounded() {
            if let Some(answer) = from_bitmaps(column, &condition.test) {
                return answer;
            }
        }
        self.scan(condition, Select)
    }

    fn answered_by_bitmaps(&self, condition: &Condition) -> bool {
        let Some(&g) = self.group_by_ref.get(&condition.group_ref) else {
            return true;
        };
        condition.mtime.is_unbounded()
            && from_bitmaps(&self.groups[g as usize], &condition.test).is_some()
    }

    /// The users whose cell passes `condition`, as `sieve` keeps them. String values are
    /// tested once per distinct string, not once per cell.
    fn scan<S: Sieve>(&self, condition: &Condition, sieve: S) -> S::Kept {
        let Some(&g) = self.group_by_ref.get(&condition.group_ref) else {
            return sieve.none();
        };
        let column = &self.groups[g as usize];
        let mtime = condition.mtime;
        let recent = move |cell: Cell| mtime.contains(i64::from(cell.mtime));
        // A group's live cells all hold values of its attribute (it cannot change while any
        // is live), so each cell is read as that kind without asking its stamp.
        match condition.attribute {
            Attribute::Number => {
                let test = condition.test.number_test();
                if mtime.is_unbounded() {
                    sieve.sift(column, |cell| test.passes(f64::from_bits(cell.value)))
                } else {
                    sieve.sift(column, |cell| {
                        recent(cell) && test.passes(f64::from_bits(cell.value))
                    })
                }
            }
            Attribute::String => {
                let verdicts = self
                    .strings
                    .verdicts(|text| condition.test.matches(ValueRef::Text(text)));
                let passes =
                    |cell: Cell| verdicts.get(cell.value as usize).copied().unwrap_or(false);
                sieve.sift(column, |cell| recent(cell) && passes(cell))
            }
            Attribute::Define => sieve.sift(column, |cell| {
                recent(cell) && condition.test.matches(ValueRef::Define(cell.value != 0))
            }),
        }
    }

    /// One page of `node`'s members registered after the user `after_ref`, and their count.
    pub fn segment_page(&self, node: &Node, after_ref: i64, limit: usize) -> SegmentPage {
        // A page after the first continues a walk: its audience was evaluated for the first
        // page, and is the same while nothing changed. A count alone (`limit` 0) starts none.
        let walking = limit > 0;
        let key = walking.then(|| format!("{node:?}"));
        let kept = key
            .as_deref()
            .filter(|_| after_ref > 0)
            .and_then(|key| self.walks().find(key, self.generation));
        let members = kept.unwrap_or_else(|| Arc::new(self.evaluate(node)));
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
        if let Some(key) = key.filter(|_| has_more) {
            self.walks().keep(key, self.generation, members);
        }
        SegmentPage {
            count,
            members: page,
            has_more,
        }
    }
}

/// A leaf answered from the column's bitmaps alone, where its test allows: any value, or a
/// `define` value (true holders are kept apart). `None`: the cells must be tested.
fn from_bitmaps(column: &crate::column::GroupColumn, test: &Test) -> Option<Bitmap> {
    use tagd_core::segments::Comparison::{Eq, Ne};
    use tagd_core::TagValue::Define;
    let falses = || column.members.andnot(&column.trues);
    Some(match test {
        Test::Exists => column.members.clone(),
        Test::Compare(Eq, Define(true)) | Test::Compare(Ne, Define(false)) => column.trues.clone(),
        Test::Compare(Eq, Define(false)) | Test::Compare(Ne, Define(true)) => falses(),
        Test::In(values) if values.iter().all(|v| matches!(v, Define(_))) => {
            match (
                values.contains(&Define(true)),
                values.contains(&Define(false)),
            ) {
                (true, true) => column.members.clone(),
                (true, false) => column.trues.clone(),
                (false, true) => falses(),
                (false, false) => Bitmap::new(),
            }
        }
        _ => return None,
    })
}

/// Audiences being paged through, newest last: (the resolved filter, the generation it was
/// evaluated at, its members). A few are kept; a walk whose entry is gone evaluates again.
#[derive(Default)]
pub(crate) struct Walks {
    kept: Vec<(String, u64, Arc<Bitmap>)>,
}

const WALKS_KEPT: usize = 8;

impl Walks {
    fn find(&self, key: &str, generation: u64) -> Option<Arc<Bitmap>> {
        self.kept
            .iter()
            .find(|(k, g, _)| k == key && *g == generation)
            .map(|(_, _, members)| members.clone())
    }

    fn keep(&mut self, key: String, generation: u64, members: Arc<Bitmap>) {
        self.kept.retain(|(k, g, _)| *k != key && *g == generation);
        if self.kept.len() >= WALKS_KEPT {
            self.kept.remove(0);
        }
        self.kept.push((key, generation, members));
    }
}

/// What a scan keeps of the cells that pass its test.
trait Sieve {
    type Kept;
    fn sift(self, column: &GroupColumn, passes: impl Fn(Cell) -> bool) -> Self::Kept;
    /// The group is unknown: no one passes.
    fn none(self) -> Self::Kept;
}

/// Every holder of the column that passes, as a bitmap (a leaf on its own).
struct Select;

impl Sieve for Select {
    type Kept = Bitmap;

    fn sift(self, column: &GroupColumn, passes: impl Fn(Cell) -> bool) -> Bitmap {
        // Cells come in ordinal order: the bitmap is built in one pass.
        let mut matched = Vec::new();
        column.for_each_cell(|ordinal, cell| {
            if passes(cell) {
                matched.push(ordinal);
            }
        });
        Bitmap::of(&matched)
    }

    fn none(self) -> Bitmap {
        Bitmap::new()
    }
}

/// The candidates (bit `o` of word `o / 64`) that hold a cell that passes, as plain bits.
struct Narrow<'a>(&'a [u64]);

impl Sieve for Narrow<'_> {
    type Kept = Vec<u64>;

    fn sift(self, column: &GroupColumn, passes: impl Fn(Cell) -> bool) -> Vec<u64> {
        let candidates = self.0;
        let mut kept = vec![0u64; candidates.len()];
        let count: u64 = candidates.iter().map(|w| u64::from(w.count_ones())).sum();
        // A lookup costs about as much as reading 30 cells in order (a search in its chunk, a
        // cache miss or two): only far fewer candidates than holders are looked up.
        if count * 32 < column.members.cardinality() {
            for ordinal in ordinals_of(candidates) {
                if column.get(ordinal).is_some_and(&passes) {
                    kept[ordinal as usize / 64] |= 1 << (ordinal % 64);
                }
            }
        } else {
            column.for_each_candidate_cell(candidates, |ordinal, cell| {
                if passes(cell) {
                    kept[ordinal as usize / 64] |= 1 << (ordinal % 64);
                }
            });
        }
        kept
    }

    fn none(self) -> Vec<u64> {
        vec![0; self.0.len()]
    }
}

/// A bitmap as plain bits: bit `o` of word `o / 64`.
fn words_of(bitmap: &Bitmap) -> Vec<u64> {
    // croaring copies whole containers; iterating is the fallback if it cannot allocate.
    if let Some(bitset) = bitmap.to_bitset() {
        return bitset.as_slice().to_vec();
    }
    let mut words = vec![0u64; bitmap.maximum().map_or(0, |max| max as usize / 64 + 1)];
    for ordinal in bitmap.iter() {
        words[ordinal as usize / 64] |= 1 << (ordinal % 64);
    }
    words
}

/// The set bits of `words`, in order.
fn ordinals_of(words: &[u64]) -> impl Iterator<Item = u32> + '_ {
    words.iter().enumerate().flat_map(|(index, &word)| {
        let mut rest = word;
        std::iter::from_fn(move || {
            (rest != 0).then(|| {
                let bit = rest.trailing_zeros();
                rest &= rest - 1;
                (index as u32) * 64 + bit
            })
        })
    })
}

fn bitmap_of_words(words: &[u64]) -> Bitmap {
    Bitmap::of(&ordinals_of(words).collect::<Vec<u32>>())
}
