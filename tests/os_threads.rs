//! The OS-thread check (Linux): threads started during a scope without
//! `leakcheck::thread`, found by listing `/proc/self/task`.
//!
//! That list holds every thread of the process, and the tests of this binary
//! run in parallel: while one test checks, another test's thread may be
//! alive, and its check then fails with that thread in the report. So each
//! test gives its threads names of its own (or learns their tids), and
//! asserts only on those: that its thread is, or is not, in the report,
//! whether or not the check failed for another test's thread. Leaky
//! assertions hold whatever else runs; clean ones only ever look for
//! their own threads in a failed check.
//!
//! The default rule (on only when one test runs at a time) is tested in a
//! child process: this binary, run again with one test selected and the
//! options under test.
//!
//! The `/proc` check is what runs where the thread hook does not, so this
//! binary turns the hook off before `main` (`LEAKCHECK_THREAD_HOOK=off`,
//! unless the environment says otherwise), and its children inherit that.
#![cfg(target_os = "linux")]

ctor::declarative::ctor! {
    // SAFETY: runs before `main`, while the process has one thread, so
    // nothing reads the environment while it is written.
    #[ctor(unsafe)]
    fn without_the_thread_hook() {
        if std::env::var_os("LEAKCHECK_THREAD_HOOK").is_none() {
            std::env::set_var("LEAKCHECK_THREAD_HOOK", "off");
        }
    }
}

use leakcheck::{Kind, LeakReport, Options, UntrackedThread};
use std::collections::BTreeSet;
use std::process::Command;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The settle budget of checks expected to find a live thread: a thread is
/// never proven stuck, so such a check waits it out.
const SETTLE: Duration = Duration::from_millis(50);

/// The calling thread's kernel id, from `/proc/thread-self`
/// (`<pid>/task/<tid>`).
fn current_tid() -> u32 {
    let link = std::fs::read_link("/proc/thread-self").expect("Linux has /proc/thread-self");
    link.file_name()
        .and_then(|tid| tid.to_str())
        .and_then(|tid| tid.parse().ok())
        .unwrap_or_else(|| panic!("unexpected /proc/thread-self: {link:?}"))
}

/// A plain `std::thread` blocked on a channel until stopped.
struct Parked {
    tid: u32,
    stop: mpsc::Sender<()>,
    handle: JoinHandle<()>,
}

impl Parked {
    /// Spawns the thread with `std::thread::Builder`, and returns once it
    /// runs its own code. Until then Linux may show it under its creator's
    /// name, because std names a thread from inside it.
    fn spawn(name: Option<&str>) -> Parked {
        let (stop, stopped) = mpsc::channel::<()>();
        let (ready, started) = mpsc::channel();
        let mut builder = std::thread::Builder::new();
        if let Some(name) = name {
            assert!(name.len() <= 15, "Linux keeps 15 bytes of a name");
            builder = builder.name(name.to_owned());
        }
        let handle = builder
            .spawn(move || {
                ready.send(current_tid()).unwrap();
                let _ = stopped.recv();
            })
            .expect("spawn a thread");
        let tid = started.recv().expect("the thread starts");
        Parked { tid, stop, handle }
    }

    /// Tells the thread to return, without waiting for it.
    fn release(self) -> JoinHandle<()> {
        drop(self.stop);
        self.handle
    }

    /// Tells the thread to return, and joins it.
    fn stop(self) {
        self.release().join().expect("the thread returns");
    }
}

/// The untracked threads of a check's outcome: none when it passed.
fn untracked(outcome: Result<(), LeakReport>) -> (Vec<UntrackedThread>, String) {
    match outcome {
        Ok(()) => (Vec::new(), String::new()),
        Err(report) => (report.untracked_threads().to_vec(), report.to_string()),
    }
}

#[test]
fn an_untracked_thread_that_stays_alive_is_reported_by_name() {
    let guard = Options::new().settle(SETTLE).os_threads(true).verify_none();
    let thread = Parked::spawn(Some("lc-os-alive"));

    let report = guard.check().expect_err("the thread is alive");
    let text = report.to_string();
    let mine: Vec<_> = report
        .untracked_threads()
        .iter()
        .filter(|t| t.name() == "lc-os-alive")
        .collect();
    assert_eq!(mine.len(), 1, "{text}");
    assert_eq!(mine[0].tid(), thread.tid, "{text}");
    let shown = format!("untracked thread `lc-os-alive` (tid {})", thread.tid);
    assert!(text.contains(&shown), "no {shown:?} in:\n{text}");
    assert!(
        text.contains("spawn it with `leakcheck::thread::Builder`"),
        "{text}"
    );
    // Not tracked: no spawn site, no straggler.
    assert!(report.stragglers().is_empty(), "{text}");

    thread.stop();
}

/// An unnamed std thread keeps its creator's name, cut to 15 bytes: here a
/// prefix of this test's name. It is still found, by its tid.
#[test]
fn an_unnamed_untracked_thread_is_reported_by_tid() {
    let guard = Options::new().settle(SETTLE).os_threads(true).verify_none();
    let thread = Parked::spawn(None);

    let report = guard.check().expect_err("the thread is alive");
    let text = report.to_string();
    let mine: Vec<_> = report
        .untracked_threads()
        .iter()
        .filter(|t| t.tid() == thread.tid)
        .collect();
    assert_eq!(mine.len(), 1, "{text}");
    let creator = "an_unnamed_untracked_thread_is_reported_by_tid";
    assert_eq!(mine[0].name(), &creator[..15], "{text}");

    thread.stop();
}

#[test]
fn a_joined_thread_is_clean() {
    let guard = Options::new().os_threads(true).verify_none();
    let thread = Parked::spawn(Some("lc-os-joined"));
    let tid = thread.tid;
    thread.stop();

    // Another test's live thread can fail this check; ours must not be in
    // it. A joined thread may linger in /proc for a moment, which the
    // check's settle absorbs.
    let (threads, text) = untracked(guard.check());
    assert!(
        !threads
            .iter()
            .any(|t| t.tid() == tid || t.name() == "lc-os-joined"),
        "{text}"
    );
}

/// A thread told to stop but not joined is on its way out: the check waits
/// for it to disappear instead of reporting it.
#[test]
fn a_thread_on_its_way_out_is_settled() {
    let guard = Options::new()
        .settle(Duration::from_secs(10))
        .os_threads(true)
        .verify_none();
    let thread = Parked::spawn(Some("lc-os-leaving"));
    let tid = thread.tid;
    let handle = thread.release();

    let (threads, text) = untracked(guard.check());
    assert!(!threads.iter().any(|t| t.tid() == tid), "{text}");
    handle.join().unwrap();
}

/// The same in async code: `check_async` settles threads too.
#[tokio::test]
async fn check_async_settles_a_thread_on_its_way_out() {
    let guard = Options::new()
        .settle(Duration::from_secs(10))
        .os_threads(true)
        .verify_none();
    let thread = Parked::spawn(Some("lc-os-leaving2"));
    let tid = thread.tid;
    let handle = thread.release();

    let (threads, text) = untracked(guard.check_async().await);
    assert!(!threads.iter().any(|t| t.tid() == tid), "{text}");
    handle.join().unwrap();
}

#[test]
fn a_thread_started_before_the_guard_is_not_reported() {
    let thread = Parked::spawn(Some("lc-os-before"));
    let guard = Options::new().settle(SETTLE).os_threads(true).verify_none();

    let (threads, text) = untracked(guard.check());
    assert!(!threads.iter().any(|t| t.tid() == thread.tid), "{text}");
    thread.stop();
}

#[test]
fn os_threads_false_turns_the_check_off() {
    let guard = Options::new()
        .settle(SETTLE)
        .os_threads(false)
        .verify_none();
    let thread = Parked::spawn(Some("lc-os-off"));
    guard.check().expect("the OS-thread check is off");
    thread.stop();
}

/// A thread spawned through `leakcheck::thread` is a straggler with a spawn
/// site, and never also an untracked thread.
#[test]
fn a_tracked_thread_is_a_straggler_not_an_untracked_thread() {
    let guard = Options::new().settle(SETTLE).os_threads(true).verify_none();
    let (stop, stopped) = mpsc::channel::<()>();
    let (ready, started) = mpsc::channel();
    let worker = leakcheck::thread::Builder::new()
        .name("lc-os-tracked".into())
        .spawn(move || {
            ready.send(current_tid()).unwrap();
            let _ = stopped.recv();
        })
        .unwrap();
    let tid = started.recv().unwrap();

    let report = guard.check().expect_err("the tracked thread is alive");
    let text = report.to_string();
    assert_eq!(report.stragglers().len(), 1, "{text}");
    assert_eq!(report.stragglers()[0].kind(), Kind::Thread, "{text}");
    assert_eq!(
        report.stragglers()[0].name(),
        Some("lc-os-tracked"),
        "{text}"
    );
    assert!(
        !report
            .untracked_threads()
            .iter()
            .any(|t| t.tid() == tid || t.name() == "lc-os-tracked"),
        "{text}"
    );

    drop(stop);
    worker.join().unwrap();
}

/// Kernel ids of the threads a runtime starts, noted by its
/// `on_thread_start` hook.
#[derive(Clone, Default)]
struct RuntimeTids(Arc<Mutex<BTreeSet<u32>>>);

impl RuntimeTids {
    fn note_current(&self) {
        self.0.lock().unwrap().insert(current_tid());
    }

    fn get(&self) -> BTreeSet<u32> {
        self.0.lock().unwrap().clone()
    }
}

/// Runs a blocking closure on `runtime` that stays blocked until the
/// returned sender is dropped; returns once it runs, so the runtime has a
/// live blocking thread beside its workers.
fn block_one_thread(
    runtime: &tokio::runtime::Runtime,
) -> (mpsc::Sender<()>, tokio::task::JoinHandle<u32>) {
    let (stop, stopped) = mpsc::channel::<()>();
    let (ready, running) = mpsc::channel();
    let blocking = runtime.spawn_blocking(move || {
        let tid = current_tid();
        ready.send(tid).unwrap();
        let _ = stopped.recv();
        tid
    });
    running.recv().unwrap();
    (stop, blocking)
}

/// A multi-thread runtime built inside the scope, with tokio's default
/// thread names, and not passed to `runtime::instrument`: its workers and
/// its blocking thread are tokio's, never the test's.
#[test]
fn tokio_runtime_threads_are_never_reported() {
    let guard = Options::new().os_threads(true).verify_none();
    let tids = RuntimeTids::default();
    let noted = tids.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || noted.note_current())
        .build()
        .unwrap();
    let (stop, blocking) = block_one_thread(&runtime);

    let (threads, text) = untracked(guard.check());
    let runtime_tids = tids.get();
    assert!(
        runtime_tids.len() >= 3,
        "2 workers and 1 blocking thread: {runtime_tids:?}"
    );
    assert!(
        !threads.iter().any(|t| runtime_tids.contains(&t.tid())),
        "runtime threads {runtime_tids:?} reported:\n{text}"
    );
    assert!(
        !threads.iter().any(|t| t.name().starts_with("tokio-")),
        "{text}"
    );

    drop(stop);
    runtime.block_on(blocking).unwrap();
}

/// A runtime passed to `runtime::instrument` may name its threads anything.
#[test]
fn instrumented_runtime_threads_are_never_reported_whatever_their_name() {
    let guard = Options::new().os_threads(true).verify_none();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .worker_threads(2)
        .thread_name("lc-os-inst-rt")
        .enable_all();
    leakcheck::runtime::instrument(&mut builder);
    let runtime = builder.build().unwrap();
    let (stop, blocking) = block_one_thread(&runtime);

    let (threads, text) = untracked(guard.check());
    assert!(
        !threads.iter().any(|t| t.name() == "lc-os-inst-rt"),
        "{text}"
    );

    drop(stop);
    runtime.block_on(blocking).unwrap();
}

/// The counterpart: a runtime with names of its own, not instrumented, is
/// indistinguishable from any other threads: all of them are reported.
#[test]
fn custom_named_runtime_threads_are_reported_unless_instrumented() {
    let guard = Options::new().settle(SETTLE).os_threads(true).verify_none();
    let tids = RuntimeTids::default();
    let noted = tids.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("lc-os-plain-rt")
        .enable_all()
        .on_thread_start(move || noted.note_current())
        .build()
        .unwrap();
    let (stop, blocking) = block_one_thread(&runtime);

    let report = guard
        .check()
        .expect_err("the runtime's threads are not tokio's names");
    let text = report.to_string();
    let reported: BTreeSet<u32> = report
        .untracked_threads()
        .iter()
        .filter(|t| t.name() == "lc-os-plain-rt")
        .map(UntrackedThread::tid)
        .collect();
    assert_eq!(reported, tids.get(), "{text}");

    drop(stop);
    runtime.block_on(blocking).unwrap();
}

// ---------------------------------------------------------------------------
// The default rule, in a child process.
// ---------------------------------------------------------------------------

/// Set in the child's environment; the child test does nothing without it.
const CHILD: &str = "LC_TEST_CHILD";
/// `on` or `off`: what the child expects of the default rule.
const EXPECT: &str = "LC_EXPECT_OS_CHECK";
const CHILD_TEST: &str = "child_checks_the_default_rule";

/// Run in a child process by the tests below: opens a guard without
/// `Options::os_threads`, leaves a plain thread alive, and asserts that the
/// check reports it exactly when `LC_EXPECT_OS_CHECK=on`. In a normal run
/// of this binary it does nothing.
#[test]
fn child_checks_the_default_rule() {
    let Some(expect) = std::env::var_os(EXPECT).filter(|_| std::env::var_os(CHILD).is_some())
    else {
        return;
    };
    let guard = Options::new().settle(SETTLE).verify_none();
    let thread = Parked::spawn(Some("lc-os-default"));
    let outcome = guard.check();
    match expect.to_str() {
        Some("on") => {
            let report = outcome.expect_err("the OS-thread check is on");
            // One test at a time: nothing else can have started a thread.
            let names: Vec<&str> = report
                .untracked_threads()
                .iter()
                .map(|t| t.name())
                .collect();
            assert_eq!(names, ["lc-os-default"], "{report}");
            assert_eq!(report.untracked_threads()[0].tid(), thread.tid);
        }
        Some("off") => outcome.expect("the OS-thread check is off"),
        Some("hooked") => {
            let report = outcome.expect_err("the thread hook sees the thread");
            assert!(report.untracked_threads().is_empty(), "{report}");
            assert_eq!(report.stragglers().len(), 1, "{report}");
            assert_eq!(report.stragglers()[0].kind(), Kind::Thread, "{report}");
        }
        other => panic!("{EXPECT}={other:?}"),
    }
    thread.stop();
}

/// Runs `CHILD_TEST` alone in a child process with `args` and `env`, and
/// asserts that it ran and passed.
fn run_child(expect: &str, args: &[&str], env: &[(&str, &str)]) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["--exact", CHILD_TEST]).args(args);
    for var in [
        "RUST_TEST_THREADS",
        "NEXTEST_EXECUTION_MODE",
        "LEAKCHECK_OS_THREADS",
        "LEAKCHECK_AT_EXIT",
    ] {
        command.env_remove(var);
    }
    command
        .env(CHILD, "1")
        .env(EXPECT, expect)
        .envs(env.iter().copied());
    let output = command.output().expect("run the test binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "child {args:?} {env:?} expecting {expect}: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
}

/// With the thread hook on, plain threads are seen with their creator, and
/// the `/proc` check stays off by default even one test at a time.
#[test]
fn default_rule_is_off_when_the_thread_hook_runs() {
    if cfg!(all(feature = "thread-hook", target_env = "gnu")) {
        run_child(
            "hooked",
            &["--test-threads=1"],
            &[("LEAKCHECK_THREAD_HOOK", "on")],
        );
    }
}

#[test]
fn default_rule_is_on_with_test_threads_1() {
    run_child("on", &["--test-threads=1"], &[]);
}

#[test]
fn default_rule_is_on_with_test_threads_1_as_two_arguments() {
    run_child("on", &["--test-threads", "1"], &[]);
}

#[test]
fn default_rule_is_on_with_rust_test_threads_1() {
    run_child("on", &[], &[("RUST_TEST_THREADS", "1")]);
}

#[test]
fn default_rule_is_on_in_nextest_process_per_test_mode() {
    run_child("on", &[], &[("NEXTEST_EXECUTION_MODE", "process-per-test")]);
}

#[test]
fn default_rule_is_off_with_parallel_tests() {
    run_child("off", &["--test-threads=2"], &[]);
}

#[test]
fn default_rule_is_off_without_any_setting() {
    run_child("off", &[], &[]);
}

#[test]
fn leakcheck_os_threads_off_overrides_one_test_at_a_time() {
    run_child(
        "off",
        &["--test-threads=1"],
        &[("LEAKCHECK_OS_THREADS", "off")],
    );
}

#[test]
fn leakcheck_os_threads_on_overrides_parallel_tests() {
    run_child(
        "on",
        &["--test-threads=2"],
        &[("LEAKCHECK_OS_THREADS", "on")],
    );
}

/// Another test's harness thread, which has a guard of its own open, is not
/// this test's leak, even when this test's check sees it appear.
#[test]
fn a_thread_with_a_guard_of_its_own_is_not_reported() {
    let guard = Options::new().settle(SETTLE).os_threads(true).verify_none();
    let (opened, has_opened) = mpsc::channel::<()>();
    let (done, finish) = mpsc::channel::<()>();
    let sibling = std::thread::Builder::new()
        .name("lc-os-sibling".into())
        .spawn(move || {
            let _own = Options::new()
                .settle(SETTLE)
                .os_threads(false)
                .verify_none();
            opened.send(()).unwrap();
            let _ = finish.recv();
        })
        .unwrap();
    has_opened.recv().unwrap();
    let (threads, text) = untracked(guard.check());
    assert!(
        threads.iter().all(|t| t.name() != "lc-os-sibling"),
        "{text}"
    );
    drop(done);
    sibling.join().unwrap();
}
