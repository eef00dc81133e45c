//! The thread hook (Linux, glibc, the default `thread-hook` feature): plain
//! `std::thread` threads, spawned by any code, are charged to the test that
//! started them and reported with the line that spawned them, in a parallel
//! `cargo test` run and with no option set.
//!
//! The tests of this binary run in parallel, so each asserts only on its own
//! scope, which is what the hook must keep apart. Child tests (re-run in a
//! subprocess) do nothing unless `LC_HOOK_CHILD` names them.
#![cfg(all(target_os = "linux", target_env = "gnu", feature = "thread-hook"))]

use child::text;
use leakcheck::{leak_check, Kind, LeakReport, Options, State};
use std::process::Output;
use std::sync::{mpsc, LazyLock, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// The settle budget of checks expected to find a live thread.
const SETTLE: Duration = Duration::from_millis(50);
const CHILD: &str = "LC_HOOK_CHILD";

#[path = "support/child.rs"]
mod child;

/// The line of the first occurrence of `marker` in this file.
fn line_of(marker: &str) -> u32 {
    let at = include_str!("thread_hook.rs")
        .lines()
        .position(|line| line.contains(marker) && !line.contains("line_of("))
        .unwrap_or_else(|| panic!("no {marker:?} in this file"));
    u32::try_from(at + 1).expect("a small file")
}

/// A library-style helper: starts a named worker with plain std, blocked
/// until `stop` is dropped.
fn start_worker(name: &str, stop: mpsc::Receiver<()>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            // SPAWN: start_worker, the line above
            let _ = stop.recv();
        })
        .expect("the OS starts the thread")
}

/// The report's one straggler, which must be the worker called `name`,
/// spawned at `start_worker`'s line.
#[track_caller]
fn assert_worker_reported(report: &LeakReport, name: &str) {
    let text = report.to_string();
    assert_eq!(report.stragglers().len(), 1, "{text}");
    let straggler = &report.stragglers()[0];
    assert_eq!(straggler.kind(), Kind::Thread, "{text}");
    assert_eq!(straggler.state(), State::Running, "{text}");
    assert_eq!(straggler.name(), Some(name), "{text}");
    let site = straggler.location();
    assert_eq!(site.file(), "tests/thread_hook.rs", "{text}");
    assert_eq!(site.line(), line_of("SPAWN: start_worker") - 1, "{text}");
    let trace = straggler.backtrace().expect("a creation backtrace");
    let shown: Vec<&str> = trace.frames().iter().filter_map(|f| f.function()).collect();
    assert!(
        shown.iter().any(|f| f.ends_with("start_worker")),
        "{shown:?}\n{text}"
    );
    assert!(
        !shown
            .iter()
            .any(|f| f.contains("leakcheck::") || f.starts_with("std::")),
        "{shown:?}\n{text}"
    );
    assert!(
        text.contains(&format!(
            "1 thread spawned at tests/thread_hook.rs:{}:",
            site.line()
        )),
        "{text}"
    );
}

#[test]
fn a_plain_thread_that_outlives_the_test_is_reported_at_its_spawn_line() {
    let guard = Options::new().settle(SETTLE).verify_none();
    let (stop, stopped) = mpsc::channel();
    let worker = start_worker("hook-leak", stopped);
    let report = guard.check().expect_err("the worker outlives the check");
    assert_worker_reported(&report, "hook-leak");
    drop(stop);
    worker.join().unwrap();
}

#[test]
fn a_joined_plain_thread_is_clean() {
    let guard = Options::new().settle(SETTLE).verify_none();
    let (stop, stopped) = mpsc::channel();
    let worker = start_worker("hook-joined", stopped);
    drop(stop);
    worker.join().unwrap();
    guard.check().expect("the worker was joined");
}

/// A thread told to stop but not joined ends within the settle budget.
#[test]
fn a_plain_thread_on_its_way_out_is_settled() {
    let guard = Options::new().settle(Duration::from_secs(5)).verify_none();
    let (stop, stopped) = mpsc::channel();
    let worker = start_worker("hook-detached", stopped);
    drop(stop);
    drop(worker);
    guard.check().expect("the worker ends by itself");
}

/// Threads a plain thread starts belong to the same test.
#[test]
fn a_thread_started_by_a_plain_thread_is_charged_to_the_same_test() {
    let guard = Options::new().settle(SETTLE).verify_none();
    let (stop, stopped) = mpsc::channel();
    let (started, inner) = mpsc::channel();
    let outer = std::thread::spawn(move || {
        started
            .send(start_worker("hook-grandchild", stopped))
            .unwrap();
    });
    outer.join().unwrap();
    let inner = inner.recv().unwrap();
    let report = guard
        .check()
        .expect_err("the grandchild outlives the check");
    assert_worker_reported(&report, "hook-grandchild");
    drop(stop);
    inner.join().unwrap();
}

/// A thread std did not name shows no name, not its creator's, which Linux
/// copies to it.
#[test]
fn an_unnamed_plain_thread_has_no_name() {
    let guard = Options::new().settle(SETTLE).verify_none();
    let (stop, stopped) = mpsc::channel::<()>();
    let (ready, started) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        ready.send(()).unwrap();
        let _ = stopped.recv();
    });
    started.recv().unwrap();
    let report = guard.check().expect_err("the worker outlives the check");
    assert_eq!(report.stragglers().len(), 1, "{report}");
    assert_eq!(report.stragglers()[0].name(), None, "{report}");
    drop(stop);
    worker.join().unwrap();
}

/// An unnamed thread started from a task on a runtime's worker copies the
/// worker's tokio name, yet it is the test's, not the runtime's. A plain
/// `tokio::spawn` task carries the test's scope only through the task hooks,
/// so this needs `--cfg tokio_unstable`.
#[cfg(tokio_unstable)]
#[leak_check(flavor = "multi_thread", worker_threads = 2, settle_ms = 50)]
#[should_panic(expected = "1 thread spawned at tests/thread_hook.rs:")]
async fn a_thread_started_from_a_runtime_worker_is_the_tests() {
    let (started, ready) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (keep, stopped) = mpsc::channel::<()>();
        std::mem::forget(keep);
        std::thread::spawn(move || {
            let _ = stopped.recv();
        });
        started.send(()).unwrap();
    });
    ready.await.unwrap();
}

/// A plain thread started outside any guard is nobody's, and a guard opened
/// later does not see it.
#[test]
fn a_thread_started_before_the_guard_is_not_reported() {
    let (stop, stopped) = mpsc::channel();
    let worker = start_worker("hook-before", stopped);
    let guard = Options::new().settle(SETTLE).verify_none();
    guard.check().expect("the worker is older than the guard");
    drop(stop);
    worker.join().unwrap();
}

// ---- tokio's threads -----------------------------------------------------------------

/// A `spawn_blocking` awaited in a `#[leak_check]` test: the blocking pool
/// keeps its thread for seconds, and that thread is the runtime's.
#[leak_check]
async fn spawn_blocking_awaited_is_clean() {
    let sum = tokio::task::spawn_blocking(|| (1..=10).sum::<u32>())
        .await
        .unwrap();
    assert_eq!(sum, 55);
}

#[leak_check(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_blocking_awaited_on_a_multi_thread_runtime_is_clean() {
    tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(1)))
        .await
        .unwrap();
}

/// The same on a runtime leakcheck did not instrument, named as tokio names
/// its threads.
#[test]
fn spawn_blocking_on_a_plain_runtime_is_clean() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let guard = Options::new().settle(SETTLE).verify_none();
    runtime.block_on(async {
        tokio::task::spawn_blocking(|| ()).await.unwrap();
    });
    guard.check().expect("the blocking thread is the runtime's");
    drop(runtime);
}

/// A test that builds its own multi-thread runtime and drops it.
#[test]
fn a_runtime_built_and_dropped_in_the_test_is_clean() {
    let guard = Options::new().settle(SETTLE).verify_none();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::spawn(async {}).await.unwrap();
        tokio::task::spawn_blocking(|| ()).await.unwrap();
    });
    drop(runtime);
    guard.check().expect("the runtime and its threads are gone");
}

/// A library-style helper that builds a runtime for its caller to keep.
fn build_runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build() // BUILD: build_runtime
        .expect("tokio builds the runtime")
}

/// A runtime the test built and kept past its check is the test's leak: its
/// workers are reported, at the line that built it.
#[test]
fn a_runtime_built_in_the_test_and_kept_alive_is_reported() {
    let guard = Options::new().settle(SETTLE).verify_none();
    let runtime = build_runtime(2);
    runtime.block_on(async { tokio::spawn(async {}).await.unwrap() });
    let report = guard.check().expect_err("the runtime outlives the check");
    let text = report.to_string();
    assert!(
        text.contains(
            "note: 2 of these threads are workers of a tokio runtime built during the test"
        ),
        "{text}"
    );
    assert_eq!(report.stragglers().len(), 2, "{text}");
    for straggler in report.stragglers() {
        assert_eq!(straggler.kind(), Kind::Thread, "{text}");
        assert!(
            straggler.name().is_some_and(|n| n.starts_with("tokio-")),
            "{text}"
        );
        let site = straggler.location();
        assert_eq!(site.file(), "tests/thread_hook.rs", "{text}");
        assert_eq!(site.line(), line_of("BUILD: build_runtime"), "{text}");
    }
    drop(runtime);
}

/// Its blocking threads, idle after their task, are not: only the workers
/// stand for the runtime.
#[test]
fn a_kept_runtime_is_reported_by_its_workers_alone() {
    let runtime = build_runtime(1);
    let guard = Options::new().settle(SETTLE).verify_none();
    runtime.block_on(async { tokio::task::spawn_blocking(|| ()).await.unwrap() });
    guard
        .check()
        .expect("built before the guard: the blocking thread is the runtime's");
    drop(runtime);
}

/// A check that runs on a runtime built after its guard opened does not
/// blame that runtime: it is still in use, by the check itself.
#[test]
fn a_check_on_a_runtime_built_after_its_guard_is_clean() {
    let guard = Options::new().settle(SETTLE).verify_none();
    let runtime = build_runtime(2);
    runtime.block_on(async move {
        tokio::spawn(async {}).await.unwrap();
        guard
            .check_async()
            .await
            .expect("the runtime the check runs on is in use");
    });
}

// ---- process-wide work started lazily ------------------------------------------------

static SHARED_RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
});

#[test]
fn a_runtime_in_a_lazy_lock_is_not_the_first_tests_leak() {
    let guard = Options::new().settle(SETTLE).verify_none();
    let answer = SHARED_RUNTIME.block_on(async { tokio::spawn(async { 42 }).await.unwrap() });
    assert_eq!(answer, 42);
    guard.check().expect("the shared runtime is process-wide");
}

static FLUSHER: OnceLock<JoinHandle<()>> = OnceLock::new();

/// A library's background thread, started on first use and kept for the
/// rest of the process.
fn flusher() -> &'static JoinHandle<()> {
    FLUSHER.get_or_init(|| {
        std::thread::Builder::new()
            .name("hook-flusher".into())
            .spawn(|| loop {
                std::thread::park();
            })
            .expect("the OS starts the thread")
    })
}

#[test]
fn a_thread_started_in_a_once_lock_is_not_the_first_tests_leak() {
    let guard = Options::new().settle(SETTLE).verify_none();
    let _ = flusher();
    guard.check().expect("the flusher is process-wide");
}

#[test]
fn rayons_global_pool_is_not_the_first_tests_leak() {
    let guard = Options::new().settle(SETTLE).verify_none();
    let sum: u64 = rayon::join(|| (1..=10u64).sum::<u64>(), || 0).0;
    assert_eq!(sum, 55);
    guard.check().expect("rayon's global pool is process-wide");
}

// ---- tests that run in parallel, each with its own leak --------------------------------

/// Tests that leak side by side (as many at once as the harness runs); each
/// report holds its own worker only.
fn leak_in_parallel(name: &str) {
    let guard = Options::new().settle(SETTLE).verify_none();
    let (stop, stopped) = mpsc::channel();
    let worker = start_worker(name, stopped);
    let report = guard.check().expect_err("the worker outlives the check");
    assert_worker_reported(&report, name);
    drop(stop);
    worker.join().unwrap();
}

#[test]
fn parallel_leak_a() {
    leak_in_parallel("hook-par-a");
}

#[test]
fn parallel_leak_b() {
    leak_in_parallel("hook-par-b");
}

#[test]
fn parallel_leak_c() {
    leak_in_parallel("hook-par-c");
}

#[test]
fn parallel_leak_d() {
    leak_in_parallel("hook-par-d");
}

// ---- the edges of a thread's life, in child processes ---------------------------------

fn is_child(test: &str) -> bool {
    child::is_child(CHILD, test)
}

fn run_child(test: &str, vars: &[(&str, &str)]) -> Output {
    child::run_child(CHILD, test, vars)
}

#[test]
fn child_leaks_a_plain_thread() {
    if !is_child("child_leaks_a_plain_thread") {
        return;
    }
    let guard = Options::new().settle(SETTLE).verify_none();
    let (stop, stopped) = mpsc::channel();
    let _worker = start_worker("hook-child-leak", stopped);
    std::mem::forget(stop);
    drop(guard);
}

/// `LEAKCHECK_THREAD_HOOK=off` turns the hook off at run time.
#[test]
fn the_hook_can_be_turned_off_at_run_time() {
    let test = "child_leaks_a_plain_thread";
    let on = run_child(test, &[]);
    assert_eq!(on.status.code(), Some(101), "{}", text(&on));
    assert!(text(&on).contains("leaked 1 thread"), "{}", text(&on));
    let off = run_child(
        test,
        &[
            ("LEAKCHECK_THREAD_HOOK", "off"),
            ("LEAKCHECK_OS_THREADS", "off"),
        ],
    );
    assert!(off.status.success(), "{}", text(&off));
    assert!(
        text(&off).contains("plain OS threads are not checked in this process"),
        "{}",
        text(&off)
    );
}

#[test]
fn child_exits_while_a_hooked_thread_runs() {
    if !is_child("child_exits_while_a_hooked_thread_runs") {
        return;
    }
    let _guard = Options::new().settle(SETTLE).verify_none();
    let (stop, stopped) = mpsc::channel();
    let _worker = start_worker("hook-at-exit", stopped);
    std::mem::forget(stop);
    std::process::exit(7);
}

#[test]
fn process_exit_with_a_hooked_thread_running_exits_as_asked() {
    let output = run_child("child_exits_while_a_hooked_thread_runs", &[]);
    assert_eq!(output.status.code(), Some(7), "{}", text(&output));
}

thread_local! {
    /// Starts a thread from a thread-local destructor, as the thread exits.
    static ON_EXIT: SpawnOnDrop = const { SpawnOnDrop };
}

struct SpawnOnDrop;

impl Drop for SpawnOnDrop {
    fn drop(&mut self) {
        let _ = std::thread::Builder::new()
            .name("hook-from-dtor".into())
            .spawn(|| ())
            .map(|late| late.join());
    }
}

/// A thread whose thread-local destructor starts (and joins) another
/// thread: both leave the registry, and the check is clean.
#[test]
fn thread_local_destructors_that_start_threads_leave_nothing_behind() {
    let guard = Options::new().settle(Duration::from_secs(5)).verify_none();
    std::thread::spawn(|| ON_EXIT.with(|_| ())).join().unwrap();
    guard.check().expect("both threads ended");
}

#[test]
fn child_forks() {
    if !is_child("child_forks") {
        return;
    }
    let guard = Options::new().settle(SETTLE).verify_none();
    // SAFETY: the child only calls `_exit`, which is async-signal-safe.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: ends the forked child at once.
        unsafe { libc::_exit(3) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked, with a valid status pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert_eq!(libc::WEXITSTATUS(status), 3);
    let (stop, stopped) = mpsc::channel();
    let worker = start_worker("hook-after-fork", stopped);
    drop(stop);
    worker.join().unwrap();
    guard.check().expect("nothing leaked across the fork");
}

#[test]
fn fork_in_a_hooked_process_works() {
    let output = run_child("child_forks", &[]);
    assert!(output.status.success(), "{}", text(&output));
}

ctor::declarative::ctor! {
    // SAFETY: starts one thread before `main`; std's thread spawning needs
    // nothing that `main` sets up on Linux.
    #[ctor(unsafe)]
    fn start_a_thread_before_main() {
        let _ = std::thread::Builder::new()
            .name("hook-pre-main".into())
            .spawn(|| loop {
                std::thread::park();
            });
    }
}

/// A thread created before `main`, with nothing tracked yet, is nobody's.
#[test]
fn a_thread_from_before_main_is_nobodys() {
    let guard = Options::new().settle(SETTLE).verify_none();
    guard.check().expect("the thread is older than every guard");
    let snapshot = leakcheck::snapshot();
    assert!(
        snapshot
            .entries()
            .iter()
            .all(|s| s.name() != Some("hook-pre-main")),
        "{snapshot}"
    );
}
