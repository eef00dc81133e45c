//! [`Straggler`]: one unit of work that was still alive at a check.

use super::Site;
use crate::capture::{display_path, Backtrace, ResolveAhead};
use crate::registry::{ActivitySample, Kind, Record, State};
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A task or thread that was still alive when a check or snapshot looked.
///
/// Reports and snapshots expose stragglers as data, for assertions and tools:
///
/// ```
/// use leakcheck::{Kind, Options, State};
///
/// let guard = Options::new().settle(std::time::Duration::ZERO).verify_none();
/// let (keep_alive, rx) = std::sync::mpsc::channel::<()>();
/// let worker = leakcheck::thread::Builder::new()
///     .name("listener".into())
///     .spawn(move || { let _ = rx.recv(); })?;
///
/// let report = guard.check().unwrap_err();
/// let straggler = &report.stragglers()[0];
/// assert_eq!(straggler.kind(), Kind::Thread);
/// assert_eq!(straggler.name(), Some("listener"));
/// assert_eq!(straggler.state(), State::Running);
/// assert_eq!(straggler.location().line(), line!() - 7); // the `.spawn(` line
///
/// drop(keep_alive);
/// worker.join().unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Straggler {
    record: Arc<Record>,
    age: Duration,
    idle: Option<Duration>,
    state: State,
    activity: ActivitySample,
    polls_while_settling: u64,
    backtrace: OnceLock<Option<Backtrace>>,
    site: OnceLock<Site>,
    suspended_at: Option<Arc<str>>,
    detail: Option<Detail>,
}

impl Straggler {
    /// Observes `record` at `now`, read on [`crate::clock::precise_nanos`].
    /// `settling` is the poll count seen when the check began and the time
    /// since, to tell a spinning task from one that waits on something.
    pub(crate) fn observe(
        record: Arc<Record>,
        now: u64,
        settling: Option<(u64, Duration)>,
    ) -> Self {
        let activity = record.activity.sample();
        let polls_while_settling = settling.map_or(0, |(p, _)| activity.polls.saturating_sub(p));
        let spins = settling.is_some_and(|(_, window)| spins(polls_while_settling, window));
        let state = if !record.kind.is_async() {
            State::Running
        } else if record.hooked {
            // The poll hooks count polls, but the waker is not visible.
            match activity.state() {
                State::Running | State::NotStarted => activity.state(),
                _ if spins => State::Busy,
                _ => State::Unknown,
            }
        } else if spins && activity.state() != State::Stuck {
            State::Busy
        } else {
            activity.state()
        };
        // Read now, with the rest: the task may run again later.
        let detail = record.monitor.as_ref().map(|monitor| Detail {
            metrics: monitor.cumulative(),
        });
        let age = Duration::from_nanos(now.saturating_sub(record.spawned_at));
        // Idle time is the time since the last poll ended, read on the
        // coarse clock that poll's end was read on (so it is never negative),
        // and never more than the age, whichever way the clocks' ticks fall.
        let idle = activity.last_poll_end.map(|end| {
            Duration::from_nanos(crate::clock::coarse_nanos().saturating_sub(end)).min(age)
        });
        Self {
            age,
            idle,
            record,
            state,
            activity,
            polls_while_settling,
            backtrace: OnceLock::new(),
            site: OnceLock::new(),
            suspended_at: None,
            detail,
        }
    }

    pub(crate) fn record(&self) -> &Arc<Record> {
        &self.record
    }

    /// Seen only through tokio's task hooks: spawned without a wrapper.
    pub(crate) fn is_hooked(&self) -> bool {
        self.record.hooked
    }

    /// True when it was spawned through one of leakcheck's wrappers; false
    /// for work seen only through tokio's task hooks or the thread hook,
    /// such as a plain `std::thread::spawn` or a runtime's own thread that
    /// has not named itself yet.
    ///
    /// ```
    /// let before = leakcheck::snapshot();
    /// let (stop, stopped) = std::sync::mpsc::channel::<()>();
    /// let worker = leakcheck::thread::spawn(move || { let _ = stopped.recv(); });
    /// let snapshot = leakcheck::snapshot();
    /// assert!(snapshot.entries().iter().any(|s| s.spawned_through_wrapper()));
    /// # drop((before, stop)); worker.join().unwrap();
    /// ```
    pub fn spawned_through_wrapper(&self) -> bool {
        !self.record.hooked
    }

    /// Whether it is a task, a blocking task, a local task or a thread.
    pub fn kind(&self) -> Kind {
        self.record.kind
    }

    /// The name given at spawn, if any.
    pub fn name(&self) -> Option<&str> {
        self.record.name.get().map(|name| &**name)
    }

    /// The line that spawned it: the caller of the leakcheck wrapper, the
    /// spawn site tokio's task hooks give, or, for a plain thread seen
    /// through the thread hook, the first of the user's frames in its
    /// creation backtrace (resolved on first call).
    pub fn location(&self) -> &Site {
        self.site.get_or_init(|| match self.record.location {
            Some(location) => Site::from(location),
            None => self
                .backtrace()
                .and_then(|trace| {
                    let frame = trace.frames().into_iter().next()?;
                    let file = display_path(frame.file()?).into_owned();
                    Some(Site::new(file, frame.line()?, frame.column().unwrap_or(0)))
                })
                .unwrap_or_else(Site::unknown),
        })
    }

    /// How long before the observation it was spawned.
    pub fn age(&self) -> Duration {
        self.age
    }

    /// What it was doing; see [`State`].
    pub fn state(&self) -> State {
        self.state
    }

    /// How many times a task was polled (0 for blocking tasks and threads).
    pub fn polls(&self) -> u64 {
        self.activity.polls
    }

    /// How many times a task was woken (0 for blocking tasks and threads).
    pub fn wakes(&self) -> u64 {
        self.activity.wakes
    }

    /// How many times a task was polled while the check waited.
    pub fn polls_while_settling(&self) -> u64 {
        self.polls_while_settling
    }

    /// How long a task has been idle since its last poll ended, if it was
    /// ever polled, and not woken during that poll: a task that was is
    /// runnable, not idle, and the end of such a poll is not timed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let guard = leakcheck::Options::new()
    ///     .settle(std::time::Duration::from_millis(20))
    ///     .verify_none();
    /// let (_keep, never) = tokio::sync::oneshot::channel::<()>();
    /// let waiter = leakcheck::spawn(never);
    /// let report = guard.check_async().await.unwrap_err();
    /// // Polled once, then idle on the channel ever since.
    /// assert!(report.stragglers()[0].idle_for().is_some());
    /// waiter.abort();
    /// # }
    /// ```
    pub fn idle_for(&self) -> Option<Duration> {
        self.idle
    }

    /// tokio's id for a task, for matching with tokio's own tools.
    pub fn task_id(&self) -> Option<tokio::task::Id> {
        self.record.task_id.get().copied()
    }

    /// The name of the test whose scope it belongs to, when it belongs to one.
    pub fn test_name(&self) -> Option<&str> {
        self.record.scope.label()
    }

    /// tokio-metrics figures for a task spawned in detailed mode
    /// ([`Options::detailed`](crate::Options::detailed)).
    pub fn detail(&self) -> Option<&Detail> {
        self.detail.as_ref()
    }

    /// Where the task is suspended now, as tokio's task dump shows it: the
    /// counterpart of goleak's current stack. Only with the `taskdump`
    /// feature, `--cfg tokio_unstable` and Linux, from
    /// [`check_async`](crate::LeakGuard::check_async) on a runtime with one
    /// worker (with more, tokio's dump can hang the runtime); `None`
    /// otherwise.
    pub fn suspended_at(&self) -> Option<&str> {
        self.suspended_at.as_deref()
    }

    #[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
    pub(crate) fn set_suspended_at(&mut self, trace: &str) {
        self.suspended_at = Some(trace.into());
    }

    /// The creation backtrace, resolved on first call. `None` when
    /// `LEAKCHECK_BACKTRACE=off`.
    pub fn backtrace(&self) -> Option<&Backtrace> {
        self.backtrace
            .get_or_init(|| {
                let captured = self.record.backtrace()?;
                Some(captured.trace.resolve(captured.shared))
            })
            .as_ref()
    }
}

/// The creation backtraces of `stragglers` not resolved yet, for a check
/// that expects to report them to resolve on another thread while it
/// waits; `None` when there is nothing to resolve.
pub(crate) fn resolve_ahead(stragglers: &[Straggler]) -> Option<ResolveAhead> {
    crate::capture::resolve_ahead(stragglers.iter().filter_map(|s| s.record.backtrace()))
}

/// Polls per second above which a task is said to spin rather than wait: a
/// timer or a channel that fires every few milliseconds stays below it, a
/// `yield_now` loop or a loop that ignores send errors is far above.
const BUSY_POLLS_PER_SECOND: f64 = 500.0;
/// Fewer polls than this during a check never make a task busy.
const BUSY_MIN_POLLS: u64 = 10;

fn spins(polls: u64, window: Duration) -> bool {
    polls >= BUSY_MIN_POLLS && polls as f64 >= BUSY_POLLS_PER_SECOND * window.as_secs_f64()
}

/// What a task's tokio-metrics monitor measured, in detailed mode.
///
/// See [`Options::detailed`](crate::Options::detailed) for an example.
#[derive(Debug, Clone)]
pub struct Detail {
    metrics: tokio_metrics::TaskMetrics,
}

impl Detail {
    /// How many times the task was polled.
    pub fn polls(&self) -> u64 {
        self.metrics.total_poll_count
    }

    /// The mean time one poll took.
    pub fn mean_poll_duration(&self) -> Duration {
        self.metrics.mean_poll_duration()
    }

    /// How many polls took longer than tokio-metrics' slow-poll threshold
    /// (50 µs by default).
    pub fn slow_polls(&self) -> u64 {
        self.metrics.total_slow_poll_count
    }

    /// The total time the task sat idle, waiting to be woken.
    pub fn total_idle(&self) -> Duration {
        self.metrics.total_idle_duration
    }

    /// The total time the task waited in a run queue after being woken.
    pub fn total_scheduled(&self) -> Duration {
        self.metrics.total_scheduled_duration
    }
}

impl fmt::Debug for Straggler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Straggler")
            .field("kind", &self.kind())
            .field("name", &self.name())
            .field("location", &self.location())
            .field("age", &self.age)
            .field("state", &self.state)
            .field("polls", &self.polls())
            .field("wakes", &self.wakes())
            .finish_non_exhaustive()
    }
}
