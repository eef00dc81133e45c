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
}

impl Notice {
    fn flag(self) -> &'static AtomicBool {
        static DISABLED: AtomicBool = AtomicBool::new(false);
        static WOKEN: AtomicBool = AtomicBool::new(false);
        match self {
            Notice::Disabled => &DISABLED,
            Notice::WokenTasksNotJudged => &WOKEN,
        }
    }

    fn text(self) -> &'static str {
        match self {
            Notice::Disabled => "leakcheck: LEAKCHECK=off, so no leak checks run in this process",
            Notice::WokenTasksNotJudged => {
                "leakcheck: a guard was checked synchronously inside a current-thread runtime, \
                 so tasks that were woken but could not run were not judged; \
                 use `check_async().await` or `#[leak_check]` for a full check"
            }
        }
    }

    /// Prints the notice unless this process has printed it already.
    pub(crate) fn print_once(self) {
        if !self.flag().swap(true, Ordering::Relaxed) {
            let _ = writeln!(std::io::stderr(), "{}", self.text());
        }
    }
}
