//! The registry gives back what it takes: spawning and finishing a million
//! tracked tasks inside one guard leaves the live record count, the
//! registry's slab tables and the process's live heap where they started.
//!
//! The tasks are spawned in batches of 10 000 by four tracked spawner tasks on
//! a two-worker runtime, so several slab shards fill and empty. Every batch is joined
//! before the next. One task in eight yields once, so its waker is cloned
//! and woken; all of them would double the test's time in a debug build.
//!
//! This file is its own test binary with a single test, because
//! `live_count()` and the counting allocator are process-wide: nothing else
//! may spawn meanwhile.
//!
//! `MEMORY_TEST_TASKS` sets the number of tasks (a multiple of 10 000); the
//! default is 1 000 000, which takes a few seconds in a debug build.

#[path = "../benches/common/alloc.rs"]
mod alloc;

use leakcheck::__private::{live_count, registry_table_bytes};
use leakcheck::Options;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

const BATCH: usize = 10_000;
const SPAWNERS: usize = 4;
/// How much the live heap may grow over the whole run: tokio's and std's
/// caches may still settle a little after the warm-up batch. A leak of one
/// small allocation per task would be 8 MB or more.
const HEAP_SLACK: isize = 256 * 1024;

fn tasks() -> usize {
    let n = std::env::var("MEMORY_TEST_TASKS")
        .ok()
        .map(|v| v.parse::<usize>().expect("MEMORY_TEST_TASKS is a number"))
        .unwrap_or(1_000_000);
    assert!(
        n.is_multiple_of(BATCH) && n > 0,
        "MEMORY_TEST_TASKS must be a positive multiple of {BATCH}"
    );
    n
}

/// Spawns and joins one batch. Returns the largest `(live_count,
/// registry_table_bytes)` a spawner saw with all its tasks spawned.
async fn batch() -> (usize, usize) {
    let spawners: Vec<_> = (0..SPAWNERS)
        .map(|_| {
            leakcheck::spawn(async {
                let handles: Vec<_> = (0..BATCH / SPAWNERS)
                    .map(|i| {
                        leakcheck::spawn(async move {
                            // One task in eight goes through a wake as well.
                            if i % 8 == 0 {
                                tokio::task::yield_now().await;
                            }
                            i
                        })
                    })
                    .collect();
                let peak = (live_count(), registry_table_bytes());
                for (i, handle) in handles.into_iter().enumerate() {
                    assert_eq!(handle.await.unwrap(), i);
                }
                peak
            })
        })
        .collect();
    let mut peak = (0, 0);
    for spawner in spawners {
        let (live, table) = spawner.await.unwrap();
        peak = (peak.0.max(live), peak.1.max(table));
    }
    peak
}

#[test]
fn a_million_tracked_tasks_leave_the_registry_as_it_was() {
    let total = tasks();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let guard = Options::new().settle(Duration::from_secs(10)).verify_none();

    // Warm-up: the runtime's queues, leakcheck's statics and the scope's
    // per-site backtraces reach their size.
    runtime.block_on(batch());
    let live_at_start = live_count();
    let table_at_start = registry_table_bytes();
    alloc::enable();
    let heap_at_start = alloc::sample();

    let started = Instant::now();
    let mut peak = (0, 0);
    for _ in 0..total / BATCH {
        let (live, table) = runtime.block_on(batch());
        peak = (peak.0.max(live), peak.1.max(table));
    }
    let elapsed = started.elapsed();

    let heap_growth = alloc::sample().since(&heap_at_start);
    let live_at_end = live_count();
    let table_at_end = registry_table_bytes();
    println!(
        "{total} tracked tasks in {elapsed:?}: live records {live_at_start} → peak {} → {live_at_end}; \
         registry tables {table_at_start} B → peak {} B → {table_at_end} B; live heap {:+} B in {:+} blocks",
        peak.0, peak.1, heap_growth.bytes, heap_growth.blocks
    );

    // The batches did fill the registry: what follows measures something.
    assert!(
        peak.0 > live_at_start + BATCH / SPAWNERS,
        "peak live records {}",
        peak.0
    );
    assert!(peak.1 > table_at_start, "peak table bytes {}", peak.1);

    assert_eq!(
        live_at_end, live_at_start,
        "live records after {total} finished tasks"
    );
    assert_eq!(
        table_at_end, table_at_start,
        "registry table bytes after {total} finished tasks"
    );
    assert!(
        heap_growth.bytes <= HEAP_SLACK,
        "the live heap grew by {} B in {} blocks over {total} finished tracked tasks; by size: {:?}",
        heap_growth.bytes,
        heap_growth.blocks,
        heap_growth.classes().into_iter().take(8).collect::<Vec<_>>()
    );

    drop(runtime);
    guard.check().expect("every task was joined");
}
