//! A std socket in non-blocking mode, registered with the reactor, with
//! the time-outs its handles share.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::reactor;
use super::source::{Deadline, Interest, Source};
use crate::sched::park::Reason;

/// A registered socket; taken out of the epoll set before it closes.
pub(crate) struct Registered<S: AsRawFd> {
    socket: S,
    source: &'static Source,
    /// The source's slot in the reactor.
    index: u32,
    /// Read and write time-outs in nanoseconds; 0 for none.
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
}

impl<S: AsRawFd> Registered<S> {
    /// Switches `socket` to non-blocking mode and registers it.
    pub(crate) fn new(socket: S) -> io::Result<Self> {
        let on: libc::c_int = 1;
        // SAFETY: FIONBIO reads one int from a live local.
        reactor::cvt(unsafe { libc::ioctl(socket.as_raw_fd(), libc::FIONBIO, &on) })?;
        // Time-outs set on the socket before (std's `set_read_timeout`) do
        // nothing in non-blocking mode: they become ours.
        let read_timeout = socket_timeout(&socket, libc::SO_RCVTIMEO)?;
        let write_timeout = socket_timeout(&socket, libc::SO_SNDTIMEO)?;
        let (source, index) = reactor::get()?.register(socket.as_raw_fd())?;
        Ok(Registered {
            socket,
            source,
            index,
            read_timeout: AtomicU64::new(read_timeout),
            write_timeout: AtomicU64::new(write_timeout),
        })
    }

    pub(crate) fn socket(&self) -> &S {
        &self.socket
    }

    pub(crate) fn source(&self) -> &Source {
        self.source
    }

    /// Runs `op` until it does not block, parking the caller meanwhile,
    /// within the time-out set for `interest`.
    pub(crate) fn io<T>(
        &self,
        interest: Interest,
        reason: Reason,
        mut op: impl FnMut(&S) -> io::Result<T>,
    ) -> io::Result<T> {
        let deadline = match self.timeout(interest) {
            Some(timeout) => Deadline::After(timeout),
            None => Deadline::None,
        };
        let fd = self.socket.as_raw_fd();
        self.source
            .io(fd, interest, deadline, reason, || op(&self.socket))
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

/// A socket's `option` time-out (`SO_RCVTIMEO` or `SO_SNDTIMEO`) in
/// nanoseconds, 0 for none.
fn socket_timeout(socket: &impl AsRawFd, option: libc::c_int) -> io::Result<u64> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: `tv` and `len` are live and `len` is `tv`'s size.
    reactor::cvt(unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
        )
    })?;
    let timeout =
        Duration::new(tv.tv_sec.max(0) as u64, 0) + Duration::from_micros(tv.tv_usec.max(0) as u64);
    Ok(u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX))
}

impl<S: AsRawFd> Drop for Registered<S> {
    fn drop(&mut self) {
        // Before `socket` closes: the descriptor must be open to be taken
        // out, and a new socket may reuse its number at once.
        if let Ok(reactor) = reactor::get() {
            reactor.deregister(self.socket.as_raw_fd(), self.index);
        }
    }
}
