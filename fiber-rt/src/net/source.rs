//! What a registered socket keeps for its waiters: per direction, a count
//! of the readiness edges the I/O thread has seen, and the parties
//! waiting for the next one.
//!
//! The protocol needs no clearing of readiness, so any number of fibers
//! and threads may use one socket at once. A party reads the count, then
//! tries its operation (a non-blocking system call); only if that says
//! `EAGAIN` does it wait, until the count differs from what it read. An
//! edge that came after the read makes the party try again; one that came
//! before it left the socket ready, so the operation would not have said
//! `EAGAIN`. The wait registers under the direction's lock and looks at
//! the count again there, and the I/O thread bumps the count before it
//! takes that lock to wake the waiters: a wake-up is never lost between
//! the look and the park.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::sched::park::Reason;
use crate::sync::waiter::{self, Waiter};

/// Which readiness an operation waits for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Interest {
    Read,
    Write,
}

/// A socket's readiness, shared by its handles and the I/O thread.
#[derive(Default)]
pub(crate) struct Source {
    read: Direction,
    write: Direction,
}

#[derive(Default)]
struct Direction {
    /// Readiness edges seen so far.
    edges: AtomicU64,
    /// Parties waiting for the next edge.
    waiters: Mutex<VecDeque<Arc<Waiter>>>,
}

impl Source {
    /// Called by the I/O thread with an event's bits.
    pub(crate) fn on_event(&self, bits: u32) {
        // A hang-up or an error ends waits in both directions: the next
        // operation reports it (or reads the end of the stream).
        let fail = (libc::EPOLLHUP | libc::EPOLLERR) as u32;
        if bits & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLPRI) as u32 | bits & fail != 0 {
            self.read.edge();
        }
        if bits & libc::EPOLLOUT as u32 | bits & fail != 0 {
            self.write.edge();
        }
    }

    fn direction(&self, interest: Interest) -> &Direction {
        match interest {
            Interest::Read => &self.read,
            Interest::Write => &self.write,
        }
    }

    /// Runs `op` (a non-blocking operation) until it does anything but
    /// fail with `WouldBlock` or `Interrupted`, waiting for the next edge of
    /// `interest` after each `WouldBlock`. Past `deadline`, fails with
    /// `TimedOut`.
    pub(crate) fn io<T>(
        &self,
        interest: Interest,
        deadline: Option<Instant>,
        reason: Reason,
        mut op: impl FnMut() -> io::Result<T>,
    ) -> io::Result<T> {
        let direction = self.direction(interest);
        loop {
            let seen = direction.seen();
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                done => return done,
            }
            if !direction.wait_past(seen, deadline, reason) {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{} timed out", reason),
                ));
            }
        }
    }

    /// The count of `interest`'s edges, to wait past with
    /// [`wait_past`](Self::wait_past) (for operations that are not a
    /// single call, such as a connect).
    pub(crate) fn seen(&self, interest: Interest) -> u64 {
        self.direction(interest).seen()
    }

    /// Waits until `interest` has had an edge past `seen`; `false` if
    /// `deadline` came first.
    pub(crate) fn wait_past(
        &self,
        interest: Interest,
        seen: u64,
        deadline: Option<Instant>,
        reason: Reason,
    ) -> bool {
        self.direction(interest).wait_past(seen, deadline, reason)
    }
}

impl Direction {
    fn seen(&self) -> u64 {
        // SeqCst: read before the operation's system call; an edge the
        // I/O thread counts after this read makes the wait below return.
        self.edges.load(Ordering::SeqCst)
    }

    fn edge(&self) {
        // SeqCst: counted before the lock below, so a party that looks at
        // the count under that lock after this sees it, and one that
        // looked before has registered and is woken here.
        self.edges.fetch_add(1, Ordering::SeqCst);
        let woken = std::mem::take(&mut *self.lock());
        for waiter in woken {
            // Hands nothing over: a party that will not act on it (an
            // abandoned fiber) takes nothing from the others.
            waiter.wake();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Waiter>>> {
        // Nothing under the lock can panic halfway.
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until the count is past `seen`; `false` if `deadline` came
    /// first.
    fn wait_past(&self, seen: u64, deadline: Option<Instant>, reason: Reason) -> bool {
        let waiter = Waiter::new();
        {
            let mut waiters = self.lock();
            // SeqCst: see `edge`.
            if self.edges.load(Ordering::SeqCst) != seen {
                return true;
            }
            waiters.push_back(waiter.clone());
        }
        let leave = || {
            waiter::remove(&mut self.lock(), &waiter);
        };
        match deadline {
            None => {
                waiter::wait_or_cancel(&waiter, reason, leave);
                true
            }
            Some(deadline) => {
                waiter::wait_until_or_cancel(&waiter, deadline, reason, leave)
                    // Timed out: take the waiter out. If an edge took it out
                    // first, the wake-up is this party's all the same.
                    || !waiter::remove(&mut self.lock(), &waiter)
            }
        }
    }
}
