//! Timestamps for dumps: a coarse clock cheap enough to read on every
//! spawn, and conversions between `Instant`s and plain nanoseconds so that
//! deadlines fit in an atomic.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Nanoseconds of `CLOCK_MONOTONIC_COARSE`: the kernel's last tick (1 to
/// 4 ms resolution), read from the vDSO without a system call and without
/// `rdtsc`, so a few nanoseconds instead of the ~20 ns of `Instant::now()`.
/// Ages in a dump only need milliseconds.
#[inline]
pub(crate) fn coarse_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a
    // constant the kernel has supported since 2.6.32.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The instant all `*_ns` values count from: taken once per process.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// `at` as nanoseconds since the process's epoch, at least 1 (0 means
/// "none" where it is stored), and at most `u64::MAX` (584 years): a cast
/// wrapped a later instant (a `sleep_until` centuries away) to a near one.
pub(crate) fn instant_to_ns(at: Instant) -> u64 {
    let ns = at.saturating_duration_since(epoch()).as_nanos();
    u64::try_from(ns).unwrap_or(u64::MAX).max(1)
}

/// The inverse of [`instant_to_ns`].
pub(crate) fn ns_to_instant(ns: u64) -> Instant {
    epoch() + Duration::from_nanos(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_clock_advances_with_time() {
        let before = coarse_now_ns();
        std::thread::sleep(Duration::from_millis(20));
        let elapsed = coarse_now_ns() - before;
        assert!(
            (10_000_000..2_000_000_000).contains(&elapsed),
            "{elapsed} ns"
        );
    }

    #[test]
    fn instants_round_trip() {
        let at = Instant::now() + Duration::from_millis(5);
        let back = ns_to_instant(instant_to_ns(at));
        assert!(back.max(at) - back.min(at) < Duration::from_micros(1));
    }
}
