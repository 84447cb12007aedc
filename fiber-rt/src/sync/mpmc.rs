//! Multi-producer, multi-consumer channels, bounded or unbounded: clone
//! the receiver too, and each message goes to exactly one of the
//! receivers, whichever asks first. A full or empty channel parks the
//! fiber (or blocks the thread).
//!
//! The API and the errors are [`mpsc`](super::mpsc)'s (the errors are the
//! same types); the channel disconnects when every sender is gone (the
//! receivers still get what is queued) or every receiver is (the senders'
//! sends fail, and what is queued is dropped).
//!
//! ```
//! use fiber_rt::sync::mpmc;
//!
//! let rt = fiber_rt::Runtime::new().unwrap();
//! let (tx, rx) = mpmc::bounded::<u32>(8);
//! // Three workers share one queue of jobs.
//! let workers: Vec<_> = (0..3)
//!     .map(|_| {
//!         let rx = rx.clone();
//!         rt.spawn(move || rx.iter().map(|job| job * 2).sum::<u32>())
//!     })
//!     .collect();
//! drop(rx);
//! for job in 1..=100 {
//!     tx.send(job).unwrap();
//! }
//! drop(tx); // the workers' loops end once the queue is empty
//! let total: u32 = workers.into_iter().map(|w| w.join().unwrap()).sum();
//! assert_eq!(total, 2 * 5050, "each job done once");
//! ```

use std::fmt;
use std::time::Duration;

pub use super::channel_error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
use super::queue::{self, RecvEnd, SendEnd};
use super::select::sealed::{Watch, Watcher};
use super::waiter::deadline_after;

/// A channel with no bound: `send` never waits.
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    make(None)
}

/// A channel holding at most `capacity` messages: `send` waits while it is
/// full. With a capacity of 0 it is a rendezvous: `send` waits until a
/// receiver has taken the message (`try_send` succeeds only while a
/// receiver waits), as with std's `sync_channel(0)`.
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    make(Some(capacity))
}

fn make<T>(capacity: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = queue::channel(capacity);
    (Sender { end: tx }, Receiver { end: rx })
}

/// The sending half; clone it for more producers.
pub struct Sender<T> {
    end: SendEnd<T>,
}

/// The receiving half; clone it (or share it: it is `Sync`) for more
/// consumers. Parked receivers are woken in the order they parked, one per
/// message.
///
/// [`Select`](super::Select) names a receiver ready when a message is
/// queued (or no sender is left); another receiver of the same channel may
/// take that message first, so its `try_recv` may then come back
/// [`Empty`](TryRecvError::Empty): select again.
pub struct Receiver<T> {
    end: RecvEnd<T>,
}

impl<T> Sender<T> {
    /// Whether every receiver is gone (so every send fails).
    pub fn is_closed(&self) -> bool {
        self.end.is_closed()
    }

    /// Waits until every receiver is gone: for a producer to stop once nobody
    /// listens, beside its sends (a second fiber, or between sends with
    /// [`is_closed`](Self::is_closed)). Parks a fiber, blocks a plain
    /// thread.
    pub fn closed(&self) {
        self.end.closed_until(None, &"mpmc::Sender::closed");
    }

    /// Like [`closed`](Self::closed), giving up once `timeout` has passed;
    /// whether every receiver is gone.
    pub fn closed_timeout(&self, timeout: Duration) -> bool {
        let deadline = Some(deadline_after(timeout));
        self.end.closed_until(deadline, &"mpmc::Sender::closed")
    }

    /// Messages sent and not received yet.
    pub fn len(&self) -> usize {
        self.end.len()
    }

    /// Whether no message waits to be received.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The channel's bound (`None`: unbounded; `Some(0)`: a rendezvous).
    pub fn capacity(&self) -> Option<usize> {
        self.end.capacity()
    }

    /// Sends `value`, waiting while a bounded channel is full (at a
    /// rendezvous, until a receiver has taken it). Fails only
    /// if every receiver is gone.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.end
            .send_until(value, None, &"mpmc::Sender::send")
            .map_err(|err| match err {
                SendTimeoutError::Disconnected(value) | SendTimeoutError::Timeout(value) => {
                    SendError(value)
                }
            })
    }

    /// Sends `value` if the channel has room now (at a rendezvous, if a
    /// receiver waits for it), without waiting.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.end.try_send(value)
    }

    /// Sends `value`, waiting at most `timeout` while a bounded channel is
    /// full (at a rendezvous, for a receiver to take it: one not taken in
    /// time is not delivered, and a zero time-out hands it only to a
    /// receiver that waits already); the value comes back on a timeout or if every receiver is
    /// gone.
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        let deadline = Some(deadline_after(timeout));
        self.end.send_until(value, deadline, &"mpmc::Sender::send")
    }
}

impl<T> Receiver<T> {
    /// Whether every sender is gone (the messages left can still be
    /// received).
    pub fn is_closed(&self) -> bool {
        self.end.is_closed()
    }

    /// Messages sent and not received yet.
    pub fn len(&self) -> usize {
        self.end.len()
    }

    /// Whether no message waits to be received.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The channel's bound (`None`: unbounded; `Some(0)`: a rendezvous).
    pub fn capacity(&self) -> Option<usize> {
        self.end.capacity()
    }

    /// Receives the next message, waiting while the channel is empty.
    /// Fails once every sender is gone and nothing is left.
    pub fn recv(&self) -> Result<T, RecvError> {
        self.end
            .recv_until(None, &"mpmc::Receiver::recv")
            .map_err(|_| RecvError)
    }

    /// Receives the next message, waiting at most `timeout` while the
    /// channel is empty.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        let deadline = Some(deadline_after(timeout));
        self.end.recv_until(deadline, &"mpmc::Receiver::recv")
    }

    /// Receives a message if one is there.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.end.try_recv()
    }

    /// Messages until every sender is gone (and the queue is empty).
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(|| self.recv().ok())
    }

    /// The messages queued now, without waiting for more.
    pub fn try_iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(|| self.try_recv().ok())
    }
}

impl<T> Watch for Receiver<T> {
    fn is_ready(&self) -> bool {
        self.end.is_ready()
    }

    fn watch(&self, watcher: &Watcher) -> bool {
        self.end.watch(watcher)
    }

    fn unwatch(&self, watcher: &Watcher) {
        self.end.unwatch(watcher)
    }
}

impl<T> super::select::Selectable for Receiver<T> {}

/// Owned iterator over a [`Receiver`]'s messages.
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            end: self.end.clone(),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Receiver {
            end: self.end.clone(),
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mpmc::Sender { .. }")
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mpmc::Receiver { .. }")
    }
}
