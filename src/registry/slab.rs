//! A small sharded slab: the storage behind each scope's set of live work.
//!
//! Spawns from several threads into one scope must not queue on one lock, so
//! the set is split into shards, and each thread sticks to the shard picked
//! from its own index. Insertion and removal are O(1) and allocate only when a
//! shard grows past its high-water mark.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

const SHARDS: usize = 8;
/// Slots a shard keeps when it empties.
const KEEP_WHEN_EMPTY: usize = 64;

/// Where an entry lives, so its owner can remove it in O(1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    shard: u32,
    key: u32,
}

impl Slot {
    /// The slot in one word, for an atomic.
    pub(crate) fn to_bits(self) -> u64 {
        (u64::from(self.shard) << 32) | u64::from(self.key)
    }

    pub(crate) fn from_bits(bits: u64) -> Self {
        Self {
            shard: (bits >> 32) as u32,
            key: bits as u32,
        }
    }
}

enum Entry<T> {
    Occupied(T),
    Vacant(u32),
}

struct Shard<T> {
    entries: Vec<Entry<T>>,
    next_free: u32,
    len: usize,
}

impl<T> Shard<T> {
    const fn new() -> Self {
        Self {
            entries: Vec::new(),
            next_free: u32::MAX,
            len: 0,
        }
    }

    fn insert(&mut self, value: T) -> u32 {
        self.len += 1;
        if self.next_free != u32::MAX {
            let key = self.next_free;
            let slot = &mut self.entries[key as usize];
            if let Entry::Vacant(next) = *slot {
                self.next_free = next;
            }
            *slot = Entry::Occupied(value);
            key
        } else {
            // The registry never holds anywhere near 4 billion entries in one
            // shard; saturate instead of wrapping if it somehow does.
            let key = u32::try_from(self.entries.len()).unwrap_or(u32::MAX - 1);
            self.entries.push(Entry::Occupied(value));
            key
        }
    }

    fn remove(&mut self, key: u32) -> Option<T> {
        let slot = self.entries.get_mut(key as usize)?;
        if matches!(slot, Entry::Vacant(_)) {
            return None;
        }
        let taken = std::mem::replace(slot, Entry::Vacant(self.next_free));
        self.next_free = key;
        self.len -= 1;
        if self.len == 0 && self.entries.len() > KEEP_WHEN_EMPTY {
            // Give memory back once a burst is over, so a long test run that
            // spawned a million tasks ends with the registry at a small,
            // fixed size; keep a few slots, or a shard that goes from one
            // task to none on every spawn would reallocate every time.
            self.entries = Vec::with_capacity(KEEP_WHEN_EMPTY);
            self.next_free = u32::MAX;
        }
        match taken {
            Entry::Occupied(value) => Some(value),
            Entry::Vacant(_) => None,
        }
    }
}

/// A set of values split into [`SHARDS`] independently locked shards.
pub(crate) struct ShardedSlab<T> {
    shards: [Padded<Mutex<Shard<T>>>; SHARDS],
}

/// One shard to a cache line, so threads on different shards do not contend
/// for the same line.
#[repr(align(64))]
struct Padded<T>(T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Clone> ShardedSlab<T> {
    pub(crate) const fn new() -> Self {
        Self {
            shards: [const { Padded(Mutex::new(Shard::new())) }; SHARDS],
        }
    }

    pub(crate) fn insert(&self, value: T) -> Slot {
        let shard = shard_index();
        let key = self.shards[shard].lock().insert(value);
        Slot {
            shard: shard as u32,
            key,
        }
    }

    pub(crate) fn remove(&self, slot: Slot) -> Option<T> {
        self.shards
            .get(slot.shard as usize)
            .and_then(|shard| shard.lock().remove(slot.key))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.shards.iter().all(|shard| shard.lock().len == 0)
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().len).sum()
    }

    /// Bytes held by the slab's entry vectors: the registry's footprint.
    pub(crate) fn capacity_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().entries.capacity() * std::mem::size_of::<Entry<T>>())
            .sum()
    }

    /// Clones every live value into `out`. Each shard is locked only while it
    /// is copied, so spawns on other shards carry on.
    pub(crate) fn collect_into(&self, out: &mut Vec<T>) {
        for shard in &self.shards {
            let shard = shard.lock();
            out.extend(shard.entries.iter().filter_map(|entry| match entry {
                Entry::Occupied(value) => Some(value.clone()),
                Entry::Vacant(_) => None,
            }));
        }
    }
}

fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.try_with(|index| *index).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_reuses_slots_and_releases_memory() {
        let slab = ShardedSlab::new();
        let a = slab.insert(1);
        let b = slab.insert(2);
        assert_eq!(slab.len(), 2);
        assert_eq!(slab.remove(a), Some(1));
        assert_eq!(slab.remove(a), None, "a slot is removed once");
        let c = slab.insert(3);
        let mut all = Vec::new();
        slab.collect_into(&mut all);
        all.sort_unstable();
        assert_eq!(all, vec![2, 3]);
        assert_eq!(Slot::from_bits(b.to_bits()), b);
        assert_eq!(slab.remove(b), Some(2));
        assert_eq!(slab.remove(c), Some(3));
        assert!(slab.is_empty());
    }
}
