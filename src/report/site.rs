//! [`Site`]: where a straggler was spawned.

use std::borrow::Cow;
use std::fmt;
use std::panic::Location;

/// The line that spawned a task or thread: a file, line and column, shown
/// as `file:line:col`.
///
/// For work spawned through a wrapper or seen through tokio's task hooks it
/// is the caller's `#[track_caller]` location. For a plain thread seen
/// through the thread hook it is the first frame of the creation backtrace
/// that is the user's, not std's or leakcheck's.
///
/// ```
/// let guard = leakcheck::Options::new().settle(std::time::Duration::ZERO).verify_none();
/// let (keep_alive, rx) = std::sync::mpsc::channel::<()>();
/// let worker = leakcheck::thread::spawn(move || { let _ = rx.recv(); });
/// let report = guard.check().unwrap_err();
/// let site = report.stragglers()[0].location();
/// assert_eq!(site.line(), line!() - 3);
/// assert!(site.to_string().starts_with(file!()));
/// # drop(keep_alive); worker.join().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Site {
    file: Cow<'static, str>,
    line: u32,
    column: u32,
}

impl Site {
    pub(crate) fn new(file: impl Into<Cow<'static, str>>, line: u32, column: u32) -> Self {
        Self {
            file: file.into(),
            line,
            column,
        }
    }

    /// What a site is when nothing better is known: a creation backtrace
    /// that was not captured or shows none of the user's frames.
    pub(crate) fn unknown() -> Self {
        Self::new("<unknown>", 0, 0)
    }

    /// The source file, as the compiler or the debug info names it.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The line in [`Site::file`], from 1; 0 when unknown.
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The column in [`Site::file`], from 1; 0 when unknown.
    pub fn column(&self) -> u32 {
        self.column
    }
}

impl From<&'static Location<'static>> for Site {
    fn from(location: &'static Location<'static>) -> Self {
        Self::new(location.file(), location.line(), location.column())
    }
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}
