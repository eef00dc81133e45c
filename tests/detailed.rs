//! Detailed mode: `Options::detailed(true)`, or `LEAKCHECK_DETAIL` in the
//! environment, instruments each task with a tokio-metrics monitor and adds
//! its figures to the report, as data (`Straggler::detail`), in the text (a
//! `detail:` line) and in the JSON (`figures.detail`).

use leakcheck::task::Builder as TaskBuilder;
use leakcheck::{Options, State, Straggler};
use serde_json::Value;
use std::future::pending;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

/// The settle budget of checks that wait it out.
const SETTLE: Duration = Duration::from_millis(30);
/// Names the child test that should run in a subprocess.
const CHILD: &str = "LC_TEST_CHILD";

/// leakcheck's short human durations, as the report writes them.
fn human(duration: Duration) -> String {
    let micros = duration.as_micros();
    if micros < 1_000 {
        format!("{micros}µs")
    } else if micros < 1_000_000 {
        format!("{}ms", micros / 1_000)
    } else if micros < 60_000_000 {
        format!("{:.2}s", duration.as_secs_f64())
    } else {
        let secs = duration.as_secs();
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

/// The `detail:` line the report must show for `straggler`.
fn detail_line(straggler: &Straggler) -> String {
    let detail = straggler.detail().expect("detailed mode");
    format!(
        "  detail: mean poll {}, {} slow poll{}, idle {} in all, queued {} in all",
        human(detail.mean_poll_duration()),
        detail.slow_polls(),
        if detail.slow_polls() == 1 { "" } else { "s" },
        human(detail.total_idle()),
        human(detail.total_scheduled())
    )
}

/// The report's `detail:` lines.
fn detail_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("  detail: "))
        .collect()
}

/// A current-thread runtime that runs only inside the test's `block_on`
/// calls: while a check runs from the test's thread, its tasks are frozen,
/// so their figures cannot move.
fn frozen_runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a runtime")
}

/// A task whose figures are known from below: polled twice, idle at least
/// `IDLE` before its wake, queued at least `QUEUED` after it, and with one
/// poll that takes at least `SLOW` (tokio-metrics calls a poll slow from
/// 50 µs).
#[test]
fn detailed_mode_adds_tokio_metrics_figures() {
    const IDLE: Duration = Duration::from_millis(20);
    const QUEUED: Duration = Duration::from_millis(10);
    const SLOW: Duration = Duration::from_millis(4);
    let rt = frozen_runtime();
    let guard = Options::new().detailed(true).settle(SETTLE).verify_none();
    let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
    let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<u32>();
    let worker = async move {
        ack_tx.send(0).unwrap();
        while let Some(n) = rx.recv().await {
            std::thread::sleep(SLOW);
            ack_tx.send(n).unwrap();
        }
    };
    let task = TaskBuilder::new().spawn_on(worker, rt.handle()).unwrap();
    // The runtime runs only inside block_on: when the ack arrives, the poll
    // that sent it has ended.
    assert_eq!(rt.block_on(ack_rx.recv()), Some(0));
    std::thread::sleep(IDLE);
    tx.send(1).unwrap();
    // Woken, and queued: nothing drives the runtime here.
    std::thread::sleep(QUEUED);
    assert_eq!(rt.block_on(ack_rx.recv()), Some(1));
    let report = guard.check().unwrap_err();

    let straggler = &report.stragglers()[0];
    assert_eq!(straggler.state(), State::Waiting, "{report}");
    let detail = straggler.detail().expect("detailed mode");
    assert_eq!(detail.polls(), 2, "{detail:?}");
    assert_eq!(detail.polls(), straggler.polls());
    // The second poll is slow; the first one usually is not.
    assert!((1..=2).contains(&detail.slow_polls()), "{detail:?}");
    assert!(detail.mean_poll_duration() >= SLOW / 2, "{detail:?}");
    assert!(detail.total_idle() >= IDLE, "{detail:?}");
    assert!(detail.total_scheduled() >= QUEUED, "{detail:?}");
    assert!(detail.total_idle() + detail.total_scheduled() <= straggler.age());

    let text = report.to_string();
    assert_eq!(detail_lines(&text), [detail_line(straggler)], "{text}");

    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
    let figures = &json["stragglers"][0]["figures"];
    let millis = |d: Duration| d.as_secs_f64() * 1000.0;
    let close = |json: &Value, d: Duration| (json.as_f64().unwrap() - millis(d)).abs() < 0.001;
    assert!(close(
        &figures["detail"]["mean_poll_ms"],
        detail.mean_poll_duration()
    ));
    assert_eq!(figures["detail"]["slow_polls"], detail.slow_polls());
    assert!(close(&figures["detail"]["idle_ms"], detail.total_idle()));
    assert!(close(
        &figures["detail"]["scheduled_ms"],
        detail.total_scheduled()
    ));
    assert_eq!(figures["polls"], 2);

    drop(tx);
    rt.block_on(task).unwrap();
}

/// A report's figures are those of the moment the check looked: its polls
/// and wakes are, but `detail()` reads the task's monitor whenever it is
/// called, so the detail drifts as the task runs on, disagrees with the
/// poll count beside it, and the report's text and JSON change. (With the
/// `taskdump` feature, `check_async` polls every task once more for the dump
/// after its verdict, and that trace poll shows up in the detail as a slow
/// poll of the task's own.)
#[test]
fn the_detail_is_fixed_when_the_check_looks() {
    let rt = frozen_runtime();
    let guard = Options::new().detailed(true).settle(SETTLE).verify_none();
    let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
    let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<u32>();
    let worker = async move {
        ack_tx.send(0).unwrap();
        while let Some(n) = rx.recv().await {
            ack_tx.send(n).unwrap();
        }
    };
    let task = TaskBuilder::new().spawn_on(worker, rt.handle()).unwrap();
    assert_eq!(rt.block_on(ack_rx.recv()), Some(0));
    let report = guard.check().unwrap_err();
    let json = report.to_json();
    let straggler = &report.stragglers()[0];
    assert_eq!(straggler.polls(), 1);
    assert_eq!(straggler.detail().unwrap().polls(), 1);

    // The task runs on after the check.
    tx.send(1).unwrap();
    assert_eq!(rt.block_on(ack_rx.recv()), Some(1));
    assert_eq!(straggler.polls(), 1, "fixed at the check");
    let detail = straggler.detail().unwrap();
    drop(tx);
    rt.block_on(task).unwrap();
    assert_eq!(detail.polls(), straggler.polls(), "{detail:?}");
    assert_eq!(report.to_json(), json);
}

#[tokio::test]
async fn without_detailed_mode_there_is_no_detail() {
    let guard = Options::new().settle(SETTLE).verify_none();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = leakcheck::spawn(async move { rx.await.unwrap() });
    let report = guard.check_async().await.unwrap_err();
    assert!(report.stragglers()[0].detail().is_none());
    assert_eq!(detail_lines(&report.to_string()), Vec::<&str>::new());
    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
    assert!(
        json["stragglers"][0]["figures"]["detail"].is_null(),
        "{json}"
    );
    tx.send(()).unwrap();
    task.await.unwrap();
}

/// `detailed(false)` is the default here, and `detailed(true)` only affects
/// its own guard's scope.
#[tokio::test]
async fn detailed_mode_belongs_to_one_guard() {
    let plain = Options::new().settle(SETTLE).detailed(false).verify_none();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let outside = leakcheck::spawn(async move { rx.await.unwrap() });
    let detailed = Options::new().detailed(true).settle(SETTLE).verify_none();
    let (tx2, rx2) = tokio::sync::oneshot::channel::<()>();
    let inside = leakcheck::spawn(async move { rx2.await.unwrap() });

    let report = detailed.check_async().await.unwrap_err();
    assert_eq!(report.stragglers().len(), 1);
    assert!(report.stragglers()[0].detail().is_some());
    let report = plain.check_async().await.unwrap_err();
    assert_eq!(report.stragglers().len(), 2);
    let with_detail = report.stragglers().iter().filter(|s| s.detail().is_some());
    assert_eq!(with_detail.count(), 1, "only the detailed scope's task");
    tx.send(()).unwrap();
    tx2.send(()).unwrap();
    outside.await.unwrap();
    inside.await.unwrap();
}

/// A task that nothing can wake is stuck, and fails the check at once, in
/// detailed mode as without it.
///
/// It does not: tokio-metrics' instrumented future keeps a clone of the
/// task's waker in its own state between polls, which leakcheck counts as a
/// live waker, so every idle task looks *waiting* and the whole settle budget
/// is spent.
#[tokio::test]
async fn detailed_mode_keeps_a_stuck_task_stuck() {
    let guard = Options::new()
        .detailed(true)
        .settle(Duration::from_secs(2))
        .verify_none();
    let task = leakcheck::spawn(pending::<()>());
    let started = Instant::now();
    let report = guard.check_async().await.unwrap_err();
    task.abort();
    assert_eq!(report.stragglers()[0].state(), State::Stuck, "{report}");
    assert!(started.elapsed() < Duration::from_secs(1), "{report}");
}

// ---- LEAKCHECK_DETAIL ----------------------------------------------------------------

/// `LEAKCHECK_DETAIL` is read once per process: each value is tried in a
/// child of this binary.
#[test]
fn leakcheck_detail_turns_detailed_mode_on_without_the_option() {
    let values = [("1", true), ("on", true), ("0", false), ("off", false)];
    let children: Vec<_> = values
        .iter()
        .map(|(value, _)| {
            let mut command = Command::new(std::env::current_exe().unwrap());
            for (name, _) in std::env::vars_os() {
                if name.to_string_lossy().starts_with("LEAKCHECK") {
                    command.env_remove(name);
                }
            }
            command
                .args(["--exact", "child_with_leakcheck_detail"])
                .args(["--nocapture", "--test-threads=1"])
                .env(CHILD, "child_with_leakcheck_detail")
                .env("LEAKCHECK_DETAIL", value)
                // Not needed here; saves resolving symbols for each report.
                .env("LEAKCHECK_BACKTRACE", "off")
                .env("RUST_BACKTRACE", "0")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run the test binary")
        })
        .collect();
    for ((value, on), child) in values.into_iter().zip(children) {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let context = format!(
            "LEAKCHECK_DETAIL={value}: {}\n{stdout}\n{stderr}",
            output.status
        );
        assert!(output.status.success(), "{context}");
        let expected = format!("child: default detail={on}, detailed(false) detail=false");
        assert!(stdout.contains(&expected), "{context}");
        assert!(stdout.contains("1 passed"), "{context}");
    }
}

/// Checks one waiting task from outside its frozen runtime, and says
/// whether its report has a detail, after checking that detail against the
/// rest of the report (before the task runs again).
fn has_detail(options: Options) -> bool {
    let rt = frozen_runtime();
    let guard = options.settle(SETTLE).verify_none();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let waiter = async move {
        started_tx.send(()).unwrap();
        rx.await.unwrap();
    };
    let task = TaskBuilder::new().spawn_on(waiter, rt.handle()).unwrap();
    rt.block_on(started_rx).unwrap();
    let report = guard.check().unwrap_err();
    let straggler = &report.stragglers()[0];
    let text = report.to_string();
    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
    let json_detail = &json["stragglers"][0]["figures"]["detail"];
    match straggler.detail() {
        Some(detail) => {
            assert_eq!(detail.polls(), straggler.polls());
            assert_eq!(detail_lines(&text), [detail_line(straggler)], "{text}");
            assert_eq!(json_detail["slow_polls"], detail.slow_polls(), "{json}");
        }
        None => {
            assert_eq!(detail_lines(&text), Vec::<&str>::new(), "{text}");
            assert!(json_detail.is_null(), "{json}");
        }
    }
    tx.send(()).unwrap();
    rt.block_on(task).unwrap();
    straggler.detail().is_some()
}

#[test]
fn child_with_leakcheck_detail() {
    if std::env::var(CHILD).as_deref() != Ok("child_with_leakcheck_detail") {
        return;
    }
    let by_default = has_detail(Options::new());
    // The option wins over the environment.
    let switched_off = has_detail(Options::new().detailed(false));
    println!("child: default detail={by_default}, detailed(false) detail={switched_off}");
}
