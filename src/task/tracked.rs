//! The future wrapper behind every tracked task.
//!
//! It keeps the task's registration (dropping the wrapper unregisters, which
//! covers completion, panic, abort and runtime shutdown alike), installs the
//! task's scope context around each poll, and hands the inner future a waker
//! of its own so that the registry can tell a task nothing can wake from one
//! that merely waits.

use crate::registry::{self, Record, Registration, Spawn};
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

/// The task's future and its registration, and nothing else: tokio sizes a
/// task's cell in steps of 128 bytes, and a wrapper of the future plus one
/// pointer keeps a small task in the same step as without leakcheck. What
/// else a task needs (the guards opened inside it, its slot in the registry)
/// lives in its record.
pub(crate) struct Tracked<F> {
    body: Body<F>,
    /// `None` once the task has completed, and `body` with it has been
    /// dropped; until then, which of `body`'s fields is live is told by the
    /// record: the detailed one when the record has a monitor.
    registration: Option<Registration>,
}

/// The task's future, behind its counting waker. In detailed mode it is
/// boxed behind a tokio-metrics monitor too, which keeps a clone of the waker
/// it is polled with between polls, so it must sit outside the counting
/// layer, or every idle task would seem to hold a live waker. Boxed, so the
/// monitor's state does not make every task's cell bigger.
union Body<F> {
    /// Counted with the registration's record, which the wrapper passes in.
    plain: ManuallyDrop<F>,
    detailed: ManuallyDrop<Pin<Box<tokio_metrics::Instrumented<Counted<F>>>>>,
}

/// Polls `future` with a counting waker that stands for `record` and
/// forwards to the waker of `cx`.
///
/// # Safety
///
/// `record` must be an `Arc<Record>`'s pointer, and the caller must keep that
/// `Arc` alive for the whole call.
unsafe fn poll_counted<F: Future>(
    record: *const Record,
    future: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    // SAFETY: alive for the call (the caller's promise).
    let shared = unsafe { &*record };
    // SAFETY: only the task's poller gets here, one poll at a time.
    unsafe { shared.activity.runtime_waker.register(cx.waker()) };
    // The waker lent for the poll borrows the caller's reference to the
    // record, so lending it counts nothing; its clones take their own.
    // SAFETY: the pointer is an `Arc<Record>`'s, alive for the whole poll;
    // `ManuallyDrop` keeps the lent waker from releasing a count it does not
    // own.
    let lent =
        ManuallyDrop::new(unsafe { Waker::from_raw(RawWaker::new(record.cast::<()>(), &VTABLE)) });
    future.poll(&mut Context::from_waker(&lent))
}

/// The counting layer for detailed mode, where the monitor sits between the
/// wrapper and the future, so the record cannot be passed in.
pub(crate) struct Counted<F> {
    future: F,
    /// The record the counting waker stands for. Not counted: the
    /// [`Tracked`] around this layer keeps its registration, and with it the
    /// record, for as long as this layer lives (it drops its body, this layer
    /// with it, before the registration, and never polls it after `Ready`).
    record: *const Record,
}

// SAFETY: the pointer stands for a shared `&Record`, and `Record` is `Sync`.
unsafe impl<F: Send> Send for Counted<F> {}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `future` is never moved out of `self` (structural pinning);
        // the other fields are not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        // SAFETY: the registration around this layer holds the record while
        // this layer lives (see `record`).
        unsafe { poll_counted(this.record, future, cx) }
    }
}

impl<F> Tracked<F> {
    /// Registers `future` in the current scope. Returns the record too, so
    /// the caller can note tokio's task id once it has spawned.
    pub(crate) fn register(future: F, spawn: Spawn<'_>) -> (Self, Arc<Record>) {
        let registration = registry::register(spawn);
        let record = registration.record().clone();
        let body = match &record.monitor {
            Some(monitor) => Body {
                detailed: ManuallyDrop::new(Box::pin(monitor.instrument(Counted {
                    future,
                    record: Arc::as_ptr(&record),
                }))),
            },
            None => Body {
                plain: ManuallyDrop::new(future),
            },
        };
        let tracked = Tracked {
            body,
            registration: Some(registration),
        };
        (tracked, record)
    }

    /// Drops whichever of `body`'s fields is live.
    ///
    /// # Safety
    ///
    /// Call once, with `detailed` read from the registration's record (it
    /// tells the live field), and never touch `body` again.
    unsafe fn drop_body(&mut self, detailed: bool) {
        // SAFETY: the caller's promise; `detailed` was read from the record,
        // which set the field at registration.
        unsafe {
            if detailed {
                ManuallyDrop::drop(&mut self.body.detailed);
            } else {
                ManuallyDrop::drop(&mut self.body.plain);
            }
        }
    }
}

impl<F> Drop for Tracked<F> {
    fn drop(&mut self) {
        // Abort, panic, or runtime shutdown before completion: the future
        // goes first, then the registration (the detailed body's counting
        // layer points at its record).
        if let Some(registration) = &self.registration {
            let detailed = registration.record().monitor.is_some();
            // SAFETY: registered, so the body is live; this is its only drop.
            unsafe { self.drop_body(detailed) };
        }
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `body` is never moved out of `self` (structural pinning);
        // the registration is not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let Some(registration) = &mut this.registration else {
            panic!("a leakcheck task polled after it completed");
        };
        let (record, guards) = registration.poll_parts();
        let detailed = record.monitor.is_some();
        record.activity.poll_started();
        let body = &mut this.body;
        let result =
            crate::registry::scope::with_task_context(record.key(), &record.scope, guards, || {
                if detailed {
                    // SAFETY: the record has a monitor, so `detailed` is the
                    // live field; the box keeps its own pin.
                    unsafe { body.detailed.as_mut().poll(cx) }
                } else {
                    // SAFETY: no monitor, so `plain` is the live field,
                    // pinned with `self`; the registration holds `record`
                    // for the whole poll.
                    unsafe {
                        let future = Pin::new_unchecked(&mut *body.plain);
                        poll_counted(Arc::as_ptr(record), future, cx)
                    }
                }
            });
        record.activity.poll_ended();
        if result.is_ready() {
            // The future first, as tokio would drop it next; then unregister,
            // before tokio hands the output to the JoinHandle, so a check
            // right after `handle.await` never sees this task. Taken out
            // first, so a panicking drop of the future cannot reach the body
            // again through `Drop`, and still unregisters.
            let _registration = this.registration.take();
            // SAFETY: the body was live until now (registered), and with the
            // registration gone nothing touches it again.
            unsafe { this.drop_body(detailed) };
        }
        result
    }
}

// The waker is an `Arc<Record>` in disguise (the one lent for a poll owns
// no count of its own; see `Counted`). Each clone also bumps the
// record's waker count, which is how a task that nothing can wake is told
// apart from one whose waker sits in a channel or timer.
static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

unsafe fn clone(ptr: *const ()) -> RawWaker {
    let record = ptr.cast::<Record>();
    // SAFETY: `ptr` came from `Arc::into_raw` and this waker owns a count.
    unsafe {
        Arc::increment_strong_count(record);
        (*record).activity.waker_cloned();
    }
    RawWaker::new(ptr, &VTABLE)
}

unsafe fn wake(ptr: *const ()) {
    // SAFETY: as for `clone`; the count owned by this waker is released.
    unsafe {
        wake_by_ref(ptr);
        drop_waker(ptr);
    }
}

unsafe fn wake_by_ref(ptr: *const ()) {
    // SAFETY: the waker owns a strong count, or is the one lent for a poll,
    // during which the registration keeps the record alive.
    let record = ManuallyDrop::new(unsafe { Arc::from_raw(ptr.cast::<Record>()) });
    record.activity.woke();
    if crate::registry::scope::is_polling(record.key()) {
        // A task that wakes itself from its own poll, as a yield does.
        // SAFETY: this thread is inside the task's poll, past the point where
        // the poll stores the runtime's waker, so it is not storing one.
        unsafe { record.activity.runtime_waker.wake_by_ref_from_poller() };
    } else {
        record.activity.runtime_waker.wake_by_ref();
    }
}

unsafe fn drop_waker(ptr: *const ()) {
    // SAFETY: releases the count this waker owned.
    let record = unsafe { Arc::from_raw(ptr.cast::<Record>()) };
    record.activity.waker_dropped();
}

#[cfg(test)]
mod tests {
    use super::Tracked;
    use crate::registry::{Kind, Spawn, State};
    use parking_lot::Mutex;
    use std::future::Future;
    use std::panic::Location;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn spawn_here() -> Spawn<'static> {
        Spawn {
            kind: Kind::LocalTask,
            name: None,
            location: Some(Location::caller()),
            handle: None,
        }
    }

    fn is_live(record: &Arc<crate::registry::Record>) -> bool {
        let mut live = Vec::new();
        record.scope.live.collect_into(&mut live);
        live.iter().any(|other| Arc::ptr_eq(other, record))
    }

    #[test]
    fn the_wrapper_adds_one_pointer_to_the_future() {
        // What keeps a small task's cell in tokio's smaller size step.
        struct Sixteen(#[allow(dead_code)] [u64; 2]);
        impl Future for Sixteen {
            type Output = ();
            fn poll(self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
                Poll::Ready(())
            }
        }
        assert_eq!(
            std::mem::size_of::<Tracked<Sixteen>>(),
            16 + std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn a_future_whose_drop_panics_at_completion_is_dropped_once_and_unregistered() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        /// Ready at once; its drop, which comes after, panics.
        struct PanicsOnDrop;
        impl Future for PanicsOnDrop {
            type Output = ();
            fn poll(self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
                Poll::Ready(())
            }
        }
        impl Drop for PanicsOnDrop {
            fn drop(&mut self) {
                DROPS.fetch_add(1, Ordering::Relaxed);
                panic!("dropping the future");
            }
        }
        let (tracked, record) = Tracked::register(PanicsOnDrop, spawn_here());
        let mut tracked = Box::pin(tracked);
        let waker = Waker::from(Arc::new(Wakes(AtomicUsize::new(0))));
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            tracked.as_mut().poll(&mut Context::from_waker(&waker))
        }));
        assert!(
            polled.is_err(),
            "the future's drop panicked out of the poll"
        );
        assert!(!is_live(&record), "unregistered all the same");
        drop(tracked);
        assert_eq!(DROPS.load(Ordering::Relaxed), 1, "dropped once");
        assert_eq!(Arc::strong_count(&record), 1);
    }

    #[test]
    fn a_task_dropped_before_completion_drops_its_future_and_unregisters() {
        let dropped = Arc::new(AtomicUsize::new(0));
        struct Counts(Arc<AtomicUsize>);
        impl Drop for Counts {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let held = Counts(dropped.clone());
        let future = async move {
            let _held = &held;
            std::future::pending::<()>().await
        };
        let (tracked, record) = Tracked::register(future, spawn_here());
        let mut tracked = Box::pin(tracked);
        let waker = Waker::from(Arc::new(Wakes(AtomicUsize::new(0))));
        assert!(tracked
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        assert!(is_live(&record));
        drop(tracked);
        assert_eq!(dropped.load(Ordering::Relaxed), 1);
        assert!(!is_live(&record));
        assert_eq!(Arc::strong_count(&record), 1);
    }

    #[test]
    fn the_lent_waker_counts_only_its_clones_and_forwards_every_wake() {
        let runtime = Arc::new(Wakes(AtomicUsize::new(0)));
        let runtime_waker = Waker::from(runtime.clone());
        let kept: Arc<Mutex<Option<Waker>>> = Arc::default();
        let mut polls = 0;
        let future = std::future::poll_fn({
            let kept = kept.clone();
            move |cx| {
                polls += 1;
                match polls {
                    // Wakes itself from inside the poll, as a yield does.
                    1 => {
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                    // Leaves a clone behind, as a channel does.
                    2 => {
                        *kept.lock() = Some(cx.waker().clone());
                        Poll::Pending
                    }
                    _ => Poll::Ready(()),
                }
            }
        });
        let (tracked, record) = Tracked::register(future, spawn_here());
        let mut tracked = Box::pin(tracked);
        let mut cx = Context::from_waker(&runtime_waker);

        assert!(tracked.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            runtime.0.load(Ordering::Relaxed),
            1,
            "the self-wake is forwarded"
        );
        let sample = record.activity.sample();
        assert_eq!((sample.foreign_wakers, sample.wakes), (0, 1));
        assert_eq!(sample.state(), State::Runnable);

        assert!(tracked.as_mut().poll(&mut cx).is_pending());
        let sample = record.activity.sample();
        assert_eq!(sample.foreign_wakers, 1, "only the kept clone counts");
        assert_eq!(sample.state(), State::Waiting);

        // The kept clone wakes the task from another thread, and is gone.
        let clone = kept.lock().take().expect("the second poll kept a clone");
        std::thread::spawn(move || clone.wake()).join().unwrap();
        assert_eq!(runtime.0.load(Ordering::Relaxed), 2);
        let sample = record.activity.sample();
        assert_eq!((sample.foreign_wakers, sample.wakes), (0, 2));
        assert_eq!(sample.state(), State::Runnable);

        assert!(tracked.as_mut().poll(&mut cx).is_ready());
        assert!(!is_live(&record), "unregistered on completion");
        drop(tracked);
        assert_eq!(
            Arc::strong_count(&record),
            1,
            "nothing else holds the record"
        );
    }
}
