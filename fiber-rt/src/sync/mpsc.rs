//! Multi-producer, single-consumer channels, bounded or unbounded; a full
//! or empty channel parks the fiber (or blocks the thread).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::waiter::{self, deadline_after, Waiter};

/// A channel with no bound: `send` never waits.
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    make(None)
}

/// A channel holding at most `capacity` messages (at least 1): `send` waits
/// while it is full.
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    make(Some(capacity.max(1)))
}

fn make<T>(capacity: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan {
        capacity,
        state: std::sync::Mutex::new(State {
            buf: VecDeque::new(),
            senders: 1,
            receiver: true,
            recv_waiter: None,
            send_waiters: VecDeque::new(),
        }),
    });
    (
        Sender { chan: chan.clone() },
        Receiver {
            chan,
            _not_sync: std::marker::PhantomData,
        },
    )
}

struct Chan<T> {
    capacity: Option<usize>,
    state: std::sync::Mutex<State<T>>,
}

struct State<T> {
    buf: VecDeque<T>,
    senders: usize,
    receiver: bool,
    recv_waiter: Option<Arc<Waiter>>,
    send_waiters: VecDeque<Arc<Waiter>>,
}

impl<T> Chan<T> {
    fn state(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Offers a freed slot to the first waiting sender; one the shutdown
    /// abandoned never takes it, so it goes on to the next.
    fn wake_sender(&self) {
        waiter::notify_first(|| self.state().send_waiters.pop_front());
    }
}

/// The sending half; clone it for more producers.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// The receiving half. One receiver: it can move to another fiber or
/// thread (`Send`) but not be shared (`!Sync`), as the channel keeps a
/// single waiting receiver.
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
    _not_sync: std::marker::PhantomData<std::cell::Cell<()>>,
}

/// The receiver is gone; the message comes back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

/// Every sender is gone and the channel is empty.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct RecvError;

/// Why [`Sender::try_send`] gave the message back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// The channel is full now; the receiver is still there.
    Full(T),
    /// The receiver is gone.
    Disconnected(T),
}

/// Why [`Sender::send_timeout`] gave the message back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SendTimeoutError<T> {
    /// The channel stayed full until the timeout.
    Timeout(T),
    /// The receiver is gone.
    Disconnected(T),
}

/// Why [`Receiver::recv_timeout`] returned nothing.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum RecvTimeoutError {
    /// No message came before the timeout; senders remain.
    Timeout,
    /// No message, and every sender is gone.
    Disconnected,
}

/// Why [`Receiver::try_recv`] returned nothing.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum TryRecvError {
    /// No message now; senders remain.
    Empty,
    /// No message, and every sender is gone.
    Disconnected,
}

impl<T> Sender<T> {
    /// Whether the receiver is gone (so every send fails).
    pub fn is_closed(&self) -> bool {
        !self.chan.state().receiver
    }

    /// Messages sent and not received yet.
    pub fn len(&self) -> usize {
        self.chan.state().buf.len()
    }

    /// Whether no message waits to be received.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The channel's bound (`None`: unbounded; `bounded(0)` holds one).
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity
    }

    /// Sends `value`, waiting while a bounded channel is full. Fails only
    /// if the receiver is gone.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.send_until(value, None).map_err(|err| match err {
            SendTimeoutError::Disconnected(value) | SendTimeoutError::Timeout(value) => {
                SendError(value)
            }
        })
    }

    /// Sends `value` if the channel has room now, without waiting.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut s = self.chan.state();
        if !s.receiver {
            return Err(TrySendError::Disconnected(value));
        }
        if self.chan.capacity.is_some_and(|cap| s.buf.len() >= cap) {
            return Err(TrySendError::Full(value));
        }
        s.buf.push_back(value);
        let receiver = s.recv_waiter.take();
        drop(s);
        if let Some(w) = receiver {
            // The message stays queued whoever (if anyone) takes it.
            w.wake();
        }
        Ok(())
    }

    /// Sends `value`, waiting at most `timeout` while a bounded channel is
    /// full; the value comes back on a timeout or if the receiver is gone.
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_until(value, Some(deadline_after(timeout)))
    }

    /// `send`, giving up at `deadline` if there is one.
    fn send_until(&self, value: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        let mut value = Some(value);
        loop {
            let waiter = {
                let mut s = self.chan.state();
                if !s.receiver {
                    return Err(SendTimeoutError::Disconnected(value.take().unwrap()));
                }
                if self.chan.capacity.is_none_or(|cap| s.buf.len() < cap) {
                    s.buf.push_back(value.take().unwrap());
                    let receiver = s.recv_waiter.take();
                    drop(s);
                    if let Some(w) = receiver {
                        // The message stays queued whoever takes it.
                        w.wake();
                    }
                    return Ok(());
                }
                if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                    return Err(SendTimeoutError::Timeout(value.take().unwrap()));
                }
                let waiter = Waiter::new();
                s.send_waiters.push_back(waiter.clone());
                waiter
            };
            let cancel = || {
                let mut s = self.chan.state();
                // Only a receiver takes a sender's waiter off the list (or
                // the receiver's drop, which leaves nobody to pass to), so
                // a waiter no longer listed was given a free slot, even if
                // its flag is not set yet: pass it on to the next sender.
                if !waiter::remove(&mut s.send_waiters, &waiter) {
                    drop(s);
                    self.chan.wake_sender();
                }
            };
            let reason = &"mpsc::Sender::send";
            if !waiter::wait_until_or_cancel(&waiter, deadline, reason, cancel)
                && waiter::remove(&mut self.chan.state().send_waiters, &waiter)
            {
                return Err(SendTimeoutError::Timeout(value.take().unwrap()));
            }
            // Notified, maybe just as the time ran out (a receiver took the
            // waiter off the list): the free slot is ours to try.
        }
    }
}

impl<T> Receiver<T> {
    /// Whether every sender is gone (the messages left can still be
    /// received).
    pub fn is_closed(&self) -> bool {
        self.chan.state().senders == 0
    }

    /// Messages sent and not received yet.
    pub fn len(&self) -> usize {
        self.chan.state().buf.len()
    }

    /// Whether no message waits to be received.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The channel's bound (`None`: unbounded; `bounded(0)` holds one).
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity
    }

    /// Receives the next message, waiting while the channel is empty.
    /// Fails once every sender is gone and nothing is left.
    pub fn recv(&self) -> Result<T, RecvError> {
        self.recv_until(None).map_err(|_| RecvError)
    }

    /// Receives the next message, waiting at most `timeout` while the
    /// channel is empty.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_until(Some(deadline_after(timeout)))
    }

    /// `recv`, giving up at `deadline` if there is one.
    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        loop {
            let waiter = {
                let mut s = self.chan.state();
                if let Some(value) = s.buf.pop_front() {
                    drop(s);
                    self.chan.wake_sender();
                    return Ok(value);
                }
                if s.senders == 0 {
                    return Err(RecvTimeoutError::Disconnected);
                }
                if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                    return Err(RecvTimeoutError::Timeout);
                }
                let waiter = Waiter::new();
                s.recv_waiter = Some(waiter.clone());
                waiter
            };
            let cancel = || self.chan.state().recv_waiter = None;
            let reason = &"mpsc::Receiver::recv";
            if !waiter::wait_until_or_cancel(&waiter, deadline, reason, cancel) {
                let mut s = self.chan.state();
                // Still listed: no sender came. Otherwise a sender took the
                // waiter (after queueing a message, or as the last one
                // gone): the loop takes what it left.
                if s.recv_waiter.take_if(|w| Arc::ptr_eq(w, &waiter)).is_some() {
                    return Err(RecvTimeoutError::Timeout);
                }
            }
        }
    }

    /// Receives a message if one is there.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut s = self.chan.state();
        match s.buf.pop_front() {
            Some(value) => {
                drop(s);
                self.chan.wake_sender();
                Ok(value)
            }
            None if s.senders == 0 => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Messages until every sender is gone.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(|| self.recv().ok())
    }

    /// The messages queued now, without waiting for more.
    pub fn try_iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(|| self.try_recv().ok())
    }
}

impl<T> super::select::sealed::Watch for Receiver<T> {
    fn is_ready(&self) -> bool {
        let s = self.chan.state();
        !s.buf.is_empty() || s.senders == 0
    }

    fn watch(&self, watcher: &super::select::sealed::Watcher) -> bool {
        let mut s = self.chan.state();
        if !s.buf.is_empty() || s.senders == 0 {
            return true;
        }
        // The one receiver waits in one place at a time: nothing else is
        // in the slot.
        s.recv_waiter = Some(watcher.0.clone());
        false
    }

    fn unwatch(&self, watcher: &super::select::sealed::Watcher) {
        self.chan
            .state()
            .recv_waiter
            .take_if(|w| Arc::ptr_eq(w, &watcher.0));
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
        self.chan.state().senders += 1;
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut s = self.chan.state();
        s.senders -= 1;
        let receiver = if s.senders == 0 {
            s.recv_waiter.take()
        } else {
            None
        };
        drop(s);
        if let Some(w) = receiver {
            w.wake();
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut s = self.chan.state();
        s.receiver = false;
        let senders = std::mem::take(&mut s.send_waiters);
        let dropped = std::mem::take(&mut s.buf);
        drop(s);
        senders.iter().for_each(|w| w.wake());
        drop(dropped);
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sender { .. }")
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Receiver { .. }")
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a channel whose receiver is gone")
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on an empty channel whose senders are all gone")
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "Full(..)",
            TrySendError::Disconnected(_) => "Disconnected(..)",
        })
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "sending on a full channel",
            TrySendError::Disconnected(_) => "sending on a channel whose receiver is gone",
        })
    }
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendTimeoutError::Timeout(_) => "Timeout(..)",
            SendTimeoutError::Disconnected(_) => "Disconnected(..)",
        })
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendTimeoutError::Timeout(_) => "timed out sending on a full channel",
            SendTimeoutError::Disconnected(_) => "sending on a channel whose receiver is gone",
        })
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecvTimeoutError::Timeout => "timed out receiving on an empty channel",
            RecvTimeoutError::Disconnected => {
                "receiving on an empty channel whose senders are all gone"
            }
        })
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "receiving on an empty channel",
            TryRecvError::Disconnected => {
                "receiving on an empty channel whose senders are all gone"
            }
        })
    }
}

impl<T> std::error::Error for SendError<T> {}
impl<T> std::error::Error for TrySendError<T> {}
impl<T> std::error::Error for SendTimeoutError<T> {}
impl std::error::Error for RecvError {}
impl std::error::Error for RecvTimeoutError {}
impl std::error::Error for TryRecvError {}
