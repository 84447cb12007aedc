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

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

/// The waits of one [`Retry::Pause`] operation.
struct Backoff {
    refused: u32,
    pause: Duration,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff {
            refused: 0,
            pause: FIRST_PAUSE,
        }
    }

    /// Yields, or pauses (parking a fiber, sleeping a plain thread), up to
    /// `deadline`.
    fn wait(&mut self, deadline: Option<Instant>) {
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
    /// One more than the count of edges at which a fiber's operation
    /// last found the socket drained in this direction (0: none). It said
    /// `WouldBlock`, or it was a stream transfer that came back short, so
    /// everything the socket had was taken (or its buffer was filled).
    /// While the count stays there, no edge has come since, so trying
    /// again would only say `WouldBlock`: the next operation waits for the
    /// edge at once, as tokio clears a socket's readiness after a short
    /// read or write. What comes after that operation brings an edge:
    /// edge-triggered epoll reports every arrival, and every buffer that
    /// frees up after a send was refused.
    ///
    /// This saves a read's `WouldBlock` call in every round trip of a
    /// request-and-reply exchange. It is not trusted once the direction
    /// is closed: a short read may leave the end of the stream behind it,
    /// whose edge came already. Its one exception is TCP's urgent data,
    /// at whose mark a read stops short with data left behind it: the
    /// reader then waits for the next segment (see the limits chapter).
    drained: AtomicU64,
    /// An edge said the direction closed (a hang-up, the peer's end of
    /// the stream, an error): every operation tries its call from then on.
    closed: AtomicBool,
    /// Parties waiting for the next edge.
    waiters: Mutex<VecDeque<Arc<Waiter>>>,
}

impl Direction {
    const fn new() -> Direction {
        Direction {
            edges: AtomicU64::new(0),
            drained: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            waiters: Mutex::new(VecDeque::new()),
        }
    }

    /// Whether an operation found the socket drained at the edge count
    /// `seen`, no edge has come since, and none said the direction closed.
    fn drained_at(&self, seen: u64) -> bool {
        // Relaxed: the mark is a claim about the socket that holds from
        // the system call that made it on, whoever reads it and when; the
        // edges that end it are ordered by the count (`seen`). The closed
        // flag was stored before the count's increment that `seen` (read
        // with SeqCst, before this) includes, if it does.
        !self.closed.load(Ordering::Relaxed)
            && self.drained.load(Ordering::Relaxed) == seen.wrapping_add(1)
    }

    /// Marks the socket drained at the edge count `seen`, read before the
    /// operation that found it so.
    fn mark_drained(&self, seen: u64) {
        // Relaxed: see `drained_at`. A party that marks an older count
        // than another only clears that one's mark: it costs a system call.
        self.drained.store(seen.wrapping_add(1), Ordering::Relaxed);
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

    /// Called by a harvest with an event's bits.
    pub(crate) fn on_event(&self, bits: u32) {
        // A hang-up or an error ends waits in both directions: the next
        // operation reports it (or reads the end of the stream).
        let fail = (libc::EPOLLHUP | libc::EPOLLERR) as u32;
        let read_closed = fail | libc::EPOLLRDHUP as u32;
        if bits & (libc::EPOLLIN as u32 | read_closed) != 0 {
            self.read.edge(bits & read_closed != 0);
        }
        if bits & (libc::EPOLLOUT as u32 | fail) != 0 {
            self.write.edge(bits & fail != 0);
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
    ///
    /// `emptied` says of a result that the operation left the socket with
    /// nothing more to give in its direction: a stream's read that returned
    /// less than asked drained the socket, and a stream's write that took
    /// less than given filled its buffer. A fiber's next operation in that
    /// direction then waits for the next edge without trying its system
    /// call first, which would only say `WouldBlock` (see
    /// [`Direction::drained`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn io<T>(
        &self,
        fd: RawFd,
        interest: Interest,
        retry: Retry,
        mut deadline: Deadline,
        reason: Reason,
        mut op: impl FnMut() -> io::Result<T>,
        emptied: impl Fn(&T) -> bool,
    ) -> io::Result<T> {
        let direction = self.direction(interest);
        // Only fibers keep and trust the mark: a plain thread on a socket no
        // fiber has used reads a source shared by all such sockets, and
        // only edges of waits for edges move it.
        let marks = matches!(retry, Retry::Edge) && Task::current().is_some();
        // Made at the first pause: an operation that goes ahead, or waits
        // for edges, never builds one.
        let mut backoff = None;
        loop {
            let seen = direction.seen();
            if !(marks && direction.drained_at(seen)) {
                match op() {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if marks {
                            direction.mark_drained(seen);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Ok(done) => {
                        if marks && emptied(&done) {
                            direction.mark_drained(seen);
                        }
                        return Ok(done);
                    }
                    failed => return failed,
                }
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

    /// Forgets what operations found of the socket that had this source
    /// before: for a socket that takes the slot over.
    pub(crate) fn forget_drained(&self) {
        // Relaxed: the registering fiber stores these before it adds the
        // socket to the epoll set, and other parties find the source
        // through the socket's registration, which it publishes after. A
        // stale event of the old socket that says "closed" only makes the
        // new one's operations try their calls.
        for direction in [&self.read, &self.write] {
            direction.drained.store(0, Ordering::Relaxed);
            direction.closed.store(false, Ordering::Relaxed);
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
        if Task::current().is_some() {
            self.direction(interest).wait_past(seen, deadline, reason)
        } else {
            poll(fd, interest, deadline)
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

/// Blocks the calling thread until `fd` is ready for `interest` (or has
/// hung up, or failed); `false` if `deadline` came first.
fn poll(fd: RawFd, interest: Interest, deadline: Option<Instant>) -> bool {
    let events = match interest {
        Interest::Read => libc::POLLIN | libc::POLLRDHUP,
        Interest::Write => libc::POLLOUT,
    };
    loop {
        let timeout_ms = match deadline {
            None => -1,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return false;
                }
                // Rounded up, so that the wait never ends early.
                libc::c_int::try_from(left.as_micros().div_ceil(1000)).unwrap_or(libc::c_int::MAX)
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

    /// Counts an edge and wakes the waiters; `closing` if it says the
    /// direction is closed (a hang-up or an error).
    fn edge(&self, closing: bool) {
        if closing {
            // Relaxed: stored before the count's increment below, which
            // publishes it to every party whose `seen` includes this edge.
            self.closed.store(true, Ordering::Relaxed);
        }
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
