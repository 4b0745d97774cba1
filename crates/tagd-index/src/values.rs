//! What a cell refers to instead of holding: string values, kept once per organization and
//! counted, and stamps (an assignment's version, who wrote it, and its value's kind), of
//! which an organization has few distinct ones (versions are small numbers, writers few).

use crate::who::Interner;
use std::collections::HashMap;
use tagd_core::segments::ValueRef;
use tagd_core::{Executor, Source, TagValue};

/// A value's kind, kept in its stamp so a cell decodes whatever its group now says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Define,
    Number,
    String,
}

/// (version, writer, kind) of a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Stamp {
    pub version: u32,
    pub who: u32,
    pub kind: Kind,
}

#[derive(Default)]
pub(crate) struct Stamps {
    all: Vec<Stamp>,
    by_stamp: HashMap<Stamp, u32>,
    pub who: Interner,
}

impl Stamps {
    pub fn intern(&mut self, version: u32, executor: &Executor, source: Source, kind: Kind) -> u32 {
        let who = self.who.intern(executor, source);
        let stamp = Stamp { version, who, kind };
        if let Some(id) = self.by_stamp.get(&stamp) {
            return *id;
        }
        let id = self.all.len() as u32;
        self.all.push(stamp);
        self.by_stamp.insert(stamp, id);
        id
    }

    pub fn get(&self, id: u32) -> Stamp {
        self.all[id as usize]
    }

    pub fn estimated_bytes(&self) -> usize {
        self.all.len() * (2 * std::mem::size_of::<Stamp>() + 8) + self.who.estimated_bytes()
    }
}

/// String values, each kept once with the count of cells that hold it.
#[derive(Default)]
pub(crate) struct Strings {
    texts: Vec<(Box<str>, u32)>,
    by_text: HashMap<Box<str>, u32>,
    free: Vec<u32>,
    heap: usize,
}

impl Strings {
    fn acquire(&mut self, text: &str) -> u32 {
        if let Some(id) = self.by_text.get(text) {
            self.texts[*id as usize].1 += 1;
            return *id;
        }
        let entry = (Box::<str>::from(text), 1);
        let id = match self.free.pop() {
            Some(id) => {
                self.texts[id as usize] = entry;
                id
            }
            None => {
                self.texts.push(entry);
                (self.texts.len() - 1) as u32
            }
        };
        self.heap += 2 * text.len();
        self.by_text.insert(text.into(), id);
        id
    }

    fn release(&mut self, id: u32) {
        let Some((text, refs)) = self.texts.get_mut(id as usize) else {
            return;
        };
        *refs = refs.saturating_sub(1);
        if *refs == 0 {
            self.heap -= 2 * text.len();
            self.by_text.remove(&**text);
            *text = Box::from("");
            self.free.push(id);
        }
    }

    /// `test` of every string kept, by id (freed slots answer as the empty string would).
    pub fn verdicts(&self, test: impl Fn(&str) -> bool) -> Vec<bool> {
        self.texts.iter().map(|(text, _)| test(text)).collect()
    }

    fn text(&self, id: u32) -> &str {
        self.texts.get(id as usize).map_or("", |(t, _)| t)
    }

    pub fn estimated_bytes(&self) -> usize {
        self.texts.capacity() * 24 + self.by_text.capacity() * 24 + self.heap
    }
}

/// The 64 bits a cell keeps of `value`, and its kind.
pub(crate) fn encode(value: &TagValue, strings: &mut Strings) -> (u64, Kind) {
    match value {
        TagValue::Define(on) => (u64::from(*on), Kind::Define),
        TagValue::Number(n) => (n.to_bits(), Kind::Number),
        TagValue::String(s) => (u64::from(strings.acquire(s)), Kind::String),
    }
}

pub(crate) fn decode(bits: u64, kind: Kind, strings: &Strings) -> TagValue {
    match kind {
        Kind::Define => TagValue::Define(bits != 0),
        Kind::Number => TagValue::Number(f64::from_bits(bits)),
        Kind::String => TagValue::String(strings.text(bits as u32).to_owned()),
    }
}

/// A cell's value, borrowed (segments test values without building them).
pub(crate) fn value_ref<'a>(bits: u64, kind: Kind, strings: &'a Strings) -> ValueRef<'a> {
    match kind {
        Kind::Define => ValueRef::Define(bits != 0),
        Kind::Number => ValueRef::Number(f64::from_bits(bits)),
        Kind::String => ValueRef::Text(strings.text(bits as u32)),
    }
}

/// Lets go of what a cell's value held.
pub(crate) fn release(bits: u64, kind: Kind, strings: &mut Strings) {
    if kind == Kind::String {
        strings.release(bits as u32);
    }
}
