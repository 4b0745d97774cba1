//! Who wrote an assignment and through which door, kept once per organization: an
//! organization has few apps and credentials, and millions of assignments name them.

use std::collections::HashMap;
use tagd_core::{Executor, ExecutorKind, Source};

type Key = (ExecutorKind, i64, String, Source);

#[derive(Default)]
pub struct Interner {
    all: Vec<(Executor, Source)>,
    by_key: HashMap<Key, u32>,
}

impl Interner {
    pub fn intern(&mut self, executor: &Executor, source: Source) -> u32 {
        let key = (executor.kind, executor.id, executor.name.clone(), source);
        if let Some(id) = self.by_key.get(&key) {
            return *id;
        }
        let id = self.all.len() as u32;
        self.all.push((executor.clone(), source));
        self.by_key.insert(key, id);
        id
    }

    pub fn get(&self, id: u32) -> Option<(&Executor, Source)> {
        self.all.get(id as usize).map(|(e, s)| (e, *s))
    }

    pub fn estimated_bytes(&self) -> usize {
        self.all.iter().map(|(e, _)| 2 * (e.name.len() + 64)).sum()
    }
}
