//! What a tracked task has been doing: polls, wakes and live wakers.
//!
//! The task wrapper (`task::tracked`) writes these figures; the guard and the
//! report read them to tell a task that can never wake from one that merely
//! waits.

use std::cell::UnsafeCell;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::task::Waker;

/// What a straggler was doing when the check gave up on it.
///
/// Tasks spawned through leakcheck's wrappers get one of the first five states;
/// blocking tasks and threads have no waker, so they are [`State::Running`].
///
/// ```
/// use leakcheck::State;
/// assert_eq!(State::Stuck.to_string(), "stuck");
/// assert!(State::Stuck.is_proven_leak());
/// assert!(!State::Waiting.is_proven_leak());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Idle, not woken since its last poll, and no clone of its waker is
    /// alive anywhere: nothing can ever wake it. A proven leak.
    Stuck,
    /// Idle, with a waker held somewhere (a channel, a timer, a lock queue):
    /// it could still be woken.
    Waiting,
    /// Woken, and waiting for the runtime to poll it again.
    Runnable,
    /// Kept being polled while the check waited: it spins.
    Busy,
    /// Spawned, never polled.
    NotStarted,
    /// A blocking task or thread that has not returned, or a task inside a
    /// poll right now.
    Running,
    /// A task spawned outside leakcheck's wrappers and seen through tokio's
    /// task hooks: its waker is not visible, so its state is not known.
    Unknown,
}

impl State {
    /// True for [`State::Stuck`]: the task can never make progress again.
    pub fn is_proven_leak(self) -> bool {
        matches!(self, State::Stuck)
    }

    /// A sentence that says what the state means, for reports.
    pub fn explanation(self) -> &'static str {
        match self {
            State::Stuck => "idle, never woken since its last poll, and no live waker: nothing can ever wake it",
            State::Waiting => "idle; a waker is held somewhere (a channel, timer or lock), so it could still be woken",
            State::Runnable => "woken and waiting for its next poll",
            State::Busy => "kept being polled while the check waited: it spins",
            State::NotStarted => "spawned but never polled",
            State::Running => "still running its code",
            State::Unknown => "spawned without leakcheck's wrappers, so its waker is not visible",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Stuck => "stuck",
            State::Waiting => "waiting",
            State::Runnable => "runnable",
            State::Busy => "busy",
            State::NotStarted => "not yet started",
            State::Running => "running",
            State::Unknown => "unknown",
        })
    }
}

/// Counters kept by the task wrapper, readable from any thread.
pub(crate) struct Activity {
    polls: AtomicU64,
    wakes: AtomicU64,
    woken: AtomicBool,
    in_poll: AtomicBool,
    /// Live clones of the waker the wrapper hands the task; the one it lends
    /// for each poll is not counted. 32 bits, beside the two flags: each
    /// live clone is a waker somewhere in memory, and four billion of them
    /// would fill 64 GiB first.
    wakers: AtomicU32,
    /// When the last poll ended, on [`crate::clock::coarse_nanos`]'s clock,
    /// or [`WOKEN_IN_POLL`].
    last_poll_end: AtomicU64,
    /// The runtime's own waker, which the wrapper's waker forwards to.
    pub(crate) runtime_waker: ForwardWaker,
}

/// A consistent-enough reading of [`Activity`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ActivitySample {
    pub(crate) polls: u64,
    pub(crate) wakes: u64,
    pub(crate) woken: bool,
    pub(crate) in_poll: bool,
    pub(crate) foreign_wakers: usize,
    /// When the last poll ended, on [`crate::clock::coarse_nanos`]'s clock,
    /// if there was one, no poll is running, and the task was not woken
    /// during it.
    pub(crate) last_poll_end: Option<u64>,
}

/// In place of a poll's end time: the task was woken during that poll, so it
/// is runnable, not idle, and its next poll is due.
const WOKEN_IN_POLL: u64 = u64::MAX;

impl Activity {
    pub(crate) const fn new() -> Self {
        Self {
            polls: AtomicU64::new(0),
            wakes: AtomicU64::new(0),
            woken: AtomicBool::new(false),
            in_poll: AtomicBool::new(false),
            wakers: AtomicU32::new(0),
            last_poll_end: AtomicU64::new(0),
            runtime_waker: ForwardWaker::new(),
        }
    }

    pub(crate) fn poll_started(&self) {
        self.in_poll.store(true, Ordering::Release);
        // Cleared before the inner poll so that a wake during it counts.
        self.woken.store(false, Ordering::Release);
    }

    pub(crate) fn poll_ended(&self) {
        // A task woken during its poll (a future that yields by waking
        // itself, a wake from elsewhere) has no idle time to measure, and is
        // polled again soon: its end is not read, a quarter of what leakcheck
        // added to such a poll (B9).
        let end = if self.woken.load(Ordering::Relaxed) {
            WOKEN_IN_POLL
        } else {
            crate::clock::coarse_nanos()
        };
        self.last_poll_end.store(end, Ordering::Relaxed);
        // One poll at a time: the task's poller is the only writer.
        let polls = self.polls.load(Ordering::Relaxed);
        self.polls.store(polls + 1, Ordering::Release);
        self.in_poll.store(false, Ordering::Release);
    }

    pub(crate) fn woke(&self) {
        self.wakes.fetch_add(1, Ordering::Relaxed);
        self.woken.store(true, Ordering::Release);
    }

    pub(crate) fn waker_cloned(&self) {
        self.wakers.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn waker_dropped(&self) {
        self.wakers.fetch_sub(1, Ordering::Release);
    }

    /// Reads the figures as of one moment. A task being polled on another
    /// thread changes them while they are read; a reading that straddles a
    /// poll is taken again, and one that keeps straddling says the task is
    /// running, which it is.
    pub(crate) fn sample(&self) -> ActivitySample {
        for _ in 0..4 {
            let polls = self.polls.load(Ordering::Acquire);
            // The waker count before `woken`: a waker's wake sets `woken`
            // before its drop lowers the count, so a count without the clone
            // that did the waking always comes with `woken` seen set.
            let wakers = self.wakers.load(Ordering::Acquire);
            let woken = self.woken.load(Ordering::Acquire);
            let in_poll = self.in_poll.load(Ordering::Acquire);
            let wakes = self.wakes.load(Ordering::Relaxed);
            let last = self.last_poll_end.load(Ordering::Relaxed);
            if self.polls.load(Ordering::Acquire) != polls {
                continue;
            }
            return ActivitySample {
                polls,
                wakes,
                woken,
                in_poll,
                // The wrapper's own use of the waker is not counted.
                foreign_wakers: wakers as usize,
                last_poll_end: (polls > 0 && !in_poll && last != WOKEN_IN_POLL).then_some(last),
            };
        }
        ActivitySample {
            polls: self.polls.load(Ordering::Acquire),
            wakes: self.wakes.load(Ordering::Relaxed),
            woken: false,
            in_poll: true,
            foreign_wakers: 0,
            last_poll_end: None,
        }
    }
}

impl ActivitySample {
    /// The state this reading shows, before any comparison over time.
    pub(crate) fn state(&self) -> State {
        if self.in_poll {
            State::Running
        } else if self.polls == 0 {
            State::NotStarted
        } else if self.woken {
            State::Runnable
        } else if self.foreign_wakers == 0 {
            State::Stuck
        } else {
            State::Waiting
        }
    }
}

/// The waker a task's counting waker forwards to: written only by the task's
/// poller, read by every wake.
///
/// A poll finds the runtime's waker unchanged nearly always, and then reads
/// and writes nothing shared. Only when it must store another waker does it
/// wait for wakes under way to finish; a wake that starts meanwhile waits
/// for the store. Each wake costs two uncontended atomic operations, as a
/// lock would.
pub(crate) struct ForwardWaker {
    /// [`WRITING`] while the poller replaces the waker, plus [`READER`] for
    /// every wake reading it.
    state: AtomicUsize,
    waker: UnsafeCell<Option<Waker>>,
}

const WRITING: usize = 1;
const READER: usize = 2;

// SAFETY: `waker` is written only by `register`, whose caller guarantees a
// single writer, and only while `state` shows neither another writer nor a
// reader; `wake_by_ref` reads it only while its `READER` share keeps
// `WRITING` from being set. `Waker` is `Send + Sync`.
unsafe impl Sync for ForwardWaker {}

impl ForwardWaker {
    pub(crate) const fn new() -> Self {
        Self {
            state: AtomicUsize::new(0),
            waker: UnsafeCell::new(None),
        }
    }

    /// Makes `waker` the one wakes forward to, unless the stored one already
    /// wakes the same task.
    ///
    /// # Safety
    ///
    /// Only one thread at a time may call this: the task's poller, whose
    /// polls tokio never runs at once and orders one after the other.
    pub(crate) unsafe fn register(&self, waker: &Waker) {
        // SAFETY: the caller is the only writer, so no write races with this
        // read; wakes only read.
        let current = unsafe { &*self.waker.get() };
        if current
            .as_ref()
            .is_some_and(|stored| stored.will_wake(waker))
        {
            return;
        }
        let new = Some(waker.clone());
        if current.is_none() {
            // The first poll: no clone of the counting waker was handed out
            // before it, so nothing can be reading the slot yet.
            // SAFETY: the only writer, and no reader (see above).
            unsafe { *self.waker.get() = new };
            return;
        }
        let mut spins = 0u32;
        while self
            .state
            .compare_exchange_weak(0, WRITING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            backoff(&mut spins);
        }
        // SAFETY: `state` was 0 and is now `WRITING`: no wake is reading, and
        // none will read until `WRITING` is cleared below.
        let old = unsafe { std::mem::replace(&mut *self.waker.get(), new) };
        self.state.fetch_and(!WRITING, Ordering::Release);
        // Dropped outside the exclusive section: it may run the runtime's code.
        drop(old);
    }

    /// [`ForwardWaker::wake_by_ref`] for a wake made by the poller itself,
    /// during a poll: no share to take, since the only writer is this thread
    /// and it is not writing.
    ///
    /// # Safety
    ///
    /// Only from the thread that polls the task, while it polls the inner
    /// future (after [`ForwardWaker::register`] has returned).
    pub(crate) unsafe fn wake_by_ref_from_poller(&self) {
        // SAFETY: the caller is the only writer and is not writing; other
        // threads only read.
        if let Some(waker) = unsafe { &*self.waker.get() } {
            waker.wake_by_ref();
        }
    }

    /// Wakes the stored waker, if any, without consuming it.
    pub(crate) fn wake_by_ref(&self) {
        let seen = self.state.fetch_add(READER, Ordering::Acquire);
        if seen & WRITING != 0 {
            let mut spins = 0u32;
            while self.state.load(Ordering::Acquire) & WRITING != 0 {
                backoff(&mut spins);
            }
        }
        // SAFETY: `WRITING` is clear, and this wake's `READER` share keeps
        // the writer from setting it (it waits for `state` to be 0) until
        // the share is returned below.
        if let Some(waker) = unsafe { &*self.waker.get() } {
            // tokio's `wake_by_ref` only schedules the task; it never polls
            // it here, so the poller cannot be waiting on this share.
            waker.wake_by_ref();
        }
        self.state.fetch_sub(READER, Ordering::Release);
    }
}

/// Spins briefly, then yields: the other side's section is a few
/// instructions, unless its thread was preempted inside it.
fn backoff(spins: &mut u32) {
    if *spins < 64 {
        *spins += 1;
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::{Activity, ForwardWaker, State};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn counter() -> (Arc<Counter>, Waker) {
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        (counter.clone(), Waker::from(counter))
    }

    #[test]
    fn a_task_woken_during_its_poll_has_no_idle_time() {
        let activity = Activity::new();
        activity.poll_started();
        activity.poll_ended();
        let idle = activity.sample();
        assert_eq!(idle.state(), State::Stuck);
        assert!(idle.last_poll_end.is_some(), "idle since its poll ended");

        // Woken from inside the poll, as a future that yields by waking
        // itself is: runnable, and its poll's end is not read.
        activity.poll_started();
        activity.woke();
        activity.poll_ended();
        let runnable = activity.sample();
        assert_eq!(runnable.state(), State::Runnable);
        assert_eq!(runnable.last_poll_end, None);

        // Woken after its poll ended: idle until then, so the end is kept.
        activity.poll_started();
        activity.poll_ended();
        activity.woke();
        let woken_later = activity.sample();
        assert_eq!(woken_later.state(), State::Runnable);
        assert!(woken_later.last_poll_end.is_some());
    }

    #[test]
    fn wakes_reach_the_last_registered_waker_and_replaced_ones_are_dropped() {
        let forward = ForwardWaker::new();
        forward.wake_by_ref(); // nothing registered: a no-op
        let (first, first_waker) = counter();
        let (second, second_waker) = counter();
        // SAFETY: this thread is the only one registering.
        unsafe { forward.register(&first_waker) };
        // The same waker again keeps the stored clone.
        unsafe { forward.register(&first_waker.clone()) };
        assert_eq!(Arc::strong_count(&first), 3);
        forward.wake_by_ref();
        assert_eq!(first.0.load(Ordering::Relaxed), 1);
        unsafe { forward.register(&second_waker) };
        assert_eq!(
            Arc::strong_count(&first),
            2,
            "the replaced clone is dropped"
        );
        forward.wake_by_ref();
        assert_eq!(first.0.load(Ordering::Relaxed), 1);
        assert_eq!(second.0.load(Ordering::Relaxed), 1);
        drop(forward);
        assert_eq!(Arc::strong_count(&second), 2);
    }

    #[test]
    fn wakes_on_other_threads_while_the_poller_replaces_the_waker() {
        const WAKES: usize = if cfg!(miri) { 20 } else { 20_000 };
        let forward = Arc::new(ForwardWaker::new());
        let (first, first_waker) = counter();
        let (second, second_waker) = counter();
        // SAFETY: the main thread is the only one registering.
        unsafe { forward.register(&first_waker) };
        let wakers: Vec<_> = (0..2)
            .map(|_| {
                let forward = forward.clone();
                std::thread::spawn(move || {
                    for _ in 0..WAKES {
                        forward.wake_by_ref();
                    }
                })
            })
            .collect();
        for round in 0..WAKES {
            let waker = if round % 2 == 0 {
                &second_waker
            } else {
                &first_waker
            };
            // SAFETY: as above.
            unsafe { forward.register(waker) };
        }
        for thread in wakers {
            thread.join().unwrap();
        }
        let delivered = first.0.load(Ordering::Relaxed) + second.0.load(Ordering::Relaxed);
        assert_eq!(delivered, 2 * WAKES, "every wake reaches one waker");
        drop(forward);
        assert_eq!(Arc::strong_count(&first), 2);
        assert_eq!(Arc::strong_count(&second), 2);
    }
}
