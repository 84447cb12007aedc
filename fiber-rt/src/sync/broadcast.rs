//! Broadcast channels: every receiver gets every message, in order, from
//! a ring of bounded size. Sending never waits: a full ring drops its
//! oldest message, and a receiver that had not taken it yet is told how
//! many it missed ([`RecvError::Lagged`]) and goes on from the oldest
//! message still there. Receiving parks the fiber (or blocks the thread)
//! until a message comes.
//!
//! A message is kept until every receiver there was when it was sent has
//! taken it (or it is pushed out); the last one to take it gets the value
//! itself, the others a clone.
//!
//! ```
//! use fiber_rt::sync::broadcast::{self, RecvError};
//!
//! let rt = fiber_rt::Runtime::new().unwrap();
//! let (tx, rx) = broadcast::channel::<u32>(16);
//! let listeners: Vec<_> = (0..3)
//!     .map(|_| {
//!         let mut rx = rx.clone();
//!         rt.spawn(move || {
//!             let mut got = Vec::new();
//!             while let Ok(n) = rx.recv() {
//!                 got.push(n);
//!             }
//!             got
//!         })
//!     })
//!     .collect();
//! drop(rx);
//! for n in 1..=10 {
//!     assert_eq!(tx.send(n), Ok(3), "three receivers");
//! }
//! drop(tx); // the receivers get what is left, then `Closed`
//! for l in listeners {
//!     assert_eq!(l.join().unwrap(), (1..=10).collect::<Vec<_>>());
//! }
//!
//! // A receiver too slow for the ring is told how many it missed.
//! let (tx, mut rx) = broadcast::channel(2);
//! for n in 0..5 {
//!     tx.send(n).unwrap();
//! }
//! assert_eq!(rx.recv(), Err(RecvError::Lagged(3)));
//! assert_eq!(rx.recv(), Ok(3));
//! assert_eq!(rx.recv(), Ok(4));
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use super::select::sealed::{Watch, Watcher};
use super::waiter::{self, Waiter};

/// A channel whose ring holds the last `capacity` messages (at least 1),
/// with one sender and one receiver.
pub fn channel<T: Clone>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        capacity: capacity.max(1),
        state: std::sync::Mutex::new(State {
            ring: VecDeque::new(),
            head: 0,
            senders: 1,
            receivers: 1,
            waiters: VecDeque::new(),
            closed_waiters: Vec::new(),
        }),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared, next: 0 },
    )
}

struct Shared<T> {
    capacity: usize,
    state: std::sync::Mutex<State<T>>,
}

struct State<T> {
    /// The messages kept, oldest first. A receiver takes them in order,
    /// so a message's `unread` (the receivers at or before it) never
    /// exceeds a newer one's: the first to reach 0 is the oldest, and
    /// taking it out there keeps every message listed unread by someone.
    ring: VecDeque<Slot<T>>,
    /// The position of `ring[0]`: how many messages came before it.
    head: u64,
    senders: usize,
    receivers: usize,
    /// Receivers parked in `recv` and `Select`s watching a receiver, all
    /// woken at every message and when the last sender goes.
    waiters: VecDeque<Arc<Waiter>>,
    /// Senders waiting in `closed` for the last receiver to go.
    closed_waiters: Vec<Arc<Waiter>>,
}

struct Slot<T> {
    /// Shared, so that receivers clone the value outside the lock.
    value: Arc<T>,
    /// The receivers yet to take it.
    unread: usize,
}

impl<T> State<T> {
    /// The position the next message will have.
    fn tail(&self) -> u64 {
        self.head + self.ring.len() as u64
    }

    /// Counts `by` more (or, negative, fewer) receivers yet to take each
    /// message from `from` on, and takes out the oldest ones nobody is yet
    /// to take; returns those, to be dropped outside the lock.
    fn count_readers_from(&mut self, from: u64, by: isize) -> Vec<Slot<T>> {
        let skip = from.saturating_sub(self.head) as usize;
        for slot in self.ring.iter_mut().skip(skip) {
            slot.unread = slot
                .unread
                .checked_add_signed(by)
                .expect("a message's readers are counted once each");
        }
        let read = self.ring.iter().take_while(|s| s.unread == 0).count();
        self.head += read as u64;
        self.ring.drain(..read).collect()
    }
}

impl<T> Shared<T> {
    fn state(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Sends to every receiver; clone it for more senders. Sending never
/// waits.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// Receives every message sent after it came to be, in order. A clone
/// starts where this one is; [`resubscribe`](Self::resubscribe) or
/// [`Sender::subscribe`] make one that starts with the next message sent.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// The position of the next message to take.
    next: u64,
}

/// Every receiver is gone; the message comes back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

/// Why [`Receiver::recv`] returned no message.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum RecvError {
    /// Every sender is gone and every message taken.
    Closed,
    /// The ring dropped this many messages before the receiver took them;
    /// its next receive gets the oldest message kept.
    Lagged(u64),
}

/// Why [`Receiver::try_recv`] returned no message.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum TryRecvError {
    /// No message now; senders remain.
    Empty,
    /// Every sender is gone and every message taken.
    Closed,
    /// As [`RecvError::Lagged`].
    Lagged(u64),
}

/// Why [`Receiver::recv_timeout`] returned no message.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum RecvTimeoutError {
    /// No message came before the timeout; senders remain.
    Timeout,
    /// Every sender is gone and every message taken.
    Closed,
    /// As [`RecvError::Lagged`].
    Lagged(u64),
}

impl<T> Sender<T> {
    /// Sends `value` to every receiver there is now, and returns how many
    /// that is; gives it back if there is none. If the ring is full, its
    /// oldest message goes.
    pub fn send(&self, value: T) -> Result<usize, SendError<T>> {
        let mut s = self.shared.state();
        if s.receivers == 0 {
            return Err(SendError(value));
        }
        let pushed_out = if s.ring.len() == self.shared.capacity {
            s.head += 1;
            s.ring.pop_front()
        } else {
            None
        };
        let receivers = s.receivers;
        s.ring.push_back(Slot {
            value: Arc::new(value),
            unread: receivers,
        });
        let waiters = std::mem::take(&mut s.waiters);
        drop(s);
        waiters.iter().for_each(|w| w.wake());
        drop(pushed_out);
        Ok(receivers)
    }

    /// A receiver that starts with the next message sent.
    pub fn subscribe(&self) -> Receiver<T> {
        subscribe(&self.shared)
    }

    /// How many receivers there are.
    pub fn receiver_count(&self) -> usize {
        self.shared.state().receivers
    }

    /// Waits until every receiver is gone: for a publisher to stop once
    /// nobody listens. Parks a fiber, blocks a plain thread.
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
            &"broadcast::Sender::closed",
        )
    }
}

fn subscribe<T>(shared: &Arc<Shared<T>>) -> Receiver<T> {
    let mut s = shared.state();
    s.receivers += 1;
    Receiver {
        shared: shared.clone(),
        next: s.tail(),
    }
}

impl<T> Receiver<T> {
    /// A new receiver of the same channel, which starts with the next
    /// message sent (a clone starts where this one is).
    pub fn resubscribe(&self) -> Receiver<T> {
        subscribe(&self.shared)
    }

    /// How many messages this receiver can still take now.
    pub fn len(&self) -> usize {
        let s = self.shared.state();
        (s.tail() - self.next.max(s.head)) as usize
    }

    /// Whether this receiver has no message to take now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Clone> Receiver<T> {
    /// Takes the next message, waiting until one comes. Fails once every
    /// sender is gone and every message taken, or if messages were pushed
    /// out before this receiver took them (see [`RecvError::Lagged`]).
    pub fn recv(&mut self) -> Result<T, RecvError> {
        self.recv_until(None).map_err(|err| match err {
            RecvTimeoutError::Lagged(n) => RecvError::Lagged(n),
            // With no deadline, never `Timeout`.
            RecvTimeoutError::Closed | RecvTimeoutError::Timeout => RecvError::Closed,
        })
    }

    /// [`recv`](Self::recv), waiting at most `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_until(Some(waiter::deadline_after(timeout)))
    }

    /// Takes the next message if there is one now.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let taken = take(&mut self.next, &mut self.shared.state());
        taken.map(unshare)
    }

    fn recv_until(&mut self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let shared = &*self.shared;
        loop {
            let waiter = {
                let mut s = shared.state();
                match take(&mut self.next, &mut s) {
                    Ok(value) => {
                        drop(s);
                        return Ok(unshare(value));
                    }
                    Err(TryRecvError::Lagged(n)) => return Err(RecvTimeoutError::Lagged(n)),
                    Err(TryRecvError::Closed) => return Err(RecvTimeoutError::Closed),
                    Err(TryRecvError::Empty) => {}
                }
                if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                    return Err(RecvTimeoutError::Timeout);
                }
                let waiter = Waiter::new();
                s.waiters.push_back(waiter.clone());
                waiter
            };
            // Every waiter is woken at every message, so one that leaves
            // hands nothing on: it only takes its entry out.
            let leave = || {
                waiter::remove(&mut shared.state().waiters, &waiter);
            };
            let reason = &"broadcast::Receiver::recv";
            if !waiter::wait_until_or_cancel(&waiter, deadline, reason, leave) {
                leave();
            }
            // The loop looks: a message (that came in time or just as the
            // time ran out), the senders gone, or the deadline passed.
        }
    }

    /// How many waits in `recv` are parked, and `Select`s watching.
    #[cfg(test)]
    fn parked(&self) -> usize {
        self.shared.state().waiters.len()
    }
}

/// Ready when `recv` would not wait: a message for this receiver, a lag to
/// report, or every sender gone. Checked and watched under the state lock,
/// under which a send pushes its message and takes the waiters, and the
/// last sender's drop counts it gone and takes them: a message either
/// comes before the look, which sees it, or after, and wakes the watcher.
impl<T> Watch for Receiver<T> {
    fn is_ready(&self) -> bool {
        ready(&self.shared.state(), self.next)
    }

    fn watch(&self, watcher: &Watcher) -> bool {
        let mut s = self.shared.state();
        if ready(&s, self.next) {
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

/// Whether [`take`] at `next` would find something other than `Empty`.
fn ready<T>(s: &State<T>, next: u64) -> bool {
    // Behind the head: lagged; before the tail: a message; at the tail,
    // ready only if no sender is left.
    next < s.tail() || s.senders == 0
}

/// Takes the message at `next`, moving `next` on, or says why there is
/// none now.
fn take<T>(next: &mut u64, s: &mut State<T>) -> Result<Arc<T>, TryRecvError> {
    if *next < s.head {
        let missed = s.head - *next;
        *next = s.head;
        return Err(TryRecvError::Lagged(missed));
    }
    let i = (*next - s.head) as usize;
    let Some(slot) = s.ring.get_mut(i) else {
        return Err(match s.senders {
            0 => TryRecvError::Closed,
            _ => TryRecvError::Empty,
        });
    };
    *next += 1;
    slot.unread -= 1;
    if slot.unread > 0 {
        return Ok(slot.value.clone());
    }
    // The last to take it: the oldest message (see `State::ring`).
    debug_assert_eq!(i, 0, "only the oldest message is read by all");
    s.head += 1;
    Ok(s.ring.pop_front().expect("the message taken").value)
}

/// The value itself if nobody else holds it (the last receiver to take a
/// message), else a clone.
fn unshare<T: Clone>(value: Arc<T>) -> T {
    Arc::try_unwrap(value).unwrap_or_else(|shared| T::clone(&shared))
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.state().senders += 1;
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waiters = {
            let mut s = self.shared.state();
            s.senders -= 1;
            if s.senders > 0 {
                return;
            }
            std::mem::take(&mut s.waiters)
        };
        waiters.iter().for_each(|w| w.wake());
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        let mut s = self.shared.state();
        s.receivers += 1;
        // The clone is yet to take what this one is.
        let none_taken = s.count_readers_from(self.next, 1);
        debug_assert!(none_taken.is_empty());
        Receiver {
            shared: self.shared.clone(),
            next: self.next,
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let (taken_by_all, closed) = {
            let mut s = self.shared.state();
            s.receivers -= 1;
            let closed = match s.receivers {
                0 => std::mem::take(&mut s.closed_waiters),
                _ => Vec::new(),
            };
            (s.count_readers_from(self.next, -1), closed)
        };
        closed.iter().for_each(|w| w.wake());
        // Outside the lock: a message's drop may use the channel.
        drop(taken_by_all);
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("broadcast::Sender { .. }")
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("broadcast::Receiver")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("broadcasting on a channel with no receiver left")
    }
}

/// What the errors say of a channel whose senders are all gone.
const CLOSED: &str = "receiving on a broadcast channel with no sender and no message left";

/// What the errors say of a receiver that missed `n` messages.
fn lagged(f: &mut fmt::Formatter<'_>, n: u64) -> fmt::Result {
    write!(f, "the receiver lagged behind and missed {n} messages")
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Closed => f.write_str(CLOSED),
            RecvError::Lagged(n) => lagged(f, *n),
        }
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receiving on an empty broadcast channel"),
            TryRecvError::Closed => f.write_str(CLOSED),
            TryRecvError::Lagged(n) => lagged(f, *n),
        }
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => {
                f.write_str("timed out receiving on an empty broadcast channel")
            }
            RecvTimeoutError::Closed => f.write_str(CLOSED),
            RecvTimeoutError::Lagged(n) => lagged(f, *n),
        }
    }
}

impl<T> std::error::Error for SendError<T> {}
impl std::error::Error for RecvError {}
impl std::error::Error for TryRecvError {}
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
        let (tx, mut rx) = channel::<u32>(4);
        assert!(rx.recv_timeout(Duration::from_millis(2)).is_err());
        assert_eq!(rx.parked(), 0);
        let probe = rx.clone();
        rt.block_on(move || {
            let waiting: Vec<_> = (0..3)
                .map(|_| {
                    let mut rx = probe.clone();
                    crate::spawn(move || rx.recv())
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
        assert_eq!(
            tx.send(1),
            Ok(1),
            "the cancelled fibers' receivers are gone"
        );
        assert_eq!(rx.recv(), Ok(1));
    }

    #[test]
    fn selects_that_end_however_they_end_leave_no_entries_behind() {
        let (tx, mut rx) = channel::<u32>(4);
        crate::sync::select::tests_support::selects_leave_no_entries_behind(
            &rx,
            super::Receiver::parked,
        );
        assert_eq!(tx.send(1), Ok(1), "the selecting fibers' clones are gone");
        assert_eq!(rx.recv(), Ok(1));
    }
}
