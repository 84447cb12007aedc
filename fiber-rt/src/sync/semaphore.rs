//! A counting semaphore: at most so many holders of its permits at once.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::waiter::{self, Waiter};

/// Permits handed out in arrival order; `acquire` parks the caller (a
/// fiber or a plain thread) until its permits are free.
///
/// Fair: permits go to waiters first come, first served, and a waiter
/// asking for many holds back those behind it until enough are returned,
/// so it is never starved by smaller requests. For the same reason
/// `try_acquire` fails while anyone waits.
///
/// ```
/// use fiber_rt::{Runtime, sync::Semaphore};
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
///
/// let rt = Runtime::new().unwrap();
/// // At most 3 fibers in the section at once.
/// let gate = Arc::new(Semaphore::new(3));
/// let inside = Arc::new(AtomicUsize::new(0));
/// let most = Arc::new(AtomicUsize::new(0));
/// let handles: Vec<_> = (0..20)
///     .map(|_| {
///         let (gate, inside, most) = (gate.clone(), inside.clone(), most.clone());
///         rt.spawn(move || {
///             let _permit = gate.acquire();
///             let now = inside.fetch_add(1, SeqCst) + 1;
///             most.fetch_max(now, SeqCst);
///             fiber_rt::yield_now();
///             inside.fetch_sub(1, SeqCst);
///         })
///     })
///     .collect();
/// handles.into_iter().for_each(|h| h.join().unwrap());
/// assert!(most.load(SeqCst) <= 3);
/// assert_eq!(gate.available_permits(), 3);
/// ```
pub struct Semaphore {
    state: std::sync::Mutex<State>,
}

/// The most permits a semaphore can have, so that no count overflows.
pub const MAX_PERMITS: usize = usize::MAX >> 3;

struct State {
    /// Permits nobody holds and no waiter has been handed.
    free: usize,
    /// Every permit there is, free or held (not those forgotten): at most
    /// [`MAX_PERMITS`], so giving permits back never overflows `free`.
    total: usize,
    /// Who waits, in order, and for how many permits.
    queue: VecDeque<(Arc<Waiter>, usize)>,
}

/// Permits held from a [`Semaphore`] behind an `Arc`, to move into a
/// spawned fiber; given back when dropped.
#[must_use = "the permits are given back as soon as this is dropped"]
pub struct OwnedSemaphorePermit {
    semaphore: Arc<Semaphore>,
    permits: usize,
}

/// Permits held from a [`Semaphore`]; given back when dropped.
#[must_use = "the permits are given back as soon as this is dropped"]
pub struct SemaphorePermit<'a> {
    semaphore: &'a Semaphore,
    permits: usize,
}

impl Semaphore {
    /// A semaphore with `permits` permits free.
    ///
    /// # Panics
    ///
    /// If `permits` is more than [`MAX_PERMITS`].
    pub const fn new(permits: usize) -> Semaphore {
        assert!(
            permits <= MAX_PERMITS,
            "a semaphore has at most MAX_PERMITS permits"
        );
        Semaphore {
            state: std::sync::Mutex::new(State {
                free: permits,
                total: permits,
                queue: VecDeque::new(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one permit, parking the caller until one is free.
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        self.acquire_many(1)
    }

    /// Takes `n` permits at once, parking the caller until they are free.
    /// With `n` larger than every permit there will ever be, it waits for
    /// good; `n == 0` returns at once.
    pub fn acquire_many(&self, n: usize) -> SemaphorePermit<'_> {
        let Some(waiter) = self.take_or_queue(n) else {
            return self.permit(n);
        };
        waiter::wait_or_cancel(&waiter, &"Semaphore::acquire", || {
            self.cancel_wait(&waiter, n)
        });
        self.permit(n)
    }

    /// [`acquire_many`](Self::acquire_many), giving up after `timeout`:
    /// `None` if the permits were not had by then.
    pub fn acquire_many_timeout(&self, n: usize, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        self.acquire_many_until(n, waiter::deadline_after(timeout))
    }

    /// [`acquire`](Self::acquire), giving up after `timeout`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        self.acquire_many_timeout(1, timeout)
    }

    fn acquire_many_until(&self, n: usize, deadline: Instant) -> Option<SemaphorePermit<'_>> {
        let Some(waiter) = self.take_or_queue(n) else {
            return Some(self.permit(n));
        };
        let granted =
            waiter::wait_until_or_cancel(&waiter, Some(deadline), &"Semaphore::acquire", || {
                self.cancel_wait(&waiter, n)
            });
        if granted || !self.leave_queue(&waiter) {
            // Handed the permits, in time or just as the wait timed out.
            return Some(self.permit(n));
        }
        None
    }

    /// [`acquire_many`](Self::acquire_many) on a shared semaphore, for a
    /// permit that can move into a spawned fiber:
    ///
    /// ```
    /// use fiber_rt::{Runtime, sync::Semaphore};
    /// use std::sync::Arc;
    ///
    /// let rt = Runtime::new().unwrap();
    /// let gate = Arc::new(Semaphore::new(2));
    /// let handles: Vec<_> = (0..10)
    ///     .map(|i| {
    ///         // Taken before the spawn: at most two of these run at once.
    ///         let permit = gate.clone().acquire_owned();
    ///         rt.spawn(move || {
    ///             let _permit = permit;
    ///             i * 2
    ///         })
    ///     })
    ///     .collect();
    /// let sum: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    /// assert_eq!(sum, 90);
    /// ```
    pub fn acquire_many_owned(self: Arc<Self>, n: usize) -> OwnedSemaphorePermit {
        let permits = self.acquire_many(n).keep();
        OwnedSemaphorePermit {
            semaphore: self,
            permits,
        }
    }

    /// [`acquire_many_owned`](Self::acquire_many_owned) of one permit.
    pub fn acquire_owned(self: Arc<Self>) -> OwnedSemaphorePermit {
        self.acquire_many_owned(1)
    }

    /// [`try_acquire_many`](Self::try_acquire_many) on a shared semaphore.
    pub fn try_acquire_many_owned(self: Arc<Self>, n: usize) -> Option<OwnedSemaphorePermit> {
        let permits = self.try_acquire_many(n)?.keep();
        Some(OwnedSemaphorePermit {
            semaphore: self,
            permits,
        })
    }

    /// Takes one permit if one is free and nobody waits.
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if they are free and nobody waits (always, for
    /// `n == 0`).
    pub fn try_acquire_many(&self, n: usize) -> Option<SemaphorePermit<'_>> {
        if n == 0 {
            return Some(self.permit(0));
        }
        let mut state = self.state();
        if state.queue.is_empty() && state.free >= n {
            state.free -= n;
            return Some(self.permit(n));
        }
        None
    }

    /// Adds `n` permits, handing them to waiters in order.
    ///
    /// # Panics
    ///
    /// If the semaphore would have more than [`MAX_PERMITS`] permits.
    pub fn add_permits(&self, n: usize) {
        let mut state = self.state();
        state.total = state
            .total
            .checked_add(n)
            .filter(|&total| total <= MAX_PERMITS)
            .expect("a semaphore has at most MAX_PERMITS permits");
        // At most `total`: no overflow.
        state.free += n;
        self.hand_out(state);
    }

    /// `n` held permits were forgotten: they leave the total, so that a
    /// semaphore whose permits are taken and forgotten while others are
    /// added (a rate limiter) never reaches [`MAX_PERMITS`].
    fn forgotten(&self, n: usize) {
        if n > 0 {
            // Held permits are part of the total: no underflow.
            self.state().total -= n;
        }
    }

    /// Permits free now, those that a waiter at the head of the queue is
    /// collecting (it asked for more than were free) included.
    pub fn available_permits(&self) -> usize {
        self.state().free
    }

    fn permit(&self, permits: usize) -> SemaphorePermit<'_> {
        SemaphorePermit {
            semaphore: self,
            permits,
        }
    }

    /// Takes `n` permits at once if they are free and nobody waits ahead;
    /// else queues, and returns the waiter to wait on.
    fn take_or_queue(&self, n: usize) -> Option<Arc<Waiter>> {
        if n == 0 {
            return None;
        }
        let mut state = self.state();
        if state.queue.is_empty() && state.free >= n {
            state.free -= n;
            return None;
        }
        let waiter = Waiter::new();
        state.queue.push_back((waiter.clone(), n));
        Some(waiter)
    }

    /// Hands free permits to waiters from the front of the queue, as long
    /// as the first wants no more than are free. A waiter the shutdown
    /// abandoned never takes what it is handed: its permits go back.
    fn hand_out<'a>(&'a self, mut state: std::sync::MutexGuard<'a, State>) {
        loop {
            match state.queue.front() {
                Some(&(_, want)) if want <= state.free => {}
                _ => return,
            }
            let (waiter, want) = state.queue.pop_front().expect("checked above");
            state.free -= want;
            // Woken outside the lock: the waiter may run at once, on
            // another worker, and would only wait for it.
            drop(state);
            let taken = waiter.notify() || !waiter.claim_return();
            state = self.state();
            if !taken {
                state.free += want;
            }
        }
    }

    /// Takes `waiter` out of the queue; `false` if it was no longer there
    /// (it was handed its permits). Leaving may let those behind it go.
    fn leave_queue(&self, waiter: &Arc<Waiter>) -> bool {
        let mut state = self.state();
        let Some(at) = state.queue.iter().position(|(w, _)| Arc::ptr_eq(w, waiter)) else {
            return false;
        };
        state.queue.remove(at);
        self.hand_out(state);
        true
    }

    /// A waiter cut short by an unwind leaves the queue, or gives back
    /// the permits it was already handed.
    fn cancel_wait(&self, waiter: &Arc<Waiter>, n: usize) {
        // Handed the permits: give them back, unless the hand-out found us
        // abandoned and did.
        if !self.leave_queue(waiter) && waiter.claim_return() {
            self.release(n);
        }
    }

    fn release(&self, n: usize) {
        let mut state = self.state();
        state.free += n;
        self.hand_out(state);
    }
}

impl SemaphorePermit<'_> {
    /// How many permits this holds.
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// Keeps the permits taken for good: they are not given back, and no
    /// longer count toward [`MAX_PERMITS`] (as many may be added again).
    pub fn forget(self) {
        let semaphore = self.semaphore;
        semaphore.forgotten(self.keep());
    }

    /// Lets go of the permits without giving them back; how many.
    fn keep(mut self) -> usize {
        std::mem::take(&mut self.permits)
    }
}

impl OwnedSemaphorePermit {
    /// How many permits this holds.
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// The semaphore the permits came from.
    pub fn semaphore(&self) -> &Arc<Semaphore> {
        &self.semaphore
    }

    /// Keeps the permits taken for good: they are not given back, and no
    /// longer count toward [`MAX_PERMITS`] (as many may be added again).
    pub fn forget(mut self) {
        self.semaphore.forgotten(std::mem::take(&mut self.permits));
    }
}

impl Drop for OwnedSemaphorePermit {
    fn drop(&mut self) {
        if self.permits > 0 {
            self.semaphore.release(self.permits);
        }
    }
}

impl fmt::Debug for OwnedSemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSemaphorePermit")
            .field("permits", &self.permits)
            .finish()
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        if self.permits > 0 {
            self.semaphore.release(self.permits);
        }
    }
}

impl Default for Semaphore {
    /// A semaphore with no permits: everyone waits for `add_permits`.
    fn default() -> Self {
        Semaphore::new(0)
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("Semaphore")
            .field("free", &state.free)
            .field("waiting", &state.queue.len())
            .finish()
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("permits", &self.permits)
            .finish()
    }
}
