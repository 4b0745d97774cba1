//! One organization in memory: its users by dense ordinal, its tag groups with a bitmap of
//! the users who hold each, and every user's live tags. Built from a snapshot of the store,
//! then kept current by applying change-log entries.
//!
//! Applying is idempotent and tolerates the two orders entries arrive in: the follower reads
//! the log in version order, while a server's own writes are applied as they commit, possibly
//! ahead of older entries the follower has not read yet. Each object keeps what orders its
//! states (an assignment its own version, a group the log version that last set it), and an
//! older state never replaces a newer one.

use crate::who::Interner;
use croaring::Bitmap;
use std::collections::HashMap;
use std::sync::Arc;
use tagd_core::log::{Change, LogEntry, Subject, TagChange};
use tagd_core::*;

/// The entry cannot be applied: the index missed something and must be rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap(pub String);

/// One live assignment.
#[derive(Debug, Clone)]
struct Tag {
    assignment_id: i64,
    entity_id: [u8; 16],
    group_ref: i64,
    value: TagValue,
    version: i64,
    ctime: i64,
    mtime: i64,
    /// Who last wrote it and through which door, interned per organization.
    who: u32,
}

impl Tag {
    /// Rows are listed as SQL orders them: `ORDER BY ctime, id`.
    fn order(&self) -> (i64, i64) {
        (self.ctime, self.assignment_id)
    }
}

struct UserSlot {
    user_ref: i64,
    user_id: UserId,
    tags: Vec<Tag>,
}

struct GroupSlot {
    group: Arc<TagGroup>,
    /// The log version of the entry that set `group` (0: from the snapshot).
    set_at: i64,
    /// Ordinals of the users with a live value.
    members: Bitmap,
}

pub struct OrgIndex {
    org: OrgId,
    /// Every entry of the log up to this version is applied (the follower's cursor).
    applied: i64,
    users: Vec<UserSlot>,
    ordinal_by_ref: HashMap<i64, u32>,
    ordinal_by_id: HashMap<UserId, u32>,
    groups: HashMap<i64, GroupSlot>,
    who: Interner,
    /// Reads go to the store until the cursor reaches this version: a write of this server
    /// named a user or group that the follower has not brought in yet.
    stale_until: i64,
    /// Removals applied ahead of the cursor: assignment id → (its version, the log version).
    /// An older entry of the same assignment read later must not bring it back; dropped once
    /// the cursor passes them.
    removed_ahead: HashMap<i64, (i64, i64)>,
    /// Running totals for the memory estimate: live tags, and the heap bytes of user ids and
    /// string values.
    tag_count: usize,
    heap_bytes: usize,
}

impl OrgIndex {
    /// An empty index of `org` whose cursor starts at `applied`.
    pub fn new(org: OrgId, applied: i64) -> Self {
        OrgIndex {
            org,
            applied,
            users: Vec::new(),
            ordinal_by_ref: HashMap::new(),
            ordinal_by_id: HashMap::new(),
            groups: HashMap::new(),
            who: Interner::default(),
            stale_until: 0,
            removed_ahead: HashMap::new(),
            tag_count: 0,
            heap_bytes: 0,
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
    pub fn apply_own(&mut self, entries: &[LogEntry]) {
        for entry in entries {
            if self.apply(entry).is_err() {
                self.stale_until(entry.version);
            }
        }
    }

    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    pub fn add_user(&mut self, user_ref: i64, user_id: UserId) {
        if self.ordinal_by_ref.contains_key(&user_ref) {
            return;
        }
        let ordinal = self.users.len() as u32;
        self.heap_bytes += 2 * user_id.as_str().len();
        self.ordinal_by_ref.insert(user_ref, ordinal);
        self.ordinal_by_id.insert(user_id.clone(), ordinal);
        self.users.push(UserSlot {
            user_ref,
            user_id,
            tags: Vec::new(),
        });
    }

    /// Sets the group's state as of log version `at`, unless a later one is already set.
    pub fn set_group(&mut self, group: TagGroup, at: i64) {
        match self.groups.get_mut(&group.id) {
            Some(slot) if slot.set_at > at => {}
            Some(slot) => {
                slot.group = Arc::new(group);
                slot.set_at = at;
            }
            None => {
                let slot = GroupSlot {
                    group: Arc::new(group),
                    set_at: at,
                    members: Bitmap::new(),
                };
                self.groups.insert(slot.group.id, slot);
            }
        }
    }

    /// Applies one entry at log version `entry.version`.
    pub fn apply(&mut self, entry: &LogEntry) -> Result<(), Gap> {
        let Change { subject, .. } = &entry.change;
        match subject {
            Subject::User {
                user_ref, user_id, ..
            } => self.add_user(*user_ref, user_id.clone()),
            Subject::Group(group) => self.set_group(group.as_ref().clone(), entry.version),
            Subject::Tag(tag) => self.apply_tag(tag, entry.version)?,
        }
        Ok(())
    }

    /// Applies a tag change made at log version `at` (0 for a snapshot row).
    pub fn apply_tag(&mut self, change: &TagChange, at: i64) -> Result<(), Gap> {
        if let Some((version, _)) = self.removed_ahead.get(&change.assignment_id) {
            if *version >= change.version {
                return Ok(());
            }
        }
        let ordinal = *self
            .ordinal_by_ref
            .get(&change.user_ref)
            .ok_or_else(|| Gap(format!("user {} is not in the index", change.user_ref)))?;
        let group = self
            .groups
            .get_mut(&change.group_ref)
            .ok_or_else(|| Gap(format!("group {} is not in the index", change.group_ref)))?;
        let slot = &mut self.users[ordinal as usize];
        let held = slot
            .tags
            .iter()
            .position(|t| t.assignment_id == change.assignment_id);
        if let Some(i) = held {
            if slot.tags[i].version >= change.version {
                return Ok(());
            }
        }
        match &change.value {
            Some(value) => {
                let who = self.who.intern(&change.executor, change.source);
                let tag = Tag {
                    assignment_id: change.assignment_id,
                    entity_id: entity_bytes(&change.entity_id)?,
                    group_ref: change.group_ref,
                    value: value.clone(),
                    version: change.version,
                    ctime: change.ctime,
                    mtime: change.at,
                    who,
                };
                match held {
                    Some(i) => {
                        let old = slot.tags.remove(i);
                        self.heap_bytes -= heap_of(&old.value);
                    }
                    None => self.tag_count += 1,
                }
                self.heap_bytes += heap_of(&tag.value);
                let at = slot.tags.partition_point(|t| t.order() < tag.order());
                slot.tags.insert(at, tag);
                group.members.add(ordinal);
                self.removed_ahead.remove(&change.assignment_id);
            }
            None => {
                if let Some(i) = held {
                    let old = slot.tags.remove(i);
                    self.heap_bytes -= heap_of(&old.value);
                    self.tag_count -= 1;
                    group.members.remove(ordinal);
                }
                if at > self.applied {
                    self.removed_ahead
                        .insert(change.assignment_id, (change.version, at));
                }
            }
        }
        Ok(())
    }

    fn ordinal(&self, user_id: &UserId) -> Option<u32> {
        self.ordinal_by_id.get(user_id).copied()
    }

    /// A registered user's live assignments, as `list_user_assignments` answers them; `None`
    /// when the user is not registered.
    pub fn user_assignments(&self, user_id: &UserId) -> Option<Vec<Assignment>> {
        let slot = &self.users[self.ordinal(user_id)? as usize];
        Some(slot.tags.iter().filter_map(|t| self.row(slot, t)).collect())
    }

    /// The labels a user carries (live `define` values that are true, of active groups), as
    /// `list_user_labels` answers them; `None` when the user is not registered.
    pub fn user_labels(&self, user_id: &UserId) -> Option<Vec<Assignment>> {
        let slot = &self.users[self.ordinal(user_id)? as usize];
        let carried = slot.tags.iter().filter(|t| {
            let group = self.groups.get(&t.group_ref).map(|g| &g.group);
            t.value == TagValue::Define(true)
                && group.is_some_and(|g| {
                    g.attribute == Attribute::Define && g.is_active && !g.is_deleted
                })
        });
        Some(carried.filter_map(|t| self.row(slot, t)).collect())
    }

    /// The users who hold a live value of `group_ref` (for segments).
    pub fn members(&self, group_ref: i64) -> Option<&Bitmap> {
        self.groups.get(&group_ref).map(|g| &g.members)
    }

    fn row(&self, slot: &UserSlot, tag: &Tag) -> Option<Assignment> {
        let group = &self.groups.get(&tag.group_ref)?.group;
        let (executor, source) = self.who.get(tag.who)?;
        Some(Assignment {
            org_id: self.org,
            id: tag.assignment_id,
            entity_id: ExternalId::from_trusted(hex::encode(tag.entity_id)),
            user_id: slot.user_id.clone(),
            group_id: group.id,
            tags_group_id: group.entity_id.clone(),
            group_name: group.name.clone(),
            variable_name: group.variable_name.clone(),
            value: tag.value.clone(),
            executor: executor.clone(),
            source,
            version: tag.version,
            ctime: tag.ctime,
            mtime: tag.mtime,
            is_deleted: false,
        })
    }

    /// What the index holds, roughly, in bytes: what the memory budget counts. Kept from
    /// running totals, so it costs one pass over the groups, not over the users.
    pub fn estimated_bytes(&self) -> usize {
        use std::mem::size_of;
        // Hash maps: a key, a value and a control byte per slot, at a load of about 7/8.
        let map_slot = (size_of::<i64>() + 4 + 1) + (size_of::<UserId>() + 4 + 1);
        let users = self.users.len() * (size_of::<UserSlot>() + map_slot * 8 / 7);
        let tags = self.tag_count * size_of::<Tag>();
        let groups: usize = self
            .groups
            .values()
            .map(|g| {
                size_of::<GroupSlot>()
                    + size_of::<TagGroup>()
                    + g.members
                        .get_serialized_size_in_bytes::<croaring::Portable>()
            })
            .sum();
        users + tags + self.heap_bytes + groups + self.who.estimated_bytes()
    }

    /// The users who hold a live value of `group_ref`, by user id.
    pub fn holders(&self, group_ref: i64) -> Vec<UserId> {
        let Some(members) = self.members(group_ref) else {
            return Vec::new();
        };
        let mut ids: Vec<UserId> = members
            .iter()
            .map(|ordinal| self.users[ordinal as usize].user_id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// The user ref of every registered user, by ordinal (for tests and segments).
    pub fn user_refs(&self) -> impl Iterator<Item = i64> + '_ {
        self.users.iter().map(|u| u.user_ref)
    }
}

/// Heap bytes a value holds beyond its inline size.
fn heap_of(value: &TagValue) -> usize {
    match value {
        TagValue::String(s) => s.capacity(),
        _ => 0,
    }
}

/// The 16 bytes of a 32-hex external id.
fn entity_bytes(id: &ExternalId) -> Result<[u8; 16], Gap> {
    let mut bytes = [0u8; 16];
    let decoded = hex::decode_to_slice(id.as_str(), &mut bytes);
    // Kept as bytes and shown as lower-case hex again: anything else would not read back.
    if decoded.is_err() || hex::encode(bytes) != id.as_str() {
        return Err(Gap(format!(
            "entity id {} is not 32 lower-case hex digits",
            id.as_str()
        )));
    }
    Ok(bytes)
}
