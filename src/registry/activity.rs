//! What a tracked task has been doing: polls, wakes and live wakers.
//!
//! The task wrapper (`task::tracked`) writes these figures; the guard and the
//! report read them to tell a task that can never wake from one that merely
//! waits.

use parking_lot::Mutex;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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
    /// Live clones of the wrapper's waker, including the one the wrapper
    /// keeps for itself.
    wakers: AtomicUsize,
    /// When the last poll ended, on [`crate::clock::coarse_nanos`]'s clock.
    last_poll_end: AtomicU64,
    /// The runtime's own waker, which the wrapper's waker forwards to.
    pub(crate) runtime_waker: Mutex<Option<Waker>>,
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
    /// if there was one and no poll is running.
    pub(crate) last_poll_end: Option<u64>,
}

impl Activity {
    pub(crate) const fn new() -> Self {
        Self {
            polls: AtomicU64::new(0),
            wakes: AtomicU64::new(0),
            woken: AtomicBool::new(false),
            in_poll: AtomicBool::new(false),
            wakers: AtomicUsize::new(0),
            last_poll_end: AtomicU64::new(0),
            runtime_waker: Mutex::new(None),
        }
    }

    pub(crate) fn poll_started(&self) {
        self.in_poll.store(true, Ordering::Release);
        // Cleared before the inner poll so that a wake during it counts.
        self.woken.store(false, Ordering::Release);
    }

    pub(crate) fn poll_ended(&self) {
        self.last_poll_end
            .store(crate::clock::coarse_nanos(), Ordering::Relaxed);
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
                // The wrapper keeps one waker of its own while the task is alive.
                foreign_wakers: wakers.saturating_sub(1),
                last_poll_end: (polls > 0 && !in_poll).then_some(last),
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
