//! A channel for exactly one value.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use super::mpsc::{RecvTimeoutError, TryRecvError};
use super::waiter::{self, Waiter};

/// A one-value channel.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Arc::new(std::sync::Mutex::new(State {
        value: None,
        sender: true,
        receiver: true,
        waiter: None,
        watchers: Vec::new(),
        closed_waiters: Vec::new(),
    }));
    (
        Sender {
            inner: inner.clone(),
        },
        Receiver { inner },
    )
}

struct State<T> {
    value: Option<T>,
    sender: bool,
    receiver: bool,
    waiter: Option<Arc<Waiter>>,
    /// `Select`s waiting on the receiver: it may be shared by reference,
    /// so there may be several.
    watchers: Vec<Arc<Waiter>>,
    /// The sender, waiting in `closed` for the receiver to go.
    closed_waiters: Vec<Arc<Waiter>>,
}

impl<T> State<T> {
    /// Takes every waiter out, for the sender to wake.
    fn take_waiters(&mut self) -> Vec<Arc<Waiter>> {
        let mut all = std::mem::take(&mut self.watchers);
        all.extend(self.waiter.take());
        all
    }
}

type Shared<T> = Arc<std::sync::Mutex<State<T>>>;

fn lock<T>(s: &Shared<T>) -> std::sync::MutexGuard<'_, State<T>> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sends the one value.
pub struct Sender<T> {
    inner: Shared<T>,
}

/// Receives the one value.
pub struct Receiver<T> {
    inner: Shared<T>,
}

/// No value will come: the sender was dropped without sending, or the
/// value was received already (by `try_recv`, say).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct RecvError;

impl<T> Sender<T> {
    /// Sends `value`; gives it back if the receiver is gone.
    pub fn send(self, value: T) -> Result<(), T> {
        let mut s = lock(&self.inner);
        if !s.receiver {
            return Err(value);
        }
        s.value = Some(value);
        let waiters = s.take_waiters();
        drop(s);
        waiters.iter().for_each(|w| w.wake());
        Ok(())
    }

    /// Whether the receiver is gone (dropped, or consumed by its `recv`):
    /// a value sent now would come back.
    pub fn is_closed(&self) -> bool {
        !lock(&self.inner).receiver
    }

    /// Waits until the receiver is gone: for a fiber computing an answer
    /// to stop once nobody waits for it (with `Select` or a second fiber,
    /// or between steps with [`is_closed`](Self::is_closed)). Parks a
    /// fiber, blocks a plain thread.
    ///
    /// ```
    /// use fiber_rt::sync::oneshot;
    ///
    /// let rt = fiber_rt::Runtime::new().unwrap();
    /// rt.block_on(|| {
    ///     let (mut tx, rx) = oneshot::channel::<u32>();
    ///     let worker = fiber_rt::spawn(move || {
    ///         tx.closed();
    ///         tx.is_closed()
    ///     });
    ///     drop(rx); // the asking side gives up
    ///     assert!(worker.join().unwrap());
    /// });
    /// ```
    pub fn closed(&mut self) {
        self.closed_until(None);
    }

    /// Like [`closed`](Self::closed), giving up once `timeout` has passed;
    /// whether the receiver is gone.
    pub fn closed_timeout(&mut self, timeout: Duration) -> bool {
        self.closed_until(Some(waiter::deadline_after(timeout)))
    }

    fn closed_until(&self, deadline: Option<Instant>) -> bool {
        waiter::wait_until_gone(
            || lock(&self.inner),
            |s| !s.receiver,
            |s| &mut s.closed_waiters,
            deadline,
            &"oneshot::Sender::closed",
        )
    }
}

impl<T> Receiver<T> {
    /// Waits for the value.
    pub fn recv(self) -> Result<T, RecvError> {
        self.recv_ref()
    }

    /// Waits for the value without consuming the receiver (for handles
    /// that wrap one).
    pub(crate) fn recv_ref(&self) -> Result<T, RecvError> {
        self.recv_until(None).map_err(|_| RecvError)
    }

    /// Takes the value if it has arrived, without waiting.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut s = lock(&self.inner);
        match s.value.take() {
            Some(value) => Ok(value),
            None if !s.sender => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Waits for the value, at most `timeout`. The receiver stays, so a
    /// timed-out wait can be tried again. It takes `&mut self`: the
    /// channel keeps one waiting receiver, so two waits at once through a
    /// shared receiver are ruled out.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_until(Some(waiter::deadline_after(timeout)))
    }

    /// Waits for the value, giving up at `deadline` if there is one.
    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        loop {
            let waiter = {
                let mut s = lock(&self.inner);
                if let Some(v) = s.value.take() {
                    return Ok(v);
                }
                if !s.sender {
                    return Err(RecvTimeoutError::Disconnected);
                }
                if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                    return Err(RecvTimeoutError::Timeout);
                }
                let w = Waiter::new();
                s.waiter = Some(w.clone());
                w
            };
            let cancel = || lock(&self.inner).waiter = None;
            let reason = &"oneshot::Receiver::recv";
            if !waiter::wait_until_or_cancel(&waiter, deadline, reason, cancel) {
                let mut s = lock(&self.inner);
                // Still listed: the sender has done nothing. Otherwise it
                // took the waiter (sending, or dropped): the loop sees which.
                if s.waiter.take_if(|w| Arc::ptr_eq(w, &waiter)).is_some() {
                    return Err(RecvTimeoutError::Timeout);
                }
            }
        }
    }

    /// Whether the value has arrived or the sender is gone (so `recv`
    /// would not wait).
    pub fn is_ready(&self) -> bool {
        let s = lock(&self.inner);
        s.value.is_some() || !s.sender
    }
}

impl<T> super::select::sealed::Watch for Receiver<T> {
    fn is_ready(&self) -> bool {
        Receiver::is_ready(self)
    }

    fn watch(&self, watcher: &super::select::sealed::Watcher) -> bool {
        let mut s = lock(&self.inner);
        if s.value.is_some() || !s.sender {
            return true;
        }
        s.watchers.push(watcher.0.clone());
        false
    }

    fn unwatch(&self, watcher: &super::select::sealed::Watcher) {
        lock(&self.inner)
            .watchers
            .retain(|w| !Arc::ptr_eq(w, &watcher.0));
    }
}

impl<T> super::select::Selectable for Receiver<T> {}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut s = lock(&self.inner);
        s.sender = false;
        let waiters = s.take_waiters();
        drop(s);
        for w in waiters {
            w.wake();
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let (value, sender) = {
            let mut s = lock(&self.inner);
            s.receiver = false;
            (s.value.take(), std::mem::take(&mut s.closed_waiters))
        };
        sender.iter().for_each(|w| w.wake());
        drop(value);
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("oneshot::Sender { .. }")
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("oneshot::Receiver { .. }")
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "no value will come: the sender was dropped without sending, or the value was taken",
        )
    }
}

impl std::error::Error for RecvError {}
