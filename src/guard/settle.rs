//! The settle loop, as a state machine shared by the blocking and the async
//! check: each step looks once, and says whether the scope is clean, has
//! leaked, or deserves another look after a pause.

use super::watch::Watch;
use crate::options::Options;
use crate::registry::{Record, Scope, State};
use crate::report::{LeakReport, Straggler};
use crate::runtime::{Probe, ProbeOutcome};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

pub(crate) enum Step {
    Clean,
    Leaked(LeakReport),
    Wait(Duration),
}

pub(crate) struct Settle<'a> {
    scope: &'a Arc<Scope>,
    options: &'a Options,
    test: Option<&'a str>,
    watch: &'a mut Watch,
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
    /// The runtime this check blocks, if any: a probe could never run there.
    blocked_runtime: Option<tokio::runtime::Id>,
    /// Probes sent to the runtimes of stuck-looking tasks, by runtime.
    probes: HashMap<tokio::runtime::Id, Probe>,
}

impl<'a> Settle<'a> {
    pub(crate) fn new(
        scope: &'a Arc<Scope>,
        options: &'a Options,
        test: Option<&'a str>,
        watch: &'a mut Watch,
        budget: Duration,
        runtime_blocked: bool,
        on_tokio_time: bool,
    ) -> Self {
        Self {
            scope,
            options,
            test,
            watch,
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
            blocked_runtime: runtime_blocked
                .then(|| tokio::runtime::Handle::try_current().ok().map(|h| h.id()))
                .flatten(),
            probes: HashMap::new(),
        }
    }

    /// Whether every runtime that runs one of `stragglers` has made progress
    /// since they were last seen stuck, so an abort or shutdown that was
    /// about to drop one of them has had its chance. Sends probes as needed.
    fn runtimes_caught_up(&mut self, stragglers: &[Straggler]) -> bool {
        let mut caught_up = true;
        for straggler in stragglers {
            let Some(runtime) = &straggler.record().runtime else {
                continue;
            };
            if !runtime.has_workers() || Some(runtime.id()) == self.blocked_runtime {
                // A current-thread runtime drops an aborted task only when
                // some thread drives it again: a driven one does that during
                // the pauses between looks, and for one that nobody drives
                // (or that this check blocks) waiting changes nothing.
                continue;
            }
            let probe = self
                .probes
                .entry(runtime.id())
                .or_insert_with(|| runtime.probe());
            match probe.outcome() {
                ProbeOutcome::Ran => {}
                ProbeOutcome::Pending | ProbeOutcome::Dropped => caught_up = false,
            }
        }
        caught_up
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

    /// Looks once. `elapsed` is the time since the check began, on whatever
    /// clock the caller sleeps on.
    pub(crate) fn step(&mut self, elapsed: Duration) -> Step {
        let mut records: Vec<Arc<Record>> = Vec::new();
        // The cheap test first: a clean scope is one lock per shard.
        if !self.scope.subtree_is_empty() {
            self.scope.collect_subtree(&mut records);
        }
        let untracked = self.watch.look(self.scope, self.runtime_blocked);
        self.note_lateness(elapsed);
        if records.is_empty() && untracked.is_clean() {
            return Step::Clean;
        }
        if self.first_look {
            self.first_look = false;
            self.polls_at_start = records
                .iter()
                .map(|r| (r.key(), r.activity.sample().polls))
                .collect();
        }
        let now = Instant::now();
        let mut unjudged = 0usize;
        let stragglers: Vec<Straggler> = records
            .into_iter()
            .map(|record| {
                let polls = self.polls_at_start.get(&record.key()).copied();
                Straggler::observe(record, now, polls.map(|polls| (polls, elapsed)))
            })
            .filter(|straggler| {
                let cannot_run = self.runtime_blocked
                    && matches!(straggler.state(), State::Runnable | State::NotStarted);
                unjudged += usize::from(cannot_run);
                !cannot_run && !self.options.ignores(straggler)
            })
            .collect();
        if unjudged > 0 && stragglers.is_empty() && untracked.is_clean() {
            crate::notice::Notice::WokenTasksNotJudged.print_once();
        }
        if stragglers.is_empty() && untracked.is_clean() {
            return Step::Clean;
        }
        // Nothing can wake a stuck task, so waiting longer cannot help.
        let all_stuck =
            untracked.is_clean() && stragglers.iter().all(|s| s.state() == State::Stuck);
        if all_stuck && self.runtimes_caught_up(&stragglers) {
            self.stuck_looks += 1;
        } else {
            self.stuck_looks = 0;
            if !all_stuck {
                // Start over: a later stuck verdict needs fresh evidence.
                self.probes.clear();
            }
        }
        let grace = STUCK_GRACE.max(self.worst_lateness.saturating_mul(LATENESS_FACTOR));
        let proven = self.stuck_looks >= 2 && elapsed >= grace.min(self.budget);
        let spent = elapsed.saturating_sub(self.total_lateness);
        let out_of_time =
            spent >= self.budget || elapsed >= self.budget.saturating_mul(MAX_BUDGETS);
        let confirming = !untracked.is_clean() && elapsed < UNTRACKED_CONFIRM;
        if proven || (out_of_time && !confirming) {
            let mut report = LeakReport::new(self.test.map(str::to_owned), stragglers, elapsed);
            report.set_untracked(untracked.tasks, untracked.threads);
            if self.runtime_blocked {
                report.add_note(format!(
                    "this check ran synchronously inside a current-thread runtime, so no task could run \
                     while it waited: {unjudged} woken task(s) were not judged, and a task aborted just \
                     before the check still looks alive; use `check_async().await` or `#[leak_check]`"
                ));
            }
            return Step::Leaked(report);
        }
        let pause = self
            .pause
            .min(self.budget.saturating_sub(spent).max(FIRST_PAUSE));
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        self.asked = Some((pause, elapsed));
        Step::Wait(pause)
    }
}
