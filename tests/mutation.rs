//! Mutation check of the leak patterns P1 to P10 of `leak-patterns.md`.
//!
//! Each pattern is one function, `pN(fixed: bool)`, that runs the pattern's
//! fixed form, with the one line that makes it correct behind
//! `if fixed { .. }`. The tables at the end drive every function twice:
//! fixed, the check must pass; with that line removed, it must fail, and its
//! report must name the pattern's spawn line (and nothing else).
//!
//! Conventions:
//! - The driver opens the guard before it calls `pN`, so everything `pN`
//!   spawns belongs to the check.
//! - `pN` returns a [`Run`]: the spawn lines that leak without the fix, how
//!   many stragglers that makes, a handle to everything it started, and
//!   `stop`, which ends what a missing fix leaves running (it drops the
//!   channel end that was kept, releases the lock, cancels, arrives at the
//!   barrier). Whatever keeps a leak real (the other end of a channel, a held
//!   lock) is kept in `stop`, so it lives until after the check.
//! - Fixed, the driver joins every worker before the check: the fix must end
//!   the work by itself, and the check must not need the settle budget to
//!   absorb a race of the test's own. Mutated, it checks, then calls `stop`
//!   and joins, so no run leaves work behind. (Fixed, `stop` is dropped
//!   unused.) Joins are bounded, so that a broken fix or `stop` fails
//!   instead of hanging.
//! - Nothing waits on the wall clock for an outcome: tasks run on a
//!   current-thread runtime, on paused time where timers are involved (P4,
//!   P6, P9), and P2 and P8 on a multi-thread runtime. The thread forms'
//!   timeouts only ever fire when nothing can answer.

use leakcheck::{LeakReport, Options};
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FILE: &str = file!();

/// The settle budget of every check here.
const SETTLE: Duration = Duration::from_millis(100);

/// How long a worker may take to end once it should. Generous: it only
/// turns a broken fix or a broken `stop` into a failure instead of a hang.
const JOIN_LIMIT: Duration = Duration::from_secs(20);

/// What a pattern function leaves to the driver.
struct Run<H, S> {
    /// The spawn lines of this file that leak without the fix; the first is
    /// the pattern's own.
    lines: Vec<u32>,
    /// How many stragglers the check must find without the fix.
    leaked: usize,
    /// Everything the pattern started. Fixed, all of it ends by itself.
    workers: Vec<H>,
    /// Ends what the missing fix left running. Called only then: after the
    /// fix it may not be harmless (a second arrival at a barrier waits for
    /// the barrier's next round).
    stop: S,
}

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;
type TaskRun = Run<tokio::task::JoinHandle<()>, LocalBoxFuture<()>>;
type ThreadRun = Run<std::thread::JoinHandle<()>, Box<dyn FnOnce()>>;

impl<H, S> Run<H, S> {
    fn new(lines: &[u32], leaked: usize, workers: Vec<H>, stop: S) -> Self {
        Self {
            lines: lines.to_vec(),
            leaked,
            workers,
            stop,
        }
    }
}

/// A small xorshift generator: the "random number stream" of P2.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

const SEED: u64 = 0x2545_f491_4f6c_dd1d;

// ---- the task forms ----------------------------------------------------------------

mod tasks {
    use super::*;
    use leakcheck::task::Builder;
    use tokio::sync::{mpsc, oneshot, Barrier, Mutex};
    use tokio_util::sync::CancellationToken;

    /// How long a caller waits before it gives up (P6, P9), on paused time.
    const LIMIT: Duration = Duration::from_millis(50);
    /// The ticker's period (P4), on paused time.
    const PERIOD: Duration = Duration::from_millis(10);
    /// P10's number of tasks from one spawn site.
    pub(super) const AT_SCALE: usize = 100_000;

    /// P1: a receive that can never complete. A listener waits on a channel
    /// whose sender is kept (in both forms) and never used. The fix: the
    /// wait is raced with a cancellation token, and the token is cancelled.
    pub(super) async fn p1(fixed: bool) -> TaskRun {
        let (tx, mut rx) = mpsc::channel::<u32>(1);
        let cancel = CancellationToken::new();
        let (listening, is_listening) = oneshot::channel();
        let listen = {
            let cancel = cancel.clone();
            async move {
                let _ = listening.send(());
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = rx.recv() => {}
                }
            }
        };
        let line = line!() + 1;
        let listener = leakcheck::spawn(listen);
        is_listening.await.expect("the listener starts");

        if fixed {
            cancel.cancel();
        }

        let stop = async move {
            cancel.cancel();
            drop(tx);
        };
        Run::new(&[line], 1, vec![listener], Box::pin(stop))
    }

    /// P2: a producer blocked on a consumer that walked away. The consumer
    /// reads three values, then keeps its receiver without reading, so the
    /// bounded channel stays open and full. The fix: every send is raced
    /// with a done signal, and the consumer gives it.
    pub(super) async fn p2(fixed: bool) -> TaskRun {
        let (tx, mut rx) = mpsc::channel::<u64>(1);
        let done = CancellationToken::new();
        let stream = {
            let done = done.clone();
            async move {
                let mut state = SEED;
                loop {
                    tokio::select! {
                        _ = done.cancelled() => return,
                        sent = tx.send(xorshift(&mut state)) => if sent.is_err() { return },
                    }
                }
            }
        };
        let line = line!() + 1;
        let producer = leakcheck::spawn(stream);
        for _ in 0..3 {
            assert_ne!(rx.recv().await, None, "the stream is open");
        }

        if fixed {
            done.cancel();
        }

        let stop = async move {
            done.cancel();
            drop(rx);
        };
        Run::new(&[line], 1, vec![producer], Box::pin(stop))
    }

    /// P3: a lock that is never released. The parent holds the lock while a
    /// writer waits for it. The fix: the parent releases it.
    pub(super) async fn p3(fixed: bool) -> TaskRun {
        let flushes = Arc::new(Mutex::new(0u64));
        let mut held = Some(flushes.clone().lock_owned().await);
        let (locking, is_locking) = oneshot::channel();
        let write = {
            let flushes = flushes.clone();
            async move {
                let _ = locking.send(());
                *flushes.lock().await += 1;
            }
        };
        let line = line!() + 1;
        let writer = leakcheck::spawn(write);
        is_locking.await.expect("the writer starts");

        if fixed {
            drop(held.take());
        }

        let stop = async move { drop(held) };
        Run::new(&[line], 1, vec![writer], Box::pin(stop))
    }

    /// P4: a loop with no way out: a metrics flusher that ticks for ever.
    /// The fix: every tick is raced with cancellation, and the owner
    /// cancels.
    pub(super) async fn p4(fixed: bool) -> TaskRun {
        let flushes = Arc::new(AtomicU64::new(0));
        let cancel = CancellationToken::new();
        let tick = {
            let cancel = cancel.clone();
            let flushes = flushes.clone();
            async move {
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(PERIOD) => {
                            flushes.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        };
        let builder = Builder::new().name("metrics-flusher");
        let line = line!() + 1;
        let flusher = builder.spawn(tick).expect("spawning a task does not fail");
        // Three ticks and a half, on paused time.
        tokio::time::sleep(PERIOD * 7 / 2).await;
        assert_eq!(flushes.load(Ordering::Relaxed), 3);

        if fixed {
            cancel.cancel();
        }

        let stop = async move { cancel.cancel() };
        Run::new(&[line], 1, vec![flusher], Box::pin(stop))
    }

    /// P5: the first answer wins, the others block. Four replicas answer into
    /// a channel of capacity 1 whose receiver is kept after the first reply:
    /// one more reply fits, two wait for room. The fix: the receiver is
    /// dropped after the first reply, so the waiting sends fail.
    pub(super) async fn p5(fixed: bool) -> TaskRun {
        let (tx, mut rx) = mpsc::channel::<usize>(1);
        let mut replicas = Vec::new();
        let mut line = 0;
        for replica in 0..4 {
            let tx = tx.clone();
            let ask = async move {
                let _ = tx.send(replica).await;
            };
            line = line!() + 1;
            replicas.push(leakcheck::spawn(ask));
        }
        drop(tx);
        assert!(rx.recv().await.is_some(), "a replica answers");
        let mut rx = Some(rx);

        if fixed {
            drop(rx.take());
        }

        let stop = async move { drop(rx) };
        Run::new(&[line], 2, replicas, Box::pin(stop))
    }

    /// P6: work abandoned by a timeout. The caller waits for a query at most
    /// `LIMIT` and gives up; the database (kept in both forms) never answers.
    /// The fix: on timeout the caller aborts the worker.
    pub(super) async fn p6(fixed: bool) -> TaskRun {
        let (db, mut rows) = mpsc::channel::<String>(1);
        let query = async move {
            let _ = rows.recv().await;
        };
        let line = line!() + 1;
        let mut worker = leakcheck::spawn(query);
        let waited = tokio::time::timeout(LIMIT, &mut worker).await;
        assert!(waited.is_err(), "nothing answers, so the wait times out");

        if fixed {
            worker.abort();
        }

        let stop = async move { drop(db) };
        Run::new(&[line], 1, vec![worker], Box::pin(stop))
    }

    /// An event stream's sending side, owned by a long-lived struct (P7).
    struct EventBus {
        events: mpsc::UnboundedSender<u64>,
    }

    /// P7: the reader of a channel that is never closed. The fix: the struct
    /// that owns the sender is dropped, so the stream ends.
    pub(super) async fn p7(fixed: bool) -> TaskRun {
        let (events, mut stream) = mpsc::unbounded_channel();
        let bus = EventBus { events };
        let total = Arc::new(AtomicU64::new(0));
        let read = {
            let total = total.clone();
            async move {
                while let Some(event) = stream.recv().await {
                    total.fetch_add(event, Ordering::Relaxed);
                }
            }
        };
        let line = line!() + 1;
        let reader = leakcheck::spawn(read);
        for event in 1..=3 {
            bus.events.send(event).expect("the reader is alive");
        }
        let mut bus = Some(bus);

        if fixed {
            drop(bus.take());
        }

        let stop = async move { drop(bus) };
        Run::new(&[line], 1, vec![reader], Box::pin(stop))
    }

    type Jobs = Arc<Mutex<mpsc::Receiver<u64>>>;

    /// A worker of P8's pool: takes jobs until the queue closes.
    async fn work(jobs: Jobs, results: mpsc::UnboundedSender<u64>) {
        loop {
            let job = jobs.lock().await.recv().await;
            match job {
                Some(n) => {
                    let _ = results.send(n * n);
                }
                None => return,
            }
        }
    }

    /// P8's pool: a queue in front of its workers.
    struct Pool {
        queue: Option<mpsc::Sender<u64>>,
    }

    impl Pool {
        /// Closes the queue; each worker returns once it sees the close.
        fn close(&mut self) {
            self.queue = None;
        }

        async fn submit(&self, job: u64) {
            let queue = self.queue.as_ref().expect("the pool is open");
            queue.send(job).await.expect("the workers are alive");
        }
    }

    /// P8: a worker pool that is never shut down. The fix: the pool's queue
    /// is closed (and the driver joins the workers).
    pub(super) async fn p8(fixed: bool) -> TaskRun {
        let (queue, jobs) = mpsc::channel::<u64>(16);
        let jobs: Jobs = Arc::new(Mutex::new(jobs));
        let (results, mut finished) = mpsc::unbounded_channel();
        let mut workers = Vec::new();
        let mut line = 0;
        for _ in 0..4 {
            let worker = work(jobs.clone(), results.clone());
            line = line!() + 1;
            workers.push(leakcheck::spawn(worker));
        }
        let mut pool = Pool { queue: Some(queue) };
        for n in 1..=10 {
            pool.submit(n).await;
        }
        let mut total = 0;
        for _ in 1..=10 {
            total += finished.recv().await.expect("a worker answers");
        }
        assert_eq!(total, 385);

        if fixed {
            pool.close();
        }

        let stop = async move { pool.close() };
        Run::new(&[line], 4, workers, Box::pin(stop))
    }

    /// P9: a wait-with-timeout helper. Two workers and the helper's waiter
    /// meet at a barrier; worker 1 fails and returns without arriving, so
    /// worker 0 and the waiter wait for ever after the helper's timeout.
    /// The fix: a failing worker arrives too.
    pub(super) async fn p9(fixed: bool) -> TaskRun {
        let barrier = Arc::new(Barrier::new(3));
        let mut workers = Vec::new();
        let mut workers_line = 0;
        for worker in 0..2 {
            let barrier = barrier.clone();
            let work = async move {
                let failed = worker == 1;
                if failed {
                    if fixed {
                        barrier.wait().await;
                    }
                    return;
                }
                barrier.wait().await;
            };
            workers_line = line!() + 1;
            workers.push(leakcheck::spawn(work));
        }
        // The helper: waits at the barrier on a task of its own, and gives
        // up after `LIMIT`, like Go's `wg.Wait()` in a goroutine.
        let (done, is_done) = oneshot::channel::<()>();
        let wait = {
            let barrier = barrier.clone();
            async move {
                barrier.wait().await;
                let _ = done.send(());
            }
        };
        let waiter_line = line!() + 1;
        workers.push(leakcheck::spawn(wait));
        let waited = tokio::time::timeout(LIMIT, is_done).await.is_ok();
        assert_eq!(waited, fixed, "the wait ends in time exactly when fixed");

        // Arrives in worker 1's place, which fills the barrier.
        let stop = async move {
            barrier.wait().await;
        };
        Run::new(&[waiter_line, workers_line], 2, workers, Box::pin(stop))
    }

    /// P10: leaks at scale: one task per item, all from one spawn site, each
    /// waiting for the end of the batch. The fix: the batch is ended.
    pub(super) async fn p10(fixed: bool) -> TaskRun {
        let batch_done = CancellationToken::new();
        let mut items = Vec::with_capacity(AT_SCALE);
        let mut line = 0;
        for _ in 0..AT_SCALE {
            let done = batch_done.clone();
            let item = async move { done.cancelled().await };
            line = line!() + 1;
            items.push(leakcheck::spawn(item));
        }

        if fixed {
            batch_done.cancel();
        }

        let stop = async move { batch_done.cancel() };
        Run::new(&[line], AT_SCALE, items, Box::pin(stop))
    }
}

// ---- the thread forms --------------------------------------------------------------

mod threads {
    use super::*;
    use std::sync::mpsc::{self, RecvTimeoutError};
    use std::sync::Barrier;
    use std::thread::JoinHandle;

    /// How long a caller waits before it gives up (P6, P9). Only ever spent
    /// when nothing can answer.
    const LIMIT: Duration = Duration::from_millis(20);
    /// How often a cancellable worker looks at its flag (P4, P6).
    const SLICE: Duration = Duration::from_millis(2);
    /// P10's number of threads from one spawn site.
    pub(super) const AT_SCALE: usize = 200;

    /// P1: a receive that can never complete. A thread blocks in `recv`
    /// while the sender is kept. The fix: the sender is dropped.
    pub(super) fn p1(fixed: bool) -> ThreadRun {
        let (tx, rx) = mpsc::channel::<u32>();
        let (listening, is_listening) = mpsc::channel();
        let listen = move || {
            let _ = listening.send(());
            let _ = rx.recv();
        };
        let line = line!() + 1;
        let listener = leakcheck::thread::spawn(listen);
        is_listening.recv().expect("the listener starts");
        let mut tx = Some(tx);

        if fixed {
            drop(tx.take());
        }

        Run::new(&[line], 1, vec![listener], Box::new(move || drop(tx)))
    }

    /// P2: a producer blocked on a consumer that walked away, on a
    /// rendezvous channel. The fix: the consumer drops its receiver, and the
    /// producer stops on the send error.
    pub(super) fn p2(fixed: bool) -> ThreadRun {
        let (tx, rx) = mpsc::sync_channel::<u64>(0);
        let stream = move || {
            let mut state = SEED;
            while tx.send(xorshift(&mut state)).is_ok() {}
        };
        let line = line!() + 1;
        let producer = leakcheck::thread::spawn(stream);
        for _ in 0..3 {
            rx.recv().expect("the stream is open");
        }
        let mut rx = Some(rx);

        if fixed {
            drop(rx.take());
        }

        Run::new(&[line], 1, vec![producer], Box::new(move || drop(rx)))
    }

    /// P3: a lock that is never released, with `parking_lot`. The fix: the
    /// parent releases the guard.
    pub(super) fn p3(fixed: bool) -> ThreadRun {
        // Leaked on purpose, a few bytes per run, so that the parent's guard
        // can outlive this function (`parking_lot` guards borrow the lock).
        let flushes: &'static parking_lot::Mutex<u64> = Box::leak(Box::default());
        let mut held = Some(flushes.lock());
        let (locking, is_locking) = mpsc::channel();
        let write = move || {
            let _ = locking.send(());
            *flushes.lock() += 1;
        };
        let line = line!() + 1;
        let writer = leakcheck::thread::spawn(write);
        is_locking.recv().expect("the writer starts");

        if fixed {
            drop(held.take());
        }

        Run::new(&[line], 1, vec![writer], Box::new(move || drop(held)))
    }

    /// P4: a loop with no way out: a flusher thread that ticks until told to
    /// stop. The fix: its owner sets the stop flag.
    pub(super) fn p4(fixed: bool) -> ThreadRun {
        let stop = Arc::new(AtomicBool::new(false));
        let flushes = Arc::new(AtomicU64::new(0));
        let tick = {
            let stop = stop.clone();
            move || {
                while !stop.load(Ordering::Acquire) {
                    std::thread::park_timeout(SLICE);
                    flushes.fetch_add(1, Ordering::Relaxed);
                }
            }
        };
        let builder = leakcheck::thread::Builder::new().name("metrics-flusher".into());
        let line = line!() + 1;
        let flusher = builder.spawn(tick).expect("the OS starts the thread");

        if fixed {
            stop.store(true, Ordering::Release);
        }

        let stop = move || stop.store(true, Ordering::Release);
        Run::new(&[line], 1, vec![flusher], Box::new(stop))
    }

    /// P5: the first answer wins, the others block, on a rendezvous channel.
    /// The fix: the receiver is dropped after the first reply.
    pub(super) fn p5(fixed: bool) -> ThreadRun {
        let (tx, rx) = mpsc::sync_channel::<usize>(0);
        let mut replicas = Vec::new();
        let mut line = 0;
        for replica in 0..4 {
            let tx = tx.clone();
            let ask = move || {
                let _ = tx.send(replica);
            };
            line = line!() + 1;
            replicas.push(leakcheck::thread::spawn(ask));
        }
        drop(tx);
        let winner = rx.recv().expect("a replica answers");
        // The winner's send went through: join it, so the count is exact.
        join_within(replicas.remove(winner));
        let mut rx = Some(rx);

        if fixed {
            drop(rx.take());
        }

        Run::new(&[line], 3, replicas, Box::new(move || drop(rx)))
    }

    /// P6: work abandoned by a timeout. The worker waits on a database that
    /// never answers (kept in both forms), in slices so that it can be
    /// cancelled; the caller gives up after `LIMIT`. The fix: on timeout the
    /// caller cancels the worker.
    pub(super) fn p6(fixed: bool) -> ThreadRun {
        let (db, rows) = mpsc::channel::<String>();
        let (reply, replied) = mpsc::channel::<String>();
        let cancel = Arc::new(AtomicBool::new(false));
        let lookup = {
            let cancel = cancel.clone();
            move || loop {
                match rows.recv_timeout(SLICE) {
                    Ok(row) => {
                        let _ = reply.send(row);
                        return;
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                    Err(RecvTimeoutError::Timeout) if cancel.load(Ordering::Acquire) => return,
                    Err(RecvTimeoutError::Timeout) => {}
                }
            }
        };
        let line = line!() + 1;
        let worker = leakcheck::thread::spawn(lookup);
        let waited = replied.recv_timeout(LIMIT);
        assert_eq!(waited, Err(RecvTimeoutError::Timeout), "nothing answers");

        if fixed {
            cancel.store(true, Ordering::Release);
        }

        Run::new(&[line], 1, vec![worker], Box::new(move || drop(db)))
    }

    /// An event stream's sending side, owned by a long-lived struct (P7).
    struct EventBus {
        events: mpsc::Sender<u64>,
    }

    /// P7: the reader of a channel that is never closed. The fix: the struct
    /// that owns the sender is dropped.
    pub(super) fn p7(fixed: bool) -> ThreadRun {
        let (events, stream) = mpsc::channel();
        let bus = EventBus { events };
        let read = move || {
            let total: u64 = stream.iter().sum();
            assert_eq!(total, 6);
        };
        let line = line!() + 1;
        let reader = leakcheck::thread::spawn(read);
        for event in 1..=3 {
            bus.events.send(event).expect("the reader is alive");
        }
        let mut bus = Some(bus);

        if fixed {
            drop(bus.take());
        }

        Run::new(&[line], 1, vec![reader], Box::new(move || drop(bus)))
    }

    /// P8's pool: a queue in front of its worker threads.
    struct Pool {
        queue: Option<mpsc::Sender<u64>>,
    }

    impl Pool {
        fn close(&mut self) {
            self.queue = None;
        }

        fn submit(&self, job: u64) {
            let queue = self.queue.as_ref().expect("the pool is open");
            queue.send(job).expect("the workers are alive");
        }
    }

    /// P8: a worker pool that is never shut down. The fix: its queue is
    /// closed (and the driver joins the workers).
    pub(super) fn p8(fixed: bool) -> ThreadRun {
        let (queue, jobs) = mpsc::channel::<u64>();
        let jobs = Arc::new(parking_lot::Mutex::new(jobs));
        let (results, finished) = mpsc::channel();
        let mut workers = Vec::new();
        let mut line = 0;
        for _ in 0..4 {
            let jobs = jobs.clone();
            let results = results.clone();
            let work = move || loop {
                // The lock is released at the end of this statement.
                let job = jobs.lock().recv();
                match job {
                    Ok(n) => {
                        let _ = results.send(n * n);
                    }
                    Err(_) => return,
                }
            };
            line = line!() + 1;
            workers.push(leakcheck::thread::spawn(work));
        }
        let mut pool = Pool { queue: Some(queue) };
        for n in 1..=10 {
            pool.submit(n);
        }
        let total: u64 = (1..=10)
            .map(|_| finished.recv().expect("a worker answers"))
            .sum();
        assert_eq!(total, 385);

        if fixed {
            pool.close();
        }

        Run::new(&[line], 4, workers, Box::new(move || pool.close()))
    }

    /// P9: a wait-with-timeout helper, with a std `Barrier`: worker 1 fails
    /// and returns without arriving, so worker 0 and the helper's waiter
    /// wait for ever. The fix: a failing worker arrives too.
    pub(super) fn p9(fixed: bool) -> ThreadRun {
        let barrier = Arc::new(Barrier::new(3));
        let mut workers = Vec::new();
        let mut workers_line = 0;
        for worker in 0..2 {
            let barrier = barrier.clone();
            let work = move || {
                let failed = worker == 1;
                if failed {
                    if fixed {
                        barrier.wait();
                    }
                    return;
                }
                barrier.wait();
            };
            workers_line = line!() + 1;
            workers.push(leakcheck::thread::spawn(work));
        }
        let (done, is_done) = mpsc::channel::<()>();
        let wait = {
            let barrier = barrier.clone();
            move || {
                barrier.wait();
                let _ = done.send(());
            }
        };
        let waiter_line = line!() + 1;
        let waiter = leakcheck::thread::spawn(wait);
        let waited = is_done.recv_timeout(LIMIT).is_ok();
        // Fixed, the wait may or may not end within `LIMIT` of wall time;
        // without the fix, the barrier cannot fill.
        assert!(fixed || !waited, "the wait cannot end without the fix");
        // The caller collects the failing worker's outcome: only the two
        // that wait at the barrier are left.
        join_within(workers.remove(1));
        workers.push(waiter);

        // Arrives in worker 1's place, which fills the barrier.
        let stop = move || {
            barrier.wait();
        };
        Run::new(&[waiter_line, workers_line], 2, workers, Box::new(stop))
    }

    /// P10: leaks at scale: one small-stacked thread per item, all from one
    /// spawn site, each waiting at a gate for the end of the batch. The fix:
    /// the caller arrives at the gate, which releases the batch.
    pub(super) fn p10(fixed: bool) -> ThreadRun {
        let gate = Arc::new(Barrier::new(AT_SCALE + 1));
        let mut items = Vec::with_capacity(AT_SCALE);
        let mut line = 0;
        for _ in 0..AT_SCALE {
            let gate = gate.clone();
            let item = move || {
                gate.wait();
            };
            let builder = leakcheck::thread::Builder::new().stack_size(64 * 1024);
            line = line!() + 1;
            items.push(builder.spawn(item).expect("the OS starts the thread"));
        }
        let stop = {
            let gate = gate.clone();
            move || {
                gate.wait();
            }
        };

        if fixed {
            gate.wait();
        }

        Run::new(&[line], AT_SCALE, items, Box::new(stop))
    }

    /// Joins `worker`, failing instead of hanging if it does not end within
    /// [`JOIN_LIMIT`], and passing its panic on.
    pub(super) fn join_within(worker: JoinHandle<()>) {
        let started = Instant::now();
        while !worker.is_finished() {
            assert!(
                started.elapsed() < JOIN_LIMIT,
                "a worker did not end within {JOIN_LIMIT:?}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        if let Err(panic) = worker.join() {
            resume_unwind(panic);
        }
    }
}

// ---- the drivers -------------------------------------------------------------------

/// The runtime a task form runs on.
#[derive(Debug, Clone, Copy)]
enum Rt {
    CurrentThread,
    /// Current-thread, with the clock paused: timers fire as soon as the
    /// runtime is idle, never on the wall clock.
    Paused,
    MultiThread,
}

type TaskPattern = fn(bool) -> LocalBoxFuture<TaskRun>;
type ThreadPattern = fn(bool) -> ThreadRun;

const TASK_PATTERNS: [(&str, Rt, TaskPattern); 10] = [
    ("P1", Rt::CurrentThread, |fixed| Box::pin(tasks::p1(fixed))),
    ("P2", Rt::MultiThread, |fixed| Box::pin(tasks::p2(fixed))),
    ("P3", Rt::CurrentThread, |fixed| Box::pin(tasks::p3(fixed))),
    ("P4", Rt::Paused, |fixed| Box::pin(tasks::p4(fixed))),
    ("P5", Rt::CurrentThread, |fixed| Box::pin(tasks::p5(fixed))),
    ("P6", Rt::Paused, |fixed| Box::pin(tasks::p6(fixed))),
    ("P7", Rt::CurrentThread, |fixed| Box::pin(tasks::p7(fixed))),
    ("P8", Rt::MultiThread, |fixed| Box::pin(tasks::p8(fixed))),
    ("P9", Rt::Paused, |fixed| Box::pin(tasks::p9(fixed))),
    ("P10", Rt::CurrentThread, |fixed| {
        Box::pin(tasks::p10(fixed))
    }),
];

const THREAD_PATTERNS: [(&str, ThreadPattern); 10] = [
    ("P1", threads::p1),
    ("P2", threads::p2),
    ("P3", threads::p3),
    ("P4", threads::p4),
    ("P5", threads::p5),
    ("P6", threads::p6),
    ("P7", threads::p7),
    ("P8", threads::p8),
    ("P9", threads::p9),
    ("P10", threads::p10),
];

/// What one run of a pattern found.
struct Outcome {
    result: Result<(), LeakReport>,
    lines: Vec<u32>,
    leaked: usize,
}

fn runtime(rt: Rt) -> tokio::runtime::Runtime {
    let mut builder = match rt {
        Rt::CurrentThread | Rt::Paused => tokio::runtime::Builder::new_current_thread(),
        Rt::MultiThread => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(2);
            builder
        }
    };
    builder.enable_all().start_paused(matches!(rt, Rt::Paused));
    builder.build().expect("build a runtime")
}

/// Waits for a task to end (complete, or cancelled by the fix), failing
/// instead of hanging after [`JOIN_LIMIT`].
async fn join_task(worker: tokio::task::JoinHandle<()>) {
    match tokio::time::timeout(JOIN_LIMIT, worker).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) if error.is_cancelled() => {}
        Ok(Err(error)) => resume_unwind(error.into_panic()),
        Err(_) => panic!("a task did not end within {JOIN_LIMIT:?}"),
    }
}

fn run_task_pattern(rt: Rt, pattern: TaskPattern, fixed: bool) -> Outcome {
    runtime(rt).block_on(async move {
        let guard = Options::new().settle(SETTLE).verify_none();
        let Run {
            lines,
            leaked,
            mut workers,
            stop,
        } = pattern(fixed).await;
        if fixed {
            for worker in workers.drain(..) {
                join_task(worker).await;
            }
        }
        let result = guard.check_async().await;
        if !fixed {
            let stopped = tokio::time::timeout(JOIN_LIMIT, stop).await;
            stopped.expect("`stop` returns");
            for worker in workers {
                join_task(worker).await;
            }
        }
        Outcome {
            result,
            lines,
            leaked,
        }
    })
}

fn run_thread_pattern(pattern: ThreadPattern, fixed: bool) -> Outcome {
    let guard = Options::new().settle(SETTLE).verify_none();
    let Run {
        lines,
        leaked,
        mut workers,
        stop,
    } = pattern(fixed);
    if fixed {
        workers.drain(..).for_each(threads::join_within);
    }
    let result = guard.check();
    if !fixed {
        stop();
        workers.into_iter().for_each(threads::join_within);
    }
    Outcome {
        result,
        lines,
        leaked,
    }
}

/// Judges one run: fixed, the check passed; mutated, it failed with a
/// report that names every expected spawn line, with the right count, and
/// nothing else.
fn judge(fixed: bool, outcome: Outcome) -> Result<(), String> {
    let Outcome {
        result,
        lines,
        leaked,
    } = outcome;
    let report = match (fixed, result) {
        (true, Ok(())) => return Ok(()),
        (true, Err(report)) => return Err(format!("the fixed form leaks:\n{report}")),
        (false, Ok(())) => return Err("the check passed without the fix".to_owned()),
        (false, Err(report)) => report,
    };
    let text = report.to_string();
    let at = |line: u32| {
        move |s: &&leakcheck::Straggler| s.location().file() == FILE && s.location().line() == line
    };
    for &line in &lines {
        let here: Vec<_> = report.stragglers().iter().filter(at(line)).collect();
        let Some(first) = here.first() else {
            return Err(format!("no straggler spawned at {FILE}:{line}:\n{text}"));
        };
        let what = match here.len() {
            1 => format!("1 {}", first.kind()),
            n => format!("{n} {}", first.kind().plural()),
        };
        let header = format!("{what} spawned at {FILE}:{line}:");
        if !text.contains(&header) {
            return Err(format!("the report does not say {header:?}:\n{text}"));
        }
    }
    let strays = report
        .stragglers()
        .iter()
        .filter(|s| !lines.iter().any(|&line| at(line)(s)))
        .count();
    if strays > 0 {
        return Err(format!("{strays} stragglers from other lines:\n{text}"));
    }
    if report.stragglers().len() != leaked {
        return Err(format!(
            "{} stragglers, expected {leaked}:\n{text}",
            report.stragglers().len()
        ));
    }
    if report.sites() != lines.len() {
        return Err(format!(
            "{} sites, expected {}:\n{text}",
            report.sites(),
            lines.len()
        ));
    }
    // Grouped by site: the report of 100 000 stragglers is as short as one.
    if text.len() >= 10_000 {
        return Err(format!("the report is {} bytes long", text.len()));
    }
    Ok(())
}

/// Runs every pattern fixed and mutated; collects every failure, so that one
/// broken pattern does not hide another.
fn run_table<P: Copy>(table: &[(&str, P)], run: impl Fn(P, bool) -> Outcome) {
    let mut failures = Vec::new();
    for &(name, pattern) in table {
        for fixed in [true, false] {
            let form = if fixed {
                "fixed"
            } else {
                "with its fix removed"
            };
            let started = Instant::now();
            let verdict = catch_unwind(AssertUnwindSafe(|| judge(fixed, run(pattern, fixed))));
            eprintln!("{name} {form}: {:?}", started.elapsed());
            match verdict {
                Ok(Ok(())) => {}
                Ok(Err(why)) => failures.push(format!("{name} {form}: {why}")),
                Err(panic) => {
                    let why = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    failures.push(format!("{name} {form}: panicked: {why}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn task_patterns_pass_fixed_and_fail_with_the_fix_removed() {
    let table: Vec<(&str, (Rt, TaskPattern))> = TASK_PATTERNS
        .iter()
        .map(|&(name, rt, pattern)| (name, (rt, pattern)))
        .collect();
    run_table(&table, |(rt, pattern), fixed| {
        run_task_pattern(rt, pattern, fixed)
    });
}

#[test]
fn thread_patterns_pass_fixed_and_fail_with_the_fix_removed() {
    run_table(&THREAD_PATTERNS, run_thread_pattern);
}

/// Every pattern of `leak-patterns.md` is in both tables, once, in order.
#[test]
fn the_tables_cover_every_pattern() {
    let expected: Vec<String> = (1..=10).map(|n| format!("P{n}")).collect();
    let tasks: Vec<&str> = TASK_PATTERNS.iter().map(|(name, ..)| *name).collect();
    let threads: Vec<&str> = THREAD_PATTERNS.iter().map(|(name, _)| *name).collect();
    assert_eq!(tasks, expected);
    assert_eq!(threads, expected);
}

// P10's point is scale: the task form keeps the size the patterns document
// names; the thread form stays well above what a report would list one by
// one.
const _: () = assert!(tasks::AT_SCALE == 100_000 && threads::AT_SCALE >= 100);
