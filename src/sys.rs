//! What leakcheck asks of the operating system directly.

/// The kernel's id for the calling thread, where the platform has one that
/// `/proc` and the thread hook agree on.
pub(crate) fn current_tid() -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions and cannot fail.
        let tid = unsafe { libc::gettid() };
        u32::try_from(tid).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Writes to stderr with raw `write(2)` calls: usable after `main` has
/// returned, where std's printing may panic, and never panics itself.
#[cfg(unix)]
pub(crate) fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writes from a valid buffer of the given length to fd 2.
        let n = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
        let Ok(n) = usize::try_from(n) else { return };
        if n == 0 {
            return;
        }
        bytes = &bytes[n..];
    }
}

/// Registers `handler` to run when the process exits (libtest ends with
/// `std::process::exit`, which runs these). Returns whether it could.
#[cfg(unix)]
pub(crate) fn at_exit(handler: extern "C" fn()) -> bool {
    // SAFETY: registers a plain `extern "C"` function with libc.
    unsafe { libc::atexit(handler) == 0 }
}
