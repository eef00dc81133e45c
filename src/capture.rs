//! Creation backtraces: captured unresolved at spawn, resolved only when a
//! report is printed.
//!
//! Capturing costs microseconds and resolving costs about a thousand times
//! more, so the spawn path never resolves. In the default `site` mode only the
//! first spawn from each call site in each scope pays for a capture; later
//! spawns from that site share it.

use crate::config::{self, BacktraceMode};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::Location;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A backtrace as captured at a spawn, resolved on first use.
pub(crate) struct CreationBacktrace {
    inner: Mutex<(backtrace::Backtrace, Option<Arc<[Frame]>>)>,
}

/// A creation backtrace attached to a record.
#[derive(Clone)]
pub(crate) struct Captured {
    pub(crate) trace: Arc<CreationBacktrace>,
    /// True when the trace was taken at an earlier spawn from the same site.
    pub(crate) shared: bool,
}

/// One frame of a resolved creation backtrace.
///
/// ```
/// # use leakcheck::Options;
/// let guard = Options::new().settle(std::time::Duration::ZERO).verify_none();
/// let (_keep, rx) = std::sync::mpsc::channel::<()>();
/// let worker = leakcheck::thread::spawn(move || { let _ = rx.recv(); });
/// let report = guard.check().unwrap_err();
/// let trace = report.stragglers()[0].backtrace().expect("captured by default");
/// // The doctest's own frame is there; std's and leakcheck's are hidden.
/// assert!(trace.frames().iter().all(|f| !f.function().unwrap_or("").starts_with("std::")));
/// # drop(_keep); worker.join().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    function: Option<String>,
    file: Option<PathBuf>,
    line: Option<u32>,
    column: Option<u32>,
    hidden: bool,
}

impl Frame {
    /// The demangled function name, without its hash.
    pub fn function(&self) -> Option<&str> {
        self.function.as_deref()
    }

    /// The source file, as recorded in debug info.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The line in [`Frame::file`].
    pub fn line(&self) -> Option<u32> {
        self.line
    }

    /// The column in [`Frame::file`].
    pub fn column(&self) -> Option<u32> {
        self.column
    }

    /// Frames of std, core, alloc, tokio, leakcheck, the test harness, and
    /// frames with no symbol are hidden from reports.
    pub(crate) fn is_hidden(&self) -> bool {
        self.hidden
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.function.as_deref().unwrap_or("<unknown>"))?;
        if let Some(file) = &self.file {
            write!(f, "\n    at {}", display_path(file))?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
                if let Some(column) = self.column {
                    write!(f, ":{column}")?;
                }
            }
        }
        Ok(())
    }
}

/// Shortens an absolute path to one relative to the working directory, which
/// is the package root under `cargo test`.
pub(crate) fn display_path(path: &Path) -> std::borrow::Cow<'_, str> {
    if let Ok(cwd) = std::env::current_dir() {
        if let Ok(relative) = path.strip_prefix(&cwd) {
            return relative.to_string_lossy().into_owned().into();
        }
    }
    path.to_string_lossy()
}

/// A resolved creation backtrace, with the frames that matter to the user.
///
/// Returned by [`Straggler::backtrace`](crate::Straggler::backtrace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backtrace {
    frames: Arc<[Frame]>,
    shared: bool,
}

impl Backtrace {
    /// The frames from the user's code, innermost first: std, core, tokio,
    /// leakcheck and test-harness frames are left out.
    pub fn frames(&self) -> Vec<&Frame> {
        self.frames.iter().filter(|f| !f.is_hidden()).collect()
    }

    /// How many frames [`Backtrace::frames`] leaves out.
    pub fn hidden_frames(&self) -> usize {
        self.frames.iter().filter(|f| f.is_hidden()).count()
    }

    /// Every frame, hidden ones included.
    pub fn all_frames(&self) -> &[Frame] {
        &self.frames
    }

    /// True when this backtrace was captured at an earlier spawn from the same
    /// line in the same scope, and shared to keep spawning cheap
    /// (`LEAKCHECK_BACKTRACE=site`, the default).
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Whether any frame's function name contains `pattern`.
    pub(crate) fn mentions(&self, pattern: &str) -> bool {
        self.frames
            .iter()
            .any(|f| f.function.as_deref().is_some_and(|n| n.contains(pattern)))
    }
}

impl fmt::Display for Backtrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for frame in self.frames() {
            writeln!(f, "{frame}")?;
        }
        write!(
            f,
            "({} frames from std, tokio, leakcheck and the test harness hidden)",
            self.hidden_frames()
        )
    }
}

impl CreationBacktrace {
    fn capture() -> Self {
        Self {
            inner: Mutex::new((unresolved(), None)),
        }
    }

    /// Resolves symbols on first call, then returns the cached frames.
    pub(crate) fn resolve(&self, shared: bool) -> Backtrace {
        let mut inner = self.inner.lock();
        let (trace, frames) = &mut *inner;
        let frames = frames.get_or_insert_with(|| {
            trace.resolve();
            resolved_frames(trace).into()
        });
        Backtrace {
            frames: frames.clone(),
            shared,
        }
    }
}

/// Captures the calling stack without resolving it.
///
/// The `backtrace` crate's own capture takes a process-wide lock that
/// symbol resolution holds for as long as it runs: half a second for the
/// first report of a debug test binary. Spawns of other tests would queue
/// behind a report being printed, so where the platform's unwinder is
/// thread-safe, the stack is walked without that lock.
fn unresolved() -> backtrace::Backtrace {
    #[cfg(not(windows))]
    {
        let mut frames = Vec::with_capacity(32);
        // SAFETY: the lock only serialises platforms whose unwinder is not
        // thread-safe (Windows' dbghelp). Elsewhere the unwinder may run on
        // several threads at once, and beside symbol resolution, which reads
        // debug info and never the stacks being walked.
        unsafe {
            backtrace::trace_unsynchronized(|frame| {
                frames.push(backtrace::BacktraceFrame::from(frame.clone()));
                true
            });
        }
        backtrace::Backtrace::from(frames)
    }
    #[cfg(windows)]
    {
        backtrace::Backtrace::new_unresolved()
    }
}

fn resolved_frames(trace: &backtrace::Backtrace) -> Vec<Frame> {
    let mut frames = Vec::new();
    for frame in trace.frames() {
        let symbols = frame.symbols();
        if symbols.is_empty() {
            frames.push(Frame {
                function: None,
                file: None,
                line: None,
                column: None,
                hidden: true,
            });
        }
        // Inlined calls appear as several symbols of one frame.
        for symbol in symbols {
            let function = symbol.name().map(|name| format!("{name:#}"));
            let hidden = function.as_deref().is_none_or(is_machinery);
            frames.push(Frame {
                function,
                file: symbol.filename().map(Path::to_path_buf),
                line: symbol.lineno(),
                column: symbol.colno(),
                hidden,
            });
        }
    }
    frames
}

/// Frames that belong to the runtime, the standard library, leakcheck or the
/// test harness rather than to the code under test.
fn is_machinery(function: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "std::",
        "core::",
        "alloc::",
        "tokio::",
        "leakcheck::",
        "backtrace::",
        "test::",
        "parking_lot",
        "__rust",
        "pthread_create",
        "rust_begin_unwind",
        "_start",
        "__libc_start",
        "start_thread",
        "clone",
        "__clone",
    ];
    // Trait impls and shims are printed `<Type as Trait>::method`.
    let path = function.strip_prefix('<').unwrap_or(function);
    PREFIXES.iter().any(|prefix| path.starts_with(prefix))
        || function == "main"
        || function.contains(" as core::ops::function::Fn")
}

/// Per-scope memory of which call sites already have a backtrace, keyed by
/// the address of the call site's `Location`: one static per call site.
#[derive(Default)]
pub(crate) struct SiteSamples {
    by_site: Mutex<HashMap<usize, Arc<CreationBacktrace>, BuildHasherDefault<AddressHasher>>>,
}

/// A hasher for addresses: one multiply. The default SipHash over a whole
/// `Location` (file name included) was the dearest step of a spawn.
#[derive(Default)]
pub(crate) struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_usize(&mut self, n: usize) {
        // Fibonacci hashing; the low bits of an address are mostly zero.
        self.0 = (n as u64)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }
}

/// Captures one backtrace, unshared, whatever the mode: for work whose
/// backtrace is the only record of where it came from.
pub(crate) fn capture_one() -> Captured {
    Captured {
        trace: Arc::new(CreationBacktrace::capture()),
        shared: false,
    }
}

impl SiteSamples {
    /// Captures a backtrace for a spawn at `location` in the scope these
    /// samples belong to, as the configured mode asks.
    pub(crate) fn capture(&self, location: &'static Location<'static>) -> Option<Captured> {
        match config::backtrace_mode() {
            BacktraceMode::Off => None,
            BacktraceMode::Full => Some(Captured {
                trace: Arc::new(CreationBacktrace::capture()),
                shared: false,
            }),
            BacktraceMode::Site => {
                let site = location as *const Location<'static> as usize;
                if let Some(trace) = self.by_site.lock().get(&site) {
                    return Some(Captured {
                        trace: trace.clone(),
                        shared: true,
                    });
                }
                // Capture outside the lock: it takes microseconds.
                let trace = Arc::new(CreationBacktrace::capture());
                self.by_site
                    .lock()
                    .entry(site)
                    .or_insert_with(|| trace.clone());
                Some(Captured {
                    trace,
                    shared: false,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_machinery;

    #[test]
    fn machinery_frames_are_recognised() {
        for hidden in [
            "std::thread::Builder::spawn_unchecked_",
            "<alloc::boxed::Box<F,A> as core::ops::function::FnOnce<Args>>::call_once",
            "tokio::runtime::task::core::Core<T,S>::poll",
            "<leakcheck::task::tracked::Tracked<F> as core::future::future::Future>::poll",
            "leakcheck::thread::Builder::spawn",
            "test::run_test",
            "__rust_begin_short_backtrace",
        ] {
            assert!(is_machinery(hidden), "{hidden}");
        }
        for shown in [
            "patterns::spawn_helper",
            "patterns::leaky::{{closure}}",
            "my_crate::server::run",
        ] {
            assert!(!is_machinery(shown), "{shown}");
        }
    }
}
