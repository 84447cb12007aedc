//! A mutual-exclusion lock that parks the waiting fiber (or thread), never
//! the worker thread under a fiber.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::waiter::{self, Waiter};

/// A mutex whose `lock` parks a fiber instead of blocking its worker.
/// Works from plain threads too (it blocks them).
///
/// Not poisoned by panics: a fiber that panics while holding the lock
/// releases it as its guard is dropped.
///
/// Not strictly fair: a release leaves the lock free and wakes the first
/// waiter, and a party that comes meanwhile may take the lock first (a
/// holder that locks again at once keeps it without a switch). A woken
/// waiter that loses such a race after waiting half a millisecond or more
/// is handed the lock by the next release, so no waiter waits for good
/// behind a holder that takes the lock again and again, however long it
/// keeps it (across parks too).
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
    /// [`UNLOCKED`], [`LOCKED`] or [`HAND_OVER`].
    state: AtomicU8,
    /// Waiters registered in `queue`, readable without its lock.
    waiting: AtomicUsize,
    queue: std::sync::Mutex<VecDeque<Arc<Queued>>>,
    data: UnsafeCell<T>,
}

/// Nobody holds the lock.
const UNLOCKED: u8 = 0;
/// Somebody holds the lock.
const LOCKED: u8 = 1;
/// Somebody holds the lock, and its release hands it, still held, to the
/// first waiter: one that was woken and lost the lock to another party
/// asks for that (see `Mutex::lock_slow`).
const HAND_OVER: u8 = 2;

/// How long a waiter has waited when, losing the lock to another party
/// after a release woke it, it asks the next release to hand the lock
/// over. A hand-over costs a switch (a releaser that locks again parks,
/// where it would have gone on): asked for only after a while, they stay
/// rare on a lock that is busy but changes hands anyway.
const FAIR_AFTER: Duration = Duration::from_micros(500);

/// A waiter in a [`Mutex`]'s queue, and whether the party that took it off
/// handed it the lock (rather than a wake-up to try for it).
#[derive(Debug)]
struct Queued {
    waiter: Arc<Waiter>,
    handed: AtomicBool,
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
            state: AtomicU8::new(UNLOCKED),
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
        self.state
            // SeqCst on failure too: in `lock_slow` the failing attempt is
            // the read of the pair that must see the unlocker's release.
            .compare_exchange(UNLOCKED, LOCKED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Queued>>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for the lock, until `deadline` if any; whether it got it.
    #[cold]
    fn lock_slow(&self, deadline: Option<Instant>) -> bool {
        let since = Instant::now();
        // Woken already, and the lock taken by another party first, after
        // waiting `FAIR_AFTER` or longer.
        let mut lost = false;
        loop {
            let queued = {
                let mut queue = self.queue();
                // SeqCst: see `try_acquire`.
                self.waiting.fetch_add(1, Ordering::SeqCst);
                if self.try_acquire() {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return true;
                }
                let queued = Arc::new(Queued {
                    waiter: Waiter::new(),
                    handed: AtomicBool::new(false),
                });
                if lost {
                    // Asks the holder's release to hand the lock over, and
                    // waits first in line for it. A release that came since
                    // the try above wakes the first waiter (this one) as
                    // usual. SeqCst: the state's every change is.
                    let _ = self.state.compare_exchange(
                        LOCKED,
                        HAND_OVER,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    );
                    queue.push_front(queued.clone());
                } else {
                    queue.push_back(queued.clone());
                }
                queued
            };
            let leave = || self.cancel_wait(&queued);
            let notified =
                waiter::wait_until_or_cancel(&queued.waiter, deadline, &"Mutex::lock", leave);
            if !notified {
                // Out of the queue, with nothing; or taken off it meanwhile,
                // and handed the lock (kept, as if in time), or woken to try
                // (passed on, then one last try).
                return match self.leave(&queued) {
                    Left::Queue => false,
                    // A waiter that is running was not abandoned, so no
                    // release gave its lock on: it is ours. (The claim keeps
                    // a release that finds it abandoned later from doing so.)
                    Left::Handed => queued.waiter.claim_return(),
                    Left::Woken => {
                        self.wake_one();
                        self.try_acquire()
                    }
                };
            }
            // Relaxed: set under the queue's lock before the notification,
            // whose Release the waiter's Acquire has seen.
            if queued.handed.load(Ordering::Relaxed) || self.try_acquire() {
                return true;
            }
            lost = since.elapsed() >= FAIR_AFTER;
        }
    }

    fn unlock(&self) {
        // SeqCst: see `try_acquire`. LOCKED becomes UNLOCKED; HAND_OVER
        // becomes LOCKED, held for the waiter it goes to.
        if self.state.fetch_sub(1, Ordering::SeqCst) == HAND_OVER {
            self.hand_over();
        } else if self.waiting.load(Ordering::SeqCst) > 0 {
            self.wake_one();
        }
    }

    /// Hands the lock, held and asked for ([`HAND_OVER`]), to the first
    /// waiter; with nobody left waiting, releases it.
    #[cold]
    fn hand_over(&self) {
        let queued = {
            let mut queue = self.queue();
            let Some(queued) = queue.pop_front() else {
                // The waiter that asked left (timed out or cancelled).
                // Under the queue's lock, where no waiter registers: one
                // that comes after sees the lock free. SeqCst: see
                // `try_acquire`.
                self.state.store(UNLOCKED, Ordering::SeqCst);
                return;
            };
            // SeqCst: see `try_acquire`.
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            // Relaxed: under the queue's lock (see `lock_slow`).
            queued.handed.store(true, Ordering::Relaxed);
            // Held still, for the waiter now (a request that came since
            // `unlock` is served by this hand-over). SeqCst: as every
            // change.
            self.state.store(LOCKED, Ordering::SeqCst);
            queued
        };
        if !queued.waiter.notify() && queued.waiter.claim_return() {
            // Abandoned by the shutdown: it never takes the lock.
            self.unlock();
        }
    }

    /// Takes a waiter that stops waiting off the queue, or says what the
    /// party that took it off first gave it.
    fn leave(&self, queued: &Arc<Queued>) -> Left {
        let mut queue = self.queue();
        if waiter::remove(&mut queue, queued) {
            // SeqCst: see `try_acquire`.
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Left::Queue;
        }
        // Relaxed: set under the queue's lock, which we hold.
        match queued.handed.load(Ordering::Relaxed) {
            true => Left::Handed,
            false => Left::Woken,
        }
    }

    /// A waiter cut short by an unwind leaves the queue, or passes on the
    /// lock or the wake-up it was already given.
    fn cancel_wait(&self, queued: &Arc<Queued>) {
        match self.leave(queued) {
            Left::Queue => {}
            // Handed the lock: give it on, unless a release found the
            // waiter abandoned and did.
            Left::Handed => {
                if queued.waiter.claim_return() {
                    self.unlock();
                }
            }
            Left::Woken => self.wake_one(),
        }
    }

    #[cold]
    fn wake_one(&self) {
        // An abandoned fiber never retries: the next one is woken instead.
        waiter::notify_first(|| {
            let mut queue = self.queue();
            let next = queue.pop_front();
            if next.is_some() {
                // SeqCst: see `try_acquire`.
                self.waiting.fetch_sub(1, Ordering::SeqCst);
            }
            next.map(|queued| queued.waiter.clone())
        });
    }
}

/// What became of a waiter that stops waiting (see [`Mutex::leave`]).
enum Left {
    /// It left the queue, with nothing.
    Queue,
    /// A release handed it the lock.
    Handed,
    /// A release woke it to try for the lock.
    Woken,
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
