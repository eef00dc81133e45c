//! Seeing tasks that were spawned without leakcheck's wrappers.
//!
//! Two mechanisms, from weakest to strongest:
//!
//! - **Counting** (always on, stable tokio): when a guard opens inside a
//!   runtime it records how many tasks the runtime has alive
//!   (`RuntimeMetrics::num_alive_tasks`), minus those leakcheck tracks. At
//!   the check, any excess is reported as `N untracked tasks still alive on
//!   this runtime`. Only the number is known. The count leaves out
//!   `spawn_blocking` and `LocalSet` tasks, as tokio's does.
//! - **Task hooks** (with `RUSTFLAGS="--cfg tokio_unstable"`): a runtime
//!   built with [`instrument`] (every runtime `#[leak_check]` builds is)
//!   registers every task spawned on it, by any code, in the current scope,
//!   with its spawn site and a creation backtrace. Such tasks are reported
//!   like tracked ones, with state [`State::Unknown`](crate::State::Unknown)
//!   because their waker is not visible.
//!
//! With `tokio_unstable`, tokio's `taskdump` feature on Linux and leakcheck's
//! `taskdump` feature, `check_async` also adds where each leaked task is
//! suspended now, from `Handle::dump`.

use crate::registry::scope::ScopeKind;
use crate::registry::Scope;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::runtime::{Builder, Handle};

/// Prepares a runtime builder so that leakcheck sees what runs on it.
///
/// - Its worker and blocking threads are known to the OS-thread check, so
///   they are never reported, whatever they are named.
/// - Built with `--cfg tokio_unstable`, it installs tokio's
///   `on_task_spawn` and `on_task_terminate` hooks: every task spawned on the
///   runtime, by your code or a dependency's, with plain `tokio::spawn`, is
///   tracked in the scope that spawned it, with its spawn site. Without
///   `tokio_unstable`, only their number is known (see the module docs).
///
/// `#[leak_check]` calls this on every runtime it builds.
///
/// ```
/// let mut builder = tokio::runtime::Builder::new_multi_thread();
/// builder.worker_threads(2).enable_all();
/// leakcheck::runtime::instrument(&mut builder);
/// let runtime = builder.build()?;
/// runtime.block_on(async {
///     let guard = leakcheck::verify_none();
///     tokio::spawn(async {}).await.unwrap();
///     guard.check_async().await.unwrap();
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn instrument(builder: &mut Builder) -> &mut Builder {
    builder
        .on_thread_start(crate::os_threads::runtime_thread_started)
        .on_thread_stop(crate::os_threads::runtime_thread_stopped);
    #[cfg(tokio_unstable)]
    hooks::install(builder);
    builder
}

/// Counters of tracked tasks per runtime, for the tasks that no guard's
/// subtree accounts for: those in the root and background scopes.
static UNSCOPED_PER_RUNTIME: Mutex<Option<HashMap<tokio::runtime::Id, Arc<AtomicUsize>>>> =
    Mutex::new(None);

/// The counter a root- or background-scope task on the current runtime
/// adds itself to, if it is such a task and a runtime is current.
pub(crate) fn unscoped_counter(scope: &Scope, handle: Option<&Handle>) -> Option<Arc<AtomicUsize>> {
    if matches!(scope.kind, ScopeKind::Guard { .. }) {
        return None;
    }
    let id = match handle {
        Some(handle) => handle.id(),
        None => Handle::try_current().ok()?.id(),
    };
    let counter = UNSCOPED_PER_RUNTIME
        .lock()
        .get_or_insert_with(HashMap::new)
        .entry(id)
        .or_default()
        .clone();
    counter.fetch_add(1, Ordering::Relaxed);
    Some(counter)
}

fn unscoped_on(id: tokio::runtime::Id) -> usize {
    UNSCOPED_PER_RUNTIME
        .lock()
        .as_ref()
        .and_then(|map| map.get(&id))
        .map_or(0, |counter| counter.load(Ordering::Relaxed))
}

/// Which guards are open on which runtime, so that a count shared by
/// unrelated tests is never blamed on one of them.
static GUARDS_PER_RUNTIME: Mutex<Option<HashMap<tokio::runtime::Id, Vec<std::sync::Weak<Scope>>>>> =
    Mutex::new(None);

/// The runtime a guard opened in, and what was alive on it then.
pub(crate) struct RuntimeBaseline {
    handle: Handle,
    id: tokio::runtime::Id,
    untracked_at_open: usize,
    /// Set when another guard, not nested in this one, shared the runtime
    /// while this one was open: then the count cannot be attributed.
    shared: bool,
}

impl RuntimeBaseline {
    /// Takes the baseline for a guard opening `scope`, if a runtime is
    /// current.
    pub(crate) fn take(scope: &Arc<Scope>) -> Option<Self> {
        let handle = Handle::try_current().ok()?;
        let id = handle.id();
        let mut guards = GUARDS_PER_RUNTIME.lock();
        let open = guards.get_or_insert_with(HashMap::new).entry(id).or_default();
        open.retain(|scope| scope.strong_count() > 0 && !is_closed(scope));
        // A guard nested in one already open here is covered by that one's
        // subtree; the outer guard keeps the count.
        let shared = open
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .any(|other| !scope.is_within(&other));
        open.push(Arc::downgrade(scope));
        drop(guards);
        let alive = handle.metrics().num_alive_tasks();
        Some(Self {
            untracked_at_open: alive.saturating_sub(unscoped_on(id)),
            handle,
            id,
            shared,
        })
    }

    /// Untracked tasks beyond the baseline, given how many tasks the guard's
    /// subtree tracks now; `None` when the count cannot be attributed.
    pub(crate) fn excess(&mut self, scope: &Arc<Scope>, tracked_in_subtree: usize) -> Option<usize> {
        if !self.shared {
            let guards = GUARDS_PER_RUNTIME.lock();
            if let Some(open) = guards.as_ref().and_then(|g| g.get(&self.id)) {
                self.shared = open
                    .iter()
                    .filter_map(std::sync::Weak::upgrade)
                    .any(|other| !is_closed_scope(&other) && !other.is_within(scope) && !scope.is_within(&other));
            }
        }
        if self.shared {
            return None;
        }
        let alive = self.handle.metrics().num_alive_tasks();
        let untracked = alive
            .saturating_sub(unscoped_on(self.id))
            .saturating_sub(tracked_in_subtree);
        Some(untracked.saturating_sub(self.untracked_at_open))
    }

#[cfg_attr(
        not(all(tokio_unstable, feature = "taskdump", target_os = "linux")),
        allow(dead_code)
    )]
    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }
}

fn is_closed(scope: &std::sync::Weak<Scope>) -> bool {
    scope.upgrade().is_none_or(|scope| is_closed_scope(&scope))
}

fn is_closed_scope(scope: &Scope) -> bool {
    scope.is_closed()
}

#[cfg(tokio_unstable)]
mod hooks {
    //! Task hooks: track every task spawned on an instrumented runtime.

    use crate::registry::{self, Kind, Registration, Spawn};
    use parking_lot::Mutex;
    use std::cell::Cell;
    use std::collections::HashMap;
    use tokio::runtime::{Builder, TaskMeta};

    thread_local! {
        /// Set while a leakcheck wrapper spawns, so the hook does not track
        /// the same task twice.
        static WRAPPER_SPAWNING: Cell<bool> = const { Cell::new(false) };
    }

    static HOOKED: Mutex<Option<HashMap<tokio::task::Id, Registration>>> = Mutex::new(None);

    pub(super) fn install(builder: &mut Builder) {
        builder.on_task_spawn(spawned).on_task_terminate(terminated);
    }

    /// Runs `f`, which spawns through a wrapper, with the hook told to skip.
    pub(crate) fn wrapper_spawning<R>(f: impl FnOnce() -> R) -> R {
        let was = WRAPPER_SPAWNING.try_with(|flag| flag.replace(true)).unwrap_or(false);
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
            location: meta.spawned_at(),
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
        let registration = HOOKED.lock().as_mut().and_then(|map| map.remove(&meta.id()));
        drop(registration);
    }
}

#[cfg(tokio_unstable)]
pub(crate) use hooks::wrapper_spawning;

/// Without task hooks there is nothing to skip.
#[cfg(not(tokio_unstable))]
#[inline(always)]
pub(crate) fn wrapper_spawning<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Where each of a runtime's tasks is suspended now, keyed by task id, from
/// tokio's task dump; empty when the dump is not available or times out.
#[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
pub(crate) async fn suspension_points(
    handle: &Handle,
    timeout: std::time::Duration,
) -> HashMap<tokio::task::Id, String> {
    match tokio::time::timeout(timeout, handle.dump()).await {
        Ok(dump) => dump
            .tasks()
            .iter()
            .map(|task| (task.id(), task.trace().to_string()))
            .collect(),
        Err(_) => HashMap::new(),
    }
}
