//! 32 `#[leak_check]` tests in one binary, each with a runtime of its own,
//! meant to run all at once (`cargo test --test untracked_parallel --
//! --test-threads=32`). Every task here is spawned with plain `tokio::spawn`.
//!
//! - 16 leaky tests each leak exactly K plain tasks, K from 1 to 4, and
//!   assert exactly K: on stable tokio as the runtime's untracked-task count,
//!   with `--cfg tokio_unstable` on a `#[leak_check]` runtime as K hooked
//!   stragglers at the spawn line. A test that saw another test's tasks, or
//!   missed some of its own, would be off by at least one.
//! - 16 clean tests end the moment their last plain task still needs one
//!   more poll: woken but not yet run, spawned but never polled, aborted
//!   but not yet dropped, or about to spawn a last short task. Their check
//!   (`check_async`, which `#[leak_check]` awaits) must give the runtime that
//!   poll, and pass.
//!
//! Each comes in four forms: `#[leak_check]`'s own current-thread runtime,
//! its multi-thread runtime, its current-thread runtime on paused time, and
//! `#[leak_check]` above `#[tokio::test]`, which it replaces with a runtime
//! of its own, instrumented like the others.

#[path = "support/service.rs"]
mod service;

use leakcheck::{leak_check, LeakReport, Options, State};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The settle budget of the checks that find a leak: waiting tasks are
/// never proven stuck, so such a check waits it out.
const SETTLE: Duration = Duration::from_millis(50);

/// Whether a `#[leak_check]` runtime has task hooks in this build.
const HOOKS: bool = cfg!(tokio_unstable);

/// The line of this file that spawns the leaked tasks.
fn leak_line() -> u32 {
    service::marker_line(include_str!("untracked_parallel.rs"), "leak")
}

/// Spawns `k` plain tasks that wait until `release` is cancelled.
fn spawn_waiting(k: usize, release: &CancellationToken) -> Vec<JoinHandle<()>> {
    (0..k)
        .map(|_| {
            let release = release.clone();
            tokio::spawn(async move { release.cancelled().await }) // @spawn:leak
        })
        .collect()
}

/// Opens a guard, leaks exactly `k` plain tasks, and asserts that the check
/// finds exactly them; then releases them, so that `#[leak_check]`'s own
/// check passes. `hooked`: whether the runtime records plain tasks through
/// task hooks.
async fn leaks_exactly(k: usize, hooked: bool) {
    let guard = Options::new().settle(SETTLE).verify_none();
    let release = CancellationToken::new();
    let tasks = spawn_waiting(k, &release);

    let report = guard.check_async().await.expect_err("the tasks leak");
    if hooked {
        assert_hooked(&report, k);
    } else {
        assert_counted(&report, k);
    }

    release.cancel();
    for task in tasks {
        task.await.expect("a released task ends");
    }
}

/// Without task hooks, only the runtime's count sees the leaked tasks.
#[track_caller]
fn assert_counted(report: &LeakReport, k: usize) {
    assert_eq!(report.untracked_tasks(), k, "{report}");
    assert!(report.stragglers().is_empty(), "{report}");
    // Nothing tracked, so no backtrace to resolve: formatting is cheap.
    let text = report.to_string();
    let count = match k {
        1 => "1 untracked task still alive on this runtime".to_owned(),
        k => format!("{k} untracked tasks still alive on this runtime"),
    };
    assert!(text.contains(&count), "no {count:?} in:\n{text}");
}

/// With task hooks, every leaked task is a straggler at the spawn line.
///
/// The report is formatted only when an assertion fails: formatting
/// resolves creation backtraces, which holds the `backtrace` crate's
/// process-wide lock for hundreds of milliseconds the first time, and every
/// hooked `tokio::spawn` of every other test captures a backtrace under that
/// same lock, so it would stall meanwhile.
#[track_caller]
fn assert_hooked(report: &LeakReport, k: usize) {
    let me = std::thread::current().name().map(str::to_owned);
    assert_eq!(report.untracked_tasks(), 0, "{report}");
    assert_eq!(report.stragglers().len(), k, "{report}");
    assert_eq!(report.sites(), 1, "{report}");
    for straggler in report.stragglers() {
        assert_eq!(straggler.location().file(), file!(), "{report}");
        assert_eq!(straggler.location().line(), leak_line(), "{report}");
        assert_eq!(straggler.state(), State::Unknown, "{report}");
        assert_eq!(straggler.test_name(), me.as_deref(), "{report}");
    }
}

/// The last task is parked on a channel; the body wakes it and returns at
/// once, so the check starts while the task is woken but not yet run.
async fn woken_last() {
    let (polled, first_poll) = oneshot::channel::<()>();
    let (wake, woken) = oneshot::channel::<()>();
    tokio::spawn(async move {
        polled.send(()).unwrap();
        woken.await.unwrap();
    });
    first_poll.await.unwrap(); // it has run up to `woken.await`
    wake.send(()).unwrap();
}

/// The last task is spawned as the body returns: never polled yet.
async fn spawned_last() {
    let (polled, first_poll) = oneshot::channel::<()>();
    tokio::spawn(async move { polled.send(()).unwrap() })
        .await
        .unwrap();
    first_poll.await.unwrap();
    tokio::spawn(async {});
}

/// The last task is aborted, not awaited: tokio drops it the next time the
/// runtime gets to it.
async fn aborted_last() {
    let (polled, first_poll) = oneshot::channel::<()>();
    let parked = tokio::spawn(async move {
        polled.send(()).unwrap();
        std::future::pending::<()>().await
    });
    first_poll.await.unwrap();
    parked.abort();
}

/// The woken task's last poll spawns one more short task, which needs a poll
/// of its own.
async fn woken_spawns_last() {
    let (polled, first_poll) = oneshot::channel::<()>();
    let (wake, woken) = oneshot::channel::<()>();
    tokio::spawn(async move {
        polled.send(()).unwrap();
        woken.await.unwrap();
        tokio::spawn(async {});
    });
    first_poll.await.unwrap();
    wake.send(()).unwrap();
}

/// One test per line: `name: body, form;`. `body` is `leaks(K)` or the
/// name of a clean scenario above; `form` is `own` (`#[leak_check]`'s
/// current-thread runtime), `multi` (its multi-thread runtime), `paused`
/// (its current-thread runtime on paused time) or `tokio_test`
/// (`#[leak_check]` above `#[tokio::test]`).
///
/// `#[leak_check]`'s own check, which is the one the clean tests are about,
/// gets a long budget: a clean check returns the moment the last task has
/// had its poll, and the budget only bounds how long that may take on a
/// loaded machine. It may take a while: with task hooks, a `tokio::spawn`
/// captures a creation backtrace under the `backtrace` crate's process-wide
/// lock, which another test formatting a report holds for hundreds of
/// milliseconds while it resolves symbols.
macro_rules! tests {
    ($($name:ident: $body:ident $(($k:expr))?, $form:ident;)*) => {
        $( tests!(@$form $name, $body $(($k))?); )*
    };
    (@own $name:ident, $($body:tt)*) => {
        #[leak_check(settle_ms = 10000)]
        async fn $name() {
            tests!(@body HOOKS, $($body)*);
        }
    };
    (@multi $name:ident, $($body:tt)*) => {
        #[leak_check(flavor = "multi_thread", worker_threads = 2, settle_ms = 10000)]
        async fn $name() {
            tests!(@body HOOKS, $($body)*);
        }
    };
    (@paused $name:ident, $($body:tt)*) => {
        #[leak_check(start_paused = true, settle_ms = 10000)]
        async fn $name() {
            tests!(@body HOOKS, $($body)*);
        }
    };
    (@tokio_test $name:ident, $($body:tt)*) => {
        #[leak_check(settle_ms = 10000)]
        #[tokio::test]
        async fn $name() {
            tests!(@body HOOKS, $($body)*);
        }
    };
    (@body $hooked:expr, leaks($k:expr)) => {
        leaks_exactly($k, $hooked).await
    };
    (@body $hooked:expr, $clean:ident) => {{
        let _ = $hooked;
        $clean().await
    }};
}

tests! {
    leaky_00: leaks(1), own;
    leaky_01: leaks(2), tokio_test;
    leaky_02: leaks(3), multi;
    leaky_03: leaks(4), paused;
    leaky_04: leaks(1), tokio_test;
    leaky_05: leaks(2), multi;
    leaky_06: leaks(3), paused;
    leaky_07: leaks(4), own;
    leaky_08: leaks(1), multi;
    leaky_09: leaks(2), paused;
    leaky_10: leaks(3), own;
    leaky_11: leaks(4), tokio_test;
    leaky_12: leaks(1), paused;
    leaky_13: leaks(2), own;
    leaky_14: leaks(3), tokio_test;
    leaky_15: leaks(4), multi;

    clean_00: woken_last, own;
    clean_01: woken_last, multi;
    clean_02: woken_last, paused;
    clean_03: woken_last, tokio_test;
    clean_04: spawned_last, own;
    clean_05: spawned_last, multi;
    clean_06: spawned_last, paused;
    clean_07: spawned_last, tokio_test;
    clean_08: aborted_last, own;
    clean_09: aborted_last, multi;
    clean_10: aborted_last, paused;
    clean_11: aborted_last, tokio_test;
    clean_12: woken_spawns_last, own;
    clean_13: woken_spawns_last, multi;
    clean_14: woken_spawns_last, paused;
    clean_15: woken_spawns_last, tokio_test;
}
