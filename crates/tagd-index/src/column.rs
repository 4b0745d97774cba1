//! One tag group's holders and their values, in columns: a croaring bitmap of the ordinals
//! that hold a live value (what segments combine), and the cells of those holders, kept in
//! chunks of 4,096 ordinals sorted by ordinal. A new holder moves at most one chunk's cells,
//! so writes stay cheap however large the group grows, and no per-user list exists at all:
//! a user's tags are found by asking each group's bitmap.

use croaring::Bitmap;
use std::sync::Arc;
use tagd_core::TagGroup;

/// Ordinals per chunk, as a power of two.
const CHUNK_BITS: u32 = 12;
const CHUNK_MASK: u32 = (1 << CHUNK_BITS) - 1;

/// One live assignment, in 24 bytes: its value (see `values::encode`), its id (relative to
/// the organization's base), its times, and its stamp (version, writer, value kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cell {
    pub value: u64,
    pub id: u32,
    pub ctime: u32,
    pub mtime: u32,
    pub stamp: u32,
}

#[derive(Default)]
struct Chunk {
    low: Vec<u16>,
    cells: Vec<Cell>,
}

impl Chunk {
    /// Where `low` is (`Ok`) or would go (`Err`), as `binary_search` answers. Holders spread
    /// evenly over a chunk in practice, so the search starts where `low` would sit if they
    /// were even and gallops outwards: a few probes in one or two cache lines, where a plain
    /// binary search of a full chunk touches a dozen lines (the cost of a user's tag list is
    /// one such search per group the organization uses).
    fn find(&self, low: u16) -> Result<usize, usize> {
        let lows = &self.low;
        let guess = (usize::from(low) * lows.len()) >> CHUNK_BITS;
        let Some(&at_guess) = lows.get(guess) else {
            return lows.binary_search(&low);
        };
        if at_guess == low {
            return Ok(guess);
        }
        let (mut start, mut end) = if at_guess < low {
            (guess + 1, lows.len())
        } else {
            (0, guess)
        };
        let mut step = 1;
        if at_guess < low {
            while start + step < end && lows[start + step - 1] < low {
                start += step;
                step *= 2;
            }
            end = end.min(start + step);
        } else {
            while end > start + step && lows[end - step] > low {
                end -= step;
                step *= 2;
            }
            start = start.max(end.saturating_sub(step));
        }
        lows[start..end]
            .binary_search(&low)
            .map(|at| at + start)
            .map_err(|at| at + start)
    }
}

pub(crate) struct GroupColumn {
    pub group: Arc<TagGroup>,
    /// The log version of the entry that set `group` (0: from the snapshot).
    pub set_at: i64,
    pub members: Bitmap,
    /// The holders whose value is `define` true: a define tag's usual question ("has VIP")
    /// is then a bitmap, not a scan of the cells.
    pub trues: Bitmap,
    chunks: Vec<Chunk>,
}

fn split(ordinal: u32) -> (usize, u16) {
    (
        (ordinal >> CHUNK_BITS) as usize,
        (ordinal & CHUNK_MASK) as u16,
    )
}

impl GroupColumn {
    pub fn new(group: TagGroup, set_at: i64) -> Self {
        GroupColumn {
            group: Arc::new(group),
            set_at,
            members: Bitmap::new(),
            trues: Bitmap::new(),
            chunks: Vec::new(),
        }
    }

    pub fn get(&self, ordinal: u32) -> Option<Cell> {
        let (chunk, low) = split(ordinal);
        let chunk = self.chunks.get(chunk)?;
        let at = chunk.find(low).ok()?;
        Some(chunk.cells[at])
    }

    /// Calls `visit` with every holder's ordinal and cell, in ordinal order: the tight loop
    /// segment scans run.
    pub fn for_each_cell(&self, mut visit: impl FnMut(u32, Cell)) {
        for (index, chunk) in self.chunks.iter().enumerate() {
            let base = (index as u32) << CHUNK_BITS;
            for (&low, &cell) in chunk.low.iter().zip(&chunk.cells) {
                visit(base | u32::from(low), cell);
            }
        }
    }

    /// Calls `visit` with the ordinal and cell of every holder whose bit is set in
    /// `candidates` (bit `o` of word `o / 64`), in ordinal order. Only the 2-byte positions
    /// are read for the others: a cell is 24 bytes, and at a candidate in ten most of the
    /// column's cache lines are never touched.
    pub fn for_each_candidate_cell(&self, candidates: &[u64], mut visit: impl FnMut(u32, Cell)) {
        for (index, chunk) in self.chunks.iter().enumerate() {
            let base = (index as u32) << CHUNK_BITS;
            let first_word = base as usize / 64;
            let Some(words) = candidates.get(first_word..) else {
                return;
            };
            let words = &words[..words.len().min(1 << (CHUNK_BITS - 6))];
            if words.iter().all(|w| *w == 0) {
                continue;
            }
            for (at, &low) in chunk.low.iter().enumerate() {
                let (word, bit) = (usize::from(low) / 64, 1u64 << (low % 64));
                if words.get(word).is_some_and(|w| w & bit != 0) {
                    visit(base | u32::from(low), chunk.cells[at]);
                }
            }
        }
    }

    /// Sets the cell of `ordinal` (`is_true`: its value is `define` true); answers the one
    /// it replaced.
    pub fn put(&mut self, ordinal: u32, cell: Cell, is_true: bool) -> Option<Cell> {
        if is_true {
            self.trues.add(ordinal);
        } else {
            self.trues.remove(ordinal);
        }
        let (index, low) = split(ordinal);
        if self.chunks.len() <= index {
            self.chunks.resize_with(index + 1, Chunk::default);
        }
        let chunk = &mut self.chunks[index];
        self.members.add(ordinal);
        match chunk.find(low) {
            Ok(at) => Some(std::mem::replace(&mut chunk.cells[at], cell)),
            Err(at) => {
                chunk.low.insert(at, low);
                chunk.cells.insert(at, cell);
                None
            }
        }
    }

    /// Removes the cell of `ordinal`, if it holds one.
    pub fn take(&mut self, ordinal: u32) -> Option<Cell> {
        let (index, low) = split(ordinal);
        let chunk = self.chunks.get_mut(index)?;
        let at = chunk.find(low).ok()?;
        chunk.low.remove(at);
        self.members.remove(ordinal);
        self.trues.remove(ordinal);
        Some(chunk.cells.remove(at))
    }

    /// Gives back the room a load left over in the chunks.
    pub fn shrink(&mut self) {
        for chunk in &mut self.chunks {
            chunk.low.shrink_to_fit();
            chunk.cells.shrink_to_fit();
        }
        for bitmap in [&mut self.members, &mut self.trues] {
            bitmap.run_optimize();
            bitmap.shrink_to_fit();
        }
    }

    /// Bytes the column takes, roughly.
    pub fn estimated_bytes(&self) -> usize {
        use std::mem::size_of;
        let chunks: usize = self
            .chunks
            .iter()
            .map(|c| {
                size_of::<Chunk>()
                    + c.low.capacity() * size_of::<u16>()
                    + c.cells.capacity() * size_of::<Cell>()
            })
            .sum();
        chunks
            + size_of::<Self>()
            + size_of::<TagGroup>()
            + self
                .members
                .get_serialized_size_in_bytes::<croaring::Portable>()
            + self
                .trues
                .get_serialized_size_in_bytes::<croaring::Portable>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_chunk_finds_every_low_where_a_binary_search_would(
            lows in proptest::collection::btree_set(0u16..4096, 0..4096),
            probes in proptest::collection::vec(0u16..4096, 1..64),
        ) {
            let low: Vec<u16> = lows.into_iter().collect();
            let chunk = Chunk { cells: vec![Cell { value: 0, id: 0, ctime: 0, mtime: 0, stamp: 0 }; low.len()], low };
            for probe in probes.into_iter().chain(chunk.low.iter().copied()) {
                prop_assert_eq!(chunk.find(probe), chunk.low.binary_search(&probe));
            }
        }
    }
}
