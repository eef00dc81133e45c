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
