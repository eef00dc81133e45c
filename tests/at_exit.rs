//! The whole-binary check at exit, turned on with `LEAKCHECK_AT_EXIT=1`.
//!
//! It can only be seen from outside the process, so each test here runs this
//! same binary again (`std::env::current_exe()`) with one child test
//! selected, `--test-threads=1`, `LEAKCHECK_AT_EXIT=1`, and `LC_TEST_CHILD=1`
//! (not a `LEAKCHECK_*` name: leakcheck rejects variables it does not know).
//! The child tests pass; what is asserted is the exit status of the child
//! binary and what it wrote on stderr after its tests had finished. Without
//! `LC_TEST_CHILD` the child tests return at once, so a normal run of this
//! binary leaks nothing and exits 0.
//!
//! Unix only: leakcheck registers the check with libc's `atexit`.
#![cfg(unix)]

#[path = "support/service.rs"]
mod service;

use std::process::{Command, Output};
use std::sync::mpsc;

/// Set in the child's environment; the child tests do nothing without it.
const CHILD: &str = "LC_TEST_CHILD";

fn in_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// The line of this file that ends with the spawn marker `what`.
fn spawn_line(what: &str) -> u32 {
    service::marker_line(include_str!("at_exit.rs"), what)
}

/// Runs the child test `test` alone, with the at-exit check on, and returns
/// its output after asserting that the test itself ran and passed.
fn run_child(test: &str, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["--exact", test, "--test-threads=1"]);
    for (var, _) in std::env::vars_os() {
        if var.to_str().is_some_and(|var| var.starts_with("LEAKCHECK")) {
            command.env_remove(var);
        }
    }
    command
        .env(CHILD, "1")
        .env("LEAKCHECK_AT_EXIT", "1")
        // The at-exit check waits this long for work that is winding down;
        // a live thread is never proven stuck, so a leak costs all of it.
        .env("LEAKCHECK_SETTLE_MS", "50")
        .envs(env.iter().copied());
    let output = command.output().expect("run the test binary");
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

/// Asserts that the child exited 1 with the at-exit report of one thread
/// spawned at `line` of this file.
#[track_caller]
fn assert_failed_at_exit_with_thread_at(output: &Output, line: u32) {
    let stderr = stderr(output);
    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(
        stderr.contains("the test binary leaked 1 thread, still alive after waiting"),
        "{stderr}"
    );
    assert!(stderr.contains("state: running"), "{stderr}");
    let site = format!("1 thread spawned at tests/at_exit.rs:{line}:");
    assert!(stderr.contains(&site), "no {site:?} in:\n{stderr}");
    assert!(
        stderr.contains("LEAKCHECK_AT_EXIT found work still alive when the test binary exited"),
        "{stderr}"
    );
}

#[track_caller]
fn assert_clean_exit(output: &Output) {
    let stderr = stderr(output);
    assert_eq!(output.status.code(), Some(0), "stderr:\n{stderr}");
    assert!(!stderr.contains("LEAKCHECK_AT_EXIT"), "{stderr}");
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

/// Leaves a tracked thread blocked forever, with no guard anywhere.
#[test]
fn child_leaks_a_tracked_thread() {
    if !in_child() {
        return;
    }
    leakcheck::thread::spawn(park_forever); // @spawn:no-guard
}

/// The same, after a passing guard earlier in the test has turned tracking
/// on: the leak is outside every guard, in the root scope.
#[test]
fn child_leaks_a_tracked_thread_after_a_guard() {
    if !in_child() {
        return;
    }
    leakcheck::verify_none().check().unwrap();
    leakcheck::thread::spawn(park_forever); // @spawn:after-guard
}

/// Leaves a tracked thread blocked forever inside a guard's scope, and
/// discards that guard's result: the at-exit check is the last line.
#[test]
fn child_leaks_a_tracked_thread_in_a_guard() {
    if !in_child() {
        return;
    }
    let guard = leakcheck::Options::new()
        .settle(std::time::Duration::ZERO)
        .verify_none();
    leakcheck::thread::spawn(park_forever); // @spawn:in-guard
    let _ = guard.check();
}

/// Joins everything it spawns.
#[test]
fn child_is_clean() {
    if !in_child() {
        return;
    }
    leakcheck::thread::spawn(|| 1 + 1).join().unwrap();
}

/// Declares its forever-thread long-lived.
#[test]
fn child_leaves_background_work() {
    if !in_child() {
        return;
    }
    leakcheck::background(|| leakcheck::thread::spawn(park_forever));
}

/// Leaves a tracked thread that is on its way out: told to return, not
/// joined. The at-exit check settles before it judges.
#[test]
fn child_leaves_a_thread_winding_down() {
    if !in_child() {
        return;
    }
    leakcheck::verify_none().check().unwrap();
    let (stop, stopped) = mpsc::channel::<()>();
    leakcheck::thread::spawn(move || {
        let _ = stopped.recv();
    });
    drop(stop);
}

// ---------------------------------------------------------------------------
// The tests proper.
// ---------------------------------------------------------------------------

/// The case: a passing test leaves a tracked thread behind, with no
/// guard anywhere in the binary. `LEAKCHECK_AT_EXIT=1` must fail the run,
/// although nothing but the spawn itself ever touches leakcheck (earlier
/// versions read the variable only once tracking was on, which a guard
/// turns on, so this binary exited 0).
#[test]
fn a_thread_leaked_without_any_guard_fails_the_binary_at_exit() {
    let output = run_child("child_leaks_a_tracked_thread", &[]);
    assert_failed_at_exit_with_thread_at(&output, spawn_line("no-guard"));
}

#[test]
fn a_thread_leaked_after_a_guard_fails_the_binary_at_exit() {
    let output = run_child("child_leaks_a_tracked_thread_after_a_guard", &[]);
    assert_failed_at_exit_with_thread_at(&output, spawn_line("after-guard"));
}

#[test]
fn a_thread_leaked_in_a_guard_fails_the_binary_at_exit() {
    let output = run_child("child_leaks_a_tracked_thread_in_a_guard", &[]);
    assert_failed_at_exit_with_thread_at(&output, spawn_line("in-guard"));
}

#[test]
fn a_clean_binary_exits_0() {
    assert_clean_exit(&run_child("child_is_clean", &[]));
}

#[test]
fn background_work_is_not_reported_at_exit() {
    assert_clean_exit(&run_child("child_leaves_background_work", &[]));
}

#[test]
fn a_thread_winding_down_at_exit_is_waited_for() {
    // Room for a loaded machine: the check returns as soon as the thread
    // has ended.
    let settle = [("LEAKCHECK_SETTLE_MS", "10000")];
    assert_clean_exit(&run_child("child_leaves_a_thread_winding_down", &settle));
}

/// `LEAKCHECK_AT_EXIT=0` (or unset) leaves the exit status alone.
#[test]
fn without_the_variable_the_leak_does_not_change_the_exit_status() {
    let output = run_child(
        "child_leaks_a_tracked_thread_after_a_guard",
        &[("LEAKCHECK_AT_EXIT", "0")],
    );
    assert_clean_exit(&output);
}
