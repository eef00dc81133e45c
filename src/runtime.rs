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

use crate::probe::os_threads;
use tokio::runtime::Builder;

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
        .on_thread_start(os_threads::runtime_thread_started)
        .on_thread_stop(os_threads::runtime_thread_stopped);
    #[cfg(tokio_unstable)]
    crate::probe::task_hooks::install(builder);
    builder
}
