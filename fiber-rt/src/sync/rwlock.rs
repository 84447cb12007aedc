//! A reader-writer lock that parks waiting fibers, with FIFO hand-off so
//! neither readers nor writers starve.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::waiter::{self, Waiter};

/// Many readers or one writer. Waiters are served in arrival order: a
/// writer waits for the readers before it, and readers queued behind a
/// writer wait for it, so neither side starves. (So a fiber that takes a
/// read lock it already holds while a writer waits deadlocks, as std warns
/// its lock may.)
///
/// Not poisoned by panics, unlike std's: a writer that panics releases the
/// lock, and the data may be left half updated.
pub struct RwLock<T: ?Sized> {
    state: std::sync::Mutex<State>,
    pub(super) data: UnsafeCell<T>,
}

#[derive(Default)]
struct State {
    readers: usize,
    writer: bool,
    /// Waiters and whether each wants to write.
    queue: VecDeque<(Arc<Waiter>, bool)>,
}

// SAFETY: the lock hands out `&T` to many threads or `&mut T` to one,
// like std's RwLock.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: as above; readers share `&T`, which needs `T: Sync`.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

/// Shared access to an [`RwLock`]'s value.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

/// Exclusive access to an [`RwLock`]'s value.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

impl<T> RwLock<T> {
    /// An unlocked lock holding `value`.
    pub fn new(value: T) -> Self {
        RwLock {
            state: std::sync::Mutex::new(State::default()),
            data: UnsafeCell::new(value),
        }
    }

    /// The value, consuming the lock.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Shared access, parking while a writer holds or waits for the lock.
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.acquire(false);
        RwLockReadGuard { lock: self }
    }

    /// Exclusive access, parking while anyone else holds the lock.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.acquire(true);
        RwLockWriteGuard { lock: self }
    }

    /// [`read`](Self::read), parking for at most `timeout`; `None` if
    /// the lock could not be had by then.
    pub fn read_timeout(&self, timeout: Duration) -> Option<RwLockReadGuard<'_, T>> {
        self.acquire_until(false, Some(waiter::deadline_after(timeout)))
            .then(|| RwLockReadGuard { lock: self })
    }

    /// [`write`](Self::write), parking for at most `timeout`; `None` if
    /// the lock could not be had by then.
    ///
    /// ```
    /// use fiber_rt::{Runtime, sync::RwLock};
    /// use std::time::Duration;
    ///
    /// let rt = Runtime::new().unwrap();
    /// rt.block_on(|| {
    ///     let lock = RwLock::new(0);
    ///     let reading = lock.read();
    ///     fiber_rt::scope(|s| {
    ///         s.spawn(|| assert!(lock.write_timeout(Duration::from_millis(5)).is_none()));
    ///     });
    ///     drop(reading);
    ///     assert!(lock.write_timeout(Duration::from_millis(5)).is_some());
    /// });
    /// ```
    pub fn write_timeout(&self, timeout: Duration) -> Option<RwLockWriteGuard<'_, T>> {
        self.acquire_until(true, Some(waiter::deadline_after(timeout)))
            .then(|| RwLockWriteGuard { lock: self })
    }

    /// Shared access if it can be had now: no writer holds the lock or
    /// waits for it.
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        self.try_acquire(false)
            .then(|| RwLockReadGuard { lock: self })
    }

    /// Exclusive access if nobody holds the lock or waits for it now.
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        self.try_acquire(true)
            .then(|| RwLockWriteGuard { lock: self })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the lock if it is free for `write` and nobody waits before
    /// us (the FIFO rule); under the state's lock.
    fn take_if_free(s: &mut State, write: bool) -> bool {
        let free = s.queue.is_empty() && !s.writer && (!write || s.readers == 0);
        if free && write {
            s.writer = true;
        } else if free {
            s.readers += 1;
        }
        free
    }

    pub(super) fn try_acquire(&self, write: bool) -> bool {
        Self::take_if_free(&mut self.state(), write)
    }

    pub(super) fn acquire(&self, write: bool) {
        self.acquire_until(write, None);
    }

    /// Waits for the lock, until `deadline` if any; whether it got it.
    fn acquire_until(&self, write: bool, deadline: Option<Instant>) -> bool {
        let waiter = {
            let mut s = self.state();
            if Self::take_if_free(&mut s, write) {
                return true;
            }
            let waiter = Waiter::new();
            s.queue.push_back((waiter.clone(), write));
            waiter
        };
        // Once notified, the lock has been handed to us by `release`.
        let leave = || {
            self.cancel_wait(&waiter, write);
        };
        let reason = if write {
            &"RwLock::write"
        } else {
            &"RwLock::read"
        };
        // Timed out: still queued, it leaves; handed the lock meanwhile, it
        // keeps it, as if the hand-over came in time.
        waiter::wait_until_or_cancel(&waiter, deadline, reason, leave)
            || self.leave_or_keep(&waiter)
    }

    /// Takes a waiter whose time ran out off the queue (`false`), or, if
    /// `grant` took it off first, handing it the lock, says it holds the
    /// lock (`true`).
    fn leave_or_keep(&self, waiter: &Arc<Waiter>) -> bool {
        let mut s = self.state();
        let Some(i) = s.queue.iter().position(|(w, _)| Arc::ptr_eq(w, waiter)) else {
            // A waiter that is running was not abandoned, so no waker
            // gave its lock back: it is ours. (The claim keeps a waker
            // that finds it abandoned later from releasing it again.)
            return waiter.claim_return();
        };
        s.queue.remove(i);
        // A writer that leaves may let the readers behind it in.
        let woken = Self::grant(&mut s);
        drop(s);
        self.hand_over(woken);
        false
    }

    fn cancel_wait(&self, waiter: &Arc<Waiter>, write: bool) {
        if self.leave_or_keep(waiter) {
            // Only `grant` takes a waiter off the queue, handing it the
            // lock (even if its flag is not set yet): give it back.
            self.release(write);
        }
    }

    pub(super) fn release(&self, write: bool) {
        let mut s = self.state();
        if write {
            s.writer = false;
        } else {
            s.readers -= 1;
        }
        let woken = Self::grant(&mut s);
        drop(s);
        self.hand_over(woken);
    }

    /// Wakes the waiters `grant` gave the lock to; what it gave a fiber the
    /// shutdown abandoned (which never runs again) is released at once.
    fn hand_over(&self, woken: Vec<(Arc<Waiter>, bool)>) {
        for (waiter, write) in woken {
            if !waiter.notify() && waiter.claim_return() {
                self.release(write);
            }
        }
    }

    /// Hands the lock to the waiters at the front of the queue that can
    /// have it now, and returns them to be woken.
    fn grant(s: &mut State) -> Vec<(Arc<Waiter>, bool)> {
        let mut woken = Vec::new();
        while let Some((_, write)) = s.queue.front() {
            if *write {
                if s.writer || s.readers > 0 {
                    break;
                }
                s.writer = true;
                woken.push(s.queue.pop_front().unwrap());
                break;
            }
            if s.writer {
                break;
            }
            s.readers += 1;
            woken.push(s.queue.pop_front().unwrap());
        }
        woken
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read guard proves no writer holds the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.release(false);
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a write guard proves exclusive access.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: a write guard proves exclusive access.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.release(true);
    }
}

impl<T: ?Sized> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state();
        f.debug_struct("RwLock")
            .field("readers", &s.readers)
            .field("writer", &s.writer)
            .finish()
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
