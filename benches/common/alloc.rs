//! A counting global allocator, for the memory figures (B8 in
//! `benches/check.rs`, and `tests/memory.rs`).
//!
//! It forwards to the system allocator and, only while [`enable`] is in force,
//! keeps a running sum of live bytes and live blocks, in total and per size
//! class. When counting is off it costs one relaxed load per call, so the
//! timing figures of a binary that installs it are not disturbed.
//!
//! The sums are deltas: a block allocated before counting started and freed
//! while it is on counts negatively, which is right for "how much did live
//! memory change between these two points".

#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};

/// Size classes of 8 bytes up to 4 KiB; the last class holds everything
/// larger.
pub const CLASSES: usize = 513;
const CLASS_BYTES: usize = 8;

static ON: AtomicBool = AtomicBool::new(false);
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static LIVE_BLOCKS: AtomicIsize = AtomicIsize::new(0);
static BY_CLASS: [AtomicIsize; CLASSES] = [const { AtomicIsize::new(0) }; CLASSES];

/// Install with `#[global_allocator] static A: Counting = Counting;`.
pub struct Counting;

fn class(size: usize) -> usize {
    (size.div_ceil(CLASS_BYTES)).min(CLASSES - 1)
}

#[inline]
fn note(size: usize, sign: isize) {
    if ON.load(Relaxed) {
        LIVE_BYTES.fetch_add(sign * size as isize, Relaxed);
        LIVE_BLOCKS.fetch_add(sign, Relaxed);
        BY_CLASS[class(size)].fetch_add(sign, Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the bookkeeping
// touches only atomics and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            note(layout.size(), 1);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            note(layout.size(), 1);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        note(layout.size(), -1);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            note(layout.size(), -1);
            note(new_size, 1);
        }
        new
    }
}

/// Starts counting (for the rest of the process).
pub fn enable() {
    ON.store(true, Relaxed);
}

/// Live bytes, live blocks and live blocks per size class, as counted so far.
#[derive(Clone)]
pub struct Sample {
    pub bytes: isize,
    pub blocks: isize,
    pub by_class: Vec<isize>,
}

pub fn sample() -> Sample {
    Sample {
        bytes: LIVE_BYTES.load(Relaxed),
        blocks: LIVE_BLOCKS.load(Relaxed),
        by_class: BY_CLASS.iter().map(|c| c.load(Relaxed)).collect(),
    }
}

impl Sample {
    /// What changed from `earlier` to `self`.
    pub fn since(&self, earlier: &Sample) -> Sample {
        Sample {
            bytes: self.bytes - earlier.bytes,
            blocks: self.blocks - earlier.blocks,
            by_class: self
                .by_class
                .iter()
                .zip(&earlier.by_class)
                .map(|(now, then)| now - then)
                .collect(),
        }
    }

    /// The size classes whose live block count changed, as
    /// `(upper bound of the class in bytes, change in blocks)`, largest
    /// change first.
    pub fn classes(&self) -> Vec<(usize, isize)> {
        let mut out: Vec<(usize, isize)> = self
            .by_class
            .iter()
            .enumerate()
            .filter(|(_, n)| **n != 0)
            .map(|(class, n)| (class * CLASS_BYTES, *n))
            .collect();
        out.sort_by_key(|(_, n)| std::cmp::Reverse(n.abs()));
        out
    }
}
