//! A std socket in non-blocking mode, registered with the I/O thread, with
//! the time-outs its handles share.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::reactor;
use super::source::{Interest, Source};
use crate::sched::park::Reason;

/// A registered socket; taken out of the epoll set before it closes.
pub(crate) struct Registered<S: AsRawFd> {
    socket: S,
    source: Arc<Source>,
    /// Read and write time-outs in nanoseconds; 0 for none.
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
}

impl<S: AsRawFd> Registered<S> {
    /// Registers `socket`, which must already be non-blocking.
    pub(crate) fn new(socket: S) -> io::Result<Self> {
        let source = Arc::new(Source::default());
        reactor::get()?.register(socket.as_raw_fd(), &source)?;
        Ok(Registered {
            socket,
            source,
            read_timeout: AtomicU64::new(0),
            write_timeout: AtomicU64::new(0),
        })
    }

    pub(crate) fn socket(&self) -> &S {
        &self.socket
    }

    pub(crate) fn source(&self) -> &Source {
        &self.source
    }

    /// Runs `op` until it does not block, parking the caller meanwhile,
    /// within the time-out set for `interest`.
    pub(crate) fn io<T>(
        &self,
        interest: Interest,
        reason: Reason,
        op: impl FnMut(&S) -> io::Result<T>,
    ) -> io::Result<T> {
        let deadline = self
            .timeout(interest)
            .map(crate::sync::waiter::deadline_after);
        self.io_until(interest, deadline, reason, op)
    }

    /// [`io`](Self::io) with a deadline of the caller's.
    pub(crate) fn io_until<T>(
        &self,
        interest: Interest,
        deadline: Option<Instant>,
        reason: Reason,
        mut op: impl FnMut(&S) -> io::Result<T>,
    ) -> io::Result<T> {
        self.source
            .io(interest, deadline, reason, || op(&self.socket))
    }

    /// Sets the time-out of `interest`'s operations; `None` waits for good.
    /// A zero duration is refused, as std refuses it.
    pub(crate) fn set_timeout(
        &self,
        interest: Interest,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        let nanos = match timeout {
            None => 0,
            Some(d) if d.is_zero() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "cannot set a 0 duration timeout",
                ))
            }
            // At least 1: 0 stands for none.
            Some(d) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1),
        };
        // Relaxed: a setting, read by the next operation that starts.
        self.timeout_cell(interest).store(nanos, Ordering::Relaxed);
        Ok(())
    }

    /// The time-out of `interest`'s operations.
    pub(crate) fn timeout(&self, interest: Interest) -> Option<Duration> {
        // Relaxed: see `set_timeout`.
        match self.timeout_cell(interest).load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    fn timeout_cell(&self, interest: Interest) -> &AtomicU64 {
        match interest {
            Interest::Read => &self.read_timeout,
            Interest::Write => &self.write_timeout,
        }
    }

    pub(crate) fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl<S: AsRawFd> Drop for Registered<S> {
    fn drop(&mut self) {
        // Before `socket` closes: the descriptor must be open to be taken
        // out, and a new socket may reuse its number at once.
        if let Ok(reactor) = reactor::get() {
            reactor.deregister(self.socket.as_raw_fd(), &self.source);
        }
    }
}
