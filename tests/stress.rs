//! The stress suite: 260 tests that run in parallel threads, half of them
//! leaking by design. `scripts/stress.sh` runs this binary many times and
//! checks that the set of failing tests is exactly the `leaky` half, every
//! time, and that each failure's report names only its own test's work.
//!
//! Every test is `#[ignore]`d so that `cargo test` and nextest skip it: the
//! leaky half fails on purpose. Run it with
//! `cargo test --test stress -- --ignored --test-threads=64`.
//!
//! Each family below is one way of writing a test (runtime flavour, the
//! attribute or a bare guard, tasks, blocking tasks or threads). Every family
//! is stamped out 13 times, in modules `n01` to `n13`, and each module has a
//! `leaky` and a `clean` test. All work a test spawns is named after its
//! module path, so a report that mentions another test's name is cross-talk.
//!
//! The clean tests race to finish right at the end: their last piece of work
//! is still running when the check starts, and ends a moment later. The
//! check's settle must absorb that, on a loaded machine, every time.

use leakcheck::leak_check;
use std::time::Duration;

/// The settle budget of every test: long enough for clean work that is
/// finishing, short enough to keep the suite fast.
const SETTLE: Duration = Duration::from_millis(300);

/// Work that ends a moment after it starts: a few yields.
async fn brief() {
    for _ in 0..5 {
        tokio::task::yield_now().await;
    }
}

/// Work that never ends: it waits on a channel whose sender is leaked into a
/// static-lifetime box, so it is neither used nor dropped.
fn forever_rx() -> tokio::sync::mpsc::Receiver<()> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    Box::leak(Box::new(tx));
    rx
}

fn forever_std_rx() -> std::sync::mpsc::Receiver<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    Box::leak(Box::new(tx));
    rx
}

fn named_task<F>(name: &str, future: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    leakcheck::task::Builder::new()
        .name(name)
        .spawn(future)
        .expect("spawn");
}

fn named_thread<F>(name: &str, f: F)
where
    F: FnOnce() + Send + 'static,
{
    leakcheck::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .expect("spawn");
}

fn named_blocking<F>(name: &str, f: F)
where
    F: FnOnce() + Send + 'static,
{
    leakcheck::task::Builder::new()
        .name(name)
        .spawn_blocking(f)
        .expect("spawn");
}

/// Fails the test with the report, as a dropped guard would.
fn fail_on(result: Result<(), leakcheck::LeakReport>) {
    if let Err(report) = result {
        panic!("{report}");
    }
}

macro_rules! families {
    ($($n:ident)*) => {
        /// `#[leak_check]` on an `async fn`: a current-thread runtime, tasks.
        mod attribute_current_thread {
            use super::*;
            $(pub mod $n {
                use super::*;
                #[leak_check(settle_ms = 300)]
                #[ignore = "stress suite: run by scripts/stress.sh"]
                async fn leaky() {
                    let mut rx = forever_rx();
                    named_task(module_path!(), async move { rx.recv().await; });
                    named_task(module_path!(), brief());
                }
                #[leak_check(settle_ms = 300)]
                #[ignore = "stress suite: run by scripts/stress.sh"]
                async fn clean() {
                    named_task(module_path!(), brief());
                    named_task(module_path!(), async { tokio::task::yield_now().await });
                }
            })*
        }

        /// `#[leak_check]` with a multi-thread runtime: tasks that spawn tasks.
        mod attribute_multi_thread {
            use super::*;
            $(pub mod $n {
                use super::*;
                #[leak_check(settle_ms = 300, flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "stress suite: run by scripts/stress.sh"]
                async fn leaky() {
                    named_task(module_path!(), async {
                        named_task(module_path!(), std::future::pending());
                    });
                }
                #[leak_check(settle_ms = 300, flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "stress suite: run by scripts/stress.sh"]
                async fn clean() {
                    named_task(module_path!(), async {
                        named_task(module_path!(), brief());
                    });
                }
            })*
        }

        /// `#[leak_check]` above `#[tokio::test]`: tasks and blocking tasks.
        mod attribute_over_tokio_test {
            use super::*;
            $(pub mod $n {
                use super::*;
                #[leak_check(settle_ms = 300)]
                #[tokio::test]
                #[ignore = "stress suite: run by scripts/stress.sh"]
                async fn leaky() {
                    // Dropping the runtime waits for its blocking tasks, so
                    // this one must end some time after the check has failed.
                    let rx = forever_std_rx();
                    named_blocking(module_path!(), move || {
                        let _ = rx.recv_timeout(Duration::from_secs(2));
                    });
                }
                #[leak_check(settle_ms = 300)]
                #[tokio::test]
                #[ignore = "stress suite: run by scripts/stress.sh"]
                async fn clean() {
                    named_blocking(module_path!(), || std::thread::yield_now());
                    named_task(module_path!(), brief());
                }
            })*
        }

        /// A bare guard in a sync test: threads.
        mod guard_threads {
            use super::*;
            $(pub mod $n {
                use super::*;
                #[test]
                #[ignore = "stress suite: run by scripts/stress.sh"]
                fn leaky() {
                    let guard = leakcheck::Options::new().settle(SETTLE).verify_none();
                    let rx = forever_std_rx();
                    named_thread(module_path!(), move || { let _ = rx.recv(); });
                    fail_on(guard.check());
                }
                #[test]
                #[ignore = "stress suite: run by scripts/stress.sh"]
                fn clean() {
                    let _guard = leakcheck::Options::new().settle(SETTLE).verify_none();
                    // Not joined: it ends just as the guard is dropped.
                    named_thread(module_path!(), std::thread::yield_now);
                }
            })*
        }

        /// A bare guard in a multi-thread `#[tokio::test]`, checked async:
        /// tasks that start threads.
        mod guard_async_multi_thread {
            use super::*;
            $(pub mod $n {
                use super::*;
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "stress suite: run by scripts/stress.sh"]
                async fn leaky() {
                    let guard = leakcheck::Options::new().settle(SETTLE).verify_none();
                    named_task(module_path!(), async {
                        let rx = forever_std_rx();
                        named_thread(module_path!(), move || { let _ = rx.recv(); });
                    });
                    fail_on(guard.check_async().await);
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "stress suite: run by scripts/stress.sh"]
                async fn clean() {
                    let guard = leakcheck::Options::new().settle(SETTLE).verify_none();
                    named_task(module_path!(), async {
                        named_thread(module_path!(), std::thread::yield_now);
                    });
                    fail_on(guard.check_async().await);
                }
            })*
        }

        /// A sync `#[leak_check]` test that runs its own runtime inside.
        mod attribute_sync_own_runtime {
            use super::*;
            $(pub mod $n {
                use super::*;
                #[leak_check(settle_ms = 300)]
                #[ignore = "stress suite: run by scripts/stress.sh"]
                fn leaky() {
                    // The runtime is leaked too, so its task is never
                    // cancelled, and its workers are reported with it.
                    let runtime = Box::leak(Box::new(
                        tokio::runtime::Runtime::new().expect("runtime"),
                    ));
                    runtime.block_on(async {
                        named_task(module_path!(), std::future::pending());
                    });
                }
                #[leak_check(settle_ms = 300)]
                #[ignore = "stress suite: run by scripts/stress.sh"]
                fn clean() {
                    let runtime = tokio::runtime::Runtime::new().expect("runtime");
                    runtime.block_on(async {
                        leakcheck::task::Builder::new()
                            .name(module_path!())
                            .spawn(brief())
                            .expect("spawn")
                            .await
                            .expect("join");
                    });
                }
            })*
        }

        /// JoinSets: kept alive (a leak) or dropped before the check.
        mod join_sets {
            use super::*;
            use leakcheck::task::JoinSetExt;
            $(pub mod $n {
                use super::*;
                #[leak_check(settle_ms = 300)]
                #[ignore = "stress suite: run by scripts/stress.sh"]
                async fn leaky() {
                    let mut set = tokio::task::JoinSet::new();
                    let mut rx = forever_rx();
                    let name = module_path!();
                    set.spawn_tracked(async move {
                        named_task(name, std::future::pending());
                        rx.recv().await;
                    });
                    // The set outlives the check: its task is not aborted.
                    Box::leak(Box::new(set));
                }
                #[leak_check(settle_ms = 300)]
                #[ignore = "stress suite: run by scripts/stress.sh"]
                async fn clean() {
                    let mut set = tokio::task::JoinSet::new();
                    for _ in 0..4 {
                        set.spawn_tracked(std::future::pending::<()>());
                    }
                    drop(set); // aborts them all
                }
            })*
        }

        /// Paused time: a ticker that never stops, or one that stops.
        mod paused_time {
            use super::*;
            $(pub mod $n {
                use super::*;
                #[leak_check(settle_ms = 300, start_paused = true)]
                #[ignore = "stress suite: run by scripts/stress.sh"]
                async fn leaky() {
                    named_task(module_path!(), async {
                        loop {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    });
                }
                #[leak_check(settle_ms = 300, start_paused = true)]
                #[ignore = "stress suite: run by scripts/stress.sh"]
                async fn clean() {
                    // Ends 150 ms later on the paused clock, inside the
                    // check's 300 ms budget, which runs on that clock too.
                    named_task(module_path!(), async {
                        for _ in 0..3 {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    });
                }
            })*
        }

        /// Plain `std::thread` threads, seen through the thread hook, in a
        /// sync `#[leak_check]` test. Unnamed: Linux keeps 15 bytes of a
        /// name, too few to tell the tests apart, so each leaky test checks
        /// that its report holds its one thread and nothing else.
        mod plain_threads {
            use super::*;
            $(pub mod $n {
                use super::*;
                #[test]
                #[ignore = "stress suite: run by scripts/stress.sh"]
                fn leaky() {
                    let guard = leakcheck::Options::new().settle(SETTLE).verify_none();
                    let rx = forever_std_rx();
                    std::thread::spawn(move || { let _ = rx.recv(); });
                    let report = guard.check().expect_err("a plain thread outlives the test");
                    if cfg!(all(target_os = "linux", target_env = "gnu")) {
                        assert_eq!(report.stragglers().len(), 1, "cross-talk: {report}");
                    }
                    panic!("{report}");
                }
                #[test]
                #[ignore = "stress suite: run by scripts/stress.sh"]
                fn clean() {
                    let _guard = leakcheck::Options::new().settle(SETTLE).verify_none();
                    // Not joined: it ends just as the guard is dropped.
                    std::thread::spawn(std::thread::yield_now);
                    let _ = std::thread::spawn(|| ()).join();
                }
            })*
        }

        /// Plain `tokio::spawn` and `spawn_blocking` under `#[leak_check]`
        /// above `#[tokio::test]`: reported at their line with
        /// `--cfg tokio_unstable`, counted without it.
        mod plain_tasks {
            use super::*;
            $(pub mod $n {
                use super::*;
                #[leak_check(settle_ms = 300)]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "stress suite: run by scripts/stress.sh"]
                async fn leaky() {
                    let mut rx = forever_rx();
                    tokio::spawn(async move { rx.recv().await; });
                    tokio::task::spawn_blocking(|| ()).await.unwrap();
                }
                #[leak_check(settle_ms = 300)]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "stress suite: run by scripts/stress.sh"]
                async fn clean() {
                    tokio::task::spawn_blocking(|| ()).await.unwrap();
                    tokio::spawn(brief());
                }
            })*
        }
    };
}

families!(n01 n02 n03 n04 n05 n06 n07 n08 n09 n10 n11 n12 n13);
