//! Seeds every leak pattern of `leak-patterns.md` (P1 to P10) in its leaky
//! form, as a tokio task and as an OS thread, checks each with leakcheck and
//! prints the report: a tour of what leakcheck catches and what it says.
//!
//! ```text
//! cargo run --example seed_leaks
//! ```
//!
//! Every leak is real (the other end of each channel, the held lock, the
//! barrier are kept alive past the check) and every leak is cleaned up after
//! its check, so the run ends with nothing left behind. Each check settles
//! for at most 100 ms; the whole run takes a few seconds. It exits with 0
//! when every seeded leak was caught, and 1 otherwise.

use leakcheck::task::JoinSetExt as _;
use leakcheck::{LeakReport, Options};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// How long each check waits for stragglers that could still finish. Stuck
/// tasks are reported sooner.
const SETTLE: Duration = Duration::from_millis(100);

fn options() -> Options {
    Options::new().settle(SETTLE)
}

/// What a seed's check returned.
type Checked = Result<(), LeakReport>;

/// One seeded leak.
struct Seed {
    /// The short name the seed runs under; the report calls it the test.
    name: &'static str,
    pattern: &'static str,
    title: &'static str,
    kind: &'static str,
    /// What the seeded code does wrong, in one line.
    leak: &'static str,
    run: fn(&Runtime) -> Checked,
}

const SEEDS: &[Seed] = &[
    Seed {
        name: "p1_task",
        pattern: "P1",
        title: "receive that can never complete",
        kind: "task",
        leak: "a task awaits `std::future::pending()`: nothing can ever complete or wake it",
        run: p1_task,
    },
    Seed {
        name: "p1_thread",
        pattern: "P1",
        title: "receive that can never complete",
        kind: "thread",
        leak: "a thread blocks in `Receiver::recv` while the sender is kept but never used",
        run: p1_thread,
    },
    Seed {
        name: "p2_task",
        pattern: "P2",
        title: "producer blocked on a consumer that walked away",
        kind: "task",
        leak: "the consumer reads 3 values and stops, keeping the receiver; the producer blocks in `send`",
        run: p2_task,
    },
    Seed {
        name: "p2_thread",
        pattern: "P2",
        title: "producer blocked on a consumer that walked away",
        kind: "thread",
        leak: "the same on `sync_channel(0)`: the producer blocks in `send` for ever",
        run: p2_thread,
    },
    Seed {
        name: "p3_task",
        pattern: "P3",
        title: "lock that is never released",
        kind: "task",
        leak: "a task awaits `tokio::sync::Mutex::lock` while its parent holds the guard",
        run: p3_task,
    },
    Seed {
        name: "p3_thread",
        pattern: "P3",
        title: "lock that is never released",
        kind: "thread",
        leak: "a thread blocks on `parking_lot::Mutex::lock` while its parent holds the guard",
        run: p3_thread,
    },
    Seed {
        name: "p4_task",
        pattern: "P4",
        title: "loop with no way out",
        kind: "task",
        leak: "a metrics flusher runs `loop { sleep(5ms).await; flush() }`",
        run: p4_task,
    },
    Seed {
        name: "p4_thread",
        pattern: "P4",
        title: "loop with no way out",
        kind: "thread",
        leak: "a metrics flusher thread runs `loop { thread::sleep(5ms); flush() }`",
        run: p4_thread,
    },
    Seed {
        name: "p5_task",
        pattern: "P5",
        title: "first answer wins, the others block",
        kind: "task",
        leak: "4 replicas reply into a channel of capacity 1; the caller keeps the first reply and the receiver",
        run: p5_task,
    },
    Seed {
        name: "p5_thread",
        pattern: "P5",
        title: "first answer wins, the others block",
        kind: "thread",
        leak: "4 replica threads reply on `sync_channel(0)`; the caller reads once and keeps the receiver",
        run: p5_thread,
    },
    Seed {
        name: "p6_task",
        pattern: "P6",
        title: "work abandoned by a timeout",
        kind: "task",
        leak: "`tokio::time::timeout(20ms, handle)` fires and drops the handle; the query task lives on",
        run: p6_task,
    },
    Seed {
        name: "p6_thread",
        pattern: "P6",
        title: "work abandoned by a timeout",
        kind: "thread",
        leak: "`recv_timeout(20ms)` gives up on a worker thread, which keeps waiting on the database",
        run: p6_thread,
    },
    Seed {
        name: "p7_task",
        pattern: "P7",
        title: "reader of a channel that is never closed",
        kind: "task",
        leak: "a task runs `while let Some(e) = rx.recv().await` while an event bus keeps the sender",
        run: p7_task,
    },
    Seed {
        name: "p7_thread",
        pattern: "P7",
        title: "reader of a channel that is never closed",
        kind: "thread",
        leak: "a thread runs `for e in rx` while an event bus keeps the sender",
        run: p7_thread,
    },
    Seed {
        name: "p8_task",
        pattern: "P8",
        title: "worker pool that is never shut down",
        kind: "task",
        leak: "4 workers share a job queue; the pool is kept but never shut down",
        run: p8_task,
    },
    Seed {
        name: "p8_thread",
        pattern: "P8",
        title: "worker pool that is never shut down",
        kind: "thread",
        leak: "4 worker threads share a job queue; the pool is kept but never shut down",
        run: p8_thread,
    },
    Seed {
        name: "p9_task",
        pattern: "P9",
        title: "wait-with-timeout helper",
        kind: "task",
        leak: "a helper waits on a `tokio::sync::Barrier` from a task and times out; a worker never arrives",
        run: p9_task,
    },
    Seed {
        name: "p9_thread",
        pattern: "P9",
        title: "wait-with-timeout helper",
        kind: "thread",
        leak: "a helper waits on a `std::sync::Barrier` from a thread and times out; a worker never arrives",
        run: p9_thread,
    },
    Seed {
        name: "p10_task",
        pattern: "P10",
        title: "leaks at scale",
        kind: "task",
        leak: "100 000 tasks spawned from one line all await `pending()`",
        run: p10_task,
    },
    Seed {
        name: "p10_thread",
        pattern: "P10",
        title: "leaks at scale",
        kind: "thread",
        leak: "1 000 threads spawned from one line all wait at a gate that never opens \
               (threads cost a stack and a kernel task each, hence fewer than tasks)",
        run: p10_thread,
    },
];

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let runtime = Arc::new(runtime);

    println!(
        "leakcheck demo: seeding {} leaks, the patterns of leak-patterns.md as tasks and as threads,",
        SEEDS.len()
    );
    println!("and checking each one (settle budget {SETTLE:?}).");

    let started = Instant::now();
    let mut caught = 0;
    for seed in SEEDS {
        let heading = format!("{} — {} ({})", seed.pattern, seed.title, seed.kind);
        println!("\n{heading}\n{}", "=".repeat(heading.chars().count()));
        println!("seeded: {}\n", seed.leak);

        // Each seed runs on a thread of its own name, as a test does under
        // `cargo test`; the report calls that name the test.
        let run = seed.run;
        let on = runtime.clone();
        let check_started = Instant::now();
        let checked = std::thread::Builder::new()
            .name(seed.name.to_owned())
            .spawn(move || run(&on))
            .expect("a thread for the seed")
            .join()
            .expect("the seed does not panic");
        let took = check_started.elapsed();

        match checked {
            Err(report) => {
                caught += 1;
                print!("{report}");
                println!(
                    "-> caught: {} from {}; seeded, checked and cleaned up in {took:.0?}",
                    plural(report.stragglers().len(), "straggler"),
                    plural(report.sites(), "creation site"),
                );
            }
            Ok(()) => println!("-> MISSED: the check passed although the leak was seeded"),
        }
    }

    println!(
        "\ncaught {caught} of {} seeded leaks in {:.1?}",
        SEEDS.len(),
        started.elapsed()
    );
    if caught != SEEDS.len() {
        std::process::exit(1);
    }
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Lets a seed wait until a worker whose handle was lost has ended: the
/// worker owns the token, and the watch returns once it has been dropped.
struct ExitToken(#[allow(dead_code)] mpsc::UnboundedSender<()>);
struct ExitWatch(mpsc::UnboundedReceiver<()>);

fn exit_watch() -> (ExitToken, ExitWatch) {
    let (tx, rx) = mpsc::unbounded_channel();
    (ExitToken(tx), ExitWatch(rx))
}

impl ExitWatch {
    async fn exited(mut self) {
        while self.0.recv().await.is_some() {}
    }

    fn wait(mut self) {
        while self.0.blocking_recv().is_some() {}
    }
}

// P1: a receive that can never complete.

// The helpers are `#[inline(never)]`, so that they show in creation
// backtraces. Two of them (`start_waiter` and `process_all`) also pass their
// result through `black_box`: with nothing left to do after the spawn, an
// optimised build jumps to it rather than calls it, and the helper's frame
// vanishes from the backtrace all the same.
#[inline(never)]
fn start_waiter() -> JoinHandle<()> {
    std::hint::black_box(leakcheck::spawn(std::future::pending::<()>()))
}

fn p1_task(runtime: &Runtime) -> Checked {
    runtime.block_on(async {
        let guard = options().verify_none();
        let waiter = start_waiter();
        let checked = guard.check_async().await;
        waiter.abort();
        let _ = waiter.await;
        checked
    })
}

#[inline(never)]
fn start_listener(rx: std_mpsc::Receiver<u32>) -> std::thread::JoinHandle<()> {
    leakcheck::thread::spawn(move || {
        let _ = rx.recv();
    })
}

fn p1_thread(_: &Runtime) -> Checked {
    let guard = options().verify_none();
    // Kept, never used: the channel never closes.
    let (tx, rx) = std_mpsc::channel::<u32>();
    let listener = start_listener(rx);
    let checked = guard.check();
    drop(tx);
    listener.join().unwrap();
    checked
}

// P2: a producer blocked on a consumer that walked away.

#[inline(never)]
fn start_random_stream(tx: mpsc::Sender<u64>) -> JoinHandle<()> {
    leakcheck::spawn(async move {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        loop {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if tx.send(x).await.is_err() {
                return;
            }
        }
    })
}

fn p2_task(runtime: &Runtime) -> Checked {
    runtime.block_on(async {
        let guard = options().verify_none();
        let (tx, mut rx) = mpsc::channel(1);
        let producer = start_random_stream(tx);
        for _ in 0..3 {
            rx.recv().await.unwrap();
        }
        // The consumer walks away, but `rx` is kept.
        let checked = guard.check_async().await;
        drop(rx);
        producer.await.unwrap();
        checked
    })
}

#[inline(never)]
fn start_random_stream_thread(tx: std_mpsc::SyncSender<u64>) -> std::thread::JoinHandle<()> {
    leakcheck::thread::spawn(move || {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        loop {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if tx.send(x).is_err() {
                return;
            }
        }
    })
}

fn p2_thread(_: &Runtime) -> Checked {
    let guard = options().verify_none();
    let (tx, rx) = std_mpsc::sync_channel(0);
    let producer = start_random_stream_thread(tx);
    for _ in 0..3 {
        rx.recv().unwrap();
    }
    let checked = guard.check();
    drop(rx);
    producer.join().unwrap();
    checked
}

// P3: a lock that is never released.

#[inline(never)]
fn start_stats_writer(stats: Arc<tokio::sync::Mutex<u64>>) -> JoinHandle<()> {
    leakcheck::spawn(async move {
        *stats.lock().await += 1;
    })
}

fn p3_task(runtime: &Runtime) -> Checked {
    runtime.block_on(async {
        let guard = options().verify_none();
        let stats = Arc::new(tokio::sync::Mutex::new(0));
        let held = stats.lock().await;
        let writer = start_stats_writer(stats.clone());
        let checked = guard.check_async().await;
        drop(held);
        writer.await.unwrap();
        checked
    })
}

#[inline(never)]
fn start_stats_writer_thread(stats: Arc<parking_lot::Mutex<u64>>) -> std::thread::JoinHandle<()> {
    leakcheck::thread::spawn(move || {
        *stats.lock() += 1;
    })
}

fn p3_thread(_: &Runtime) -> Checked {
    let guard = options().verify_none();
    let stats = Arc::new(parking_lot::Mutex::new(0));
    let held = stats.lock();
    let writer = start_stats_writer_thread(stats.clone());
    let checked = guard.check();
    drop(held);
    writer.join().unwrap();
    checked
}

// P4: a loop with no way out.

#[inline(never)]
fn start_ticker() -> JoinHandle<()> {
    let tick = async {
        loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    leakcheck::task::Builder::new()
        .name("metrics-flusher")
        .spawn(tick)
        .expect("spawning a task does not fail")
}

fn p4_task(runtime: &Runtime) -> Checked {
    runtime.block_on(async {
        let guard = options().verify_none();
        let ticker = start_ticker();
        let checked = guard.check_async().await;
        ticker.abort();
        let _ = ticker.await;
        checked
    })
}

/// `demo_only_kill` is the demo's back door, not part of the pattern: the
/// loop as written has no exit.
#[inline(never)]
fn start_flusher_thread(demo_only_kill: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    leakcheck::thread::Builder::new()
        .name("metrics-flusher".to_owned())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_millis(5));
            if demo_only_kill.load(Ordering::Acquire) {
                return;
            }
        })
        .expect("the OS starts the thread")
}

fn p4_thread(_: &Runtime) -> Checked {
    let guard = options().verify_none();
    let kill = Arc::new(AtomicBool::new(false));
    let flusher = start_flusher_thread(kill.clone());
    let checked = guard.check();
    kill.store(true, Ordering::Release);
    flusher.join().unwrap();
    checked
}

// P5: the first answer wins, the others block.

#[inline(never)]
fn ask_replicas(replies: mpsc::Sender<usize>) -> Vec<JoinHandle<()>> {
    (0..4)
        .map(|replica| {
            let replies = replies.clone();
            leakcheck::spawn(async move {
                let _ = replies.send(replica).await;
            })
        })
        .collect()
}

fn p5_task(runtime: &Runtime) -> Checked {
    runtime.block_on(async {
        let guard = options().verify_none();
        let (tx, mut rx) = mpsc::channel(1);
        let replicas = ask_replicas(tx);
        rx.recv().await.unwrap();
        let checked = guard.check_async().await;
        drop(rx);
        for replica in replicas {
            replica.await.unwrap();
        }
        checked
    })
}

#[inline(never)]
fn ask_replica_threads(replies: std_mpsc::SyncSender<usize>) -> Vec<std::thread::JoinHandle<()>> {
    (0..4)
        .map(|replica| {
            let replies = replies.clone();
            leakcheck::thread::spawn(move || {
                let _ = replies.send(replica);
            })
        })
        .collect()
}

fn p5_thread(_: &Runtime) -> Checked {
    let guard = options().verify_none();
    let (tx, rx) = std_mpsc::sync_channel(0);
    let replicas = ask_replica_threads(tx);
    rx.recv().unwrap();
    let checked = guard.check();
    drop(rx);
    for replica in replicas {
        replica.join().unwrap();
    }
    checked
}

// P6: work abandoned by a timeout.

/// Starts the query and returns a future that waits for it at most 20 ms;
/// on timeout the handle is dropped, which does not cancel the task.
#[inline(never)]
fn query_with_timeout(
    mut db: mpsc::Receiver<String>,
    exit: ExitToken,
) -> impl Future<Output = Option<String>> {
    let worker = leakcheck::spawn(async move {
        let _exit = exit;
        db.recv().await
    });
    async move {
        tokio::time::timeout(Duration::from_millis(20), worker)
            .await
            .ok()?
            .ok()?
    }
}

fn p6_task(runtime: &Runtime) -> Checked {
    runtime.block_on(async {
        let guard = options().verify_none();
        // The connection stays open and never answers.
        let (db, rows) = mpsc::channel(1);
        let (exit, worker_exited) = exit_watch();
        assert!(query_with_timeout(rows, exit).await.is_none());
        let checked = guard.check_async().await;
        drop(db);
        worker_exited.exited().await;
        checked
    })
}

#[inline(never)]
fn lookup_with_timeout(db: std_mpsc::Receiver<String>, exit: ExitToken) -> Option<String> {
    let (reply, replied) = std_mpsc::channel();
    let _detached = leakcheck::thread::spawn(move || {
        let _exit = exit;
        if let Ok(row) = db.recv() {
            let _ = reply.send(row);
        }
    });
    replied.recv_timeout(Duration::from_millis(20)).ok()
}

fn p6_thread(_: &Runtime) -> Checked {
    let guard = options().verify_none();
    let (db, rows) = std_mpsc::channel();
    let (exit, worker_exited) = exit_watch();
    assert!(lookup_with_timeout(rows, exit).is_none());
    let checked = guard.check();
    drop(db);
    worker_exited.wait();
    checked
}

// P7: the reader of a channel that is never closed.

struct EventBus<S> {
    #[allow(dead_code)]
    events: S,
}

#[inline(never)]
fn start_event_reader(mut events: mpsc::UnboundedReceiver<u64>) -> JoinHandle<u64> {
    leakcheck::spawn(async move {
        let mut total = 0;
        while let Some(event) = events.recv().await {
            total += event;
        }
        total
    })
}

fn p7_task(runtime: &Runtime) -> Checked {
    runtime.block_on(async {
        let guard = options().verify_none();
        let (events, stream) = mpsc::unbounded_channel();
        let bus = EventBus { events };
        let reader = start_event_reader(stream);
        bus.events.send(1).unwrap();
        let checked = guard.check_async().await;
        drop(bus);
        reader.await.unwrap();
        checked
    })
}

#[inline(never)]
fn start_event_reader_thread(events: std_mpsc::Receiver<u64>) -> std::thread::JoinHandle<u64> {
    leakcheck::thread::spawn(move || events.iter().sum())
}

fn p7_thread(_: &Runtime) -> Checked {
    let guard = options().verify_none();
    let (events, stream) = std_mpsc::channel();
    let bus = EventBus { events };
    let reader = start_event_reader_thread(stream);
    bus.events.send(1).unwrap();
    let checked = guard.check();
    drop(bus);
    reader.join().unwrap();
    checked
}

// P8: a worker pool that is never shut down.

struct Pool<Q, W> {
    queue: Q,
    workers: Vec<W>,
}

#[inline(never)]
fn start_pool() -> Pool<mpsc::Sender<u64>, JoinHandle<()>> {
    let (queue, jobs) = mpsc::channel::<u64>(16);
    let jobs = Arc::new(tokio::sync::Mutex::new(jobs));
    let workers = (0..4)
        .map(|_| {
            let jobs = jobs.clone();
            leakcheck::spawn(async move {
                loop {
                    let job = jobs.lock().await.recv().await;
                    if job.is_none() {
                        return;
                    }
                }
            })
        })
        .collect();
    Pool { queue, workers }
}

fn p8_task(runtime: &Runtime) -> Checked {
    runtime.block_on(async {
        let guard = options().verify_none();
        let pool = start_pool();
        for job in 0..8 {
            pool.queue.send(job).await.unwrap();
        }
        let checked = guard.check_async().await;
        drop(pool.queue);
        for worker in pool.workers {
            worker.await.unwrap();
        }
        checked
    })
}

#[inline(never)]
fn start_thread_pool() -> Pool<std_mpsc::Sender<u64>, std::thread::JoinHandle<()>> {
    let (queue, jobs) = std_mpsc::channel::<u64>();
    let jobs = Arc::new(parking_lot::Mutex::new(jobs));
    let workers = (0..4)
        .map(|_| {
            let jobs = jobs.clone();
            leakcheck::thread::spawn(move || loop {
                let job = jobs.lock().recv();
                if job.is_err() {
                    return;
                }
            })
        })
        .collect();
    Pool { queue, workers }
}

fn p8_thread(_: &Runtime) -> Checked {
    let guard = options().verify_none();
    let pool = start_thread_pool();
    for job in 0..8 {
        pool.queue.send(job).unwrap();
    }
    let checked = guard.check();
    drop(pool.queue);
    for worker in pool.workers {
        worker.join().unwrap();
    }
    checked
}

// P9: a wait-with-timeout helper.

/// Waits for the workers at `barrier` on a helper task, giving up after
/// 20 ms; on timeout the helper task stays blocked at the barrier.
#[inline(never)]
fn wait_timeout(barrier: Arc<tokio::sync::Barrier>, exit: ExitToken) -> impl Future<Output = bool> {
    let (done, is_done) = oneshot::channel::<()>();
    leakcheck::spawn(async move {
        let _exit = exit;
        barrier.wait().await;
        let _ = done.send(());
    });
    async move {
        tokio::time::timeout(Duration::from_millis(20), is_done)
            .await
            .is_ok()
    }
}

fn p9_task(runtime: &Runtime) -> Checked {
    runtime.block_on(async {
        let guard = options().verify_none();
        // One worker and the helper meet here; the second worker fails and
        // never arrives.
        let barrier = Arc::new(tokio::sync::Barrier::new(3));
        let mut workers = tokio::task::JoinSet::new();
        let worker_barrier = barrier.clone();
        workers.spawn_tracked(async move {
            worker_barrier.wait().await;
        });
        let (exit, waiter_exited) = exit_watch();
        assert!(!wait_timeout(barrier.clone(), exit).await);
        let checked = guard.check_async().await;
        barrier.wait().await; // arrive in the failed worker's place
        while workers.join_next().await.is_some() {}
        waiter_exited.exited().await;
        checked
    })
}

#[inline(never)]
fn wait_timeout_thread(barrier: Arc<std::sync::Barrier>, exit: ExitToken) -> bool {
    let (done, is_done) = std_mpsc::channel::<()>();
    let _detached = leakcheck::thread::spawn(move || {
        let _exit = exit;
        barrier.wait();
        let _ = done.send(());
    });
    is_done.recv_timeout(Duration::from_millis(20)).is_ok()
}

fn p9_thread(_: &Runtime) -> Checked {
    let guard = options().verify_none();
    let barrier = Arc::new(std::sync::Barrier::new(3));
    let worker_barrier = barrier.clone();
    let worker = leakcheck::thread::spawn(move || {
        worker_barrier.wait();
    });
    let (exit, waiter_exited) = exit_watch();
    assert!(!wait_timeout_thread(barrier.clone(), exit));
    let checked = guard.check();
    barrier.wait();
    worker.join().unwrap();
    waiter_exited.wait();
    checked
}

// P10: leaks at scale.

#[inline(never)]
fn process_all(items: usize) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::with_capacity(items);
    for _ in 0..items {
        tasks.push(leakcheck::spawn(std::future::pending::<()>()));
    }
    std::hint::black_box(tasks)
}

fn p10_task(runtime: &Runtime) -> Checked {
    runtime.block_on(async {
        let guard = options().verify_none();
        let tasks = process_all(100_000);
        let checked = guard.check_async().await;
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
        checked
    })
}

#[inline(never)]
fn process_all_threads(
    items: usize,
    gate: Arc<std::sync::Barrier>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..items)
        .map(|_| {
            let gate = gate.clone();
            leakcheck::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    gate.wait();
                })
                .expect("the OS starts the thread")
        })
        .collect()
}

fn p10_thread(_: &Runtime) -> Checked {
    let guard = options().verify_none();
    let gate = Arc::new(std::sync::Barrier::new(1_001));
    let threads = process_all_threads(1_000, gate.clone());
    let checked = guard.check();
    gate.wait();
    for thread in threads {
        thread.join().unwrap();
    }
    checked
}
