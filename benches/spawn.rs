//! The cost of leakcheck on the spawn path: B1–B4, B9 and B10 of the
//! benchmark plan, each a ratio against plain tokio or std measured in the
//! same process, in interleaved pairs (see `common/mod.rs`).
//!
//! | id | subject | baseline | target |
//! |---|---|---|---|
//! | `B1/current-thread` | `leakcheck::spawn` + join, no guard ever created | `tokio::spawn` + join | ≤ 1.05× |
//! | `B2/current-thread` | the same inside a guard's scope, default settings | `tokio::spawn` | ≤ 1.25× |
//! | `B2/two-threads` | two threads spawning into one scope at once | two threads on `tokio::spawn` | ≤ 1.4× |
//! | `B2-diag/*` | where B2's time goes (diagnostics, no target): backtrace off, slab shard kept non-empty, spawns outside any guard with tracking on | `tokio::spawn` | — |
//! | `B3/current-thread` | B2 with `LEAKCHECK_BACKTRACE=full` | `tokio::spawn` | report, µs per spawn |
//! | `B4/thread` | `leakcheck::thread::spawn` + join in a scope | `std::thread::spawn` + join | ≤ 1.1× |
//! | `B9/self-wake` | poll of a tracked task that wakes itself | same future on `tokio::spawn` | ≤ 1.3× |
//! | `B10/self-wake-detailed` | B9 in detailed mode (`LEAKCHECK_DETAIL=1`) | same | report |
//!
//! "Spawn + run + join" is `spawn(async { .. }).await` in a loop inside
//! `block_on` on a current-thread runtime: one task at a time, so the figure
//! is the latency of one spawn, one poll and one join.
//!
//! # Processes
//!
//! Run as `cargo bench --bench spawn`, this binary starts one child process
//! per role and prints one table at the end:
//!
//! - `b1`: **B1 only, and first.** Tracking turns on for good at the first
//!   guard or snapshot in a process, so the production path (no guard ever)
//!   can only be measured in a process that never makes one. This child
//!   never does, and proves it: before and after B1 it spawns a pending task
//!   through `leakcheck::spawn` and asserts that `live_count()` stayed 0
//!   (a registered task would be counted).
//! - `main`: B2, its diagnostics, B4 and B9 with the default
//!   `LEAKCHECK_BACKTRACE=site`, under one guard held by the bench thread
//!   (opened after `B2-diag/root-scope`, which needs tracking on and no
//!   guard: it turns tracking on with `snapshot()`).
//! - `off`: B2 with `LEAKCHECK_BACKTRACE=off`, a diagnostic that isolates the
//!   per-site backtrace lookup.
//! - `full`: B3. `LEAKCHECK_BACKTRACE` is read once per process, so the
//!   full-backtrace measure gets a process of its own with the variable set;
//!   you do not need to set it yourself.
//! - `detail`: B10, with `LEAKCHECK_DETAIL=1`. When the leakcheck being
//!   measured does not know that variable (no detailed mode), every guard
//!   panics naming it; the child catches that and reports B10 as skipped.
//!
//! Each child checks that it got the environment its role needs, and the
//! `off` and `full` children also check, through a report, that leakcheck
//! really captured no backtrace / one backtrace per spawn.
//!
//! # Running one benchmark
//!
//! `cargo bench --bench spawn -- B3` starts only the `full` child and runs
//! B3. `cargo bench --bench spawn -- B2/current-thread` runs one function.
//! `cargo test --benches` runs every benchmark once, unmeasured.

mod common;

use common::{bench_paired, group, Args, Plan, Role, Spec, Target, FAST};
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

const ROLES: &[Role] = &[
    Role {
        name: "b1",
        env: &[],
        ids: &["B1/current-thread"],
        runs: 1,
        test_runs: 1,
    },
    Role {
        name: "main",
        env: &[],
        ids: &[
            "B2/current-thread",
            "B2/two-threads",
            "B2-diag/shard-kept-non-empty",
            "B2-diag/root-scope",
            "B4/thread",
            "B9/self-wake",
        ],
        runs: 1,
        test_runs: 1,
    },
    Role {
        name: "off",
        env: &[("LEAKCHECK_BACKTRACE", "off")],
        ids: &["B2-diag/backtrace-off", "B2-diag/two-threads-backtrace-off"],
        runs: 1,
        test_runs: 1,
    },
    Role {
        name: "full",
        env: &[("LEAKCHECK_BACKTRACE", "full")],
        ids: &["B3/current-thread"],
        runs: 1,
        test_runs: 1,
    },
    Role {
        name: "detail",
        env: &[("LEAKCHECK_DETAIL", "1")],
        ids: &["B10/self-wake-detailed"],
        runs: 1,
        test_runs: 1,
    },
];

fn main() {
    match common::role().as_deref() {
        None => common::parent("spawn", ROLES),
        Some("b1") => b1(),
        Some("main") => main_role(),
        Some("off") => off(),
        Some("full") => full(),
        Some("detail") => detail(),
        Some(other) => panic!("unknown bench role {other:?}"),
    }
}

/// Threads and thread spawns are slower and noisier: fewer, longer samples.
const THREADS: Plan = Plan {
    samples: 40,
    warm_up: Duration::from_millis(700),
    measure: Duration::from_secs(10),
};

fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("build a current-thread runtime")
}

/// With time, for `check_async`.
fn current_thread_with_time() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("build a current-thread runtime")
}

/// `n` times: spawn a trivial task with `$spawn`, let it run, join it.
macro_rules! spawn_join {
    ($rt:expr, $n:expr, $spawn:path) => {{
        let n: u64 = $n;
        $rt.block_on(async move {
            let start = Instant::now();
            for _ in 0..n {
                let value = $spawn(async { black_box(7u64) }).await.unwrap();
                black_box(value);
            }
            start.elapsed()
        })
    }};
}

fn tokio_spawn_join(rt: &Runtime, n: u64) -> Duration {
    spawn_join!(rt, n, tokio::spawn)
}

fn leakcheck_spawn_join(rt: &Runtime, n: u64) -> Duration {
    spawn_join!(rt, n, leakcheck::spawn)
}

// ---------------------------------------------------------------------------
// B1: the production path
// ---------------------------------------------------------------------------

/// Panics unless tracking is still off in this process: a pending task
/// spawned through leakcheck must not appear in the registry.
fn assert_not_tracking(rt: &Runtime, when: &str) {
    rt.block_on(async {
        let before = leakcheck::__private::live_count();
        let handle = leakcheck::spawn(std::future::pending::<()>());
        tokio::task::yield_now().await;
        let during = leakcheck::__private::live_count();
        handle.abort();
        let _ = handle.await;
        assert_eq!(
            (before, during),
            (0, 0),
            "B1 {when}: leakcheck is tracking in the B1 process, so B1 would not measure the \
             production path"
        );
    });
}

fn b1() {
    let mut c = common::criterion();
    let rt = current_thread();
    assert_not_tracking(&rt, "before");
    {
        let mut g = group(&mut c, "B1", &FAST);
        bench_paired(
            &mut g,
            "B1",
            "current-thread",
            &FAST,
            Spec {
                baseline: "tokio::spawn",
                subject: "leakcheck::spawn (never a guard)",
                target: Target::RatioAtMost(1.05),
                show_extra: true,
            },
            |n| tokio_spawn_join(&rt, n),
            |n| leakcheck_spawn_join(&rt, n),
        );
        g.finish();
    }
    assert_not_tracking(&rt, "after");
    common::finish(c);
}

// ---------------------------------------------------------------------------
// B2, B4, B9: inside a guard's scope, default settings
// ---------------------------------------------------------------------------

fn main_role() {
    common::expect_env("LEAKCHECK_BACKTRACE", None);
    let mut c = common::criterion();
    let rt = current_thread();

    // Tracking on, but no guard on this thread: spawns go to the root scope,
    // as library code's spawns do in a test binary once any test has opened
    // a guard.
    drop(leakcheck::snapshot());
    {
        let mut g = group(&mut c, "B2-diag", &FAST);
        bench_paired(
            &mut g,
            "B2-diag",
            "root-scope",
            &FAST,
            Spec {
                baseline: "tokio::spawn",
                subject: "leakcheck::spawn, tracking on, outside any guard",
                target: Target::Report,
                show_extra: true,
            },
            |n| tokio_spawn_join(&rt, n),
            |n| leakcheck_spawn_join(&rt, n),
        );
        g.finish();
    }

    // Everything this thread spawns through leakcheck from here on belongs
    // to this guard's scope, including what the tracked threads of
    // B2/two-threads spawn.
    let guard = leakcheck::Options::new()
        .settle(Duration::from_secs(5))
        .verify_none();

    {
        let mut g = group(&mut c, "B2", &FAST);
        bench_paired(
            &mut g,
            "B2",
            "current-thread",
            &FAST,
            Spec {
                baseline: "tokio::spawn",
                subject: "leakcheck::spawn in a scope",
                target: Target::RatioAtMost(1.25),
                show_extra: true,
            },
            |n| tokio_spawn_join(&rt, n),
            |n| leakcheck_spawn_join(&rt, n),
        );
        bench_paired(
            &mut g,
            "B2",
            "two-threads",
            &THREADS,
            Spec {
                baseline: "2 threads × tokio::spawn",
                subject: "2 threads × leakcheck::spawn, one scope",
                target: Target::RatioAtMost(1.4),
                show_extra: true,
            },
            |n| two_threads(n, false),
            |n| two_threads(n, true),
        );
        g.finish();
    }

    {
        // The slab gives a shard's memory back whenever the shard empties.
        // With one task at a time that happens on every join; one long-lived
        // task registered from this thread keeps the shard non-empty.
        let keeper = {
            let _runtime = rt.enter();
            leakcheck::spawn(std::future::pending::<()>())
        };
        let mut g = group(&mut c, "B2-diag", &FAST);
        bench_paired(
            &mut g,
            "B2-diag",
            "shard-kept-non-empty",
            &FAST,
            Spec {
                baseline: "tokio::spawn",
                subject: "leakcheck::spawn, shard never empty",
                target: Target::Report,
                show_extra: true,
            },
            |n| tokio_spawn_join(&rt, n),
            |n| leakcheck_spawn_join(&rt, n),
        );
        g.finish();
        keeper.abort();
        let _ = rt.block_on(keeper);
    }

    {
        let mut g = group(&mut c, "B4", &THREADS);
        bench_paired(
            &mut g,
            "B4",
            "thread",
            &THREADS,
            Spec {
                baseline: "std::thread::spawn",
                subject: "leakcheck::thread::spawn in a scope",
                target: Target::RatioAtMost(1.1),
                show_extra: true,
            },
            |n| thread_spawn_join(n, false),
            |n| thread_spawn_join(n, true),
        );
        g.finish();
    }

    bench_self_wake(
        &mut c,
        &rt,
        "B9",
        "self-wake",
        "tracked task, default mode",
        Target::RatioAtMost(1.3),
    );

    drop(rt);
    if let Err(report) = guard.check() {
        panic!("the bench scope leaked:\n{report}");
    }
    common::finish(c);
}

/// Two threads, each with its own current-thread runtime, each spawning and
/// joining `n` trivial tasks, started together. Tracked: the threads are
/// leakcheck threads of the bench thread's scope and spawn with
/// `leakcheck::spawn`, so both register into one scope at once.
fn two_threads(n: u64, tracked: bool) -> Duration {
    let barrier = Arc::new(Barrier::new(3));
    let body = {
        let barrier = barrier.clone();
        move || {
            let rt = current_thread();
            barrier.wait();
            if tracked {
                leakcheck_spawn_join(&rt, n)
            } else {
                tokio_spawn_join(&rt, n)
            }
        }
    };
    let threads: Vec<_> = (0..2)
        .map(|_| {
            if tracked {
                leakcheck::thread::spawn(body.clone())
            } else {
                std::thread::spawn(body.clone())
            }
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for thread in threads {
        black_box(thread.join().unwrap());
    }
    start.elapsed()
}

fn thread_spawn_join(n: u64, tracked: bool) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        let handle = if tracked {
            leakcheck::thread::spawn(|| black_box(7u64))
        } else {
            std::thread::spawn(|| black_box(7u64))
        };
        black_box(handle.join().unwrap());
    }
    start.elapsed()
}

/// A future that wakes itself and returns `Pending` until it has been
/// polled `left + 1` times.
struct SelfWake {
    left: u64,
}

impl Future for SelfWake {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.left == 0 {
            return Poll::Ready(());
        }
        self.left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// B9 and B10: per-poll time of one self-waking task, tracked vs plain, on a
/// current-thread runtime. One task per batch, polled `n` times, so the spawn
/// is amortised away.
fn bench_self_wake(
    c: &mut criterion::Criterion,
    rt: &Runtime,
    group_name: &str,
    function: &str,
    subject: &'static str,
    target: Target,
) {
    let mut g = group(c, group_name, &FAST);
    bench_paired(
        &mut g,
        group_name,
        function,
        &FAST,
        Spec {
            baseline: "plain poll",
            subject,
            target,
            show_extra: true,
        },
        |n| {
            rt.block_on(async move {
                let start = Instant::now();
                tokio::spawn(SelfWake { left: n }).await.unwrap();
                start.elapsed()
            })
        },
        |n| {
            rt.block_on(async move {
                let start = Instant::now();
                leakcheck::spawn(SelfWake { left: n }).await.unwrap();
                start.elapsed()
            })
        },
    );
    g.finish();
}

// ---------------------------------------------------------------------------
// The roles with another backtrace or detail setting
// ---------------------------------------------------------------------------

/// Spawns two stuck tasks from one line in a fresh scope and returns, per
/// straggler, whether it has a backtrace and whether that one is shared.
fn backtrace_shape() -> Vec<(bool, bool)> {
    current_thread_with_time().block_on(async {
        let guard = leakcheck::Options::new()
            .settle(Duration::from_millis(100))
            .verify_none();
        let handles: Vec<_> = (0..2)
            .map(|_| leakcheck::spawn(std::future::pending::<()>()))
            .collect();
        tokio::task::yield_now().await;
        let report = guard.check_async().await.expect_err("two stuck tasks");
        let shape = report
            .stragglers()
            .iter()
            .map(|s| {
                (
                    s.backtrace().is_some(),
                    s.backtrace().is_some_and(|b| b.is_shared()),
                )
            })
            .collect();
        for handle in handles {
            handle.abort();
        }
        shape
    })
}

fn off() {
    common::expect_env("LEAKCHECK_BACKTRACE", Some("off"));
    let mut c = common::criterion();
    let rt = current_thread();
    assert_eq!(
        backtrace_shape(),
        vec![(false, false); 2],
        "LEAKCHECK_BACKTRACE=off must capture no backtrace"
    );
    let guard = leakcheck::verify_none();
    {
        let mut g = group(&mut c, "B2-diag", &FAST);
        bench_paired(
            &mut g,
            "B2-diag",
            "backtrace-off",
            &FAST,
            Spec {
                baseline: "tokio::spawn",
                subject: "leakcheck::spawn, LEAKCHECK_BACKTRACE=off",
                target: Target::Report,
                show_extra: true,
            },
            |n| tokio_spawn_join(&rt, n),
            |n| leakcheck_spawn_join(&rt, n),
        );
        bench_paired(
            &mut g,
            "B2-diag",
            "two-threads-backtrace-off",
            &THREADS,
            Spec {
                baseline: "2 threads × tokio::spawn",
                subject: "2 threads × leakcheck::spawn, one scope, LEAKCHECK_BACKTRACE=off",
                target: Target::Report,
                show_extra: true,
            },
            |n| two_threads(n, false),
            |n| two_threads(n, true),
        );
        g.finish();
    }
    drop(rt);
    guard.check().expect("the bench scope is clean");
    common::finish(c);
}

fn full() {
    common::expect_env("LEAKCHECK_BACKTRACE", Some("full"));
    let mut c = common::criterion();
    let rt = current_thread();
    assert_eq!(
        backtrace_shape(),
        vec![(true, false); 2],
        "LEAKCHECK_BACKTRACE=full must capture a backtrace of its own for every spawn"
    );
    let guard = leakcheck::verify_none();
    {
        let mut g = group(&mut c, "B3", &FAST);
        bench_paired(
            &mut g,
            "B3",
            "current-thread",
            &FAST,
            Spec {
                baseline: "tokio::spawn",
                subject: "leakcheck::spawn, LEAKCHECK_BACKTRACE=full",
                target: Target::Report,
                show_extra: true,
            },
            |n| tokio_spawn_join(&rt, n),
            |n| leakcheck_spawn_join(&rt, n),
        );
        g.finish();
    }
    drop(rt);
    guard.check().expect("the bench scope is clean");
    common::finish(c);
}

fn detail() {
    common::expect_env("LEAKCHECK_DETAIL", Some("1"));
    // A leakcheck without a detailed mode rejects the variable: every guard
    // panics with "no such variable". Find out without printing the panic.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let opened = std::panic::catch_unwind(leakcheck::verify_none);
    std::panic::set_hook(hook);
    let guard = match opened {
        Ok(guard) => guard,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            println!("B10 skipped: this leakcheck has no detailed mode ({message})");
            if Args::parse().selects("B10/self-wake-detailed") {
                common::row(common::Row {
                    id: "B10/self-wake-detailed".to_owned(),
                    figure: "skipped".to_owned(),
                    spread: String::new(),
                    detail: "no detailed mode: LEAKCHECK_DETAIL is rejected".to_owned(),
                    target: "report".to_owned(),
                    verdict: "n/a".to_owned(),
                });
            }
            return;
        }
    };
    let mut c = common::criterion();
    let rt = current_thread();
    bench_self_wake(
        &mut c,
        &rt,
        "B10",
        "self-wake-detailed",
        "tracked task, detailed mode",
        Target::Report,
    );
    drop(rt);
    guard.check().expect("the bench scope is clean");
    common::finish(c);
}
