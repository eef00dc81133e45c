//! One-line notices on stderr when a check was skipped or weakened.
//!
//! Each notice is printed at most once per process. They are written to the
//! stderr handle directly, past the test harness's output capture, because a
//! weakened check in a passing test is exactly what would otherwise go
//! unseen.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

/// The ways a check can be skipped or weakened.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Notice {
    /// `LEAKCHECK=off` disabled every check.
    Disabled,
    /// A synchronous check inside a current-thread runtime could not let
    /// woken tasks run, and did not judge them.
    WokenTasksNotJudged,
    /// Guards of unrelated tests shared one runtime, so its count of
    /// untracked tasks could not be blamed on either.
    SharedRuntime,
    /// The OS-thread check was asked for on a platform that cannot list
    /// threads.
    OsThreadsUnsupported,
    /// A thread that process-wide lazy initialisation started was left out
    /// of a test's report.
    ProcessWideThread,
    /// No thread check runs: neither the thread hook nor the `/proc` check.
    ThreadsUnchecked,
    /// The at-exit check was asked for on a platform without `atexit`.
    #[cfg_attr(unix, allow(dead_code))]
    AtExitUnsupported,
}

impl Notice {
    fn flag(self) -> &'static AtomicBool {
        static DISABLED: AtomicBool = AtomicBool::new(false);
        static WOKEN: AtomicBool = AtomicBool::new(false);
        static SHARED: AtomicBool = AtomicBool::new(false);
        static OS_THREADS: AtomicBool = AtomicBool::new(false);
        static AT_EXIT: AtomicBool = AtomicBool::new(false);
        static PROCESS_WIDE: AtomicBool = AtomicBool::new(false);
        static THREADS_UNCHECKED: AtomicBool = AtomicBool::new(false);
        match self {
            Notice::Disabled => &DISABLED,
            Notice::WokenTasksNotJudged => &WOKEN,
            Notice::SharedRuntime => &SHARED,
            Notice::OsThreadsUnsupported => &OS_THREADS,
            Notice::AtExitUnsupported => &AT_EXIT,
            Notice::ProcessWideThread => &PROCESS_WIDE,
            Notice::ThreadsUnchecked => &THREADS_UNCHECKED,
        }
    }

    fn text(self) -> &'static str {
        match self {
            Notice::Disabled => "leakcheck: LEAKCHECK=off, so no leak checks run in this process",
            Notice::WokenTasksNotJudged => {
                "leakcheck: a guard was checked synchronously inside a current-thread runtime, \
                 so tasks that were woken or spawned but could not run, and the runtime's count \
                 of untracked tasks, were not judged; \
                 use `check_async().await` or `#[leak_check]` for a full check"
            }
            Notice::SharedRuntime => {
                "leakcheck: guards of unrelated tests shared one tokio runtime, so its count of \
                 untracked tasks was not checked; give each test its own runtime (`#[leak_check]`, \
                 `#[tokio::test]`) for that check"
            }
            Notice::AtExitUnsupported => {
                "leakcheck: the at-exit check needs Unix (atexit and write(2)); \
                 it is off in this process"
            }
            Notice::ProcessWideThread => {
                "leakcheck: a thread started by one-time initialisation (a `OnceLock`, `LazyLock` or \
                 `Once`, such as a global pool) outlived the test that touched it first; it is \
                 process-wide, not that test's leak, and was left out of the report"
            }
            Notice::ThreadsUnchecked => {
                "leakcheck: plain OS threads are not checked in this process (no thread hook here, \
                 and the /proc check is off while tests run in parallel); only threads spawned \
                 through leakcheck::thread are; see `LEAKCHECK_OS_THREADS`"
            }
            Notice::OsThreadsUnsupported => {
                "leakcheck: the OS-thread check needs Linux (/proc/self/task); \
                 only threads spawned through leakcheck::thread are checked here"
            }
        }
    }

    /// Prints the notice unless this process has printed it already, or the
    /// thread is panicking: the test is failing for its own reason then, and
    /// the notice would only be noise next to its message.
    pub(crate) fn print_once(self) {
        if std::thread::panicking() {
            return;
        }
        if !self.flag().swap(true, Ordering::Relaxed) {
            let _ = writeln!(std::io::stderr(), "{}", self.text());
        }
    }
}
