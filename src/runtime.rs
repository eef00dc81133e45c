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
/// tokio keeps one hook of each kind: a hook you set on the builder after
/// this call replaces leakcheck's.
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

/// How many tracked tasks one runtime has alive, in every scope, so that the
/// runtime's own count of alive tasks can be split into tracked and untracked.
pub(crate) struct RuntimeTasks {
    id: tokio::runtime::Id,
    handle: Handle,
    tracked: AtomicUsize,
}

impl RuntimeTasks {
    pub(crate) fn task_started(&self) {
        self.tracked.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn task_ended(&self) {
        self.tracked.fetch_sub(1, Ordering::Relaxed);
    }

    fn tracked(&self) -> usize {
        self.tracked.load(Ordering::Relaxed)
    }

    pub(crate) fn id(&self) -> tokio::runtime::Id {
        self.id
    }

    /// Whether the runtime has worker threads of its own. A current-thread
    /// runtime runs only while some thread drives it, so a probe there tells
    /// nothing about a runtime that nobody drives right now.
    pub(crate) fn has_workers(&self) -> bool {
        self.handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread
    }

    /// Spawns a probe: a task that does nothing, queued behind whatever the
    /// runtime has to do already (such as dropping a task aborted a moment
    /// ago). Once it has run, the runtime has made progress since.
    pub(crate) fn probe(self: &Arc<Self>) -> Probe {
        struct Finish(Arc<RuntimeTasks>, Arc<AtomicUsize>);
        impl Drop for Finish {
            fn drop(&mut self) {
                self.0.task_ended();
                // Done without having run: the runtime is shutting down.
                let _ = self.1.compare_exchange(
                    PROBE_PENDING,
                    PROBE_DROPPED,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
            }
        }
        let outcome = Arc::new(AtomicUsize::new(PROBE_PENDING));
        // Counted as tracked, so the untracked-task count does not see it.
        self.task_started();
        let finish = Finish(self.clone(), outcome.clone());
        let future = async move {
            finish.1.store(PROBE_RAN, Ordering::Release);
            drop(finish);
        };
        wrapper_spawning(|| drop(self.handle.spawn(future)));
        Probe { outcome }
    }
}

const PROBE_PENDING: usize = 0;
const PROBE_RAN: usize = 1;
const PROBE_DROPPED: usize = 2;

/// A probe task in flight; see [`RuntimeTasks::probe`].
pub(crate) struct Probe {
    outcome: Arc<AtomicUsize>,
}

/// What became of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeOutcome {
    Pending,
    Ran,
    /// Dropped unrun: the runtime is shutting down and dropping its tasks.
    Dropped,
}

impl Probe {
    pub(crate) fn outcome(&self) -> ProbeOutcome {
        match self.outcome.load(Ordering::Acquire) {
            PROBE_RAN => ProbeOutcome::Ran,
            PROBE_DROPPED => ProbeOutcome::Dropped,
            _ => ProbeOutcome::Pending,
        }
    }
}

static RUNTIMES: Mutex<Option<HashMap<tokio::runtime::Id, Arc<RuntimeTasks>>>> = Mutex::new(None);

thread_local! {
    /// The last runtime this thread spawned onto: nearly every spawn goes to
    /// the same one as the one before, so the global map is rarely locked.
    static LAST_RUNTIME: std::cell::RefCell<Option<Arc<RuntimeTasks>>> =
        const { std::cell::RefCell::new(None) };
}

/// The counter of the runtime behind `handle`, or of the current runtime.
pub(crate) fn runtime_tasks(handle: Option<&Handle>) -> Option<Arc<RuntimeTasks>> {
    let current;
    let handle = match handle {
        Some(handle) => handle,
        None => {
            current = Handle::try_current().ok()?;
            &current
        }
    };
    let id = handle.id();
    let cached = LAST_RUNTIME
        .try_with(|last| {
            last.try_borrow()
                .ok()
                .and_then(|last| last.as_ref().filter(|tasks| tasks.id == id).cloned())
        })
        .ok()
        .flatten();
    if cached.is_some() {
        return cached;
    }
    let tasks = runtime_tasks_of(handle);
    let _ = LAST_RUNTIME.try_with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            *last = Some(tasks.clone());
        }
    });
    Some(tasks)
}

fn runtime_tasks_of(handle: &Handle) -> Arc<RuntimeTasks> {
    let id = handle.id();
    let mut runtimes = RUNTIMES.lock();
    let runtimes = runtimes.get_or_insert_with(HashMap::new);
    if let Some(tasks) = runtimes.get(&id) {
        return tasks.clone();
    }
    // Forget runtimes that nothing refers to any more before adding one.
    runtimes.retain(|_, tasks| Arc::strong_count(tasks) > 1 || tasks.tracked() > 0);
    runtimes
        .entry(id)
        .or_insert_with(|| {
            Arc::new(RuntimeTasks {
                id,
                handle: handle.clone(),
                tracked: AtomicUsize::new(0),
            })
        })
        .clone()
}

/// Which guards are open on which runtime, so that a count shared by
/// unrelated tests is never blamed on one of them.
static GUARDS_PER_RUNTIME: Mutex<Option<HashMap<tokio::runtime::Id, Vec<std::sync::Weak<Scope>>>>> =
    Mutex::new(None);

/// The runtime a guard opened in, and what was alive on it then.
pub(crate) struct RuntimeBaseline {
    /// The runtime's tracked-task count, and its handle and id.
    tasks: Arc<RuntimeTasks>,
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
        let open = guards
            .get_or_insert_with(HashMap::new)
            .entry(id)
            .or_default();
        open.retain(|scope| scope.upgrade().is_some_and(|scope| !scope.is_closed()));
        // A guard nested in one already open here is covered by that one's
        // subtree; the outer guard keeps the count.
        let shared = open
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .any(|other| !scope.is_within(&other));
        open.push(Arc::downgrade(scope));
        drop(guards);
        let tasks = runtime_tasks_of(&handle);
        let alive = handle.metrics().num_alive_tasks();
        Some(Self {
            untracked_at_open: alive.saturating_sub(tasks.tracked()),
            tasks,
            shared,
        })
    }

    /// Untracked tasks beyond the baseline; `None` when the count cannot be
    /// attributed to this guard.
    pub(crate) fn excess(&mut self, scope: &Arc<Scope>) -> Option<usize> {
        if !self.shared {
            let guards = GUARDS_PER_RUNTIME.lock();
            if let Some(open) = guards.as_ref().and_then(|g| g.get(&self.tasks.id())) {
                self.shared = open
                    .iter()
                    .filter_map(std::sync::Weak::upgrade)
                    .any(|other| {
                        !other.is_closed() && !other.is_within(scope) && !scope.is_within(&other)
                    });
            }
        }
        if self.shared {
            return None;
        }
        let alive = self.tasks.handle.metrics().num_alive_tasks();
        let untracked = alive.saturating_sub(self.tasks.tracked());
        Some(untracked.saturating_sub(self.untracked_at_open))
    }

    #[cfg_attr(
        not(all(tokio_unstable, feature = "taskdump", target_os = "linux")),
        allow(dead_code)
    )]
    pub(crate) fn handle(&self) -> &Handle {
        &self.tasks.handle
    }
}

#[cfg(tokio_unstable)]
mod hooks {
    //! Task hooks: track every task spawned on an instrumented runtime.

    use crate::registry::{self, scope, Kind, Registration, ScopeContext, Spawn};
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
        builder
            .on_task_spawn(spawned)
            .on_task_terminate(terminated)
            .on_before_task_poll(before_poll)
            .on_after_task_poll(after_poll);
    }

    thread_local! {
        /// The contexts that polls of hooked tasks replaced, innermost last.
        static SAVED: std::cell::RefCell<Vec<Option<ScopeContext>>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }

    /// A hooked task carries its scope while it runs, as a wrapped task
    /// does, so the tasks it spawns are charged to the same test.
    fn before_poll(meta: &TaskMeta<'_>) {
        let scope = HOOKED
            .lock()
            .as_ref()
            .and_then(|map| map.get(&meta.id()))
            .map(|registration| registration.record().scope.clone());
        let saved = scope.map(|scope| scope::replace_context(ScopeContext::inherit(scope)));
        let _ = SAVED.try_with(|stack| {
            if let Ok(mut stack) = stack.try_borrow_mut() {
                stack.push(saved);
            }
        });
    }

    fn after_poll(_: &TaskMeta<'_>) {
        let saved = SAVED
            .try_with(|stack| {
                stack
                    .try_borrow_mut()
                    .ok()
                    .and_then(|mut stack| stack.pop())
            })
            .ok()
            .flatten()
            .flatten();
        if let Some(saved) = saved {
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
        let registration = HOOKED
            .lock()
            .as_mut()
            .and_then(|map| map.remove(&meta.id()));
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
