//! [`LeakGuard`]: the scope a test opens, and the check that closes it.

//!
//! The guard opens a scope in the registry and the [probes](crate::probe)
//! with it; its check runs the settle loop ([`settle`]) over what the probes
//! see, and hands what is left to the report. It knows the probes only
//! through their shared interface.

mod settle;

use crate::config;
use crate::notice::Notice;
use crate::options::Options;
use crate::probe::{Opening, Probes};
use crate::registry::{self, scope, Scope};
use crate::report::LeakReport;
use settle::{Settle, Step};
use std::future::Future;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Opens a leak check with default [`Options`] on the current thread.
///
/// Everything spawned through leakcheck's wrappers from now on, on this
/// thread or inside work started from it, belongs to the guard's scope. When
/// the guard is dropped it checks that all of it has ended, waiting up to the
/// settle budget for work that is winding down, and panics with a
/// [`LeakReport`] if not. Parallel tests each see only their own work.
///
/// ```
/// let _guard = leakcheck::verify_none();
/// let worker = leakcheck::thread::spawn(|| 1 + 1);
/// assert_eq!(worker.join().unwrap(), 2);
/// // `_guard` is dropped here: the worker has ended, so the check passes.
/// ```
///
/// In async tests, prefer [`#[leak_check]`](crate::leak_check) or
/// [`LeakGuard::check_async`], which let the runtime run while they wait.
///
/// # Panics
///
/// Panics if a `LEAKCHECK*` environment variable is invalid.
#[track_caller]
pub fn verify_none() -> LeakGuard {
    Options::new().verify_none()
}

/// A scope whose work must all have ended when the guard is checked.
///
/// Made by [`verify_none`] or [`Options::verify_none`]. Check it in one of
/// three ways:
/// - drop it: the check runs, and panics with the report on a leak. If the
///   thread is already panicking, the test has failed for its own reason:
///   the check then looks once without waiting, leaves out tasks that could
///   not run while the test unwound, and prints the report to stderr instead
///   of panicking, so a failing test is not turned into an abort;
/// - [`LeakGuard::check`]: the same, returning the report;
/// - [`LeakGuard::check_async`]: the same from async code, letting the
///   runtime run while it settles.
///
/// Guards nest: a check covers its own scope and the scopes of guards opened
/// inside it.
///
/// # The limit of a synchronous check inside a current-thread runtime
///
/// Dropping a guard, or calling [`check`](LeakGuard::check), blocks the
/// thread. Inside a current-thread runtime (the default of `#[tokio::test]`)
/// that thread is the runtime, so no task can run while the check waits. The
/// check then leaves out tasks that were woken but not yet polled again, which
/// were about to finish, and says so on stderr once per process. A task
/// aborted just before such a check is still listed, because its
/// cancellation only happens when the runtime runs. Use
/// [`check_async`](LeakGuard::check_async) or `#[leak_check]` there.
#[must_use = "a guard checks when it is dropped; binding it to `_` drops it at once"]
pub struct LeakGuard {
    armed: Option<Armed>,
}

struct Armed {
    scope: Arc<Scope>,
    options: Options,
    test: Option<String>,
    settle: Duration,
    probes: Probes,
}

impl Drop for Armed {
    fn drop(&mut self) {
        scope::leave_guard(&self.scope);
    }
}

impl LeakGuard {
    #[track_caller]
    pub(crate) fn open(options: Options) -> Self {
        let config = match config::get() {
            Ok(config) => config,
            Err(error) => panic!("{error}"),
        };
        if !config.enabled {
            Notice::Disabled.print_once();
            return Self { armed: None };
        }
        if let Err(error) = crate::ignore::file::project() {
            panic!("{error}");
        }
        registry::start_tracking();
        let thread_name = std::thread::current().name().map(str::to_owned);
        let scope = Scope::open_guard(thread_name, options.is_detailed(config.detail));
        let test = scope.label().map(str::to_owned);
        scope::enter_guard(&scope);
        let probes = Probes::open(&Opening {
            scope: &scope,
            os_threads: options.os_threads_setting().or(config.os_threads),
        });
        Self {
            armed: Some(Armed {
                settle: options.settle_budget(config.settle),
                probes,
                scope,
                options,
                test,
            }),
        }
    }

    /// Checks now, blocking the thread while stragglers settle, and returns
    /// the report instead of panicking.
    ///
    /// # Errors
    ///
    /// Returns the [`LeakReport`] when work spawned in the scope is still
    /// alive once the settle budget is spent, or at once when every straggler
    /// is provably stuck.
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// let guard = leakcheck::Options::new()
    ///     .settle(std::time::Duration::from_millis(10))
    ///     .verify_none();
    /// let (keep_alive, rx) = mpsc::channel::<()>();
    /// let worker = leakcheck::thread::spawn(move || { let _ = rx.recv(); });
    ///
    /// let report = guard.check().unwrap_err();
    /// assert_eq!(report.stragglers().len(), 1);
    ///
    /// drop(keep_alive); // the worker's recv fails and it returns
    /// worker.join().unwrap();
    /// ```
    pub fn check(mut self) -> Result<(), LeakReport> {
        match self.armed.take() {
            Some(armed) => armed.check_blocking(),
            None => Ok(()),
        }
    }

    /// Checks from async code: settles by sleeping on tokio time and yielding
    /// to the runtime, never by blocking a worker, so tasks that are about to
    /// finish get the polls they need. This is the check `#[leak_check]`
    /// awaits at the end of an async test, inside the runtime, before the
    /// runtime is dropped and cancels every task.
    ///
    /// Needs a tokio runtime with time enabled, as `#[tokio::test]` builds.
    /// With paused time, the settle budget is measured on the paused clock.
    ///
    /// # Errors
    ///
    /// As for [`LeakGuard::check`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let guard = leakcheck::verify_none();
    /// let (tx, rx) = tokio::sync::oneshot::channel::<u8>();
    /// leakcheck::spawn(async move { let _ = rx.await; });
    /// tx.send(1).unwrap(); // the task is woken, and finishes on its next poll
    /// guard.check_async().await.unwrap();
    /// # }
    /// ```
    pub fn check_async(mut self) -> impl Future<Output = Result<(), LeakReport>> + Send {
        let armed = self.armed.take();
        async move {
            match armed {
                Some(armed) => armed.check_async().await,
                None => Ok(()),
            }
        }
    }
}

impl Options {
    /// Opens a guard with these options on the current thread. See
    /// [`verify_none`].
    ///
    /// # Panics
    ///
    /// Panics if a `LEAKCHECK*` environment variable is invalid, naming it,
    /// its value and what is accepted.
    ///
    /// ```
    /// let guard = leakcheck::Options::new().verify_none();
    /// guard.check().unwrap();
    /// ```
    #[track_caller]
    pub fn verify_none(self) -> LeakGuard {
        LeakGuard::open(self)
    }
}

impl Drop for LeakGuard {
    fn drop(&mut self) {
        let Some(armed) = self.armed.take() else {
            return;
        };
        if std::thread::panicking() {
            // The test has failed for its own reason. Waiting would only
            // delay that failure, and work that could not run while the
            // test unwound is no evidence of a leak. A second panic would
            // abort the whole test binary, so the report goes to stderr.
            if let Some(report) = armed.after_panic() {
                report.publish();
                let _ = writeln!(std::io::stderr(), "{report}");
            }
            return;
        }
        if let Err(report) = armed.check_blocking() {
            report.fail_test();
        }
    }
}

impl Armed {
    fn check_blocking(mut self) -> Result<(), LeakReport> {
        let runtime_blocked = blocks_a_runtime();
        let started = Instant::now();
        let mut settle = self.settle(runtime_blocked, false);
        loop {
            match settle.step(started.elapsed()) {
                Step::Clean => return Ok(()),
                Step::Leaked(report) => return Err(report),
                Step::Wait(pause) => std::thread::sleep(pause),
            }
        }
    }

    async fn check_async(mut self) -> Result<(), LeakReport> {
        let started = tokio::time::Instant::now();
        let mut settle = self.settle(false, true);
        let result = loop {
            match settle.step(started.elapsed()) {
                Step::Clean => break Ok(()),
                Step::Leaked(report) => break Err(report),
                Step::Wait(pause) => tokio::time::sleep(pause).await,
            }
        };
        match result {
            Err(mut report) => {
                self.probes.annotate(&mut report).await;
                Err(report)
            }
            Ok(()) => Ok(()),
        }
    }

    /// One look, no wait, for a test that is already panicking.
    fn after_panic(mut self) -> Option<LeakReport> {
        let runtime_blocked = blocks_a_runtime();
        self.settle(runtime_blocked, false).after_panic()
    }

    fn settle(&mut self, runtime_blocked: bool, on_tokio_time: bool) -> Settle<'_> {
        Settle::new(
            &self.scope,
            &self.options,
            self.test.as_deref(),
            &mut self.probes,
            self.settle,
            runtime_blocked,
            on_tokio_time,
        )
    }
}

/// Whether blocking this thread blocks the current-thread runtime it runs.
fn blocks_a_runtime() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
}
