//! Two clocks on one base, as nanoseconds since an arbitrary fixed point.
//!
//! "Idle for 500ms" needs no nanosecond precision, and a precise clock read
//! on every poll would be a fifth of a tracked poll's whole cost: the end of
//! each poll is read on [`coarse_nanos`], on Linux `CLOCK_MONOTONIC_COARSE`
//! (a few nanoseconds, resolution of a scheduler tick). A spawn, whose age a
//! report gives to the microsecond, is read on [`precise_nanos`],
//! `CLOCK_MONOTONIC`, the clock `Instant` reads, in one word rather than
//! `Instant`'s two. Elsewhere both come from one `Instant`.

use std::sync::OnceLock;
use std::time::Instant;

/// Nanoseconds since an arbitrary fixed point, monotonic, coarse.
pub(crate) fn coarse_nanos() -> u64 {
    #[cfg(target_os = "linux")]
    if let Some(nanos) = read(libc::CLOCK_MONOTONIC_COARSE) {
        return nanos;
    }
    since_start()
}

/// The same as [`coarse_nanos`], to the clock's full precision.
pub(crate) fn precise_nanos() -> u64 {
    #[cfg(target_os = "linux")]
    if let Some(nanos) = read(libc::CLOCK_MONOTONIC) {
        return nanos;
    }
    since_start()
}

#[cfg(target_os = "linux")]
fn read(clock: libc::clockid_t) -> Option<u64> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec through a valid pointer; both monotonic
    // clocks exist on every Linux since 2.6.32.
    if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
        return None;
    }
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    Some(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

fn since_start() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    u64::try_from(START.get_or_init(Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::{coarse_nanos, precise_nanos};

    #[test]
    fn the_two_clocks_share_one_base() {
        // The coarse clock is the precise one as of its last tick: never
        // ahead of a precise reading taken after it, and at most a tick
        // (a few milliseconds) behind.
        let coarse = coarse_nanos();
        let precise = precise_nanos();
        assert!(
            coarse <= precise,
            "coarse {coarse} ahead of precise {precise}"
        );
        assert!(precise - coarse < 100_000_000, "{coarse} vs {precise}");
    }
}
