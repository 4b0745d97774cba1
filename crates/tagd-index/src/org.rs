//! One organization in memory: its users by dense ordinal, and per tag group a column of
//! who holds it with what (`column.rs`). Built from a snapshot of the store, then kept
//! current by applying change-log entries.
//!
//! Applying is idempotent and tolerates the two orders entries arrive in: the follower reads
//! the log in version order, while a server's own writes are applied as they commit, possibly
//! ahead of older entries the follower has not read yet. Each object keeps what orders its
//! states (an assignment its own version, a group the log version that last set it), and an
//! older state never replaces a newer one.

#[path = "membership.rs"]
mod membership;
#[path = "segment.rs"]
mod segment;

use crate::column::{Cell, GroupColumn};
use crate::users::Users;
use crate::values::{self, Stamps, Strings};
use croaring::Bitmap;
use membership::Memberships;
use std::collections::{BTreeMap, HashMap};
use tagd_core::expiry::is_live;
use tagd_core::log::{Change, LogEntry, Subject, TagChange};
use tagd_core::saved_segments::SavedSegment;
use tagd_core::timefmt::now_unix;
use tagd_core::*;

/// The entry cannot be applied: the index missed something (or holds something it cannot
/// keep) and must be rebuilt, or the organization served from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap(pub String);

pub struct OrgIndex {
    org: OrgId,
    /// Every entry of the log up to this version is applied (the follower's cursor).
    applied: i64,
    /// Reads go to the store until the cursor reaches this version: a write of this server
    /// named a user or group that the follower has not brought in yet.
    stale_until: i64,
    users: Users,
    groups: Vec<GroupColumn>,
    /// Which groups have any holder: a user's list asks only those, so an organization's
    /// many empty groups (labels nobody carries yet) cost nothing per read.
    held_groups: GroupSet,
    group_by_ref: HashMap<i64, u32>,
    stamps: Stamps,
    strings: Strings,
    /// Assignment ids are kept as offsets from this base (set by the first one seen).
    id_base: Option<i64>,
    /// Assignment ids that are not `ExternalId::of_assignment` (made before it existed).
    other_entity_ids: HashMap<(u32, u32), [u8; 16]>,
    /// Removals applied ahead of the cursor: assignment id → (its version, the log version).
    /// An older entry of the same assignment read later must not bring it back; dropped once
    /// the cursor passes them.
    removed_ahead: HashMap<i64, (i64, i64)>,
    /// The expiry of each held value that has one, by (ordinal, group position).
    expiry_of: HashMap<(u32, u32), i64>,
    /// The same by instant, for [`OrgIndex::expire_due`]; an entry whose value has been
    /// replaced since is skipped when its time comes.
    expiring: BTreeMap<i64, Vec<(u32, u32)>>,
    /// Saved segments by internal id, deleted ones kept (their version orders later states).
    saved: HashMap<i64, SavedSegment>,
    /// Bumped by every change of users, groups, values or saved segments.
    generation: u64,
    /// Audiences being paged through, evaluated once per generation (`segment.rs`).
    walks: std::sync::Mutex<segment::Walks>,
    /// Saved segments' members, kept current change by change (`membership.rs`).
    pub(crate) memberships: Memberships,
}

impl OrgIndex {
    /// An empty index of `org` whose cursor starts at `applied`.
    pub fn new(org: OrgId, applied: i64) -> Self {
        OrgIndex {
            org,
            applied,
            stale_until: 0,
            users: Users::default(),
            groups: Vec::new(),
            held_groups: GroupSet::default(),
            group_by_ref: HashMap::new(),
            stamps: Stamps::default(),
            strings: Strings::default(),
            id_base: None,
            other_entity_ids: HashMap::new(),
            removed_ahead: HashMap::new(),
            expiry_of: HashMap::new(),
            expiring: BTreeMap::new(),
            saved: HashMap::new(),
            generation: 0,
            walks: Default::default(),
            memberships: Memberships::default(),
        }
    }

    pub fn org(&self) -> OrgId {
        self.org
    }

    pub fn applied(&self) -> i64 {
        self.applied
    }

    /// Moves the cursor: every entry up to `version` has been applied.
    pub fn advance(&mut self, version: i64) {
        if version > self.applied {
            self.applied = version;
            self.removed_ahead.retain(|_, (_, at)| *at > version);
        }
    }

    /// Whether reads may be answered from memory: no write of this server is missing.
    pub fn fresh(&self) -> bool {
        self.applied >= self.stale_until
    }

    /// Sends reads to the store until the cursor reaches `version`.
    pub fn stale_until(&mut self, version: i64) {
        self.stale_until = self.stale_until.max(version);
    }

    /// Applies this server's own committed entries, which may run ahead of the cursor: one
    /// that names a user or group not loaded yet leaves the index stale (reads go to the
    /// store) until the follower has read up to it.
    ///
    /// With `dense` versions (a counter), entries that follow the cursor without a gap move
    /// it: the follower need not read back what this server wrote itself.
    pub fn apply_own(&mut self, entries: &[LogEntry], dense: bool) {
        let mut contiguous = dense;
        for entry in entries {
            if self.apply(entry).is_err() {
                self.stale_until(entry.version);
                contiguous = false;
            }
            if contiguous && entry.version == self.applied + 1 {
                self.advance(entry.version);
            } else {
                contiguous = false;
            }
        }
    }

    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    pub fn add_user(&mut self, user_ref: i64, user_id: &UserId) -> Result<(), Gap> {
        self.generation += 1;
        if self.users.add(user_ref, user_id) {
            if let Some(ordinal) = self.users.ordinal_of_ref(user_ref) {
                self.retest_memberships(ordinal, None);
            }
            Ok(())
        } else {
            Err(Gap("user ids over 4 GiB".into()))
        }
    }

    /// Sets the group's state as of log version `at`, unless a later one is already set.
    pub fn set_group(&mut self, group: TagGroup, at: i64) {
        self.generation += 1;
        match self.group_by_ref.get(&group.id) {
            Some(&g) => {
                let column = &mut self.groups[g as usize];
                if column.set_at <= at {
                    column.group = std::sync::Arc::new(group);
                    column.set_at = at;
                }
            }
            None => {
                self.group_by_ref.insert(group.id, self.groups.len() as u32);
                self.groups.push(GroupColumn::new(group, at));
            }
        }
        self.refresh_memberships();
    }

    /// Applies one entry at log version `entry.version`.
    pub fn apply(&mut self, entry: &LogEntry) -> Result<(), Gap> {
        let Change { subject, .. } = &entry.change;
        match subject {
            Subject::User {
                user_ref, user_id, ..
            } => self.add_user(*user_ref, user_id)?,
            Subject::Group(group) => self.set_group(group.as_ref().clone(), entry.version),
            Subject::Tag(tag) => self.apply_tag(tag, entry.version)?,
            Subject::Segment(saved) => self.set_segment(saved.as_ref().clone()),
            // Derived from the changes before it, which moved the members already.
            Subject::Membership(_) => {}
        }
        Ok(())
    }

    /// Applies a tag change made at log version `at` (0 for a snapshot row).
    pub fn apply_tag(&mut self, change: &TagChange, at: i64) -> Result<(), Gap> {
        self.generation += 1;
        if let Some((version, _)) = self.removed_ahead.get(&change.assignment_id) {
            if *version >= change.version {
                return Ok(());
            }
        }
        let ordinal = self
            .users
            .ordinal_of_ref(change.user_ref)
            .ok_or_else(|| Gap(format!("user {} is not in the index", change.user_ref)))?;
        let g = *self
            .group_by_ref
            .get(&change.group_ref)
            .ok_or_else(|| Gap(format!("group {} is not in the index", change.group_ref)))?;
        let held = self.groups[g as usize].get(ordinal);
        if let Some(cell) = held {
            if i64::from(self.stamps.get(cell.stamp).version) >= change.version {
                return Ok(());
            }
        }
        // A value whose expiry has passed is applied as the removal it already is.
        let live = (change.value.as_ref()).filter(|_| is_live(change.expires_at, now_unix()));
        match live {
            Some(value) => {
                let cell = self.cell(change, value)?;
                let column = &mut self.groups[g as usize];
                let is_true = *value == TagValue::Define(true);
                if let Some(old) = column.put(ordinal, cell, is_true) {
                    self.release(old);
                }
                self.held_groups.set(g, true);
                self.note_entity_id(ordinal, g, change);
                self.removed_ahead.remove(&change.assignment_id);
                match change.expires_at {
                    Some(at) => {
                        self.expiry_of.insert((ordinal, g), at);
                        self.expiring.entry(at).or_default().push((ordinal, g));
                    }
                    None => {
                        self.expiry_of.remove(&(ordinal, g));
                    }
                }
            }
            None => {
                self.drop_value(ordinal, g);
                if at > self.applied {
                    self.removed_ahead
                        .insert(change.assignment_id, (change.version, at));
                }
            }
        }
        self.retest_memberships(ordinal, Some(change.group_ref));
        Ok(())
    }

    /// Takes the value of (ordinal, g) out, if there is one.
    fn drop_value(&mut self, ordinal: u32, g: u32) {
        if let Some(old) = self.groups[g as usize].take(ordinal) {
            self.release(old);
            self.other_entity_ids.remove(&(ordinal, g));
            self.held_groups
                .set(g, !self.groups[g as usize].members.is_empty());
        }
        self.expiry_of.remove(&(ordinal, g));
    }

    /// The earliest instant a held value expires at, if any does.
    pub fn next_expiry(&self) -> Option<i64> {
        self.expiring.keys().next().copied()
    }

    /// Takes out every value whose expiry is at or before `now`, as the removals they are:
    /// what reads see from that instant, before the sweep records them. Answers how many.
    pub fn expire_due(&mut self, now: i64) -> usize {
        let mut expired = 0;
        while let Some(entry) = self.expiring.first_entry() {
            if *entry.key() > now {
                break;
            }
            let (at, held) = entry.remove_entry();
            for (ordinal, g) in held {
                // Skipped when the value was replaced or removed since.
                if self.expiry_of.get(&(ordinal, g)) != Some(&at) {
                    continue;
                }
                self.generation += 1;
                self.drop_value(ordinal, g);
                let group_ref = self.groups[g as usize].group.id;
                self.retest_memberships(ordinal, Some(group_ref));
                expired += 1;
            }
        }
        expired
    }

    fn cell(&mut self, change: &TagChange, value: &TagValue) -> Result<Cell, Gap> {
        let base = *self.id_base.get_or_insert(change.assignment_id - (1 << 31));
        let id = u32::try_from(change.assignment_id - base)
            .map_err(|_| Gap("assignment ids spread over 2^32".into()))?;
        let seconds = |t: i64| u32::try_from(t).map_err(|_| Gap(format!("time {t} out of range")));
        let version = u32::try_from(change.version).map_err(|_| Gap("version over 2^32".into()))?;
        let (bits, kind) = values::encode(value, &mut self.strings);
        Ok(Cell {
            value: bits,
            id,
            ctime: seconds(change.ctime)?,
            mtime: seconds(change.at)?,
            stamp: self
                .stamps
                .intern(version, &change.executor, change.source, kind),
        })
    }

    fn release(&mut self, cell: Cell) {
        let kind = self.stamps.get(cell.stamp).kind;
        values::release(cell.value, kind, &mut self.strings);
    }

    /// Keeps the assignment's external id only when it cannot be computed again.
    fn note_entity_id(&mut self, ordinal: u32, g: u32, change: &TagChange) {
        let computed =
            ExternalId::of_assignment(self.org, change.user_ref, change.group_ref, change.ctime);
        let mut bytes = [0u8; 16];
        let stored = change.entity_id.as_str();
        if computed.as_str() == stored || hex::decode_to_slice(stored, &mut bytes).is_err() {
            self.other_entity_ids.remove(&(ordinal, g));
        } else {
            self.other_entity_ids.insert((ordinal, g), bytes);
        }
    }

    /// A registered user's live assignments, as `list_user_assignments` answers them; `None`
    /// when the user is not registered.
    pub fn user_assignments(&self, user_id: &UserId) -> Option<Vec<Assignment>> {
        self.rows_of(user_id, |_, _| true)
    }

    /// The labels a user carries (live `define` values that are true, of active groups), as
    /// `list_user_labels` answers them; `None` when the user is not registered.
    pub fn user_labels(&self, user_id: &UserId) -> Option<Vec<Assignment>> {
        self.rows_of(user_id, |group, value| {
            *value == TagValue::Define(true)
                && group.attribute == Attribute::Define
                && group.is_active
                && !group.is_deleted
        })
    }

    /// The user's live assignments that `keep`, ordered as SQL lists them (`ctime, id`).
    fn rows_of(
        &self,
        user_id: &UserId,
        keep: impl Fn(&TagGroup, &TagValue) -> bool,
    ) -> Option<Vec<Assignment>> {
        let ordinal = self.users.ordinal_of(user_id.as_str())?;
        let mut held: Vec<(u32, Cell)> = self
            .held_groups
            .iter()
            .filter_map(|g| Some((g, self.groups[g as usize].get(ordinal)?)))
            .collect();
        held.sort_by_key(|(_, cell)| (cell.ctime, cell.id));
        // Exact at the instant of the read, even before `expire_due` has run (nothing to look
        // up, on this hot path, in an organization where nothing expires).
        if !self.expiry_of.is_empty() {
            let now = now_unix();
            held.retain(|(g, _)| is_live(self.expiry_of.get(&(ordinal, *g)).copied(), now));
        }
        let rows = held
            .into_iter()
            .filter_map(|(g, cell)| {
                let row = self.row(ordinal, g, cell, user_id);
                keep(&self.groups[g as usize].group, &row.value).then_some(row)
            })
            .collect();
        Some(rows)
    }

    fn row(&self, ordinal: u32, g: u32, cell: Cell, user_id: &UserId) -> Assignment {
        let group = &self.groups[g as usize].group;
        let stamp = self.stamps.get(cell.stamp);
        let (executor, source) = self
            .stamps
            .who
            .get(stamp.who)
            .map(|(e, s)| (e.clone(), s))
            .unwrap_or_else(|| (Executor::operator(), Source::Import));
        let ctime = i64::from(cell.ctime);
        let user_ref = self.users.user_ref(ordinal);
        let entity_id = match self.other_entity_ids.get(&(ordinal, g)) {
            Some(bytes) => ExternalId::from_trusted(hex::encode(bytes)),
            None => ExternalId::of_assignment(self.org, user_ref, group.id, ctime),
        };
        Assignment {
            org_id: self.org,
            id: self.id_base.unwrap_or(0) + i64::from(cell.id),
            entity_id,
            user_id: user_id.clone(),
            group_id: group.id,
            tags_group_id: group.entity_id.clone(),
            group_name: group.name.clone(),
            variable_name: group.variable_name.clone(),
            value: values::decode(cell.value, stamp.kind, &self.strings),
            executor,
            source,
            version: i64::from(stamp.version),
            ctime,
            mtime: i64::from(cell.mtime),
            is_deleted: false,
            expires_at: self.expiry_of.get(&(ordinal, g)).copied(),
        }
    }

    /// Live values held: one per user and group holding one.
    pub fn live_values(&self) -> u64 {
        self.groups.iter().map(|g| g.members.cardinality()).sum()
    }

    /// The users who hold a live value of `group_ref` (for segments).
    pub fn members(&self, group_ref: i64) -> Option<&Bitmap> {
        let g = self.group_by_ref.get(&group_ref)?;
        Some(&self.groups[*g as usize].members)
    }

    /// The users who hold a live value of `group_ref`, by user id, sorted.
    pub fn holders(&self, group_ref: i64) -> Vec<UserId> {
        let Some(members) = self.members(group_ref) else {
            return Vec::new();
        };
        let mut ids: Vec<UserId> = members
            .iter()
            .map(|o| UserId::from_trusted(self.users.id(o).to_owned()))
            .collect();
        ids.sort();
        ids
    }

    /// Gives back what a load over-allocated.
    pub fn shrink(&mut self) {
        self.users.shrink();
        for column in &mut self.groups {
            column.shrink();
        }
    }

    /// What the index holds, roughly, in bytes: what the memory budget counts. It costs one
    /// pass over the groups' chunks, not over the users.
    pub fn estimated_bytes(&self) -> usize {
        let groups: usize = self.groups.iter().map(GroupColumn::estimated_bytes).sum();
        let others = self.other_entity_ids.capacity() * (8 + 16 + 1) * 8 / 7
            + self.expiry_of.capacity() * (8 + 8 + 1) * 8 / 7
            + self.expiry_of.len() * 8 * 2;
        self.users.estimated_bytes()
            + groups
            + self.stamps.estimated_bytes()
            + self.strings.estimated_bytes()
            + self.memberships.estimated_bytes()
            + others
    }
}

/// A set of group positions, one bit each.
#[derive(Default)]
struct GroupSet {
    words: Vec<u64>,
}

impl GroupSet {
    fn set(&mut self, g: u32, present: bool) {
        let (word, bit) = ((g / 64) as usize, g % 64);
        if word >= self.words.len() {
            if !present {
                return;
            }
            self.words.resize(word + 1, 0);
        }
        if present {
            self.words[word] |= 1 << bit;
        } else {
            self.words[word] &= !(1 << bit);
        }
    }

    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                (rest != 0).then(|| {
                    let bit = rest.trailing_zeros();
                    rest &= rest - 1;
                    w as u32 * 64 + bit
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_group_set_lists_the_groups_that_have_holders() {
        let mut set = GroupSet::default();
        for g in [0, 3, 64, 130] {
            set.set(g, true);
        }
        set.set(3, false);
        set.set(500, false);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![0, 64, 130]);
    }

    use super::*;

    #[test]
    fn a_cell_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Cell>(), 24);
    }

    #[test]
    fn a_value_decodes_by_its_own_kind() {
        let mut strings = Strings::default();
        for value in [
            TagValue::Define(true),
            TagValue::Number(-12.5),
            TagValue::String("Pune".into()),
        ] {
            let (bits, kind) = values::encode(&value, &mut strings);
            assert_eq!(values::decode(bits, kind, &strings), value);
        }
    }
}
