//! The registry's view: every record filed under a guard's scope or a scope
//! nested in it, whichever wrapper or hook filed it.
//!
//! It also vouches for a "stuck" verdict. An aborted task looks stuck until
//! a worker of its runtime gets round to dropping it, so before the verdict
//! is believed each multi-thread runtime involved is sent a beacon, a task
//! that does nothing, queued behind whatever the runtime has to do already.
//! Once the beacon has run, the runtime has made progress since the task
//! was seen stuck.

use super::{task_hooks, Alive, Look, Opening, Probe};
use crate::registry::runtimes::RuntimeTasks;
use crate::report::Straggler;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub(crate) struct Tracked {
    /// The runtime this check blocks, if any: a beacon could never run there.
    blocked_runtime: Option<Option<tokio::runtime::Id>>,
    /// Beacons sent to the runtimes of stuck-looking tasks, by runtime.
    beacons: HashMap<tokio::runtime::Id, Beacon>,
}

impl Probe for Tracked {
    fn open(_: &Opening<'_>) -> Option<Self> {
        Some(Self {
            blocked_runtime: None,
            beacons: HashMap::new(),
        })
    }

    fn look(&mut self, look: &Look<'_>, alive: &mut Alive) {
        // The cheap test first: a clean scope is one lock per shard.
        if !look.scope.subtree_is_empty() {
            look.scope.collect_subtree(&mut alive.records);
        }
    }

    /// Whether every runtime that runs one of `stragglers` has made progress
    /// since they were last seen stuck, so an abort or shutdown that was
    /// about to drop one of them has had its chance. Sends beacons as needed.
    fn confirms_stuck(&mut self, look: &Look<'_>, stragglers: &[Straggler]) -> bool {
        let blocked_runtime = *self.blocked_runtime.get_or_insert_with(|| {
            look.runtime_blocked
                .then(|| tokio::runtime::Handle::try_current().ok().map(|h| h.id()))
                .flatten()
        });
        let mut caught_up = true;
        for straggler in stragglers {
            let Some(runtime) = &straggler.record().runtime else {
                continue;
            };
            if !runtime.has_workers() || Some(runtime.id()) == blocked_runtime {
                // A current-thread runtime drops an aborted task only when
                // some thread drives it again: a driven one does that during
                // the pauses between looks, and for one that nobody drives
                // (or that this check blocks) waiting changes nothing.
                continue;
            }
            let beacon = self
                .beacons
                .entry(runtime.id())
                .or_insert_with(|| Beacon::send(runtime));
            if !beacon.has_run() {
                caught_up = false;
            }
        }
        caught_up
    }

    fn doubts_stuck(&mut self) {
        // A later stuck verdict needs fresh evidence.
        self.beacons.clear();
    }
}

const PENDING: usize = 0;
const RAN: usize = 1;
/// Dropped unrun: the runtime is shutting down and dropping its tasks.
const DROPPED: usize = 2;

/// A beacon task in flight.
struct Beacon {
    outcome: Arc<AtomicUsize>,
}

impl Beacon {
    fn send(runtime: &Arc<RuntimeTasks>) -> Self {
        struct Finish(Arc<RuntimeTasks>, Arc<AtomicUsize>);
        impl Drop for Finish {
            fn drop(&mut self) {
                self.0.task_ended();
                let _ =
                    self.1
                        .compare_exchange(PENDING, DROPPED, Ordering::AcqRel, Ordering::Acquire);
            }
        }
        let outcome = Arc::new(AtomicUsize::new(PENDING));
        // Counted as tracked, so the untracked-task count does not see it.
        runtime.task_started();
        let finish = Finish(runtime.clone(), outcome.clone());
        let future = async move {
            finish.1.store(RAN, Ordering::Release);
            drop(finish);
        };
        task_hooks::wrapper_spawning(|| drop(runtime.handle().spawn(future)));
        Self { outcome }
    }

    fn has_run(&self) -> bool {
        self.outcome.load(Ordering::Acquire) == RAN
    }
}
