//! A condition variable for [`Mutex`]: waiting parks the fiber.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::mutex::{Mutex, MutexGuard};
use super::waiter::{self, Waiter};

/// Waits for a condition protected by a [`Mutex`], parking the fiber (or
/// blocking the thread) meanwhile. Wake-ups may be spurious: wait in a loop,
/// or use [`Condvar::wait_while`].
#[derive(Debug, Default)]
pub struct Condvar {
    waiters: std::sync::Mutex<VecDeque<Arc<Waiter>>>,
}

impl Condvar {
    /// A condition variable with no waiters.
    pub const fn new() -> Self {
        Condvar {
            waiters: std::sync::Mutex::new(VecDeque::new()),
        }
    }

    /// Releases `guard`'s lock, waits for a notification, locks again.
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        let waiter = Waiter::new();
        // Registered before the unlock: a notifier must take the lock to
        // change the condition, so it cannot notify before we are listed.
        self.list().push_back(waiter.clone());
        let mutex: &'a Mutex<T> = guard.unlock_for_wait();
        waiter::wait_or_cancel(&waiter, &"Condvar::wait", || self.cancel_wait(&waiter));
        self.relock(mutex, true)
    }

    /// Waits while `condition` holds.
    pub fn wait_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> MutexGuard<'a, T> {
        while condition(&mut guard) {
            guard = self.wait(guard);
        }
        guard
    }

    /// Like [`wait`](Self::wait), giving up once `timeout` has passed.
    /// The result says whether it did; a notification that comes just as
    /// the time runs out counts as one.
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        let deadline = waiter::deadline_after(timeout);
        let waiter = Waiter::new();
        // Registered before the unlock, as in `wait`.
        self.list().push_back(waiter.clone());
        let mutex: &'a Mutex<T> = guard.unlock_for_wait();
        let notified =
            waiter::wait_until_or_cancel(&waiter, Some(deadline), &"Condvar::wait", || {
                self.cancel_wait(&waiter)
            });
        // Timed out, unless a notifier took the waiter off the list first.
        let timed_out = !notified && waiter::remove(&mut self.list(), &waiter);
        (self.relock(mutex, !timed_out), WaitTimeoutResult(timed_out))
    }

    /// Waits while `condition` holds, for at most `timeout` in all. The
    /// result says whether the time ran out with the condition still
    /// holding.
    pub fn wait_timeout_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        timeout: Duration,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        let deadline = waiter::deadline_after(timeout);
        while condition(&mut guard) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return (guard, WaitTimeoutResult(true));
            }
            guard = self.wait_timeout(guard, left).0;
        }
        (guard, WaitTimeoutResult(false))
    }

    /// Wakes one waiter, if any.
    pub fn notify_one(&self) {
        waiter::notify_first(|| self.list().pop_front());
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        let all = std::mem::take(&mut *self.list());
        all.iter().for_each(|w| w.wake());
    }

    fn list(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Waiter>>> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks `mutex` again after a wait. A waiter cancelled while it
    /// parks for the lock never looks at its condition: a notification
    /// it took (`notified`) goes on to the next waiter, as it does from a
    /// waiter cancelled before its wake-up (see `cancel_wait`).
    fn relock<'a, T: ?Sized>(&self, mutex: &'a Mutex<T>, notified: bool) -> MutexGuard<'a, T> {
        /// Passes a notification on when dropped armed: on an unwind.
        struct PassOn<'c>(Option<&'c Condvar>);
        impl Drop for PassOn<'_> {
            fn drop(&mut self) {
                if let Some(condvar) = self.0 {
                    condvar.notify_one();
                }
            }
        }
        let mut pass_on = PassOn(notified.then_some(self));
        let guard = MutexGuard::relock(mutex);
        pass_on.0 = None;
        guard
    }

    fn cancel_wait(&self, waiter: &Arc<Waiter>) {
        let removed = waiter::remove(&mut self.list(), waiter);
        // Only a notifier takes a waiter off the list, so a waiter no longer
        // listed was given a notification, even if its flag is not set
        // yet: pass it on.
        if !removed {
            self.notify_one();
        }
    }
}

/// Whether a [`Condvar::wait_timeout`] gave up because its time ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// Whether the wait ended because its time ran out.
    pub fn timed_out(&self) -> bool {
        self.0
    }
}
