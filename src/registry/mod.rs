//! The live registry: one [`Record`] for every tracked task and thread that
//! has not ended, filed under the [`Scope`] it was spawned in.
//!
//! The spawn wrappers call [`register`] and keep the returned
//! [`Registration`]; dropping it, which the wrappers do on completion, panic,
//! abort or runtime shutdown, removes the record. Nothing else writes here.
//!
//! Until something turns tracking on (the first guard, a snapshot, or
//! [`crate::background`]), [`is_tracking`] is false and the wrappers register
//! nothing: production code pays one relaxed load per spawn.

mod activity;
pub(crate) mod runtimes;
pub(crate) mod scope;
mod slab;

pub use activity::State;
pub(crate) use activity::{Activity, ActivitySample};
pub(crate) use scope::{GuardStack, Scope, ScopeContext};

use crate::capture::{Captured, CreationBacktrace};
use runtimes::RuntimeTasks;
use std::cell::UnsafeCell;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

/// Not yet decided: nothing has asked for tracking before the first spawn.
const UNDECIDED: u8 = 0;
const OFF: u8 = 1;
const ON: u8 = 2;
static TRACKING: AtomicU8 = AtomicU8::new(UNDECIDED);

/// Whether the wrappers should register what they spawn: one relaxed load,
/// after the first call in the process.
#[inline]
pub(crate) fn is_tracking() -> bool {
    match TRACKING.load(Ordering::Relaxed) {
        ON => true,
        OFF => false,
        _ => decide(),
    }
}

#[cold]
fn decide() -> bool {
    let _ = TRACKING.compare_exchange(UNDECIDED, OFF, Ordering::Relaxed, Ordering::Relaxed);
    TRACKING.load(Ordering::Relaxed) == ON
}

/// Turns tracking on for the rest of the process.
pub(crate) fn start_tracking() {
    TRACKING.store(ON, Ordering::Relaxed);
}

/// The kind of a unit of work.
///
/// ```
/// assert_eq!(leakcheck::Kind::BlockingTask.to_string(), "blocking task");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Kind {
    /// A task spawned onto a tokio runtime.
    Task,
    /// A closure run on tokio's blocking pool.
    BlockingTask,
    /// A `!Send` task spawned onto a `tokio::task::LocalSet`.
    LocalTask,
    /// An OS thread.
    Thread,
}

impl Kind {
    /// The plural noun, for counts in reports.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Task => "tasks",
            Kind::BlockingTask => "blocking tasks",
            Kind::LocalTask => "local tasks",
            Kind::Thread => "threads",
        }
    }

    /// Whether this kind is polled as a future, so it has a waker and a state
    /// beyond "running".
    pub(crate) fn is_async(self) -> bool {
        matches!(self, Kind::Task | Kind::LocalTask)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Task => "task",
            Kind::BlockingTask => "blocking task",
            Kind::LocalTask => "local task",
            Kind::Thread => "thread",
        })
    }
}

/// Everything known about one tracked unit of work.
pub(crate) struct Record {
    pub(crate) kind: Kind,
    /// The name given at spawn; a hooked thread's is read when it is seen,
    /// since std names a thread only once it runs.
    pub(crate) name: OnceLock<Box<str>>,
    /// The spawn site, when the spawner's caller is known; a plain thread
    /// seen through the thread hook has only its creation backtrace.
    pub(crate) location: Option<&'static Location<'static>>,
    /// When, on [`crate::clock::precise_nanos`]'s clock.
    pub(crate) spawned_at: u64,
    /// This record's own creation backtrace; in `site` mode, only the
    /// first spawn from a line in a scope has one (see [`Record::backtrace`]).
    own_backtrace: Option<Arc<CreationBacktrace>>,
    pub(crate) scope: Arc<Scope>,
    pub(crate) activity: Activity,
    /// tokio's id for the task, once the spawn has returned its handle.
    pub(crate) task_id: OnceLock<tokio::task::Id>,
    /// Per-task tokio-metrics figures, in detailed mode.
    pub(crate) monitor: Option<tokio_metrics::TaskMonitor>,
    /// Registered by tokio's task hooks rather than a wrapper: no waker seen.
    pub(crate) hooked: bool,
    /// A task's runtime, whose count of tracked tasks includes it.
    pub(crate) runtime: Option<Arc<RuntimeTasks>>,
    /// A tracked thread's kernel id, for the OS-thread check.
    pub(crate) tid: ThreadTid,
    /// Where the record sits in its scope's set ([`slab::Slot::to_bits`]),
    /// kept here rather than in the [`Registration`] so that the handle a
    /// task's wrapper holds is one pointer.
    slot: AtomicU64,
    /// Guards opened inside the task and still open between its polls; the
    /// rest of its scope context is `scope`. Only the registration touches
    /// it (see [`Registration::poll_parts`]).
    task_guards: OwnerOnly<GuardStack>,
}

/// A value that only the record's one [`Registration`] reads or writes,
/// through `&mut self`; everyone else who shares the record leaves it alone.
struct OwnerOnly<T>(UnsafeCell<T>);

// SAFETY: the value is reached only through `Registration::poll_parts`, which
// takes `&mut Registration`, and a record has exactly one registration, which
// is not `Clone`: so at most one thread touches the value at a time, and
// `T: Send` lets that thread differ from the one before.
unsafe impl<T: Send> Sync for OwnerOnly<T> {}

/// A tracked thread's kernel id, noted when the thread starts.
#[derive(Default)]
pub(crate) struct ThreadTid(AtomicU32);

impl ThreadTid {
    pub(crate) fn note_current(&self) {
        if let Some(tid) = crate::sys::current_tid() {
            self.0.store(tid, Ordering::Relaxed);
        }
    }

    pub(crate) fn get(&self) -> Option<u32> {
        Some(self.0.load(Ordering::Relaxed)).filter(|tid| *tid != 0)
    }
}

/// What a wrapper knows at spawn time.
pub(crate) struct Spawn<'a> {
    pub(crate) kind: Kind,
    pub(crate) name: Option<&'a str>,
    /// `None` for a plain thread seen through the thread hook.
    pub(crate) location: Option<&'static Location<'static>>,
    /// The runtime a task goes to, when the caller named one.
    pub(crate) handle: Option<&'a tokio::runtime::Handle>,
}

/// Ownership of one record's place in the registry; dropping it unregisters.
/// One pointer, so that a task's wrapper adds little to tokio's task cell.
pub(crate) struct Registration {
    record: Arc<Record>,
}

impl Record {
    /// The creation backtrace: the record's own, or the sample its scope
    /// keeps for its spawn site, marked shared.
    pub(crate) fn backtrace(&self) -> Option<Captured> {
        if let Some(trace) = &self.own_backtrace {
            return Some(Captured {
                trace: trace.clone(),
                shared: false,
            });
        }
        let trace = self.scope.samples.sample(self.location?)?;
        Some(Captured {
            trace,
            shared: true,
        })
    }

    /// An identity for the record while it is alive: its address, which a
    /// global counter would give at the cost of a contended atomic per spawn.
    pub(crate) fn key(self: &Arc<Self>) -> usize {
        Arc::as_ptr(self) as usize
    }
}

impl Registration {
    pub(crate) fn record(&self) -> &Arc<Record> {
        &self.record
    }

    /// The scope context the registered work starts with.
    pub(crate) fn context(&self) -> ScopeContext {
        ScopeContext::inherit(self.record.scope.clone())
    }

    /// What a poll of the registered task needs: its record, and the guards
    /// opened inside it, which the poll may add to or close.
    pub(crate) fn poll_parts(&mut self) -> (&Arc<Record>, &mut GuardStack) {
        // SAFETY: `&mut self` on the record's only registration: nothing else
        // reaches `task_guards` (see `OwnerOnly`).
        let guards = unsafe { &mut *self.record.task_guards.0.get() };
        (&self.record, guards)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(runtime) = &self.record.runtime {
            runtime.task_ended();
        }
        let slot = slab::Slot::from_bits(self.record.slot.load(Ordering::Relaxed));
        self.record.scope.live.remove(slot);
    }
}

/// Registers new work in the current scope. Call only when [`is_tracking`].
pub(crate) fn register(spawn: Spawn<'_>) -> Registration {
    register_as(spawn, false)
}

/// Registers work seen through a hook rather than a wrapper: a task through
/// tokio's task hooks, or a plain thread through the thread hook.
#[cfg_attr(not(any(tokio_unstable, feature = "thread-hook")), allow(dead_code))]
pub(crate) fn register_hooked(spawn: Spawn<'_>) -> Registration {
    register_as(spawn, true)
}

fn register_as(spawn: Spawn<'_>, hooked: bool) -> Registration {
    let scope = scope::current();
    let own_backtrace = match spawn.location {
        Some(location) => scope.samples.capture(location),
        // The backtrace is all there is to tell where the work came from.
        None => Some(crate::capture::capture_one()),
    };
    let monitor =
        (scope.detailed && spawn.kind.is_async() && !hooked).then(tokio_metrics::TaskMonitor::new);
    // tokio counts only these in `num_alive_tasks`.
    let runtime = match spawn.kind {
        Kind::Task => runtimes::runtime_tasks(spawn.handle),
        _ => None,
    };
    if let Some(runtime) = &runtime {
        runtime.task_started();
    }
    let record = Arc::new(Record {
        kind: spawn.kind,
        name: spawn
            .name
            .map(Box::from)
            .map(OnceLock::from)
            .unwrap_or_default(),
        location: spawn.location,
        spawned_at: crate::clock::precise_nanos(),
        own_backtrace,
        scope,
        activity: Activity::new(),
        task_id: OnceLock::new(),
        monitor,
        hooked,
        runtime,
        tid: Default::default(),
        slot: AtomicU64::new(0),
        task_guards: OwnerOnly(UnsafeCell::new(GuardStack::new())),
    });
    let slot = record.scope.live.insert(record.clone());
    // Only the registration reads the slot back, and it is made below.
    record.slot.store(slot.to_bits(), Ordering::Relaxed);
    Registration { record }
}

/// Every live record in every scope.
pub(crate) fn all_records() -> Vec<Arc<Record>> {
    let mut out = Vec::new();
    for scope in scope::all_scopes() {
        scope.live.collect_into(&mut out);
    }
    out
}

/// Bytes held by the registry's tables across every scope (records excluded).
#[doc(hidden)]
pub fn registry_table_bytes() -> usize {
    scope::all_scopes()
        .iter()
        .map(|scope| scope.live.capacity_bytes())
        .sum()
}

/// The number of live records across every scope.
#[doc(hidden)]
pub fn live_count() -> usize {
    scope::all_scopes()
        .iter()
        .map(|scope| scope.live.len())
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_record_with_its_reference_counts_fits_in_184_bytes() {
        // The bulk of what a tracked task costs in memory (B8 in the README):
        // grow it only with the figure.
        let allocation = std::mem::size_of::<super::Record>() + 2 * std::mem::size_of::<usize>();
        assert!(allocation <= 184, "a record takes {allocation} B");
    }
}
