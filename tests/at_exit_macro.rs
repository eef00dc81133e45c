//! The whole-binary check at exit, turned on with `check_at_exit!()` at the
//! top level of this file: goleak's `VerifyTestMain`.
//!
//! As in `at_exit.rs`, the tests run this binary again with one child test
//! selected and `LC_TEST_CHILD=1` (not a `LEAKCHECK_*` name: leakcheck
//! rejects variables it does not know), and look at the child binary's exit
//! status and stderr. The child tests leak only when `LC_TEST_CHILD` is set,
//! so a normal run of this binary leaks nothing and exits 0: one test checks
//! exactly that, by running the whole binary again.
//!
//! Unix only: leakcheck registers the check with libc's `atexit`.
#![cfg(unix)]

leakcheck::check_at_exit!();

#[path = "support/service.rs"]
mod service;

use std::process::{Command, Output};

/// Set in the child's environment; the child tests leak only with it.
const CHILD: &str = "LC_TEST_CHILD";
/// Set when the whole binary runs as a child, so that the test which starts
/// that run does not start another one inside it.
const FULL_RUN: &str = "LC_TEST_FULL_RUN";

fn in_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// The line of this file that ends with the spawn marker `what`.
fn spawn_line(what: &str) -> u32 {
    service::marker_line(include_str!("at_exit_macro.rs"), what)
}

/// This binary, with leakcheck's own variables and the markers cleared.
fn this_binary() -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    for (var, _) in std::env::vars_os() {
        if var
            .to_str()
            .is_some_and(|var| var.starts_with("LEAKCHECK") || var.starts_with("LC_TEST_"))
        {
            command.env_remove(var);
        }
    }
    // The at-exit check waits this long for work that is winding down; a
    // live thread is never proven stuck, so a leak costs all of it.
    command.env("LEAKCHECK_SETTLE_MS", "50");
    command
}

/// Runs the child test `test` alone, with `env`, and returns its output
/// after asserting that the test itself ran and passed.
fn run_child(test: &str, env: &[(&str, &str)]) -> Output {
    let output = this_binary()
        .args(["--exact", test, "--test-threads=1"])
        .env(CHILD, "1")
        .envs(env.iter().copied())
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "the child test {test} did not run and pass: {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that the child exited 1 with an at-exit report of one `kind`
/// (`thread`, `task`) spawned at `line` of this file.
#[track_caller]
fn assert_failed_at_exit(output: &Output, kind: &str, line: u32) {
    let stderr = stderr(output);
    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("the test binary leaked"), "{stderr}");
    let leaked = format!("leaked 1 {kind}, still alive after waiting");
    assert!(stderr.contains(&leaked), "no {leaked:?} in:\n{stderr}");
    let site = format!("1 {kind} spawned at tests/at_exit_macro.rs:{line}:");
    assert!(stderr.contains(&site), "no {site:?} in:\n{stderr}");
    assert!(
        stderr.contains("found work still alive when the test binary exited"),
        "{stderr}"
    );
}

#[track_caller]
fn assert_clean_exit(output: &Output) {
    let stderr = stderr(output);
    assert_eq!(output.status.code(), Some(0), "stderr:\n{stderr}");
    assert!(!stderr.contains("leaked"), "{stderr}");
}

// ---------------------------------------------------------------------------
// Child tests: they pass, whatever they leave behind.
// ---------------------------------------------------------------------------

/// A thread body that never returns.
fn park_forever() {
    loop {
        std::thread::park();
    }
}

/// Leaves a tracked thread blocked forever, with no guard anywhere: the
/// macro turned tracking on before `main`.
#[test]
fn child_leaks_a_tracked_thread() {
    if !in_child() {
        return;
    }
    leakcheck::thread::spawn(park_forever); // @spawn:thread
}

/// Leaves a tracked task on a runtime that is never dropped, so the task is
/// still registered when the binary exits.
#[test]
fn child_leaks_a_tracked_task_on_a_runtime_never_dropped() {
    if !in_child() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime: &'static tokio::runtime::Runtime = Box::leak(Box::new(runtime));
    runtime.block_on(async {
        let (polled, first_poll) = tokio::sync::oneshot::channel::<()>();
        let parked = async move {
            let _ = polled.send(());
            std::future::pending::<()>().await
        };
        leakcheck::spawn(parked); // @spawn:task
        first_poll.await.unwrap();
    });
}

/// Joins everything it spawns.
#[test]
fn child_is_clean() {
    if !in_child() {
        return;
    }
    leakcheck::thread::spawn(|| 1 + 1).join().unwrap();
}

// ---------------------------------------------------------------------------
// The tests proper.
// ---------------------------------------------------------------------------

#[test]
fn a_thread_leaked_by_a_passing_test_fails_the_binary_at_exit() {
    let output = run_child("child_leaks_a_tracked_thread", &[]);
    assert_failed_at_exit(&output, "thread", spawn_line("thread"));
}

#[test]
fn a_task_left_on_a_live_runtime_fails_the_binary_at_exit() {
    let output = run_child("child_leaks_a_tracked_task_on_a_runtime_never_dropped", &[]);
    assert_failed_at_exit(&output, "task", spawn_line("task"));
}

#[test]
fn a_clean_child_exits_0() {
    assert_clean_exit(&run_child("child_is_clean", &[]));
}

/// `LEAKCHECK=off` turns every check off (README, Configuration): the
/// at-exit check that the macro installs too (earlier versions ran it
/// regardless, and the binary exited 1).
#[test]
fn leakcheck_off_turns_the_at_exit_check_off() {
    let output = run_child("child_leaks_a_tracked_thread", &[("LEAKCHECK", "off")]);
    assert_clean_exit(&output);
}

/// The whole binary, run the ordinary way (no child marker): its child tests
/// leak nothing, so the at-exit check passes and the exit status is 0.
#[test]
fn a_normal_run_of_this_binary_exits_0() {
    if std::env::var_os(FULL_RUN).is_some() {
        return;
    }
    let output = this_binary()
        .env(FULL_RUN, "1")
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("test result: ok."), "{stdout}");
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    assert_clean_exit(&output);
}
