//! Faults leakcheck must survive: panics in tracked work and in test bodies,
//! guards dropped on another thread, out of order, or inside a task that is
//! aborted, runtimes and `LocalSet`s torn down under tracked tasks, and
//! `std::process::exit` with a guard alive.
//!
//! Much of this is covered elsewhere already; each section says where, and
//! adds only what was missing:
//! - panics in tasks, blocking tasks and threads on a multi-thread runtime:
//!   `runtimes.rs`, `panicking_tasks_leave_nothing_behind`;
//! - a panicking test body with a guard: `guard_behaviour.rs`,
//!   `a_panicking_test_keeps_its_own_panic_message` and
//!   `a_panicking_test_prints_the_report_and_does_not_abort`; with
//!   `#[leak_check]`: `attribute.rs`, `*_own_panic_is_reported_not_the_leak`;
//! - a guard checked or dropped on another thread: `guard_behaviour.rs`,
//!   `a_guard_checked_on_another_thread`,
//!   `a_guard_dropped_on_another_thread_panics_there`;
//! - nesting and out-of-order drops: `guard_behaviour.rs`,
//!   `nested_guards_each_see_their_own_scope_and_the_scopes_inside_it`,
//!   `guards_dropped_out_of_order`,
//!   `an_outer_guard_checked_first_reports_the_inner_scope_too`;
//! - runtimes dropped or shut down: `runtimes.rs`, `dropping_a_*_runtime_*`,
//!   `shutdown_background_of_a_*`, `shutdown_timeout_unregisters_its_tasks`;
//! - a dropped `LocalSet`: `runtimes.rs`,
//!   `a_dropped_local_set_leaves_nothing_registered`.
//!
//! The tests of this binary run in parallel, so every name is unique to its
//! test, and snapshot assertions look at the calling test's own entries.
//! Child tests (re-run in a subprocess) do nothing unless `LC_FAULTS_CHILD`
//! names them; the marker does not start with `LEAKCHECK`, which leakcheck
//! reserves.

use leakcheck::task::{Builder as TaskBuilder, JoinSetExt};
use leakcheck::thread::Builder as ThreadBuilder;
use leakcheck::{leak_check, LeakGuard, Options};
use std::future::pending;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::Output;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinSet, LocalSet};

#[path = "support/child.rs"]
mod child;
#[path = "support/common.rs"]
mod common;
use child::text;
use common::{current_thread_runtime, me, multi_thread_runtime, names, BlockedThread as Parked};

/// The settle budget of checks that are expected to find a waiting leak.
const SETTLE: Duration = Duration::from_millis(50);
/// A budget that a check must not wait out.
const LONG_SETTLE: Duration = Duration::from_secs(5);
/// Names the child test to run, in a child process.
const CHILD: &str = "LC_FAULTS_CHILD";

// ---- helpers -----------------------------------------------------------------------

/// The names of what the snapshot shows for the calling test, sorted.
fn mine_alive() -> Vec<String> {
    let me = me();
    let mut names: Vec<String> = leakcheck::snapshot()
        .entries()
        .iter()
        .filter(|s| s.test_name() == Some(me.as_str()))
        // Tracked work: a runtime thread that has not named itself yet is
        // the runtime's, not the work these tests spawn.
        .filter(|s| s.spawned_through_wrapper())
        .map(|s| s.name().unwrap_or("-").to_owned())
        .collect();
    names.sort_unstable();
    names
}

#[track_caller]
fn assert_mine_gone() {
    let alive = mine_alive();
    assert!(alive.is_empty(), "still registered: {alive:?}");
}

/// Who the snapshot says owns the live work named `name`.
fn owner_of(name: &str) -> Option<String> {
    let snapshot = leakcheck::snapshot();
    let entry = snapshot
        .entries()
        .iter()
        .find(|s| s.name() == Some(name))
        .unwrap_or_else(|| panic!("{name} is not registered:\n{snapshot}"));
    entry.test_name().map(str::to_owned)
}

/// The message of a panic payload.
fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "<not a string>".to_owned())
}

/// Waits until `stop` changes or is dropped.
async fn wait_for(mut stop: watch::Receiver<()>) {
    let _ = stop.changed().await;
}

/// True in the child process that should run `test`.
fn is_child(test: &str) -> bool {
    child::is_child(CHILD, test)
}

/// Runs the child test `test` of this binary alone, with every `LEAKCHECK*`
/// variable of this process removed and `vars` set.
fn run_child(test: &str, vars: &[(&str, &str)]) -> Output {
    child::run_child(CHILD, test, vars)
}

/// The child ended by itself with `code`: no signal, no abort.
#[track_caller]
fn assert_exit_code(output: &Output, code: i32) {
    let text = text(output);
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(output.status.signal(), None, "killed by a signal:\n{text}");
    }
    assert_eq!(
        output.status.code(),
        Some(code),
        "{}:\n{text}",
        output.status
    );
    for sign in [
        "panicked while processing panic",
        "panic in a destructor during cleanup",
        "thread caused non-unwinding panic",
        "aborting",
    ] {
        assert!(!text.contains(sign), "{sign:?} in:\n{text}");
    }
}

// ---- panics inside tracked work ----------------------------------------------------
//
// `runtimes.rs` covers a multi-thread runtime; here the current-thread
// runtime, `JoinSet` and `LocalSet` tasks, named threads, a payload that is
// not a string, and the scope the panicking poll leaves behind.

#[test]
fn panics_in_every_kind_of_tracked_work_leave_the_registry_clean() {
    let runtime = current_thread_runtime();
    let guard = Options::new().settle(LONG_SETTLE).verify_none();
    runtime.block_on(async {
        let at_once = leakcheck::spawn(async { panic!("a task panics on purpose") });
        let after_a_poll = TaskBuilder::new()
            .name("panics-after-a-poll")
            .spawn(async {
                tokio::task::yield_now().await;
                panic!("a named task panics on purpose");
            })
            .expect("spawn");
        let odd_payload = leakcheck::spawn(async { std::panic::panic_any(42u32) });
        let blocking = leakcheck::spawn_blocking(|| panic!("a blocking task panics on purpose"));
        let mut set = JoinSet::new();
        set.spawn_tracked(async { panic!("a set's task panics on purpose") });
        set.spawn_blocking_tracked(|| panic!("a set's blocking task panics on purpose"));
        assert!(at_once.await.unwrap_err().is_panic());
        assert!(after_a_poll.await.unwrap_err().is_panic());
        let payload = odd_payload.await.unwrap_err().into_panic();
        assert_eq!(payload.downcast_ref::<u32>(), Some(&42));
        assert!(blocking.await.unwrap_err().is_panic());
        while let Some(joined) = set.join_next().await {
            assert!(joined.unwrap_err().is_panic());
        }

        let local = LocalSet::new();
        local
            .run_until(async {
                let task = leakcheck::spawn_local(async { panic!("a local task panics") });
                let mut set = JoinSet::new();
                set.spawn_local_tracked(async { panic!("a set's local task panics") });
                assert!(task.await.unwrap_err().is_panic());
                assert!(set.join_next().await.unwrap().unwrap_err().is_panic());
            })
            .await;
    });
    let thread = leakcheck::thread::spawn(|| panic!("a thread panics on purpose"));
    let named = ThreadBuilder::new()
        .name("panicking-named-thread".into())
        .spawn(|| std::panic::panic_any(7u8))
        .expect("spawn");
    assert!(thread.join().is_err());
    assert_eq!(named.join().unwrap_err().downcast_ref::<u8>(), Some(&7));

    assert_mine_gone();
    let started = Instant::now();
    guard
        .check()
        .expect("every panicking unit unregistered itself");
    assert!(started.elapsed() < Duration::from_secs(1));

    // The process carries on: the next guard sees its own work, and only it.
    let guard = Options::new().settle(SETTLE).verify_none();
    let leak = Parked::named("after-the-panics");
    let report = guard.check().unwrap_err();
    assert_eq!(names(&report), ["after-the-panics"], "{report}");
    assert_eq!(report.test_name(), Some(me().as_str()));
    drop(leak);
}

/// A task that panics in the middle of a poll, on the thread that drives a
/// current-thread runtime, must leave that thread's scope as it found it,
/// even though it had opened a guard of its own and spawned work into it.
#[test]
fn a_task_panicking_mid_poll_leaves_the_threads_scope_intact() {
    let me = me();
    let runtime = current_thread_runtime();
    let outer = Options::new().settle(SETTLE).verify_none();
    let (stop_tx, stop_rx) = watch::channel(());
    let task = runtime.block_on(async {
        let task = TaskBuilder::new()
            .name("mid-poll-panicker")
            .spawn(async move {
                let _inner = Options::new().settle(SETTLE).verify_none();
                TaskBuilder::new()
                    .name("mid-poll-child")
                    .spawn(wait_for(stop_rx))
                    .expect("spawn");
                tokio::task::yield_now().await;
                // The inner guard is dropped while this unwinds: it prints its
                // report instead of panicking a second time.
                panic!("a task panics with a guard open");
            })
            .expect("spawn");
        task.await
    });
    let payload = task.unwrap_err().into_panic();
    assert_eq!(message(&*payload), "a task panics with a guard open");

    // Work spawned on this thread now is the outer guard's, not the inner's.
    let after = Parked::named("mid-poll-after");
    assert_eq!(owner_of("mid-poll-after").as_deref(), Some(me.as_str()));
    let report = outer.check().unwrap_err();
    assert_eq!(
        names(&report),
        ["mid-poll-after", "mid-poll-child"],
        "{report}"
    );
    // The inner guard is closed: a new guard here sees only its own work.
    let next = Options::new().settle(SETTLE).verify_none();
    let report = next.check();
    assert!(report.is_ok(), "{}", report.unwrap_err());

    drop(after);
    drop(stop_tx);
    drop(runtime);
    assert_mine_gone();
}

/// A tracked thread that opens its own guard, leaks into it and panics: the
/// guard reports on stderr, the thread's own panic is what `join` returns,
/// and the scope of the thread that spawned it is unaffected.
#[test]
fn a_thread_panicking_with_a_leaky_guard_open() {
    let outer = Options::new().settle(SETTLE).verify_none();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let thread = ThreadBuilder::new()
        .name("guarded-panicker".into())
        .spawn(move || {
            let _guard = Options::new().settle(SETTLE).verify_none();
            let _child = ThreadBuilder::new()
                .name("guarded-panicker-child".into())
                .spawn(move || {
                    let _ = stop_rx.recv();
                })
                .expect("spawn");
            panic!("a thread panics with a leaky guard open");
        })
        .expect("spawn");
    let payload = thread.join().unwrap_err();
    assert_eq!(
        message(&*payload),
        "a thread panics with a leaky guard open"
    );
    let report = outer.check().unwrap_err();
    assert_eq!(names(&report), ["guarded-panicker-child"], "{report}");
    drop(stop_tx);
    // The child's join handle was dropped; wait for it to unregister.
    let deadline = Instant::now() + LONG_SETTLE;
    while !mine_alive().is_empty() {
        assert!(Instant::now() < deadline, "{:?}", mine_alive());
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ---- a panic in the test body while a guard is held ------------------------------
//
// In-process `#[should_panic]` versions exist (see the module docs); these
// run the test in a child process to see how it ends: the test's own panic,
// every report on stderr, a normal test failure (101), no abort.

/// What every panicking child must show, with `leaked` the report's
/// headline, as in "leaked 1 task".
#[track_caller]
fn assert_failed_with_own_panic(test: &str, output: &Output, leaked: &[&str]) {
    assert_exit_code(output, 101);
    let text = text(output);
    assert!(text.contains("my own panic"), "{text}");
    assert!(text.contains(&format!("test {test} ... FAILED")), "{text}");
    for headline in leaked {
        let headline = format!("leakcheck: test `{test}` {headline}");
        assert!(text.contains(&headline), "no {headline:?} in:\n{text}");
    }
}

#[test]
fn child_panics_with_two_nested_leaky_guards() {
    if !is_child("child_panics_with_two_nested_leaky_guards") {
        return;
    }
    // Declared first, so dropped after the guards.
    let (outer_leak, inner_leak);
    let _outer = Options::new().settle(SETTLE).verify_none();
    outer_leak = Parked::named("nested-panic-outer");
    let _inner = Options::new().settle(SETTLE).verify_none();
    inner_leak = Parked::named("nested-panic-inner");
    let _ = (&outer_leak, &inner_leak);
    panic!("my own panic");
}

#[test]
fn a_panic_with_two_nested_leaky_guards_reports_both_and_does_not_abort() {
    let test = "child_panics_with_two_nested_leaky_guards";
    let output = run_child(test, &[]);
    // The inner guard is dropped first and sees its own leak; the outer one
    // sees both.
    assert_failed_with_own_panic(test, &output, &["leaked 1 thread", "leaked 2 threads"]);
}

#[leak_check(settle_ms = 50)]
fn child_leak_check_sync_panics() {
    if !is_child("child_leak_check_sync_panics") {
        return;
    }
    std::mem::forget(Parked::named("sync-panic-leak"));
    panic!("my own panic");
}

#[leak_check(settle_ms = 50)]
async fn child_leak_check_async_panics() {
    if !is_child("child_leak_check_async_panics") {
        return;
    }
    leakcheck::spawn(pending::<()>());
    tokio::task::yield_now().await;
    panic!("my own panic");
}

#[leak_check(settle_ms = 50, flavor = "multi_thread", worker_threads = 2)]
async fn child_leak_check_multi_thread_panics() {
    if !is_child("child_leak_check_multi_thread_panics") {
        return;
    }
    let (ready_tx, ready_rx) = oneshot::channel::<()>();
    leakcheck::spawn(async move {
        let _ = ready_tx.send(());
        pending::<()>().await
    });
    ready_rx.await.expect("the task starts");
    panic!("my own panic");
}

#[leak_check(settle_ms = 50)]
#[tokio::test]
async fn child_leak_check_above_tokio_test_panics() {
    if !is_child("child_leak_check_above_tokio_test_panics") {
        return;
    }
    leakcheck::spawn(pending::<()>());
    tokio::task::yield_now().await;
    panic!("my own panic");
}

/// A body that panics after waking its tasks: on leakcheck's current-thread
/// runtime they cannot run while the guard is dropped during the unwind, so
/// they are not blamed, and the check does not wait out its budget.
#[leak_check(settle_ms = 5000)]
async fn child_leak_check_panics_with_woken_tasks() {
    if !is_child("child_leak_check_panics_with_woken_tasks") {
        return;
    }
    // Plain: seen through the task hooks with `tokio_unstable`, only
    // counted without.
    let (plain_tx, plain_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = plain_rx.await;
    });
    let (tracked_tx, tracked_rx) = oneshot::channel::<()>();
    leakcheck::spawn(async move {
        let _ = tracked_rx.await;
    });
    tokio::task::yield_now().await;
    // Both tasks are woken, and would end on their next poll.
    drop((plain_tx, tracked_tx));
    panic!("my own panic");
}

#[test]
fn a_panicking_test_does_not_blame_tasks_that_could_not_run_nor_wait() {
    let test = "child_leak_check_panics_with_woken_tasks";
    let started = Instant::now();
    let output = run_child(test, &[]);
    let took = started.elapsed();
    assert_failed_with_own_panic(test, &output, &[]);
    let text = text(&output);
    assert!(!text.contains("leaked"), "{text}");
    // The settle budget is 5 s; the check must not have spent it.
    assert!(took < Duration::from_millis(2500), "took {took:?}:\n{text}");
}

#[test]
fn leak_check_tests_that_panic_report_their_own_panic_and_the_leak() {
    for (test, leaked) in [
        ("child_leak_check_sync_panics", "leaked 1 thread"),
        ("child_leak_check_async_panics", "leaked 1 task"),
        ("child_leak_check_multi_thread_panics", "leaked 1 task"),
        ("child_leak_check_above_tokio_test_panics", "leaked 1 task"),
    ] {
        let output = run_child(test, &[]);
        assert_failed_with_own_panic(test, &output, &[leaked]);
    }
}

// ---- a guard dropped on another thread --------------------------------------------
//
// `guard_behaviour.rs` covers a guard checked, or dropped, on another thread
// while nothing else is open. Here the other guards around it.

/// The outer of two nested guards is dropped on another thread while the
/// inner one is still open on the thread that made both: the outer reports
/// its whole subtree there, and the inner stays current here.
#[test]
fn an_outer_guard_dropped_elsewhere_while_the_inner_is_open_here() {
    let me = me();
    let outer = Options::new().settle(SETTLE).verify_none();
    let inner = Options::new().settle(SETTLE).verify_none();
    let first = Parked::named("elsewhere-first");
    let payload = std::thread::spawn(move || drop(outer))
        .join()
        .expect_err("the outer guard sees the inner guard's leak");
    let report = message(&*payload);
    assert!(
        report.contains(&format!("test `{me}` leaked 1 thread")),
        "{report}"
    );
    assert!(report.contains("elsewhere-first"), "{report}");

    let second = Parked::named("elsewhere-second");
    let report = inner.check().unwrap_err();
    assert_eq!(
        names(&report),
        ["elsewhere-first", "elsewhere-second"],
        "{report}"
    );
    drop((first, second));
}

/// A guard dropped on a thread that has a guard of its own open: the
/// foreign guard's drop must not close, or unstack, the local one.
#[test]
fn a_guard_dropped_on_a_thread_with_its_own_guard_leaves_that_one_current() {
    let me = me();
    let foreign = Options::new().settle(SETTLE).verify_none();
    let (result, leak) = std::thread::Builder::new()
        .name(format!("{me}-other"))
        .spawn(move || {
            let own = Options::new().settle(SETTLE).verify_none();
            drop(foreign);
            let leak = Parked::named("own-guard-leak");
            let report = own.check();
            let result = report.map_err(|report| names(&report).join(","));
            (result, leak)
        })
        .expect("spawn")
        .join()
        .expect("a clean foreign guard does not panic");
    assert_eq!(result, Err("own-guard-leak".to_owned()));
    drop(leak);
}

/// A guard moved into a task and dropped on a runtime worker: clean, it
/// passes; leaky, its panic becomes the task's outcome, and nothing else
/// happens to the runtime or the process.
#[test]
fn a_guard_dropped_on_a_runtime_worker() {
    let runtime = multi_thread_runtime(2);
    let clean = Options::new().settle(SETTLE).verify_none();
    let moved = runtime.spawn(async move { drop(clean) });
    runtime.block_on(moved).expect("a clean guard passes");

    let leaky = Options::new().settle(SETTLE).verify_none();
    let leak = Parked::named("worker-dropped-leak");
    let moved = runtime.spawn(async move { drop(leaky) });
    let error = runtime.block_on(moved).unwrap_err();
    let report = message(&*error.into_panic());
    assert!(report.contains("worker-dropped-leak"), "{report}");
    assert!(
        report.contains(&format!("test `{}` leaked 1 thread", me())),
        "{report}"
    );
    drop(leak);

    // The runtime still works, and so do guards in it.
    let task = TaskBuilder::new()
        .spawn_on(
            async {
                let guard = Options::new().settle(SETTLE).verify_none();
                leakcheck::spawn(async {}).await.expect("a task runs");
                guard.check_async().await
            },
            runtime.handle(),
        )
        .expect("spawn");
    runtime
        .block_on(task)
        .expect("the task runs")
        .expect("nothing leaked");
}

// ---- three nested guards, every drop order ----------------------------------------

/// Guards `g0` ⊃ `g1` ⊃ `g2`, each with a leak of its own, are dropped in
/// each of the 6 orders. Each drop reports exactly its own subtree: the
/// leaks of its own scope and the scopes nested in it, including scopes
/// already closed, and nothing of the scopes around it. After each drop, new
/// work goes to the innermost guard still open, or to no guard at all.
#[test]
fn three_nested_guards_dropped_in_every_order_report_their_own_subtrees() {
    let me = me();
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for (n, order) in orders.into_iter().enumerate() {
        let mut guards: Vec<Option<LeakGuard>> = Vec::new();
        let mut alive = Vec::new();
        // Each leak's name, and the level of the guard whose scope owns it.
        let mut owned: Vec<(String, Option<usize>)> = Vec::new();
        for level in 0..3 {
            guards.push(Some(
                Options::new()
                    .settle(Duration::from_millis(20))
                    .verify_none(),
            ));
            let name = format!("order{n}-leak-of-g{level}");
            alive.push(Parked::named(&name));
            owned.push((name, Some(level)));
        }
        let mut open = [true; 3];
        for (step, g) in order.into_iter().enumerate() {
            let guard = guards[g].take().expect("each guard is dropped once");
            let payload = catch_unwind(AssertUnwindSafe(|| drop(guard)))
                .expect_err("every guard has a leak in its subtree");
            let report = message(&*payload);
            let expected: Vec<&str> = owned
                .iter()
                .filter(|(_, level)| level.is_some_and(|level| level >= g))
                .map(|(name, _)| name.as_str())
                .collect();
            let context = format!("order {order:?}, dropping g{g}:\n{report}");
            let headline = match expected.len() {
                1 => format!("test `{me}` leaked 1 thread,"),
                count => format!("test `{me}` leaked {count} threads,"),
            };
            assert!(report.contains(&headline), "no {headline:?}: {context}");
            for (name, _) in &owned {
                let wanted = expected.contains(&name.as_str());
                assert_eq!(report.contains(name.as_str()), wanted, "{name}: {context}");
            }
            open[g] = false;

            let innermost = (0..3).rev().find(|&level| open[level]);
            let name = format!("order{n}-probe-after-step{step}");
            alive.push(Parked::named(&name));
            let owner = owner_of(&name);
            match innermost {
                Some(_) => assert_eq!(owner.as_deref(), Some(me.as_str()), "{name}"),
                None => assert_eq!(owner, None, "{name} is charged to a closed guard"),
            }
            owned.push((name, innermost));
        }
        drop(alive);
    }
    assert_mine_gone();
}

// ---- a guard inside a task that is aborted ----------------------------------------

/// Spawns, on the current runtime, a task that opens a guard, spawns a
/// waiting child (`child`) into it unless `clean`, and then holds the guard
/// across an await that never ends. Returns once the guard is open.
async fn spawn_guard_holder(
    holder: &str,
    child: &str,
    clean: bool,
    stop: watch::Receiver<()>,
) -> tokio::task::JoinHandle<()> {
    let (ready_tx, ready_rx) = oneshot::channel::<()>();
    let child = child.to_owned();
    let task = TaskBuilder::new()
        .name(holder)
        .spawn(async move {
            let _guard = Options::new().settle(SETTLE).verify_none();
            if !clean {
                TaskBuilder::new()
                    .name(&child)
                    .spawn(wait_for(stop))
                    .expect("spawn");
            }
            let _ = ready_tx.send(());
            pending::<()>().await
        })
        .expect("spawn");
    ready_rx.await.expect("the holder opens its guard");
    task
}

/// On a multi-thread runtime: the abort drops the task's future on a
/// worker, and with it the guard, which checks there. A clean guard passes,
/// and the task ends cancelled; a leaky one panics in its drop, which tokio
/// turns into the task's outcome. Nothing escapes, and guards opened later
/// on the same workers see only their own work.
#[test]
fn a_guard_inside_an_aborted_task_on_a_multi_thread_runtime() {
    let runtime = multi_thread_runtime(2);
    let outer = Options::new().settle(SETTLE).verify_none();
    let (stop_tx, stop_rx) = watch::channel(());
    let _entered = runtime.enter();

    let clean = runtime.block_on(spawn_guard_holder(
        "aborted-clean-holder",
        "-",
        true,
        stop_rx.clone(),
    ));
    clean.abort();
    let error = runtime.block_on(clean).unwrap_err();
    assert!(error.is_cancelled(), "{error}");

    let leaky = runtime.block_on(spawn_guard_holder(
        "aborted-leaky-holder",
        "aborted-holder-child",
        false,
        stop_rx,
    ));
    leaky.abort();
    let error = runtime.block_on(leaky).unwrap_err();
    assert!(error.is_panic(), "{error}");
    let report = message(&*error.into_panic());
    assert!(report.contains("leaked 1 task"), "{report}");
    assert!(report.contains("aborted-holder-child"), "{report}");

    // Later guards, on the same two workers, see only their own work.
    for _ in 0..4 {
        let task = TaskBuilder::new()
            .spawn(async {
                let guard = Options::new().settle(SETTLE).verify_none();
                let (stop, stopped) = oneshot::channel::<()>();
                let leak = TaskBuilder::new()
                    .name("after-abort-leak")
                    .spawn(async move {
                        let _ = stopped.await;
                    })
                    .expect("spawn");
                let report = guard.check_async().await;
                drop(stop);
                leak.await.expect("the leak ends");
                report
            })
            .expect("spawn");
        let report = runtime.block_on(task).expect("runs").unwrap_err();
        assert_eq!(names(&report), ["after-abort-leak"], "{report}");
    }

    // The child is still the test's; the outer guard sees it, not the
    // holders, which are gone.
    let report = outer.check().unwrap_err();
    assert_eq!(names(&report), ["aborted-holder-child"], "{report}");
    drop(stop_tx);
    drop(_entered);
    drop(runtime);
    assert_mine_gone();
}

/// On a current-thread runtime the abort is carried out on the test's own
/// thread, inside `block_on`: the guard's drop runs there, and this thread's
/// scope must come out of it unchanged.
#[test]
fn a_guard_inside_an_aborted_task_on_a_current_thread_runtime() {
    let me = me();
    let runtime = current_thread_runtime();
    let (stop_tx, stop_rx) = watch::channel(());
    let leaky = runtime.block_on(spawn_guard_holder(
        "ct-aborted-holder",
        "ct-aborted-holder-child",
        false,
        stop_rx,
    ));
    leaky.abort();
    let error = runtime.block_on(leaky).unwrap_err();
    assert!(error.is_panic(), "{error}");
    let report = message(&*error.into_panic());
    assert!(report.contains("ct-aborted-holder-child"), "{report}");

    // A guard on this thread now: a top-level one, labelled with the test,
    // that sees only what is spawned from here on.
    let guard = Options::new().settle(SETTLE).verify_none();
    let leak = Parked::named("ct-after-abort-leak");
    assert_eq!(
        owner_of("ct-after-abort-leak").as_deref(),
        Some(me.as_str())
    );
    let report = guard.check().unwrap_err();
    assert_eq!(names(&report), ["ct-after-abort-leak"], "{report}");
    assert_eq!(report.test_name(), Some(me.as_str()));
    drop(leak);
    let guard = Options::new().settle(SETTLE).verify_none();
    let report = guard.check();
    assert!(report.is_ok(), "{}", report.unwrap_err());

    drop(stop_tx);
    drop(runtime);
    assert_mine_gone();
}

/// A task aborted while it awaits its own guard's `check_async`: the check
/// is dropped half-way, which must close the guard quietly, not panic.
#[test]
fn a_task_aborted_during_its_guards_check_async() {
    let runtime = current_thread_runtime();
    let (stop_tx, stop_rx) = watch::channel(());
    let (checking_tx, checking_rx) = oneshot::channel::<()>();
    let task = {
        let _entered = runtime.enter();
        TaskBuilder::new()
            .name("aborted-while-checking")
            .spawn(async move {
                let guard = Options::new().settle(LONG_SETTLE).verify_none();
                TaskBuilder::new()
                    .name("aborted-while-checking-child")
                    .spawn(wait_for(stop_rx))
                    .expect("spawn");
                let _ = checking_tx.send(());
                let _ = guard.check_async().await;
                unreachable!("the check waits out its 5 s budget");
            })
            .expect("spawn")
    };
    runtime.block_on(checking_rx).expect("the check starts");
    task.abort();
    let error = runtime.block_on(task).unwrap_err();
    assert!(error.is_cancelled(), "{error}");

    let guard = Options::new().settle(SETTLE).verify_none();
    let report = guard.check();
    assert!(report.is_ok(), "{}", report.unwrap_err());
    drop(stop_tx);
    drop(runtime);
    assert_mine_gone();
}

// ---- runtimes shut down under their tasks -----------------------------------------
//
// `runtimes.rs` covers dropping both flavours, `shutdown_background` of both
// and `shutdown_timeout` of a multi-thread runtime. Here the rest.

#[test]
fn shutdown_timeout_of_a_current_thread_runtime_unregisters_its_tasks() {
    let runtime = current_thread_runtime();
    let guard = Options::new().settle(LONG_SETTLE).verify_none();
    let (_keep, stop_rx) = watch::channel(());
    runtime.block_on(async {
        TaskBuilder::new()
            .name("ct-timeout-stuck")
            .spawn(pending::<()>())
            .expect("spawn");
        TaskBuilder::new()
            .name("ct-timeout-waiting")
            .spawn(wait_for(stop_rx))
            .expect("spawn");
        tokio::task::yield_now().await;
    });
    assert_eq!(mine_alive(), ["ct-timeout-stuck", "ct-timeout-waiting"]);
    runtime.shutdown_timeout(Duration::from_secs(10));
    assert_mine_gone();
    guard.check().expect("nothing stays registered");
}

/// Blocking tasks, one running and three queued behind it, outlive their
/// runtime's `shutdown_timeout`: tokio neither stops the running one nor
/// forgets the queued ones (it runs or drops them once the pool's thread is
/// free). They must stay registered exactly as long as that, and leave the
/// registry when they end, whichever way tokio ends them.
#[test]
fn blocking_tasks_that_outlive_a_runtime_shutdown_leave_when_they_end() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .expect("build a runtime");
    let guard = Options::new().settle(LONG_SETTLE).verify_none();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let entered = runtime.enter();
    let running = TaskBuilder::new()
        .name("blocking-running")
        .spawn_blocking(move || {
            started_tx.send(()).expect("the test waits");
            let _ = release_rx.recv();
        })
        .expect("spawn");
    started_rx.recv().expect("the running one starts");
    let queued: Vec<_> = (0..3)
        .map(|_| {
            TaskBuilder::new()
                .name("blocking-queued")
                .spawn_blocking(|| ())
                .expect("spawn")
        })
        .collect();
    drop(entered);

    // The pool's only thread is busy, so nothing can have ended yet.
    runtime.shutdown_timeout(Duration::from_millis(10));
    assert_eq!(
        mine_alive(),
        [
            "blocking-queued",
            "blocking-queued",
            "blocking-queued",
            "blocking-running"
        ]
    );
    drop(release_tx);
    guard
        .check()
        .expect("the running one returns, and the queued ones end after it");
    drop((running, queued));
    assert_mine_gone();
}

/// A `Handle` can outlive its runtime. Spawning through it then must not
/// leave a registration behind for work that tokio drops at once.
#[test]
fn spawning_onto_a_runtime_that_is_gone_registers_nothing() {
    let runtime = current_thread_runtime();
    let handle = runtime.handle().clone();
    drop(runtime);
    let guard = Options::new().settle(LONG_SETTLE).verify_none();
    let task = TaskBuilder::new()
        .name("onto-a-dead-runtime")
        .spawn_on(pending::<()>(), &handle)
        .expect("spawn");
    let entered = handle.enter();
    let blocking = leakcheck::spawn_blocking(|| 1);
    let plain = leakcheck::spawn(pending::<()>());
    drop(entered);
    assert_mine_gone();
    guard.check().expect("nothing is registered");
    drop((task, blocking, plain));
}

/// A check that waits on a runtime's tasks, on another thread, while the
/// runtime is dropped: it passes as soon as they are gone.
#[test]
fn a_check_waiting_on_a_runtimes_tasks_passes_when_the_runtime_is_dropped() {
    let runtime = multi_thread_runtime(2);
    let guard = Options::new().settle(LONG_SETTLE).verify_none();
    let (_keep, stop_rx) = watch::channel(());
    for _ in 0..3 {
        TaskBuilder::new()
            .name("dropped-under-a-check")
            .spawn_on(wait_for(stop_rx.clone()), runtime.handle())
            .expect("spawn");
    }
    let (checking_tx, checking_rx) = mpsc::channel::<()>();
    let checker = std::thread::spawn(move || {
        checking_tx.send(()).expect("the test waits");
        guard.check()
    });
    checking_rx.recv().expect("the checker starts");
    drop(runtime);
    let result = checker.join().expect("the check does not panic");
    assert!(result.is_ok(), "{}", result.unwrap_err());
    assert_mine_gone();
}

/// A runtime dropped while its tasks hold leaky guards of their own: each
/// guard's drop runs during the shutdown and panics, which tokio contains;
/// the shutdown completes and nothing stays registered.
#[test]
fn a_runtime_dropped_while_its_tasks_hold_leaky_guards() {
    for workers in [0, 2] {
        let runtime = match workers {
            0 => current_thread_runtime(),
            n => multi_thread_runtime(n),
        };
        let outer = Options::new().settle(LONG_SETTLE).verify_none();
        let (stop_tx, stop_rx) = watch::channel(());
        let _entered = runtime.enter();
        for i in 0..2 {
            runtime.block_on(spawn_guard_holder(
                &format!("shutdown-holder-{workers}-{i}"),
                &format!("shutdown-holder-child-{workers}-{i}"),
                false,
                stop_rx.clone(),
            ));
        }
        assert_eq!(mine_alive().len(), 4, "{:?}", mine_alive());
        drop(_entered);
        drop(runtime);
        assert_mine_gone();
        outer.check().expect("nothing stays registered");
        drop(stop_tx);
    }
}

// ---- std::process::exit with a guard alive ----------------------------------------
//
// `at_exit.rs` covers a binary that ends normally. Here the test calls
// `std::process::exit` itself, skipping every destructor (the guard's
// check among them). The at-exit check still runs, from libc's `exit`.

/// The line of this file where a child below spawns its leak.
#[cfg(unix)]
fn child_spawn_line(output: &Output) -> u32 {
    let text = text(output);
    text.lines()
        .find_map(|line| line.split("leak spawned at line ").nth(1))
        .and_then(|line| line.trim().parse().ok())
        .unwrap_or_else(|| panic!("the child did not say where it spawned:\n{text}"))
}

#[test]
fn child_exits_clean_with_a_guard_open() {
    if !is_child("child_exits_clean_with_a_guard_open") {
        return;
    }
    let _guard = Options::new().settle(SETTLE).verify_none();
    leakcheck::thread::spawn(|| ()).join().expect("joins");
    std::process::exit(7);
}

#[test]
fn child_exits_with_a_leak_in_an_open_guard() {
    if !is_child("child_exits_with_a_leak_in_an_open_guard") {
        return;
    }
    let code = std::env::var("LC_EXIT_CODE").map_or(7, |c| c.parse().expect("a code"));
    let _guard = Options::new().settle(SETTLE).verify_none();
    let line = line!() + 1;
    let leak = leakcheck::thread::spawn(|| loop {
        std::thread::park();
    });
    eprintln!("leak spawned at line {line}");
    std::mem::forget(leak);
    std::process::exit(code);
}

#[test]
fn child_exits_inside_a_runtime_with_a_leaked_task() {
    if !is_child("child_exits_inside_a_runtime_with_a_leaked_task") {
        return;
    }
    multi_thread_runtime(2).block_on(async {
        let _guard = Options::new().settle(SETTLE).verify_none();
        let (ready_tx, ready_rx) = oneshot::channel::<()>();
        let line = line!() + 1;
        leakcheck::spawn(async move {
            let _ = ready_tx.send(());
            pending::<()>().await
        });
        eprintln!("leak spawned at line {line}");
        ready_rx.await.expect("the task starts");
        std::process::exit(5);
    });
}

#[test]
fn child_exits_from_a_tracked_thread() {
    if !is_child("child_exits_from_a_tracked_thread") {
        return;
    }
    let _guard = Options::new().settle(SETTLE).verify_none();
    let line = line!() + 1;
    let exiter = leakcheck::thread::spawn(|| std::process::exit(9));
    eprintln!("leak spawned at line {line}");
    let _ = exiter.join();
    unreachable!("the thread exits the process");
}

#[test]
fn child_exits_with_background_work_alive() {
    if !is_child("child_exits_with_background_work_alive") {
        return;
    }
    let _guard = Options::new().settle(SETTLE).verify_none();
    std::mem::forget(leakcheck::background(|| {
        leakcheck::thread::spawn(|| loop {
            std::thread::park();
        })
    }));
    std::process::exit(3);
}

/// `LEAKCHECK_AT_EXIT=1`, and a short settle so that a leak costs little.
#[cfg(unix)]
const AT_EXIT: [(&str, &str); 2] = [("LEAKCHECK_AT_EXIT", "1"), ("LEAKCHECK_SETTLE_MS", "50")];

#[cfg(unix)]
#[track_caller]
fn assert_at_exit_report(output: &Output, kind: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let site = format!(
        "1 {kind} spawned at tests/faults.rs:{}:",
        child_spawn_line(output)
    );
    assert!(stderr.contains(&site), "no {site:?} in:\n{stderr}");
    assert!(
        stderr.contains("LEAKCHECK_AT_EXIT found work still alive when the test binary exited"),
        "{stderr}"
    );
}

#[cfg(unix)]
#[test]
fn exit_with_nothing_leaked_keeps_its_own_code() {
    let output = run_child("child_exits_clean_with_a_guard_open", &AT_EXIT);
    assert_exit_code(&output, 7);
    assert!(!text(&output).contains("LEAKCHECK_AT_EXIT"));
    let output = run_child("child_exits_with_background_work_alive", &AT_EXIT);
    assert_exit_code(&output, 3);
    assert!(!text(&output).contains("LEAKCHECK_AT_EXIT"));
}

#[cfg(unix)]
#[test]
fn exit_with_a_leaked_thread_fails_with_1_from_the_at_exit_check() {
    let test = "child_exits_with_a_leak_in_an_open_guard";
    let output = run_child(test, &AT_EXIT);
    assert_exit_code(&output, 1);
    assert_at_exit_report(&output, "thread");

    // Exit status 0 from the test is overridden too.
    let mut vars = AT_EXIT.to_vec();
    vars.push(("LC_EXIT_CODE", "0"));
    let output = run_child(test, &vars);
    assert_exit_code(&output, 1);
    assert_at_exit_report(&output, "thread");

    // Without the at-exit check, nothing checks: the test's own code stands.
    let output = run_child(test, &[("LEAKCHECK_SETTLE_MS", "50")]);
    assert_exit_code(&output, 7);
    assert!(!text(&output).contains("LEAKCHECK_AT_EXIT"));
}

#[cfg(unix)]
#[test]
fn exit_inside_a_runtime_with_a_leaked_task_fails_with_1() {
    let output = run_child("child_exits_inside_a_runtime_with_a_leaked_task", &AT_EXIT);
    assert_exit_code(&output, 1);
    assert_at_exit_report(&output, "task");
}

/// The thread that calls `exit` is tracked work that is still alive.
#[cfg(unix)]
#[test]
fn exit_from_a_tracked_thread_fails_with_1() {
    let output = run_child("child_exits_from_a_tracked_thread", &AT_EXIT);
    assert_exit_code(&output, 1);
    assert_at_exit_report(&output, "thread");
}

// ---- a LocalSet dropped with tracked tasks in it -----------------------------------
//
// `runtimes.rs` covers a `LocalSet` dropped inside its runtime. Here one
// that outlives its runtime, one never run, one whose task holds a leaky
// guard, and one dropped while a panic unwinds.

#[test]
fn a_local_set_that_outlives_its_runtime_unregisters_its_tasks_when_dropped() {
    let runtime = current_thread_runtime();
    let guard = Options::new().settle(LONG_SETTLE).verify_none();
    let (_keep, stop_rx) = watch::channel(());
    let local = LocalSet::new();
    runtime.block_on(local.run_until(async {
        TaskBuilder::new()
            .name("outliving-local-waiting")
            .spawn_local(wait_for(stop_rx))
            .expect("spawn");
        TaskBuilder::new()
            .name("outliving-local-stuck")
            .spawn_local(pending::<()>())
            .expect("spawn");
        tokio::task::yield_now().await;
    }));
    drop(runtime);
    // The `LocalSet` owns its tasks, not the runtime.
    assert_eq!(
        mine_alive(),
        ["outliving-local-stuck", "outliving-local-waiting"]
    );
    drop(local);
    assert_mine_gone();
    guard.check().expect("nothing stays registered");
}

#[test]
fn a_local_set_never_run_unregisters_its_tasks_when_dropped() {
    let guard = Options::new().settle(LONG_SETTLE).verify_none();
    let local = LocalSet::new();
    {
        let _entered = local.enter();
        TaskBuilder::new()
            .name("never-run-local")
            .spawn_local(pending::<()>())
            .expect("spawn");
        let mut set = JoinSet::new();
        set.spawn_local_tracked(pending::<()>());
        std::mem::forget(set);
    }
    assert_eq!(mine_alive().len(), 2, "{:?}", mine_alive());
    drop(local);
    assert_mine_gone();
    guard.check().expect("nothing stays registered");
}

#[test]
fn a_local_set_dropped_with_a_task_holding_a_leaky_guard() {
    let runtime = current_thread_runtime();
    let outer = Options::new().settle(LONG_SETTLE).verify_none();
    let (stop_tx, stop_rx) = watch::channel(());
    let local = LocalSet::new();
    runtime.block_on(local.run_until(async {
        let (ready_tx, ready_rx) = oneshot::channel::<()>();
        TaskBuilder::new()
            .name("local-guard-holder")
            .spawn_local(async move {
                let _guard = Options::new().settle(SETTLE).verify_none();
                TaskBuilder::new()
                    .name("local-guard-child")
                    .spawn_local(wait_for(stop_rx))
                    .expect("spawn");
                let _ = ready_tx.send(());
                pending::<()>().await
            })
            .expect("spawn");
        ready_rx.await.expect("the holder opens its guard");
    }));
    assert_eq!(mine_alive(), ["local-guard-child", "local-guard-holder"]);
    // Inside the runtime, as a `LocalSet` usually is when it goes.
    runtime.block_on(async move { drop(local) });
    assert_mine_gone();
    outer.check().expect("nothing stays registered");
    drop(stop_tx);
}

#[test]
fn a_local_set_dropped_while_a_panic_unwinds() {
    let runtime = current_thread_runtime();
    let outer = Options::new().settle(LONG_SETTLE).verify_none();
    let (_keep, stop_rx) = watch::channel(());
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        let local = LocalSet::new();
        runtime.block_on(local.run_until(async {
            TaskBuilder::new()
                .name("unwound-local-holder")
                .spawn_local(async move {
                    let _guard = Options::new().settle(SETTLE).verify_none();
                    TaskBuilder::new()
                        .name("unwound-local-child")
                        .spawn_local(wait_for(stop_rx))
                        .expect("spawn");
                    pending::<()>().await
                })
                .expect("spawn");
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
        }));
        assert_eq!(mine_alive().len(), 2, "{:?}", mine_alive());
        panic!("the test body panics with a LocalSet alive");
    }));
    assert_eq!(
        message(&*unwound.unwrap_err()),
        "the test body panics with a LocalSet alive"
    );
    assert_mine_gone();
    outer.check().expect("nothing stays registered");
    drop(runtime);
}

// ---- bug reproductions -------------------------------------------------------------

/// Bug repro: a settle budget near `Duration::MAX` ("wait as long as it
/// takes") panics inside the check with "overflow when multiplying duration
/// by scalar" (`src/guard/settle.rs`, `self.budget * MAX_BUDGETS`) as soon as
/// a straggler is still alive, instead of waiting for it. The straggler here
/// ends by itself shortly after the check starts, so a check that waits
/// passes; `settle_ms = 18446744073709551615` in `#[leak_check]` gives
/// `Duration::from_millis(u64::MAX)`, which does not overflow, so only
/// `Options::settle` reaches this.
#[test]
fn a_check_with_an_unbounded_settle_budget_waits_instead_of_panicking() {
    let guard = Options::new().settle(Duration::MAX).verify_none();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let worker = ThreadBuilder::new()
        .name("unbounded-budget-worker".into())
        .spawn(move || {
            let _ = stop_rx.recv();
        })
        .expect("spawn");
    // Ends the worker a moment after the check has started; when is not
    // important, only that the check is still waiting then.
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        drop(stop_tx);
    });
    let result = catch_unwind(AssertUnwindSafe(|| guard.check()));
    stopper.join().expect("the stopper ends");
    worker.join().expect("the worker ends");
    match result {
        Ok(Ok(())) => {}
        Ok(Err(report)) => panic!("the worker ended, yet:\n{report}"),
        Err(panic) => panic!("the check panicked: {}", message(&*panic)),
    }
}
