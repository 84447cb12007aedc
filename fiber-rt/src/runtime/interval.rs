//! Ticks at a fixed period.

use std::time::{Duration, Instant};

use crate::sync::waiter::{deadline_after, deadline_from};

/// Ticks every `period`, on a fixed grid from its start: `tick` sleeps
/// until the next instant of the grid (parking a fiber, sleeping a plain
/// thread). A tick that comes late (the caller was busy past one or more
/// instants) returns at once, and the ticks missed meanwhile are skipped:
/// the next one is the grid's next instant after now, so a slow loop does
/// not fire a burst to catch up (tokio's `MissedTickBehavior::Skip`;
/// tokio's default bursts).
///
/// A period too long to be added to an instant (`Duration::MAX`) puts the
/// next tick about 30 years away, as [`sleep`](crate::sleep) takes such a
/// duration to mean waiting for good.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let rt = fiber_rt::Runtime::new().unwrap();
/// let elapsed = rt.block_on(|| {
///     let start = Instant::now();
///     let mut every = fiber_rt::interval(Duration::from_millis(5));
///     for _ in 0..4 {
///         every.tick(); // the first at once, then every 5 ms
///     }
///     start.elapsed()
/// });
/// assert!(elapsed >= Duration::from_millis(15));
/// ```
#[derive(Debug, Clone)]
pub struct Interval {
    period: Duration,
    next: Instant,
}

/// An [`Interval`] whose first tick is now.
///
/// # Panics
///
/// If `period` is zero.
pub fn interval(period: Duration) -> Interval {
    interval_at(Instant::now(), period)
}

/// An [`Interval`] whose first tick is at `start`.
///
/// # Panics
///
/// If `period` is zero.
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(!period.is_zero(), "an interval's period must not be zero");
    Interval {
        period,
        next: start,
    }
}

impl Interval {
    /// Waits for the next tick and returns the instant it was due.
    pub fn tick(&mut self) -> Instant {
        let due = self.next;
        super::sleep_until(due);
        self.next = next_on_grid(due, self.period, Instant::now());
        due
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// When the next tick is due.
    pub fn next_tick(&self) -> Instant {
        self.next
    }

    /// Starts the grid again from now: the next tick is one period away.
    pub fn reset(&mut self) {
        self.next = deadline_after(self.period);
    }
}

/// The first instant of the grid of `period` through `due` that is past
/// `now` (skipping those missed). Counted in nanoseconds as a `u128`: a
/// count of missed periods kept in a `u32` saturated (a 1 µs period missed
/// for 72 minutes) and put the next tick in the past.
fn next_on_grid(due: Instant, period: Duration, now: Instant) -> Instant {
    const NANOS: u128 = 1_000_000_000;
    let period = period.as_nanos();
    let periods = now.saturating_duration_since(due).as_nanos() / period + 1;
    // At most twice `Duration::MAX` in nanoseconds: far from overflowing.
    let offset = periods * period;
    let offset = Duration::new(
        u64::try_from(offset / NANOS).unwrap_or(u64::MAX),
        (offset % NANOS) as u32,
    );
    // A period too long to add stands for never, as a sleep that long.
    deadline_from(due, offset)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::next_on_grid;

    #[test]
    fn the_next_instant_is_past_now_however_many_periods_were_missed() {
        let due = Instant::now();
        let period = Duration::from_nanos(1);
        // More periods missed than a u32 counts.
        let now = due + Duration::from_secs(10);
        assert_eq!(next_on_grid(due, period, now), now + period);
        let period = Duration::from_millis(10);
        let now = due + Duration::from_millis(35);
        assert_eq!(next_on_grid(due, period, now), due + 4 * period);
        assert_eq!(next_on_grid(due, period, due), due + period);
    }
}
