//! Fail a test when tokio tasks or OS threads that it started are still
//! running at its end, and show where each straggler was spawned, what it is
//! doing, and whether it can ever finish.
//!
//! leakcheck does for tokio tasks and threads what goleak does for
//! goroutines, and it is safe with `cargo test`'s parallel tests: each check
//! sees only the work its own test started.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let guard = leakcheck::verify_none();
//!
//! // A worker that waits on a channel whose sender is kept but never used.
//! let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(1);
//! leakcheck::spawn(async move { while let Some(_) = rx.recv().await {} });
//!
//! let report = guard.check_async().await.unwrap_err();
//! assert_eq!(report.stragglers()[0].location().line(), line!() - 3);
//! # drop(tx);
//! # }
//! ```
//!
//! # The attribute
//!
//! [`#[leak_check]`](leak_check) puts a check on a test: sync or async, with
//! its own tokio runtime or above `#[tokio::test]`.
//!
//! ```
//! use leakcheck::leak_check;
//!
//! #[leak_check]
//! fn worker_is_joined() {
//!     let worker = leakcheck::thread::spawn(|| 2 + 2);
//!     assert_eq!(worker.join().unwrap(), 4);
//! }
//!
//! #[leak_check(flavor = "multi_thread", worker_threads = 2, settle_ms = 200)]
//! async fn tasks_are_awaited() {
//!     let task = leakcheck::spawn(async { 6 * 7 });
//!     assert_eq!(task.await.unwrap(), 42);
//! }
//!
//! #[leak_check(ignore_name = "pool-reaper")]
//! #[tokio::test]
//! async fn with_tokio_test() -> std::io::Result<()> {
//!     leakcheck::task::Builder::new().name("pool-reaper").spawn(std::future::pending::<()>())?;
//!     Ok(())
//! }
//! # fn main() {}
//! ```
//!
//! On an inline module it checks every test inside, nested modules too, with
//! the module's arguments as defaults; `#[leak_check(off)]` exempts one test:
//!
//! ```
//! #[leakcheck::leak_check(settle_ms = 200)]
//! mod tests {
//!     #[test]
//!     fn worker_is_joined() {
//!         leakcheck::thread::spawn(|| ()).join().unwrap();
//!     }
//!
//!     #[tokio::test(flavor = "multi_thread")]
//!     async fn task_is_awaited() {
//!         tokio::spawn(async {}).await.unwrap();
//!     }
//!
//!     #[leakcheck::leak_check(off)]
//!     #[test]
//!     fn not_checked() {}
//! }
//! # fn main() {}
//! ```
//!
//! # How it fits together
//!
//! Data flows one way, and the modules are layered to match:
//!
//! - [`task`] and [`thread`]: spawn wrappers that mirror tokio's and std's
//!   and file what they start in the registry.
//! - The registry of live work, filed by *scope*. [`verify_none`] opens a
//!   scope on the current thread; anything spawned while it is current, or
//!   spawned by that work in turn, belongs to it.
//! - Probes, the ways a check sees live work: the registry's own view,
//!   tokio's count of alive tasks, tokio's task hooks (which file plain
//!   `tokio::spawn` tasks into the registry, see [`runtime::instrument`]),
//!   a `pthread_create` hook that does the same for every plain thread
//!   (Linux, glibc), and the process's thread list. Each answers the same three questions:
//!   what to remember when a scope opens, what is alive now, and what to add
//!   to a report.
//! - [`LeakGuard`]: closes the scope and checks it, asking every probe on
//!   each look, settling with bounded backoff and failing at once when every
//!   straggler is provably stuck.
//! - [`LeakReport`]: stragglers grouped by creation site, with resolved
//!   creation backtraces and task states.
//! - Process-wide features on top: [`snapshot`], everything alive in the
//!   process, like a goroutine dump; [`dump_on_signal`], which prints one
//!   on `SIGUSR1`; and [`check_at_exit!`], goleak's `VerifyTestMain`.
//!
//! # Configuration
//!
//! | variable | values | effect |
//! |---|---|---|
//! | `LEAKCHECK` | `on` (default), `off`, `warn` | `off` turns every check into a no-op, with one notice on stderr; `warn` runs and reports every check but fails no test for a leak |
//! | `LEAKCHECK_SETTLE_MS` | 0 to 600000 | the default settle budget (500 ms otherwise) |
//! | `LEAKCHECK_BACKTRACE` | `off`, `site` (default), `full` | creation backtraces: none, one per call site per scope, or one per spawn |
//! | `LEAKCHECK_DETAIL` | `off` (default), `on` | per-task tokio-metrics figures in reports, as [`Options::detailed`] |
//! | `LEAKCHECK_OS_THREADS` | `auto` (default), `on`, `off` | the `/proc` OS-thread check, as [`Options::os_threads`]; `auto` is on when one test runs at a time and the thread hook does not run |
//! | `LEAKCHECK_THREAD_HOOK` | `on` (default), `off` | the thread hook: every plain thread charged to the test that started it (Linux, glibc, the `thread-hook` feature) |
//! | `LEAKCHECK_REPORT_DIR` | a directory | each test leakcheck fails writes its JSON report there ([`LeakReport::publish`]) |
//! | `LEAKCHECK_AT_EXIT` | `off` (default), `on` | the whole-binary check at exit, as [`check_at_exit!`] |
//! | `LEAKCHECK_IGNORE_FILE` | a path, or `off` | the project's ignore file: `leakcheck.ignore` at the workspace root by default, one rule per line (`name NAME`, `location FILE[:LINE[:COL]]`, `frame PART_OF_A_PATH`), used by every check |
//!
//! An invalid value, or an unknown `LEAKCHECK_*` variable, makes every guard
//! panic with a message naming it.

#![warn(missing_docs)]
// The module form's example is a module of tests: as a doctest it shows that
// the expansion compiles, which is what it can show.
#![allow(clippy::test_attr_in_doctest)]
#![deny(unsafe_op_in_unsafe_fn)]

// The map, bottom to top: each module imports only modules listed before it.
//
// Settings and small utilities, importing nothing of the crate:
mod clock;
mod config;
mod notice;
mod sys;
// The records of live work, with their creation backtraces:
mod capture;
mod registry;
// What a report says about them, and which of them a project accepts:
mod ignore;
pub mod report;
// The ways a check sees live work, one file each:
mod probe;
// The check: options, the guard and its settle loop:
mod guard;
mod options;
// The spawn wrappers, which file work into the registry:
pub mod task;
pub mod thread;
// Process-level features built on all of the above:
mod at_exit;
mod dump;
pub mod runtime;
mod snapshot;

#[doc(inline)]
pub use leakcheck_macros::leak_check;

pub use dump::dump_on_signal;
pub use guard::{verify_none, LeakGuard};
pub use options::{Options, DEFAULT_SETTLE};
pub use registry::{Kind, State};
pub use report::{LeakReport, Straggler, UntrackedThread};
pub use snapshot::{snapshot, Snapshot};
pub use task::{spawn, spawn_blocking, spawn_local};

/// Runs `f` outside every test's scope: work it spawns through leakcheck,
/// and all work that work spawns in turn, is long-lived by design and is
/// never reported by a check. It still shows in [`snapshot`].
///
/// Use it for process-wide workers started lazily by whichever test happens
/// to need them first, such as a shared connection pool's reaper.
///
/// ```
/// use std::sync::OnceLock;
///
/// static POOL_REAPER: OnceLock<std::thread::JoinHandle<()>> = OnceLock::new();
///
/// let guard = leakcheck::verify_none();
/// POOL_REAPER.get_or_init(|| {
///     leakcheck::background(|| leakcheck::thread::spawn(|| loop {
///         std::thread::park();
///     }))
/// });
/// guard.check().unwrap(); // the reaper is not this test's leak
/// ```
pub fn background<R>(f: impl FnOnce() -> R) -> R {
    registry::start_tracking();
    let mut context = registry::ScopeContext::inherit(registry::Scope::background());
    registry::scope::with_context(&mut context, f)
}

/// Support for the `#[leak_check]` expansion. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use tokio;

    use crate::LeakGuard;

    /// Checks a sync test's guard, failing the test with the report on a
    /// leak (printing it instead under `LEAKCHECK=warn`).
    #[track_caller]
    pub fn check_sync(guard: LeakGuard) {
        if let Err(report) = guard.check() {
            report.fail_test();
        }
    }

    /// Awaits an async test's check inside its runtime and publishes a
    /// failure's report. The expansion panics with it, so that the panic's
    /// location is the test's, not this function's; under `LEAKCHECK=warn`
    /// the report is printed here and the test passes.
    pub async fn check_async(guard: LeakGuard) -> Result<(), crate::LeakReport> {
        match guard.check_async().await {
            Err(report) if crate::config::get().as_ref().is_ok_and(|c| c.warn) => {
                report.fail_test();
                Ok(())
            }
            Err(report) => {
                report.publish();
                Err(report)
            }
            Ok(()) => Ok(()),
        }
    }

    /// Prepares a runtime builder made by `#[leak_check]`.
    pub fn instrument_runtime(builder: &mut tokio::runtime::Builder) {
        crate::runtime::instrument(builder);
    }

    pub use ctor;

    /// Called by [`check_at_exit!`](crate::check_at_exit) before `main`.
    /// `LEAKCHECK=off` turns it off like every other check; an invalid
    /// configuration is reported by the first guard, not before `main`.
    pub fn install_at_exit() {
        if crate::config::get()
            .as_ref()
            .is_ok_and(|config| config.enabled)
        {
            crate::at_exit::install();
        }
    }

    pub use crate::registry::{live_count, registry_table_bytes};
}
