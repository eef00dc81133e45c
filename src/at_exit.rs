//! The whole-binary check at exit: goleak's `VerifyTestMain`.
//!
//! Opted into with `LEAKCHECK_AT_EXIT=1`, or with [`check_at_exit!`] in a
//! test binary. When the process exits (libtest ends with
//! `std::process::exit`, which runs `atexit` handlers), every tracked task
//! and thread still alive, outside the background scope, is reported on
//! stderr, grouped by creation site, and the exit status becomes 1.
//!
//! After `main` has returned, std's printing macros may panic, so the report
//! is written with raw `write(2)` calls, and nothing here may unwind.

use crate::registry;
use crate::registry::scope::ScopeKind;
use crate::report::{LeakReport, Straggler};
use std::sync::Once;
use std::time::{Duration, Instant};

/// Turns the at-exit check on for this process. Idempotent.
pub(crate) fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        registry::start_tracking();
        #[cfg(unix)]
        {
            // SAFETY: registers a plain `extern "C"` function with libc.
            let _ = unsafe { libc::atexit(run) };
        }
        #[cfg(not(unix))]
        crate::notice::Notice::AtExitUnsupported.print_once();
    });
}

/// Installs the check before `main` when the environment asks for it, so
/// that work spawned before any guard opens is tracked too. Only a cheap
/// look-up runs in a process that does not ask; a bad value is reported by
/// the first guard, not here.
fn install_if_asked() {
    if std::env::var_os("LEAKCHECK_AT_EXIT").is_none() {
        return;
    }
    if crate::config::get()
        .as_ref()
        .is_ok_and(|config| config.at_exit && config.enabled)
    {
        install();
    }
}

ctor::declarative::ctor! {
    // SAFETY: runs before `main`; it reads the environment, stores to
    // atomics and registers an `atexit` handler, none of which needs std's
    // runtime to be set up.
    #[ctor(unsafe)]
    fn leakcheck_at_exit_from_env() {
        install_if_asked();
    }
}

#[cfg(unix)]
extern "C" fn run() {
    // A panic must not cross into libc; a failed check writes what it can.
    let outcome = std::panic::catch_unwind(check);
    if let Ok(Some(text)) = outcome {
        crate::sys::write_stderr(text.as_bytes());
        // SAFETY: ends the process at once with a failing status, which is
        // what this handler exists for.
        unsafe { libc::_exit(1) };
    }
}

/// Settles, then returns the report text if anything is still alive.
fn check() -> Option<String> {
    let budget = crate::config::get()
        .as_ref()
        .ok()
        .and_then(|config| config.settle)
        .unwrap_or(crate::DEFAULT_SETTLE);
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let live = live_outside_background();
        if live.is_empty() {
            return None;
        }
        if started.elapsed() >= budget {
            let now = crate::clock::precise_nanos();
            let stragglers: Vec<Straggler> = live
                .into_iter()
                .map(|record| Straggler::observe(record, now, None))
                .collect();
            let report = LeakReport::at_exit(stragglers, started.elapsed());
            return Some(format!(
                "\n{report}\nleakcheck: LEAKCHECK_AT_EXIT found work still alive when the test binary exited; \
                 failing the run with exit status 1\n"
            ));
        }
        std::thread::sleep(pause.min(budget.saturating_sub(started.elapsed())));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

fn live_outside_background() -> Vec<std::sync::Arc<registry::Record>> {
    let mut out = Vec::new();
    for scope in registry::scope::all_scopes() {
        if scope.kind != ScopeKind::Background {
            scope.live.collect_into(&mut out);
        }
    }
    out.retain(|record| !crate::probe::thread_hook::is_runtime_thread(record));
    out
}

/// Turns on the whole-binary check at exit for this test binary: one line
/// at the top level of a test file, the counterpart of goleak's
/// `VerifyTestMain`.
///
/// When the binary exits, every task and thread spawned through leakcheck
/// that is still alive, except [`background`](crate::background) work, is
/// reported on stderr, grouped by creation site, and the exit status becomes
/// 1, so CI fails even though every test passed. Tracking starts before
/// `main`, so work spawned outside any guard is covered too.
///
/// Setting `LEAKCHECK_AT_EXIT=1` does the same without this line, from the
/// first use of leakcheck in the process.
///
/// ```
/// leakcheck::check_at_exit!();
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! check_at_exit {
    () => {
        $crate::__private::ctor::declarative::ctor! {
            #[ctor(unsafe)]
            fn __leakcheck_check_at_exit() {
                $crate::__private::install_at_exit();
            }
        }
    };
}
