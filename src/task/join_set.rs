//! [`JoinSetExt`]: tracked tasks in a `tokio::task::JoinSet`.

use super::tracked::Tracked;
use super::tracked_closure;
use crate::registry::{self, Kind, Spawn};
use std::future::Future;
use std::panic::Location;
use tokio::task::{AbortHandle, JoinSet};

mod sealed {
    pub trait Sealed {}
    impl<T> Sealed for tokio::task::JoinSet<T> {}
}

/// Spawns tracked tasks into a [`JoinSet`].
///
/// A `JoinSet` aborts its tasks when it is dropped, so dropping the set before
/// the check is a clean way to stop a group of workers.
///
/// ```
/// use leakcheck::task::JoinSetExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let guard = leakcheck::verify_none();
/// let mut set = tokio::task::JoinSet::new();
/// for i in 0..4 {
///     set.spawn_tracked(async move { i * 2 });
/// }
/// let mut total = 0;
/// while let Some(result) = set.join_next().await {
///     total += result.unwrap();
/// }
/// assert_eq!(total, 12);
/// guard.check_async().await.unwrap();
/// # }
/// ```
pub trait JoinSetExt<T>: sealed::Sealed {
    /// Like [`JoinSet::spawn`], with the task tracked.
    ///
    /// # Panics
    ///
    /// Panics outside a tokio runtime, as `JoinSet::spawn` does.
    #[track_caller]
    fn spawn_tracked<F>(&mut self, task: F) -> AbortHandle
    where
        F: Future<Output = T> + Send + 'static,
        T: Send;

    /// Like [`JoinSet::spawn_blocking`], with the closure tracked.
    #[track_caller]
    fn spawn_blocking_tracked<F>(&mut self, f: F) -> AbortHandle
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send;

    /// Like [`JoinSet::spawn_local`], with the task tracked.
    #[track_caller]
    fn spawn_local_tracked<F>(&mut self, task: F) -> AbortHandle
    where
        F: Future<Output = T> + 'static;
}

impl<T: 'static> JoinSetExt<T> for JoinSet<T> {
    #[track_caller]
    fn spawn_tracked<F>(&mut self, task: F) -> AbortHandle
    where
        F: Future<Output = T> + Send + 'static,
        T: Send,
    {
        if !registry::is_tracking() {
            return self.spawn(task);
        }
        let (tracked, record) = Tracked::register(task, spawn(Kind::Task));
        let abort = crate::probe::task_hooks::wrapper_spawning(|| self.spawn(tracked));
        let _ = record.task_id.set(abort.id());
        abort
    }

    #[track_caller]
    fn spawn_blocking_tracked<F>(&mut self, f: F) -> AbortHandle
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send,
    {
        if !registry::is_tracking() {
            return self.spawn_blocking(f);
        }
        self.spawn_blocking(tracked_closure(f, spawn(Kind::BlockingTask)))
    }

    #[track_caller]
    fn spawn_local_tracked<F>(&mut self, task: F) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
    {
        if !registry::is_tracking() {
            return self.spawn_local(task);
        }
        let (tracked, record) = Tracked::register(task, spawn(Kind::LocalTask));
        let abort = self.spawn_local(tracked);
        let _ = record.task_id.set(abort.id());
        abort
    }
}

#[track_caller]
fn spawn(kind: Kind) -> Spawn<'static> {
    Spawn {
        kind,
        name: None,
        location: Some(Location::caller()),
        handle: None,
    }
}
