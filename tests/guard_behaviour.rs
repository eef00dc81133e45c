//! How a `LeakGuard` behaves: with a test that panics for its own reason,
//! nested, dropped out of order or on another thread, opened inside a task,
//! with `background` work, with each kind of ignore rule, when its `Drop`
//! panics, and how fast it decides. Also what `snapshot()` shows.
//!
//! The tests of this binary run in parallel with each other, so every name is
//! unique to its test and every snapshot assertion looks at the test's own
//! entries only.

use leakcheck::task::Builder as TaskBuilder;
use leakcheck::thread::Builder as ThreadBuilder;
use leakcheck::{Kind, Options, State};
use std::future::pending;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

#[path = "support/common.rs"]
mod common;
use common::{current_thread_runtime, me, multi_thread_runtime, names, BlockedThread as Blocked};

/// The settle budget of checks that are expected to find a waiting leak.
const SETTLE: Duration = Duration::from_millis(50);
/// A budget that a check must not wait out.
const LONG_SETTLE: Duration = Duration::from_secs(5);
/// Set in a child process to the name of the child test that should run.
const CHILD: &str = "LC_GUARD_CHILD";

// ---- a test that panics for its own reason ---------------------------------------

/// The guard's drop runs during the unwind with a real leak in scope. It must
/// print the report instead of panicking again, which would abort the whole
/// binary; the test then fails with its own message.
#[test]
#[should_panic(expected = "my own failure")]
fn a_panicking_test_keeps_its_own_panic_message() {
    // Declared first, so dropped after the guard: the leak is still there when
    // the guard checks, and ends afterwards.
    let worker;
    let _guard = Options::new().settle(SETTLE).verify_none();
    worker = Blocked::named("own-panic-leak");
    let _ = &worker;
    panic!("my own failure");
}

/// The same in a child process, to see what it prints and how it ends: the
/// leak report on stderr, the test's own panic, and a normal test failure
/// (exit code 101), not an abort.
#[test]
fn a_panicking_test_prints_the_report_and_does_not_abort() {
    const TEST: &str = "child_panics_while_leaking";
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD, TEST);
    // The child runs with leakcheck's defaults, whatever this process has.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LEAKCHECK") {
            command.env_remove(name);
        }
    }
    let output = command.output().expect("run the test binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        output.status.code(),
        Some(101),
        "{}:\n{text}",
        output.status
    );
    assert!(text.contains("my own failure"), "{text}");
    assert!(
        text.contains(&format!("leakcheck: test `{TEST}` leaked 1 thread")),
        "{text}"
    );
    assert!(text.contains("name: child-panic-leak"), "{text}");
    assert!(text.contains(&format!("test {TEST} ... FAILED")), "{text}");
}

#[test]
fn child_panics_while_leaking() {
    if std::env::var(CHILD).as_deref() != Ok("child_panics_while_leaking") {
        return;
    }
    let worker;
    let _guard = Options::new().settle(SETTLE).verify_none();
    worker = Blocked::named("child-panic-leak");
    let _ = &worker;
    panic!("my own failure");
}

// ---- nesting and order -------------------------------------------------------------

#[test]
fn nested_guards_each_see_their_own_scope_and_the_scopes_inside_it() {
    let outer = Options::new().settle(SETTLE).verify_none();
    let outer_leak = Blocked::named("nested-outer-leak");

    // An inner guard with nothing of its own passes, whatever the outer has.
    let clean_inner = Options::new().settle(SETTLE).verify_none();
    clean_inner
        .check()
        .expect("the outer leak is not the inner guard's");

    let inner = Options::new().settle(SETTLE).verify_none();
    let inner_leak = Blocked::named("nested-inner-leak");

    let report = inner.check().unwrap_err();
    assert_eq!(names(&report), ["nested-inner-leak"], "{report}");

    let report = outer.check().unwrap_err();
    assert_eq!(
        names(&report),
        ["nested-inner-leak", "nested-outer-leak"],
        "{report}"
    );
    let me = me();
    assert!(report
        .stragglers()
        .iter()
        .all(|s| s.test_name() == Some(me.as_str())));

    outer_leak.finish();
    inner_leak.finish();
}

#[test]
fn guards_dropped_out_of_order() {
    let me = me();
    let first = Options::new().settle(SETTLE).verify_none();
    let second = Options::new().settle(SETTLE).verify_none();
    // Dropping the outer guard first: its check covers the inner scope, which
    // is clean so far.
    drop(first);

    // The inner guard is still open, so it owns what is spawned now.
    let leak = Blocked::named("out-of-order-leak");
    let entry = leakcheck::snapshot()
        .entries()
        .iter()
        .find(|s| s.name() == Some("out-of-order-leak"))
        .cloned()
        .expect("the leak is registered");
    assert_eq!(entry.test_name(), Some(me.as_str()));

    // A guard opened now nests inside the second, not inside the closed first.
    let third = Options::new().settle(SETTLE).verify_none();
    let third_leak = Blocked::named("out-of-order-third-leak");

    // Close the second before the third: it sees the third's leak too.
    let report = second.check().unwrap_err();
    assert_eq!(
        names(&report),
        ["out-of-order-leak", "out-of-order-third-leak"],
        "{report}"
    );
    let report = third.check().unwrap_err();
    assert_eq!(names(&report), ["out-of-order-third-leak"], "{report}");

    // Every guard is gone: new work is nobody's, and a new guard is top level.
    let fourth = Options::new().settle(SETTLE).verify_none();
    fourth.check().expect("older leaks are not a new guard's");
    let stray = Blocked::named("out-of-order-stray");
    let entry = leakcheck::snapshot()
        .entries()
        .iter()
        .find(|s| s.name() == Some("out-of-order-stray"))
        .cloned()
        .expect("the stray is registered");
    assert_eq!(entry.test_name(), None, "charged to a closed guard");

    leak.finish();
    third_leak.finish();
    stray.finish();
}

#[test]
fn an_outer_guard_checked_first_reports_the_inner_scope_too() {
    let outer = Options::new().settle(SETTLE).verify_none();
    let inner = Options::new().settle(SETTLE).verify_none();
    let leak = Blocked::named("outer-first-leak");
    let report = outer.check().unwrap_err();
    assert_eq!(names(&report), ["outer-first-leak"], "{report}");
    let report = inner.check().unwrap_err();
    assert_eq!(names(&report), ["outer-first-leak"], "{report}");
    leak.finish();
}

#[test]
fn a_guard_checked_on_another_thread() {
    let me = me();
    let guard = Options::new().settle(SETTLE).verify_none();
    let leak = Blocked::named("cross-thread-leak");
    let report = std::thread::Builder::new()
        .name("the-checking-thread".into())
        .spawn(move || guard.check())
        .unwrap()
        .join()
        .unwrap()
        .unwrap_err();
    assert_eq!(report.test_name(), Some(me.as_str()), "the opener's name");
    assert_eq!(names(&report), ["cross-thread-leak"], "{report}");

    // This thread's stack still holds the guard's scope, now closed; work
    // spawned here must not be charged to it.
    let stray = Blocked::named("cross-thread-stray");
    let entry = leakcheck::snapshot()
        .entries()
        .iter()
        .find(|s| s.name() == Some("cross-thread-stray"))
        .cloned()
        .expect("the stray is registered");
    assert_eq!(entry.test_name(), None, "charged to a closed guard");

    // And a new guard here is a top-level one that sees only its own work.
    let next = Options::new().settle(SETTLE).verify_none();
    let next_leak = Blocked::named("cross-thread-next-leak");
    let report = next.check().unwrap_err();
    assert_eq!(names(&report), ["cross-thread-next-leak"], "{report}");

    leak.finish();
    stray.finish();
    next_leak.finish();
}

#[test]
fn a_guard_dropped_on_another_thread_panics_there() {
    let guard = Options::new().settle(SETTLE).verify_none();
    let leak = Blocked::named("dropped-elsewhere-leak");
    let payload = std::thread::spawn(move || drop(guard))
        .join()
        .expect_err("the drop panics on the thread that drops it");
    let message = payload
        .downcast_ref::<String>()
        .expect("the report as the panic message");
    assert!(message.contains("dropped-elsewhere-leak"), "{message}");
    assert!(
        message.contains(&format!("test `{}` leaked 1 thread", me())),
        "{message}"
    );
    leak.finish();

    // A clean guard dropped on another thread does not panic.
    let guard = Options::new().settle(SETTLE).verify_none();
    std::thread::spawn(move || drop(guard)).join().unwrap();
}

// ---- a guard inside a task ---------------------------------------------------------

/// A guard opened inside a tracked task owns what the task spawns while it is
/// open, across awaits and worker threads, but not what a sibling task spawns
/// meanwhile on the same worker; the test's own guard sees all of it.
#[test]
fn a_guard_inside_a_tracked_task() {
    let runtime = multi_thread_runtime(2);
    let outer = Options::new().settle(SETTLE).verify_none();
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let (sibling_done_tx, sibling_done_rx) = oneshot::channel::<()>();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());

    let sibling = {
        let mut stop = stop_rx.clone();
        let task = async move {
            go_rx.await.unwrap();
            TaskBuilder::new()
                .name("in-task-sibling-leak")
                .spawn(async move {
                    let _ = stop.changed().await;
                })
                .unwrap();
            sibling_done_tx.send(()).unwrap();
        };
        TaskBuilder::new().spawn_on(task, runtime.handle()).unwrap()
    };
    let guarded = {
        let mut stop_a = stop_rx.clone();
        let mut stop_b = stop_rx.clone();
        let task = async move {
            let guard = Options::new().settle(SETTLE).verify_none();
            TaskBuilder::new()
                .name("in-task-leak-before-await")
                .spawn(async move {
                    let _ = stop_a.changed().await;
                })
                .unwrap();
            go_tx.send(()).unwrap();
            sibling_done_rx.await.unwrap();
            tokio::task::yield_now().await;
            TaskBuilder::new()
                .name("in-task-leak-after-await")
                .spawn(async move {
                    let _ = stop_b.changed().await;
                })
                .unwrap();
            guard.check_async().await
        };
        TaskBuilder::new().spawn_on(task, runtime.handle()).unwrap()
    };
    let report = runtime
        .block_on(guarded)
        .unwrap()
        .expect_err("the task's own leaks");
    assert_eq!(
        names(&report),
        ["in-task-leak-after-await", "in-task-leak-before-await"],
        "{report}"
    );
    runtime.block_on(sibling).unwrap();

    let report = runtime.block_on(outer.check_async()).unwrap_err();
    assert_eq!(
        names(&report),
        [
            "in-task-leak-after-await",
            "in-task-leak-before-await",
            "in-task-sibling-leak"
        ],
        "{report}"
    );
    let me = me();
    let sibling_leak = report
        .stragglers()
        .iter()
        .find(|s| s.name() == Some("in-task-sibling-leak"))
        .unwrap();
    assert_eq!(sibling_leak.test_name(), Some(me.as_str()));
    // The task guard's own stragglers are labelled with the name of the worker
    // thread that opened it; see `a_guard_inside_a_task_is_labelled_with_the_test`.

    stop_tx.send(()).unwrap();
    drop(runtime);
    assert_mine_gone();
}

/// Bug repro: a guard opened inside a task takes its label from the thread
/// that opens it, a runtime worker, so its report says "test
/// `tokio-rt-worker` leaked" and snapshots list the task's work under that
/// "test", though the task belongs to the test's own scope.
#[test]
fn a_guard_inside_a_task_is_labelled_with_the_test() {
    let me = me();
    let runtime = multi_thread_runtime(1);
    let _outer = Options::new().settle(SETTLE).verify_none();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let task = TaskBuilder::new()
        .spawn_on(
            async move {
                let guard = Options::new().settle(SETTLE).verify_none();
                let leak = leakcheck::spawn(async move {
                    let _ = stop_rx.await;
                });
                let report = guard.check_async().await.unwrap_err();
                (report, leak)
            },
            runtime.handle(),
        )
        .unwrap();
    let (report, leak) = runtime.block_on(task).unwrap();
    drop(stop_tx);
    runtime.block_on(leak).unwrap();
    assert_eq!(report.test_name(), Some(me.as_str()), "{report}");
    assert_eq!(report.stragglers()[0].test_name(), Some(me.as_str()));
}

// ---- background work ---------------------------------------------------------------

#[test]
fn background_work_is_not_reported_but_shows_in_snapshots() {
    // Built before the guard: a runtime built in the scope and alive at the
    // check would be the test's leak.
    let runtime = multi_thread_runtime(1);
    let guard = Options::new().settle(LONG_SETTLE).verify_none();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let handle = runtime.handle().clone();
    let worker = leakcheck::background(|| {
        ThreadBuilder::new()
            .name("bg-worker".into())
            .spawn(move || {
                // Work spawned by background work is background work too.
                let nested = ThreadBuilder::new()
                    .name("bg-nested-thread".into())
                    .spawn(move || {
                        let _ = stop_rx.recv();
                    })
                    .unwrap();
                let task = TaskBuilder::new()
                    .name("bg-nested-task")
                    .spawn_on(pending::<()>(), &handle)
                    .unwrap();
                ready_tx.send(()).unwrap();
                nested.join().unwrap();
                task.abort();
            })
            .unwrap()
    });
    ready_rx.recv().unwrap();

    let started = Instant::now();
    guard.check().expect("background work is nobody's leak");
    assert!(started.elapsed() < Duration::from_secs(1));

    let snapshot = leakcheck::snapshot();
    for name in ["bg-worker", "bg-nested-thread", "bg-nested-task"] {
        let entry = snapshot
            .entries()
            .iter()
            .find(|s| s.name() == Some(name))
            .unwrap_or_else(|| panic!("{name} is in the snapshot:\n{snapshot}"));
        assert_eq!(entry.test_name(), None);
    }
    let text = snapshot.to_string();
    assert!(
        text.contains("owner: background (declared long-lived)"),
        "{text}"
    );

    drop(stop_tx);
    worker.join().unwrap();
    drop(runtime);
    let snapshot = leakcheck::snapshot();
    assert!(
        !snapshot
            .entries()
            .iter()
            .any(|s| s.name().is_some_and(|n| n.starts_with("bg-"))),
        "{snapshot}"
    );
}

// ---- ignore rules ------------------------------------------------------------------

#[test]
fn ignore_name_exact_and_prefix() {
    let guard = Options::new()
        .settle(SETTLE)
        .ignore_name("ign-exact")
        .ignore_name("ign-pool-*")
        .verify_none();
    let workers = [
        Blocked::named("ign-exact"),
        Blocked::named("ign-pool-1"),
        Blocked::named("ign-pool-2"),
        Blocked::named("ign-exact-2"),
        Blocked::named("xign-pool-3"),
    ];
    let report = guard.check().unwrap_err();
    assert_eq!(names(&report), ["ign-exact-2", "xign-pool-3"], "{report}");
    drop(workers);

    let guard = Options::new()
        .settle(SETTLE)
        .ignore_name("ign2-*")
        .verify_none();
    let worker = Blocked::named("ign2-anything");
    guard.check().expect("every straggler is ignored");
    worker.finish();
}

#[test]
#[should_panic(expected = "would match no name or every name")]
fn ignore_name_refuses_a_pattern_that_matches_everything() {
    let _ = Options::new().ignore_name("*");
}

#[test]
fn ignore_location_by_file() {
    let guard = Options::new()
        .settle(SETTLE)
        .ignore_location("guard_behaviour.rs")
        .verify_none();
    let worker = Blocked::named("loc-file-ignored");
    guard
        .check()
        .expect("everything here is spawned in this file");
    worker.finish();

    // The file must match whole path components.
    let guard = Options::new()
        .settle(SETTLE)
        .ignore_location("uard_behaviour.rs")
        .ignore_location("tests/other.rs")
        .verify_none();
    let worker = Blocked::named("loc-file-reported");
    let report = guard.check().unwrap_err();
    assert_eq!(names(&report), ["loc-file-reported"], "{report}");
    worker.finish();
}

#[test]
fn ignore_location_by_file_and_line() {
    let spawn_line = line!() + 5;
    let guard = Options::new()
        .settle(SETTLE)
        .ignore_location(format!("tests/guard_behaviour.rs:{spawn_line}"))
        .verify_none();
    let ignored = Blocked::named("loc-line-ignored");
    assert_eq!(line!() - 1, spawn_line, "keep `spawn_line` in step");
    let reported = Blocked::named("loc-line-reported");
    let report = guard.check().unwrap_err();
    assert_eq!(names(&report), ["loc-line-reported"], "{report}");
    let location = report.stragglers()[0].location();
    assert_eq!(location.file(), "tests/guard_behaviour.rs");
    assert_eq!(location.line(), spawn_line + 2);
    drop((ignored, reported));
}

/// Two spawns on one line, told apart by their columns.
fn two_on_one_line() -> [Blocked; 2] {
    [Blocked::named("loc-col-a"), Blocked::named("loc-col-b")]
}

#[test]
fn ignore_location_by_file_line_and_column() {
    let guard = Options::new().settle(SETTLE).verify_none();
    let pair = two_on_one_line();
    let report = guard.check().unwrap_err();
    drop(pair);
    let site_of = |name: &str| {
        let location = report
            .stragglers()
            .iter()
            .find(|s| s.name() == Some(name))
            .unwrap()
            .location();
        (location.line(), location.column())
    };
    let (line, column_a) = site_of("loc-col-a");
    let (line_b, column_b) = site_of("loc-col-b");
    assert_eq!(line, line_b);
    assert_ne!(column_a, column_b);

    let guard = Options::new()
        .settle(SETTLE)
        .ignore_location(format!("guard_behaviour.rs:{line}:{column_a}"))
        .verify_none();
    let pair = two_on_one_line();
    let report = guard.check().unwrap_err();
    assert_eq!(names(&report), ["loc-col-b"], "{report}");
    drop(pair);

    // The line alone covers both.
    let guard = Options::new()
        .settle(SETTLE)
        .ignore_location(format!("guard_behaviour.rs:{line}"))
        .verify_none();
    let pair = two_on_one_line();
    guard.check().expect("both spawns are on the ignored line");
    drop(pair);
}

#[test]
#[should_panic(expected = "expected `file`, `file:line` or `file:line:col`")]
fn ignore_location_refuses_a_line_of_zero() {
    let _ = Options::new().ignore_location("tests/guard_behaviour.rs:0");
}

/// Spawns from a helper whose frame `ignore_frame` can match.
#[inline(never)]
fn spawn_from_pool_helper(name: &str) -> Blocked {
    Blocked::named(name)
}

#[test]
fn ignore_frame_matches_a_helper_in_the_creation_backtrace() {
    let guard = Options::new()
        .settle(SETTLE)
        .ignore_frame("spawn_from_pool_helper")
        .verify_none();
    let helped = spawn_from_pool_helper("frame-ignored");
    let direct = Blocked::named("frame-reported");
    let report = guard.check().unwrap_err();
    assert_eq!(names(&report), ["frame-reported"], "{report}");
    drop((helped, direct));

    // The helper's frame is in the backtrace, as the rule needs.
    let guard = Options::new().settle(SETTLE).verify_none();
    let helped = spawn_from_pool_helper("frame-shown");
    let report = guard.check().unwrap_err();
    let trace = report.stragglers()[0]
        .backtrace()
        .expect("backtraces are on by default");
    assert!(
        trace.frames().iter().any(|f| f
            .function()
            .is_some_and(|n| n.contains("spawn_from_pool_helper"))),
        "{trace}"
    );
    drop(helped);
}

#[test]
fn ignore_if_a_predicate_holds() {
    let runtime = multi_thread_runtime(1);
    let guard = Options::new()
        .settle(SETTLE)
        .ignore_if(|s| s.kind() == Kind::BlockingTask)
        .ignore_if(|s| s.name() == Some("if-ignored"))
        .verify_none();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let blocking = {
        let _entered = runtime.enter();
        leakcheck::spawn_blocking(move || {
            let _ = stop_rx.recv();
        })
    };
    let ignored = Blocked::named("if-ignored");
    let reported = Blocked::named("if-reported");
    let report = guard.check().unwrap_err();
    assert_eq!(names(&report), ["if-reported"], "{report}");
    drop(stop_tx);
    runtime.block_on(blocking).unwrap();
    drop((ignored, reported));
}

// ---- the guard's drop ----------------------------------------------------------------

/// The `expected` text names the spawn line below; keep them in step.
#[test]
#[should_panic(expected = "1 thread spawned at tests/guard_behaviour.rs:628:")]
fn dropping_a_leaky_guard_panics_with_the_report() {
    let worker;
    let _guard = Options::new().settle(SETTLE).verify_none();
    worker = Blocked::named("drop-panics-leak");
    let _ = &worker;
}

/// Keeps the `expected` line of the test above in step with its spawn.
#[test]
fn the_expected_line_above_is_the_spawn_line() {
    let source = include_str!("guard_behaviour.rs");
    let spawn = ["Blocked::named(\"drop-panics-leak\")", ";"].concat();
    let line = source
        .lines()
        .position(|line| line.contains(&spawn))
        .expect("the spawn line")
        + 1;
    let expected = ["guard_behaviour.rs:", &line.to_string(), ":\")]"].concat();
    assert!(
        source.contains(&expected),
        "update the should_panic line to {line}"
    );
}

#[test]
fn the_drop_panic_carries_the_whole_report() {
    let worker;
    let guard = Options::new().settle(SETTLE).verify_none();
    let line = line!() + 1;
    worker = Blocked::named("drop-report-leak");
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(guard)))
        .expect_err("the drop panics");
    let message = payload.downcast_ref::<String>().expect("a String payload");
    assert!(
        message.starts_with(&format!("leakcheck: test `{}` leaked 1 thread", me())),
        "{message}"
    );
    assert!(
        message.contains(&format!("spawned at tests/guard_behaviour.rs:{line}:")),
        "{message}"
    );
    assert!(message.contains("name: drop-report-leak"), "{message}");
    worker.finish();
}

// ---- timing --------------------------------------------------------------------------

#[test]
fn a_clean_check_returns_at_once_whatever_the_budget() {
    let runtime = current_thread_runtime();
    let guard = Options::new().settle(LONG_SETTLE).verify_none();
    let worker = leakcheck::thread::spawn(|| 6 * 7);
    assert_eq!(worker.join().unwrap(), 42);
    let task = runtime.block_on(async { leakcheck::spawn(async { 1 }).await.unwrap() });
    assert_eq!(task, 1);
    let started = Instant::now();
    guard.check().unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(50), "{elapsed:?}");

    let guard = Options::new().settle(LONG_SETTLE).verify_none();
    let started = Instant::now();
    runtime.block_on(guard.check_async()).unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(50), "{elapsed:?}");
}

#[test]
fn a_stuck_only_leak_fails_fast() {
    let runtime = current_thread_runtime();
    let guard = Options::new().settle(LONG_SETTLE).verify_none();
    let handles = runtime.block_on(async {
        let handles = [
            TaskBuilder::new()
                .name("fast-stuck-1")
                .spawn(pending::<()>())
                .unwrap(),
            TaskBuilder::new()
                .name("fast-stuck-2")
                .spawn(pending::<()>())
                .unwrap(),
        ];
        tokio::task::yield_now().await;
        handles
    });
    let started = Instant::now();
    let report = runtime.block_on(guard.check_async()).unwrap_err();
    let elapsed = started.elapsed();
    eprintln!("a stuck-only check failed after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}\n{report}");
    assert_eq!(names(&report), ["fast-stuck-1", "fast-stuck-2"], "{report}");
    assert!(report
        .stragglers()
        .iter()
        .all(|s| s.state() == State::Stuck));
    assert!(report
        .stragglers()
        .iter()
        .all(|s| s.state().is_proven_leak()));

    // The blocking check, from outside the runtime, is as fast.
    let guard = Options::new().settle(LONG_SETTLE).verify_none();
    let more = {
        let _entered = runtime.enter();
        TaskBuilder::new()
            .name("fast-stuck-3")
            .spawn(pending::<()>())
            .unwrap()
    };
    // Polled once, so it is idle rather than not yet started.
    runtime.block_on(tokio::task::yield_now());
    let started = Instant::now();
    let report = guard.check().unwrap_err();
    let elapsed = started.elapsed();
    eprintln!("a blocking stuck-only check failed after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}\n{report}");
    assert_eq!(names(&report), ["fast-stuck-3"], "{report}");

    runtime.block_on(async {
        for handle in handles.into_iter().chain([more]) {
            handle.abort();
            assert!(handle.await.unwrap_err().is_cancelled());
        }
    });
}

/// One straggler that could still finish is enough to wait out the budget.
#[test]
fn a_waiting_straggler_is_given_the_whole_budget() {
    let runtime = current_thread_runtime();
    let budget = Duration::from_millis(150);
    let guard = Options::new().settle(budget).verify_none();
    let (tx, rx) = oneshot::channel::<()>();
    let (stuck, waiting) = runtime.block_on(async {
        let stuck = TaskBuilder::new()
            .name("budget-stuck")
            .spawn(pending::<()>())
            .unwrap();
        let waiting = TaskBuilder::new()
            .name("budget-waiting")
            .spawn(async move {
                let _ = rx.await;
            })
            .unwrap();
        (stuck, waiting)
    });
    let report = runtime.block_on(guard.check_async()).unwrap_err();
    assert!(report.waited() >= budget, "{:?}", report.waited());
    let waiting_state = report
        .stragglers()
        .iter()
        .find(|s| s.name() == Some("budget-waiting"))
        .map(|s| s.state());
    assert_eq!(waiting_state, Some(State::Waiting), "{report}");
    stuck.abort();
    tx.send(()).unwrap();
    runtime.block_on(async {
        assert!(stuck.await.unwrap_err().is_cancelled());
        waiting.await.unwrap();
    });
}

// ---- snapshots -----------------------------------------------------------------------

#[test]
fn snapshot_groups_by_site_and_counts() {
    let me = me();
    let runtime = current_thread_runtime();
    let guard = Options::new().settle(SETTLE).verify_none();
    let thread_line = line!() + 2;
    let threads: Vec<Blocked> = (0..3)
        .map(|i| Blocked::named(&format!("snap-thread-{i}")))
        .collect();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let tasks = runtime.block_on(async {
        (0..2)
            .map(|i| {
                let mut stop = stop_rx.clone();
                TaskBuilder::new()
                    .name(&format!("snap-task-{i}"))
                    .spawn(async move {
                        let _ = stop.changed().await;
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    });

    let snapshot = leakcheck::snapshot();
    let mine: Vec<_> = snapshot
        .entries()
        .iter()
        .filter(|s| s.test_name() == Some(me.as_str()))
        .collect();
    assert_eq!(mine.len(), 5, "{snapshot}");
    assert_eq!(mine.iter().filter(|s| s.kind() == Kind::Thread).count(), 3);
    assert_eq!(mine.iter().filter(|s| s.kind() == Kind::Task).count(), 2);
    // Other tests of this binary may have work alive too.
    assert!(snapshot.len() >= 5);
    assert!(snapshot.count(Kind::Thread) >= 3);
    assert!(snapshot.count(Kind::Task) >= 2);
    assert!(!snapshot.is_empty());

    // Each kind was spawned from one site.
    let site = |kind: Kind| {
        let mut sites: Vec<(u32, u32)> = mine
            .iter()
            .filter(|s| s.kind() == kind)
            .map(|s| (s.location().line(), s.location().column()))
            .collect();
        sites.dedup();
        assert_eq!(sites.len(), 1, "{snapshot}");
        sites[0].0
    };
    assert_eq!(site(Kind::Thread), thread_line);
    let task_line = site(Kind::Task);

    let text = snapshot.to_string();
    assert!(text.starts_with("leakcheck snapshot: "), "{text}");
    assert!(
        text.contains(&format!(
            "3 threads spawned at tests/guard_behaviour.rs:{thread_line}:"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "2 tasks spawned at tests/guard_behaviour.rs:{task_line}:"
        )),
        "{text}"
    );
    // The label says `name:` even for several names (see
    // `a_group_of_several_names_is_labelled_names`), so only the list is
    // checked here.
    assert!(
        text.contains(": snap-thread-0, snap-thread-1, snap-thread-2\n"),
        "{text}"
    );
    assert!(text.contains(": snap-task-0, snap-task-1\n"), "{text}");
    assert!(text.contains(&format!("owner: test `{me}`")), "{text}");

    // The guard's report groups the same way.
    let report = guard.check().unwrap_err();
    assert_eq!(report.stragglers().len(), 5);
    assert_eq!(report.sites(), 2);
    let text = report.to_string();
    assert!(text.contains("leaked 2 tasks and 3 threads"), "{text}");

    drop(threads);
    drop(stop_tx);
    runtime.block_on(async {
        for task in tasks {
            task.await.unwrap();
        }
    });
    assert_mine_gone();
}

/// Nothing registered for the calling test is alive any more.
fn assert_mine_gone() {
    let me = me();
    let snapshot = leakcheck::snapshot();
    let left: Vec<_> = snapshot
        .entries()
        .iter()
        .filter(|s| s.test_name() == Some(me.as_str()))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Bug repro: a group of stragglers with several (up to five) names is
/// labelled `name:`, singular; six or more get `names: ... and N more`.
#[test]
fn a_group_of_several_names_is_labelled_names() {
    let guard = Options::new().settle(SETTLE).verify_none();
    let workers: Vec<Blocked> = ["label-a", "label-b"]
        .into_iter()
        .map(Blocked::named)
        .collect();
    let text = guard.check().unwrap_err().to_string();
    drop(workers);
    assert!(text.contains("  names: label-a, label-b\n"), "{text}");
}

// ---- accepting counted tasks -------------------------------------------------------
//
// A runtime built without `leakcheck::runtime::instrument` has no task hooks,
// in either cfg, so its plain `tokio::spawn` tasks are only counted.

/// A reaper that outlives the test by design is accepted by count.
#[test]
fn ignore_untracked_tasks_accepts_a_counted_reaper() {
    let runtime = current_thread_runtime();
    runtime.block_on(async {
        let guard = Options::new()
            .settle(SETTLE)
            .ignore_untracked_tasks(1)
            .verify_none();
        tokio::spawn(pending::<()>()); // the reaper
        tokio::task::yield_now().await;
        guard.check_async().await.expect("the reaper is accepted");
    });
}

/// A second, unrelated task is not hidden by the allowance, and the report
/// says how many tasks were accepted.
#[test]
fn ignore_untracked_tasks_does_not_hide_a_second_leak() {
    let runtime = current_thread_runtime();
    runtime.block_on(async {
        let guard = Options::new()
            .settle(SETTLE)
            .ignore_untracked_tasks(1)
            .verify_none();
        tokio::spawn(pending::<()>()); // the reaper
        tokio::spawn(pending::<()>()); // a leak
        tokio::task::yield_now().await;
        let report = guard.check_async().await.expect_err("one task is a leak");
        let text = report.to_string();
        assert_eq!(report.untracked_tasks(), 1, "{text}");
        assert!(
            text.contains(
                "note: 1 untracked task(s) on this runtime were accepted by `ignore_untracked_tasks`"
            ),
            "{text}"
        );
    });
}
