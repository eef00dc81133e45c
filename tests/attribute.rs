//! `#[leak_check]` in each of its forms, against the real checker.
//!
//! A test that expects a leak names the line of the spawn that leaks, marked
//! `// leaks`; `should_panic_lines_name_the_leaking_spawn` keeps them in step.

#![deny(warnings)]

use leakcheck::leak_check;
use std::future::pending;
use std::sync::mpsc;
use std::time::Duration;
use tokio::runtime::{Handle, RuntimeFlavor};

/// A thread that blocks until the returned sender is dropped.
#[track_caller]
fn blocked_thread() -> mpsc::Sender<()> {
    let (tx, rx) = mpsc::channel::<()>();
    leakcheck::thread::spawn(move || {
        let _ = rx.recv();
    });
    tx
}

// ---- `fn`: a sync test ------------------------------------------------------

#[leak_check]
fn sync_clean() {
    let worker = leakcheck::thread::spawn(|| 2 + 2);
    assert_eq!(worker.join().unwrap(), 4);
}

#[leak_check]
fn sync_checks_after_the_body_locals_are_dropped() {
    // The thread ends when `keep_alive` is dropped, which happens when the
    // body returns, before the check.
    let keep_alive = blocked_thread();
    let _ = &keep_alive;
}

#[leak_check(settle_ms = 50)]
#[should_panic(expected = "tests/attribute.rs:45")]
fn sync_thread_leak_fails() {
    let (tx, rx) = mpsc::channel::<()>();
    std::mem::forget(tx);
    leakcheck::thread::spawn(move || rx.recv()); // leaks
}

#[leak_check]
fn sync_returns_result() -> Result<(), std::num::ParseIntError> {
    let n: u32 = "42".parse()?;
    if n == 42 {
        return Ok(());
    }
    unreachable!()
}

#[leak_check]
#[ignore = "checks that `#[ignore]` is kept"]
fn sync_ignored() {
    panic!("an ignored test must not run");
}

#[leak_check(settle_ms = 50)]
#[should_panic(expected = "my own panic")]
fn sync_own_panic_is_reported_not_the_leak() {
    std::mem::forget(blocked_thread());
    panic!("my own panic");
}

/// Doc comments, `#[allow]` and `#[cfg_attr]` are kept.
#[leak_check(settle_ms = 50)]
#[allow(unused_variables)]
#[cfg_attr(all(), should_panic(expected = "tests/attribute.rs:76"))]
fn sync_other_attributes_are_kept() {
    let unused = 1;
    std::mem::forget(blocked_thread()); // leaks
}

#[leak_check]
#[test]
fn sync_with_test_below() {}

// ---- `async fn`: a runtime of its own ---------------------------------------

#[leak_check]
async fn async_clean() {
    assert_eq!(
        Handle::current().runtime_flavor(),
        RuntimeFlavor::CurrentThread
    );
    let task = leakcheck::spawn(async { 6 * 7 });
    assert_eq!(task.await.unwrap(), 42);
}

#[leak_check]
async fn async_checks_after_the_body_locals_are_dropped() {
    let (keep_alive, rx) = tokio::sync::oneshot::channel::<()>();
    leakcheck::spawn(async move {
        let _ = rx.await;
    });
    tokio::task::yield_now().await;
    let _ = &keep_alive;
}

#[leak_check]
#[should_panic(expected = "tests/attribute.rs:108")]
async fn async_current_thread_leak_fails() {
    leakcheck::spawn(pending::<()>()); // leaks
}

#[leak_check(flavor = "current_thread", settle_ms = 50)]
#[should_panic(expected = "tests/attribute.rs:118")]
async fn async_explicit_current_thread_leak_fails() {
    assert_eq!(
        Handle::current().runtime_flavor(),
        RuntimeFlavor::CurrentThread
    );
    std::mem::forget(blocked_thread()); // leaks
}

#[leak_check(flavor = "multi_thread", worker_threads = 2)]
async fn async_multi_thread_clean() {
    assert_eq!(
        Handle::current().runtime_flavor(),
        RuntimeFlavor::MultiThread
    );
    assert_eq!(Handle::current().metrics().num_workers(), 2);
    let tasks: Vec<_> = (0..8).map(|i| leakcheck::spawn(async move { i })).collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[leak_check(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "tests/attribute.rs:137")]
async fn async_multi_thread_leak_fails() {
    leakcheck::spawn(pending::<()>()); // leaks
}

#[leak_check(start_paused = true)]
async fn async_start_paused() {
    let start = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(1000)).await;
    assert!(start.elapsed() >= Duration::from_secs(1000));
}

#[leak_check(start_paused = true, settle_ms = 1000)]
async fn async_settle_waits_for_work_winding_down() {
    // Paused time makes this deterministic: the check's settle sleeps advance
    // the clock until the task's timer fires, well within 1000 ms.
    leakcheck::spawn(tokio::time::sleep(Duration::from_millis(300)));
}

#[leak_check(start_paused = true, settle_ms = 100)]
#[should_panic(expected = "tests/attribute.rs:157")]
async fn async_settle_is_a_budget() {
    leakcheck::spawn(tokio::time::sleep(Duration::from_secs(1000))); // leaks
}

#[leak_check(start_paused = false)]
async fn async_start_paused_false() {
    let start = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(start.elapsed() >= Duration::from_millis(1));
}

#[leak_check]
async fn async_returns_result() -> std::io::Result<()> {
    let task = leakcheck::task::Builder::new()
        .name("answer")
        .spawn(async { 42 })?;
    assert_eq!(task.await?, 42);
    Ok(())
}

#[leak_check]
#[ignore = "checks that `#[ignore]` is kept"]
async fn async_ignored() {
    panic!("an ignored test must not run");
}

#[leak_check]
#[should_panic(expected = "my own panic")]
async fn async_own_panic_is_reported_not_the_leak() {
    leakcheck::spawn(pending::<()>());
    panic!("my own panic");
}

// ---- `#[leak_check]` above `#[tokio::test]` -----------------------------------

#[leak_check]
#[tokio::test]
async fn tokio_test_clean() {
    let task = leakcheck::spawn(async { 1 });
    assert_eq!(task.await.unwrap(), 1);
}

#[leak_check]
#[tokio::test]
#[should_panic(expected = "tests/attribute.rs:206")]
async fn tokio_test_current_thread_leak_fails() {
    assert_eq!(
        Handle::current().runtime_flavor(),
        RuntimeFlavor::CurrentThread
    );
    leakcheck::spawn(pending::<()>()); // leaks
}

#[leak_check]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "tests/attribute.rs:217")]
async fn tokio_test_multi_thread_leak_fails() {
    assert_eq!(
        Handle::current().runtime_flavor(),
        RuntimeFlavor::MultiThread
    );
    leakcheck::spawn(pending::<()>()); // leaks
}

#[leak_check(settle_ms = 1000)]
#[tokio::test(start_paused = true)]
async fn tokio_test_start_paused_settles() {
    leakcheck::spawn(tokio::time::sleep(Duration::from_millis(300)));
}

#[leak_check]
#[tokio::test]
async fn tokio_test_returns_result() -> std::io::Result<()> {
    leakcheck::task::Builder::new()
        .name("quick")
        .spawn(async {})?
        .await?;
    Ok(())
}

#[leak_check]
#[tokio::test]
#[should_panic(expected = "my own panic")]
async fn tokio_test_own_panic_is_reported_not_the_leak() {
    leakcheck::spawn(pending::<()>());
    panic!("my own panic");
}

// ---- what the check ignores ---------------------------------------------------

#[leak_check(ignore_name = "ticker", ignore_name = "flusher")]
async fn ignore_name_lets_named_work_stay() -> std::io::Result<()> {
    leakcheck::task::Builder::new()
        .name("ticker")
        .spawn(pending::<()>())?;
    leakcheck::task::Builder::new()
        .name("flusher")
        .spawn(pending::<()>())?;
    Ok(())
}

#[leak_check(ignore_name = "ticker")]
#[should_panic(expected = "tests/attribute.rs:262")]
async fn ignore_name_ignores_only_that_name() {
    let builder = leakcheck::task::Builder::new();
    builder.name("ticker").spawn(pending::<()>()).unwrap();
    builder.name("other").spawn(pending::<()>()).unwrap(); // leaks
}

#[leak_check(ignore_location = "tests/attribute.rs:267")]
async fn ignore_location_with_line() {
    leakcheck::spawn(pending::<()>()); // leaks
}

#[leak_check(ignore_location = "tests/attribute.rs", settle_ms = 50)]
fn ignore_location_whole_file() {
    std::mem::forget(blocked_thread());
}

#[test]
fn every_test_is_registered_once() {
    let names = child::listed_tests(&[]);
    assert!(
        names.iter().any(|n| n == "sync_clean")
            && names.iter().any(|n| n == "sync_with_test_below")
    );
    let dups: Vec<&str> = names
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0].as_str())
        .collect();
    assert!(dups.is_empty(), "registered more than once: {dups:?}");
}

#[test]
fn should_panic_lines_name_the_leaking_spawn() {
    let checked = sites::check_leak_lines(include_str!("attribute.rs"), "tests/attribute.rs");
    assert!(checked >= 10);
}

// ---- `ignore_untracked_tasks` ---------------------------------------------------------
//
// Without task hooks a plain `tokio::spawn` is only counted; with them it has
// a site, and `ignore_location` is the way to accept it.

/// A counted task accepted by the attribute, as a pool's reaper would be.
#[cfg(not(tokio_unstable))]
#[leak_check(settle_ms = 50, ignore_untracked_tasks = 1)]
async fn a_counted_reaper_is_accepted() {
    tokio::spawn(pending::<()>());
    tokio::task::yield_now().await;
}

/// A second task is still a leak, and the report says one was accepted.
#[cfg(not(tokio_unstable))]
#[leak_check(settle_ms = 50, ignore_untracked_tasks = 1)]
#[should_panic(expected = "were accepted by `ignore_untracked_tasks`")]
async fn a_second_counted_task_is_not_accepted() {
    tokio::spawn(pending::<()>());
    tokio::spawn(pending::<()>());
    tokio::task::yield_now().await;
}

// At the end of the file, so that no line a test names moves.
#[path = "support/child.rs"]
mod child;
#[path = "support/sites.rs"]
mod sites;
