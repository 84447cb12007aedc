//! A mutual-exclusion lock that parks the waiting fiber (or thread), never
//! the worker thread under a fiber.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::waiter::{self, Waiter};

/// A mutex whose `lock` parks a fiber instead of blocking its worker.
/// Works from plain threads too (it blocks them).
///
/// Not poisoned by panics: a fiber that panics while holding the lock
/// releases it as its guard is dropped.
///
/// ```
/// use fiber_rt::{Runtime, sync::Mutex};
/// use std::sync::Arc;
///
/// let rt = Runtime::new().unwrap();
/// let count = Arc::new(Mutex::new(0));
/// let handles: Vec<_> = (0..10)
///     .map(|_| {
///         let count = count.clone();
///         rt.spawn(move || *count.lock() += 1)
///     })
///     .collect();
/// handles.into_iter().for_each(|h| h.join().unwrap());
/// assert_eq!(*count.lock(), 10);
/// ```
pub struct Mutex<T: ?Sized> {
    locked: AtomicBool,
    /// Waiters registered in `queue`, readable without its lock.
    waiting: AtomicUsize,
    queue: std::sync::Mutex<VecDeque<Arc<Waiter>>>,
    data: UnsafeCell<T>,
}

// SAFETY: the lock gives one thread at a time access to `data`, like std's.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

/// Proof of holding a [`Mutex`]; unlocks when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
}

// SAFETY: sharing a guard shares `&T`, fine when T is Sync.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    pub const fn new(value: T) -> Self {
        Mutex {
            locked: AtomicBool::new(false),
            waiting: AtomicUsize::new(0),
            queue: std::sync::Mutex::new(VecDeque::new()),
            data: UnsafeCell::new(value),
        }
    }

    /// The value, consuming the mutex.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks, parking the caller while another holds the lock.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        if !self.try_acquire() {
            self.lock_slow(None);
        }
        MutexGuard { mutex: self }
    }

    /// Locks, parking the caller for at most `timeout` while another
    /// holds the lock; `None` if it was still held then.
    ///
    /// ```
    /// use fiber_rt::{Runtime, sync::Mutex};
    /// use std::time::Duration;
    ///
    /// let rt = Runtime::new().unwrap();
    /// rt.block_on(|| {
    ///     let lock = Mutex::new(0);
    ///     let held = lock.lock();
    ///     fiber_rt::scope(|s| {
    ///         s.spawn(|| assert!(lock.lock_timeout(Duration::from_millis(5)).is_none()));
    ///     });
    ///     drop(held);
    ///     assert!(lock.lock_timeout(Duration::from_millis(5)).is_some());
    /// });
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Option<MutexGuard<'_, T>> {
        let locked = self.try_acquire() || self.lock_slow(Some(waiter::deadline_after(timeout)));
        locked.then(|| MutexGuard { mutex: self })
    }

    /// Locks if nobody holds the lock.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.try_acquire().then(|| MutexGuard { mutex: self })
    }

    /// Mutable access without locking: `&mut self` proves exclusivity.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// Locks a shared mutex and returns a guard that owns its `Arc`, so
    /// that it has no lifetime: it can move into a spawned fiber, which
    /// then holds the lock until it drops it.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use fiber_rt::sync::Mutex;
    ///
    /// let rt = fiber_rt::Runtime::new().unwrap();
    /// rt.block_on(|| {
    ///     let log = Arc::new(Mutex::new(Vec::new()));
    ///     let mut held = log.clone().lock_owned();
    ///     // The lock is taken here and released by the fiber.
    ///     let writer = fiber_rt::spawn(move || held.push("first"));
    ///     log.lock().push("second");
    ///     writer.join().unwrap();
    ///     assert_eq!(*log.lock(), ["first", "second"]);
    /// });
    /// ```
    pub fn lock_owned(self: Arc<Self>) -> OwnedMutexGuard<T> {
        if !self.try_acquire() {
            self.lock_slow(None);
        }
        OwnedMutexGuard { mutex: self }
    }

    /// [`lock_owned`](Self::lock_owned) if nobody holds the lock.
    pub fn try_lock_owned(self: Arc<Self>) -> Option<OwnedMutexGuard<T>> {
        self.try_acquire().then(|| OwnedMutexGuard { mutex: self })
    }

    fn try_acquire(&self) -> bool {
        // SeqCst: with `waiting`, a Dekker pair against `unlock` (a waiter
        // registers, then tries; an unlocker releases, then looks for
        // waiters): one of the two always sees the other.
        self.locked
            // SeqCst on failure too: in `lock_slow` the failing attempt is
            // the read of the pair that must see the unlocker's release.
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// Waits for the lock, until `deadline` if any; whether it got it.
    #[cold]
    fn lock_slow(&self, deadline: Option<Instant>) -> bool {
        loop {
            let waiter = {
                let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                // SeqCst: see `try_acquire`.
                self.waiting.fetch_add(1, Ordering::SeqCst);
                if self.try_acquire() {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return true;
                }
                let waiter = Waiter::new();
                queue.push_back(waiter.clone());
                waiter
            };
            let leave = || self.cancel_wait(&waiter);
            if !waiter::wait_until_or_cancel(&waiter, deadline, &"Mutex::lock", leave) {
                // Out of the queue, or the wake-up that came meanwhile
                // passed on; then one last try.
                self.cancel_wait(&waiter);
                return self.try_acquire();
            }
            if self.try_acquire() {
                return true;
            }
        }
    }

    fn unlock(&self) {
        // SeqCst: see `try_acquire`.
        self.locked.store(false, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.wake_one();
        }
    }

    /// A waiter that stops waiting leaves the queue, or passes on the
    /// wake-up it was already given.
    fn cancel_wait(&self, waiter: &Arc<Waiter>) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if waiter::remove(&mut queue, waiter) {
            // SeqCst: see `try_acquire`.
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        } else {
            // Only a waker takes a waiter off the queue, so the wake-up is
            // ours, even if its flag is not set yet: pass it on.
            drop(queue);
            self.wake_one();
        }
    }

    fn wake_one(&self) {
        // An abandoned fiber never retries: the next one is woken instead.
        waiter::notify_first(|| {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            let next = queue.pop_front();
            if next.is_some() {
                // SeqCst: see `try_acquire`.
                self.waiting.fetch_sub(1, Ordering::SeqCst);
            }
            next
        });
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves we hold the lock.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves we hold the lock, exclusively.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.unlock();
    }
}

/// Proof of holding a shared [`Mutex`], owning its `Arc` (see
/// [`Mutex::lock_owned`]); unlocks when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct OwnedMutexGuard<T: ?Sized> {
    mutex: Arc<Mutex<T>>,
}

// SAFETY: sharing a guard shares `&T`, fine when T is Sync.
unsafe impl<T: ?Sized + Sync> Sync for OwnedMutexGuard<T> {}

impl<T: ?Sized> OwnedMutexGuard<T> {
    /// The mutex this guard holds.
    pub fn mutex(&self) -> &Arc<Mutex<T>> {
        &self.mutex
    }
}

impl<T: ?Sized> Deref for OwnedMutexGuard<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves we hold the lock.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for OwnedMutexGuard<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves we hold the lock, exclusively.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for OwnedMutexGuard<T> {
    fn drop(&mut self) {
        self.mutex.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for OwnedMutexGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_lock() {
            Some(guard) => f.debug_struct("Mutex").field("data", &&*guard).finish(),
            None => f.write_str("Mutex { <locked> }"),
        }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// Releases the lock and hands back the mutex, for `Condvar::wait`.
    pub(crate) fn unlock_for_wait(self) -> &'a Mutex<T> {
        let mutex = self.mutex;
        std::mem::forget(self);
        mutex.unlock();
        mutex
    }

    /// Locks `mutex` again after a `Condvar` wait.
    pub(crate) fn relock(mutex: &'a Mutex<T>) -> Self {
        mutex.lock()
    }
}
