//! Waiting for a set of tasks to finish (`WaitGroup`), and for a set of
//! parties to meet (`Barrier`).

use std::sync::Arc;
use std::time::Duration;

use super::waiter::{self, park_until, Waiter};

/// Counts outstanding work; `wait` parks until the count is zero.
///
/// Cloning shares the same count.
#[derive(Clone, Debug, Default)]
pub struct WaitGroup {
    inner: Arc<std::sync::Mutex<Group>>,
}

#[derive(Debug, Default)]
struct Group {
    count: usize,
    waiters: Vec<Arc<Waiter>>,
}

impl WaitGroup {
    /// A group with a count of zero.
    pub fn new() -> Self {
        Self::default()
    }

    fn group(&self) -> std::sync::MutexGuard<'_, Group> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `n` to the count.
    ///
    /// # Panics
    ///
    /// If the count would overflow (it would wrap to a small number, and
    /// leave the fibers waiting for it parked for good).
    pub fn add(&self, n: usize) {
        let mut g = self.group();
        g.count = g
            .count
            .checked_add(n)
            .expect("WaitGroup::add overflowed the count");
    }

    /// Subtracts one from the count, waking the waiters when it reaches
    /// zero.
    ///
    /// # Panics
    ///
    /// If the count is already zero.
    pub fn done(&self) {
        let mut g = self.group();
        g.count = g
            .count
            .checked_sub(1)
            .expect("WaitGroup::done called more times than add");
        if g.count == 0 {
            let waiters = std::mem::take(&mut g.waiters);
            drop(g);
            waiters.iter().for_each(|w| {
                w.wake();
            });
        }
    }

    /// The current count.
    pub fn count(&self) -> usize {
        self.group().count
    }

    /// Waits until the count is zero.
    pub fn wait(&self) {
        let Some(waiter) = self.enqueue() else {
            return;
        };
        waiter::wait_or_cancel(&waiter, &"WaitGroup::wait", || {
            self.leave(&waiter);
        });
    }

    /// [`wait`](Self::wait), also ended by `stop`, which is asked first
    /// and after every wake-up of the caller (whoever makes it true wakes
    /// the caller, as a cancellation does): whether the count reached
    /// zero.
    pub(crate) fn wait_unless(&self, stop: impl Fn() -> bool) -> bool {
        let Some(waiter) = self.enqueue() else {
            return true;
        };
        let mut leave = waiter::OnUnwind(Some(|| {
            self.leave(&waiter);
        }));
        park_until(None, &"WaitGroup::wait", || waiter.is_notified() || stop());
        leave.0 = None;
        // Not in the list any more: the count's last `done` took it out,
        // and the wake-up is ours.
        waiter.is_notified() || !self.leave(&waiter)
    }

    /// [`wait`](Self::wait), for at most `timeout`: whether the count
    /// reached zero by then.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = fiber_rt::Runtime::new().unwrap();
    /// rt.block_on(|| {
    ///     let wg = fiber_rt::sync::WaitGroup::new();
    ///     wg.add(1);
    ///     assert!(!wg.wait_timeout(Duration::from_millis(1)));
    ///     wg.done();
    ///     assert!(wg.wait_timeout(Duration::from_millis(1)));
    /// });
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = waiter::deadline_after(timeout);
        let Some(waiter) = self.enqueue() else {
            return true;
        };
        let reached = waiter::wait_until_or_cancel(
            &waiter,
            Some(deadline),
            &"WaitGroup::wait_timeout",
            || {
                self.leave(&waiter);
            },
        );
        // Timed out: gone from the list means `done` took it, and the
        // count reached zero in time after all.
        reached || !self.leave(&waiter)
    }

    /// A waiter in the list, or `None` if the count is zero.
    fn enqueue(&self) -> Option<Arc<Waiter>> {
        let mut g = self.group();
        if g.count == 0 {
            return None;
        }
        let w = Waiter::new();
        g.waiters.push(w.clone());
        Some(w)
    }

    /// Takes `waiter` out of the list; whether it was still there.
    fn leave(&self, waiter: &Arc<Waiter>) -> bool {
        let mut g = self.group();
        let before = g.waiters.len();
        g.waiters.retain(|w| !Arc::ptr_eq(w, waiter));
        g.waiters.len() != before
    }
}

/// Lets `n` parties wait until all of them have arrived, then releases
/// them together; reusable.
#[derive(Debug)]
pub struct Barrier {
    n: usize,
    state: std::sync::Mutex<BarrierState>,
}

#[derive(Debug)]
struct BarrierState {
    arrived: usize,
    generation: u64,
    waiters: Vec<Arc<Waiter>>,
}

/// Returned by [`Barrier::wait`]: one party of each round is the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// Whether this party arrived last.
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl Barrier {
    /// A barrier for `n` parties (a barrier for 0 or 1 never waits).
    pub fn new(n: usize) -> Self {
        Barrier {
            n,
            state: std::sync::Mutex::new(BarrierState {
                arrived: 0,
                generation: 0,
                waiters: Vec::new(),
            }),
        }
    }

    /// Waits until `n` parties have called `wait` in this round.
    pub fn wait(&self) -> BarrierWaitResult {
        let waiter = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.arrived += 1;
            if s.arrived >= self.n {
                s.arrived = 0;
                s.generation += 1;
                let waiters = std::mem::take(&mut s.waiters);
                drop(s);
                waiters.iter().for_each(|w| {
                    w.wake();
                });
                return BarrierWaitResult(true);
            }
            let w = Waiter::new();
            s.waiters.push(w.clone());
            w
        };
        waiter::wait_or_cancel(&waiter, &"Barrier::wait", || {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let before = s.waiters.len();
            s.waiters.retain(|w| !Arc::ptr_eq(w, &waiter));
            if s.waiters.len() < before {
                s.arrived -= 1;
            }
        });
        BarrierWaitResult(false)
    }
}
