//! The cost of checking, and of being tracked: B5–B8 of the benchmark plan.
//!
//! | id | measure | target |
//! |---|---|---|
//! | `B5/drop/<N>-others` | a clean `verify_none()`, created and dropped, while N tracked tasks of *another* scope are alive (N = 0, 10k, 100k, then 0 again) | ≤ 5 µs, flat in N |
//! | `B5/check_async/<N>-others` | the same, checked with `check_async().await` | ≤ 5 µs, flat in N |
//! | `B5/flatness/*` | the largest median over the smallest, across N | flat (≤ 1.25×, our reading) |
//! | `B6/check_async` | one stuck task: the whole `check_async().await` up to the `LeakReport` | ≤ 5 ms |
//! | `B6/check_async+to_string` | the same, plus rendering the report (symbols warm) | ≤ 5 ms |
//! | `B6/check-sync` | the whole blocking `check()`, task on a multi-thread runtime | ≤ 5 ms |
//! | `B6-cold/*` | the first report of a fresh process (symbols cold), one per process | report |
//! | `B7/100k-one-site` | 100 000 stuck tasks from one line: `check_async` + `to_string` | ≤ 1 s |
//! | `B7/size` | the report's `to_string().len()` | ≤ 10 KB |
//! | `B8/<mode>` | heap bytes leakcheck adds per tracked, pending task, mode = `LEAKCHECK_BACKTRACE` | ≤ 256 B without a backtrace |
//! | `B8/site-16` | the same for a task of 16 bytes, which keeps tokio's smaller task cell | ≤ 256 B |
//!
//! # Setup of each measure
//!
//! - **B5**: the other tasks belong to the scope of a guard held by another
//!   thread (as a parallel test would), run on a 2-worker multi-thread
//!   runtime, and await a `CancellationToken`, so they are alive and
//!   waiting. The bench thread holds no guard of its own. The figure is
//!   absolute, but each sample is paired with a reference operation that
//!   does not depend on the other tasks (a trivial `tokio::spawn` + join), and
//!   flatness is judged on the ratio to it, so that a machine that slowed
//!   down between the 0 and the 100k measurements is not read as growth.
//! - **B6**: the task awaits `std::future::pending()`, so it is stuck; the
//!   check gives up after two looks and about 3 ms instead of the 500 ms
//!   settle budget. The task is spawned right before the check, as at the
//!   end of a test. `check_async` runs on a current-thread runtime with time,
//!   as under `#[tokio::test]`; `check()` blocks the bench thread while the
//!   task sits on a multi-thread runtime. Warm figures: criterion's warm-up
//!   absorbs the process's first symbol resolution.
//! - **B6-cold**: a fresh process per figure (5 of them), so the first
//!   resolution of backtrace symbols, which loads the binary's symbol tables
//!   and debug info, is in it. Note that `cargo bench` builds without debug
//!   info by default, where a test build has it: see the report for the
//!   figure with `CARGO_PROFILE_BENCH_DEBUG=line-tables-only`.
//! - **B7**: 100 000 tasks spawned from one line in one scope and polled once
//!   (so they are stuck, not "not yet started") before the timed check; setup
//!   and teardown are not timed. One sample is one report.
//! - **B8**: a counting global allocator (installed in this binary; when not
//!   counting it costs one relaxed load per allocation). 10 000 tasks of one
//!   future type are spawned and polled once, then kept pending, with
//!   `tokio::spawn` and with `leakcheck::spawn` inside a guard; the live-heap
//!   growth per task is compared. Three rounds each after one warm-up round
//!   (so tokio's run-queue growth is paid before measuring). The backtrace
//!   mode is per process, so each mode is its own child process.
//!
//! # Processes
//!
//! As in `benches/spawn.rs` (see `common/mod.rs`): the binary is a parent
//! that runs a child per role and prints one table. Roles: `main` (B5, B6,
//! B7), `cold` (B6-cold, five fresh processes), `mem-off`, `mem-site`,
//! `mem-full` (B8, one process per `LEAKCHECK_BACKTRACE` mode).
//!
//! Run one measure alone with a filter, e.g. `cargo bench --bench check --
//! B7` or `cargo bench --bench check -- B8/off`.

mod common;

use common::alloc::{self, Counting};
use common::{
    bench_absolute, bench_paired, group, series_stats, Args, Plan, Role, Row, Spec, Target, Unit,
};
use leakcheck::Options;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::{Handle, Runtime};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const B5_IDS: &[&str] = &[
    "B5/drop/0-others",
    "B5/check_async/0-others",
    "B5/drop/10k-others",
    "B5/check_async/10k-others",
    "B5/drop/100k-others",
    "B5/check_async/100k-others",
    "B5/drop/0-others-after",
    "B5/check_async/0-others-after",
];
const B6_IDS: &[&str] = &[
    "B6/check_async",
    "B6/check_async+to_string",
    "B6/check-sync",
];
const B7_IDS: &[&str] = &["B7/100k-one-site"];
const COLD_IDS: &[&str] = &[
    "B6-cold/check_async",
    "B6-cold/to_string",
    "B6-cold/check_async+to_string",
];

const ROLES: &[Role] = &[
    Role {
        name: "main",
        env: &[],
        ids: &[
            "B5/drop/0-others",
            "B5/check_async/0-others",
            "B5/drop/10k-others",
            "B5/check_async/10k-others",
            "B5/drop/100k-others",
            "B5/check_async/100k-others",
            "B5/drop/0-others-after",
            "B5/check_async/0-others-after",
            "B6/check_async",
            "B6/check_async+to_string",
            "B6/check-sync",
            "B7/100k-one-site",
        ],
        runs: 1,
        test_runs: 1,
    },
    Role {
        name: "cold",
        env: &[],
        ids: COLD_IDS,
        runs: 5,
        test_runs: 1,
    },
    Role {
        name: "mem-off",
        env: &[("LEAKCHECK_BACKTRACE", "off")],
        ids: &["B8/off"],
        runs: 1,
        test_runs: 1,
    },
    Role {
        name: "mem-site",
        env: &[("LEAKCHECK_BACKTRACE", "site")],
        ids: &["B8/site", "B8/site-16"],
        runs: 1,
        test_runs: 1,
    },
    Role {
        name: "mem-full",
        env: &[("LEAKCHECK_BACKTRACE", "full")],
        ids: &["B8/full"],
        runs: 1,
        test_runs: 1,
    },
];

fn main() {
    match common::role().as_deref() {
        None => common::parent("check", ROLES),
        Some("main") => main_role(),
        Some("cold") => cold(),
        Some("mem-off") => memory("off"),
        Some("mem-site") => memory("site"),
        Some("mem-full") => memory("full"),
        Some(other) => panic!("unknown bench role {other:?}"),
    }
}

fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("build a current-thread runtime")
}

fn multi_thread() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("build a multi-thread runtime")
}

fn selects_any(args: &Args, ids: &[&str]) -> bool {
    ids.iter().any(|id| args.selects(id))
}

fn main_role() {
    let args = Args::parse();
    let mut c = common::criterion();
    if selects_any(&args, B5_IDS) {
        b5(&mut c, &args);
    }
    if selects_any(&args, B6_IDS) {
        b6(&mut c);
    }
    if selects_any(&args, B7_IDS) {
        b7(&mut c, &args);
    }
    common::finish(c);
    b7_rows(&args);
}

// ---------------------------------------------------------------------------
// B5: a clean check while other scopes are busy
// ---------------------------------------------------------------------------

/// Tracked tasks of another scope: a thread holds its own guard and spawns
/// them onto a multi-thread runtime, where they await a cancellation token.
struct Others {
    grow: mpsc::Sender<Option<usize>>,
    grown: mpsc::Receiver<usize>,
    holder: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl Others {
    fn start(runtime: Handle) -> Self {
        let (grow, commands) = mpsc::channel::<Option<usize>>();
        let (acks, grown) = mpsc::channel();
        let holder = std::thread::spawn(move || {
            let guard = Options::new().settle(Duration::from_secs(30)).verify_none();
            let token = CancellationToken::new();
            let started = Arc::new(AtomicUsize::new(0));
            let mut handles = Vec::new();
            while let Ok(Some(target)) = commands.recv() {
                {
                    let _runtime = runtime.enter();
                    while handles.len() < target {
                        let token = token.clone();
                        let started = started.clone();
                        handles.push(leakcheck::spawn(async move {
                            started.fetch_add(1, Relaxed);
                            token.cancelled().await;
                        }));
                    }
                }
                while started.load(Relaxed) < handles.len() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let _ = acks.send(handles.len());
            }
            token.cancel();
            runtime.block_on(async {
                for handle in handles {
                    handle.await.expect("other task");
                }
            });
            guard.check().map_err(|report| report.to_string())
        });
        Others {
            grow,
            grown,
            holder: Some(holder),
        }
    }

    /// Grows to `n` live tasks, all polled at least once.
    fn grow_to(&self, n: usize) {
        self.grow.send(Some(n)).expect("holder thread");
        let live = self.grown.recv().expect("holder thread");
        assert_eq!(live, n);
    }

    /// Ends every task, and checks the holder's scope clean.
    fn release(mut self) {
        self.grow.send(None).expect("holder thread");
        let holder = self.holder.take().expect("released once");
        holder
            .join()
            .expect("holder thread")
            .expect("the other scope ends clean");
    }
}

const B5_PLAN: Plan = Plan {
    samples: 20,
    warm_up: Duration::from_millis(300),
    measure: Duration::from_millis(1500),
};

fn b5(c: &mut criterion::Criterion, args: &Args) {
    let (ten_k, hundred_k) = if args.measuring() {
        (10_000, 100_000)
    } else {
        (100, 1_000)
    };
    let workers = multi_thread();
    let ct = current_thread();
    let others = Others::start(workers.handle().clone());
    let steps = [
        ("0-others", 0usize),
        ("10k-others", ten_k),
        ("100k-others", hundred_k),
    ];
    let spec = |subject| Spec {
        baseline: "reference: tokio::spawn + join",
        subject,
        target: Target::NanosAtMost(5_000.0),
        show_extra: false,
    };
    // Each B5 figure is paired with a reference operation that does not
    // depend on the other tasks (a trivial tokio spawn + join on a private
    // current-thread runtime), so that flatness is judged on the ratio to it
    // and not on absolute times taken minutes apart on a shared machine.
    let reference_rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let reference = |n: u64| {
        reference_rt.block_on(async move {
            let start = Instant::now();
            for _ in 0..n {
                black_box(tokio::spawn(async { black_box(7u64) }).await.unwrap());
            }
            start.elapsed()
        })
    };
    let run = |c: &mut criterion::Criterion, label: &str, live: usize| {
        assert!(leakcheck::__private::live_count() >= live);
        let mut g = group(c, "B5", &B5_PLAN);
        bench_paired(
            &mut g,
            "B5",
            &format!("drop/{label}"),
            &B5_PLAN,
            spec("verify_none() + drop, sync"),
            reference,
            |n| {
                let start = Instant::now();
                for _ in 0..n {
                    drop(black_box(leakcheck::verify_none()));
                }
                start.elapsed()
            },
        );
        bench_paired(
            &mut g,
            "B5",
            &format!("check_async/{label}"),
            &B5_PLAN,
            spec("verify_none() + check_async().await"),
            reference,
            |n| {
                ct.block_on(async {
                    let start = Instant::now();
                    for _ in 0..n {
                        leakcheck::verify_none()
                            .check_async()
                            .await
                            .expect("a clean scope");
                    }
                    start.elapsed()
                })
            },
        );
        g.finish();
    };
    for (label, n) in steps {
        others.grow_to(n);
        run(c, label, n);
    }
    others.release();
    run(c, "0-others-after", 0);

    // Flatness: the worst ratio to the reference with other tasks alive,
    // over the mean of the two ratios without (before and after).
    for variant in ["drop", "check_async"] {
        let ratio = |label: &str| {
            series_stats(&format!("B5/{variant}/{label}")).map(|(_, _, ratio)| ratio.median)
        };
        let (Some(zero), Some(ten), Some(hundred), Some(after)) = (
            ratio("0-others"),
            ratio("10k-others"),
            ratio("100k-others"),
            ratio("0-others-after"),
        ) else {
            continue;
        };
        if !args.measuring() {
            continue;
        }
        let growth = ten.max(hundred) / ((zero + after) / 2.0);
        common::row(Row {
            id: format!("B5/flatness/{variant}"),
            figure: format!("{growth:.3}×"),
            spread: format!(
                "ratio to the reference: 0: {zero:.3}, 10k: {ten:.3}, 100k: {hundred:.3}, 0 again: {after:.3}"
            ),
            detail: "max(10k, 100k) over the mean of the two 0-others, each as a ratio to the reference"
                .to_owned(),
            target: "flat (≤ 1.25×, our reading)".to_owned(),
            verdict: common::verdict_at_most(growth, Some(1.25)),
        });
    }
}

// ---------------------------------------------------------------------------
// B6: the failure path, one stuck task
// ---------------------------------------------------------------------------

const B6_PLAN: Plan = Plan {
    samples: 20,
    // Long enough to absorb the process's first symbol resolution.
    warm_up: Duration::from_millis(1500),
    measure: Duration::from_secs(3),
};

fn b6(c: &mut criterion::Criterion) {
    let ct = current_thread();
    let workers = multi_thread();
    let spec = |subject| Spec {
        baseline: "",
        subject,
        target: Target::NanosAtMost(5e6),
        show_extra: false,
    };
    let mut g = group(c, "B6", &B6_PLAN);
    for render in [false, true] {
        let function = if render {
            "check_async+to_string"
        } else {
            "check_async"
        };
        let subject = if render {
            "check_async().await → LeakReport → to_string(), current-thread runtime"
        } else {
            "check_async().await → LeakReport, current-thread runtime"
        };
        bench_absolute(&mut g, "B6", function, &B6_PLAN, spec(subject), |n| {
            ct.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..n {
                    let guard = leakcheck::verify_none();
                    let task = leakcheck::spawn(std::future::pending::<()>());
                    let start = Instant::now();
                    let report = guard.check_async().await.expect_err("a stuck task");
                    if render {
                        black_box(report.to_string());
                    }
                    total += start.elapsed();
                    assert_eq!(report.stragglers().len(), 1);
                    task.abort();
                }
                total
            })
        });
    }
    bench_absolute(
        &mut g,
        "B6",
        "check-sync",
        &B6_PLAN,
        spec("check() → LeakReport, blocking, task on a multi-thread runtime"),
        |n| {
            let mut total = Duration::ZERO;
            for _ in 0..n {
                let guard = leakcheck::verify_none();
                let task = {
                    let _runtime = workers.enter();
                    leakcheck::spawn(std::future::pending::<()>())
                };
                let start = Instant::now();
                let report = guard.check().expect_err("a stuck task");
                total += start.elapsed();
                assert_eq!(report.stragglers().len(), 1);
                task.abort();
            }
            total
        },
    );
    g.finish();
}

/// B6-cold: the first report of this process.
fn cold() {
    let args = Args::parse();
    if args.list {
        if common::run_index() == 0 {
            common::list(COLD_IDS);
        }
        return;
    }
    if !selects_any(&args, COLD_IDS) {
        return;
    }
    let (check, render) = current_thread().block_on(async {
        let guard = leakcheck::verify_none();
        let task = leakcheck::spawn(std::future::pending::<()>());
        let start = Instant::now();
        let report = guard.check_async().await.expect_err("a stuck task");
        let checked = Instant::now();
        let text = report.to_string();
        let rendered = Instant::now();
        black_box(text);
        task.abort();
        (checked - start, rendered - checked)
    });
    let ns = |d: Duration| d.as_nanos() as f64;
    println!(
        "B6-cold run {}: check_async {:?}, to_string {:?}",
        common::run_index(),
        check,
        render
    );
    common::sample(
        "B6-cold/check_async",
        Unit::Nanos,
        ns(check),
        Some(5e6),
        "≤ 5 ms (first check of the process)",
    );
    common::sample(
        "B6-cold/to_string",
        Unit::Nanos,
        ns(render),
        None,
        "report (first symbol resolution)",
    );
    common::sample(
        "B6-cold/check_async+to_string",
        Unit::Nanos,
        ns(check + render),
        None,
        "report, stated separately",
    );
}

// ---------------------------------------------------------------------------
// B7: 100 000 leaked tasks from one site
// ---------------------------------------------------------------------------

const B7_PLAN: Plan = Plan {
    samples: 10,
    // One call: each is a whole report of 100 000 tasks.
    warm_up: Duration::from_millis(1),
    measure: Duration::from_millis(1),
};

/// (check, to_string, report bytes, stragglers) of one B7 report.
type Parts = (Duration, Duration, usize, usize);

/// The parts of each B7 report.
static B7_PARTS: Mutex<Vec<Parts>> = Mutex::new(Vec::new());

fn b7_once(n: usize) -> Parts {
    let rt = current_thread();
    let parts = rt.block_on(async {
        let guard = leakcheck::verify_none();
        let polled = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::with_capacity(n);
        for _ in 0..n {
            let polled = polled.clone();
            handles.push(leakcheck::spawn(async move {
                polled.fetch_add(1, Relaxed);
                std::future::pending::<()>().await
            }));
        }
        while polled.load(Relaxed) < n {
            tokio::task::yield_now().await;
        }
        let start = Instant::now();
        let report = guard.check_async().await.expect_err("100k stuck tasks");
        let checked = Instant::now();
        let text = report.to_string();
        let rendered = Instant::now();
        let parts = (
            checked - start,
            rendered - checked,
            text.len(),
            report.stragglers().len(),
        );
        if common::run_index() == 0 && B7_PARTS.lock().unwrap().is_empty() {
            println!("B7 report ({} bytes):\n{text}", text.len());
        }
        drop(report);
        for handle in &handles {
            handle.abort();
        }
        parts
    });
    drop(rt);
    parts
}

fn b7(c: &mut criterion::Criterion, args: &Args) {
    let n = if args.measuring() { 100_000 } else { 1_000 };
    let mut g = group(c, "B7", &B7_PLAN);
    bench_absolute(
        &mut g,
        "B7",
        "100k-one-site",
        &B7_PLAN,
        Spec {
            baseline: "",
            subject: "check_async().await + to_string(), 100 000 stuck tasks from one line",
            target: Target::NanosAtMost(1e9),
            show_extra: false,
        },
        |iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let parts = b7_once(n);
                assert_eq!(parts.3, n, "every task is a straggler");
                total += parts.0 + parts.1;
                B7_PARTS.lock().unwrap().push(parts);
            }
            total
        },
    );
    g.finish();
}

/// The parts and the size of the B7 reports, over the measured samples.
fn b7_rows(args: &Args) {
    let parts = std::mem::take(&mut *B7_PARTS.lock().unwrap());
    if parts.is_empty() || !args.measuring() {
        return;
    }
    let kept = &parts[parts.len().saturating_sub(B7_PLAN.samples)..];
    let ns = |f: &dyn Fn(&Parts) -> f64| common::Stats::of(&kept.iter().map(f).collect::<Vec<_>>());
    let check = ns(&|p| p.0.as_nanos() as f64);
    let render = ns(&|p| p.1.as_nanos() as f64);
    let size = ns(&|p| p.2 as f64);
    common::row(Row {
        id: "B7/parts".to_owned(),
        figure: format!(
            "check {} + to_string {}",
            common::human_ns(check.median),
            common::human_ns(render.median)
        ),
        spread: format!(
            "check range {}–{}, to_string range {}–{} (n={})",
            common::human_ns(check.min),
            common::human_ns(check.max),
            common::human_ns(render.min),
            common::human_ns(render.max),
            check.n
        ),
        detail: "the two parts of B7/100k-one-site".to_owned(),
        target: "—".to_owned(),
        verdict: "reported".to_owned(),
    });
    common::row(Row {
        id: "B7/size".to_owned(),
        figure: format!("{:.0} B", size.median),
        spread: format!("range {:.0}–{:.0} B", size.min, size.max),
        detail: "to_string().len() of the 100 000-task report".to_owned(),
        target: "≤ 10 KB".to_owned(),
        verdict: common::verdict_at_most(size.median, Some(10_240.0)),
    });
}

// ---------------------------------------------------------------------------
// B8: memory per tracked task
// ---------------------------------------------------------------------------

/// The measured task: 24 bytes of state, the most that tokio fits in its
/// smaller task cell (128 B), so any wrapper at all moves it up a step.
async fn parked(started: Arc<AtomicUsize>) {
    started.fetch_add(1, Relaxed);
    std::future::pending::<()>().await
}

/// The same in 16 bytes: room for a wrapper of one pointer in the same cell.
struct Parked16 {
    started: Arc<AtomicUsize>,
    counted: bool,
}

impl std::future::Future for Parked16 {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if !self.counted {
            self.counted = true;
            self.started.fetch_add(1, Relaxed);
        }
        std::task::Poll::Pending
    }
}

/// Spawns one parked task of the size under test.
fn spawn_parked(
    started: Arc<AtomicUsize>,
    small: bool,
    tracked: bool,
) -> tokio::task::JoinHandle<()> {
    match (small, tracked) {
        (false, false) => tokio::spawn(parked(started)),
        (false, true) => leakcheck::spawn(parked(started)),
        (true, false) => tokio::spawn(Parked16 {
            started,
            counted: false,
        }),
        (true, true) => leakcheck::spawn(Parked16 {
            started,
            counted: false,
        }),
    }
}

struct Footprint {
    heap: alloc::Sample,
    /// Growth of `registry_table_bytes()`.
    table: isize,
}

/// Spawns `n` pending tasks, waits until each has been polled, and returns
/// how much the live heap grew; then ends them.
async fn resident(n: usize, tracked: bool, small: bool) -> Footprint {
    let guard = tracked.then(|| Options::new().settle(Duration::from_secs(5)).verify_none());
    let started = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::with_capacity(n);
    let table_before = leakcheck::__private::registry_table_bytes() as isize;
    let before = alloc::sample();
    for _ in 0..n {
        handles.push(spawn_parked(started.clone(), small, tracked));
    }
    while started.load(Relaxed) < n {
        tokio::task::yield_now().await;
    }
    let after = alloc::sample();
    let table_after = leakcheck::__private::registry_table_bytes() as isize;
    for handle in &handles {
        handle.abort();
    }
    for handle in handles {
        let _ = handle.await;
    }
    if let Some(guard) = guard {
        guard.check_async().await.expect("aborted tasks are gone");
    }
    Footprint {
        heap: after.since(&before),
        table: table_after - table_before,
    }
}

fn memory(mode: &str) {
    let args = Args::parse();
    let id = format!("B8/{mode}");
    // In the default mode, also a task small enough to keep tokio's cell.
    let small_id = (mode == "site").then(|| format!("B8/{mode}-16"));
    if args.list {
        common::list(&[&id]);
        if let Some(small_id) = &small_id {
            common::list(&[small_id]);
        }
        return;
    }
    common::expect_env("LEAKCHECK_BACKTRACE", Some(mode));
    if args.selects(&id) {
        memory_row(&args, mode, &id, false);
    }
    if let Some(small_id) = small_id.filter(|id| args.selects(id)) {
        memory_row(&args, mode, &small_id, true);
    }
}

fn memory_row(args: &Args, mode: &str, id: &str, small: bool) {
    let n = if args.measuring() { 10_000 } else { 500 };
    alloc::enable();
    let rt = current_thread();
    let (plain, tracked) = rt.block_on(async {
        // Warm-up: tokio's queues and leakcheck's statics reach their size.
        resident(n, false, small).await;
        resident(n, true, small).await;
        let mut plain = Vec::new();
        let mut tracked = Vec::new();
        for _ in 0..3 {
            plain.push(resident(n, false, small).await);
            tracked.push(resident(n, true, small).await);
        }
        (plain, tracked)
    });
    let per_task = |f: &Footprint| f.heap.bytes as f64 / n as f64;
    let added: Vec<f64> = plain
        .iter()
        .zip(&tracked)
        .map(|(p, t)| per_task(t) - per_task(p))
        .collect();
    let added_stats = common::Stats::of(&added);
    let plain_stats = common::Stats::of(&plain.iter().map(per_task).collect::<Vec<_>>());
    let tracked_stats = common::Stats::of(&tracked.iter().map(per_task).collect::<Vec<_>>());
    let table = common::Stats::of(
        &tracked
            .iter()
            .map(|t| t.table as f64 / n as f64)
            .collect::<Vec<_>>(),
    );
    let blocks = common::Stats::of(
        &plain
            .iter()
            .zip(&tracked)
            .map(|(p, t)| (t.heap.blocks - p.heap.blocks) as f64 / n as f64)
            .collect::<Vec<_>>(),
    );
    // Which allocation sizes leakcheck adds per task (last round).
    let (p, t) = (plain.last().unwrap(), tracked.last().unwrap());
    let difference = alloc::Sample {
        bytes: t.heap.bytes - p.heap.bytes,
        blocks: t.heap.blocks - p.heap.blocks,
        by_class: t
            .heap
            .by_class
            .iter()
            .zip(&p.heap.by_class)
            .map(|(t, p)| t - p)
            .collect(),
    };
    let sizes: Vec<String> = difference
        .classes()
        .into_iter()
        .filter(|(_, blocks)| blocks.unsigned_abs() * 20 >= n)
        .map(|(bytes, blocks)| format!("{:+.2}×≤{bytes} B", blocks as f64 / n as f64))
        .collect();
    println!(
        "{id}: plain {:.1} B/task, tracked {:.1} B/task, added {:.1} B/task, registry tables {:.1} B/task, \
         {:+.2} blocks/task; size classes per task (tracked − plain): {}",
        plain_stats.median,
        tracked_stats.median,
        added_stats.median,
        table.median,
        blocks.median,
        sizes.join(", ")
    );
    let limit = match mode {
        "off" | "site" => Some(256.0),
        _ => None,
    };
    common::row(Row {
        id: id.to_owned(),
        figure: if args.measuring() {
            format!("+{:.0} B per task", added_stats.median)
        } else {
            "ran once".to_owned()
        },
        spread: format!(
            "range {:.0}–{:.0} B over {} rounds of {n} tasks",
            added_stats.min, added_stats.max, added_stats.n
        ),
        detail: format!(
            "tokio task {:.0} B, tracked {:.0} B; of the added: registry tables {:.0} B; {:+.2} allocations; sizes {}",
            plain_stats.median,
            tracked_stats.median,
            table.median,
            blocks.median,
            sizes.join(" ")
        ),
        target: match mode {
            "off" => "≤ 256 B (no backtrace)".to_owned(),
            "site" if small => "≤ 256 B (a 16-byte task, default backtraces)".to_owned(),
            "site" => "≤ 256 B (default: one shared backtrace per site)".to_owned(),
            _ => "report".to_owned(),
        },
        verdict: if args.measuring() {
            common::verdict_at_most(added_stats.median, limit)
        } else {
            "not measured (test mode)".to_owned()
        },
    });
}
