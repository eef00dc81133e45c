//! [`Builder`], the tracked counterpart of `tokio::task::Builder`.

use super::{spawn_blocking_tracked, spawn_local_tracked, spawn_tracked};
use crate::registry;
use std::future::Future;
use std::io;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

/// Configures and spawns a tracked task, mirroring `tokio::task::Builder`.
///
/// The name shows in leak reports and snapshots, and is what
/// [`Options::ignore_name`](crate::Options::ignore_name) matches. Unlike
/// tokio's builder, this one works without `--cfg tokio_unstable`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let handle = leakcheck::task::Builder::new()
///     .name("flusher")
///     .spawn(async { 1 })?;
/// assert_eq!(handle.await.unwrap(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default, Clone, Copy)]
#[must_use = "a Builder does nothing until one of its spawn methods is called"]
pub struct Builder<'a> {
    name: Option<&'a str>,
}

impl<'a> Builder<'a> {
    /// A builder with no name set.
    ///
    /// ```
    /// let builder = leakcheck::task::Builder::new();
    /// # let _ = builder;
    /// ```
    pub fn new() -> Self {
        Self { name: None }
    }

    /// Names the task.
    ///
    /// ```
    /// let builder = leakcheck::task::Builder::new().name("accept-loop");
    /// # let _ = builder;
    /// ```
    pub fn name(self, name: &'a str) -> Self {
        Self { name: Some(name) }
    }

    /// Spawns the task on the current runtime.
    ///
    /// # Errors
    ///
    /// Kept for parity with tokio's builder; spawning itself does not fail.
    ///
    /// # Panics
    ///
    /// Panics outside a tokio runtime, as `tokio::spawn` does.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let handle = leakcheck::task::Builder::new().name("job").spawn(async { 2 })?;
    /// assert_eq!(handle.await.unwrap(), 2);
    /// # Ok(())
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn<F>(self, future: F) -> io::Result<JoinHandle<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Ok(if registry::is_tracking() {
            spawn_tracked(future, self.name, None)
        } else {
            tokio::spawn(future)
        })
    }

    /// Spawns the task on the runtime behind `handle`.
    ///
    /// # Errors
    ///
    /// Kept for parity with tokio's builder; spawning itself does not fail.
    ///
    /// ```
    /// let runtime = tokio::runtime::Runtime::new()?;
    /// let handle = leakcheck::task::Builder::new()
    ///     .name("on-handle")
    ///     .spawn_on(async { 3 }, runtime.handle())?;
    /// assert_eq!(runtime.block_on(handle).unwrap(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn spawn_on<F>(self, future: F, handle: &Handle) -> io::Result<JoinHandle<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Ok(if registry::is_tracking() {
            spawn_tracked(future, self.name, Some(handle))
        } else {
            handle.spawn(future)
        })
    }

    /// Runs a blocking closure on the current runtime's blocking pool.
    ///
    /// # Errors
    ///
    /// Kept for parity with tokio's builder; spawning itself does not fail.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let handle = leakcheck::task::Builder::new().name("hash").spawn_blocking(|| 4)?;
    /// assert_eq!(handle.await.unwrap(), 4);
    /// # Ok(())
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_blocking<F, R>(self, f: F) -> io::Result<JoinHandle<R>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        Ok(if registry::is_tracking() {
            spawn_blocking_tracked(f, self.name, None)
        } else {
            tokio::task::spawn_blocking(f)
        })
    }

    /// Spawns a `!Send` task on the current `LocalSet`.
    ///
    /// # Errors
    ///
    /// Kept for parity with tokio's builder; spawning itself does not fail.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let local = tokio::task::LocalSet::new();
    /// let handle = local.run_until(async {
    ///     leakcheck::task::Builder::new().name("ui").spawn_local(async { 5 })
    /// }).await?;
    /// assert_eq!(local.run_until(handle).await.unwrap(), 5);
    /// # Ok(())
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_local<F>(self, future: F) -> io::Result<JoinHandle<F::Output>>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        Ok(if registry::is_tracking() {
            spawn_local_tracked(future, self.name)
        } else {
            tokio::task::spawn_local(future)
        })
    }
}
