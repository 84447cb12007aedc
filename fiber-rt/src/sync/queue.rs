//! The queue both [`mpsc`](super::mpsc) and [`mpmc`](super::mpmc) channels
//! are built on: a buffer under a lock, the counts of senders and
//! receivers, and the parties parked on it. An `mpsc` channel is the case
//! of one receiver; the public handles of both wrap [`SendEnd`] and
//! [`RecvEnd`].
//!
//! Wake-ups that hand something over go to one waiter at a time: a message
//! sent wakes the first parked receiver, a message received (a free slot)
//! the first parked sender. A waiter taken off its list was handed that
//! wake-up, so if it is cancelled before it acts on it, it passes it on;
//! if its wait times out, it tries once more. `Select` rounds are not
//! handed anything (they may pick another receiver and take nothing): they
//! are woken at every message, beside the one receiver.
//!
//! A channel of capacity 0 is a *rendezvous*: a `send` queues its message
//! and waits until a receiver has taken it (see [`SendEnd::send_until`]),
//! so the buffer holds only messages whose senders wait, and those a
//! `try_send` handed to a receiver that left without them. Each is tagged
//! with a number, so that a sender whose wait ends otherwise (a time-out,
//! a cancellation, the receivers gone) finds its own and takes it back;
//! the last receiver's drop drops the others.

use std::collections::VecDeque;
use std::sync::{Arc, MutexGuard};
use std::time::Instant;

use super::channel_error::{RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
use super::select::sealed::Watcher;
use super::waiter::{self, Waiter};
use crate::sched::park::Reason;

/// The channel both ends share.
struct Chan<T> {
    /// The most messages the buffer holds; `None`: unbounded.
    capacity: Option<usize>,
    state: std::sync::Mutex<State<T>>,
}

struct State<T> {
    buf: VecDeque<T>,
    senders: usize,
    receivers: usize,
    /// Receivers parked in `recv`, woken one per message sent.
    recv_waiters: VecDeque<Arc<Waiter>>,
    /// Senders parked while the channel is full, woken one per message
    /// received.
    send_waiters: VecDeque<Arc<Waiter>>,
    /// `Select` rounds watching a receiver, all woken at every message and
    /// when the last sender goes.
    watchers: Vec<Arc<Waiter>>,
    /// Rendezvous only: the number of each message in `buf`, in order
    /// ([`UNAWAITED`] for one `try_send` left, whose sender does not wait).
    tags: VecDeque<u64>,
    /// Rendezvous only: the number the next message gets.
    next_tag: u64,
    /// Rendezvous only: senders waiting for their message (by number) to
    /// be taken.
    handoffs: Vec<(u64, Arc<Waiter>)>,
    /// Senders waiting in `closed` for the last receiver to go.
    closed_waiters: Vec<Arc<Waiter>>,
}

/// The tag of a rendezvous message no sender waits for (one `try_send`
/// handed to a receiver that then left without it): the last receiver's
/// drop drops it, as nobody takes it back.
const UNAWAITED: u64 = u64::MAX;

impl<T> Chan<T> {
    fn state(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_rendezvous(&self) -> bool {
        self.capacity == Some(0)
    }

    /// Whether a message would have to wait for room; at a rendezvous,
    /// whether no receiver is parked to take it.
    fn is_full(&self, s: &State<T>) -> bool {
        match self.capacity {
            Some(0) => s.recv_waiters.is_empty(),
            Some(cap) => s.buf.len() >= cap,
            None => false,
        }
    }

    /// Queues `value` on a channel with room and a receiver, and wakes the
    /// first parked receiver and every watching `Select`. At a rendezvous,
    /// `awaited` says whether its sender waits for it to be taken (it then
    /// gets the next number), or not (a `try_send`). Always inlined, as it
    /// was before rendezvous existed (a call cost 15 instructions a
    /// message).
    #[inline(always)]
    fn push(&self, mut s: MutexGuard<'_, State<T>>, value: T, awaited: bool) {
        if self.is_rendezvous() {
            tag_next(&mut s, awaited);
        }
        s.buf.push_back(value);
        let receiver = s.recv_waiters.pop_front();
        let watchers = std::mem::take(&mut s.watchers);
        drop(s);
        watchers.iter().for_each(|w| w.wake());
        if receiver.is_some_and(|w| !w.notify()) {
            // Abandoned by the shutdown: it will never take the message.
            self.wake_receiver();
        }
    }

    /// Takes the first message and offers the slot it frees to the first
    /// parked sender; with no message, gives the lock back.
    fn pop<'a>(&'a self, mut s: MutexGuard<'a, State<T>>) -> Result<T, MutexGuard<'a, State<T>>> {
        let Some(value) = s.buf.pop_front() else {
            return Err(s);
        };
        let sender = match self.is_rendezvous() {
            // The message's sender waits for this.
            true => taken(&mut s),
            false => s.send_waiters.pop_front(),
        };
        drop(s);
        if sender.is_some_and(|w| !w.notify()) {
            // Abandoned by the shutdown: it will never use the slot.
            self.wake_sender();
        }
        Ok(value)
    }

    /// Hands a message's wake-up to the first parked receiver that takes
    /// it (one the shutdown abandoned never will).
    fn wake_receiver(&self) {
        waiter::notify_first(|| self.state().recv_waiters.pop_front());
    }

    /// Hands a free slot to the first parked sender that takes it.
    fn wake_sender(&self) {
        waiter::notify_first(|| self.state().send_waiters.pop_front());
    }
}

/// One sender's share of a channel: a clone counts one sender more, a drop
/// one fewer, and the last one's drop disconnects the receivers.
pub(crate) struct SendEnd<T>(Arc<Chan<T>>);

/// One receiver's share of a channel, counted as [`SendEnd`] is; the last
/// one's drop disconnects the senders and drops the messages left.
pub(crate) struct RecvEnd<T>(Arc<Chan<T>>);

/// A new channel holding at most `capacity` messages (`None`: no bound),
/// with one sender and one receiver.
pub(crate) fn channel<T>(capacity: Option<usize>) -> (SendEnd<T>, RecvEnd<T>) {
    let chan = Arc::new(Chan {
        capacity,
        state: std::sync::Mutex::new(State {
            buf: VecDeque::new(),
            senders: 1,
            receivers: 1,
            recv_waiters: VecDeque::new(),
            send_waiters: VecDeque::new(),
            watchers: Vec::new(),
            tags: VecDeque::new(),
            next_tag: 0,
            handoffs: Vec::new(),
            closed_waiters: Vec::new(),
        }),
    });
    (SendEnd(chan.clone()), RecvEnd(chan))
}

impl<T> SendEnd<T> {
    /// Whether every receiver is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.0.state().receivers == 0
    }

    pub(crate) fn len(&self) -> usize {
        self.0.state().buf.len()
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        self.0.capacity
    }

    pub(crate) fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let s = self.0.state();
        if s.receivers == 0 {
            return Err(TrySendError::Disconnected(value));
        }
        if self.0.is_full(&s) {
            return Err(TrySendError::Full(value));
        }
        self.0.push(s, value, false);
        Ok(())
    }

    /// Sends `value`, parking while the channel is full, until `deadline`
    /// if there is one; at a rendezvous, until a receiver has taken it.
    /// `reason` names the wait in fiber dumps.
    pub(crate) fn send_until(
        &self,
        value: T,
        deadline: Option<Instant>,
        reason: Reason,
    ) -> Result<(), SendTimeoutError<T>> {
        let chan = &*self.0;
        if chan.is_rendezvous() {
            return self.hand_over(value, deadline, reason);
        }
        loop {
            let waiter = {
                let mut s = chan.state();
                if s.receivers == 0 {
                    return Err(SendTimeoutError::Disconnected(value));
                }
                if !chan.is_full(&s) {
                    chan.push(s, value, false);
                    return Ok(());
                }
                if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                    return Err(SendTimeoutError::Timeout(value));
                }
                let waiter = Waiter::new();
                s.send_waiters.push_back(waiter.clone());
                waiter
            };
            let cancel = || {
                // Only a receiver takes a sender's waiter off the list (or
                // the last receiver's drop, which leaves nobody to pass to),
                // so a waiter no longer listed was handed a free slot, even
                // if its flag is not set yet: pass it on.
                if !waiter::remove(&mut chan.state().send_waiters, &waiter) {
                    chan.wake_sender();
                }
            };
            if !waiter::wait_until_or_cancel(&waiter, deadline, reason, cancel)
                && waiter::remove(&mut chan.state().send_waiters, &waiter)
            {
                return Err(SendTimeoutError::Timeout(value));
            }
            // Handed a free slot, maybe just as the time ran out (a
            // receiver took the waiter off the list): try it.
        }
    }
}

impl<T> SendEnd<T> {
    /// Waits until every receiver is gone, until `deadline` if there is
    /// one; whether they are.
    pub(crate) fn closed_until(&self, deadline: Option<Instant>, reason: Reason) -> bool {
        waiter::wait_until_gone(
            || self.0.state(),
            |s| s.receivers == 0,
            |s| &mut s.closed_waiters,
            deadline,
            reason,
        )
    }

    /// A rendezvous's send: queues `value` and waits until a receiver has
    /// taken it. If the wait ends first (the time is up, every receiver is
    /// gone, or the fiber is cancelled), the message is taken back, so a
    /// send that fails never delivers. Out of line: the other channels'
    /// sends stay small.
    #[cold]
    #[inline(never)]
    fn hand_over(
        &self,
        value: T,
        deadline: Option<Instant>,
        reason: Reason,
    ) -> Result<(), SendTimeoutError<T>> {
        let chan = &*self.0;
        let tag = {
            let s = chan.state();
            if s.receivers == 0 {
                return Err(SendTimeoutError::Disconnected(value));
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                // No time to wait for the take (a zero time-out): handed to
                // a receiver that waits already, as `try_send` would, or
                // not queued at all (waking nobody for nothing).
                if chan.is_full(&s) {
                    return Err(SendTimeoutError::Timeout(value));
                }
                chan.push(s, value, false);
                return Ok(());
            }
            let tag = s.next_tag;
            chan.push(s, value, true);
            tag
        };
        loop {
            let waiter = {
                let mut s = chan.state();
                let Some(index) = s.tags.iter().position(|&t| t == tag) else {
                    return Ok(()); // taken
                };
                let timed_out = deadline.is_some_and(|deadline| Instant::now() >= deadline);
                if s.receivers == 0 || timed_out {
                    let value = take_back(&mut s, index, tag);
                    return Err(if timed_out {
                        SendTimeoutError::Timeout(value)
                    } else {
                        SendTimeoutError::Disconnected(value)
                    });
                }
                // Waiting again (woken for nothing): a fresh waiter, as
                // the old one's flag stays set.
                s.handoffs.retain(|(waits_for, _)| *waits_for != tag);
                let waiter = Waiter::new();
                s.handoffs.push((tag, waiter.clone()));
                waiter
            };
            let cancel = || {
                // Cancelled: the message goes back too, and is dropped
                // with the fiber's other values (outside the lock: its drop
                // may use the channel).
                let mut s = chan.state();
                let index = s.tags.iter().position(|&t| t == tag);
                let value = index.map(|index| take_back(&mut s, index, tag));
                drop(s);
                drop(value);
            };
            // The loop looks at the message again, whatever ended the wait.
            let _ = waiter::wait_until_or_cancel(&waiter, deadline, reason, cancel);
        }
    }
}

/// Numbers the message about to be queued at a rendezvous, if its sender
/// waits for it (see `push`). Out of line, as every path of a rendezvous:
/// `push` stays small enough to inline for the other channels.
#[cold]
#[inline(never)]
fn tag_next<T>(s: &mut State<T>, awaited: bool) {
    let tag = match awaited {
        true => s.next_tag,
        false => UNAWAITED,
    };
    s.next_tag += u64::from(awaited);
    s.tags.push_back(tag);
}

/// The first message of a rendezvous was just taken: its number goes, and
/// its sender's waiter, if it waits, comes back to be woken.
#[cold]
#[inline(never)]
fn taken<T>(s: &mut State<T>) -> Option<Arc<Waiter>> {
    let tag = s.tags.pop_front()?;
    let index = s
        .handoffs
        .iter()
        .position(|&(waits_for, _)| waits_for == tag)?;
    Some(s.handoffs.swap_remove(index).1)
}

/// Takes message `tag`, at `index` in the buffer, out of a rendezvous,
/// with its sender's entry.
fn take_back<T>(s: &mut State<T>, index: usize, tag: u64) -> T {
    s.tags.remove(index);
    s.handoffs.retain(|(waits_for, _)| *waits_for != tag);
    s.buf
        .remove(index)
        .expect("a tagged message is in the buffer")
}

impl<T> RecvEnd<T> {
    /// Whether every sender is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.0.state().senders == 0
    }

    pub(crate) fn len(&self) -> usize {
        self.0.state().buf.len()
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        self.0.capacity
    }

    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        match self.0.pop(self.0.state()) {
            Ok(value) => Ok(value),
            Err(s) if s.senders == 0 => Err(TryRecvError::Disconnected),
            Err(_) => Err(TryRecvError::Empty),
        }
    }

    /// Receives a message, parking while the channel is empty, until
    /// `deadline` if there is one. `reason` names the wait in fiber dumps.
    pub(crate) fn recv_until(
        &self,
        deadline: Option<Instant>,
        reason: Reason,
    ) -> Result<T, RecvTimeoutError> {
        let chan = &*self.0;
        loop {
            let waiter = {
                let mut s = match chan.pop(chan.state()) {
                    Ok(value) => return Ok(value),
                    Err(s) => s,
                };
                if s.senders == 0 {
                    return Err(RecvTimeoutError::Disconnected);
                }
                if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                    return Err(RecvTimeoutError::Timeout);
                }
                let waiter = Waiter::new();
                s.recv_waiters.push_back(waiter.clone());
                waiter
            };
            let cancel = || {
                // Only a sender takes a receiver's waiter off the list, for
                // a message it queued (or as the last sender gone, which
                // wakes every receiver anyway): pass the wake-up on, so that
                // the message does not wait while another receiver parks.
                if !waiter::remove(&mut chan.state().recv_waiters, &waiter) {
                    chan.wake_receiver();
                }
            };
            if !waiter::wait_until_or_cancel(&waiter, deadline, reason, cancel)
                && waiter::remove(&mut chan.state().recv_waiters, &waiter)
            {
                return Err(RecvTimeoutError::Timeout);
            }
            // Woken for a message (or by the last sender's drop), maybe
            // just as the time ran out: the loop takes what is there. A
            // message another receiver took first leaves this one to park
            // again.
        }
    }

    /// Whether a receive would not wait now: a message, or no sender.
    pub(crate) fn is_ready(&self) -> bool {
        let s = self.0.state();
        !s.buf.is_empty() || s.senders == 0
    }

    /// `true` if ready; else `watcher` is woken at the next message or
    /// when the last sender goes (see `Select`).
    pub(crate) fn watch(&self, watcher: &Watcher) -> bool {
        let mut s = self.0.state();
        if !s.buf.is_empty() || s.senders == 0 {
            return true;
        }
        s.watchers.push(watcher.0.clone());
        false
    }

    /// Takes `watcher` back if it is still listed.
    pub(crate) fn unwatch(&self, watcher: &Watcher) {
        self.0
            .state()
            .watchers
            .retain(|w| !Arc::ptr_eq(w, &watcher.0));
    }

    /// How many senders wait in `closed`.
    #[cfg(test)]
    fn closed_waiters(&self) -> usize {
        self.0.state().closed_waiters.len()
    }

    /// How many rendezvous senders wait for their message to be taken,
    /// and how many tagged messages there are.
    #[cfg(test)]
    fn handoffs(&self) -> (usize, usize) {
        let s = self.0.state();
        (s.handoffs.len(), s.tags.len())
    }

    /// How many receivers and senders are parked, and `Select`s watching.
    #[cfg(test)]
    fn parked(&self) -> (usize, usize, usize) {
        let s = self.0.state();
        (s.recv_waiters.len(), s.send_waiters.len(), s.watchers.len())
    }
}

impl<T> Clone for SendEnd<T> {
    fn clone(&self) -> Self {
        self.0.state().senders += 1;
        SendEnd(self.0.clone())
    }
}

impl<T> Clone for RecvEnd<T> {
    fn clone(&self) -> Self {
        self.0.state().receivers += 1;
        RecvEnd(self.0.clone())
    }
}

impl<T> Drop for SendEnd<T> {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.senders -= 1;
        if s.senders > 0 {
            return;
        }
        let receivers = std::mem::take(&mut s.recv_waiters);
        let watchers = std::mem::take(&mut s.watchers);
        drop(s);
        receivers.iter().chain(&watchers).for_each(|w| w.wake());
    }
}

impl<T> Drop for RecvEnd<T> {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.receivers -= 1;
        if s.receivers > 0 {
            return;
        }
        let senders = std::mem::take(&mut s.send_waiters);
        // At a rendezvous the messages whose senders wait stay for them to
        // take back; those `try_send` left go now, as nobody will.
        let dropped = match self.0.is_rendezvous() {
            true => {
                let (buf, tags) = (std::mem::take(&mut s.buf), std::mem::take(&mut s.tags));
                let mut dropped = VecDeque::new();
                for (value, tag) in buf.into_iter().zip(tags) {
                    if tag == UNAWAITED {
                        dropped.push_back(value);
                    } else {
                        s.buf.push_back(value);
                        s.tags.push_back(tag);
                    }
                }
                dropped
            }
            false => std::mem::take(&mut s.buf),
        };
        let handoffs = std::mem::take(&mut s.handoffs);
        let closed = std::mem::take(&mut s.closed_waiters);
        drop(s);
        senders.iter().for_each(|w| w.wake());
        handoffs.iter().for_each(|(_, w)| w.wake());
        closed.iter().for_each(|w| w.wake());
        // Outside the lock: a message's drop may use the channel.
        drop(dropped);
    }
}

#[cfg(test)]
mod tests {
    //! What the public tests cannot see: that a wait which ends, however
    //! it ends, leaves no entry behind on the channel's lists.

    use std::time::Duration;

    use super::channel;
    use crate::sync::waiter::deadline_after;
    use crate::Builder;

    #[test]
    fn timed_out_waits_leave_no_entries_behind() {
        let (tx, rx) = channel::<u32>(Some(1));
        let soon = || Some(deadline_after(Duration::from_millis(2)));
        assert!(rx.recv_until(soon(), &"test").is_err());
        tx.try_send(1).unwrap();
        assert!(tx.send_until(2, soon(), &"test").is_err());
        assert_eq!(rx.parked(), (0, 0, 0));
    }

    #[test]
    fn rendezvous_sends_that_end_untaken_leave_nothing_behind() {
        let (tx, rx) = channel::<u32>(Some(0));
        let soon = || Some(deadline_after(Duration::from_millis(2)));
        assert!(tx.send_until(1, soon(), &"test").is_err());
        assert_eq!(rx.handoffs(), (0, 0));
        let rt = Builder::new().workers(2).build().unwrap();
        let rx2 = rx.clone();
        rt.block_on(move || {
            let sender = crate::spawn(move || tx.send_until(2, None, &"test"));
            while rx2.handoffs().0 < 1 {
                crate::sleep(Duration::from_millis(1));
            }
            sender.cancel();
            assert!(sender.join().unwrap_err().is_cancelled());
        });
        assert_eq!(rx.handoffs(), (0, 0));
        assert_eq!(rx.len(), 0, "the cancelled send's message went back");
    }

    #[test]
    fn closed_waits_that_time_out_or_are_cancelled_leave_nothing_behind() {
        let (tx, rx) = channel::<u32>(None);
        assert!(!tx.closed_until(Some(deadline_after(Duration::from_millis(2))), &"test"));
        assert_eq!(rx.closed_waiters(), 0);
        let rt = Builder::new().workers(2).build().unwrap();
        let rx2 = rx.clone();
        rt.block_on(move || {
            let waiting = crate::spawn(move || tx.closed_until(None, &"test"));
            while rx2.closed_waiters() < 1 {
                crate::sleep(Duration::from_millis(1));
            }
            waiting.cancel();
            assert!(waiting.join().unwrap_err().is_cancelled());
        });
        assert_eq!(rx.closed_waiters(), 0);
    }

    #[test]
    fn cancelled_receivers_and_senders_leave_no_entries_behind() {
        let rt = Builder::new().workers(2).build().unwrap();
        // A full channel parks its sender; an empty one, its receivers.
        let (full, full_rx) = channel::<u32>(Some(1));
        full.try_send(0).unwrap();
        let (empty_tx, empty) = channel::<u32>(None);
        let (full_rx2, empty2) = (full_rx.clone(), empty.clone());
        rt.block_on(move || {
            let sender = crate::spawn(move || full.send_until(1, None, &"test"));
            let receivers: Vec<_> = (0..2)
                .map(|_| {
                    let empty = empty2.clone();
                    crate::spawn(move || empty.recv_until(None, &"test"))
                })
                .collect();
            while full_rx2.parked().1 < 1 || empty2.parked().0 < 2 {
                crate::sleep(Duration::from_millis(1));
            }
            sender.cancel();
            assert!(sender.join().unwrap_err().is_cancelled());
            for receiver in receivers {
                receiver.cancel();
                assert!(receiver.join().unwrap_err().is_cancelled());
            }
        });
        assert_eq!(full_rx.parked(), (0, 0, 0));
        assert_eq!(empty.parked(), (0, 0, 0));
        assert_eq!(full_rx.try_recv(), Ok(0));
        assert!(
            full_rx.try_recv().is_err(),
            "the cancelled send sent nothing"
        );
        drop(empty_tx);
    }
}
