//! Ticks at a fixed period.

use std::time::{Duration, Instant};

/// Ticks every `period`, on a fixed grid from its start: `tick` sleeps
/// until the next instant of the grid (parking a fiber, sleeping a plain
/// thread). A tick that comes late (the caller was busy past one or more
/// instants) returns at once, and the ticks missed meanwhile are skipped:
/// the next one is the grid's next instant after now, so a slow loop does
/// not fire a burst to catch up.
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
        let now = Instant::now();
        // The grid's next instant after now (skipping those missed).
        let behind = now.saturating_duration_since(due);
        let periods = behind.as_nanos() / self.period.as_nanos() + 1;
        self.next = due + self.period * u32::try_from(periods).unwrap_or(u32::MAX);
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
        self.next = Instant::now() + self.period;
    }
}
