//! Creation backtraces: captured unresolved at spawn, resolved only when a
//! report needs them.
//!
//! Capturing costs microseconds and resolving costs about a thousand times
//! more, so the spawn path never resolves. In the default `site` mode only the
//! first spawn from each call site in each scope pays for a capture; later
//! spawns from that site share it.
//!
//! The first resolution in a process pays for loading debug info, which in
//! a debug test binary is read by the `backtrace` crate's symbolizer built
//! without optimisation. Two things keep that off a failing test's path:
//! frames in the C library are never looked up in debug info (see
//! [`in_c_runtime`]), and a check that keeps waiting for stragglers starts
//! resolving their backtraces on a helper thread ([`resolve_ahead`]), so the
//! work is done by the time the report is printed. Resolved frames are kept
//! with their capture, and the symbolizer keeps the binary's debug info
//! loaded, for the rest of the process.

use crate::config::{self, BacktraceMode};
use parking_lot::Mutex;
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::Location;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A backtrace as captured at a spawn, resolved on first use.
pub(crate) struct CreationBacktrace {
    inner: Mutex<Resolution>,
}

struct Resolution {
    /// The stack as captured, with the symbols of frames looked up so far.
    captured: Vec<backtrace::BacktraceFrame>,
    /// What reports show, once resolved.
    frames: Option<Arc<[Frame]>>,
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

    /// Frames of std, core, alloc, the test harness, tokio, leakcheck and
    /// the other crates leakcheck's frames run through, told by their source
    /// file, and frames with no symbol are hidden from reports.
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

/// Shortens an absolute path to one relative to the workspace root, the base
/// rustc's `file!()` and `Location::file()` use for the workspace's own
/// crates, so that a report spells every path of one file the same way, as
/// GitHub annotations need. Paths outside the workspace stay absolute.
pub(crate) fn display_path(path: &Path) -> std::borrow::Cow<'_, str> {
    match workspace_root().and_then(|root| path.strip_prefix(root).ok()) {
        Some(relative) => relative.to_string_lossy().into_owned().into(),
        None => path.to_string_lossy(),
    }
}

/// The root of the workspace the tests run in: under `cargo test` the
/// working directory is the package root, and the workspace root is the
/// nearest directory at or above it whose `Cargo.toml` has a `[workspace]`
/// table (the package root itself when there is none).
pub(crate) fn workspace_root() -> Option<&'static Path> {
    static ROOT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let cwd = std::env::current_dir().ok()?;
        let workspace = cwd.ancestors().find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|manifest| declares_workspace(&manifest))
        });
        Some(workspace.unwrap_or(&cwd).to_path_buf())
    })
    .as_deref()
}

/// Whether a manifest has a `[workspace]` table: a line that starts with it,
/// after blanks. Every process with a guard asks this of one or two
/// manifests, in the user's unoptimised test build, so the text is searched
/// with the standard library's substring search, which is compiled
/// optimised, rather than line by line.
fn declares_workspace(manifest: &str) -> bool {
    manifest.match_indices("[workspace]").any(|(at, _)| {
        let line = manifest[..at].rfind('\n').map_or(0, |newline| newline + 1);
        manifest[line..at].trim().is_empty()
    })
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
            inner: Mutex::new(Resolution {
                captured: unresolved(),
                frames: None,
            }),
        }
    }

    /// Whether the function that starts at `entry` was on the stack at the
    /// capture. Compares the start addresses the unwinder noted while walking
    /// the stack, so it resolves no symbol and costs nothing worth noting
    /// (but waits for a resolution under way on another thread).
    pub(crate) fn passed_through(&self, entry: usize) -> bool {
        let inner = self.inner.lock();
        inner
            .captured
            .iter()
            .any(|frame| frame.symbol_address() as usize == entry)
    }

    /// Resolves symbols on first call, then returns the cached frames. A
    /// call made while another thread resolves waits for it.
    pub(crate) fn resolve(&self, shared: bool) -> Backtrace {
        let mut inner = self.inner.lock();
        let Resolution { captured, frames } = &mut *inner;
        let frames = frames.get_or_insert_with(|| resolved_frames(captured).into());
        Backtrace {
            frames: frames.clone(),
            shared,
        }
    }

    /// Whether it still has to be resolved, as far as can be told without
    /// waiting: one being resolved now counts as resolved.
    fn is_unresolved(&self) -> bool {
        self.inner
            .try_lock()
            .is_some_and(|inner| inner.frames.is_none())
    }
}

/// Creation backtraces that a check expects to report, to be resolved on
/// another thread while it waits: see [`resolve_ahead`].
pub(crate) struct ResolveAhead(Vec<Arc<CreationBacktrace>>);

impl ResolveAhead {
    /// Resolves them, keeping the frames with each capture.
    pub(crate) fn run(self) {
        for trace in self.0 {
            trace.resolve(false);
        }
    }
}

/// The creation backtraces among `traces` that are not resolved yet, each
/// once; `None` when there are none.
pub(crate) fn resolve_ahead(traces: impl Iterator<Item = Captured>) -> Option<ResolveAhead> {
    let mut pending: Vec<Arc<CreationBacktrace>> = Vec::new();
    for captured in traces {
        let trace = captured.trace;
        if !pending.iter().any(|t| Arc::ptr_eq(t, &trace)) && trace.is_unresolved() {
            pending.push(trace);
        }
    }
    (!pending.is_empty()).then_some(ResolveAhead(pending))
}

/// Captures the calling stack without resolving it.
///
/// The `backtrace` crate's own capture takes a process-wide lock that
/// symbol resolution holds for as long as it runs: half a second for the
/// first report of a debug test binary. Spawns of other tests would queue
/// behind a report being printed, so where the platform's unwinder is
/// thread-safe, the stack is walked without that lock.
fn unresolved() -> Vec<backtrace::BacktraceFrame> {
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
        frames
    }
    #[cfg(windows)]
    {
        backtrace::Backtrace::new_unresolved().frames().to_vec()
    }
}

/// Resolves `trace` frame by frame. Frames in the C library are left
/// unresolved: see [`in_c_runtime`].
fn resolved_frames(trace: &mut [backtrace::BacktraceFrame]) -> Vec<Frame> {
    // A frame with nothing to show: never the user's.
    const UNKNOWN: Frame = Frame {
        function: None,
        file: None,
        line: None,
        column: None,
        hidden: true,
    };
    let mut frames = Vec::new();
    for frame in trace {
        if in_c_runtime(frame.ip()) {
            frames.push(UNKNOWN);
            continue;
        }
        frame.resolve();
        let symbols = frame.symbols();
        if symbols.is_empty() {
            frames.push(UNKNOWN);
        }
        // Inlined calls appear as several symbols of one frame.
        for symbol in symbols {
            let function = symbol.name().map(|name| format!("{name:#}"));
            let file = symbol.filename();
            let hidden = is_machinery(function.as_deref(), file);
            frames.push(Frame {
                function,
                file: file.map(Path::to_path_buf),
                line: symbol.lineno(),
                column: symbol.colno(),
                hidden,
            });
        }
    }
    frames
}

/// Whether `ip` is in the C library or the dynamic loader: the thread and
/// process entry points (`start_thread`, `clone3`, `__libc_start_main`)
/// that end every backtrace, and never the code under test.
///
/// Their frames are hidden whatever they resolve to, and resolving them is
/// the dearest part of a first report where the C library's detached debug
/// info is installed (`libc6-dbg`: zlib-compressed sections that the
/// symbolizer inflates whole, half a second in a debug build). Which object
/// an address is in comes from the loader's own list, without debug info.
fn in_c_runtime(ip: *mut std::ffi::c_void) -> bool {
    #[cfg(all(unix, not(target_vendor = "apple")))]
    {
        // SAFETY: `dladdr` only reads the loader's list of loaded objects;
        // any address may be passed, and `info` is a valid place for the
        // answer, read only when the call reports success.
        let object = unsafe {
            let mut info: libc::Dl_info = std::mem::zeroed();
            if libc::dladdr(ip.cast_const(), &mut info) == 0 || info.dli_fname.is_null() {
                return false;
            }
            std::ffi::CStr::from_ptr(info.dli_fname)
        };
        let name = object.to_bytes();
        let base = name.rsplit(|b| *b == b'/').next().unwrap_or(name);
        const C_RUNTIME: &[&[u8]] = &[
            b"libc.so",
            b"libc-",
            b"libc.musl-",
            b"ld-linux",
            b"ld-musl-",
            b"libpthread.so",
            b"libpthread-",
            b"libdl.so",
        ];
        C_RUNTIME.iter().any(|prefix| base.starts_with(prefix))
    }
    #[cfg(not(all(unix, not(target_vendor = "apple"))))]
    {
        let _ = ip;
        false
    }
}

/// Frames that belong to the runtime, the standard library, leakcheck or the
/// test harness rather than to the code under test, told apart by what they
/// are rather than by how their names start: a user's crate may be called
/// `test` (`tests/test.rs`), `tokio_app` or `std_ext`, and with
/// `debug = "line-tables-only"` names are not qualified at all.
///
/// - no symbol: hidden;
/// - the C library's thread and process entry points (`start_thread`,
///   `clone3`, `__libc_start_main`…), by exact name, when their file, if
///   any, is not Rust source (glibc's debug info names `./nptl/...c` files);
/// - a source file: hidden when it is the standard library's or libtest's,
///   leakcheck's own, or that of a crate leakcheck's frames run through
///   (tokio, backtrace, parking_lot…) as cargo unpacks it from a registry;
/// - no file (code built without debug info): the name decides, matched on
///   whole leading path segments (`test::run_test`, not `test_utils::run`).
fn is_machinery(function: Option<&str>, file: Option<&Path>) -> bool {
    const C_ENTRY_POINTS: &[&str] = &[
        "_start",
        "__libc_start_main",
        "__libc_start_call_main",
        "start_thread",
        "clone",
        "clone3",
        "__clone",
    ];
    let Some(function) = function else {
        return true;
    };
    let rust_source = file.is_some_and(|f| f.extension().is_some_and(|e| e == "rs"));
    if !rust_source && C_ENTRY_POINTS.contains(&function) {
        return true;
    }
    match file {
        Some(file) => is_machinery_file(file),
        None => is_machinery_name(function),
    }
}

/// Registry directories (`<name>-<version>`) of the crates between the user's
/// code and a spawn or a capture, with the major version that leakcheck uses,
/// so `tokio-util-0.7.16` or a user's `tokio_app-0.1.0` never match.
const MACHINERY_CRATES: &[&str] = &[
    "tokio-1.",
    "tokio-metrics-0.",
    "backtrace-0.",
    "parking_lot-0.",
    "parking_lot_core-0.",
    "lock_api-0.",
];

fn is_machinery_file(file: &Path) -> bool {
    // leakcheck's own sources; its tests and examples are user code.
    if file.starts_with(concat!(env!("CARGO_MANIFEST_DIR"), "/src")) {
        return true;
    }
    let parts: Vec<&str> = file
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(part) => part.to_str(),
            _ => None,
        })
        .collect();
    // The standard library and libtest: `/rustc/<commit>/library/...` as
    // rustup's builds record them, or the rust-src component's copy under the
    // sysroot, `.../lib/rustlib/src/rust/library/...`.
    let std = parts.windows(3).any(|w| {
        w[0] == "rustc"
            && w[1].len() >= 7
            && w[1].bytes().all(|b| b.is_ascii_hexdigit())
            && w[2] == "library"
    }) || parts
        .windows(5)
        .any(|w| w == ["lib", "rustlib", "src", "rust", "library"]);
    // `.../registry/src/<index>/<name>-<version>/...`
    let machinery_crate = parts.windows(4).any(|w| {
        w[0] == "registry" && w[1] == "src" && MACHINERY_CRATES.iter().any(|c| w[3].starts_with(c))
    });
    std || machinery_crate
}

/// The fallback for frames with no file: the crates leakcheck's frames run
/// through, by whole leading path segment, and the symbols std and rustc
/// generate around `main`.
fn is_machinery_name(function: &str) -> bool {
    const CRATES: &[&str] = &[
        "std",
        "core",
        "alloc",
        "test",
        "tokio",
        "tokio_metrics",
        "leakcheck",
        "backtrace",
        "parking_lot",
        "parking_lot_core",
        "lock_api",
    ];
    // Trait impls and shims are printed `<Type as Trait>::method`.
    let path = function.trim_start_matches(['<', '&']);
    let first = path.split("::").next().unwrap_or(path);
    (path.contains("::") && CRATES.contains(&first))
        || function == "main"
        // std's own symbols: `__rust_begin_short_backtrace`, `__rust_try`…
        || function.starts_with("__rust")
        || function == "rust_begin_unwind"
}

/// Per-scope memory of which call sites already have a backtrace, keyed by
/// the address of the call site's `Location`: one static per call site.
pub(crate) struct SiteSamples {
    by_site: Mutex<HashMap<usize, Arc<CreationBacktrace>, BuildHasherDefault<AddressHasher>>>,
    /// Unique for the process's lifetime, unlike an address, so a thread's
    /// cache of the last site it found here can never match another scope's.
    serial: u64,
}

impl Default for SiteSamples {
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self {
            by_site: Mutex::default(),
            serial: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }
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
pub(crate) fn capture_one() -> Arc<CreationBacktrace> {
    Arc::new(CreationBacktrace::capture())
}

impl SiteSamples {
    /// Captures a backtrace for a spawn at `location` in the scope these
    /// samples belong to, as the configured mode asks. Returns the record's
    /// own trace; `None` also when the site's sample serves it, which
    /// [`SiteSamples::sample`] finds again for the report.
    pub(crate) fn capture(
        &self,
        location: &'static Location<'static>,
    ) -> Option<Arc<CreationBacktrace>> {
        match config::backtrace_mode() {
            BacktraceMode::Off => None,
            BacktraceMode::Full => Some(Arc::new(CreationBacktrace::capture())),
            BacktraceMode::Site => {
                // A loop spawning from one line into one scope, the common
                // case, then takes no lock and shares no reference count
                // with other threads spawning into the same scope.
                thread_local! {
                    static LAST_FOUND: Cell<(u64, usize)> = const { Cell::new((0, 0)) };
                }
                let site = location as *const Location<'static> as usize;
                let key = (self.serial, site);
                if LAST_FOUND
                    .try_with(|last| last.get() == key)
                    .unwrap_or(false)
                {
                    return None;
                }
                if self.by_site.lock().contains_key(&site) {
                    let _ = LAST_FOUND.try_with(|last| last.set(key));
                    return None;
                }
                // Capture outside the lock: it takes microseconds.
                let trace = Arc::new(CreationBacktrace::capture());
                self.by_site
                    .lock()
                    .entry(site)
                    .or_insert_with(|| trace.clone());
                Some(trace)
            }
        }
    }

    /// The sample kept for spawns at `location`, if one was taken.
    pub(crate) fn sample(
        &self,
        location: &'static Location<'static>,
    ) -> Option<Arc<CreationBacktrace>> {
        if config::backtrace_mode() != BacktraceMode::Site {
            return None;
        }
        let site = location as *const Location<'static> as usize;
        self.by_site.lock().get(&site).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::{
        declares_workspace, in_c_runtime, is_machinery, resolve_ahead, Captured, CreationBacktrace,
    };
    use std::path::Path;
    use std::sync::Arc;

    #[test]
    fn a_workspace_is_a_line_that_starts_with_its_table() {
        assert!(declares_workspace("[workspace]\nmembers = []\n"));
        assert!(declares_workspace(
            "[package]\nname = \"a\"\n\n  [workspace]\n"
        ));
        assert!(!declares_workspace("[package]\nname = \"a\"\n"));
        // Only its sub-tables, a comment, or a value that mentions it.
        assert!(!declares_workspace(
            "[workspace.package]\nversion = \"1\"\n"
        ));
        assert!(!declares_workspace("# [workspace]\n[package]\n"));
        assert!(!declares_workspace(
            "description = \"no [workspace] here\"\n"
        ));
        assert!(declares_workspace("# [workspace]\n[workspace]\n"));
    }

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn the_c_library_is_told_from_the_binary_without_debug_info() {
        let in_libc = libc::getpid as unsafe extern "C" fn() -> libc::pid_t;
        assert!(in_c_runtime(in_libc as *mut _));
        let ours = the_c_library_is_told_from_the_binary_without_debug_info as fn();
        assert!(!in_c_runtime(ours as *mut _));
    }

    #[inline(never)]
    fn capture_here() -> Captured {
        Captured {
            trace: Arc::new(CreationBacktrace::capture()),
            shared: false,
        }
    }

    #[test]
    fn resolving_ahead_takes_each_unresolved_trace_once_and_keeps_its_frames() {
        let first = capture_here();
        let shared = Captured {
            trace: first.trace.clone(),
            shared: true,
        };
        let done = capture_here();
        let kept = done.trace.resolve(false);
        let pending =
            resolve_ahead([&first, &shared, &done].into_iter().cloned()).expect("one to resolve");
        assert_eq!(pending.0.len(), 1);
        std::thread::spawn(move || pending.run()).join().unwrap();
        assert!(!first.trace.is_unresolved());
        assert!(resolve_ahead([&first, &done].into_iter().cloned()).is_none());
        // The frames resolved on the other thread are the ones a report gets
        // (hidden here: this is leakcheck's own source).
        let trace = first.trace.resolve(false);
        let names: Vec<_> = trace
            .all_frames()
            .iter()
            .filter_map(|f| f.function())
            .collect();
        assert!(
            names.iter().any(|n| n.ends_with("capture_here")),
            "{names:?}"
        );
        // No frame of the C library is shown, or looked up in debug info.
        assert!(trace.all_frames().last().is_some_and(|f| f.is_hidden()));
        assert_eq!(kept, done.trace.resolve(false));
    }

    fn hidden(function: &str, file: Option<&str>) -> bool {
        is_machinery(Some(function), file.map(Path::new))
    }

    const STD: &str =
        "/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/thread/mod.rs";
    const REGISTRY: &str = "/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f";

    #[test]
    fn frames_are_hidden_by_their_source_file() {
        let own = concat!(env!("CARGO_MANIFEST_DIR"), "/src/thread.rs");
        for (function, file) in [
            ("std::thread::Builder::spawn_unchecked_", STD.to_string()),
            // Unqualified, as `debug = "line-tables-only"` names them.
            ("spawn_unchecked_", STD.to_string()),
            (
                "run_test",
                "/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/test/src/lib.rs".into(),
            ),
            (
                "call_once",
                "/opt/rust/lib/rustlib/src/rust/library/core/src/ops/function.rs".into(),
            ),
            ("spawn", own.to_string()),
            (
                "poll",
                format!("{REGISTRY}/tokio-1.54.1/src/runtime/task/core.rs"),
            ),
            (
                "new_unresolved",
                format!("{REGISTRY}/backtrace-0.3.77/src/capture.rs"),
            ),
            (
                "lock",
                format!("{REGISTRY}/parking_lot-0.12.5/src/mutex.rs"),
            ),
            (
                "lock_slow",
                format!("{REGISTRY}/lock_api-0.4.14/src/mutex.rs"),
            ),
            // The C library's entry points, from glibc's own debug info.
            ("start_thread", "./nptl/pthread_create.c".into()),
            (
                "clone3",
                "./misc/../sysdeps/unix/sysv/linux/x86_64/clone3.S".into(),
            ),
        ] {
            assert!(hidden(function, Some(&file)), "{function} at {file}");
        }
        for (function, file) in [
            // A crate named `test` (tests/test.rs): its frames are the user's.
            ("test::spawn_helper", "/work/app/tests/test.rs".to_string()),
            (
                "tokio_app::spawn_helper",
                "/work/tokio_app/src/lib.rs".into(),
            ),
            ("std_ext::spawn_helper", "/work/std_ext/src/lib.rs".into()),
            (
                "core_utils::spawn_helper",
                "/work/core_utils/src/lib.rs".into(),
            ),
            ("spawn_helper", "/work/app/src/lib.rs".into()),
            // leakcheck's own tests and examples are user code.
            (
                "spawn_helper",
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/mod.rs").into(),
            ),
            // Other registry crates are not machinery, nor tokio's siblings.
            ("serve", format!("{REGISTRY}/hyper-1.6.0/src/server.rs")),
            (
                "spawn",
                format!("{REGISTRY}/tokio-util-0.7.16/src/task/mod.rs"),
            ),
            ("run", format!("{REGISTRY}/tokio_app-1.0.0/src/lib.rs")),
            // A user's own checkout that happens to sit under a `library` folder.
            ("run", "/home/u/library/tokio-1.0/src/lib.rs".into()),
            // A user's function that happens to share a C entry point's name.
            ("start_thread", "/work/app/src/pool.rs".into()),
            ("main", "/work/app/src/main.rs".into()),
        ] {
            assert!(!hidden(function, Some(&file)), "{function} at {file}");
        }
    }

    #[test]
    fn frames_with_no_symbol_are_hidden() {
        assert!(is_machinery(None, None));
        assert!(is_machinery(None, Some(Path::new("/work/app/src/lib.rs"))));
    }

    #[test]
    fn frames_with_no_file_fall_back_to_whole_leading_segments() {
        for function in [
            "std::thread::Builder::spawn_unchecked_",
            "<alloc::boxed::Box<F,A> as core::ops::function::FnOnce<Args>>::call_once",
            "tokio::runtime::task::core::Core<T,S>::poll",
            "<leakcheck::task::tracked::Tracked<F> as core::future::future::Future>::poll",
            "leakcheck::thread::Builder::spawn",
            "test::run_test",
            "parking_lot::raw_mutex::RawMutex::lock_slow",
            "__rust_begin_short_backtrace",
            "__libc_start_main",
            "start_thread",
            "clone3",
            "main",
        ] {
            assert!(hidden(function, None), "{function}");
        }
        for function in [
            "patterns::spawn_helper",
            "patterns::leaky::{{closure}}",
            "my_crate::server::run",
            "tokio_app::spawn_helper",
            "std_ext::spawn_helper",
            "core_utils::spawn_helper",
            "test_utils::spawn_helper",
            "tokio_util::task::spawn",
            "parking_lot_ext::lock",
            "<tokio_app::Server as core::ops::drop::Drop>::drop",
            "spawn_helper",
        ] {
            assert!(!hidden(function, None), "{function}");
        }
    }
}
