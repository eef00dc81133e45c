//! Tracked tasks counted per tokio runtime.
//!
//! tokio counts every task alive on a runtime; leakcheck knows which of them
//! it tracks. Keeping the second count beside the records lets a probe split
//! the runtime's count into tracked and untracked work without walking the
//! registry.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::runtime::Handle;

/// How many tracked tasks one runtime has alive, in every scope.
pub(crate) struct RuntimeTasks {
    id: tokio::runtime::Id,
    handle: Handle,
    tracked: AtomicUsize,
}

impl RuntimeTasks {
    pub(crate) fn task_started(&self) {
        self.tracked.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn task_ended(&self) {
        self.tracked.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn tracked(&self) -> usize {
        self.tracked.load(Ordering::Relaxed)
    }

    pub(crate) fn id(&self) -> tokio::runtime::Id {
        self.id
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Whether the runtime has worker threads of its own. A current-thread
    /// runtime runs only while some thread drives it.
    pub(crate) fn has_workers(&self) -> bool {
        self.handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread
    }
}

static RUNTIMES: Mutex<Option<HashMap<tokio::runtime::Id, Arc<RuntimeTasks>>>> = Mutex::new(None);

thread_local! {
    /// The last runtime this thread spawned onto: nearly every spawn goes to
    /// the same one as the one before, so the global map is rarely locked.
    static LAST_RUNTIME: std::cell::RefCell<Option<Arc<RuntimeTasks>>> =
        const { std::cell::RefCell::new(None) };
}

/// The counter of the runtime behind `handle`, or of the current runtime.
pub(crate) fn runtime_tasks(handle: Option<&Handle>) -> Option<Arc<RuntimeTasks>> {
    let current;
    let handle = match handle {
        Some(handle) => handle,
        None => {
            current = Handle::try_current().ok()?;
            &current
        }
    };
    let id = handle.id();
    let cached = LAST_RUNTIME
        .try_with(|last| {
            last.try_borrow()
                .ok()
                .and_then(|last| last.as_ref().filter(|tasks| tasks.id == id).cloned())
        })
        .ok()
        .flatten();
    if cached.is_some() {
        return cached;
    }
    let tasks = runtime_tasks_of(handle);
    let _ = LAST_RUNTIME.try_with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            *last = Some(tasks.clone());
        }
    });
    Some(tasks)
}

/// The counter of the runtime behind `handle`, created on first use.
pub(crate) fn runtime_tasks_of(handle: &Handle) -> Arc<RuntimeTasks> {
    let id = handle.id();
    let mut runtimes = RUNTIMES.lock();
    let runtimes = runtimes.get_or_insert_with(HashMap::new);
    if let Some(tasks) = runtimes.get(&id) {
        return tasks.clone();
    }
    // Forget runtimes that nothing refers to any more before adding one.
    runtimes.retain(|_, tasks| Arc::strong_count(tasks) > 1 || tasks.tracked() > 0);
    runtimes
        .entry(id)
        .or_insert_with(|| {
            Arc::new(RuntimeTasks {
                id,
                handle: handle.clone(),
                tracked: AtomicUsize::new(0),
            })
        })
        .clone()
}
