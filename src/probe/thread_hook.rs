//! The thread hook: every OS thread created in the process, by any code, is
//! filed under the scope that was current on the creating thread.
//!
//! On Linux with glibc, a `pthread_create` defined in this crate takes
//! precedence over libc's in the binary that links it, so every
//! `std::thread::Builder::spawn`, in the test or in any dependency, comes
//! here first. It registers the new thread with an unresolved creation
//! backtrace and forwards to libc's own `pthread_create`, found with
//! `dlsym(RTLD_NEXT, ..)`. The thread starts in a trampoline that puts the
//! scope in place for it and ties the record to a thread-local, whose
//! destructor removes it however the thread ends (return, panic,
//! `pthread_exit`).
//!
//! Until tracking starts (the first guard), the hook costs one relaxed load
//! and the forwarded call. It is compiled in with the default cargo feature
//! `thread-hook`, turned off at run time with `LEAKCHECK_THREAD_HOOK=off`,
//! and absent where it cannot work: other platforms, musl, and statically
//! linked binaries. A failed `dlsym` turns it off for the process.
//!
//! A plain thread has no `#[track_caller]` location: its site is the first of
//! the user's frames in its creation backtrace, resolved only for a report.
//! Its name is the one it gives itself through `pthread_setname_np`, which
//! the hook forwards the same way: that is how std names the threads it
//! starts, and unlike the kernel's copy it is never the creator's.
//!
//! As a probe, it refines what the registry's view found: threads of tokio
//! runtimes are the runtime's, never a test's (the blocking pool keeps an
//! idle thread for seconds after `spawn_blocking` returns), unless the test
//! built that runtime and it outlives the test: then its workers are
//! reported, at the line that built it. A thread
//! that process-wide lazy initialisation started (a `OnceLock`, `LazyLock`
//! or `Once`, such as rayon's global pool) outlives the test that touched it
//! first without being its leak.

use super::{os_threads, Alive, Look, Opening, Probe};
use crate::notice::Notice;
use crate::registry::{Kind, Record};
use crate::report::{LeakReport, Straggler};
use std::sync::Arc;

/// Whether plain threads are seen in this process.
pub(crate) fn active() -> bool {
    imp::active()
}

/// Runs `f`, which creates a thread that is not a test's work (a wrapper's
/// own tracked thread, or one of leakcheck's), with the hook told to skip.
pub(crate) fn not_hooked<R>(f: impl FnOnce() -> R) -> R {
    imp::not_hooked(f)
}

/// The probe: leaves out the threads that are never a test's leak.
pub(crate) struct ThreadHook {
    /// Workers of runtimes the test built and kept, found by `excuse`.
    runtime_workers: usize,
}

impl Probe for ThreadHook {
    fn open(_: &Opening<'_>) -> Option<Self> {
        active().then_some(ThreadHook { runtime_workers: 0 })
    }

    fn look(&mut self, _: &Look<'_>, alive: &mut Alive) {
        // The thread running the check is busy checking, not leaking: a
        // guard may be moved to, and checked on, a thread of its own scope.
        let me = crate::sys::current_tid();
        alive.records.retain(|record| {
            let checking = is_hooked_thread(record) && me.is_some() && record.tid.get() == me;
            !checking && (!is_runtime_thread(record) || outlives_the_test(record))
        });
    }

    fn excuse(&mut self, stragglers: &mut Vec<Straggler>) {
        self.runtime_workers = 0;
        stragglers.retain(|straggler| {
            if !is_hooked_thread(straggler.record()) {
                return true;
            }
            if started_by_lazy_init(straggler) {
                Notice::ProcessWideThread.print_once();
                return false;
            }
            // A worker of a runtime that the test built and did not drop:
            // the runtime is the leak, reported where it was built.
            if outlives_the_test(straggler.record()) {
                self.runtime_workers += 1;
                return true;
            }
            // A runtime's thread that its name did not give away.
            if started_by_a_runtime(straggler) {
                return false;
            }
            true
        });
    }

    fn explain(&self, report: &mut LeakReport) {
        if self.runtime_workers > 0 {
            report.add_note(format!(
                "{} of these threads are workers of a tokio runtime built during the test and \
                 still alive at its check, shown where it was built: drop the runtime (or call \
                 `shutdown_timeout`) before the check",
                self.runtime_workers
            ));
        }
    }
}

fn is_hooked_thread(record: &Record) -> bool {
    record.hooked && record.kind == Kind::Thread
}

/// Whether `record` is a plain thread of a tokio runtime: the runtime's
/// work, not a test's, wherever it was created. Snapshots and the at-exit
/// check leave these out too.
pub(crate) fn is_runtime_thread(record: &Arc<Record>) -> bool {
    is_hooked_thread(record) && belongs_to_a_runtime(record)
}

/// A runtime's worker or blocking thread, known by the runtime's thread
/// hooks or by the name std gave it. Also names the record after the
/// thread, which std does only once the thread runs.
///
/// The name is the one the thread gave itself through `pthread_setname_np`,
/// which the hook also sees, not the kernel's: Linux gives a new thread its
/// creator's name, so an unnamed thread started from a tokio worker would
/// look like tokio's, and a tokio thread started from a worker would look
/// unnamed.
fn belongs_to_a_runtime(record: &Arc<Record>) -> bool {
    // Not started yet: nothing to go on, so it is judged at the next look.
    let Some(tid) = record.tid.get() else {
        return false;
    };
    if os_threads::is_runtime_thread(tid) {
        return true;
    }
    let Some(name) = imp::given_name(tid) else {
        return false;
    };
    let runtime = os_threads::is_runtime_or_tool_thread(&name);
    let _ = record.name.set(name.into_boxed_str());
    runtime
}

/// Whether the thread is a worker of a multi-thread runtime built while its
/// scope was current: `Builder::build` starts the workers, which then live
/// exactly as long as the runtime, so one still alive once the check has
/// settled means the runtime outlived the test. The runtime's blocking
/// threads are started later, by `spawn_blocking`, and idle on for seconds
/// after their last task; they are never taken for this.
///
/// The test compares the entry address of `Builder::build` with those the
/// unwinder noted in the creation backtrace: no symbol is resolved, so a
/// clean check pays nothing for it.
fn builds_a_runtime(record: &Record) -> bool {
    type Build = fn(&mut tokio::runtime::Builder) -> std::io::Result<tokio::runtime::Runtime>;
    let build = tokio::runtime::Builder::build as Build as usize;
    is_hooked_thread(record)
        && record
            .backtrace()
            .is_some_and(|captured| captured.trace.passed_through(build))
}

/// Whether `record` is a worker of a runtime built during the test that is
/// not the runtime the check itself runs on.
fn outlives_the_test(record: &Record) -> bool {
    builds_a_runtime(record) && {
        let checking_on = tokio::runtime::Handle::try_current().ok().map(|h| h.id());
        let built = record.tid.get().and_then(imp::creators_runtime);
        checking_on.is_none() || built != checking_on
    }
}

/// Whether tokio's blocking pool, which starts every thread of a runtime,
/// made the `spawn` call: its frames come before the first of the user's
/// (any thread created on a runtime's worker has them further out).
fn started_by_a_runtime(straggler: &Straggler) -> bool {
    straggler.backtrace().is_some_and(|trace| {
        let frames = trace.all_frames();
        let inner = frames.iter().take_while(|frame| frame.is_hidden());
        inner.into_iter().any(|frame| {
            frame
                .function()
                .is_some_and(|name| name.contains("tokio::runtime::blocking::pool"))
                || frame.file().is_some_and(|file| {
                    let file = file.to_string_lossy();
                    file.contains("/tokio-1.") && file.ends_with("/runtime/blocking/pool.rs")
                })
        })
    })
}

/// Whether the creation backtrace runs through a one-time initialisation:
/// the thread is process-wide, started by whichever test came first.
fn started_by_lazy_init(straggler: &Straggler) -> bool {
    // Paths, not bare names: `FnOnce::call_once` is in every backtrace.
    const FUNCTIONS: &[&str] = &[
        "once::Once::call",
        "OnceLock<",
        "OnceLock::",
        "LazyLock<",
        "LazyLock::",
        "OnceCell<",
        "OnceCell::",
        "once_cell::",
        "lazy_static::",
    ];
    const FILES: &[&str] = &[
        "/sync/once.rs",
        "/sync/once_lock.rs",
        "/sync/lazy_lock.rs",
        "/sync/poison/once.rs",
        "/once_cell.rs",
    ];
    let Some(trace) = straggler.backtrace() else {
        return false;
    };
    // Only the callers of the code that created the thread count, up to the
    // test harness: std's own spawn path and libtest use one-time
    // initialisation too.
    let frames = trace.all_frames();
    let Some(first_shown) = frames.iter().position(|frame| !frame.is_hidden()) else {
        return false;
    };
    let callers = frames[first_shown..].iter().take_while(|frame| {
        !frame
            .function()
            .is_some_and(|name| name.contains("__rust_begin_short_backtrace"))
    });
    callers.into_iter().any(|frame| {
        frame
            .function()
            .is_some_and(|name| FUNCTIONS.iter().any(|f| name.contains(f)))
            || frame.file().is_some_and(|file| {
                let file = file.to_string_lossy();
                FILES.iter().any(|f| file.ends_with(f))
                    || file.contains("/once_cell-")
                    || file.contains("/lazy_static-")
            })
    })
}

#[cfg(all(
    feature = "thread-hook",
    target_os = "linux",
    target_env = "gnu",
    not(target_feature = "crt-static")
))]
mod imp {
    use crate::registry::{self, scope, Kind, Registration, Spawn};
    use parking_lot::Mutex;
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;
    use std::ffi::{c_char, c_void, CStr};
    use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

    type StartRoutine = extern "C" fn(*mut c_void) -> *mut c_void;
    type CreateFn = unsafe extern "C" fn(
        *mut libc::pthread_t,
        *const libc::pthread_attr_t,
        StartRoutine,
        *mut c_void,
    ) -> libc::c_int;

    /// libc's `pthread_create`: 0 before the look-up, 1 when it failed.
    static REAL: AtomicUsize = AtomicUsize::new(0);
    const LOOKUP_FAILED: usize = 1;

    const UNDECIDED: u8 = 0;
    const OFF: u8 = 1;
    const ON: u8 = 2;
    static ENABLED: AtomicU8 = AtomicU8::new(UNDECIDED);

    thread_local! {
        /// Set while a thread that is not a test's work is created.
        static SKIP: Cell<bool> = const { Cell::new(false) };
        /// The hooked thread's own registration, dropped when it exits.
        static OWN: RefCell<Option<Own>> = const { RefCell::new(None) };
    }

    /// What is known of hooked threads beyond their records, by tid, while
    /// they live.
    static SEEN: Mutex<Option<HashMap<u32, Seen>>> = Mutex::new(None);

    #[derive(Default)]
    struct Seen {
        /// The name the thread gave itself.
        name: Option<String>,
        /// The runtime whose context the creating thread was in, which for
        /// a runtime's workers is that runtime: `Builder::build` enters it
        /// to start them.
        runtime: Option<tokio::runtime::Id>,
    }

    pub(super) fn given_name(tid: u32) -> Option<String> {
        SEEN.lock().as_ref()?.get(&tid)?.name.clone()
    }

    pub(super) fn creators_runtime(tid: u32) -> Option<tokio::runtime::Id> {
        SEEN.lock().as_ref()?.get(&tid)?.runtime
    }

    /// What a hooked thread holds until it exits.
    struct Own {
        _registration: Registration,
        tid: Option<u32>,
    }

    impl Drop for Own {
        fn drop(&mut self) {
            if let (Some(tid), Some(seen)) = (self.tid, SEEN.lock().as_mut()) {
                seen.remove(&tid);
            }
        }
    }

    /// The address of libc's own `name`, the next definition after this
    /// crate's, looked up once and kept in `cache`.
    fn next_definition(cache: &AtomicUsize, name: &CStr) -> Option<usize> {
        let mut found = cache.load(Ordering::Acquire);
        if found == 0 {
            // SAFETY: `RTLD_NEXT` with a NUL-terminated symbol name; the
            // result is checked before use.
            let symbol = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
            found = if symbol.is_null() {
                LOOKUP_FAILED
            } else {
                symbol as usize
            };
            cache.store(found, Ordering::Release);
        }
        (found != LOOKUP_FAILED).then_some(found)
    }

    fn real() -> Option<CreateFn> {
        let found = next_definition(&REAL, c"pthread_create")?;
        // SAFETY: the address is libc's `pthread_create`, whose signature
        // `CreateFn` spells out.
        Some(unsafe { std::mem::transmute::<usize, CreateFn>(found) })
    }

    pub(super) fn active() -> bool {
        match ENABLED.load(Ordering::Relaxed) {
            ON => true,
            OFF => false,
            _ => {
                let on = crate::config::get()
                    .as_ref()
                    .map_or(true, |config| config.thread_hook)
                    && real().is_some();
                ENABLED.store(if on { ON } else { OFF }, Ordering::Relaxed);
                on
            }
        }
    }

    pub(super) fn not_hooked<R>(f: impl FnOnce() -> R) -> R {
        let was = SKIP.try_with(|skip| skip.replace(true)).unwrap_or(false);
        let result = f();
        let _ = SKIP.try_with(|skip| skip.set(was));
        result
    }

    /// What the trampoline needs to start the thread as asked.
    struct Start {
        routine: StartRoutine,
        arg: *mut c_void,
        registration: Registration,
        runtime: Option<tokio::runtime::Id>,
    }

    /// Registers a thread about to be created, if it is a test's.
    fn register(routine: StartRoutine, arg: *mut c_void) -> Option<Box<Start>> {
        if SKIP.try_with(Cell::get).unwrap_or(true) || !active() {
            return None;
        }
        let registration = registry::register_hooked(Spawn {
            kind: Kind::Thread,
            name: None,
            location: None,
            handle: None,
        });
        let runtime = tokio::runtime::Handle::try_current()
            .ok()
            .map(|handle| handle.id());
        Some(Box::new(Start {
            routine,
            arg,
            registration,
            runtime,
        }))
    }

    /// Creates a thread: libc's `pthread_create`, with the new thread
    /// registered in the current scope while tracking is on.
    ///
    /// # Safety
    ///
    /// As for libc's `pthread_create`, to which every argument is passed on.
    #[no_mangle]
    pub unsafe extern "C" fn pthread_create(
        thread: *mut libc::pthread_t,
        attr: *const libc::pthread_attr_t,
        routine: StartRoutine,
        arg: *mut c_void,
    ) -> libc::c_int {
        let Some(real) = real() else {
            return libc::EAGAIN;
        };
        if !registry::is_tracking() {
            // SAFETY: the caller's arguments, passed on unchanged.
            return unsafe { real(thread, attr, routine, arg) };
        }
        // Nothing may unwind into the C caller.
        let start = std::panic::catch_unwind(|| register(routine, arg))
            .ok()
            .flatten();
        let Some(start) = start else {
            // SAFETY: the caller's arguments, passed on unchanged.
            return unsafe { real(thread, attr, routine, arg) };
        };
        let start = Box::into_raw(start);
        // SAFETY: the caller's `thread` and `attr`; the trampoline takes
        // ownership of `start` in the new thread, and only there.
        let created = unsafe { real(thread, attr, trampoline, start.cast()) };
        if created != 0 {
            // SAFETY: no thread was created, so `start` is still ours.
            drop(unsafe { Box::from_raw(start) });
        }
        created
    }

    type SetNameFn = unsafe extern "C" fn(libc::pthread_t, *const c_char) -> libc::c_int;

    /// libc's `pthread_setname_np`: 0 before the look-up, 1 when it failed.
    static REAL_SETNAME: AtomicUsize = AtomicUsize::new(0);

    fn real_setname() -> Option<SetNameFn> {
        let found = next_definition(&REAL_SETNAME, c"pthread_setname_np")?;
        // SAFETY: the address is libc's `pthread_setname_np`, whose
        // signature `SetNameFn` spells out.
        Some(unsafe { std::mem::transmute::<usize, SetNameFn>(found) })
    }

    /// Names a thread: libc's `pthread_setname_np`, noting the name a hooked
    /// thread gives itself, which is how std names the threads it starts.
    ///
    /// # Safety
    ///
    /// As for libc's `pthread_setname_np`, to which every argument is passed
    /// on.
    #[no_mangle]
    pub unsafe extern "C" fn pthread_setname_np(
        thread: libc::pthread_t,
        name: *const c_char,
    ) -> libc::c_int {
        let Some(real) = real_setname() else {
            return libc::ENOSYS;
        };
        // SAFETY: the caller's arguments, passed on unchanged.
        let named = unsafe { real(thread, name) };
        // SAFETY: `pthread_self` has no preconditions.
        if named == 0 && !name.is_null() && thread == unsafe { libc::pthread_self() } {
            // SAFETY: libc accepted `name`, so it is a NUL-terminated string.
            let name = unsafe { CStr::from_ptr(name) }
                .to_string_lossy()
                .into_owned();
            let _ = std::panic::catch_unwind(|| note_name(name));
        }
        named
    }

    /// Notes the calling thread's name, if it is a hooked thread.
    fn note_name(name: String) {
        let tid = OWN
            .try_with(|own| own.try_borrow().ok().and_then(|own| own.as_ref()?.tid))
            .ok()
            .flatten();
        if let Some(tid) = tid {
            let mut seen = SEEN.lock();
            let seen = seen
                .get_or_insert_with(HashMap::new)
                .entry(tid)
                .or_default();
            seen.name = Some(name);
        }
    }

    /// The new thread's first function: puts the creator's scope in place,
    /// hands the registration to a thread-local, and runs the thread's own
    /// start routine.
    extern "C" fn trampoline(start: *mut c_void) -> *mut c_void {
        // SAFETY: `start` is the box `pthread_create` leaked for this thread
        // alone.
        let Start {
            routine,
            arg,
            registration,
            runtime,
        } = *unsafe { Box::from_raw(start.cast::<Start>()) };
        registration.record().tid.note_current();
        let tid = registration.record().tid.get();
        if let (Some(tid), Some(runtime)) = (tid, runtime) {
            let mut seen = SEEN.lock();
            seen.get_or_insert_with(HashMap::new).insert(
                tid,
                Seen {
                    name: None,
                    runtime: Some(runtime),
                },
            );
        }
        scope::replace_context(registration.context());
        // The thread-local's destructor unregisters the thread when it
        // exits, whether the routine returns or calls `pthread_exit`.
        let _ = OWN.try_with(|own| {
            *own.borrow_mut() = Some(Own {
                _registration: registration,
                tid,
            })
        });
        // Nothing that needs dropping lives in this frame any more, so a
        // forced unwind (`pthread_exit`, cancellation) may pass through it.
        routine(arg)
    }
}

/// Where the hook cannot work, it is not compiled and nothing is seen.
#[cfg(not(all(
    feature = "thread-hook",
    target_os = "linux",
    target_env = "gnu",
    not(target_feature = "crt-static")
)))]
mod imp {
    pub(super) fn active() -> bool {
        false
    }

    pub(super) fn given_name(_: u32) -> Option<String> {
        None
    }

    pub(super) fn creators_runtime(_: u32) -> Option<tokio::runtime::Id> {
        None
    }

    pub(super) fn not_hooked<R>(f: impl FnOnce() -> R) -> R {
        f()
    }
}
