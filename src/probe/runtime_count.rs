//! tokio's count of tasks alive on the guard's runtime
//! (`RuntimeMetrics::num_alive_tasks`, stable), less those leakcheck tracks.
//!
//! When a guard opens inside a runtime it notes how many untracked tasks are
//! alive there; at each look any excess is work spawned without a wrapper
//! and outside an instrumented runtime's hooks. Only the number is known.
//! The count leaves out `spawn_blocking` and `LocalSet` tasks, as tokio's
//! does, and is only weakly consistent on a multi-thread runtime, which the
//! settle loop allows for.

use super::{Alive, Look, Opening, Probe};
use crate::notice::Notice;
use crate::registry::runtimes::{self, RuntimeTasks};
use crate::registry::Scope;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use tokio::runtime::Handle;

/// Which guards are open on which runtime, so that a count shared by
/// unrelated tests is never blamed on one of them.
static GUARDS_PER_RUNTIME: Mutex<Option<HashMap<tokio::runtime::Id, Vec<Weak<Scope>>>>> =
    Mutex::new(None);

/// The runtime a guard opened in, and what was alive on it then.
pub(crate) struct RuntimeCount {
    /// The runtime's tracked-task count, and its handle and id.
    tasks: Arc<RuntimeTasks>,
    untracked_at_open: usize,
    /// Set when another guard, not nested in this one, shared the runtime
    /// while this one was open: then the count cannot be attributed.
    shared: bool,
}

impl Probe for RuntimeCount {
    fn open(opening: &Opening<'_>) -> Option<Self> {
        let scope = opening.scope;
        let handle = Handle::try_current().ok()?;
        let id = handle.id();
        let mut guards = GUARDS_PER_RUNTIME.lock();
        let open = guards
            .get_or_insert_with(HashMap::new)
            .entry(id)
            .or_default();
        open.retain(|scope| scope.upgrade().is_some_and(|scope| !scope.is_closed()));
        // A guard nested in one already open here is covered by that one's
        // subtree; the outer guard keeps the count.
        let shared = open
            .iter()
            .filter_map(Weak::upgrade)
            .any(|other| !scope.is_within(&other));
        open.push(Arc::downgrade(scope));
        drop(guards);
        let tasks = runtimes::runtime_tasks_of(&handle);
        let alive = handle.metrics().num_alive_tasks();
        Some(Self {
            untracked_at_open: alive.saturating_sub(tasks.tracked()),
            tasks,
            shared,
        })
    }

    fn look(&mut self, look: &Look<'_>, alive: &mut Alive) {
        // A blocked current-thread runtime cannot run the woken tasks inside
        // its count, so the count cannot be judged there.
        if look.runtime_blocked {
            Notice::WokenTasksNotJudged.print_once();
            return;
        }
        match self.excess(look.scope) {
            Some(excess) => alive.untracked_tasks += excess,
            None => Notice::SharedRuntime.print_once(),
        }
    }
}

impl RuntimeCount {
    /// Untracked tasks beyond the baseline; `None` when the count cannot be
    /// attributed to this guard.
    fn excess(&mut self, scope: &Arc<Scope>) -> Option<usize> {
        if !self.shared {
            let guards = GUARDS_PER_RUNTIME.lock();
            if let Some(open) = guards.as_ref().and_then(|g| g.get(&self.tasks.id())) {
                self.shared = open.iter().filter_map(Weak::upgrade).any(|other| {
                    !other.is_closed() && !other.is_within(scope) && !scope.is_within(&other)
                });
            }
        }
        if self.shared {
            return None;
        }
        let alive = self.tasks.handle().metrics().num_alive_tasks();
        let untracked = alive.saturating_sub(self.tasks.tracked());
        Some(untracked.saturating_sub(self.untracked_at_open))
    }
}
