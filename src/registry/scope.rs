//! Scopes, and which scope is current.
//!
//! A scope owns the work spawned while it is current. Scopes form a tree: a
//! guard opened while another is current nests inside it, and a check looks
//! at its own scope and every scope nested in it, never at its siblings. That
//! is what keeps parallel tests apart.
//!
//! "Current" is a small stack kept per thread, and swapped in by a tracked
//! task or thread while it runs, so that the scope travels with the work
//! from worker thread to worker thread.

use super::slab::ShardedSlab;
use super::Record;
use crate::capture::SiteSamples;
use parking_lot::Mutex;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Weak};

/// What a scope stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScopeKind {
    /// Work spawned outside any guard.
    Root,
    /// Work declared long-lived with [`crate::background`].
    Background,
    /// The scope of one guard; the label is the test's name, when known.
    Guard { label: Option<String> },
}

pub(crate) struct Scope {
    pub(crate) kind: ScopeKind,
    parent: Option<Arc<Scope>>,
    pub(crate) live: ShardedSlab<Arc<Record>>,
    children: Mutex<Vec<Weak<Scope>>>,
    /// Set when the guard that opened the scope is gone.
    closed: AtomicBool,
    pub(crate) samples: SiteSamples,
    /// Instrument tasks with a tokio-metrics monitor each (detailed mode).
    pub(crate) detailed: bool,
    /// The kernel id of the thread that opened a guard scope.
    opened_on: Option<u32>,
}

/// Every scope that is still referenced, so a snapshot can find them all.
static ALL_SCOPES: Mutex<Vec<Weak<Scope>>> = Mutex::new(Vec::new());

static ROOT: LazyLock<Arc<Scope>> = LazyLock::new(|| Scope::create(ScopeKind::Root, None, false));
static BACKGROUND: LazyLock<Arc<Scope>> =
    LazyLock::new(|| Scope::create(ScopeKind::Background, None, false));

impl Scope {
    fn create(kind: ScopeKind, parent: Option<Arc<Scope>>, detailed: bool) -> Arc<Scope> {
        let scope = Arc::new(Scope {
            kind,
            parent,
            live: ShardedSlab::new(),
            children: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            samples: SiteSamples::default(),
            detailed,
            opened_on: crate::sys::current_tid(),
        });
        if let Some(parent) = &scope.parent {
            let mut children = parent.children.lock();
            children.retain(|child| child.strong_count() > 0);
            children.push(Arc::downgrade(&scope));
        }
        let mut all = ALL_SCOPES.lock();
        all.retain(|scope| scope.strong_count() > 0);
        all.push(Arc::downgrade(&scope));
        scope
    }

    /// Opens a guard scope nested in the scope that is current now. Its
    /// label is the enclosing guard's, so that a guard opened inside a task
    /// is named after the test rather than after a worker thread; outside any
    /// guard it is `thread_name`.
    pub(crate) fn open_guard(thread_name: Option<String>, detailed: bool) -> Arc<Scope> {
        let parent = current();
        let parent = match parent.kind {
            ScopeKind::Guard { .. } => Some(parent),
            ScopeKind::Root | ScopeKind::Background => None,
        };
        let label = parent
            .as_ref()
            .and_then(|parent| parent.label().map(str::to_owned))
            .or(thread_name);
        Scope::create(ScopeKind::Guard { label }, parent, detailed)
    }

    pub(crate) fn root() -> Arc<Scope> {
        ROOT.clone()
    }

    pub(crate) fn background() -> Arc<Scope> {
        BACKGROUND.clone()
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The test name of the nearest guard scope, for snapshots.
    pub(crate) fn label(&self) -> Option<&str> {
        match &self.kind {
            ScopeKind::Guard { label } => label.as_deref(),
            ScopeKind::Root | ScopeKind::Background => None,
        }
    }

    /// True when nothing is alive in this scope or any scope nested in it.
    /// Costs one lock per shard when there are no nested scopes.
    pub(crate) fn subtree_is_empty(&self) -> bool {
        if !self.live.is_empty() {
            return false;
        }
        self.live_children()
            .iter()
            .all(|child| child.subtree_is_empty())
    }

    /// Every live record in this scope and the scopes nested in it.
    pub(crate) fn collect_subtree(&self, out: &mut Vec<Arc<Record>>) {
        self.live.collect_into(out);
        for child in self.live_children() {
            child.collect_subtree(out);
        }
    }

    fn live_children(&self) -> Vec<Arc<Scope>> {
        self.children
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// Whether `self` is `ancestor` or nested in it.
    pub(crate) fn is_within(&self, ancestor: &Scope) -> bool {
        let mut scope = Some(self);
        while let Some(s) = scope {
            if std::ptr::eq(s, ancestor) {
                return true;
            }
            scope = s.parent.as_deref();
        }
        false
    }
}

/// The threads on which a guard is open now.
pub(crate) fn guard_threads() -> Vec<u32> {
    ALL_SCOPES
        .lock()
        .iter()
        .filter_map(Weak::upgrade)
        .filter(|scope| matches!(scope.kind, ScopeKind::Guard { .. }) && !scope.is_closed())
        .filter_map(|scope| scope.opened_on)
        .collect()
}

/// Every scope still referenced anywhere, root and background first.
pub(crate) fn all_scopes() -> Vec<Arc<Scope>> {
    let mut scopes = vec![Scope::root(), Scope::background()];
    scopes.extend(
        ALL_SCOPES
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|scope| !matches!(scope.kind, ScopeKind::Root | ScopeKind::Background)),
    );
    scopes
}

/// The scope context of one thread, or of one tracked thread or closure while
/// it runs: the scope it was started in, plus the guards opened inside it.
#[derive(Default)]
pub(crate) struct ScopeContext {
    base: Option<Arc<Scope>>,
    guards: GuardStack,
    /// The task frame that was on top when this context was installed (its
    /// address, never read through): a task polled after that, nested in
    /// the same call, is more recent and wins; this context wins over that
    /// frame and older ones. `None` until first installed.
    over_frame: Option<usize>,
}

impl ScopeContext {
    /// The context a tracked unit of work starts with.
    pub(crate) fn inherit(scope: Arc<Scope>) -> Self {
        Self {
            base: Some(scope),
            guards: GuardStack::new(),
            over_frame: None,
        }
    }

    fn current(&mut self) -> Option<Arc<Scope>> {
        self.guards.top().or(self.base.as_ref()).cloned()
    }
}

/// The guards opened in one context and not yet dropped, innermost last.
/// One pointer until a guard is opened: every task's record keeps one, and
/// hardly any task opens a guard.
#[derive(Default)]
#[expect(
    clippy::box_collection,
    reason = "one pointer in every record, where a `Vec` would be three"
)]
pub(crate) struct GuardStack(Option<Box<Vec<Arc<Scope>>>>);

impl GuardStack {
    pub(crate) const fn new() -> Self {
        Self(None)
    }

    fn push(&mut self, scope: Arc<Scope>) {
        self.0.get_or_insert_with(Box::default).push(scope);
    }

    fn remove(&mut self, scope: &Arc<Scope>) {
        if let Some(guards) = &mut self.0 {
            if let Some(at) = guards.iter().rposition(|entry| Arc::ptr_eq(entry, scope)) {
                guards.remove(at);
            }
        }
    }

    /// The innermost open guard. A guard dropped on another thread cannot
    /// reach the stack it was pushed on; it marks its scope closed, and the
    /// stale entry is dropped here.
    fn top(&mut self) -> Option<&Arc<Scope>> {
        let guards = self.0.as_mut()?;
        while guards.last().is_some_and(|scope| scope.is_closed()) {
            guards.pop();
        }
        guards.last()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |guards| guards.len())
    }
}

/// The context of a tracked task during one poll, on the polling thread's
/// stack: its spawn scope, borrowed from its record, and the guards opened
/// inside it, borrowed from the task.
struct TaskFrame<'a> {
    /// Who is polled: an address the caller chose, for [`is_polling`].
    owner: usize,
    scope: &'a Arc<Scope>,
    guards: RefCell<&'a mut GuardStack>,
}

impl TaskFrame<'_> {
    fn current(&self) -> Option<Arc<Scope>> {
        let mut guards = self.guards.try_borrow_mut().ok()?;
        Some(guards.top().unwrap_or(self.scope).clone())
    }
}

thread_local! {
    static CONTEXT: RefCell<ScopeContext> = const {
        // The thread's own context, installed over no frame.
        RefCell::new(ScopeContext { base: None, guards: GuardStack::new(), over_frame: Some(0) })
    };
    /// The innermost [`TaskFrame`] being polled on this thread, or null:
    /// entering a poll is one swap of this pointer, which the poll's end
    /// (or unwind) puts back, so it only ever points at a live frame.
    static TOP_FRAME: Cell<*const TaskFrame<'static>> = const { Cell::new(std::ptr::null()) };
}

fn top_frame() -> *const TaskFrame<'static> {
    TOP_FRAME.try_with(Cell::get).unwrap_or(std::ptr::null())
}

/// Runs `f` on this thread's context: the innermost task frame when it is
/// more recent than the installed context, otherwise the installed context.
fn with_current<R>(
    on_frame: impl FnOnce(&TaskFrame<'_>) -> R,
    on_context: impl FnOnce(&mut ScopeContext) -> R,
) -> Option<R> {
    let top = top_frame();
    CONTEXT
        .try_with(|context| {
            let mut context = context.try_borrow_mut().ok()?;
            if !top.is_null() && context.over_frame != Some(top as usize) {
                drop(context);
                // SAFETY: `TOP_FRAME` only holds the address of a frame on
                // the stack of a `with_task_context` call still running on
                // this thread (see there), and is not shared with others.
                Some(on_frame(unsafe { &*top }))
            } else {
                Some(on_context(&mut context))
            }
        })
        .ok()
        .flatten()
}

/// The scope that new work is charged to on this thread right now.
pub(crate) fn current() -> Arc<Scope> {
    with_current(|frame| frame.current(), ScopeContext::current)
        .flatten()
        .unwrap_or_else(Scope::root)
}

/// Makes `scope` current on this thread until [`leave_guard`] removes it.
pub(crate) fn enter_guard(scope: &Arc<Scope>) {
    with_current(
        |frame| {
            if let Ok(mut guards) = frame.guards.try_borrow_mut() {
                guards.push(scope.clone());
            }
        },
        |context| context.guards.push(scope.clone()),
    );
}

/// Removes `scope` from this thread's stack wherever it is, so guards may be
/// dropped out of order, and marks it closed for stacks on other threads.
pub(crate) fn leave_guard(scope: &Arc<Scope>) {
    scope.close();
    with_current(
        |frame| {
            if let Ok(mut guards) = frame.guards.try_borrow_mut() {
                guards.remove(scope);
            }
        },
        |context| context.guards.remove(scope),
    );
}

/// Installs `context` as this thread's scope context and returns the one it
/// replaces, for callers that cannot wrap the work in [`with_context`]. A
/// context handed back later keeps its place among task frames.
#[cfg_attr(
    not(any(tokio_unstable, all(feature = "thread-hook", target_os = "linux"))),
    allow(dead_code)
)]
pub(crate) fn replace_context(mut context: ScopeContext) -> ScopeContext {
    if context.over_frame.is_none() {
        context.over_frame = Some(top_frame() as usize);
    }
    CONTEXT
        .try_with(|current| {
            current
                .try_borrow_mut()
                .map(|mut current| std::mem::replace(&mut *current, context))
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

/// Runs `f` with `context` installed as this thread's scope context, then
/// puts the previous context back, also when `f` panics.
pub(crate) fn with_context<R>(context: &mut ScopeContext, f: impl FnOnce() -> R) -> R {
    struct Restore<'a> {
        saved: &'a mut ScopeContext,
    }
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            swap(self.saved);
            self.saved.over_frame = None;
        }
    }
    fn swap(context: &mut ScopeContext) {
        let _ = CONTEXT.try_with(|current| {
            if let Ok(mut current) = current.try_borrow_mut() {
                std::mem::swap(&mut *current, context);
            }
        });
    }

    context.over_frame = Some(top_frame() as usize);
    swap(context);
    let _restore = Restore { saved: context };
    f()
}

/// Whether this thread is inside the poll that [`with_task_context`] runs
/// for `owner`, with no other task's poll nested in it.
pub(crate) fn is_polling(owner: usize) -> bool {
    let top = top_frame();
    // SAFETY: as in `with_current`, `TOP_FRAME` is null or a live frame.
    !top.is_null() && unsafe { (*top).owner } == owner
}

/// Runs `f`, one poll of a tracked task, with the task's context current:
/// its spawn `scope` and `guards`, the guards opened inside it. Touches no
/// reference count; the previous context is current again afterwards, also
/// when `f` panics.
pub(crate) fn with_task_context<R>(
    owner: usize,
    scope: &Arc<Scope>,
    guards: &mut GuardStack,
    f: impl FnOnce() -> R,
) -> R {
    struct Restore(*const TaskFrame<'static>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = TOP_FRAME.try_with(|top| top.set(self.0));
        }
    }

    let frame = TaskFrame {
        owner,
        scope,
        guards: RefCell::new(guards),
    };
    let this = (&raw const frame).cast::<TaskFrame<'static>>();
    let Ok(previous) = TOP_FRAME.try_with(|top| top.replace(this)) else {
        return f();
    };
    // Declared after `frame`, so dropped before it: `TOP_FRAME` stops
    // pointing at the frame before the frame goes, on unwind too.
    let _restore = Restore(previous);
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard_scope() -> Arc<Scope> {
        Scope::create(ScopeKind::Guard { label: None }, None, false)
    }

    #[test]
    fn a_task_context_lends_its_scope_keeps_its_guards_and_is_taken_back() {
        let task_scope = guard_scope();
        let outer = guard_scope();
        enter_guard(&outer);
        let mut guards = GuardStack::new();
        let counts = Arc::strong_count(&task_scope);
        let inner = guard_scope();
        with_task_context(0, &task_scope, &mut guards, || {
            assert!(Arc::ptr_eq(&current(), &task_scope));
            assert_eq!(Arc::strong_count(&task_scope), counts, "lent, not counted");
            // A guard opened inside the task stays with the task.
            enter_guard(&inner);
            assert!(Arc::ptr_eq(&current(), &inner));
        });
        assert_eq!(guards.len(), 1);
        assert!(
            Arc::ptr_eq(&current(), &outer),
            "the thread's own context is back"
        );
        with_task_context(0, &task_scope, &mut guards, || {
            assert!(Arc::ptr_eq(&current(), &inner));
            leave_guard(&inner);
            assert!(Arc::ptr_eq(&current(), &task_scope));
        });
        assert_eq!(guards.len(), 0);
        // A context installed during a poll (as the task hooks do for a
        // task polled inside it) wins until it is handed back.
        let hooked = guard_scope();
        with_task_context(0, &task_scope, &mut guards, || {
            let saved = replace_context(ScopeContext::inherit(hooked.clone()));
            assert!(Arc::ptr_eq(&current(), &hooked));
            // A task polled inside that wins in turn.
            let mut nested = GuardStack::new();
            with_task_context(1, &outer, &mut nested, || {
                assert!(Arc::ptr_eq(&current(), &outer));
            });
            assert!(Arc::ptr_eq(&current(), &hooked));
            drop(replace_context(saved));
            assert!(Arc::ptr_eq(&current(), &task_scope));
        });
        assert_eq!(Arc::strong_count(&task_scope), counts);
        // Unwinding out of a poll restores the thread's context too.
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            with_task_context(0, &task_scope, &mut guards, || panic!("in a poll"))
        }));
        assert!(unwound.is_err());
        assert!(Arc::ptr_eq(&current(), &outer));
        assert_eq!(Arc::strong_count(&task_scope), counts);
        leave_guard(&outer);
    }
}
