//! The leak report: what was still alive, where it was created, and what it
//! was doing.
//!
//! [`LeakReport`] displays as plain text meant for a failing test's output;
//! its [`Straggler`]s carry the same facts as data.

mod group;
mod json;
mod publish;
mod site;
mod straggler;
mod summary;

pub(crate) use group::{by_site, count_by_kind, counted, human, write_group};
pub use json::FORMAT_VERSION;
pub(crate) use publish::publish;
pub use site::Site;
pub(crate) use straggler::resolve_ahead;
pub use straggler::{Detail, Straggler};

pub use crate::capture::{Backtrace, Frame};
pub use crate::registry::{Kind, State};

use std::fmt;
use std::io::Write as _;
use std::time::Duration;

/// The stragglers a failed check found, grouped by creation site when shown.
///
/// Returned by [`LeakGuard::check`](crate::LeakGuard::check) and
/// [`LeakGuard::check_async`](crate::LeakGuard::check_async); the guard's
/// `Drop` panics with its text.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let guard = leakcheck::verify_none();
/// leakcheck::spawn(std::future::pending::<()>()); // nothing can ever wake it
/// let report = guard.check_async().await.unwrap_err();
/// assert_eq!(report.stragglers().len(), 1);
/// assert_eq!(report.stragglers()[0].state(), leakcheck::State::Stuck);
/// let text = report.to_string();
/// assert!(text.contains("1 task spawned at"), "{text}");
/// # }
/// ```
#[derive(Clone)]
pub struct LeakReport(Box<ReportData>);

// Boxed, so that `Result<(), LeakReport>` stays one pointer wide.
#[derive(Clone)]
struct ReportData {
    test: Option<String>,
    stragglers: Vec<Straggler>,
    untracked_tasks: usize,
    untracked_threads: Vec<UntrackedThread>,
    waited: Duration,
    notes: Vec<String>,
    /// Made by the at-exit check, for the whole test binary.
    whole_binary: bool,
}

/// An OS thread that started during a check's scope without going through
/// [`leakcheck::thread`](crate::thread), found by listing the process's
/// threads (Linux only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UntrackedThread {
    tid: u32,
    name: String,
}

impl UntrackedThread {
    pub(crate) fn new(tid: u32, name: String) -> Self {
        Self { tid, name }
    }

    /// The kernel's thread id.
    pub fn tid(&self) -> u32 {
        self.tid
    }

    /// The thread's name as the kernel knows it, cut to 15 bytes.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl LeakReport {
    pub(crate) fn new(test: Option<String>, stragglers: Vec<Straggler>, waited: Duration) -> Self {
        Self(Box::new(ReportData {
            test,
            stragglers,
            untracked_tasks: 0,
            untracked_threads: Vec::new(),
            waited,
            notes: Vec::new(),
            whole_binary: false,
        }))
    }

    /// A report of what the whole test binary left alive at exit.
    pub(crate) fn at_exit(stragglers: Vec<Straggler>, waited: Duration) -> Self {
        let mut report = Self::new(None, stragglers, waited);
        report.0.whole_binary = true;
        report
    }

    pub(crate) fn set_untracked(&mut self, tasks: usize, threads: Vec<UntrackedThread>) {
        self.0.untracked_tasks = tasks;
        self.0.untracked_threads = threads;
    }

    #[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
    pub(crate) fn attach_suspension_points(
        &mut self,
        points: &std::collections::HashMap<tokio::task::Id, String>,
    ) {
        for straggler in &mut self.0.stragglers {
            if let Some(trace) = straggler.task_id().and_then(|id| points.get(&id)) {
                straggler.set_suspended_at(trace);
            }
        }
    }

    pub(crate) fn add_note(&mut self, note: String) {
        self.0.notes.push(note);
    }

    /// Everything that was still alive, ungrouped.
    pub fn stragglers(&self) -> &[Straggler] {
        &self.0.stragglers
    }

    /// How many tasks beyond those alive when the guard opened were still
    /// alive on the guard's runtime without being tracked: spawned with plain
    /// `tokio::spawn`, so only their number is known.
    pub fn untracked_tasks(&self) -> usize {
        self.0.untracked_tasks
    }

    /// OS threads started during the scope without leakcheck's wrappers and
    /// still alive (Linux, when the OS-thread check is on).
    pub fn untracked_threads(&self) -> &[UntrackedThread] {
        &self.0.untracked_threads
    }

    /// The test that leaked: the name of the thread that opened the guard,
    /// which is the test's path under `cargo test` and nextest.
    pub fn test_name(&self) -> Option<&str> {
        self.0.test.as_deref()
    }

    /// How long the check waited for stragglers to finish before giving up.
    pub fn waited(&self) -> Duration {
        self.0.waited
    }

    /// Writes the report's side outputs, as leakcheck does itself whenever it
    /// fails a test (a guard's drop, `#[leak_check]`): the JSON report into
    /// `LEAKCHECK_REPORT_DIR`, one file per test, and one GitHub annotation
    /// per creation site when `GITHUB_ACTIONS=true`. Without those variables
    /// it does nothing. Call it when you handle a report from
    /// [`LeakGuard::check`](crate::LeakGuard::check) yourself and still want
    /// those outputs.
    ///
    /// ```
    /// let guard = leakcheck::verify_none();
    /// if let Err(report) = guard.check() {
    ///     report.publish();
    /// }
    /// ```
    pub fn publish(&self) {
        if let Ok(config) = crate::config::get() {
            publish(self, config);
        }
        summary::record(self);
    }

    /// Fails the test with this report, as leakcheck does itself: publishes
    /// it, then panics with it, or under `LEAKCHECK=warn` prints it to stderr
    /// and returns, so that no test fails because of a leak.
    #[track_caller]
    pub(crate) fn fail_test(self) {
        self.publish();
        if crate::config::get()
            .as_ref()
            .is_ok_and(|config| config.warn)
        {
            let _ = writeln!(
                std::io::stderr(),
                "{self}\nleakcheck: LEAKCHECK=warn, so this leak does not fail the test"
            );
            return;
        }
        panic!("{self}");
    }

    /// How many distinct creation sites the stragglers came from.
    pub fn sites(&self) -> usize {
        by_site(&self.0.stragglers).len()
    }
}

impl fmt::Display for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups = by_site(&self.0.stragglers);
        let who = match (&self.0.test, self.0.whole_binary) {
            (_, true) => "the test binary leaked".to_owned(),
            (Some(test), false) => format!("test `{test}` leaked"),
            (None, false) => "leaked".to_owned(),
        };
        let mut what = Vec::new();
        if !self.0.stragglers.is_empty() {
            what.push(count_by_kind(&self.0.stragglers));
        }
        if self.0.untracked_tasks > 0 {
            what.push(untracked(self.0.untracked_tasks, "task"));
        }
        if !self.0.untracked_threads.is_empty() {
            what.push(untracked(self.0.untracked_threads.len(), "thread"));
        }
        write!(
            f,
            "leakcheck: {who} {}, still alive after waiting {}",
            what.join(" and "),
            human(self.0.waited)
        )?;
        if groups.is_empty() {
            writeln!(f)?;
        } else {
            // Tasks seen only through tokio's hooks were not spawned with a
            // wrapper: say which is which.
            let hooked = self.0.stragglers.iter().filter(|s| s.is_hooked()).count();
            let wrapped = self.0.stragglers.len() - hooked;
            let mut how = Vec::new();
            if wrapped > 0 {
                how.push(format!("{wrapped} tracked"));
            }
            if hooked > 0 {
                how.push(format!("{hooked} spawned without leakcheck's wrappers"));
            }
            writeln!(
                f,
                " ({}, from {} creation site{})",
                how.join(" and "),
                groups.len(),
                if groups.len() == 1 { "" } else { "s" },
            )?;
        }
        for group in &groups {
            writeln!(f)?;
            write_group(f, group, false)?;
        }
        if self.0.untracked_tasks > 0 {
            writeln!(
                f,
                "\n{} still alive on this runtime beyond those alive when the guard opened\n  \
                 spawned with plain `tokio::spawn` (here or in a dependency), so only their number is known.\n  \
                 {}",
                untracked(self.0.untracked_tasks, "task"),
                UNTRACKED_TASKS_HINT,
            )?;
        }
        for thread in &self.0.untracked_threads {
            writeln!(
                f,
                "\nuntracked thread `{}` (tid {}) started during the test and is still alive\n  \
                 spawned without `leakcheck::thread`, so its spawn site is not known; \
                 spawn it with `leakcheck::thread::Builder` to see it.",
                thread.name, thread.tid
            )?;
        }
        for note in &self.0.notes {
            writeln!(f, "\nnote: {note}")?;
        }
        Ok(())
    }
}

/// What to do about counted tasks. It never asks for what is already true:
/// with `tokio_unstable` set, the count means the runtime's hooks were not
/// installed, not that the cfg is missing.
const UNTRACKED_TASKS_HINT: &str = if cfg!(tokio_unstable) {
    "This build has `--cfg tokio_unstable`, but this runtime was not built through \
     `leakcheck::runtime::instrument`, so its task hooks are not installed: a runtime you built \
     yourself (pass its builder to `leakcheck::runtime::instrument`), or one built by a test \
     attribute leakcheck does not instrument (put `#[leak_check]` above `#[tokio::test]`, or use \
     `#[leak_check]` alone). Or spawn the tasks with `leakcheck::spawn`."
} else {
    "To see their spawn sites: run the suite with `cargo leakcheck test` (or build with \
     RUSTFLAGS=\"--cfg tokio_unstable\"), so that `#[leak_check]` runtimes (and runtimes passed \
     to `leakcheck::runtime::instrument`) record every task's spawn site; or spawn them with \
     `leakcheck::spawn`."
};

fn untracked(n: usize, kind: &str) -> String {
    if n == 1 {
        format!("1 untracked {kind}")
    } else {
        format!("{n} untracked {kind}s")
    }
}

// Debug shows the report itself, so that `check().unwrap()` fails readably.
impl fmt::Debug for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for LeakReport {}
