//! What a registered socket keeps for its waiters: per direction, a count
//! of the readiness edges harvested from epoll so far, and the parties
//! waiting for the next one.
//!
//! The protocol needs no clearing of readiness, so any number of fibers
//! and threads may use one socket at once. A party reads the count, then
//! tries its operation (a non-blocking system call); only if that says
//! `EAGAIN` does it wait, until the count differs from what it read. An
//! edge that came after the read makes the party try again; one that came
//! before it left the socket ready, so the operation would not have said
//! `EAGAIN`. The wait registers under the direction's lock and looks at
//! the count again there, and a harvest bumps the count before it
//! takes that lock to wake the waiters: a wake-up is never lost between
//! the look and the park.
//!
//! Nothing is taken to be empty without a `WouldBlock`. tokio clears a
//! socket's readiness after a stream read that returns less than asked,
//! which saves the next read's `WouldBlock` call; here that rule left a
//! fiber waiting for an edge that never comes, with bytes in the socket:
//! a vectored read over more than 1024 slices (the kernel takes the
//! first 1024), a Unix stream read that stops at a passed descriptor or
//! at urgent data (TCP's too, which the peer controls), and a socket of
//! another type wrapped as a stream. A write that came back short is no
//! proof of a full buffer either. The call it saves is one of about ten
//! per round trip, and no round trip got faster.

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::sched::park::Reason;
use crate::sched::task::Task;
use crate::sync::waiter::{self, Waiter};

/// Which readiness an operation waits for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Interest {
    Read,
    Write,
}

/// How a party waits after its operation said `EAGAIN`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Retry {
    /// For the direction's next edge: the kernel tells the socket when
    /// the operation may go ahead.
    Edge,
    /// For a pause (see [`Backoff`]): the kernel never tells the socket,
    /// as for an unconnected Unix datagram sent to a full queue, where
    /// each refused send even makes the sender's socket report itself
    /// writable, so that a wait for an edge would end at once, again and
    /// again.
    Pause,
}

/// How often a [`Retry::Pause`] party only yields before it tries again:
/// enough for a party on the same worker to make room.
const YIELDS: u32 = 4;
/// Its first pause after those; each next one is twice as long, up to
/// [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(1);
const LONGEST_PAUSE: Duration = Duration::from_millis(16);

/// The waits of one [`Retry::Pause`] operation (and of a child's exit
/// where no pidfd tells it, `process::exit`).
pub(crate) struct Backoff {
    refused: u32,
    pause: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff {
            refused: 0,
            pause: FIRST_PAUSE,
        }
    }

    /// Yields, or pauses (parking a fiber, sleeping a plain thread), up to
    /// `deadline`.
    pub(crate) fn wait(&mut self, deadline: Option<Instant>) {
        self.refused += 1;
        if self.refused <= YIELDS {
            crate::yield_now();
            return;
        }
        let nap = match deadline {
            Some(at) => self.pause.min(at.saturating_duration_since(Instant::now())),
            None => self.pause,
        };
        crate::sleep(nap);
        self.pause = (self.pause * 2).min(LONGEST_PAUSE);
    }
}

/// A socket's readiness, shared by its handles and the harvests.
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

impl Direction {
    const fn new() -> Direction {
        Direction {
            edges: AtomicU64::new(0),
            waiters: Mutex::new(VecDeque::new()),
        }
    }
}

impl Source {
    /// No edge seen, nobody waiting.
    pub(crate) const fn new() -> Source {
        Source {
            read: Direction::new(),
            write: Direction::new(),
        }
    }

    /// Wakes the parties waiting on the halves `how` shut down, as an edge
    /// would: the kernel does not always send one (a writer waiting for
    /// room in a Unix stream's full buffer hears nothing of its own
    /// side's shutdown). They try again, and see the end of the stream or
    /// the broken pipe.
    pub(crate) fn shut_down(&self, how: std::net::Shutdown) {
        use std::net::Shutdown;
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.read.edge();
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.write.edge();
        }
    }

    /// Called by a harvest with an event's bits.
    pub(crate) fn on_event(&self, bits: u32) {
        // A hang-up or an error ends waits in both directions: the next
        // operation reports it (or reads the end of the stream).
        let fail = libc::EPOLLHUP | libc::EPOLLERR;
        if bits & (libc::EPOLLIN | libc::EPOLLRDHUP | fail) as u32 != 0 {
            self.read.edge();
        }
        if bits & (libc::EPOLLOUT | fail) as u32 != 0 {
            self.write.edge();
        }
    }

    fn direction(&self, interest: Interest) -> &Direction {
        match interest {
            Interest::Read => &self.read,
            Interest::Write => &self.write,
        }
    }

    /// Runs `op` (a non-blocking operation on `fd`) until it does anything
    /// but fail with `WouldBlock` or `Interrupted`, waiting as `retry`
    /// says for `interest` after each `WouldBlock`. Past `deadline`
    /// (`Deadline::After` counts from the first `WouldBlock`, so that an
    /// operation that goes ahead never reads the clock), fails with
    /// `TimedOut`.
    pub(crate) fn io<T>(
        &self,
        fd: RawFd,
        interest: Interest,
        retry: Retry,
        mut deadline: Deadline,
        reason: Reason,
        mut op: impl FnMut() -> io::Result<T>,
    ) -> io::Result<T> {
        // Made at the first pause: an operation that goes ahead, or waits
        // for edges, never builds one.
        let mut backoff = None;
        loop {
            let seen = self.seen(interest);
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                done => return done,
            }
            let at = deadline.start();
            // Looked at before each wait, not only by it: a party that keeps
            // losing a shared socket's edges to others would otherwise go
            // on past its deadline.
            if at.is_some_and(|at| Instant::now() >= at) {
                return Err(timed_out(reason));
            }
            match retry {
                Retry::Edge => {
                    if !self.wait(fd, interest, seen, at, reason) {
                        return Err(timed_out(reason));
                    }
                }
                // A pause cut short by the deadline is caught above.
                Retry::Pause => backoff.get_or_insert_with(Backoff::new).wait(at),
            }
        }
    }

    /// The count of `interest`'s edges, to [`wait`](Self::wait) past (for
    /// operations that are not a single call, such as a connect).
    pub(crate) fn seen(&self, interest: Interest) -> u64 {
        self.direction(interest).seen()
    }

    /// Waits until `interest` may have come on `fd`: a fiber parks until
    /// the count of its edges is past `seen`; a plain thread polls `fd`.
    /// `false` if `deadline` came first.
    pub(crate) fn wait(
        &self,
        fd: RawFd,
        interest: Interest,
        seen: u64,
        deadline: Option<Instant>,
        reason: Reason,
    ) -> bool {
        if Task::current().is_none() {
            return poll(fd, interest, deadline);
        }
        let direction = self.direction(interest);
        match interest {
            Interest::Read => direction.wait_past(seen, deadline, reason),
            // At most `WRITE_RECHECK`, as a thread's poll: the kernel tells
            // a writer on a full Unix stream nothing when the peer shuts
            // its read half (nor of a shutdown through another descriptor).
            Interest::Write => {
                let recheck = Instant::now() + WRITE_RECHECK;
                let until = deadline.map_or(recheck, |at| at.min(recheck));
                // Cut short by the recheck, the wait says "try again": `io`
                // looks at the deadline itself before waiting again.
                direction.wait_past(seen, Some(until), reason) || until == recheck
            }
        }
    }
}

/// When an operation's wait ends.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Deadline {
    /// Never.
    None,
    /// At this instant.
    At(Instant),
    /// This long after the operation first has to wait.
    After(std::time::Duration),
}

impl Deadline {
    /// The instant, fixing an `After` from now on.
    fn start(&mut self) -> Option<Instant> {
        match *self {
            Deadline::None => None,
            Deadline::At(at) => Some(at),
            Deadline::After(timeout) => {
                let at = crate::sync::waiter::deadline_after(timeout);
                *self = Deadline::At(at);
                Some(at)
            }
        }
    }
}

/// The error of a wait that ran out of time.
pub(crate) fn timed_out(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

/// The longest a party waits for room before it tries again. The kernel
/// tells a writer on a Unix stream with a full buffer nothing of the
/// peer's shutdown of its read half, nor of a shutdown of its own side
/// made through another descriptor, nor (in `poll`) of one made through
/// this socket's handle, which fibers hear of from the shutdown itself
/// (see `Source::shut_down`).
const WRITE_RECHECK: Duration = Duration::from_millis(100);
const WRITE_RECHECK_MS: libc::c_int = WRITE_RECHECK.as_millis() as libc::c_int;

/// Blocks the calling thread until `fd` is ready for `interest` (or has
/// hung up, or failed), or, for a write, at most [`WRITE_RECHECK_MS`];
/// `false` if `deadline` came first.
fn poll(fd: RawFd, interest: Interest, deadline: Option<Instant>) -> bool {
    let (events, cap) = match interest {
        Interest::Read => (libc::POLLIN | libc::POLLRDHUP, None),
        Interest::Write => (libc::POLLOUT, Some(WRITE_RECHECK_MS)),
    };
    loop {
        let (timeout_ms, capped) = match (deadline, cap) {
            (None, None) => (-1, false),
            (None, Some(cap)) => (cap, true),
            (Some(deadline), cap) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return false;
                }
                // Rounded up, so that the wait never ends early.
                let left = libc::c_int::try_from(left.as_micros().div_ceil(1000))
                    .unwrap_or(libc::c_int::MAX);
                match cap {
                    Some(cap) if cap < left => (cap, true),
                    _ => (left, false),
                }
            }
        };
        let mut pollfd = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut pollfd, 1, timeout_ms) };
        if ready > 0 {
            return true;
        }
        if ready < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            // Cannot wait (ENOMEM): let the operation run again and report
            // what it finds, rather than spin here.
            return true;
        }
        if ready == 0 && capped {
            // Time to try again: the operation reports a shutdown.
            return true;
        }
        // 0: the time-out ran out (looked at again above); -1: EINTR.
    }
}

impl Direction {
    fn seen(&self) -> u64 {
        // SeqCst: read before the operation's system call (which the
        // compiler cannot move it past). An edge counted after this read
        // is seen by the wait's look under the direction's lock, which is
        // what loses no wake-up; SeqCst keeps this read in one total
        // order with the harvests' increments.
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
        waiter::wait_until_or_cancel(&waiter, deadline, reason, leave)
            // Timed out: take the waiter out. If an edge took it out first,
            // the wake-up is this party's all the same.
            || !waiter::remove(&mut self.lock(), &waiter)
    }
}
