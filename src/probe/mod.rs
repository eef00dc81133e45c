//! Probes: the ways a guard sees work that is still alive.
//!
//! Each probe is one file and one way of seeing:
//!
//! - [`tracked`]: the registry's view, every record filed under the guard's
//!   scope or a scope nested in it, whether a spawn wrapper or a hook put it
//!   there; it also vouches for a "stuck" verdict, by making sure each
//!   runtime involved has had the chance to drop an aborted task;
//! - [`runtime_count`]: tokio's count of tasks alive on the guard's runtime,
//!   less the tracked ones, for work spawned where nothing else sees it;
//! - [`task_hooks`]: tokio's task hooks, which file every task spawned on an
//!   instrumented runtime into the registry (`tokio_unstable`), and tokio's
//!   task dump, which adds where each leaked task is suspended (`taskdump`);
//! - [`thread_hook`]: every OS thread the process creates, by any code, filed
//!   into the registry by a `pthread_create` hook (Linux, glibc); as a probe
//!   it leaves out threads that are a runtime's or process-wide, never a
//!   test's;
//! - [`os_threads`]: the process's threads as `/proc` lists them, where the
//!   hook does not run.
//!
//! # Why this shape
//!
//! The guard asks every probe the same three things: what to remember when a
//! scope opens ([`Probe::open`]), what is alive now ([`Probe::look`]), and
//! what it adds to a report ([`Probe::annotate`]). The settle loop knows only
//! this interface, so a new probe is a new file plus one line in
//! [`Probes`], and never a change to the loop.
//!
//! The set is a struct with one field per probe rather than a list of trait
//! objects: a clean check looks once per probe on every test, and static
//! dispatch keeps that look free of indirect calls. A probe that has nothing
//! to watch for a guard (no runtime, a platform without `/proc`) is `None`
//! and costs one branch.
//!
//! Probes read the registry and write findings; they never import the guard,
//! and the registry never imports them.

pub(crate) mod os_threads;
pub(crate) mod runtime_count;
pub(crate) mod task_hooks;
pub(crate) mod thread_hook;
pub(crate) mod tracked;

use crate::registry::{Record, Scope};
use crate::report::{LeakReport, Straggler, UntrackedThread};
use std::future::Future;
use std::sync::Arc;

/// Resolves `pending` creation backtraces on a thread of leakcheck's own,
/// while the check that expects to report them waits. Only a head start: if
/// no thread can be had, the report resolves them itself.
///
/// No probe counts the thread as a test's work: the thread hook does not see
/// it created, and the OS-thread check knows its id before this returns.
pub(crate) fn resolve_ahead(pending: crate::capture::ResolveAhead) {
    let (marked, is_marked) = std::sync::mpsc::sync_channel::<()>(1);
    let spawned = thread_hook::not_hooked(|| {
        std::thread::Builder::new()
            .name(os_threads::SYMBOLS_THREAD_NAME.to_owned())
            .spawn(move || {
                let _own = os_threads::OwnThread::enter();
                let _ = marked.send(());
                pending.run();
            })
    });
    if spawned.is_ok() {
        // Returns once the thread is marked as leakcheck's, or has ended.
        let _ = is_marked.recv();
    }
}

/// What a probe may consider when a guard opens.
pub(crate) struct Opening<'a> {
    /// The guard's scope.
    pub(crate) scope: &'a Arc<Scope>,
    /// The OS-thread setting from [`Options`](crate::Options) or the
    /// environment; `None` is `auto`.
    pub(crate) os_threads: Option<bool>,
}

/// The circumstances of one look.
pub(crate) struct Look<'a> {
    pub(crate) scope: &'a Arc<Scope>,
    /// The check blocks the only thread of a current-thread runtime, so work
    /// that is runnable there cannot run until it returns.
    pub(crate) runtime_blocked: bool,
}

/// Everything the probes saw alive at one look.
#[derive(Default)]
pub(crate) struct Alive {
    /// Tracked and hooked work in the guard's scope and the scopes nested in it.
    pub(crate) records: Vec<Arc<Record>>,
    /// Tasks alive on the guard's runtime that nothing tracks.
    pub(crate) untracked_tasks: usize,
    /// Threads that appeared during the scope without being tracked.
    pub(crate) untracked_threads: Vec<UntrackedThread>,
}

impl Alive {
    /// True when no probe saw anything beyond the tracked records.
    pub(crate) fn nothing_untracked(&self) -> bool {
        self.untracked_tasks == 0 && self.untracked_threads.is_empty()
    }
}

/// One way of seeing live work. See the module docs.
pub(crate) trait Probe: Sized {
    /// What to remember when a guard opens; `None` when there is nothing for
    /// this probe to watch under this guard.
    fn open(opening: &Opening<'_>) -> Option<Self>;

    /// Adds what is alive now to `alive`. Probes look in the order of
    /// [`Probes`], so a later one may also refine what an earlier one found.
    fn look(&mut self, look: &Look<'_>, alive: &mut Alive);

    /// Called on a look at which every straggler looks stuck: whether that
    /// may be believed yet. A probe that knows of pending work that could
    /// still end one of them says no.
    fn confirms_stuck(&mut self, _look: &Look<'_>, _stragglers: &[Straggler]) -> bool {
        true
    }

    /// Called on a look at which something was not stuck: evidence gathered
    /// for an earlier verdict is stale.
    fn doubts_stuck(&mut self) {}

    /// Leaves out stragglers that turn out, on a closer look that is too
    /// dear for every look (a resolved backtrace), not to be the test's
    /// leak. Called once, when the check is about to report.
    fn excuse(&mut self, _stragglers: &mut Vec<Straggler>) {}

    /// Adds a note to a report about to be returned, on what this probe
    /// found when it looked closer in [`excuse`](Probe::excuse).
    fn explain(&self, _report: &mut LeakReport) {}

    /// Adds what only this probe knows to a report about to be returned by an
    /// async check.
    fn annotate(&self, _report: &mut LeakReport) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Declares [`Probes`], the set every guard opens, one field per probe.
macro_rules! probes {
    ($($field:ident: $probe:ty),* $(,)?) => {
        /// Every probe, as a guard holds them.
        pub(crate) struct Probes {
            $($field: Option<$probe>,)*
        }

        impl Probes {
            pub(crate) fn open(opening: &Opening<'_>) -> Self {
                Self { $($field: <$probe as Probe>::open(opening),)* }
            }

            pub(crate) fn look(&mut self, look: &Look<'_>) -> Alive {
                let mut alive = Alive::default();
                $(if let Some(probe) = &mut self.$field {
                    probe.look(look, &mut alive);
                })*
                alive
            }

            /// Whether every probe believes the stuck verdict; each is asked,
            /// so each can prepare its evidence for the next look.
            pub(crate) fn confirm_stuck(&mut self, look: &Look<'_>, stragglers: &[Straggler]) -> bool {
                let mut confirmed = true;
                $(if let Some(probe) = &mut self.$field {
                    confirmed &= probe.confirms_stuck(look, stragglers);
                })*
                confirmed
            }

            pub(crate) fn doubt_stuck(&mut self) {
                $(if let Some(probe) = &mut self.$field {
                    probe.doubts_stuck();
                })*
            }

            pub(crate) fn excuse(&mut self, stragglers: &mut Vec<Straggler>) {
                $(if let Some(probe) = &mut self.$field {
                    probe.excuse(stragglers);
                })*
            }

            pub(crate) fn explain(&self, report: &mut LeakReport) {
                $(if let Some(probe) = &self.$field {
                    probe.explain(report);
                })*
            }

            pub(crate) async fn annotate(&self, report: &mut LeakReport) {
                $(if let Some(probe) = &self.$field {
                    probe.annotate(report).await;
                })*
            }
        }
    };
}

probes! {
    tracked: tracked::Tracked,
    thread_hook: thread_hook::ThreadHook,
    runtime_count: runtime_count::RuntimeCount,
    os_threads: os_threads::OsThreads,
    task_dump: task_hooks::TaskDump,
}
