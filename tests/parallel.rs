//! Thirty-two tests in one binary, run on parallel threads, half of them
//! leaking. Each leaky test must see exactly its own stragglers and each clean
//! test none, whatever the other tests are doing at the same moment. Every
//! test passes when leakcheck keeps tests apart: a leaky test asserts its
//! `Err` and then cleans up, so any cross-talk shows as a failure.
//!
//! # How the overlap is made real
//!
//! Every test goes through two rendezvous points: `SPAWNED`, once its own
//! work is alive, and `CHECKED`, once its check has returned. Between the
//! two, every test checks while every other test's work, leaked or not yet
//! finished, is still alive, so each check really runs next to the others'
//! stragglers.
//!
//! A `std::sync::Barrier` of 32 parties would deadlock whenever fewer than 32
//! tests can run at once (libtest runs as many as `--test-threads`, by default
//! the number of CPUs, two here) or fewer run at all (a filter). So each
//! rendezvous is a counter that waits until `parties` tests have arrived,
//! where `parties` is what can be running together: the number of tests,
//! capped by `--test-threads` (or `RUST_TEST_THREADS`, or the CPU count), and
//! 1, meaning no waiting, when a filter or `--skip` may leave tests out. The
//! counter never resets, so the first `parties` arrivals meet and later ones
//! pass straight through; with `--test-threads=32`, as
//! `scripts/parallel-20.sh` runs it, all 32 tests meet at both points. A test
//! that fails before a rendezvous still arrives, on unwind, so a failure never
//! leaves the others waiting, and a generous timeout is a last resort only.
//! None of this decides a test's outcome: the assertions hold at any overlap.
//! With `PARALLEL_STRICT=1` in the environment (the script sets it) a run
//! where the tests cannot all meet, or a rendezvous times out, fails.
//!
//! Each test comes from one `parallel_test!` line, so every spawn it makes is
//! charged to that line (`#[track_caller]` locations inside a macro point at
//! the outermost invocation), and every name it gives is prefixed with the
//! test's own name: a report may list only those.

use leakcheck::task::Builder as TaskBuilder;
use leakcheck::thread::Builder as ThreadBuilder;
use leakcheck::{Kind, LeakReport, Options, State};
use std::future::pending;
use std::io::Write as _;
use std::sync::{mpsc, Arc, Condvar, LazyLock, Mutex, PoisonError};
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::sync::{oneshot, Notify};

/// How many tests this file defines; `every_test_is_defined` keeps it right.
const TESTS: usize = 32;
/// The settle budget of the leaky checks that wait it out.
const SETTLE: Duration = Duration::from_millis(100);
/// The settle budget of checks whose stragglers are all stuck: they must not
/// wait it out.
const LONG_SETTLE: Duration = Duration::from_secs(5);
/// A last resort against a rendezvous that can never fill.
const RENDEZVOUS_TIMEOUT: Duration = Duration::from_secs(30);
/// When set (as `scripts/parallel-20.sh` does), all tests must meet at both
/// rendezvous points: a run with less overlap fails instead of passing.
const STRICT: &str = "PARALLEL_STRICT";

// ---- rendezvous ---------------------------------------------------------------

struct Rendezvous {
    name: &'static str,
    arrived: Mutex<usize>,
    all_here: Condvar,
}

impl Rendezvous {
    const fn new(name: &'static str) -> Self {
        Self {
            name,
            arrived: Mutex::new(0),
            all_here: Condvar::new(),
        }
    }

    fn arrive(&self) -> std::sync::MutexGuard<'_, usize> {
        let mut arrived = self.arrived.lock().unwrap_or_else(PoisonError::into_inner);
        *arrived += 1;
        self.all_here.notify_all();
        arrived
    }

    /// Arrives, and waits until `parties()` tests have arrived.
    fn meet(&self) {
        let parties = *PARTIES;
        let arrived = self.arrive();
        let (arrived, wait) = self
            .all_here
            .wait_timeout_while(arrived, RENDEZVOUS_TIMEOUT, |n| *n < parties)
            .unwrap_or_else(PoisonError::into_inner);
        if wait.timed_out() {
            let message = format!(
                "parallel: rendezvous `{}` timed out with {} of {parties} tests",
                self.name, *arrived
            );
            drop(arrived);
            assert!(std::env::var_os(STRICT).is_none(), "{message}");
            // Past libtest's capture, so that it shows even in a passing run.
            let _ = writeln!(std::io::stderr(), "{message}");
        }
    }
}

static SPAWNED: Rendezvous = Rendezvous::new("spawned");
static CHECKED: Rendezvous = Rendezvous::new("checked");
static PARTIES: LazyLock<usize> = LazyLock::new(parties);

/// How many tests can be at a rendezvous together; see the module docs.
fn parties() -> usize {
    let parties = parties_from_args();
    if std::env::var_os(STRICT).is_some() {
        assert_eq!(
            parties, TESTS,
            "{STRICT} is set, but not all tests can run at once: pass --test-threads={TESTS} and no filter"
        );
    }
    parties
}

fn parties_from_args() -> usize {
    let mut threads = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if let Some(n) = arg.strip_prefix("--test-threads=") {
            threads = n.parse::<usize>().ok();
        } else if arg == "--test-threads" {
            threads = args.next().and_then(|n| n.parse().ok());
        } else if !arg.starts_with('-') || arg == "--skip" {
            // A filter, or a flag's value taken for one: fewer tests may run,
            // so do not wait for anybody.
            return 1;
        }
    }
    let threads = threads
        .or_else(|| std::env::var("RUST_TEST_THREADS").ok()?.parse().ok())
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1);
    threads.clamp(1, TESTS)
}

/// One test's passage through the two rendezvous points. Dropped on unwind,
/// it arrives at those not yet reached without waiting, so that a failing
/// test does not hold the others up.
#[derive(Default)]
struct Phases {
    spawned: bool,
    checked: bool,
}

impl Phases {
    fn spawned(&mut self) {
        self.spawned = true;
        SPAWNED.meet();
    }

    fn checked(&mut self) {
        self.checked = true;
        CHECKED.meet();
    }
}

impl Drop for Phases {
    fn drop(&mut self) {
        if !self.spawned {
            drop(SPAWNED.arrive());
        }
        if !self.checked {
            drop(CHECKED.arrive());
        }
    }
}

// ---- expectations ---------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Leaky,
    Clean,
}

/// What a leaky test's report must list, and nothing else.
struct Expect {
    /// The `parallel_test!` line, where every spawn of the test is charged.
    line: u32,
    /// Kind and name of every straggler.
    stragglers: Vec<(Kind, Option<String>)>,
    /// Every straggler is provably stuck, so the check must not wait out its
    /// (long) budget.
    all_stuck: bool,
}

/// Runs one test's life once its work is alive: rendezvous, check (before
/// `release` when the test leaks, after it when it is clean), rendezvous,
/// clean up, and make sure nothing of the test is left in the registry.
fn drive(
    me: &str,
    verdict: Verdict,
    expect: Expect,
    check: impl FnOnce() -> Result<(), LeakReport>,
    release: impl FnOnce(),
) {
    let mut phases = Phases::default();
    phases.spawned();
    match verdict {
        Verdict::Leaky => {
            let report = match check() {
                Ok(()) => panic!("{me}: the check passed, but the test leaks"),
                Err(report) => report,
            };
            assert_only_mine(&report, me, &expect);
            phases.checked();
            release();
        }
        Verdict::Clean => {
            release();
            if let Err(report) = check() {
                panic!("{me}: a clean test's check failed:\n{report}");
            }
            phases.checked();
        }
    }
    assert_nothing_left(me);
}

/// The report lists exactly `expect.stragglers`, all charged to `me` and to
/// its spawn line.
fn assert_only_mine(report: &LeakReport, me: &str, expect: &Expect) {
    assert_eq!(report.test_name(), Some(me), "{report}");
    // Other tests' work is neither listed nor counted as untracked.
    assert_eq!(report.untracked_tasks(), 0, "{report}");
    assert!(report.untracked_threads().is_empty(), "{report}");
    for straggler in report.stragglers() {
        assert_eq!(
            straggler.test_name(),
            Some(me),
            "{straggler:?} in\n{report}"
        );
        let location = straggler.location();
        assert!(
            location.file().ends_with("parallel.rs") && location.line() == expect.line,
            "{me} spawns only at parallel.rs:{}, yet {location} is listed:\n{report}",
            expect.line
        );
        if let Some(name) = straggler.name() {
            assert!(
                name.starts_with(&format!("{me}/")),
                "{me} does not own `{name}`:\n{report}"
            );
        }
    }
    let mut listed: Vec<(Kind, Option<String>)> = report
        .stragglers()
        .iter()
        .map(|s| (s.kind(), s.name().map(str::to_owned)))
        .collect();
    listed.sort();
    let mut expected = expect.stragglers.clone();
    expected.sort();
    assert_eq!(listed, expected, "{report}");
    if expect.all_stuck {
        assert!(
            report
                .stragglers()
                .iter()
                .all(|s| s.state() == State::Stuck),
            "{report}"
        );
        assert!(
            report.waited() < LONG_SETTLE / 2,
            "a check of stuck tasks waited {:?}:\n{report}",
            report.waited()
        );
    }
    let text = report.to_string();
    assert!(text.contains(&format!("test `{me}` leaked")), "{text}");
    let own_site = format!("tests/parallel.rs:{}:", expect.line);
    for line in text.lines().filter(|line| line.contains(" spawned at ")) {
        assert!(line.contains(&own_site), "`{line}` is not {me}'s:\n{text}");
    }
}

/// Nothing registered for `me` is alive any more, in any scope of its own.
fn assert_nothing_left(me: &str) {
    let snapshot = leakcheck::snapshot();
    let left: Vec<_> = snapshot
        .entries()
        .iter()
        .filter(|s| s.test_name() == Some(me))
        // Tracked work: a runtime thread that has not named itself yet is
        // the runtime's, not the work these tests spawn.
        .filter(|s| s.spawned_through_wrapper())
        .collect();
    assert!(left.is_empty(), "{me} left {left:?}");
}

// ---- runtimes ----------------------------------------------------------------

fn current_thread_runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
}

fn multi_thread_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a multi-thread runtime")
}

/// One runtime that several tests spawn onto at once, so that tasks of
/// different tests are polled on the same worker threads in turn.
static SHARED: LazyLock<Runtime> = LazyLock::new(multi_thread_runtime);

// ---- the kinds of test ---------------------------------------------------------

/// The body of one test of kind `$kind`. Every spawn is inside this macro, so
/// its location is the `parallel_test!` line that expanded it.
macro_rules! body {
    // Two tasks on a current-thread runtime, one waiting on a channel and one
    // stuck for good; checked with `check_async` inside the runtime.
    (current_thread, $me:expr, $verdict:expr) => {{
        let me: &str = $me;
        let line = line!();
        let runtime = current_thread_runtime();
        let guard = Options::new().settle(SETTLE).verify_none();
        let waiter_name = format!("{me}/waiter");
        let stuck_name = format!("{me}/stuck");
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u8>(1);
        let (waiter, stuck) = runtime.block_on(async {
            let waiter = TaskBuilder::new()
                .name(&waiter_name)
                .spawn(async move { while rx.recv().await.is_some() {} })
                .unwrap();
            let stuck = TaskBuilder::new()
                .name(&stuck_name)
                .spawn(pending::<()>())
                .unwrap();
            (waiter, stuck)
        });
        let expect = Expect {
            line,
            stragglers: vec![
                (Kind::Task, Some(waiter_name.clone())),
                (Kind::Task, Some(stuck_name.clone())),
            ],
            all_stuck: false,
        };
        let runtime = &runtime;
        drive(
            me,
            $verdict,
            expect,
            move || runtime.block_on(guard.check_async()),
            move || {
                drop(tx);
                stuck.abort();
                runtime.block_on(async {
                    waiter.await.unwrap();
                    assert!(stuck.await.unwrap_err().is_cancelled());
                });
            },
        );
    }};

    // Tasks that nothing can ever wake, on a current-thread runtime: the
    // check must fail fast, well inside its 5 s budget.
    (stuck, $me:expr, $verdict:expr) => {{
        let me: &str = $me;
        let line = line!();
        let runtime = current_thread_runtime();
        let guard = Options::new().settle(LONG_SETTLE).verify_none();
        let names: Vec<String> = (0..3).map(|i| format!("{me}/pending-{i}")).collect();
        let handles = runtime.block_on(async {
            names
                .iter()
                .map(|name| {
                    TaskBuilder::new()
                        .name(name)
                        .spawn(pending::<()>())
                        .unwrap()
                })
                .collect::<Vec<_>>()
        });
        let expect = Expect {
            line,
            stragglers: names
                .iter()
                .map(|n| (Kind::Task, Some(n.clone())))
                .collect(),
            all_stuck: true,
        };
        let runtime = &runtime;
        drive(
            me,
            $verdict,
            expect,
            move || runtime.block_on(guard.check_async()),
            move || {
                runtime.block_on(async {
                    for handle in handles {
                        handle.abort();
                        assert!(handle.await.unwrap_err().is_cancelled());
                    }
                });
            },
        );
    }};

    // Tasks on a multi-thread runtime of the test's own, checked with a
    // blocking `check()` from the test thread while the workers run on.
    (multi_thread, $me:expr, $verdict:expr) => {{
        let me: &str = $me;
        let line = line!();
        let runtime = multi_thread_runtime();
        let guard = Options::new().settle(SETTLE).verify_none();
        let waiter_name = format!("{me}/mt-waiter");
        let notified_name = format!("{me}/mt-notified");
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u8>(1);
        let notify = Arc::new(Notify::new());
        let waiter = TaskBuilder::new()
            .name(&waiter_name)
            .spawn_on(
                async move { while rx.recv().await.is_some() {} },
                runtime.handle(),
            )
            .unwrap();
        let notified = {
            let notify = notify.clone();
            TaskBuilder::new()
                .name(&notified_name)
                .spawn_on(async move { notify.notified().await }, runtime.handle())
                .unwrap()
        };
        let expect = Expect {
            line,
            stragglers: vec![
                (Kind::Task, Some(waiter_name.clone())),
                (Kind::Task, Some(notified_name.clone())),
            ],
            all_stuck: false,
        };
        let runtime = &runtime;
        drive(
            me,
            $verdict,
            expect,
            move || guard.check(),
            move || {
                drop(tx);
                // A permit is stored if the task has not reached `notified` yet.
                notify.notify_one();
                runtime.block_on(async {
                    waiter.await.unwrap();
                    notified.await.unwrap();
                });
            },
        );
    }};

    // Blocking tasks, named and unnamed, on a multi-thread runtime; checked
    // with `check_async` inside the runtime.
    (blocking, $me:expr, $verdict:expr) => {{
        let me: &str = $me;
        let line = line!();
        let runtime = multi_thread_runtime();
        let guard = Options::new().settle(SETTLE).verify_none();
        let blocking_name = format!("{me}/blocking");
        let (named_tx, named_rx) = mpsc::channel::<()>();
        let (unnamed_tx, unnamed_rx) = mpsc::channel::<()>();
        let (named, unnamed) = {
            let _entered = runtime.enter();
            let named = TaskBuilder::new()
                .name(&blocking_name)
                .spawn_blocking(move || {
                    let _ = named_rx.recv();
                })
                .unwrap();
            let unnamed = leakcheck::spawn_blocking(move || {
                let _ = unnamed_rx.recv();
            });
            (named, unnamed)
        };
        let expect = Expect {
            line,
            stragglers: vec![
                (Kind::BlockingTask, Some(blocking_name.clone())),
                (Kind::BlockingTask, None),
            ],
            all_stuck: false,
        };
        let runtime = &runtime;
        drive(
            me,
            $verdict,
            expect,
            move || runtime.block_on(guard.check_async()),
            move || {
                drop((named_tx, unnamed_tx));
                runtime.block_on(async {
                    named.await.unwrap();
                    unnamed.await.unwrap();
                });
            },
        );
    }};

    // OS threads, named and unnamed; checked with a blocking `check()`.
    (thread, $me:expr, $verdict:expr) => {{
        let me: &str = $me;
        let line = line!();
        let guard = Options::new().settle(SETTLE).verify_none();
        let thread_name = format!("{me}/thread");
        let (named_tx, named_rx) = mpsc::channel::<()>();
        let (unnamed_tx, unnamed_rx) = mpsc::channel::<()>();
        let named = ThreadBuilder::new()
            .name(thread_name.clone())
            .spawn(move || {
                let _ = named_rx.recv();
            })
            .unwrap();
        let unnamed = leakcheck::thread::spawn(move || {
            let _ = unnamed_rx.recv();
        });
        let expect = Expect {
            line,
            stragglers: vec![(Kind::Thread, Some(thread_name)), (Kind::Thread, None)],
            all_stuck: false,
        };
        drive(
            me,
            $verdict,
            expect,
            move || guard.check(),
            move || {
                drop((named_tx, unnamed_tx));
                named.join().unwrap();
                unnamed.join().unwrap();
            },
        );
    }};

    // A tracked task that spawns a task that spawns a thread: all three are
    // the test's, though only the first was spawned from the test's thread.
    (nested, $me:expr, $verdict:expr) => {{
        let me: &str = $me;
        let line = line!();
        let runtime = multi_thread_runtime();
        let guard = Options::new().settle(SETTLE).verify_none();
        let outer_name = format!("{me}/outer");
        let inner_name = format!("{me}/inner");
        let thread_name = format!("{me}/grandchild");
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let outer = {
            let (inner_name, thread_name) = (inner_name.clone(), thread_name.clone());
            TaskBuilder::new()
                .name(&outer_name)
                .spawn_on(
                    async move {
                        let inner = TaskBuilder::new()
                            .name(&inner_name)
                            .spawn(async move {
                                let (done_tx, done_rx) = oneshot::channel::<()>();
                                let worker = ThreadBuilder::new()
                                    .name(thread_name)
                                    .spawn(move || {
                                        let _ = stop_rx.recv();
                                        let _ = done_tx.send(());
                                    })
                                    .unwrap();
                                ready_tx.send(()).unwrap();
                                let _ = done_rx.await;
                                worker
                            })
                            .unwrap();
                        inner.await.unwrap()
                    },
                    runtime.handle(),
                )
                .unwrap()
        };
        ready_rx.recv().unwrap();
        let expect = Expect {
            line,
            stragglers: vec![
                (Kind::Task, Some(outer_name.clone())),
                (Kind::Task, Some(inner_name)),
                (Kind::Thread, Some(thread_name)),
            ],
            all_stuck: false,
        };
        let runtime = &runtime;
        drive(
            me,
            $verdict,
            expect,
            move || runtime.block_on(guard.check_async()),
            move || {
                drop(stop_tx);
                let worker = runtime.block_on(outer).unwrap();
                worker.join().unwrap();
            },
        );
    }};

    // A task on the runtime all tests share, which runs a blocking task on
    // that runtime's pool: the workers and blocking threads run work of many
    // tests in turn.
    (shared_runtime, $me:expr, $verdict:expr) => {{
        let me: &str = $me;
        let line = line!();
        let guard = Options::new().settle(SETTLE).verify_none();
        let task_name = format!("{me}/shared");
        let blocking_name = format!("{me}/shared-blocking");
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let task = {
            let blocking_name = blocking_name.clone();
            TaskBuilder::new()
                .name(&task_name)
                .spawn_on(
                    async move {
                        let blocking = TaskBuilder::new()
                            .name(&blocking_name)
                            .spawn_blocking(move || {
                                let _ = stop_rx.recv();
                            })
                            .unwrap();
                        ready_tx.send(()).unwrap();
                        blocking.await.unwrap();
                    },
                    SHARED.handle(),
                )
                .unwrap()
        };
        ready_rx.recv().unwrap();
        let expect = Expect {
            line,
            stragglers: vec![
                (Kind::Task, Some(task_name.clone())),
                (Kind::BlockingTask, Some(blocking_name)),
            ],
            all_stuck: false,
        };
        drive(
            me,
            $verdict,
            expect,
            move || guard.check(),
            move || {
                drop(stop_tx);
                SHARED.block_on(task).unwrap();
            },
        );
    }};
}

macro_rules! verdict {
    (leaky) => {
        Verdict::Leaky
    };
    (clean) => {
        Verdict::Clean
    };
}

/// One test, on one line: `parallel_test!(name, kind, leaky | clean);`.
macro_rules! parallel_test {
    ($name:ident, $kind:ident, $verdict:ident) => {
        #[test]
        fn $name() {
            let me = stringify!($name);
            assert_eq!(
                std::thread::current().name(),
                Some(me),
                "libtest runs each test on a thread named after it"
            );
            body!($kind, me, verdict!($verdict));
        }
    };
}

parallel_test!(leaky_01_current_thread, current_thread, leaky);
parallel_test!(leaky_02_stuck, stuck, leaky);
parallel_test!(leaky_03_multi_thread, multi_thread, leaky);
parallel_test!(leaky_04_blocking, blocking, leaky);
parallel_test!(leaky_05_thread, thread, leaky);
parallel_test!(leaky_06_nested, nested, leaky);
parallel_test!(leaky_07_shared_runtime, shared_runtime, leaky);
parallel_test!(leaky_08_current_thread, current_thread, leaky);
parallel_test!(leaky_09_stuck, stuck, leaky);
parallel_test!(leaky_10_multi_thread, multi_thread, leaky);
parallel_test!(leaky_11_blocking, blocking, leaky);
parallel_test!(leaky_12_thread, thread, leaky);
parallel_test!(leaky_13_nested, nested, leaky);
parallel_test!(leaky_14_shared_runtime, shared_runtime, leaky);
parallel_test!(leaky_15_nested, nested, leaky);
parallel_test!(leaky_16_shared_runtime, shared_runtime, leaky);
parallel_test!(clean_01_current_thread, current_thread, clean);
parallel_test!(clean_02_stuck, stuck, clean);
parallel_test!(clean_03_multi_thread, multi_thread, clean);
parallel_test!(clean_04_blocking, blocking, clean);
parallel_test!(clean_05_thread, thread, clean);
parallel_test!(clean_06_nested, nested, clean);
parallel_test!(clean_07_shared_runtime, shared_runtime, clean);
parallel_test!(clean_08_current_thread, current_thread, clean);
parallel_test!(clean_09_stuck, stuck, clean);
parallel_test!(clean_10_multi_thread, multi_thread, clean);
parallel_test!(clean_11_blocking, blocking, clean);
parallel_test!(clean_12_thread, thread, clean);
parallel_test!(clean_13_nested, nested, clean);
parallel_test!(clean_14_shared_runtime, shared_runtime, clean);
parallel_test!(clean_15_nested, nested, clean);
parallel_test!(clean_16_shared_runtime, shared_runtime, clean);

/// `TESTS` must match the `parallel_test!` lines above, or the rendezvous
/// would wait for tests that do not exist (until the timeout).
#[test]
fn every_test_is_defined() {
    let source = include_str!("parallel.rs");
    let defined = source
        .lines()
        .filter(|line| line.starts_with("parallel_test!("))
        .count();
    assert_eq!(defined, TESTS);
}
