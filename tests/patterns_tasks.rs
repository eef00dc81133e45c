//! The leak patterns of `leak-patterns.md` (P1 to P10), as tokio tasks.
//!
//! Every pattern has a leaky form, which the check must catch while naming
//! the line that spawned the straggler and the helper function that called
//! it, and a fixed form, which must pass.
//!
//! Conventions:
//! - Each spawn goes through a helper marked `#[inline(never)]`, which takes
//!   `line!()` on the line just before the spawn and returns it with the
//!   handle, so the expected `file:line` is exact. Futures are built before
//!   the spawn line so that rustfmt keeps the call on one line.
//! - A leak must be real. In Rust a dropped channel end ends the wait of the
//!   other end, so every leaky test keeps the other end alive past the check,
//!   and says where.
//! - Nothing races on the clock: tests synchronise with channels and barriers,
//!   or run on paused tokio time. A fixed test joins its workers before the
//!   check, so it does not need the settle budget to absorb a race of its
//!   own. (On a multi-thread runtime, tokio still counts a just-joined task
//!   as alive for a moment, and leakcheck's untracked-task count reads that
//!   as a leak until it clears; the default budget absorbs it.)
//! - After a leaky check, the test stops its leak and waits for the worker to
//!   end, so no test leaves work behind.

mod common;

use common::{assert_only_site, assert_site, exit_watch, leaky, ExitToken};
use leakcheck::task::JoinSetExt;
use leakcheck::{Kind, State};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Barrier, Mutex};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::error::Elapsed;
use tokio_util::sync::CancellationToken;

const FILE: &str = file!();

/// P1: a receive that can never complete.
mod p1_receive_that_never_completes {
    use super::*;

    /// Starts a task that awaits a future nothing can ever complete or wake,
    /// like a Go receive from a nil channel.
    #[inline(never)]
    fn start_waiter() -> (JoinHandle<()>, u32) {
        let spawn_line = line!() + 1;
        let handle = leakcheck::spawn(std::future::pending::<()>());
        // `black_box` keeps the spawn out of tail position: with nothing
        // left to do after it, an optimised build jumps to it instead of
        // calling it, and this frame vanishes from the creation backtrace,
        // `#[inline(never)]` or not.
        (std::hint::black_box(handle), spawn_line)
    }

    /// Starts a task that waits for one value on `rx`. It signals `listening`
    /// in the same poll in which it starts to wait.
    #[inline(never)]
    fn start_listener(
        mut rx: mpsc::Receiver<u32>,
        listening: oneshot::Sender<()>,
    ) -> (JoinHandle<Option<u32>>, u32) {
        let listen = async move {
            let _ = listening.send(());
            rx.recv().await
        };
        let spawn_line = line!() + 1;
        let handle = leakcheck::spawn(listen);
        (handle, spawn_line)
    }

    /// The fix: the wait is raced with a cancellation token.
    #[inline(never)]
    fn start_cancellable_listener(
        mut rx: mpsc::Receiver<u32>,
        cancel: CancellationToken,
    ) -> JoinHandle<Option<u32>> {
        leakcheck::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => None,
                value = rx.recv() => value,
            }
        })
    }

    #[tokio::test]
    async fn leaky_pending_is_stuck_and_fails_fast() {
        // A long budget: a stuck task must be reported without waiting for it.
        let guard = leakcheck::Options::new()
            .settle(Duration::from_secs(30))
            .verify_none();
        // The leak is real: `pending()` never completes, and no waker of the
        // task is kept anywhere, so nothing can ever wake it.
        let (handle, spawn_line) = start_waiter();

        let started = Instant::now();
        let report = guard.check_async().await.expect_err("a pending task leaks");
        let took = started.elapsed();

        let at = assert_only_site(&report, FILE, spawn_line, Some("start_waiter"), 1);
        assert_eq!(at[0].kind(), Kind::Task);
        assert_eq!(at[0].state(), State::Stuck, "{report}");
        assert!(report.to_string().contains("stuck"), "{report}");
        assert!(
            took < Duration::from_secs(5),
            "a stuck task must fail fast, not after the 30 s budget: took {took:?}"
        );

        handle.abort();
        assert!(handle.await.unwrap_err().is_cancelled());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leaky_recv_with_sender_kept() {
        let guard = leaky().verify_none();
        // The leak is real: `tx` lives until the end of the test and is never
        // used, so the channel stays open and `recv` can never return.
        let (tx, rx) = mpsc::channel::<u32>(1);
        let (listening, is_listening) = oneshot::channel();
        let (handle, spawn_line) = start_listener(rx, listening);
        is_listening.await.unwrap();

        let report = guard.check_async().await.expect_err("the listener leaks");

        let at = assert_only_site(&report, FILE, spawn_line, Some("start_listener"), 1);
        assert_eq!(at[0].kind(), Kind::Task);
        // The channel holds the task's waker: it could be woken, so the check
        // waited for the whole budget before giving up.
        assert_eq!(at[0].state(), State::Waiting, "{report}");
        assert!(report.waited() >= common::LEAKY_SETTLE, "{report}");

        drop(tx);
        assert_eq!(handle.await.unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fixed_recv_raced_with_cancellation() {
        let guard = leakcheck::verify_none();
        // The sender is still kept and never used: the fix must not depend on
        // the channel closing.
        let (tx, rx) = mpsc::channel::<u32>(1);
        let cancel = CancellationToken::new();
        let handle = start_cancellable_listener(rx, cancel.clone());

        cancel.cancel();
        assert_eq!(handle.await.unwrap(), None);

        guard
            .check_async()
            .await
            .expect("the listener was cancelled and joined");
        drop(tx);
    }

    #[tokio::test]
    async fn fixed_pending_raced_with_done_channel() {
        let guard = leakcheck::verify_none();
        let (done, is_done) = oneshot::channel::<()>();
        let handle = leakcheck::spawn(async move {
            tokio::select! {
                _ = std::future::pending::<()>() => unreachable!(),
                _ = is_done => {}
            }
        });

        done.send(()).unwrap();
        handle.await.unwrap();

        guard
            .check_async()
            .await
            .expect("the waiter was told to stop");
    }
}

/// P2: a producer blocked on a consumer that walked away.
mod p2_producer_blocked_on_a_consumer_that_walked_away {
    use super::*;

    /// A small xorshift generator, standing in for the Go original's random
    /// number stream.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// Streams random numbers into `tx` until a send fails.
    #[inline(never)]
    fn start_random_stream(tx: mpsc::Sender<u64>) -> (JoinHandle<()>, u32) {
        let stream = async move {
            let mut state = 0x2545_f491_4f6c_dd1d;
            while tx.send(xorshift(&mut state)).await.is_ok() {}
        };
        let spawn_line = line!() + 1;
        let handle = leakcheck::spawn(stream);
        (handle, spawn_line)
    }

    /// Streams random numbers into `tx`, ignoring send errors: once the
    /// receiver is gone every send fails at once, and the loop spins.
    ///
    /// The `yield_now` is the test's concession: a send on a closed channel
    /// returns without ever yielding (tokio's cooperative budget does not
    /// apply to it), so without it the loop would never leave its poll, no
    /// abort could stop it, and dropping the runtime at the end of the test
    /// would hang.
    #[inline(never)]
    fn start_careless_stream(tx: mpsc::Sender<u64>) -> (JoinHandle<()>, u32) {
        let stream = async move {
            let mut state = 0x2545_f491_4f6c_dd1d;
            loop {
                let _ = tx.send(xorshift(&mut state)).await;
                tokio::task::yield_now().await;
            }
        };
        let spawn_line = line!() + 1;
        let handle = leakcheck::spawn(stream);
        (handle, spawn_line)
    }

    /// The fix: every send is raced with a done signal.
    #[inline(never)]
    fn start_stoppable_stream(tx: mpsc::Sender<u64>, done: CancellationToken) -> JoinHandle<()> {
        leakcheck::spawn(async move {
            let mut state = 0x2545_f491_4f6c_dd1d;
            loop {
                tokio::select! {
                    _ = done.cancelled() => return,
                    sent = tx.send(xorshift(&mut state)) => if sent.is_err() { return },
                }
            }
        })
    }

    async fn read_three(rx: &mut mpsc::Receiver<u64>) -> [u64; 3] {
        let mut values = [0; 3];
        for value in &mut values {
            *value = rx.recv().await.expect("the stream is open");
        }
        values
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leaky_receiver_kept_but_not_read() {
        let guard = leaky().verify_none();
        let (tx, mut rx) = mpsc::channel::<u64>(1);
        let (handle, spawn_line) = start_random_stream(tx);
        let values = read_three(&mut rx).await;
        assert!(values.iter().all(|v| *v != 0));
        // The consumer walks away but keeps `rx` until the end of the test:
        // the channel stays open and full, so the producer's next send blocks
        // for ever. That is the leak, and it is real.

        let report = guard.check_async().await.expect_err("the producer leaks");

        let at = assert_only_site(&report, FILE, spawn_line, Some("start_random_stream"), 1);
        assert_eq!(at[0].kind(), Kind::Task);

        drop(rx);
        handle.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leaky_send_error_ignored_spins() {
        let guard = leaky().verify_none();
        let (tx, mut rx) = mpsc::channel::<u64>(1);
        let (handle, spawn_line) = start_careless_stream(tx);
        read_three(&mut rx).await;
        // The consumer drops its end, so every send now fails at once; the
        // producer ignores the error and loops for ever. No channel end needs
        // to be kept for this leak: the loop has no way out.
        drop(rx);

        let report = guard
            .check_async()
            .await
            .expect_err("the spinning producer leaks");

        let at = assert_only_site(&report, FILE, spawn_line, Some("start_careless_stream"), 1);
        assert_ne!(
            at[0].state(),
            State::Stuck,
            "a spinning task is not stuck: {report}"
        );
        assert!(at[0].polls_while_settling() > 1, "{report}");

        handle.abort();
        assert!(handle.await.unwrap_err().is_cancelled());
    }

    #[tokio::test]
    async fn fixed_select_on_done() {
        let guard = leakcheck::verify_none();
        let (tx, mut rx) = mpsc::channel::<u64>(1);
        let done = CancellationToken::new();
        let handle = start_stoppable_stream(tx, done.clone());
        read_three(&mut rx).await;

        // `rx` is still kept, as in the leaky form; the done signal is what
        // ends the producer.
        done.cancel();
        handle.await.unwrap();

        guard
            .check_async()
            .await
            .expect("the producer was stopped and joined");
        drop(rx);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fixed_receiver_dropped_and_send_error_stops_the_producer() {
        let guard = leakcheck::verify_none();
        let (tx, mut rx) = mpsc::channel::<u64>(1);
        let (handle, _) = start_random_stream(tx);
        read_three(&mut rx).await;

        // Walking away properly: the next send fails, and the producer stops
        // on the error.
        drop(rx);
        handle.await.unwrap();

        guard
            .check_async()
            .await
            .expect("the producer stopped on the send error");
    }
}

/// P3: a lock that is never released.
mod p3_lock_never_released {
    use super::*;

    #[derive(Default)]
    struct Stats {
        flushes: u64,
    }

    /// Starts a task that locks `stats` to record a flush. It signals
    /// `locking` in the poll in which it starts to wait for the lock.
    #[inline(never)]
    fn start_stats_writer(
        stats: Arc<Mutex<Stats>>,
        locking: oneshot::Sender<()>,
    ) -> (JoinHandle<()>, u32) {
        let write = async move {
            let _ = locking.send(());
            stats.lock().await.flushes += 1;
        };
        let spawn_line = line!() + 1;
        let handle = leakcheck::spawn(write);
        (handle, spawn_line)
    }

    /// The fix: the wait for the lock is bounded.
    #[inline(never)]
    fn start_patient_stats_writer(
        stats: Arc<Mutex<Stats>>,
        patience: Duration,
    ) -> JoinHandle<Result<(), Elapsed>> {
        leakcheck::spawn(async move {
            let mut stats = tokio::time::timeout(patience, stats.lock()).await?;
            stats.flushes += 1;
            Ok(())
        })
    }

    #[tokio::test]
    async fn leaky_guard_kept_alive_elsewhere() {
        let guard = leaky().verify_none();
        let stats = Arc::new(Mutex::new(Stats::default()));
        // The leak is real: the parent holds the lock until the end of the
        // test, so the writer's `lock().await` can never be granted.
        let held = stats.lock().await;
        let (locking, is_locking) = oneshot::channel();
        let (handle, spawn_line) = start_stats_writer(stats.clone(), locking);
        is_locking.await.unwrap();

        let report = guard.check_async().await.expect_err("the writer leaks");

        let at = assert_only_site(&report, FILE, spawn_line, Some("start_stats_writer"), 1);
        assert_eq!(at[0].state(), State::Waiting, "{report}");

        drop(held);
        handle.await.unwrap();
        assert_eq!(stats.lock().await.flushes, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fixed_guard_released() {
        let guard = leakcheck::verify_none();
        let stats = Arc::new(Mutex::new(Stats::default()));
        let held = stats.lock().await;
        let (locking, is_locking) = oneshot::channel();
        let (handle, _) = start_stats_writer(stats.clone(), locking);
        is_locking.await.unwrap();

        drop(held);
        handle.await.unwrap();

        guard
            .check_async()
            .await
            .expect("the writer got the lock and ended");
        assert_eq!(stats.lock().await.flushes, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn fixed_wait_bounded_by_a_timeout() {
        let guard = leakcheck::verify_none();
        let stats = Arc::new(Mutex::new(Stats::default()));
        // The lock is held throughout, as in the leaky form.
        let held = stats.lock().await;
        let handle = start_patient_stats_writer(stats.clone(), Duration::from_millis(100));

        // Paused time: the timeout fires as soon as the runtime is idle.
        assert!(handle.await.unwrap().is_err(), "the writer gives up");

        guard
            .check_async()
            .await
            .expect("the writer gave up and ended");
        drop(held);
    }
}

/// P4: a loop with no way out.
mod p4_loop_with_no_way_out {
    use super::*;

    /// Starts a metrics flusher that ticks for ever.
    #[inline(never)]
    fn start_ticker(period: Duration, flushes: Arc<AtomicU64>) -> (JoinHandle<()>, u32) {
        let tick = async move {
            loop {
                tokio::time::sleep(period).await;
                flushes.fetch_add(1, Ordering::Relaxed);
            }
        };
        let builder = leakcheck::task::Builder::new().name("metrics-flusher");
        let spawn_line = line!() + 1;
        let handle = builder.spawn(tick).expect("spawning a task does not fail");
        (handle, spawn_line)
    }

    /// The fix: every tick is raced with cancellation.
    #[inline(never)]
    fn start_cancellable_ticker(
        period: Duration,
        flushes: Arc<AtomicU64>,
        cancel: CancellationToken,
    ) -> JoinHandle<()> {
        let tick = async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(period) => {
                        flushes.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        };
        leakcheck::task::Builder::new()
            .name("metrics-flusher")
            .spawn(tick)
            .expect("spawning a task does not fail")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leaky_ticker() {
        let guard = leaky().verify_none();
        // The leak is real: the loop has no exit at all.
        let flushes = Arc::new(AtomicU64::new(0));
        let (handle, spawn_line) = start_ticker(Duration::from_millis(5), flushes.clone());

        let report = guard.check_async().await.expect_err("the ticker leaks");

        let at = assert_only_site(&report, FILE, spawn_line, Some("start_ticker"), 1);
        assert_eq!(at[0].name(), Some("metrics-flusher"));
        assert!(report.to_string().contains("metrics-flusher"), "{report}");
        assert_ne!(at[0].state(), State::Stuck, "{report}");

        handle.abort();
        assert!(handle.await.unwrap_err().is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn fixed_ticker_cancelled() {
        let guard = leakcheck::verify_none();
        let flushes = Arc::new(AtomicU64::new(0));
        let cancel = CancellationToken::new();
        let handle =
            start_cancellable_ticker(Duration::from_millis(5), flushes.clone(), cancel.clone());

        // Let it tick a few times on paused time.
        tokio::time::sleep(Duration::from_millis(22)).await;
        cancel.cancel();
        handle.await.unwrap();
        assert!(flushes.load(Ordering::Relaxed) >= 1);

        guard
            .check_async()
            .await
            .expect("the ticker was cancelled and joined");
    }
}

/// P5: the first answer wins, the others block.
mod p5_first_answer_wins {
    use super::*;

    /// Asks `n` replicas; each sends its index into `replies`.
    #[inline(never)]
    fn ask_replicas(n: usize, replies: mpsc::Sender<usize>) -> (Vec<JoinHandle<()>>, u32) {
        let mut handles = Vec::with_capacity(n);
        let mut site = 0;
        for replica in 0..n {
            let replies = replies.clone();
            let ask = async move {
                let _ = replies.send(replica).await;
            };
            let spawn_line = line!() + 1;
            handles.push(leakcheck::spawn(ask));
            site = spawn_line;
        }
        (handles, site)
    }

    #[tokio::test(start_paused = true)]
    async fn leaky_receiver_kept_after_first_reply() {
        let guard = leaky().verify_none();
        // Capacity 1: one reply fits in the buffer, the others wait for room.
        let (tx, mut rx) = mpsc::channel::<usize>(1);
        let (replicas, spawn_line) = ask_replicas(4, tx);
        let first = rx.recv().await.expect("one replica answers");
        assert!(first < 4);
        // The leak is real: `rx` is kept until the end of the test but never
        // read again. One more reply fills the freed slot and its replica
        // ends; the last two wait for room for ever.

        let report = guard.check_async().await.expect_err("two replicas leak");

        let at = assert_only_site(&report, FILE, spawn_line, Some("ask_replicas"), 2);
        assert!(at.iter().all(|s| s.state() == State::Waiting), "{report}");
        assert!(
            report.to_string().contains("2 tasks spawned at"),
            "{report}"
        );

        drop(rx);
        for replica in replicas {
            replica.await.unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fixed_capacity_for_every_reply() {
        let guard = leakcheck::verify_none();
        let (tx, mut rx) = mpsc::channel::<usize>(4);
        let (replicas, _) = ask_replicas(4, tx);
        let first = rx.recv().await.expect("one replica answers");
        assert!(first < 4);

        // Every send fits, so every replica ends although `rx` is kept.
        for replica in replicas {
            replica.await.unwrap();
        }

        guard.check_async().await.expect("every replica ended");
        drop(rx);
    }

    #[tokio::test]
    async fn fixed_receiver_dropped_after_first_reply() {
        let guard = leakcheck::verify_none();
        let (tx, mut rx) = mpsc::channel::<usize>(1);
        let (replicas, _) = ask_replicas(4, tx);
        rx.recv().await.expect("one replica answers");

        // The waiting sends fail, and the replicas end.
        drop(rx);
        for replica in replicas {
            replica.await.unwrap();
        }

        guard.check_async().await.expect("every replica ended");
    }
}

/// P6: work abandoned by a timeout.
mod p6_work_abandoned_by_a_timeout {
    use super::*;

    type Row = String;

    /// Starts a query on a worker task and returns a future that waits for
    /// it at most `limit`. The bug: on timeout, `timeout` drops the join
    /// handle, and dropping a handle does not cancel the task.
    #[inline(never)]
    fn query_with_timeout(
        mut db: mpsc::Receiver<Row>,
        limit: Duration,
        exit: ExitToken,
    ) -> (impl Future<Output = Result<Option<Row>, Elapsed>>, u32) {
        let query = async move {
            let _exit = exit;
            db.recv().await
        };
        let spawn_line = line!() + 1;
        let worker = leakcheck::spawn(query);
        let wait = async move {
            let joined = tokio::time::timeout(limit, worker).await?;
            Ok(joined.expect("the query does not panic"))
        };
        (wait, spawn_line)
    }

    /// The fix: the worker takes a cancellation token, and on timeout the
    /// caller cancels it and joins the worker before returning.
    #[inline(never)]
    fn query_with_cancelling_timeout(
        mut db: mpsc::Receiver<Row>,
        limit: Duration,
    ) -> impl Future<Output = Result<Option<Row>, Elapsed>> {
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let mut worker = leakcheck::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => None,
                row = db.recv() => row,
            }
        });
        async move {
            match tokio::time::timeout(limit, &mut worker).await {
                Ok(joined) => Ok(joined.expect("the query does not panic")),
                Err(elapsed) => {
                    cancel.cancel();
                    let _ = worker.await;
                    Err(elapsed)
                }
            }
        }
    }

    /// The other fix: the worker lives in a `JoinSet`, shut down on timeout.
    #[inline(never)]
    async fn query_in_join_set(
        mut db: mpsc::Receiver<Row>,
        limit: Duration,
    ) -> Result<Option<Row>, Elapsed> {
        let mut workers = JoinSet::new();
        workers.spawn_tracked(async move { db.recv().await });
        let outcome = tokio::time::timeout(limit, workers.join_next()).await;
        // Aborts whatever is left and waits until it has ended.
        workers.shutdown().await;
        outcome.map(|joined| joined.and_then(Result::ok).flatten())
    }

    #[tokio::test(start_paused = true)]
    async fn leaky_timeout_drops_the_handle() {
        let guard = leaky().verify_none();
        // The database connection: open, but it never answers. The leak is
        // real because `db` is kept until the end of the test, so the
        // worker's `recv` can never return.
        let (db, rows) = mpsc::channel::<Row>(1);
        let (exit, worker_exited) = exit_watch();
        let (query, spawn_line) = query_with_timeout(rows, Duration::from_millis(100), exit);
        assert!(query.await.is_err(), "the query times out");

        let report = guard
            .check_async()
            .await
            .expect_err("the abandoned worker leaks");

        let at = assert_only_site(&report, FILE, spawn_line, Some("query_with_timeout"), 1);
        assert_eq!(at[0].state(), State::Waiting, "{report}");

        drop(db);
        worker_exited.exited().await;
    }

    #[tokio::test(start_paused = true)]
    async fn fixed_worker_cancelled_on_timeout() {
        let guard = leakcheck::verify_none();
        let (db, rows) = mpsc::channel::<Row>(1);
        let query = query_with_cancelling_timeout(rows, Duration::from_millis(100));
        assert!(query.await.is_err(), "the query times out");

        guard
            .check_async()
            .await
            .expect("the worker was cancelled and joined");
        drop(db);
    }

    #[tokio::test(start_paused = true)]
    async fn fixed_worker_in_join_set() {
        let guard = leakcheck::verify_none();
        let (db, rows) = mpsc::channel::<Row>(1);
        assert!(query_in_join_set(rows, Duration::from_millis(100))
            .await
            .is_err());

        guard
            .check_async()
            .await
            .expect("the join set was shut down");
        drop(db);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fixed_worker_answers_in_time() {
        let guard = leakcheck::verify_none();
        let (db, rows) = mpsc::channel::<Row>(1);
        db.send("row 1".to_owned()).await.unwrap();
        let query = query_with_cancelling_timeout(rows, Duration::from_secs(60));
        assert_eq!(query.await.unwrap().as_deref(), Some("row 1"));

        guard
            .check_async()
            .await
            .expect("the worker answered and ended");
    }
}

/// P7: the reader of a channel that is never closed.
mod p7_reader_of_a_channel_never_closed {
    use super::*;

    /// A long-lived struct that owns the sending side of the event stream.
    struct EventBus {
        events: mpsc::UnboundedSender<u64>,
    }

    /// Starts a task that sums events until the stream closes.
    #[inline(never)]
    fn start_event_reader(mut events: mpsc::UnboundedReceiver<u64>) -> (JoinHandle<u64>, u32) {
        let read = async move {
            let mut total = 0;
            while let Some(event) = events.recv().await {
                total += event;
            }
            total
        };
        let spawn_line = line!() + 1;
        let handle = leakcheck::spawn(read);
        (handle, spawn_line)
    }

    fn publish(bus: &EventBus) {
        for event in 1..=3 {
            bus.events.send(event).unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leaky_sender_alive_in_a_struct() {
        let guard = leaky().verify_none();
        let (events, stream) = mpsc::unbounded_channel();
        // The leak is real: the bus, and the sender in it, lives until the
        // end of the test, so the stream never closes.
        let bus = EventBus { events };
        let (reader, spawn_line) = start_event_reader(stream);
        publish(&bus);

        let report = guard.check_async().await.expect_err("the reader leaks");

        assert_only_site(&report, FILE, spawn_line, Some("start_event_reader"), 1);

        drop(bus);
        assert_eq!(reader.await.unwrap(), 6);
    }

    #[tokio::test]
    async fn fixed_every_sender_dropped_then_joined() {
        let guard = leakcheck::verify_none();
        let (events, stream) = mpsc::unbounded_channel();
        let bus = EventBus { events };
        let (reader, _) = start_event_reader(stream);
        publish(&bus);

        drop(bus);
        assert_eq!(reader.await.unwrap(), 6);

        guard
            .check_async()
            .await
            .expect("the reader saw the end of the stream");
    }
}

/// P8: a worker pool that is never shut down.
mod p8_worker_pool_never_shut_down {
    use super::*;

    type Jobs = Arc<Mutex<mpsc::Receiver<u64>>>;

    /// Takes jobs from the shared queue until it is closed; sends each result.
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

    struct Pool {
        queue: mpsc::Sender<u64>,
        workers: Vec<JoinHandle<()>>,
    }

    impl Pool {
        async fn shutdown(self) {
            drop(self.queue);
            for worker in self.workers {
                worker.await.unwrap();
            }
        }
    }

    /// Starts `size` workers on one shared queue.
    #[inline(never)]
    fn start_pool(size: usize, results: mpsc::UnboundedSender<u64>) -> (Pool, u32) {
        let (queue, jobs) = mpsc::channel(16);
        let jobs: Jobs = Arc::new(Mutex::new(jobs));
        let mut workers = Vec::with_capacity(size);
        let mut site = 0;
        for _ in 0..size {
            let worker = work(jobs.clone(), results.clone());
            let spawn_line = line!() + 1;
            workers.push(leakcheck::spawn(worker));
            site = spawn_line;
        }
        (Pool { queue, workers }, site)
    }

    /// The fixed pool keeps its workers in a `JoinSet`.
    #[inline(never)]
    fn start_pool_in_join_set(
        size: usize,
        results: mpsc::UnboundedSender<u64>,
    ) -> (mpsc::Sender<u64>, JoinSet<()>) {
        let (queue, jobs) = mpsc::channel(16);
        let jobs: Jobs = Arc::new(Mutex::new(jobs));
        let mut workers = JoinSet::new();
        for _ in 0..size {
            workers.spawn_tracked(work(jobs.clone(), results.clone()));
        }
        (queue, workers)
    }

    async fn run_jobs(
        queue: &mpsc::Sender<u64>,
        results: &mut mpsc::UnboundedReceiver<u64>,
    ) -> u64 {
        for n in 1..=10 {
            queue.send(n).await.unwrap();
        }
        let mut total = 0;
        for _ in 1..=10 {
            total += results.recv().await.unwrap();
        }
        total
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leaky_pool_forgotten() {
        let guard = leaky().verify_none();
        let (results, mut finished) = mpsc::unbounded_channel();
        let (pool, spawn_line) = start_pool(4, results);
        assert_eq!(run_jobs(&pool.queue, &mut finished).await, 385);
        // The leak is real: the pool, and with it the queue's sender, stays
        // alive (as if owned by a long-lived service) but nobody shuts it
        // down, so the queue never closes and the workers wait for ever.

        let report = guard.check_async().await.expect_err("the workers leak");

        let at = assert_only_site(&report, FILE, spawn_line, Some("start_pool"), 4);
        assert!(at.iter().all(|s| s.kind() == Kind::Task));
        let text = report.to_string();
        assert!(text.contains("4 tasks spawned at"), "{text}");
        assert_eq!(report.sites(), 1);

        pool.shutdown().await;
    }

    #[tokio::test]
    async fn fixed_queue_closed_and_workers_joined() {
        let guard = leakcheck::verify_none();
        let (results, mut finished) = mpsc::unbounded_channel();
        let (queue, mut workers) = start_pool_in_join_set(4, results);
        assert_eq!(run_jobs(&queue, &mut finished).await, 385);

        drop(queue);
        while let Some(joined) = workers.join_next().await {
            joined.unwrap();
        }

        guard.check_async().await.expect("the pool was shut down");
    }
}

/// P9: a wait-with-timeout helper.
mod p9_wait_with_timeout_helper {
    use super::*;

    /// Starts `n` workers that each do their part, then meet at `barrier`.
    /// The bug: a worker that fails returns without arriving, so the barrier
    /// never fills. With `arrive_on_error`, the fixed workers arrive on every
    /// path.
    #[inline(never)]
    fn start_workers(
        barrier: Arc<Barrier>,
        n: usize,
        failing: usize,
        arrive_on_error: bool,
    ) -> Vec<JoinHandle<Result<usize, &'static str>>> {
        (0..n)
            .map(|worker| {
                let barrier = barrier.clone();
                leakcheck::spawn(async move {
                    let outcome = if worker == failing {
                        Err("disk full")
                    } else {
                        Ok(worker)
                    };
                    if outcome.is_ok() || arrive_on_error {
                        barrier.wait().await;
                    }
                    outcome
                })
            })
            .collect()
    }

    /// Waits at `barrier` for the workers, giving up after `limit`: like the
    /// Go helper that runs `wg.Wait()` on a goroutine and selects on a timer.
    /// The bug: on timeout the waiter task is left blocked at the barrier.
    #[inline(never)]
    fn wait_timeout(
        barrier: Arc<Barrier>,
        limit: Duration,
        exit: ExitToken,
    ) -> (impl Future<Output = bool>, u32) {
        let (done, is_done) = oneshot::channel::<()>();
        let wait = async move {
            let _exit = exit;
            barrier.wait().await;
            let _ = done.send(());
        };
        let spawn_line = line!() + 1;
        leakcheck::spawn(wait);
        let waited = async move { tokio::time::timeout(limit, is_done).await.is_ok() };
        (waited, spawn_line)
    }

    /// The fix: on timeout the helper aborts its waiter and joins it.
    #[inline(never)]
    fn wait_timeout_cancellable(
        barrier: Arc<Barrier>,
        limit: Duration,
    ) -> impl Future<Output = bool> {
        let mut waiter = leakcheck::spawn(async move {
            barrier.wait().await;
        });
        async move {
            match tokio::time::timeout(limit, &mut waiter).await {
                Ok(joined) => joined.is_ok(),
                Err(_) => {
                    waiter.abort();
                    let _ = waiter.await;
                    false
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn leaky_waiter_outlives_the_timeout() {
        let guard = leaky().verify_none();
        // Two workers and the helper's waiter meet here.
        let barrier = Arc::new(Barrier::new(3));
        let workers = start_workers(barrier.clone(), 2, 1, false);
        let (exit, waiter_exited) = exit_watch();
        let (waited, waiter_line) = wait_timeout(barrier.clone(), Duration::from_millis(100), exit);
        assert!(
            !waited.await,
            "worker 1 never arrives, so the wait times out"
        );
        // The leak is real: worker 0 and the waiter hold the barrier, which
        // still needs one more arrival, and none is coming. (The test keeps a
        // clone only to clean up.)

        let report = guard.check_async().await.expect_err("the waiter leaks");

        let waiter = assert_site(&report, FILE, waiter_line, Some("wait_timeout"));
        assert_eq!(waiter.len(), 1);
        assert_eq!(waiter[0].state(), State::Waiting, "{report}");
        // Worker 0, blocked at the barrier too, is the other straggler.
        assert_eq!(report.stragglers().len(), 2, "{report}");
        assert_eq!(report.sites(), 2, "{report}");
        assert!(report.to_string().contains("start_workers"), "{report}");

        // Arrive in worker 1's place: the barrier fills and releases everyone.
        barrier.wait().await;
        let outcomes: Vec<_> = join_in_order(workers).await;
        assert_eq!(outcomes, vec![Ok(0), Err("disk full")]);
        waiter_exited.exited().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fixed_workers_always_arrive() {
        let guard = leakcheck::verify_none();
        let barrier = Arc::new(Barrier::new(3));
        let workers = start_workers(barrier.clone(), 2, 1, true);
        // The limit is generous: the wait ends as soon as everyone arrives.
        assert!(wait_timeout_cancellable(barrier, Duration::from_secs(60)).await);
        let outcomes: Vec<_> = join_in_order(workers).await;
        assert_eq!(outcomes, vec![Ok(0), Err("disk full")]);

        guard
            .check_async()
            .await
            .expect("every worker and the waiter ended");
    }

    #[tokio::test(start_paused = true)]
    async fn fixed_cancellable_helper_on_the_timeout_path() {
        let guard = leakcheck::verify_none();
        let barrier = Arc::new(Barrier::new(3));
        let mut workers = JoinSet::new();
        // Worker 1 still fails without arriving, so the barrier never fills.
        for worker in 0..2 {
            let barrier = barrier.clone();
            workers.spawn_tracked(async move {
                if worker == 0 {
                    barrier.wait().await;
                }
            });
        }
        let waited = wait_timeout_cancellable(barrier, Duration::from_millis(100)).await;
        assert!(!waited, "the wait times out");
        // The helper aborted and joined its waiter; the caller stops its own
        // workers the same way.
        workers.shutdown().await;

        guard
            .check_async()
            .await
            .expect("the waiter and the workers were stopped");
    }

    /// Awaits each handle in order.
    async fn join_in_order<T>(handles: Vec<JoinHandle<T>>) -> Vec<T> {
        let mut outcomes = Vec::with_capacity(handles.len());
        for handle in handles {
            outcomes.push(handle.await.unwrap());
        }
        outcomes
    }
}

/// P10: leaks at scale.
mod p10_leaks_at_scale {
    use super::*;

    const AT_SCALE: usize = 100_000;

    /// Starts one task per item, all from one spawn site.
    #[inline(never)]
    fn process_all<F>(items: usize, make: impl Fn(usize) -> F) -> (Vec<JoinHandle<()>>, u32)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut handles = Vec::with_capacity(items);
        let mut site = 0;
        for item in 0..items {
            let task = make(item);
            let spawn_line = line!() + 1;
            handles.push(leakcheck::spawn(task));
            site = spawn_line;
        }
        (handles, site)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leaky_100k_tasks_from_one_site() {
        let guard = leaky().verify_none();
        // The leak is real: every task awaits `pending()`, which nothing can
        // ever complete or wake.
        let (handles, spawn_line) = process_all(AT_SCALE, |_| std::future::pending::<()>());

        let started = Instant::now();
        let report = guard.check_async().await.expect_err("every task leaks");
        let took = started.elapsed();
        let text = report.to_string();

        assert_eq!(report.stragglers().len(), AT_SCALE);
        assert_site(&report, FILE, spawn_line, Some("process_all"));
        assert!(
            report
                .stragglers()
                .iter()
                .all(|s| s.location().line() == spawn_line),
            "every straggler comes from the one site"
        );
        assert_eq!(report.sites(), 1);
        assert!(text.contains("100000 tasks spawned at"), "{text}");
        assert!(
            text.len() < 10_000,
            "the report is not short: {} bytes",
            text.len()
        );
        assert!(took < Duration::from_secs(5), "detection took {took:?}");

        for handle in &handles {
            handle.abort();
        }
        for handle in handles {
            assert!(handle.await.unwrap_err().is_cancelled());
        }
    }

    #[tokio::test]
    async fn fixed_100k_tasks_all_finish() {
        let guard = leakcheck::verify_none();
        let cancel = CancellationToken::new();
        let (handles, _) = process_all(AT_SCALE, |_| {
            let cancel = cancel.clone();
            async move { cancel.cancelled().await }
        });
        cancel.cancel();
        for handle in handles {
            handle.await.unwrap();
        }

        let started = Instant::now();
        guard.check_async().await.expect("every task finished");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
