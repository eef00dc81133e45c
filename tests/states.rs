//! Task states: each state a straggler can be in is produced on purpose, and
//! asserted both on `Straggler::state()` and in the report's text. Also the
//! cheap figures (polls, wakes, idle time), and the fast verdict: a check
//! whose stragglers are all provably stuck fails at once, whatever its
//! settle budget, while one with a waiting straggler spends the budget.
//!
//! Every test is deterministic: tasks tell the test when they have been
//! polled (channels), and states that could change over time are observed on
//! runtimes that cannot run in between (current-thread runtimes that are not
//! being driven, or a snapshot taken without yielding).

use leakcheck::task::Builder as TaskBuilder;
use leakcheck::{Kind, LeakReport, Options, State, Straggler};
use std::future::{pending, poll_fn};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};

#[path = "support/sites.rs"]
mod sites;

/// The settle budget of checks that must wait it out.
const SETTLE: Duration = Duration::from_millis(50);
/// A budget that a check must not wait out.
const LONG_SETTLE: Duration = Duration::from_secs(5);
/// A bound far above the fast verdict's real figure (a few ms), and far
/// below `LONG_SETTLE`, so it cannot flake.
const FAST: Duration = Duration::from_secs(1);

/// This file, to find the exact line and column of each marked spawn.
const SOURCE: &str = include_str!("states.rs");

/// The line and column of the spawn call on the line that ends with
/// `// site:<marker>`; `call` is the text the call starts with: the path of
/// a function (`leakcheck::spawn(`) or the name of a method (`spawn_on(`).
#[track_caller]
fn site(marker: &str, call: &str) -> (u32, u32) {
    sites::site_in(SOURCE, marker, call)
}

/// The paragraph of a report or snapshot about the group spawned at `line`
/// of this file: from its header to the next blank line.
#[track_caller]
fn paragraph(text: &str, line: u32) -> String {
    let header = format!(" spawned at {}:{line}:", file!());
    let mut lines = text.lines().skip_while(|l| !l.contains(&header));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no group spawned at line {line}:\n{text}"));
    let mut out = vec![first];
    out.extend(lines.take_while(|l| !l.is_empty()));
    out.join("\n")
}

/// The one straggler spawned at `line` of this file.
#[track_caller]
fn at_line(stragglers: &[Straggler], line: u32) -> &Straggler {
    let found: Vec<&Straggler> = stragglers
        .iter()
        .filter(|s| s.location().file() == file!() && s.location().line() == line)
        .collect();
    assert_eq!(found.len(), 1, "stragglers at line {line}: {stragglers:?}");
    found[0]
}

/// Asserts the straggler spawned at `(line, column)` is in `state`, both as
/// data and in `text`, whose group paragraph for it is returned.
#[track_caller]
fn assert_state(
    stragglers: &[Straggler],
    text: &str,
    (line, column): (u32, u32),
    state: State,
    shown: &str,
) -> String {
    let straggler = at_line(stragglers, line);
    assert_eq!(straggler.location().column(), column, "{straggler:?}");
    assert_eq!(straggler.state(), state, "{straggler:?}\n{text}");
    assert_eq!(state.to_string(), shown);
    let paragraph = paragraph(text, line);
    let header = format!(" spawned at {}:{line}:{column}", file!());
    assert!(paragraph.contains(&header), "{paragraph}");
    let expected = format!("  state: {shown}: {}", state.explanation());
    assert!(
        paragraph.lines().any(|l| l == expected),
        "expected `{expected}` in:\n{paragraph}"
    );
    paragraph
}

#[track_caller]
fn assert_report_state(report: &LeakReport, at: (u32, u32), state: State, shown: &str) -> String {
    assert_state(report.stragglers(), &report.to_string(), at, state, shown)
}

fn multi_thread(workers: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("build a runtime")
}

/// A current-thread runtime that the test drives only when it says so.
fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a runtime")
}

// ---- stuck ---------------------------------------------------------------------------

#[tokio::test]
async fn stuck_a_task_awaiting_pending() {
    let at = site("stuck-pending", "leakcheck::spawn(");
    let guard = Options::new().settle(LONG_SETTLE).verify_none();
    let task = leakcheck::spawn(pending::<()>()); // site:stuck-pending
    let report = guard.check_async().await.unwrap_err();

    let text = report.to_string();
    let paragraph = assert_report_state(&report, at, State::Stuck, "stuck");
    assert!(paragraph.contains(
        "state: stuck: idle, never woken since its last poll, and no live waker: nothing can ever wake it"
    ));
    let straggler = at_line(report.stragglers(), at.0);
    assert!(straggler.state().is_proven_leak());
    assert_eq!(straggler.kind(), Kind::Task);
    assert_eq!((straggler.polls(), straggler.wakes()), (1, 0), "{text}");
    assert!(
        paragraph.contains("polled once, woken 0 times"),
        "{paragraph}"
    );
    assert!(report.waited() < FAST, "{text}");
    task.abort();
}

/// A hand-written future that returns `Pending` without keeping its waker:
/// the classic lost wakeup. Nothing holds a clone of the waker, so nothing
/// can ever wake the task.
#[test]
fn stuck_a_future_that_drops_its_waker() {
    let rt = multi_thread(2);
    let at = site("stuck-lost-wakeup", "spawn_on(");
    let guard = Options::new().settle(LONG_SETTLE).verify_none();
    let lost = poll_fn(|_cx| Poll::<()>::Pending);
    let _task = TaskBuilder::new().spawn_on(lost, rt.handle()).unwrap(); // site:stuck-lost-wakeup
    let report = guard.check().unwrap_err();
    assert_report_state(&report, at, State::Stuck, "stuck");
    assert!(report.waited() < FAST, "{report}");
}

// ---- waiting -------------------------------------------------------------------------

#[tokio::test]
async fn waiting_on_a_channel_whose_sender_is_kept() {
    let at = site("waiting-recv", "leakcheck::spawn(");
    let guard = Options::new().settle(SETTLE).verify_none();
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let task = leakcheck::spawn(async move { while rx.recv().await.is_some() {} }); // site:waiting-recv
    let report = guard.check_async().await.unwrap_err();

    let paragraph = assert_report_state(&report, at, State::Waiting, "waiting");
    assert!(paragraph.contains(
        "state: waiting: idle; a waker is held somewhere (a channel, timer or lock), so it could still be woken"
    ));
    assert!(!report.stragglers()[0].state().is_proven_leak());
    assert!(report.waited() >= SETTLE, "not fast-failed: {report}");
    drop(tx);
    task.await.unwrap();
}

#[tokio::test]
async fn waiting_on_a_sleep_in_a_loop() {
    let at = site("waiting-sleep", "leakcheck::spawn(");
    let guard = Options::new().settle(SETTLE).verify_none();
    let sleeper = async {
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    };
    let task = leakcheck::spawn(sleeper); // site:waiting-sleep
    let report = guard.check_async().await.unwrap_err();
    assert_report_state(&report, at, State::Waiting, "waiting");
    assert!(report.waited() >= SETTLE, "{report}");
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
}

#[tokio::test]
async fn waiting_on_a_mutex_held_elsewhere() {
    let at = site("waiting-mutex", "leakcheck::spawn(");
    let guard = Options::new().settle(SETTLE).verify_none();
    let lock = Arc::new(tokio::sync::Mutex::new(0u32));
    let held = lock.clone().lock_owned().await;
    let contender = lock.clone();
    let task = leakcheck::spawn(async move { *contender.lock().await += 1 }); // site:waiting-mutex
    let report = guard.check_async().await.unwrap_err();
    assert_report_state(&report, at, State::Waiting, "waiting");
    assert!(report.waited() >= SETTLE, "{report}");
    drop(held);
    task.await.unwrap();
    assert_eq!(*lock.lock().await, 1);
}

/// The README: a waker clone held only inside the task's own future still
/// counts, so a task waiting on a lock it holds itself is waiting, not stuck,
/// and the settle budget decides.
#[tokio::test]
async fn waiting_on_a_lock_the_task_holds_itself() {
    let at = site("waiting-self-lock", "leakcheck::spawn(");
    let guard = Options::new().settle(SETTLE).verify_none();
    let deadlock = async {
        let lock = tokio::sync::Mutex::new(());
        let _first = lock.lock().await;
        let _second = lock.lock().await;
    };
    let task = leakcheck::spawn(deadlock); // site:waiting-self-lock
    let report = guard.check_async().await.unwrap_err();
    assert_report_state(&report, at, State::Waiting, "waiting");
    assert!(report.waited() >= SETTLE, "{report}");
    task.abort();
}

/// A lock whose guard is leaked can never be released, but the waiting
/// task's waker sits in the lock's queue, alive: leakcheck cannot prove it
/// stuck, so it is waiting and the budget is spent.
#[tokio::test]
async fn waiting_on_a_mutex_whose_guard_was_forgotten() {
    let at = site("waiting-forgotten", "leakcheck::spawn(");
    let guard = Options::new().settle(SETTLE).verify_none();
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    std::mem::forget(lock.clone().lock_owned().await);
    let task = leakcheck::spawn(async move { drop(lock.lock().await) }); // site:waiting-forgotten
    let report = guard.check_async().await.unwrap_err();
    assert_report_state(&report, at, State::Waiting, "waiting");
    assert!(report.waited() >= SETTLE, "{report}");
    task.abort();
}

// ---- runnable ------------------------------------------------------------------------

/// Woken, not yet polled again: seen by a snapshot taken right after the
/// wake, before the test yields to its current-thread runtime.
#[tokio::test]
async fn runnable_in_a_snapshot_right_after_a_wake() {
    let at = site("runnable-snapshot", "spawn(");
    // Tracking starts with the first snapshot or guard in the process.
    leakcheck::snapshot();
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let (wake_tx, wake_rx) = oneshot::channel::<()>();
    let waiter = async move {
        started_tx.send(()).unwrap();
        wake_rx.await.unwrap();
    };
    let task = TaskBuilder::new()
        .name("states-runnable-snapshot")
        .spawn(waiter) // site:runnable-snapshot
        .unwrap();
    // The runtime has one thread: when this returns, the task's poll ended.
    started_rx.await.unwrap();
    let before = leakcheck::snapshot();
    wake_tx.send(()).unwrap();
    let after = leakcheck::snapshot();

    let waiting = assert_state(
        before.entries(),
        &before.to_string(),
        at,
        State::Waiting,
        "waiting",
    );
    assert!(waiting.contains("polled once, woken 0 times"), "{waiting}");
    let runnable = assert_state(
        after.entries(),
        &after.to_string(),
        at,
        State::Runnable,
        "runnable",
    );
    assert!(runnable.contains("state: runnable: woken and waiting for its next poll"));
    assert!(
        runnable.contains("name: states-runnable-snapshot"),
        "{runnable}"
    );
    assert!(runnable.contains("polled once, woken once"), "{runnable}");
    assert!(runnable.contains("owner: outside any check"), "{runnable}");
    task.await.unwrap();
}

/// The same in a report: the task's runtime is not driven while the check
/// runs (from a thread outside any runtime), so it stays runnable.
#[test]
fn runnable_in_a_report_when_its_runtime_is_not_driven() {
    let rt = current_thread();
    let at = site("runnable-report", "spawn_on(");
    let guard = Options::new().settle(SETTLE).verify_none();
    let (wake_tx, wake_rx) = oneshot::channel::<()>();
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let waiter = async move {
        started_tx.send(()).unwrap();
        wake_rx.await.unwrap();
    };
    let task = TaskBuilder::new().spawn_on(waiter, rt.handle()).unwrap(); // site:runnable-report
                                                                          // The runtime runs only inside this block_on, and the task's first poll
                                                                          // has ended when it returns.
    rt.block_on(started_rx).unwrap();
    wake_tx.send(()).unwrap();
    let report = guard.check().unwrap_err();
    assert_report_state(&report, at, State::Runnable, "runnable");
    assert!(report.waited() >= SETTLE, "{report}");
    rt.block_on(task).unwrap();
}

// ---- busy ----------------------------------------------------------------------------

/// A task that yields in a loop is polled over and over while the check
/// waits; the report gives the number of those polls.
///
/// On a current-thread runtime the check's look always comes after tokio has
/// woken the deferred yield, so the task is seen runnable, never idle.
#[tokio::test]
async fn busy_a_task_spinning_on_yield_now() {
    let at = site("busy-yield", "leakcheck::spawn(");
    let guard = Options::new().settle(SETTLE).verify_none();
    let spin = async {
        loop {
            tokio::task::yield_now().await;
        }
    };
    let spinner = leakcheck::spawn(spin); // site:busy-yield
    let report = guard.check_async().await.unwrap_err();
    spinner.abort();

    let paragraph = assert_report_state(&report, at, State::Busy, "busy");
    assert!(paragraph.contains("state: busy: kept being polled while the check waited: it spins"));
    let straggler = at_line(report.stragglers(), at.0);
    let settling = straggler.polls_while_settling();
    assert!(settling > 1, "{straggler:?}");
    assert!(straggler.polls() >= settling, "{straggler:?}");
    let expected = format!(", polled {settling} times while the check waited");
    assert!(
        paragraph.contains(&expected),
        "expected `{expected}` in:\n{paragraph}"
    );
    assert!(report.waited() >= SETTLE, "{report}");
}

/// The same spinner checked synchronously on a multi-thread runtime, many
/// times over: between two polls its yield sits in the worker's defer list,
/// with a live waker and not yet woken, so a single look may find it idle;
/// it is busy all the same, from its rate of polls.
///
/// It is not, every time: the look reads the task's flags one at a time
/// while a worker polls it, and now and then pieces together `woken` from
/// before a poll ended with the waker count from after the deferred wake:
/// not woken, no live waker, so *stuck*, which overrides *busy*.
#[test]
fn busy_a_spinner_on_a_multi_thread_runtime_every_time() {
    let rt = multi_thread(2);
    let mut seen = Vec::new();
    for _ in 0..20 {
        let guard = Options::new().settle(SETTLE).verify_none();
        let spinner = {
            let _enter = rt.enter();
            leakcheck::spawn(async {
                loop {
                    tokio::task::yield_now().await;
                }
            })
        };
        let report = guard.check().unwrap_err();
        let straggler = &report.stragglers()[0];
        seen.push((straggler.state(), straggler.polls_while_settling()));
        spinner.abort();
        assert!(rt.block_on(spinner).unwrap_err().is_cancelled());
    }
    assert!(seen.iter().all(|(s, _)| *s == State::Busy), "{seen:?}");
}

/// The README's quick-start shows a 10 ms flusher as *waiting*: polled 50
/// times in the check's 500 ms, it does not spin. With paused time the check
/// is deterministic.
#[tokio::test(start_paused = true)]
async fn a_ticker_is_waiting_not_busy() {
    let guard = Options::new()
        .settle(Duration::from_millis(500))
        .verify_none();
    let flush = async {
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        loop {
            tick.tick().await;
        }
    };
    let ticker = leakcheck::spawn(flush);
    let report = guard.check_async().await.unwrap_err();
    ticker.abort();
    let straggler = &report.stragglers()[0];
    // With paused time the ticker's timer can fire at the very instant of the
    // check's last look, so it may be seen woken; what matters is that 100
    // polls a second is waiting on a timer, not spinning.
    assert!(
        matches!(straggler.state(), State::Waiting | State::Runnable),
        "{report}"
    );
    assert!(straggler.polls_while_settling() >= 40, "{straggler:?}");
    let text = report.to_string();
    assert!(!text.contains("state: busy"), "{text}");
}

// ---- not yet started -----------------------------------------------------------------

#[tokio::test]
async fn not_yet_started_in_a_snapshot_before_the_test_yields() {
    let at = site("not-started-snapshot", "spawn(");
    // Tracking starts with the first snapshot or guard in the process.
    leakcheck::snapshot();
    let task = TaskBuilder::new()
        .name("states-not-started-snapshot")
        .spawn(async { 7 }) // site:not-started-snapshot
        .unwrap();
    let snapshot = leakcheck::snapshot();
    let paragraph = assert_state(
        snapshot.entries(),
        &snapshot.to_string(),
        at,
        State::NotStarted,
        "not yet started",
    );
    assert!(paragraph.contains("state: not yet started: spawned but never polled"));
    assert!(
        paragraph.contains("polled 0 times, woken 0 times"),
        "{paragraph}"
    );
    let straggler = at_line(snapshot.entries(), at.0);
    assert_eq!(straggler.idle_for(), None, "never polled, so never idle");
    assert_eq!(task.await.unwrap(), 7);
}

/// A task spawned onto a current-thread runtime that nobody drives is never
/// polled; a check from outside any runtime reports it.
#[test]
fn not_yet_started_on_a_runtime_that_is_never_driven() {
    let idle = current_thread();
    let at = site("not-started-report", "spawn_on(");
    let guard = Options::new().settle(SETTLE).verify_none();
    let task = TaskBuilder::new()
        .name("states-never-driven")
        .spawn_on(async { 7 }, idle.handle()) // site:not-started-report
        .unwrap();
    let report = guard.check().unwrap_err();
    assert_report_state(&report, at, State::NotStarted, "not yet started");
    assert!(report.waited() >= SETTLE, "not fast-failed: {report}");
    assert!(report.to_json().contains(r#""state":"not_started""#));
    assert_eq!(idle.block_on(task).unwrap(), 7);
}

/// By design (see the guard's docs), a synchronous check inside a
/// current-thread runtime leaves out tasks that runtime has not polled yet:
/// it blocks the only thread that could run them.
#[tokio::test]
async fn a_sync_check_inside_a_current_thread_runtime_leaves_out_unstarted_tasks() {
    let guard = Options::new().settle(LONG_SETTLE).verify_none();
    let task = leakcheck::spawn(async { 7 });
    let started = Instant::now();
    guard
        .check()
        .expect("a task that was never polled is not judged");
    assert!(started.elapsed() < FAST);
    assert_eq!(task.await.unwrap(), 7);
}

// ---- running -------------------------------------------------------------------------

#[test]
fn running_a_blocking_task_and_a_thread_with_their_age() {
    let rt = multi_thread(1);
    let blocking_at = site("running-blocking", "leakcheck::spawn_blocking(");
    let thread_at = site("running-thread", "leakcheck::thread::spawn(");
    let (stop_blocking, blocking_rx) = std::sync::mpsc::channel::<()>();
    let (stop_thread, thread_rx) = std::sync::mpsc::channel::<()>();

    let opened = Instant::now();
    let guard = Options::new().settle(SETTLE).verify_none();
    let blocking = {
        let _enter = rt.enter();
        leakcheck::spawn_blocking(move || blocking_rx.recv().unwrap_err()) // site:running-blocking
    };
    let thread = leakcheck::thread::spawn(move || thread_rx.recv().unwrap_err()); // site:running-thread
    let report = guard.check().unwrap_err();
    let elapsed = opened.elapsed();

    for (at, kind) in [(blocking_at, Kind::BlockingTask), (thread_at, Kind::Thread)] {
        let paragraph = assert_report_state(&report, at, State::Running, "running");
        assert!(paragraph.contains("state: running: still running its code"));
        let straggler = at_line(report.stragglers(), at.0);
        assert_eq!(straggler.kind(), kind);
        // Observed once the budget was spent, and before the check returned.
        assert!(straggler.age() >= SETTLE, "{straggler:?}");
        assert!(straggler.age() <= elapsed, "{straggler:?}");
        assert_eq!((straggler.polls(), straggler.wakes()), (0, 0));
        assert_eq!(straggler.idle_for(), None);
        if kind == Kind::Thread {
            assert_eq!(straggler.task_id(), None);
        }
        assert!(paragraph.contains("  spawned ") && paragraph.contains(" ago"));
        assert!(
            !paragraph.contains("polled"),
            "no poll figures: {paragraph}"
        );
    }
    assert!(report.waited() >= SETTLE, "{report}");
    drop((stop_blocking, stop_thread));
    thread.join().unwrap();
    rt.block_on(blocking).unwrap();
}

/// A task that blocks inside its poll is running right now.
#[test]
fn running_a_task_blocked_inside_its_poll() {
    let rt = multi_thread(2);
    let at = site("running-in-poll", "spawn_on(");
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let guard = Options::new().settle(SETTLE).verify_none();
    let blocked = async move {
        entered_tx.send(()).unwrap();
        release_rx.recv().unwrap();
    };
    let task = TaskBuilder::new().spawn_on(blocked, rt.handle()).unwrap(); // site:running-in-poll
    entered_rx.recv().unwrap();
    let report = guard.check().unwrap_err();
    assert_report_state(&report, at, State::Running, "running");
    let straggler = at_line(report.stragglers(), at.0);
    assert_eq!(straggler.idle_for(), None, "inside a poll: {straggler:?}");
    assert_eq!(straggler.polls(), 0, "the first poll has not ended");
    release_tx.send(()).unwrap();
    rt.block_on(task).unwrap();
}

// ---- figures -------------------------------------------------------------------------

/// A task woken exactly three times has been polled four times: once at
/// start and once per wake.
#[tokio::test]
async fn figures_of_a_task_woken_three_times() {
    const IDLE: Duration = Duration::from_millis(20);
    // The resolution of the clock behind `idle_for`: a scheduler tick
    // (Linux's coarse monotonic clock), at most 10 ms.
    const COARSE_CLOCK: Duration = Duration::from_millis(10);
    let at = site("three-wakes", "leakcheck::spawn(");
    let guard = Options::new().settle(LONG_SETTLE).verify_none();
    let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
    let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<u32>();
    let woken_thrice = async move {
        ack_tx.send(0).unwrap();
        for _ in 0..3 {
            let n = rx.recv().await.unwrap();
            ack_tx.send(n).unwrap();
        }
        pending::<()>().await
    };
    let task = leakcheck::spawn(woken_thrice); // site:three-wakes
                                               // One thread: each ack is read once the poll that sent it has ended.
    assert_eq!(ack_rx.recv().await, Some(0));
    for n in 1..=3 {
        tx.send(n).unwrap();
        assert_eq!(ack_rx.recv().await, Some(n));
    }
    // The task is idle from here on: nothing can wake it.
    std::thread::sleep(IDLE);
    let report = guard.check_async().await.unwrap_err();

    let paragraph = assert_report_state(&report, at, State::Stuck, "stuck");
    let straggler = at_line(report.stragglers(), at.0);
    assert_eq!(straggler.wakes(), 3, "{straggler:?}");
    assert_eq!(straggler.polls(), 4, "{straggler:?}");
    assert_eq!(straggler.polls_while_settling(), 0);
    let idle = straggler.idle_for().expect("polled, so idle since");
    // The idle figure is read on a coarse clock (a scheduler tick).
    assert!(idle + COARSE_CLOCK >= IDLE, "{idle:?}");
    assert!(idle <= straggler.age(), "{idle:?} {straggler:?}");
    assert!(straggler.age() >= IDLE);
    assert!(straggler.task_id().is_some());
    assert_eq!(straggler.task_id(), Some(task.id()));
    assert!(
        paragraph.contains("; polled 4 times, woken 3 times, idle for "),
        "{paragraph}"
    );
    drop(tx);
    task.abort();
}

/// A figure of a report (`spawned 3ms ago`, `idle for 516µs`) read back.
fn read_human(figure: &str) -> Duration {
    let (number, unit) = figure.split_at(
        figure
            .find(|c: char| c.is_alphabetic() || c == 'µ')
            .unwrap(),
    );
    let number: f64 = number
        .parse()
        .unwrap_or_else(|_| panic!("a figure: {figure}"));
    match unit {
        "µs" => Duration::from_secs_f64(number / 1e6),
        "ms" => Duration::from_secs_f64(number / 1e3),
        "s" => Duration::from_secs_f64(number),
        _ => panic!("a unit: {figure}"),
    }
}

/// A task is never idle for longer than it has existed: not one polled once
/// right after its spawn and idle since, nor one never polled. Idle time was
/// read on the coarse clock and the age on `Instant`, which let reports say
/// "spawned 511ms ago; ... idle for 516ms". The pause before each check
/// sweeps the observation across the coarse clock's ticks.
#[test]
fn idle_is_never_longer_than_age() {
    let rt = current_thread();
    let once_at = site("idle-once", "leakcheck::spawn(");
    let never_at = site("idle-never", "spawn_on(");
    for round in 0..50u64 {
        let guard = Options::new().settle(Duration::ZERO).verify_none();
        let (polled_tx, polled_rx) = oneshot::channel::<()>();
        let polled_once = async move {
            polled_tx.send(()).unwrap();
            pending::<()>().await
        };
        let once = {
            let _enter = rt.enter();
            leakcheck::spawn(polled_once) // site:idle-once
        };
        rt.block_on(polled_rx).unwrap();
        let never = TaskBuilder::new()
            .spawn_on(async {}, rt.handle()) // site:idle-never
            .unwrap();
        std::thread::sleep(Duration::from_micros(round * 397 % 5_000));
        let report = guard.check().unwrap_err();
        let text = report.to_string();

        let straggler = at_line(report.stragglers(), once_at.0);
        assert_eq!(straggler.polls(), 1, "{straggler:?}");
        let idle = straggler.idle_for().expect("polled, so idle since");
        assert!(
            idle <= straggler.age(),
            "round {round}: idle {idle:?}, {straggler:?}"
        );
        let figures = paragraph(&text, once_at.0);
        let figures = figures
            .lines()
            .find(|l| l.starts_with("  spawned "))
            .unwrap_or_else(|| panic!("{figures}"));
        let age = figures["  spawned ".len()..].split(' ').next().unwrap();
        let shown_idle = figures.split("idle for ").nth(1).expect(figures);
        let shown_idle = shown_idle.split([',', ' ']).next().unwrap();
        assert!(
            read_human(shown_idle) <= read_human(age),
            "round {round}: {figures}"
        );

        let straggler = at_line(report.stragglers(), never_at.0);
        assert_eq!(straggler.state(), State::NotStarted, "{straggler:?}");
        assert_eq!(straggler.idle_for(), None, "never polled, so never idle");
        assert!(!paragraph(&text, never_at.0).contains("idle for"), "{text}");

        once.abort();
        never.abort();
        rt.block_on(async {
            let _ = once.await;
            let _ = never.await;
        });
    }
}

// ---- the fast verdict ----------------------------------------------------------------

/// A stuck task fails a blocking check at once, not after the 5 s budget.
#[test]
fn fast_verdict_from_check_with_a_multi_thread_runtime() {
    let rt = multi_thread(2);
    let guard = Options::new().settle(LONG_SETTLE).verify_none();
    let _task = TaskBuilder::new()
        .spawn_on(pending::<()>(), rt.handle())
        .unwrap();
    let started = Instant::now();
    let report = guard.check().unwrap_err();
    let elapsed = started.elapsed();
    println!(
        "fast verdict, check() on a multi-thread runtime's task: {elapsed:?} (waited {:?})",
        report.waited()
    );
    assert_eq!(report.stragglers()[0].state(), State::Stuck, "{report}");
    assert!(elapsed < FAST, "{elapsed:?} with a {LONG_SETTLE:?} budget");
    // The documented grace: every straggler looked stuck for 3 ms.
    assert!(report.waited() >= Duration::from_millis(3), "{report}");
    assert!(report.waited() <= elapsed);
}

#[tokio::test]
async fn fast_verdict_from_check_async_on_a_current_thread_runtime() {
    let guard = Options::new().settle(LONG_SETTLE).verify_none();
    let task = leakcheck::spawn(pending::<()>());
    let started = Instant::now();
    let report = guard.check_async().await.unwrap_err();
    let elapsed = started.elapsed();
    println!(
        "fast verdict, check_async() on a current-thread runtime: {elapsed:?} (waited {:?})",
        report.waited()
    );
    assert_eq!(report.stragglers()[0].state(), State::Stuck, "{report}");
    assert!(elapsed < FAST, "{elapsed:?} with a {LONG_SETTLE:?} budget");
    assert!(report.waited() >= Duration::from_millis(3), "{report}");
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_verdict_from_check_async_on_a_multi_thread_runtime() {
    let guard = Options::new().settle(LONG_SETTLE).verify_none();
    let tasks: Vec<_> = (0..3).map(|_| leakcheck::spawn(pending::<()>())).collect();
    let started = Instant::now();
    let report = guard.check_async().await.unwrap_err();
    let elapsed = started.elapsed();
    println!(
        "fast verdict, check_async() on a multi-thread runtime, 3 stuck tasks: {elapsed:?} (waited {:?})",
        report.waited()
    );
    assert_eq!(report.stragglers().len(), 3, "{report}");
    assert!(report
        .stragglers()
        .iter()
        .all(|s| s.state() == State::Stuck));
    assert!(elapsed < FAST, "{elapsed:?} with a {LONG_SETTLE:?} budget");
    assert!(report.waited() >= Duration::from_millis(3), "{report}");
    tasks.iter().for_each(|task| task.abort());
}

/// A waiting task could still be woken, so the check spends the budget.
#[tokio::test]
async fn a_waiting_task_is_not_fast_failed() {
    const BUDGET: Duration = Duration::from_millis(200);
    let guard = Options::new().settle(BUDGET).verify_none();
    let (tx, rx) = oneshot::channel::<()>();
    let task = leakcheck::spawn(async move { rx.await.unwrap() });
    let started = Instant::now();
    let report = guard.check_async().await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(report.stragglers()[0].state(), State::Waiting, "{report}");
    assert!(elapsed >= BUDGET, "{elapsed:?}");
    assert!(report.waited() >= BUDGET, "{report}");
    tx.send(()).unwrap();
    task.await.unwrap();
}

/// The verdict is fast only when every straggler is stuck.
#[test]
fn one_waiting_straggler_among_stuck_ones_spends_the_budget() {
    const BUDGET: Duration = Duration::from_millis(200);
    let rt = multi_thread(2);
    let guard = Options::new().settle(BUDGET).verify_none();
    let (tx, rx) = oneshot::channel::<()>();
    let stuck: Vec<_> = (0..2)
        .map(|_| {
            TaskBuilder::new()
                .spawn_on(pending::<()>(), rt.handle())
                .unwrap()
        })
        .collect();
    let waiting = TaskBuilder::new()
        .spawn_on(async move { rx.await.unwrap() }, rt.handle())
        .unwrap();
    let started = Instant::now();
    let report = guard.check().unwrap_err();
    let elapsed = started.elapsed();
    let mut states: Vec<State> = report.stragglers().iter().map(|s| s.state()).collect();
    states.sort_by_key(|s| s.to_string());
    assert_eq!(
        states,
        [State::Stuck, State::Stuck, State::Waiting],
        "{report}"
    );
    assert!(elapsed >= BUDGET, "{elapsed:?}");
    assert!(report.waited() >= BUDGET, "{report}");
    tx.send(()).unwrap();
    rt.block_on(waiting).unwrap();
    stuck.iter().for_each(|task| task.abort());
}

/// A task spawned with plain `tokio::spawn` is seen through the task hooks,
/// whose poll counts tell a task that spins from one that waits, though its
/// waker is not visible.
#[cfg(tokio_unstable)]
#[leakcheck::leak_check]
async fn a_plain_task_that_spins_is_busy_and_one_that_waits_is_unknown() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let guard = Options::new()
        .settle(Duration::from_millis(100))
        .verify_none();
    let stop = Arc::new(AtomicBool::new(false));
    let spinning = stop.clone();
    tokio::spawn(async move {
        while !spinning.load(Ordering::Relaxed) {
            tokio::task::yield_now().await;
        }
    });
    let (keep, waiting) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = waiting.await;
    });
    let report = guard.check_async().await.expect_err("both tasks are alive");
    let mut states: Vec<State> = report.stragglers().iter().map(|s| s.state()).collect();
    states.sort_by_key(|state| format!("{state:?}"));
    assert_eq!(states, [State::Busy, State::Unknown], "{report}");
    stop.store(true, Ordering::Relaxed);
    drop(keep);
}
