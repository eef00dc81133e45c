//! What a guard watches besides its own tracked work: the runtime's count of
//! untracked tasks, and, when the OS-thread check is on, the process's
//! threads.

use crate::notice::Notice;
use crate::os_threads::ThreadBaseline;
use crate::registry::{self, Kind, Scope};
use crate::report::UntrackedThread;
use crate::runtime::RuntimeBaseline;
use std::collections::HashSet;
use std::sync::Arc;

/// The baselines a guard took when it opened.
pub(crate) struct Watch {
    runtime: Option<RuntimeBaseline>,
    threads: Option<ThreadBaseline>,
}

/// Untracked work seen on one look.
#[derive(Default)]
pub(crate) struct Untracked {
    pub(crate) tasks: usize,
    pub(crate) threads: Vec<UntrackedThread>,
}

impl Untracked {
    pub(crate) fn is_clean(&self) -> bool {
        self.tasks == 0 && self.threads.is_empty()
    }
}

impl Watch {
    pub(crate) fn open(scope: &Arc<Scope>, os_threads: bool) -> Self {
        Self {
            runtime: RuntimeBaseline::take(scope),
            threads: os_threads.then(ThreadBaseline::take),
        }
    }

    #[cfg_attr(
        not(all(tokio_unstable, feature = "taskdump", target_os = "linux")),
        allow(dead_code)
    )]
    pub(crate) fn runtime_handle(&self) -> Option<&tokio::runtime::Handle> {
        self.runtime.as_ref().map(RuntimeBaseline::handle)
    }

    /// Looks at untracked work.
    pub(crate) fn look(&mut self, scope: &Arc<Scope>, runtime_blocked: bool) -> Untracked {
        let mut seen = Untracked::default();
        if let Some(runtime) = &mut self.runtime {
            // A blocked current-thread runtime cannot run the woken tasks
            // inside its count, so the count cannot be judged there.
            if runtime_blocked {
                Notice::WokenTasksNotJudged.print_once();
            } else {
                match runtime.excess(scope) {
                    Some(excess) => seen.tasks = excess,
                    None => Notice::SharedRuntime.print_once(),
                }
            }
        }
        if let Some(threads) = &self.threads {
            seen.threads = threads.new_threads(|| {
                registry::all_records()
                    .iter()
                    .filter(|r| r.kind == Kind::Thread)
                    .filter_map(|r| r.tid.get())
                    .collect::<HashSet<u32>>()
            });
        }
        seen
    }
}
