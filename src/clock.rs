//! A cheap clock for figures read on every poll.
//!
//! "Idle for 500ms" needs no nanosecond precision, and a precise clock read
//! on every poll would be a fifth of a tracked poll's whole cost. On Linux
//! this is `CLOCK_MONOTONIC_COARSE` (a few nanoseconds, resolution of a
//! scheduler tick); elsewhere `Instant`.

use std::sync::OnceLock;
use std::time::Instant;

/// Nanoseconds since an arbitrary fixed point, monotonic, coarse.
pub(crate) fn coarse_nanos() -> u64 {
    #[cfg(target_os = "linux")]
    {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: writes one timespec through a valid pointer; the coarse
        // monotonic clock exists on every Linux since 2.6.32.
        if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) } == 0 {
            let secs = u64::try_from(now.tv_sec).unwrap_or(0);
            let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
            return secs.saturating_mul(1_000_000_000).saturating_add(nanos);
        }
    }
    static START: OnceLock<Instant> = OnceLock::new();
    u64::try_from(START.get_or_init(Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX)
}
