//! tokio's task hooks and task dump.
//!
//! With `RUSTFLAGS="--cfg tokio_unstable"`, a runtime built through
//! [`crate::runtime::instrument`] calls the hooks installed here for every
//! task spawned on it, by any code: the task is filed in the registry under
//! the scope that spawned it, with its spawn site, and carries that scope
//! while it is polled, as a wrapped task does. The registry's view
//! ([`super::tracked`]) then sees it like any tracked task.
//!
//! With tokio's `taskdump` feature on Linux and leakcheck's `taskdump`
//! feature, [`TaskDump`] adds to an async check's report where each leaked
//! task is suspended now, from `Handle::dump`.

use super::{Alive, Look, Opening, Probe};
#[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
use crate::report::LeakReport;

#[cfg(tokio_unstable)]
pub(crate) use hooks::{install, wrapper_spawning};

/// Without task hooks there is nothing to skip.
#[cfg(not(tokio_unstable))]
#[inline(always)]
pub(crate) fn wrapper_spawning<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(tokio_unstable)]
mod hooks {
    use crate::registry::{self, scope, Kind, Record, Registration, ScopeContext, Spawn};
    use parking_lot::Mutex;
    use std::cell::Cell;
    use std::collections::HashMap;
    use std::sync::Arc;
    use tokio::runtime::{Builder, TaskMeta};

    thread_local! {
        /// Set while a leakcheck wrapper spawns, so the hook does not track
        /// the same task twice.
        static WRAPPER_SPAWNING: Cell<bool> = const { Cell::new(false) };
    }

    static HOOKED: Mutex<Option<HashMap<tokio::task::Id, Registration>>> = Mutex::new(None);

    pub(crate) fn install(builder: &mut Builder) {
        builder
            .on_task_spawn(spawned)
            .on_task_terminate(terminated)
            .on_before_task_poll(before_poll)
            .on_after_task_poll(after_poll);
    }

    /// What a poll of a hooked task changed, put back when the poll ends.
    struct Polling {
        /// The scope context the poll replaced.
        saved: ScopeContext,
        /// The task's record, whose poll counts the hooks keep.
        record: Arc<Record>,
    }

    thread_local! {
        /// The polls of hooked tasks under way on this thread, innermost
        /// last; `None` for a task that is not registered.
        static POLLING: std::cell::RefCell<Vec<Option<Polling>>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }

    /// A hooked task carries its scope while it runs, as a wrapped task
    /// does, so the tasks it spawns are charged to the same test; and its
    /// polls are counted, so that a busy or never-polled task says so.
    fn before_poll(meta: &TaskMeta<'_>) {
        let record = HOOKED
            .lock()
            .as_ref()
            .and_then(|map| map.get(&meta.id()))
            .map(|registration| registration.record().clone());
        let polling = record.map(|record| {
            record.activity.poll_started();
            Polling {
                saved: scope::replace_context(ScopeContext::inherit(record.scope.clone())),
                record,
            }
        });
        let _ = POLLING.try_with(|stack| {
            if let Ok(mut stack) = stack.try_borrow_mut() {
                stack.push(polling);
            }
        });
    }

    fn after_poll(_: &TaskMeta<'_>) {
        let polling = POLLING
            .try_with(|stack| {
                stack
                    .try_borrow_mut()
                    .ok()
                    .and_then(|mut stack| stack.pop())
            })
            .ok()
            .flatten()
            .flatten();
        if let Some(Polling { saved, record }) = polling {
            record.activity.poll_ended();
            scope::replace_context(saved);
        }
    }

    /// Runs `f`, which spawns through a wrapper, with the hook told to skip.
    pub(crate) fn wrapper_spawning<R>(f: impl FnOnce() -> R) -> R {
        let was = WRAPPER_SPAWNING
            .try_with(|flag| flag.replace(true))
            .unwrap_or(false);
        let result = f();
        let _ = WRAPPER_SPAWNING.try_with(|flag| flag.set(was));
        result
    }

    fn spawned(meta: &TaskMeta<'_>) {
        if !registry::is_tracking() || WRAPPER_SPAWNING.try_with(Cell::get).unwrap_or(true) {
            return;
        }
        let registration = registry::register_hooked(Spawn {
            kind: Kind::Task,
            name: None,
            location: Some(meta.spawned_at()),
            handle: None,
        });
        let _ = registration.record().task_id.set(meta.id());
        HOOKED
            .lock()
            .get_or_insert_with(HashMap::new)
            .insert(meta.id(), registration);
    }

    fn terminated(meta: &TaskMeta<'_>) {
        // Taken out of the map before it is dropped, so the registry's locks
        // are never taken under this one.
        let registration = HOOKED
            .lock()
            .as_mut()
            .and_then(|map| map.remove(&meta.id()));
        drop(registration);
    }
}

/// How long a task dump may take before the report goes out without it: a
/// dump waits for every worker, and one may be blocked.
#[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
const DUMP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Adds each leaked task's suspension point to an async check's report.
pub(crate) struct TaskDump {
    #[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
    handle: tokio::runtime::Handle,
}

impl Probe for TaskDump {
    fn open(_: &Opening<'_>) -> Option<Self> {
        #[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
        {
            // On a runtime with several workers, tokio's dump meets every
            // worker at a barrier that each waits at for 250 ms at most. A
            // worker that arrives after another gave up (on a loaded
            // machine, or while a synchronous check blocks it) traces alone,
            // then waits forever for it at the next barrier, and the runtime
            // can never shut down. A report without suspension points is
            // better than a hang.
            tokio::runtime::Handle::try_current()
                .ok()
                .filter(|handle| handle.metrics().num_workers() == 1)
                .map(|handle| Self { handle })
        }
        #[cfg(not(all(tokio_unstable, feature = "taskdump", target_os = "linux")))]
        {
            None
        }
    }

    fn look(&mut self, _: &Look<'_>, _: &mut Alive) {}

    #[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
    async fn annotate(&self, report: &mut LeakReport) {
        let points = match tokio::time::timeout(DUMP_TIMEOUT, self.handle.dump()).await {
            Ok(dump) => dump
                .tasks()
                .iter()
                .map(|task| (task.id(), task.trace().to_string()))
                .collect(),
            Err(_) => std::collections::HashMap::new(),
        };
        report.attach_suspension_points(&points);
    }
}
