//! A std socket in non-blocking mode, registered with the reactor once a
//! fiber uses it, with the time-outs its handles share.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use super::reactor;
use super::source::{Deadline, Interest, Retry, Source};
use crate::sched::park::Reason;
use crate::sched::task::Task;

/// A socket in non-blocking mode. The first operation a fiber makes on it
/// registers it with the reactor; a socket that only plain threads use
/// (they poll it themselves) never is, so its traffic never wakes a
/// worker waiting for sockets. Taken out of the epoll set before it
/// closes.
pub(crate) struct Registered<S: AsRawFd> {
    socket: S,
    /// The source and its slot in the reactor, once registered.
    registration: OnceLock<(&'static Source, u32)>,
    /// Held while registering, so that a socket shared by fibers on
    /// several workers is added to the epoll set once.
    registering: Mutex<()>,
    /// Read and write time-outs in nanoseconds; 0 for none.
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
}

impl<S: AsRawFd> Registered<S> {
    /// Switches `socket` to non-blocking mode.
    pub(crate) fn new(socket: S) -> io::Result<Self> {
        set_nonblocking(socket.as_raw_fd(), true)?;
        // Time-outs set on the socket before (std's `set_read_timeout`) do
        // nothing in non-blocking mode: they become ours.
        let read_timeout = socket_timeout(&socket, libc::SO_RCVTIMEO)?;
        let write_timeout = socket_timeout(&socket, libc::SO_SNDTIMEO)?;
        Ok(Registered {
            socket,
            registration: OnceLock::new(),
            registering: Mutex::new(()),
            read_timeout: AtomicU64::new(read_timeout),
            write_timeout: AtomicU64::new(write_timeout),
        })
    }

    /// Switches `fd`, a descriptor that is not a socket (a pipe, a
    /// pidfd), to non-blocking mode. It starts with no time-outs.
    pub(crate) fn non_socket(fd: S) -> io::Result<Self> {
        set_nonblocking(fd.as_raw_fd(), true)?;
        Ok(Registered::non_blocking(fd))
    }

    /// Takes `fd`, which the caller has switched to non-blocking mode, with
    /// no time-outs.
    pub(crate) fn non_blocking(fd: S) -> Self {
        Registered {
            socket: fd,
            registration: OnceLock::new(),
            registering: Mutex::new(()),
            read_timeout: AtomicU64::new(0),
            write_timeout: AtomicU64::new(0),
        }
    }

    /// Takes the descriptor out of the epoll set, if a fiber registered
    /// it, and gives it back, still in non-blocking mode.
    pub(crate) fn into_inner(self) -> S {
        let this = std::mem::ManuallyDrop::new(self);
        this.deregister();
        // The fields left behind own no resource a skipped drop would leak:
        // a futex mutex, atomics, and a `OnceLock` of a reference and an index.
        // SAFETY: `this` is never dropped nor used again: one move out.
        unsafe { std::ptr::read(&this.socket) }
    }

    /// Takes the descriptor out of the epoll set if it was registered.
    fn deregister(&self) {
        // A registered socket found the reactor made; one never registered
        // leaves it unmade (`get` is not called for it).
        if let Some(&(_, index)) = self.registration.get() {
            if let Ok(reactor) = reactor::get() {
                reactor.deregister(self.socket.as_raw_fd(), index);
            }
        }
    }

    /// Whether a fiber has added the descriptor to the epoll set.
    pub(crate) fn is_registered(&self) -> bool {
        self.registration.get().is_some()
    }

    pub(crate) fn socket(&self) -> &S {
        &self.socket
    }

    /// The socket's readiness for the caller to wait on: on a fiber,
    /// registering the socket first if need be (which may fail, as adding
    /// to the epoll set can); on a plain thread, which polls the socket
    /// itself, a source no harvest ever moves unless a fiber registered
    /// the socket.
    pub(crate) fn source(&self) -> io::Result<&Source> {
        if let Some((source, _)) = self.registration.get() {
            return Ok(source);
        }
        if Task::current().is_none() {
            return Ok(&UNREGISTERED);
        }
        let _registering = self
            .registering
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((source, _)) = self.registration.get() {
            return Ok(source);
        }
        let registered = reactor::get()?.register(self.socket.as_raw_fd())?;
        let source = self.registration.get_or_init(|| registered).0;
        if let Some(task) = Task::current() {
            task.registry.sleep.socket_registered();
        }
        Ok(source)
    }

    /// Runs `op` until it does not block, parking the caller meanwhile
    /// until the socket's next edge, within the time-out set for
    /// `interest`.
    pub(crate) fn io<T>(
        &self,
        interest: Interest,
        reason: Reason,
        op: impl FnMut(&S) -> io::Result<T>,
    ) -> io::Result<T> {
        self.io_retrying(interest, Retry::Edge, reason, op)
    }

    /// [`io`](Self::io) with a deadline of its own in place of the
    /// time-out set for `interest`.
    pub(crate) fn io_until<T>(
        &self,
        interest: Interest,
        deadline: Deadline,
        reason: Reason,
        op: impl FnMut(&S) -> io::Result<T>,
    ) -> io::Result<T> {
        self.io_with(interest, Retry::Edge, deadline, reason, op)
    }

    /// [`io`](Self::io), waiting as `retry` says.
    pub(crate) fn io_retrying<T>(
        &self,
        interest: Interest,
        retry: Retry,
        reason: Reason,
        op: impl FnMut(&S) -> io::Result<T>,
    ) -> io::Result<T> {
        let deadline = match self.timeout(interest) {
            Some(timeout) => Deadline::After(timeout),
            None => Deadline::None,
        };
        self.io_with(interest, retry, deadline, reason, op)
    }

    fn io_with<T>(
        &self,
        interest: Interest,
        retry: Retry,
        deadline: Deadline,
        reason: Reason,
        mut op: impl FnMut(&S) -> io::Result<T>,
    ) -> io::Result<T> {
        let fd = self.socket.as_raw_fd();
        self.source()?
            .io(fd, interest, retry, deadline, reason, || op(&self.socket))
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

    /// Shuts `how` down with `shut` (the socket type's own call), and
    /// wakes the fibers waiting on the halves shut (see
    /// `Source::shut_down`).
    pub(crate) fn shutdown(
        &self,
        how: std::net::Shutdown,
        shut: impl FnOnce(&S, std::net::Shutdown) -> io::Result<()>,
    ) -> io::Result<()> {
        shut(&self.socket, how)?;
        if let Some((source, _)) = self.registration.get() {
            source.shut_down(how);
        }
        Ok(())
    }

    pub(crate) fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

/// What plain threads wait on for a socket no fiber has used: they poll
/// the socket, and read counts that never move.
static UNREGISTERED: Source = Source::new();

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

/// Sets or clears `O_NONBLOCK` on `fd`'s open file description.
pub(crate) fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    let on = libc::c_int::from(on);
    // SAFETY: FIONBIO reads one int from a live local.
    reactor::cvt(unsafe { libc::ioctl(fd, libc::FIONBIO, &on) }).map(drop)
}

impl<S: AsRawFd> Drop for Registered<S> {
    fn drop(&mut self) {
        // Before `socket` closes: the descriptor must be open to be taken
        // out, and a new socket may reuse its number at once.
        self.deregister();
    }
}

#[cfg(test)]
mod tests {
    //! Only fibers register a socket: plain threads poll it themselves.

    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// Reads one byte from `socket`, waiting for it as the caller does.
    fn read_one(socket: &Registered<UnixStream>) -> u8 {
        let mut buf = [0; 1];
        let n = socket
            .io(Interest::Read, &"test read", |mut s| s.read(&mut buf))
            .unwrap();
        assert_eq!(n, 1);
        buf[0]
    }

    /// Writes `byte` to `peer` from another thread after a while, so that
    /// the reader has to wait.
    fn write_later(mut peer: UnixStream, byte: u8) -> std::thread::JoinHandle<UnixStream> {
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            peer.write_all(&[byte]).unwrap();
            peer
        })
    }

    #[test]
    fn a_socket_is_registered_by_the_first_fiber_that_uses_it() {
        let (ours, peer) = UnixStream::pair().unwrap();
        let ours = Arc::new(Registered::new(ours).unwrap());
        // A plain thread waits by polling: the socket stays out of epoll.
        let peer = write_later(peer, 1).join().unwrap();
        assert_eq!(read_one(&ours), 1);
        let peer = write_later(peer, 2);
        assert_eq!(read_one(&ours), 2);
        assert!(ours.registration.get().is_none());
        // A fiber waits on the reactor: its first use registers the socket.
        let rt = crate::Builder::new().workers(1).build().unwrap();
        let writer = write_later(peer.join().unwrap(), 3);
        let got = rt.block_on({
            let ours = ours.clone();
            move || read_one(&ours)
        });
        assert_eq!(got, 3);
        assert!(ours.registration.get().is_some());
        drop(writer.join().unwrap());
    }
}
