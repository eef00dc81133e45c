//! A goroutine-style dump on demand, for test binaries that hang.

use crate::probe::os_threads::DUMP_THREAD_NAME;
use std::io;
use std::sync::OnceLock;

/// Prints a [`snapshot`](crate::snapshot) of every live tracked task and
/// thread to stderr each time the process receives `SIGUSR1`.
///
/// Call it once, early, for example at the start of a test you suspect of
/// hanging, or from a `#[ctor]`. When the test binary hangs, find its pid and
/// run `kill -USR1 <pid>`: each live task and thread is printed with its
/// state, its creation site and the test that owns it, grouped by site. The
/// process carries on running. Tracking is turned on by this call, so work
/// spawned through leakcheck from then on is included.
///
/// The signal is received by a small thread named `leakcheck-dump`. Calling
/// this again does nothing.
///
/// # Errors
///
/// Fails on platforms without Unix signals, with
/// [`io::ErrorKind::Unsupported`], or when the signal handler or the thread
/// cannot be set up.
///
/// ```
/// # #[cfg(unix)]
/// leakcheck::dump_on_signal()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn dump_on_signal() -> io::Result<()> {
    static STARTED: OnceLock<Result<(), (io::ErrorKind, String)>> = OnceLock::new();
    crate::registry::start_tracking();
    STARTED
        .get_or_init(|| start().map_err(|e| (e.kind(), e.to_string())))
        .clone()
        .map_err(|(kind, message)| io::Error::new(kind, message))
}

#[cfg(unix)]
fn start() -> io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    // Register on this thread so a failure is returned to the caller.
    let mut signals = runtime.block_on(async { signal(SignalKind::user_defined1()) })?;
    // leakcheck's own thread: never a test's leak.
    crate::probe::thread_hook::not_hooked(|| {
        std::thread::Builder::new()
            .name(DUMP_THREAD_NAME.to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    while signals.recv().await.is_some() {
                        write_dump(&mut io::stderr().lock());
                    }
                });
            })
    })?;
    Ok(())
}

#[cfg(not(unix))]
fn start() -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "leakcheck::dump_on_signal needs Unix signals; call leakcheck::snapshot() and print it instead",
    ))
}

/// Writes a snapshot, never panicking on a closed or full stream.
pub(crate) fn write_dump(out: &mut impl io::Write) {
    let text = crate::snapshot().to_string();
    let _ = out.write_all(b"\n");
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
