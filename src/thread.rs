//! Tracked OS threads: drop-in replacements for `std::thread::spawn` and
//! `std::thread::Builder`.
//!
//! A tracked thread is registered in its spawner's scope until its closure
//! returns or unwinds, and work it spawns through leakcheck is charged to
//! the same scope. The handles are std's own.
//!
//! ```
//! let guard = leakcheck::verify_none();
//! let worker = leakcheck::thread::spawn(|| 40 + 2);
//! assert_eq!(worker.join().unwrap(), 42);
//! guard.check().unwrap();
//! ```

use crate::registry::{self, Kind, Spawn};
use crate::task::tracked_closure;
use std::io;
use std::panic::Location;
use std::thread::JoinHandle;

/// Spawns a thread, like [`std::thread::spawn`], and tracks it.
///
/// # Panics
///
/// Panics if the OS fails to create a thread, as std's does; use
/// [`Builder::spawn`] to handle that error.
///
/// ```
/// let handle = leakcheck::thread::spawn(|| "hello");
/// assert_eq!(handle.join().unwrap(), "hello");
/// ```
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match Builder::new().spawn(f) {
        Ok(handle) => handle,
        Err(error) => panic!("failed to spawn thread: {error}"),
    }
}

/// Configures and spawns a tracked thread, mirroring [`std::thread::Builder`].
///
/// ```
/// let handle = leakcheck::thread::Builder::new()
///     .name("watcher".to_string())
///     .stack_size(256 * 1024)
///     .spawn(|| std::thread::current().name().map(str::to_owned))?;
/// assert_eq!(handle.join().unwrap().as_deref(), Some("watcher"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default)]
#[must_use = "a Builder does nothing until `spawn` is called"]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with std's defaults.
    ///
    /// ```
    /// let builder = leakcheck::thread::Builder::new();
    /// # let _ = builder;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Names the thread; the name shows in reports and is what
    /// [`Options::ignore_name`](crate::Options::ignore_name) matches.
    ///
    /// ```
    /// let builder = leakcheck::thread::Builder::new().name("reaper".into());
    /// # let _ = builder;
    /// ```
    pub fn name(mut self, name: String) -> Self {
        self.name = Some(name);
        self
    }

    /// Sets the stack size in bytes.
    ///
    /// ```
    /// let builder = leakcheck::thread::Builder::new().stack_size(64 * 1024);
    /// # let _ = builder;
    /// ```
    pub fn stack_size(mut self, size: usize) -> Self {
        self.stack_size = Some(size);
        self
    }

    /// Spawns the thread.
    ///
    /// # Errors
    ///
    /// Returns the OS error when the thread cannot be created, as std does;
    /// nothing is registered then.
    ///
    /// ```
    /// let handle = leakcheck::thread::Builder::new().spawn(|| 7)?;
    /// assert_eq!(handle.join().unwrap(), 7);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let mut builder = std::thread::Builder::new();
        if let Some(size) = self.stack_size {
            builder = builder.stack_size(size);
        }
        if !registry::is_tracking() {
            if let Some(name) = self.name {
                builder = builder.name(name);
            }
            return builder.spawn(f);
        }
        let body = tracked_closure(
            f,
            Spawn {
                kind: Kind::Thread,
                name: self.name.as_deref(),
                location: Some(Location::caller()),
                handle: None,
            },
        );
        if let Some(name) = self.name {
            builder = builder.name(name);
        }
        // On error the closure, and with it the registration, is dropped.
        // The thread is tracked here, so the thread hook leaves it alone.
        crate::probe::thread_hook::not_hooked(|| builder.spawn(body))
    }
}
