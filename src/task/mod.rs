//! Tracked tokio tasks: drop-in replacements for `tokio::spawn` and friends.
//!
//! Each function here behaves exactly like its tokio counterpart and returns
//! tokio's own [`JoinHandle`]. While a leak check is active anywhere in the
//! process, the task is also registered in the scope of the code that spawned
//! it, with its spawn site and a creation backtrace, until it completes,
//! panics, is aborted, or its runtime shuts down. Before the first check, the
//! only cost is one relaxed atomic load per spawn.
//!
//! | tokio | leakcheck |
//! |---|---|
//! | `tokio::spawn` | [`spawn`] |
//! | `tokio::task::spawn_blocking` | [`spawn_blocking`] |
//! | `tokio::task::spawn_local` | [`spawn_local`] |
//! | `tokio::task::Builder` | [`Builder`] |
//! | `JoinSet::spawn` and friends | [`JoinSetExt`] |
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let guard = leakcheck::verify_none();
//! let handle = leakcheck::task::spawn(async { 6 * 7 });
//! assert_eq!(handle.await.unwrap(), 42);
//! guard.check_async().await.unwrap();
//! # }
//! ```

mod builder;
mod join_set;
pub(crate) mod tracked;

pub use builder::Builder;
pub use join_set::JoinSetExt;

use crate::registry::{self, Kind, Spawn};
use std::future::Future;
use std::panic::Location;
use tokio::task::JoinHandle;
use tracked::Tracked;

/// Spawns a task on the current tokio runtime, like [`tokio::spawn`], and
/// tracks it.
///
/// # Panics
///
/// Panics when called outside a tokio runtime, as `tokio::spawn` does.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let handle = leakcheck::spawn(async { "done" });
/// assert_eq!(handle.await.unwrap(), "done");
/// # }
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if !registry::is_tracking() {
        return tokio::spawn(future);
    }
    spawn_tracked(future, None, None)
}

#[track_caller]
#[inline(never)]
pub(crate) fn spawn_tracked<F>(
    future: F,
    name: Option<&str>,
    handle: Option<&tokio::runtime::Handle>,
) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let spawn = Spawn {
        kind: Kind::Task,
        name,
        location: Some(Location::caller()),
        handle,
    };
    let (tracked, record) = Tracked::register(future, spawn);
    let join = crate::probe::task_hooks::wrapper_spawning(|| match handle {
        Some(handle) => handle.spawn(tracked),
        None => tokio::spawn(tracked),
    });
    let _ = record.task_id.set(join.id());
    join
}

/// Runs a blocking closure on tokio's blocking pool, like
/// [`tokio::task::spawn_blocking`], and tracks it until it returns.
///
/// Work the closure spawns through leakcheck is charged to the same scope.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let sum = leakcheck::spawn_blocking(|| (1..=10).sum::<u32>()).await.unwrap();
/// assert_eq!(sum, 55);
/// # }
/// ```
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    if !registry::is_tracking() {
        return tokio::task::spawn_blocking(f);
    }
    spawn_blocking_tracked(f, None, None)
}

#[track_caller]
#[inline(never)]
pub(crate) fn spawn_blocking_tracked<F, R>(
    f: F,
    name: Option<&str>,
    handle: Option<&tokio::runtime::Handle>,
) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let body = tracked_closure(
        f,
        Spawn {
            kind: Kind::BlockingTask,
            name,
            location: Some(Location::caller()),
            handle,
        },
    );
    match handle {
        Some(handle) => handle.spawn_blocking(body),
        None => tokio::task::spawn_blocking(body),
    }
}

/// Wraps a closure so it runs registered and in its spawner's scope, and
/// unregisters when it returns or unwinds.
pub(crate) fn tracked_closure<F, R>(f: F, spawn: Spawn<'_>) -> impl FnOnce() -> R + Send + 'static
where
    F: FnOnce() -> R + Send + 'static,
{
    let registration = registry::register(spawn);
    let mut context = registration.context();
    move || {
        let registration = registration;
        if registration.record().kind == Kind::Thread {
            registration.record().tid.note_current();
        }
        registry::scope::with_context(&mut context, f)
    }
}

/// Spawns a `!Send` task on the current [`tokio::task::LocalSet`], like
/// [`tokio::task::spawn_local`], and tracks it.
///
/// # Panics
///
/// Panics when called outside a `LocalSet`, as tokio's does.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let local = tokio::task::LocalSet::new();
/// let value = local
///     .run_until(async {
///         let shared = std::rc::Rc::new(5);
///         leakcheck::spawn_local(async move { *shared * 2 }).await.unwrap()
///     })
///     .await;
/// assert_eq!(value, 10);
/// # }
/// ```
#[track_caller]
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    if !registry::is_tracking() {
        return tokio::task::spawn_local(future);
    }
    spawn_local_tracked(future, None)
}

#[track_caller]
#[inline(never)]
pub(crate) fn spawn_local_tracked<F>(future: F, name: Option<&str>) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let spawn = Spawn {
        kind: Kind::LocalTask,
        name,
        location: Some(Location::caller()),
        handle: None,
    };
    let (tracked, record) = Tracked::register(future, spawn);
    let join = tokio::task::spawn_local(tracked);
    let _ = record.task_id.set(join.id());
    join
}
