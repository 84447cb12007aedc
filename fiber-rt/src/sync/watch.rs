//! One value, many observers: the sender replaces or changes the value,
//! and each receiver sees the latest one and can park until it changes.
//! Values in between may be missed: a receiver that looks less often than
//! the sender sends sees only the newest.
//!
//! Every send gives the value a new version; a receiver remembers the
//! version it saw last, and [`Receiver::changed`] parks the fiber (or
//! blocks the thread) until a newer one is there.
//!
//! ```
//! use fiber_rt::sync::watch;
//!
//! let rt = fiber_rt::Runtime::new().unwrap();
//! let (tx, rx) = watch::channel(0u32);
//! let observers: Vec<_> = (0..3)
//!     .map(|_| {
//!         let mut rx = rx.clone();
//!         rt.spawn(move || {
//!             // Follows the value until the sender is gone.
//!             let mut last = *rx.borrow_and_update();
//!             while rx.changed().is_ok() {
//!                 last = *rx.borrow_and_update();
//!             }
//!             last
//!         })
//!     })
//!     .collect();
//! for v in 1..=10 {
//!     tx.send(v).unwrap();
//! }
//! drop(tx);
//! // Some values may have been skipped; never the last one.
//! assert!(observers.into_iter().all(|o| o.join().unwrap() == 10));
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use super::rwlock::{RwLock, RwLockReadGuard};
use super::select::sealed::{Watch, Watcher};
use super::waiter::{self, Waiter};

/// A channel holding `init`, with one sender and one receiver, which
/// counts `init` as seen.
pub fn channel<T>(init: T) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        value: RwLock::new(init),
        state: std::sync::Mutex::new(State {
            version: 0,
            sender: true,
            receivers: 1,
            waiters: VecDeque::new(),
            closed_waiters: Vec::new(),
        }),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared, seen: 0 },
    )
}

struct Shared<T> {
    /// A fiber-aware lock: a sender that waits for readers parks.
    value: RwLock<T>,
    state: std::sync::Mutex<State>,
}

struct State {
    /// Counts the sends; bumped while the value's write lock is held, so a
    /// reader that reads it under the read lock gets the value's version.
    version: u64,
    /// Whether the sender is still there.
    sender: bool,
    receivers: usize,
    /// Receivers parked in `changed` and `Select`s watching a receiver,
    /// all woken at every send and when the sender goes.
    waiters: VecDeque<Arc<Waiter>>,
    /// The sender, waiting in `closed` for the last receiver to go.
    closed_waiters: Vec<Arc<Waiter>>,
}

impl<T> Shared<T> {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Sends new values; there is one. Dropping it closes the channel: the
/// receivers keep the last value, and their `changed` fails once they have
/// seen it.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// Observes the value; clone it (the clone has seen what this one has) or
/// [`subscribe`](Sender::subscribe) for more observers.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// The version this receiver saw last.
    seen: u64,
}

/// A borrow of the value, from [`Receiver::borrow`] and the like. It holds
/// the value's read lock: a send waits (parked) for it to drop, and so does
/// a borrow asked for behind that send. So keep it short, and neither send
/// nor borrow again from the fiber that holds one: it would wait for
/// itself.
pub struct Ref<'a, T> {
    guard: RwLockReadGuard<'a, T>,
    has_changed: bool,
}

/// Every receiver is gone; the value comes back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

/// The sender is gone and the receiver has seen its last value.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct RecvError;

/// Why [`Receiver::changed_timeout`] returned without a new value.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum RecvTimeoutError {
    /// No new value came before the timeout; the sender is still there.
    Timeout,
    /// No new value, and the sender is gone.
    Closed,
}

impl<T> Sender<T> {
    /// Replaces the value and wakes every receiver parked in `changed`;
    /// gives `value` back, changing nothing, if every receiver is gone.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        if self.shared.state().receivers == 0 {
            return Err(SendError(value));
        }
        self.send_replace(value);
        Ok(())
    }

    /// Replaces the value, receivers or not, and returns the old one.
    pub fn send_replace(&self, value: T) -> T {
        let mut old = None;
        self.send_if_modified(|current| {
            old = Some(std::mem::replace(current, value));
            true
        });
        old.expect("the closure ran")
    }

    /// Changes the value in place, receivers or not, and tells them.
    pub fn send_modify(&self, modify: impl FnOnce(&mut T)) {
        self.send_if_modified(|value| {
            modify(value);
            true
        });
    }

    /// Lets `modify` change the value in place; if it returns `true`, the
    /// change is a new version and the receivers are told, else they are
    /// not (so it should return `false` only if it changed nothing). Returns
    /// what `modify` did. If `modify` panics, the receivers are not told.
    pub fn send_if_modified(&self, modify: impl FnOnce(&mut T) -> bool) -> bool {
        let mut value = self.shared.value.write();
        if !modify(&mut value) {
            return false;
        }
        let waiters = {
            let mut s = self.shared.state();
            s.version += 1;
            std::mem::take(&mut s.waiters)
        };
        // Unlocked first, so that the woken receivers can read at once.
        drop(value);
        waiters.iter().for_each(|w| w.wake());
        true
    }

    /// Borrows the current value (see [`Ref`] on holding it).
    pub fn borrow(&self) -> Ref<'_, T> {
        Ref {
            guard: self.shared.value.read(),
            has_changed: false,
        }
    }

    /// A new receiver, which counts the current value as seen.
    pub fn subscribe(&self) -> Receiver<T> {
        let mut s = self.shared.state();
        s.receivers += 1;
        Receiver {
            shared: self.shared.clone(),
            seen: s.version,
        }
    }

    /// How many receivers there are.
    pub fn receiver_count(&self) -> usize {
        self.shared.state().receivers
    }

    /// Whether every receiver is gone (so `send` fails).
    pub fn is_closed(&self) -> bool {
        self.receiver_count() == 0
    }

    /// Waits until every receiver is gone: for a publisher to stop once
    /// nobody observes. Parks a fiber, blocks a plain thread.
    pub fn closed(&self) {
        self.closed_until(None);
    }

    /// Like [`closed`](Self::closed), giving up once `timeout` has passed;
    /// whether every receiver is gone.
    pub fn closed_timeout(&self, timeout: Duration) -> bool {
        self.closed_until(Some(waiter::deadline_after(timeout)))
    }

    fn closed_until(&self, deadline: Option<Instant>) -> bool {
        waiter::wait_until_gone(
            || self.shared.state(),
            |s| s.receivers == 0,
            |s| &mut s.closed_waiters,
            deadline,
            &"watch::Sender::closed",
        )
    }
}

impl<T> Receiver<T> {
    /// Borrows the current value without counting it as seen (see [`Ref`]
    /// on holding it).
    pub fn borrow(&self) -> Ref<'_, T> {
        let guard = self.shared.value.read();
        // Read under the value's lock: the version of the value borrowed.
        let version = self.shared.state().version;
        Ref {
            guard,
            has_changed: version != self.seen,
        }
    }

    /// Borrows the current value and counts it as seen, so that `changed`
    /// waits for a newer one.
    pub fn borrow_and_update(&mut self) -> Ref<'_, T> {
        let guard = self.shared.value.read();
        let version = self.shared.state().version;
        let has_changed = version != self.seen;
        self.seen = version;
        Ref { guard, has_changed }
    }

    /// Whether a value newer than the last seen is there, without counting
    /// it as seen. Fails if the sender is gone and there is none.
    pub fn has_changed(&self) -> Result<bool, RecvError> {
        let s = self.shared.state();
        match (s.version != self.seen, s.sender) {
            (false, false) => Err(RecvError),
            (changed, _) => Ok(changed),
        }
    }

    /// Waits until a value newer than the last seen is there, and counts
    /// it as seen (read it with [`borrow`](Self::borrow)). Returns at once
    /// if there is one already. Fails once the sender is gone and this
    /// receiver has seen its last value.
    pub fn changed(&mut self) -> Result<(), RecvError> {
        self.changed_until(None).map_err(|_| RecvError)
    }

    /// [`changed`](Self::changed), waiting at most `timeout`.
    pub fn changed_timeout(&mut self, timeout: Duration) -> Result<(), RecvTimeoutError> {
        self.changed_until(Some(waiter::deadline_after(timeout)))
    }

    /// Waits until the current value satisfies `pred`, and returns a
    /// borrow of it, counted as seen. `pred` sees the current value first,
    /// seen or not, then each newer one that comes (values in between may
    /// be skipped, as for [`changed`](Self::changed)). The borrow's
    /// [`has_changed`](Ref::has_changed) says whether the value is newer
    /// than the last the receiver had seen before the call. Fails if the
    /// sender is gone and its last value does not satisfy `pred`.
    ///
    /// `pred` runs while the value's read lock is held (see [`Ref`]): it
    /// should be quick, and neither send nor borrow.
    ///
    /// ```
    /// use fiber_rt::sync::watch;
    ///
    /// let rt = fiber_rt::Runtime::new().unwrap();
    /// let (tx, mut rx) = watch::channel(0u32);
    /// let setter = rt.spawn(move || (1..=5).for_each(|n| tx.send(n).unwrap()));
    /// assert_eq!(*rx.wait_for(|&n| n >= 5).unwrap(), 5);
    /// setter.join().unwrap();
    /// // The sender is gone, and its last value will not do.
    /// assert!(rx.wait_for(|&n| n > 5).is_err());
    /// ```
    pub fn wait_for(&mut self, mut pred: impl FnMut(&T) -> bool) -> Result<Ref<'_, T>, RecvError> {
        // Borrowed apart, so that the returned borrow of the value does not
        // keep `seen` from moving on in the loop.
        let (shared, seen) = (&*self.shared, &mut self.seen);
        // What the receiver had seen before the call: a value that comes
        // while this waits is new to it too, though the wait moves `seen`.
        let seen_before = *seen;
        loop {
            let guard = shared.value.read();
            // Read under the value's lock: the version of the value `pred`
            // sees.
            let version = shared.state().version;
            *seen = version;
            if pred(&guard) {
                let has_changed = version != seen_before;
                return Ok(Ref { guard, has_changed });
            }
            drop(guard);
            // Fails only if the sender is gone with no newer value: then
            // `pred` has seen the last one.
            shared.changed_until(seen, None).map_err(|_| RecvError)?;
        }
    }

    fn changed_until(&mut self, deadline: Option<Instant>) -> Result<(), RecvTimeoutError> {
        self.shared.changed_until(&mut self.seen, deadline)
    }

    /// How many waits in `changed` are parked, and `Select`s watching.
    #[cfg(test)]
    fn parked(&self) -> usize {
        self.shared.state().waiters.len()
    }
}

impl<T> Shared<T> {
    /// Waits until a version newer than `seen` is there, and moves `seen`
    /// to it; fails once the sender is gone and `seen` is its last.
    fn changed_until(
        &self,
        seen: &mut u64,
        deadline: Option<Instant>,
    ) -> Result<(), RecvTimeoutError> {
        loop {
            let waiter = {
                let mut s = self.state();
                if s.version != *seen {
                    *seen = s.version;
                    return Ok(());
                }
                if !s.sender {
                    return Err(RecvTimeoutError::Closed);
                }
                if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                    return Err(RecvTimeoutError::Timeout);
                }
                let waiter = Waiter::new();
                s.waiters.push_back(waiter.clone());
                waiter
            };
            // Every waiter is woken at every send, so one that leaves hands
            // nothing on: it only takes its entry out.
            let leave = || {
                waiter::remove(&mut self.state().waiters, &waiter);
            };
            let reason = &"watch::Receiver::changed";
            if !waiter::wait_until_or_cancel(&waiter, deadline, reason, leave) {
                leave();
            }
            // The loop looks: a new version (that came in time or just as
            // the time ran out), the sender gone, or the deadline passed.
        }
    }
}

/// Ready when `changed` would not wait: a value not seen yet, or the
/// sender gone. Checked and watched under the state lock, under which a
/// send bumps the version and takes the waiters, and the sender's drop
/// marks it gone and takes them: a change either comes before the look,
/// which sees it, or after, and wakes the watcher.
impl<T> Watch for Receiver<T> {
    fn is_ready(&self) -> bool {
        ready(&self.shared.state(), self.seen)
    }

    fn watch(&self, watcher: &Watcher) -> bool {
        let mut s = self.shared.state();
        if ready(&s, self.seen) {
            return true;
        }
        s.waiters.push_back(watcher.0.clone());
        false
    }

    fn unwatch(&self, watcher: &Watcher) {
        waiter::remove(&mut self.shared.state().waiters, &watcher.0);
    }
}

impl<T> super::select::Selectable for Receiver<T> {}

/// Whether a receiver that has seen version `seen` has something to take:
/// a newer value, or the news that the sender is gone.
fn ready(s: &State, seen: u64) -> bool {
    s.version != seen || !s.sender
}

impl<T> Ref<'_, T> {
    /// Whether the value borrowed was newer than the last the receiver
    /// had seen (always `false` for a sender's borrow).
    pub fn has_changed(&self) -> bool {
        self.has_changed
    }
}

impl<T> Deref for Ref<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.shared.state().receivers += 1;
        Receiver {
            shared: self.shared.clone(),
            seen: self.seen,
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let closed = {
            let mut s = self.shared.state();
            s.receivers -= 1;
            match s.receivers {
                0 => std::mem::take(&mut s.closed_waiters),
                _ => Vec::new(),
            }
        };
        closed.iter().for_each(|w| w.wake());
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waiters = {
            let mut s = self.shared.state();
            s.sender = false;
            std::mem::take(&mut s.waiters)
        };
        waiters.iter().for_each(|w| w.wake());
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("watch::Sender { .. }")
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("watch::Receiver")
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

impl<T: fmt::Debug> fmt::Debug for Ref<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a watch channel with no receiver left")
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the watch channel's sender is gone and its last value was seen")
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecvTimeoutError::Timeout => "timed out waiting for a watch channel's value to change",
            RecvTimeoutError::Closed => {
                "the watch channel's sender is gone and its last value was seen"
            }
        })
    }
}

impl<T> std::error::Error for SendError<T> {}
impl std::error::Error for RecvError {}
impl std::error::Error for RecvTimeoutError {}

#[cfg(test)]
mod tests {
    //! That a wait which ends, however it ends, leaves no entry behind.

    use std::time::Duration;

    use super::channel;
    use crate::Builder;

    #[test]
    fn timed_out_and_cancelled_waits_leave_no_entries_behind() {
        let rt = Builder::new().workers(2).build().unwrap();
        let (tx, mut rx) = channel(0u32);
        assert!(rx.changed_timeout(Duration::from_millis(2)).is_err());
        assert_eq!(rx.parked(), 0);
        let probe = rx.clone();
        rt.block_on(move || {
            let waiting: Vec<_> = (0..3)
                .map(|_| {
                    let mut rx = probe.clone();
                    crate::spawn(move || rx.changed())
                })
                .collect();
            while probe.parked() < 3 {
                crate::sleep(Duration::from_millis(1));
            }
            for w in waiting {
                w.cancel();
                assert!(w.join().unwrap_err().is_cancelled());
            }
            assert_eq!(probe.parked(), 0);
        });
        tx.send(1).unwrap();
        assert_eq!(rx.changed(), Ok(()));
    }

    #[test]
    fn selects_that_end_however_they_end_leave_no_entries_behind() {
        let (tx, mut rx) = channel(0u32);
        crate::sync::select::tests_support::selects_leave_no_entries_behind(
            &rx,
            super::Receiver::parked,
        );
        tx.send(1).unwrap();
        assert_eq!(rx.changed(), Ok(()));
    }
}
