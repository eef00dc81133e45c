//! The OS-thread check: threads that appeared during a scope without going
//! through leakcheck's wrappers, found by listing `/proc/self/task` (Linux).
//!
//! Every thread of the process is visible here, including other tests'
//! threads, so the check is only precise when one test runs at a time. It is
//! on by default exactly then (nextest's process-per-test mode,
//! `--test-threads=1`, `RUST_TEST_THREADS=1`), and otherwise opt-in.

use super::{Alive, Look, Opening, Probe};
use crate::notice::Notice;
use crate::registry::{self, Kind};
use crate::report::UntrackedThread;
use crate::sys::current_tid;
use parking_lot::Mutex;
use std::collections::HashSet;

/// The name of leakcheck's own signal-dump thread, which is never a leak.
pub(crate) const DUMP_THREAD_NAME: &str = "leakcheck-dump";
/// The name of the thread a waiting check resolves backtraces on.
pub(crate) const SYMBOLS_THREAD_NAME: &str = "leakcheck-syms";

/// The threads alive when a guard opened, when the check is on for it.
pub(crate) struct OsThreads {
    baseline: ThreadBaseline,
}

impl Probe for OsThreads {
    fn open(opening: &Opening<'_>) -> Option<Self> {
        if opening.os_threads == Some(true) && !SUPPORTED {
            Notice::OsThreadsUnsupported.print_once();
        }
        let hooked = super::thread_hook::active();
        let on = enabled(opening.os_threads, hooked);
        if !on && !hooked {
            Notice::ThreadsUnchecked.print_once();
        }
        on.then(|| Self {
            baseline: ThreadBaseline::take(),
        })
    }

    fn look(&mut self, _: &Look<'_>, alive: &mut Alive) {
        alive.untracked_threads = self.baseline.new_threads(known_threads);
    }
}

/// Whether the OS-thread check is on for a guard, all sources considered:
/// by default only when one test runs at a time and the thread hook, which
/// sees each thread's creator, does not run.
fn enabled(setting: Option<bool>, hooked: bool) -> bool {
    setting.unwrap_or_else(|| !hooked && one_test_at_a_time()) && SUPPORTED
}

/// Threads that are accounted for elsewhere: every thread with a record
/// (tracked or hooked, in any test's scope), and every thread with a guard
/// open (another test's harness thread, in a parallel run).
fn known_threads() -> HashSet<u32> {
    let mut known: HashSet<u32> = registry::all_records()
        .iter()
        .filter(|r| r.kind == Kind::Thread)
        .filter_map(|r| r.tid.get())
        .collect();
    known.extend(registry::scope::guard_threads());
    known
}

/// Whether `tid` is a thread of a runtime built through
/// [`crate::runtime::instrument`].
pub(crate) fn is_runtime_thread(tid: u32) -> bool {
    RUNTIME_THREADS
        .lock()
        .as_ref()
        .is_some_and(|set| set.contains(&tid))
}

/// True on platforms where threads can be listed.
pub(crate) const SUPPORTED: bool = cfg!(target_os = "linux");

/// Whether this process runs one test at a time.
pub(crate) fn one_test_at_a_time() -> bool {
    if std::env::var_os("NEXTEST_EXECUTION_MODE").is_some_and(|mode| mode == "process-per-test") {
        return true;
    }
    if std::env::var_os("RUST_TEST_THREADS").is_some_and(|n| n == "1") {
        return true;
    }
    let args: Vec<String> = std::env::args().collect();
    args.iter().enumerate().any(|(i, arg)| {
        arg == "--test-threads=1"
            || (arg == "--test-threads" && args.get(i + 1).is_some_and(|n| n == "1"))
    })
}

/// Threads of runtimes built through [`crate::runtime::instrument`], which
/// are the runtime's, not the test's.
static RUNTIME_THREADS: Mutex<Option<HashSet<u32>>> = Mutex::new(None);

pub(crate) fn runtime_thread_started() {
    if let Some(tid) = current_tid() {
        RUNTIME_THREADS
            .lock()
            .get_or_insert_with(HashSet::new)
            .insert(tid);
    }
}

pub(crate) fn runtime_thread_stopped() {
    if let Some(tid) = current_tid() {
        if let Some(set) = RUNTIME_THREADS.lock().as_mut() {
            set.remove(&tid);
        }
    }
}

/// leakcheck's own short-lived threads, which are never a test's.
static OWN_THREADS: Mutex<Option<HashSet<u32>>> = Mutex::new(None);

/// Marks the current thread as leakcheck's own while it is alive. Taken on
/// the thread itself, since only it knows its id; its starter waits for
/// that, so that no look can see the thread before it is marked.
pub(crate) struct OwnThread(Option<u32>);

impl OwnThread {
    pub(crate) fn enter() -> Self {
        let tid = current_tid();
        if let Some(tid) = tid {
            OWN_THREADS
                .lock()
                .get_or_insert_with(HashSet::new)
                .insert(tid);
        }
        Self(tid)
    }
}

impl Drop for OwnThread {
    fn drop(&mut self) {
        if let (Some(tid), Some(set)) = (self.0, OWN_THREADS.lock().as_mut()) {
            set.remove(&tid);
        }
    }
}

/// The threads alive when a guard opened.
pub(crate) struct ThreadBaseline {
    tids: HashSet<u32>,
}

impl ThreadBaseline {
    pub(crate) fn take() -> Self {
        Self {
            tids: list().into_iter().map(|(tid, _)| tid).collect(),
        }
    }

    /// Threads alive now that were not at the baseline, are not tracked, and
    /// do not belong to a runtime or to leakcheck. `tracked` lists the
    /// tracked threads' ids; it is only called when a new thread is seen, so
    /// a clean look does not walk the registry.
    pub(crate) fn new_threads(
        &self,
        tracked: impl FnOnce() -> HashSet<u32>,
    ) -> Vec<UntrackedThread> {
        let runtime = RUNTIME_THREADS.lock().clone().unwrap_or_default();
        let me = current_tid();
        let new: Vec<(u32, String)> = list()
            .into_iter()
            .filter(|(tid, name)| {
                !self.tids.contains(tid)
                    && !runtime.contains(tid)
                    && Some(*tid) != me
                    && !is_runtime_or_tool_thread(name)
            })
            .collect();
        if new.is_empty() {
            return Vec::new();
        }
        let tracked = tracked();
        let own = OWN_THREADS.lock().clone().unwrap_or_default();
        new.into_iter()
            .filter(|(tid, _)| !tracked.contains(tid) && !own.contains(tid))
            .map(|(tid, name)| UntrackedThread::new(tid, name))
            .collect()
    }
}

/// tokio names its threads `tokio-runtime-worker` (before 1.52) or
/// `tokio-rt-worker`, cut by Linux to 15 bytes; blocking-pool threads share
/// the name. Match the stem, not one spelling.
pub(crate) fn is_runtime_or_tool_thread(name: &str) -> bool {
    name.starts_with("tokio-") || name == DUMP_THREAD_NAME || name == SYMBOLS_THREAD_NAME
}

/// Every thread of the process as (tid, name). Threads that end while the
/// list is read are skipped, never an error.
fn list() -> Vec<(u32, String)> {
    #[cfg(target_os = "linux")]
    {
        let Ok(entries) = std::fs::read_dir("/proc/self/task") else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let tid = entry.file_name().to_str()?.parse::<u32>().ok()?;
                let name = std::fs::read_to_string(entry.path().join("comm")).ok()?;
                Some((tid, name.trim_end().to_owned()))
            })
            .collect()
    }
    #[cfg(not(target_os = "linux"))]
    {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_threads_are_recognised_across_tokio_versions() {
        assert!(is_runtime_or_tool_thread("tokio-runtime-w"));
        assert!(is_runtime_or_tool_thread("tokio-rt-worker"));
        assert!(!is_runtime_or_tool_thread("watcher"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_new_untracked_thread_is_found_and_a_joined_one_is_not() {
        let baseline = ThreadBaseline::take();
        let (stop, rx) = std::sync::mpsc::channel::<()>();
        let (ready, started) = std::sync::mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("untracked-x".into())
            .spawn(move || {
                ready.send(()).unwrap();
                let _ = rx.recv();
            })
            .unwrap();
        started.recv().unwrap();
        let found = baseline.new_threads(HashSet::new);
        assert!(found.iter().any(|t| t.name() == "untracked-x"), "{found:?}");
        drop(stop);
        handle.join().unwrap();
        // A joined thread can linger in /proc for a moment while the kernel
        // reaps it; that is what the guard's settle loop absorbs too.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while baseline
            .new_threads(HashSet::new)
            .iter()
            .any(|t| t.name() == "untracked-x")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the joined thread never went away"
            );
            std::thread::yield_now();
        }
    }
}
