//! The settle loop, as a state machine shared by the blocking and the async
//! check: each step asks the probes what is alive, once, and says whether
//! the scope is clean, has leaked, or deserves another look after a pause.
//!
//! It knows no probe by name: what is alive comes as [`Alive`], and a stuck
//! verdict is believed only once every probe confirms it.

use crate::options::Options;
use crate::probe::{Alive, Look, Probes};
use crate::registry::{Scope, State};
use crate::report::{LeakReport, Straggler};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The first pause between looks; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_micros(250);
const MAX_PAUSE: Duration = Duration::from_millis(50);
/// How long every straggler must look stuck, over at least two looks, before
/// the check gives up early. An aborted task looks stuck until a worker gets
/// round to dropping it, which takes microseconds, and the pauses between
/// looks let the runtime do it. On a loaded machine the grace grows: see
/// [`LATENESS_FACTOR`].
const STUCK_GRACE: Duration = Duration::from_millis(3);
/// The grace is at least this many times the worst lateness of the check's
/// own pauses: when this thread waits 20 ms for a core, a worker that has to
/// drop an aborted task may wait as long.
const LATENESS_FACTOR: u32 = 4;
/// Time the check's own pauses overslept does not count against the settle
/// budget (a starved machine starves the stragglers too), up to this many
/// budgets of wall time in all.
const MAX_BUDGETS: u32 = 4;
/// Counts are only weakly consistent: a multi-thread runtime still counts a
/// task for a moment after its `JoinHandle` has returned, and a thread that
/// returned lingers for a few milliseconds. Untracked work must be seen for
/// this long before it is reported, even with a zero budget.
const UNTRACKED_CONFIRM: Duration = Duration::from_millis(25);
/// The resolution of tokio's timer.
const TOKIO_TICK: Duration = Duration::from_millis(1);
/// Stragglers still there after this long (or a quarter of the budget, if
/// less) are likely to be reported: their creation backtraces start being
/// resolved on another thread, so that the report is ready when the wait
/// ends. Work that is only winding down has usually ended by then, so a
/// check that turns out clean seldom starts it.
const RESOLVE_AHEAD_AFTER: Duration = Duration::from_millis(25);

pub(crate) enum Step {
    Clean,
    Leaked(LeakReport),
    Wait(Duration),
}

pub(crate) struct Settle<'a> {
    scope: &'a Arc<Scope>,
    options: &'a Options,
    test: Option<&'a str>,
    probes: &'a mut Probes,
    budget: Duration,
    pause: Duration,
    /// Poll counts at the first look, to recognise tasks that spin.
    polls_at_start: HashMap<usize, u64>,
    /// The check blocks the only thread of a current-thread runtime, so tasks
    /// that are runnable there cannot run until it returns.
    runtime_blocked: bool,
    first_look: bool,
    /// Consecutive looks on which every straggler was stuck.
    stuck_looks: u32,
    /// The pause asked for before this look, and when the last look was.
    asked: Option<(Duration, Duration)>,
    /// How much later than asked the check's pauses ended, at worst.
    worst_lateness: Duration,
    /// How much later than asked they ended, in all.
    total_lateness: Duration,
    /// The resolution of the clock the caller sleeps on.
    timer_tick: Duration,
    /// When to start resolving the stragglers' backtraces ahead of the
    /// report; `None` once started.
    resolve_ahead_at: Option<Duration>,
}

impl<'a> Settle<'a> {
    pub(crate) fn new(
        scope: &'a Arc<Scope>,
        options: &'a Options,
        test: Option<&'a str>,
        probes: &'a mut Probes,
        budget: Duration,
        runtime_blocked: bool,
        on_tokio_time: bool,
    ) -> Self {
        Self {
            scope,
            options,
            test,
            probes,
            budget,
            pause: FIRST_PAUSE,
            polls_at_start: HashMap::new(),
            runtime_blocked,
            first_look: true,
            stuck_looks: 0,
            asked: None,
            worst_lateness: Duration::ZERO,
            total_lateness: Duration::ZERO,
            timer_tick: if on_tokio_time {
                TOKIO_TICK
            } else {
                Duration::ZERO
            },
            resolve_ahead_at: Some(RESOLVE_AHEAD_AFTER.min(budget / 4)),
        }
    }

    fn note_lateness(&mut self, elapsed: Duration) {
        if let Some((pause, at)) = self.asked.take() {
            // tokio's timer rounds a sleep up to its 1 ms tick: that is not
            // a starved thread.
            let late = elapsed
                .saturating_sub(at)
                .saturating_sub(pause)
                .saturating_sub(self.timer_tick);
            self.worst_lateness = self.worst_lateness.max(late);
            self.total_lateness += late;
        }
    }

    /// Keeps the stragglers that count: not ignored, and, when the check
    /// blocks the runtime, not in a state that only says they could not run
    /// (`cannot_run`). Returns them with how many were left unjudged.
    fn judge(
        &self,
        observed: impl Iterator<Item = Straggler>,
        cannot_run: &[State],
    ) -> (Vec<Straggler>, usize) {
        let mut unjudged = 0usize;
        let stragglers = observed
            .filter(|straggler| {
                let blocked = self.runtime_blocked && cannot_run.contains(&straggler.state());
                unjudged += usize::from(blocked);
                !blocked && !self.options.ignores(straggler)
            })
            .collect();
        (stragglers, unjudged)
    }

    /// Looks once, without waiting, for a test that is already panicking.
    /// Work that could not run while the test unwound (tasks of the runtime
    /// this check blocks that were woken, not yet started, or seen only
    /// through hooks) is left out, not blamed. `None` when nothing is left.
    pub(crate) fn after_panic(&mut self) -> Option<LeakReport> {
        let look = Look {
            scope: self.scope,
            runtime_blocked: self.runtime_blocked,
        };
        let now = crate::clock::precise_nanos();
        let observed = self.probes.look(&look).records.into_iter();
        let (stragglers, unjudged) = self.judge(
            observed.map(|record| Straggler::observe(record, now, None)),
            &[State::Runnable, State::NotStarted, State::Unknown],
        );
        if stragglers.is_empty() {
            return None;
        }
        let mut report = LeakReport::new(self.test.map(str::to_owned), stragglers, Duration::ZERO);
        let mut note =
            "the test panicked before its leak check, so the check did not wait".to_owned();
        if unjudged > 0 {
            note.push_str(&format!(
                ", and {unjudged} task(s) that could not run while the test unwound were not judged"
            ));
        }
        report.add_note(note);
        Some(report)
    }

    /// Looks once. `elapsed` is the time since the check began, on whatever
    /// clock the caller sleeps on.
    pub(crate) fn step(&mut self, elapsed: Duration) -> Step {
        let look = Look {
            scope: self.scope,
            runtime_blocked: self.runtime_blocked,
        };
        let mut alive = self.probes.look(&look);
        let accepted = alive
            .untracked_tasks
            .min(self.options.untracked_tasks_accepted());
        alive.untracked_tasks -= accepted;
        let untracked_clean = alive.nothing_untracked();
        let Alive {
            records,
            untracked_tasks,
            untracked_threads,
        } = alive;
        self.note_lateness(elapsed);
        if records.is_empty() && untracked_clean {
            return Step::Clean;
        }
        if self.first_look {
            self.first_look = false;
            self.polls_at_start = records
                .iter()
                .map(|r| (r.key(), r.activity.sample().polls))
                .collect();
        }
        let now = crate::clock::precise_nanos();
        let observed = records.into_iter().map(|record| {
            let polls = self.polls_at_start.get(&record.key()).copied();
            Straggler::observe(record, now, polls.map(|polls| (polls, elapsed)))
        });
        let (stragglers, unjudged) = self.judge(observed, &[State::Runnable, State::NotStarted]);
        if unjudged > 0 && stragglers.is_empty() && untracked_clean {
            crate::notice::Notice::WokenTasksNotJudged.print_once();
        }
        if stragglers.is_empty() && untracked_clean {
            return Step::Clean;
        }
        // Nothing can wake a stuck task, so waiting longer cannot help.
        let all_stuck = untracked_clean && stragglers.iter().all(|s| s.state() == State::Stuck);
        if all_stuck && self.probes.confirm_stuck(&look, &stragglers) {
            self.stuck_looks += 1;
        } else {
            self.stuck_looks = 0;
            if !all_stuck {
                self.probes.doubt_stuck();
            }
        }
        let grace = STUCK_GRACE.max(self.worst_lateness.saturating_mul(LATENESS_FACTOR));
        let proven = self.stuck_looks >= 2 && elapsed >= grace.min(self.budget);
        let spent = elapsed.saturating_sub(self.total_lateness);
        let out_of_time =
            spent >= self.budget || elapsed >= self.budget.saturating_mul(MAX_BUDGETS);
        let confirming = !untracked_clean && elapsed < UNTRACKED_CONFIRM;
        if proven || (out_of_time && !confirming) {
            let mut stragglers = stragglers;
            self.probes.excuse(&mut stragglers);
            if stragglers.is_empty() && untracked_clean {
                return Step::Clean;
            }
            let mut report = LeakReport::new(self.test.map(str::to_owned), stragglers, elapsed);
            report.set_untracked(untracked_tasks, untracked_threads);
            self.probes.explain(&mut report);
            if accepted > 0 {
                report.add_note(format!(
                    "{accepted} untracked task(s) on this runtime were accepted by \
                     `ignore_untracked_tasks` and left out; a count cannot tell them from an \
                     unrelated leak of the same size"
                ));
            }
            if self.runtime_blocked {
                report.add_note(format!(
                    "this check ran synchronously inside a current-thread runtime, so no task could run \
                     while it waited: {unjudged} woken task(s) were not judged, and a task aborted just \
                     before the check still looks alive; use `check_async().await` or `#[leak_check]`"
                ));
            }
            return Step::Leaked(report);
        }
        if self.resolve_ahead_at.is_some_and(|at| elapsed >= at) {
            self.resolve_ahead_at = None;
            if let Some(pending) = crate::report::resolve_ahead(&stragglers) {
                crate::probe::resolve_ahead(pending);
            }
        }
        let pause = self
            .pause
            .min(self.budget.saturating_sub(spent).max(FIRST_PAUSE));
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        self.asked = Some((pause, elapsed));
        Step::Wait(pause)
    }
}
