//! `#[leak_check]` above `#[tokio::test]`: `#[leak_check]` takes the place of
//! `#[tokio::test]` and builds the runtime itself, from the arguments of both
//! attributes, through `leakcheck::runtime::instrument`. The test behaves as
//! a `#[tokio::test]` would, and with `--cfg tokio_unstable` a plain
//! `tokio::spawn` that leaks is reported with its spawn line.
//!
//! A test that expects a leak names the line of the spawn that leaks, marked
//! `// leaks`; `should_panic_lines_name_the_leaking_spawn` keeps them in step.

#![deny(warnings)]

use leakcheck::leak_check;
use std::future::pending;
use std::time::Duration;
use tokio::runtime::{Handle, RuntimeFlavor};

// ---- the runtime is the one `#[tokio::test]` would build ------------------------

#[leak_check]
#[tokio::test]
async fn current_thread_by_default() {
    assert_eq!(
        Handle::current().runtime_flavor(),
        RuntimeFlavor::CurrentThread
    );
    let task = leakcheck::spawn(async { 1 });
    assert_eq!(task.await.unwrap(), 1);
}

#[leak_check]
#[tokio::test(flavor = "current_thread")]
#[should_panic(expected = "tests/tokio_test_form.rs:38")]
async fn current_thread_leak_fails() {
    assert_eq!(
        Handle::current().runtime_flavor(),
        RuntimeFlavor::CurrentThread
    );
    leakcheck::spawn(pending::<()>()); // leaks
}

#[leak_check]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread_with_two_workers() {
    let handle = Handle::current();
    assert_eq!(handle.runtime_flavor(), RuntimeFlavor::MultiThread);
    assert_eq!(handle.metrics().num_workers(), 2);
    let tasks: Vec<_> = (0..8).map(|i| leakcheck::spawn(async move { i })).collect();
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap(), i);
    }
}

#[leak_check(settle_ms = 50)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "tests/tokio_test_form.rs:61")]
async fn multi_thread_leak_fails() {
    assert_eq!(
        Handle::current().runtime_flavor(),
        RuntimeFlavor::MultiThread
    );
    leakcheck::spawn(pending::<()>()); // leaks
}

/// The runtime arguments may be split between the two attributes.
#[leak_check(flavor = "multi_thread", settle_ms = 50)]
#[tokio::test(worker_threads = 3)]
async fn arguments_from_both_attributes() {
    let handle = Handle::current();
    assert_eq!(handle.runtime_flavor(), RuntimeFlavor::MultiThread);
    assert_eq!(handle.metrics().num_workers(), 3);
}

#[leak_check]
#[tokio::test(start_paused = true)]
async fn start_paused_an_hour_passes_at_once() {
    let wall = std::time::Instant::now();
    let clock = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(clock.elapsed() >= Duration::from_secs(3600));
    assert!(
        wall.elapsed() < Duration::from_secs(30),
        "the clock was not paused: {:?}",
        wall.elapsed()
    );
}

/// Paused time lets the check's settle budget wait for a task that ends on
/// its own, in virtual time.
#[leak_check(settle_ms = 1000)]
#[tokio::test(start_paused = true)]
async fn start_paused_settles_on_virtual_time() {
    leakcheck::spawn(tokio::time::sleep(Duration::from_millis(300)));
}

/// `flavor = "local"` builds tokio's `LocalRuntime`, on which
/// `tokio::task::spawn_local` works without a `LocalSet`.
// Needs tokio 1.51 or newer, above the declared floor that
// scripts/min-versions.sh builds with `--cfg leakcheck_min_versions`.
#[cfg(not(leakcheck_min_versions))]
#[leak_check]
#[tokio::test(flavor = "local")]
async fn local_runtime_runs_local_tasks() {
    let shared = std::rc::Rc::new(std::cell::Cell::new(0));
    let task = tokio::task::spawn_local({
        let shared = shared.clone();
        async move { shared.set(7) }
    });
    task.await.unwrap();
    assert_eq!(shared.get(), 7);
}

// Needs tokio 1.51 or newer, above the declared floor that
// scripts/min-versions.sh builds with `--cfg leakcheck_min_versions`.
#[cfg(not(leakcheck_min_versions))]
#[leak_check(settle_ms = 50)]
#[tokio::test(flavor = "local", start_paused = true)]
#[should_panic(expected = "tests/tokio_test_form.rs:123")]
async fn local_runtime_leak_fails() {
    assert_eq!(
        Handle::current().runtime_flavor(),
        RuntimeFlavor::CurrentThread
    );
    leakcheck::spawn(pending::<()>()); // leaks
}

// Needs tokio 1.51 or newer, above the declared floor that
// scripts/min-versions.sh builds with `--cfg leakcheck_min_versions`.
#[cfg(not(leakcheck_min_versions))]
#[leak_check]
#[tokio::test(name = "tokio-test-form")]
async fn runtime_name_is_passed_on() {
    assert_eq!(Handle::current().name(), Some("tokio-test-form"));
}

/// A path tokio is reached under, whose `Builder` counts the runtimes built
/// through it.
mod renamed {
    pub mod runtime {
        use std::sync::atomic::{AtomicUsize, Ordering};

        pub static BUILT: AtomicUsize = AtomicUsize::new(0);

        pub struct Builder;

        impl Builder {
            pub fn new_current_thread() -> tokio::runtime::Builder {
                BUILT.fetch_add(1, Ordering::Relaxed);
                tokio::runtime::Builder::new_current_thread()
            }
        }
    }
}

#[leak_check]
#[tokio::test(crate = "crate::renamed")]
async fn crate_path_is_used() {
    use std::sync::atomic::Ordering;
    assert_eq!(renamed::runtime::BUILT.load(Ordering::Relaxed), 1);
    leakcheck::spawn(async {}).await.unwrap();
}

#[leak_check]
#[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leading_colons_are_tokio_test_too() {
    assert_eq!(handle_workers(), 2);
}

fn handle_workers() -> usize {
    Handle::current().metrics().num_workers()
}

// ---- the test is the one `#[tokio::test]` would make ----------------------------

#[leak_check]
#[tokio::test]
async fn result_ok_passes() -> Result<(), std::num::ParseIntError> {
    let n: u32 = "42".parse()?;
    assert_eq!(n, 42);
    Ok(())
}

/// Ignored, and fails if run: its `Err` is the test's result. Called once by
/// `the_body_error_is_the_result`.
#[leak_check]
#[tokio::test]
#[ignore = "fails if run: returns the body's `Err`"]
async fn ignored_returns_the_body_error() -> Result<(), String> {
    Err("the body's error".to_owned())
}

#[test]
fn the_body_error_is_the_result() {
    assert_eq!(
        ignored_returns_the_body_error(),
        Err("the body's error".to_owned())
    );
}

#[test]
fn ignore_is_kept_and_each_test_registered_once() {
    assert_eq!(
        child::listed_tests(&["--ignored"]),
        ["ignored_returns_the_body_error"]
    );
    let all = child::listed_tests(&[]);
    assert!(all.iter().any(|name| name == "current_thread_by_default"));
    let dups: Vec<_> = all.windows(2).filter(|w| w[0] == w[1]).collect();
    assert!(dups.is_empty(), "registered more than once: {dups:?}");
}

#[leak_check]
#[tokio::test]
#[should_panic(expected = "the body's own panic")]
async fn should_panic_is_kept() {
    panic!("the body's own panic");
}

/// The body's panic is the test's, not the leak's report.
#[leak_check(settle_ms = 50)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "the body's own panic")]
async fn own_panic_is_reported_not_the_leak() {
    leakcheck::spawn(pending::<()>());
    panic!("the body's own panic");
}

/// Doc comments and other attributes are kept.
#[leak_check]
#[tokio::test]
#[allow(unused_variables)]
#[cfg_attr(all(), should_panic(expected = "kept by cfg_attr"))]
async fn other_attributes_are_kept() {
    let unused = 1;
    panic!("kept by cfg_attr");
}

// ---- the runtime is instrumented ------------------------------------------------

/// A plain `tokio::spawn` is seen by tokio's task hooks, which leakcheck
/// installs on the runtime it builds: the report names the spawn line.
/// `tokio::test`'s own runtime would give only a count.
#[cfg(tokio_unstable)]
#[leak_check(settle_ms = 50)]
#[tokio::test]
#[should_panic(expected = "1 task spawned at tests/tokio_test_form.rs:247")]
async fn plain_spawn_is_reported_at_its_line() {
    tokio::spawn(pending::<()>()); // leaks
}

#[cfg(tokio_unstable)]
#[leak_check(settle_ms = 50)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "1 task spawned at tests/tokio_test_form.rs:255")]
async fn plain_spawn_is_reported_at_its_line_multi_thread() {
    tokio::spawn(pending::<()>()); // leaks
}

/// Without task hooks, the same leak is counted.
#[cfg(not(tokio_unstable))]
#[leak_check(settle_ms = 50)]
#[tokio::test]
#[should_panic(expected = "1 untracked task still alive on this runtime")]
async fn plain_spawn_is_counted_without_task_hooks() {
    tokio::spawn(pending::<()>());
}

/// `unhandled_panic = "shutdown_runtime"` reaches the builder: a task's
/// panic shuts the runtime down and fails the test.
#[cfg(tokio_unstable)]
#[leak_check]
#[tokio::test(unhandled_panic = "shutdown_runtime")]
#[should_panic(expected = "configured to shut down on unhandled panic")]
async fn unhandled_panic_shuts_the_runtime_down() {
    let _ = tokio::spawn(async { panic!("a task's panic") }).await;
}

#[cfg(tokio_unstable)]
#[leak_check]
#[tokio::test(unhandled_panic = "ignore")]
async fn unhandled_panic_ignore() {
    assert!(tokio::spawn(async { panic!("a task's panic") })
        .await
        .unwrap_err()
        .is_panic());
}

#[test]
fn should_panic_lines_name_the_leaking_spawn() {
    let source = include_str!("tokio_test_form.rs");
    let checked = sites::check_leak_lines(source, "tests/tokio_test_form.rs");
    assert_eq!(checked, 5);
}

// At the end of the file, so that no line a test names moves.
#[path = "support/child.rs"]
mod child;
#[path = "support/sites.rs"]
mod sites;
