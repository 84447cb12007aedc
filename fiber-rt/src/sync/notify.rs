//! [`Notify`]: a wake-up that carries no data, for one party or for all
//! that wait now.
//!
//! The waiters wait in line. A `notify_one` with nobody waiting leaves a
//! permit (one at most) that the next wait takes at once, so a wake-up
//! sent between a look at some state and the wait for it is not lost.
//! `notify_waiters` wakes those waiting now and leaves no permit.
//!
//! A waiter handed a `notify_one` that is cancelled before it acts on it
//! passes it on (to the next in line, or as the permit), as a lock or a
//! message would be; one woken by `notify_waiters` hands nothing over.
//!
//! `notify_waiters` reaches only those in line, so a party that looks at
//! some state and then waits for it to change would miss one sent between
//! the look and the wait. [`Notify::listen`] takes the place in line
//! first: the look comes after, and the [`Listener`] waits.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::waiter::{self, Waiter};

/// Wakes one waiting fiber (or thread), or every one, with no data: a
/// signal that some state changed, which the woken party then looks at.
///
/// ```
/// use std::sync::Arc;
/// use fiber_rt::sync::Notify;
///
/// let rt = fiber_rt::Runtime::new().unwrap();
/// rt.block_on(|| {
///     let ready = Arc::new(Notify::new());
///     let waiting = {
///         let ready = ready.clone();
///         fiber_rt::spawn(move || {
///             ready.notified();
///             "woken"
///         })
///     };
///     // Before the waiter waits or after, the wake-up is not lost.
///     ready.notify_one();
///     assert_eq!(waiting.join().unwrap(), "woken");
/// });
/// ```
#[derive(Debug, Default)]
pub struct Notify {
    state: std::sync::Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// A `notify_one` that found nobody waiting.
    permit: bool,
    /// Who waits, in order.
    waiters: VecDeque<Arc<Entry>>,
}

/// One wait: its waiter, and whether a `notify_one` was handed to it (to
/// pass on if the wait is cancelled first).
#[derive(Debug)]
struct Entry {
    waiter: Arc<Waiter>,
    handed_one: AtomicBool,
}

impl Notify {
    /// A `Notify` with nobody waiting and no permit.
    pub const fn new() -> Self {
        Notify {
            state: std::sync::Mutex::new(State {
                permit: false,
                waiters: VecDeque::new(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the first party waiting; with nobody waiting, leaves a permit
    /// for the next wait (a second one before that changes nothing).
    pub fn notify_one(&self) {
        loop {
            let entry = {
                let mut state = self.state();
                let Some(entry) = state.waiters.pop_front() else {
                    state.permit = true;
                    return;
                };
                // Relaxed, under the lock: a cancelled waiter that finds
                // itself off the line reads this after taking the lock.
                entry.handed_one.store(true, Ordering::Relaxed);
                entry
            };
            if entry.waiter.notify() {
                return;
            }
            // A fiber the shutdown abandoned: the next one, or the permit.
        }
    }

    /// Wakes every party waiting now; leaves no permit.
    pub fn notify_waiters(&self) {
        let all = std::mem::take(&mut self.state().waiters);
        all.iter().for_each(|entry| entry.waiter.wake());
    }

    /// Waits for a wake-up: the permit if there is one, or the next
    /// `notify_one` or `notify_waiters`. Parks a fiber, blocks a plain
    /// thread.
    pub fn notified(&self) {
        if let Some(entry) = self.wait_in_line() {
            waiter::wait_or_cancel(&entry.waiter, &"Notify::notified", || {
                self.cancel_wait(&entry)
            });
        }
    }

    /// Like [`notified`](Self::notified), giving up once `timeout` has
    /// passed; whether woken. A wake-up that comes just as the time runs
    /// out counts.
    pub fn notified_timeout(&self, timeout: Duration) -> bool {
        let Some(entry) = self.wait_in_line() else {
            return true;
        };
        let deadline = Some(waiter::deadline_after(timeout));
        let woken =
            waiter::wait_until_or_cancel(&entry.waiter, deadline, &"Notify::notified", || {
                self.cancel_wait(&entry)
            });
        // Timed out, unless a notifier took the entry off the line first.
        woken || !self.leave_line(&entry)
    }

    /// Takes a place in line now, to wait in later: a `notify_one` or a
    /// `notify_waiters` sent after this call and before the wait wakes the
    /// [`Listener`] at once. Look at the state the wake-up is about
    /// between the two, and no wake-up is lost, `notify_waiters`' included.
    /// Takes the permit, if there is one, at once (a listener dropped
    /// without waiting gives it back, as it passes on a `notify_one` it
    /// was handed).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use fiber_rt::sync::Notify;
    ///
    /// let rt = fiber_rt::Runtime::new().unwrap();
    /// rt.block_on(|| {
    ///     let changed = Arc::new(Notify::new());
    ///     let ready = Arc::new(AtomicBool::new(false));
    ///     let setter = {
    ///         let (changed, ready) = (changed.clone(), ready.clone());
    ///         fiber_rt::spawn(move || {
    ///             // Acquire/Release: the flag is what the waiter reads.
    ///             ready.store(true, Ordering::Release);
    ///             changed.notify_waiters();
    ///         })
    ///     };
    ///     loop {
    ///         let listener = changed.listen();
    ///         if ready.load(Ordering::Acquire) {
    ///             break;
    ///         }
    ///         // A `notify_waiters` sent since `listen` ends this at once.
    ///         listener.wait();
    ///     }
    ///     setter.join().unwrap();
    /// });
    /// ```
    pub fn listen(&self) -> Listener<'_> {
        let entry = self.wait_in_line();
        Listener {
            notify: self,
            permit: entry.is_none(),
            entry,
            _one_fiber: PhantomData,
        }
    }

    /// Takes the permit (`None`: no need to wait), or joins the line.
    fn wait_in_line(&self) -> Option<Arc<Entry>> {
        let mut state = self.state();
        if std::mem::take(&mut state.permit) {
            return None;
        }
        let entry = Arc::new(Entry {
            waiter: Waiter::new(),
            handed_one: AtomicBool::new(false),
        });
        state.waiters.push_back(entry.clone());
        Some(entry)
    }

    /// Takes `entry` off the line; `false` if a notifier took it first.
    fn leave_line(&self, entry: &Arc<Entry>) -> bool {
        waiter::remove(&mut self.state().waiters, entry)
    }

    /// A wait cut short by a cancellation: off the line, or, if a
    /// `notify_one` was handed to it already, that wake-up goes on.
    fn cancel_wait(&self, entry: &Arc<Entry>) {
        // Relaxed: set under the lock, when the notifier took the entry
        // off the line; `leave_line` took the lock after that.
        if !self.leave_line(entry) && entry.handed_one.load(Ordering::Relaxed) {
            self.notify_one();
        }
    }
}

/// A place in a [`Notify`]'s line, taken by [`Notify::listen`] before the
/// caller looks at the state it waits for. It waits on the fiber (or
/// thread) that made it, so it cannot be sent elsewhere. Dropped without
/// waiting, it leaves the line and passes on a `notify_one` (or the
/// permit) it was handed.
///
/// ```compile_fail
/// // A listener waits on the fiber that made it: it cannot move.
/// let notify: &'static _ = Box::leak(Box::new(fiber_rt::sync::Notify::new()));
/// let listener = notify.listen();
/// std::thread::spawn(move || listener.wait());
/// ```
#[derive(Debug)]
#[must_use = "a listener does nothing unless it waits"]
pub struct Listener<'a> {
    notify: &'a Notify,
    /// The place in line, until the wait (`None` if the permit was taken).
    entry: Option<Arc<Entry>>,
    /// The permit was taken at `listen` and not yet used by a wait.
    permit: bool,
    /// The entry's waiter wakes the fiber or thread that listened.
    _one_fiber: PhantomData<*const ()>,
}

impl Listener<'_> {
    /// Whether a wake-up has come: the wait would return at once.
    pub fn is_notified(&self) -> bool {
        self.permit
            || self
                .entry
                .as_ref()
                .is_some_and(|entry| entry.waiter.is_notified())
    }

    /// Waits for the wake-up, which may have come already: the permit
    /// taken at `listen`, or a `notify_one` or `notify_waiters` sent since.
    pub fn wait(mut self) {
        self.permit = false;
        if let Some(entry) = self.entry.take() {
            waiter::wait_or_cancel(&entry.waiter, &"Notify::notified", || {
                self.notify.cancel_wait(&entry)
            });
        }
    }

    /// Like [`wait`](Self::wait), giving up once `timeout` has passed;
    /// whether woken. A wake-up that comes just as the time runs out
    /// counts.
    pub fn wait_timeout(mut self, timeout: Duration) -> bool {
        self.permit = false;
        let Some(entry) = self.entry.take() else {
            return true;
        };
        let deadline = Some(waiter::deadline_after(timeout));
        let woken =
            waiter::wait_until_or_cancel(&entry.waiter, deadline, &"Notify::notified", || {
                self.notify.cancel_wait(&entry)
            });
        // Timed out, unless a notifier took the entry off the line first.
        woken || !self.notify.leave_line(&entry)
    }
}

impl Drop for Listener<'_> {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            self.notify.cancel_wait(&entry);
        } else if self.permit {
            // The permit, taken at `listen` and never used: back it goes.
            self.notify.notify_one();
        }
    }
}
