//! `#[leak_check]` on a module: one line checks every test inside it, in
//! nested modules too, with the module's arguments as defaults that a test's
//! own `#[leak_check(...)]` overrides argument by argument, and
//! `#[leak_check(off)]` exempts a test or a nested module. Helpers and other
//! items are left as they are.
//!
//! A test that expects a leak names the line of the spawn that leaks, marked
//! `// leaks`; `should_panic_lines_name_the_leaking_spawn` keeps them in step.
//! Child tests (re-run in a subprocess) do nothing unless `LC_MODULE_CHILD`
//! names them.

#![deny(warnings)]

use std::process::Output;
use std::sync::mpsc;

#[path = "support/child.rs"]
mod child;
use child::text;

const CHILD: &str = "LC_MODULE_CHILD";

/// A tracked thread that blocks until the returned sender is dropped,
/// charged to the caller's line.
#[track_caller]
fn blocked_thread() -> mpsc::Sender<()> {
    let (tx, rx) = mpsc::channel::<()>();
    leakcheck::thread::spawn(move || {
        let _ = rx.recv();
    });
    tx
}

#[leakcheck::leak_check(settle_ms = 50, ignore_name = "module-ignored-*")]
#[cfg(test)]
mod checked {
    use super::*;
    use std::future::pending;
    use std::time::Duration;
    use tokio::runtime::{Handle, RuntimeFlavor};
    // A renamed tokio: `#[my_tokio::test]` is another runtime's attribute to
    // `#[leak_check]`, which leaves it to build its runtime.
    use tokio as my_tokio;

    /// A helper: not a test, left as it is.
    fn add(a: u32, b: u32) -> u32 {
        a + b
    }

    /// A fixture with methods: left as it is.
    struct Counter(u32);

    impl Counter {
        fn bump(&mut self) -> u32 {
            self.0 += 1;
            self.0
        }
    }

    fn spawn_named(name: &str) {
        leakcheck::task::Builder::new()
            .name(name)
            .spawn(pending::<()>())
            .expect("spawn a named task");
    }

    // ---- sync tests -------------------------------------------------------------

    #[test]
    fn sync_clean() {
        let worker = leakcheck::thread::spawn(|| add(2, 2));
        assert_eq!(worker.join().unwrap(), 4);
        assert_eq!(Counter(0).bump(), 1);
    }

    #[test]
    fn sync_checks_after_the_body_locals_are_dropped() {
        let keep_alive = blocked_thread();
        let _ = &keep_alive;
    }

    #[test]
    #[should_panic(expected = "tests/module_form.rs:85")]
    fn sync_leak_fails() {
        std::mem::forget(blocked_thread()); // leaks
    }

    #[test]
    fn sync_returns_result() -> Result<(), std::num::ParseIntError> {
        assert_eq!("42".parse::<u32>()?, 42);
        Ok(())
    }

    // ---- `#[tokio::test]`, both flavours ------------------------------------------

    #[tokio::test]
    async fn tokio_test_clean() {
        assert_eq!(
            Handle::current().runtime_flavor(),
            RuntimeFlavor::CurrentThread
        );
        assert_eq!(leakcheck::spawn(async { 1 }).await.unwrap(), 1);
    }

    #[tokio::test]
    #[should_panic(expected = "tests/module_form.rs:108")]
    async fn tokio_test_leak_fails() {
        leakcheck::spawn(pending::<()>()); // leaks
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn multi_thread_clean() {
        let handle = Handle::current();
        assert_eq!(handle.runtime_flavor(), RuntimeFlavor::MultiThread);
        assert_eq!(handle.metrics().num_workers(), 2);
        let tasks: Vec<_> = (0..8).map(|i| leakcheck::spawn(async move { i })).collect();
        for (i, task) in tasks.into_iter().enumerate() {
            assert_eq!(task.await.unwrap(), i);
        }
    }

    #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[should_panic(expected = "tests/module_form.rs:129")]
    async fn multi_thread_leak_fails() {
        assert_eq!(
            Handle::current().runtime_flavor(),
            RuntimeFlavor::MultiThread
        );
        leakcheck::spawn(pending::<()>()); // leaks
    }

    /// The runtime `#[leak_check]` builds in place of `#[tokio::test]` is
    /// instrumented: with task hooks, a plain `tokio::spawn` is reported at
    /// its line.
    #[cfg(tokio_unstable)]
    #[tokio::test]
    #[should_panic(expected = "1 task spawned at tests/module_form.rs:139")]
    async fn plain_spawn_is_reported_at_its_line() {
        tokio::spawn(pending::<()>()); // leaks
    }

    #[cfg(not(tokio_unstable))]
    #[tokio::test]
    #[should_panic(expected = "1 untracked task still alive on this runtime")]
    async fn plain_spawn_is_counted_without_task_hooks() {
        tokio::spawn(pending::<()>());
    }

    /// Another runtime's attribute builds its runtime itself; the check is
    /// still added to the body.
    #[my_tokio::test]
    #[should_panic(expected = "tests/module_form.rs:154")]
    async fn other_runtime_attribute_leak_fails() {
        leakcheck::spawn(pending::<()>()); // leaks
    }

    // ---- the module's defaults, and a test's own arguments ----------------------

    /// The module's `ignore_name` applies.
    #[tokio::test]
    async fn module_ignore_name_applies() {
        spawn_named("module-ignored-1");
    }

    /// The module's `settle_ms = 50` applies: a task that ends after 300 ms
    /// of paused time is still there when the check gives up.
    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "tests/module_form.rs:170")]
    async fn module_settle_applies() {
        leakcheck::spawn(tokio::time::sleep(Duration::from_millis(300))); // leaks
    }

    /// A test's own `settle_ms` replaces the module's, and the module's
    /// `ignore_name` still applies, with the test's own added to it.
    #[leakcheck::leak_check(settle_ms = 1000, ignore_name = "own-ignored")]
    #[tokio::test(start_paused = true)]
    async fn own_arguments_override_one_by_one() {
        leakcheck::spawn(tokio::time::sleep(Duration::from_millis(300)));
        spawn_named("module-ignored-2");
        spawn_named("own-ignored");
    }

    /// The test's own `ignore_name` adds to the module's; it does not make
    /// every other name ignored.
    #[leakcheck::leak_check(ignore_name = "own-ignored")]
    #[tokio::test]
    #[should_panic(expected = "tests/module_form.rs:190")]
    async fn own_ignore_name_ignores_only_that_name() {
        spawn_named("own-ignored");
        leakcheck::spawn(pending::<()>()); // leaks
    }

    /// `#[leak_check]` alone makes a function a test, here as anywhere: with
    /// a runtime of its own for an `async fn`.
    #[leakcheck::leak_check(flavor = "multi_thread", worker_threads = 3)]
    async fn leak_check_alone_builds_the_runtime() {
        assert_eq!(Handle::current().metrics().num_workers(), 3);
        leakcheck::spawn(async {}).await.unwrap();
    }

    #[leakcheck::leak_check]
    #[should_panic(expected = "tests/module_form.rs:204")]
    fn leak_check_alone_on_a_sync_fn() {
        std::mem::forget(blocked_thread()); // leaks
    }

    /// A `#[test]` below the test's own `#[leak_check]` is the one kept.
    #[leakcheck::leak_check(settle_ms = 10)]
    #[test]
    fn own_attribute_above_test() {
        leakcheck::thread::spawn(|| ()).join().unwrap();
    }

    // ---- exemptions -------------------------------------------------------------

    /// Exempt: runs under `#[tokio::test]`'s own runtime, and nothing checks
    /// its task, which that runtime cancels when it is dropped.
    #[leakcheck::leak_check(off)]
    #[tokio::test]
    async fn exempt_tokio_test_leaks_and_passes() {
        leakcheck::spawn(pending::<()>());
    }

    /// Exempt: its leaked thread fails nothing. Run in a child, next to its
    /// checked twin, by `an_exempt_test_is_not_checked`.
    #[leakcheck::leak_check(off)]
    #[test]
    fn child_exempt_sync_leaks() {
        if child::is_child(CHILD, "checked::child_exempt_sync_leaks") {
            std::mem::forget(blocked_thread());
        }
    }

    #[test]
    fn child_checked_sync_leaks() {
        if child::is_child(CHILD, "checked::child_checked_sync_leaks") {
            std::mem::forget(blocked_thread()); // leaks
        }
    }

    // ---- nested modules ---------------------------------------------------------

    /// The module's tests are checked here too, with this module's runtime
    /// arguments nearer than the outer module's.
    #[leakcheck::leak_check(flavor = "multi_thread", worker_threads = 2)]
    mod on_two_workers {
        use super::*;

        #[tokio::test]
        async fn gets_the_nested_defaults() {
            let handle = Handle::current();
            assert_eq!(handle.runtime_flavor(), RuntimeFlavor::MultiThread);
            assert_eq!(handle.metrics().num_workers(), 2);
        }

        #[leakcheck::leak_check]
        async fn own_runtime_gets_them_too() {
            assert_eq!(Handle::current().metrics().num_workers(), 2);
        }

        /// Its own `flavor` wins, and `worker_threads`, which does not fit a
        /// current-thread runtime, is not passed on.
        #[tokio::test(flavor = "current_thread")]
        async fn own_flavor_wins() {
            assert_eq!(
                Handle::current().runtime_flavor(),
                RuntimeFlavor::CurrentThread
            );
        }

        #[tokio::test]
        #[should_panic(expected = "tests/module_form.rs:274")]
        async fn leak_fails() {
            leakcheck::spawn(pending::<()>()); // leaks
        }

        #[test]
        #[should_panic(expected = "tests/module_form.rs:280")]
        fn sync_leak_fails() {
            std::mem::forget(blocked_thread()); // leaks
        }

        /// A module with no attribute of its own is checked as its parent.
        mod plain {
            use super::*;

            #[tokio::test]
            #[should_panic(expected = "tests/module_form.rs:291")]
            async fn leak_fails() {
                assert_eq!(Handle::current().metrics().num_workers(), 2);
                leakcheck::spawn(pending::<()>()); // leaks
            }
        }
    }

    /// An exempt module: its tests are left as they are, but for one that
    /// asks to be checked.
    #[leakcheck::leak_check(off)]
    mod legacy {
        use super::*;

        #[tokio::test]
        async fn leaks_and_passes() {
            leakcheck::spawn(pending::<()>());
        }

        #[leakcheck::leak_check]
        #[tokio::test]
        #[should_panic(expected = "tests/module_form.rs:311")]
        async fn checked_again() {
            leakcheck::spawn(pending::<()>()); // leaks
        }
    }
}

/// A checked module that a macro writes, with a test named from outside it:
/// the expansion's names still resolve.
macro_rules! checked_module {
    ($test:ident) => {
        #[leakcheck::leak_check(settle_ms = 50)]
        mod from_a_macro {
            #[test]
            #[should_panic(expected = "leaked 1 thread")]
            fn $test() {
                std::mem::forget(super::blocked_thread());
            }
        }
    };
}

checked_module!(named_outside_the_macro);

/// Runs `test` of this binary alone in a child process.
fn run_child(test: &str) -> Output {
    child::run_child(CHILD, test, &[])
}

#[test]
fn an_exempt_test_is_not_checked() {
    let output = run_child("checked::child_exempt_sync_leaks");
    let exempt = text(&output);
    assert!(output.status.success(), "{exempt}");
    assert!(
        exempt.contains("test checked::child_exempt_sync_leaks ... ok"),
        "{exempt}"
    );
    assert!(!exempt.contains("leaked"), "{exempt}");

    // The same body, not exempt, fails at the line of its spawn.
    let output = run_child("checked::child_checked_sync_leaks");
    let text = text(&output);
    assert_eq!(output.status.code(), Some(101), "{text}");
    let line = spawn_line("fn child_checked_sync_leaks");
    let headline = "leakcheck: test `checked::child_checked_sync_leaks` leaked 1 thread";
    assert!(text.contains(headline), "{text}");
    let site = format!("1 thread spawned at tests/module_form.rs:{line}");
    assert!(text.contains(&site), "no {site:?} in:\n{text}");
    // The panic is located at the test, not at the module's attribute.
    let test_line = line_of("fn child_checked_sync_leaks");
    let panic = format!("panicked at tests/module_form.rs:{test_line}:8:");
    assert!(text.contains(&panic), "no {panic:?} in:\n{text}");
}

#[test]
fn each_test_is_registered_once_and_helpers_are_not_tests() {
    let names = child::listed_tests(&[]);
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(names, unique, "a test is registered more than once");
    for test in [
        "checked::sync_clean",
        "checked::exempt_tokio_test_leaks_and_passes",
        "checked::leak_check_alone_builds_the_runtime",
        "checked::on_two_workers::plain::leak_fails",
        "checked::legacy::leaks_and_passes",
    ] {
        assert!(
            names.iter().any(|n| n == test),
            "{test} is not a test: {names:?}"
        );
    }
    let in_checked = names.iter().filter(|n| n.starts_with("checked::")).count();
    assert_eq!(in_checked, 28, "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.contains("add") || n.contains("bump")),
        "{names:?}"
    );
}

/// The line of the first `// leaks` after `item` in this file.
fn spawn_line(item: &str) -> usize {
    let source = include_str!("module_form.rs");
    let lines: Vec<&str> = source.lines().collect();
    // `line_of` counts from 1, so it is the index of the line after `item`.
    let after = line_of(item);
    after
        + 1
        + lines[after..]
            .iter()
            .position(|l| l.ends_with("// leaks"))
            .unwrap()
}

/// The line of `item` in this file.
fn line_of(item: &str) -> usize {
    let source = include_str!("module_form.rs");
    1 + source.lines().position(|l| l.contains(item)).unwrap()
}

#[test]
fn should_panic_lines_name_the_leaking_spawn() {
    let checked = sites::check_leak_lines(include_str!("module_form.rs"), "tests/module_form.rs");
    assert_eq!(checked, 12);
}

// At the end of the file, so that no line a test names moves.
#[path = "support/sites.rs"]
mod sites;
