//! An organization's users by dense ordinal, in the order the index learned of them, never
//! reused: their internal ids, and their user ids kept end to end in one string, found again
//! through a table of ordinals (the text is not stored twice).

use hashbrown::HashTable;
use std::collections::HashMap;
use std::hash::BuildHasher;
use tagd_core::UserId;

#[derive(Default)]
pub(crate) struct Users {
    refs: Vec<i64>,
    by_ref: HashMap<i64, u32>,
    text: String,
    /// Where each user's id ends in `text`.
    ends: Vec<u32>,
    by_id: HashTable<u32>,
    hasher: std::collections::hash_map::RandomState,
    /// Some user arrived with a lower internal id than one before it (concurrent
    /// registrations on PostgreSQL can commit out of order): ordinal order is then not
    /// registration order, and segment pages sort by id instead.
    out_of_order: bool,
}

impl Users {
    pub fn len(&self) -> usize {
        self.refs.len()
    }

    pub fn ordinal_of_ref(&self, user_ref: i64) -> Option<u32> {
        self.by_ref.get(&user_ref).copied()
    }

    pub fn ordinal_of(&self, user_id: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(user_id);
        self.by_id.find(hash, |&o| self.id(o) == user_id).copied()
    }

    /// The first ordinal of a user registered after `user_ref`, when ordinals follow
    /// registration order; `None` when they do not.
    pub fn first_after(&self, user_ref: i64) -> Option<u32> {
        (!self.out_of_order).then(|| self.refs.partition_point(|&r| r <= user_ref) as u32)
    }

    pub fn user_ref(&self, ordinal: u32) -> i64 {
        self.refs[ordinal as usize]
    }

    pub fn id(&self, ordinal: u32) -> &str {
        id_in(&self.text, &self.ends, ordinal)
    }

    /// Adds a user unless known; `false` when the ids no longer fit (4 GiB of text).
    pub fn add(&mut self, user_ref: i64, user_id: &UserId) -> bool {
        if self.by_ref.contains_key(&user_ref) {
            return true;
        }
        let Ok(end) = u32::try_from(self.text.len() + user_id.as_str().len()) else {
            return false;
        };
        let ordinal = self.refs.len() as u32;
        self.out_of_order |= self.refs.last().is_some_and(|&last| last > user_ref);
        self.refs.push(user_ref);
        self.by_ref.insert(user_ref, ordinal);
        self.text.push_str(user_id.as_str());
        self.ends.push(end);
        let hash = self.hasher.hash_one(user_id.as_str());
        let (text, ends, hasher) = (&self.text, &self.ends, &self.hasher);
        self.by_id.insert_unique(hash, ordinal, |&o| {
            let end = ends[o as usize] as usize;
            let start = if o == 0 {
                0
            } else {
                ends[o as usize - 1] as usize
            };
            hasher.hash_one(&text[start..end])
        });
        true
    }

    pub fn shrink(&mut self) {
        self.refs.shrink_to_fit();
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
    }

    pub fn estimated_bytes(&self) -> usize {
        // Hash tables: a slot and a control byte each, at a load of about 7/8.
        self.refs.capacity() * 8
            + self.by_ref.capacity() * (8 + 4 + 1) * 8 / 7
            + self.text.capacity()
            + self.ends.capacity() * 4
            + self.by_id.capacity() * (4 + 1) * 8 / 7
    }
}

/// The id of `ordinal` in ids kept end to end in `text`, ending at `ends`.
fn id_in<'a>(text: &'a str, ends: &[u32], ordinal: u32) -> &'a str {
    let end = ends[ordinal as usize] as usize;
    let start = match ordinal {
        0 => 0,
        o => ends[o as usize - 1] as usize,
    };
    &text[start..end]
}
