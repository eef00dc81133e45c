//! The future wrapper behind every tracked task.
//!
//! It keeps the task's registration (dropping the wrapper unregisters, which
//! covers completion, panic, abort and runtime shutdown alike), installs the
//! task's scope context around each poll, and hands the inner future a waker
//! of its own so that the registry can tell a task nothing can wake from one
//! that merely waits.

use crate::registry::{self, Record, Registration, Scope, Spawn};
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

pub(crate) struct Tracked<F> {
    /// Declared before `registration`, so dropped first: `Counted` inside
    /// it relies on the registration's reference to the record.
    future: Inner<F>,
    registration: Option<Registration>,
    /// Guards opened inside the task and still open between its polls; the
    /// rest of its scope context is the record's scope.
    guards: Vec<Arc<Scope>>,
}

/// The task's future behind its counting waker, and in detailed mode behind a
/// tokio-metrics monitor too. The monitor keeps a clone of the waker it is
/// polled with between polls, so it must sit outside the counting layer, or
/// every idle task would seem to hold a live waker.
enum Inner<F> {
    Plain(Counted<F>),
    /// Boxed: the monitor's state would otherwise make every task's cell
    /// bigger, detailed or not.
    Detailed(Pin<Box<tokio_metrics::Instrumented<Counted<F>>>>),
}

impl<F: Future> Inner<F> {
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: the variant's future is pinned along with `self` and never
        // moved out.
        unsafe {
            match self.get_unchecked_mut() {
                Inner::Plain(future) => Pin::new_unchecked(future).poll(cx),
                Inner::Detailed(future) => future.as_mut().poll(cx),
            }
        }
    }
}

/// Polls `future` with a counting waker that forwards to the waker this
/// layer is polled with.
pub(crate) struct Counted<F> {
    future: F,
    /// The record the counting waker stands for, or null once the future
    /// has completed. Not counted: the [`Tracked`] around this layer keeps
    /// its registration, and with it the record, until this layer has
    /// returned `Ready`, and drops it only after this layer.
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
        if this.record.is_null() {
            // Polled after completion: nothing left to count.
            return future.poll(cx);
        }
        // SAFETY: not null, so the future has not completed and the
        // registration around this layer still holds the record (see
        // `record`).
        let record = unsafe { &*this.record };
        // SAFETY: only the task's poller gets here, one poll at a time.
        unsafe { record.activity.runtime_waker.register(cx.waker()) };
        // The waker lent for the poll borrows this layer's reference to the
        // record, so lending it counts nothing; its clones take their own.
        // SAFETY: the pointer is an `Arc<Record>`'s, alive for the whole poll
        // (see `record`); `ManuallyDrop` keeps the lent waker from releasing
        // a count it does not own, and its clones take their own.
        let lent = ManuallyDrop::new(unsafe {
            Waker::from_raw(RawWaker::new(this.record.cast::<()>(), &VTABLE))
        });
        let result = future.poll(&mut Context::from_waker(&lent));
        if result.is_ready() {
            this.record = std::ptr::null();
        }
        result
    }
}

impl<F> Tracked<F> {
    /// Registers `future` in the current scope. Returns the record too, so
    /// the caller can note tokio's task id once it has spawned.
    pub(crate) fn register(future: F, spawn: Spawn<'_>) -> (Self, Arc<Record>) {
        let registration = registry::register(spawn);
        let record = registration.record().clone();
        let counted = Counted {
            future,
            record: Arc::as_ptr(&record),
        };
        let future = match &record.monitor {
            Some(monitor) => Inner::Detailed(Box::pin(monitor.instrument(counted))),
            None => Inner::Plain(counted),
        };
        let tracked = Tracked {
            future,
            registration: Some(registration),
            guards: Vec::new(),
        };
        (tracked, record)
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `future` is never moved out of `self` (structural pinning);
        // the other fields are not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        let Some(registration) = &this.registration else {
            return future.poll(cx);
        };
        let record = registration.record();
        record.activity.poll_started();
        let result = crate::registry::scope::with_task_context(
            record.key(),
            &record.scope,
            &mut this.guards,
            || future.poll(cx),
        );
        record.activity.poll_ended();
        if result.is_ready() {
            // Unregister before tokio hands the output to the JoinHandle, so
            // a check right after `handle.await` never sees this task.
            this.registration = None;
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
        let spawn = Spawn {
            kind: Kind::LocalTask,
            name: None,
            location: Some(Location::caller()),
            handle: None,
        };
        let (tracked, record) = Tracked::register(future, spawn);
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
        let mut live = Vec::new();
        record.scope.live.collect_into(&mut live);
        assert!(
            !live.iter().any(|other| Arc::ptr_eq(other, &record)),
            "unregistered on completion"
        );
        drop(live);
        drop(tracked);
        assert_eq!(
            Arc::strong_count(&record),
            1,
            "nothing else holds the record"
        );
    }
}
