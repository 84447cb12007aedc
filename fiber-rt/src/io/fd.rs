//! A file descriptor of the user's, waited on as the runtime's sockets
//! are.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use crate::net::registered::{set_nonblocking, Registered};
use crate::net::source::Interest;
use crate::sched::park::Reason;
use crate::sched::task::Task;

/// A file descriptor whose waits park the calling fiber, never its worker
/// thread: the operations given to [`read_with`](Self::read_with) and
/// [`write_with`](Self::write_with) run until they do not fail with
/// `WouldBlock`, and in between the fiber parks until the descriptor's
/// next readiness edge. A plain thread polls the descriptor instead, so
/// the same code blocks it.
///
/// The descriptor is registered with the runtime's epoll set, edge
/// triggered, by the first operation of a fiber's that would block (a
/// descriptor that never blocks is never registered); see
/// [`net`](crate::net) for the protocol. An operation that can go ahead
/// costs only itself.
///
/// ```
/// use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
/// use fiber_rt::io::Fd;
///
/// // An eventfd: a counter that reads wait for.
/// // SAFETY: eventfd returns a new descriptor, owned from here on.
/// let fd = unsafe { OwnedFd::from_raw_fd(libc::eventfd(0, libc::EFD_CLOEXEC)) };
/// let events = std::sync::Arc::new(Fd::new(fd).unwrap());
/// let rt = fiber_rt::Runtime::new().unwrap();
/// let reader = rt.spawn({
///     let events = events.clone();
///     move || {
///         // Parks until the counter is non-zero, then takes it.
///         events.read_with(|fd| {
///             let mut n = 0u64;
///             // SAFETY: reads 8 bytes into a live u64.
///             let read = unsafe { libc::read(fd.as_raw_fd(), (&mut n as *mut u64).cast(), 8) };
///             if read < 0 { Err(std::io::Error::last_os_error()) } else { Ok(n) }
///         })
///     }
/// });
/// let one = 1u64;
/// // SAFETY: writes 8 bytes from a live u64.
/// unsafe { libc::write(events.as_raw_fd(), (&one as *const u64).cast(), 8) };
/// assert_eq!(reader.join().unwrap().unwrap(), 1);
/// ```
pub struct Fd<T: AsRawFd> {
    inner: Registered<T>,
}

impl<T: AsRawFd> Fd<T> {
    /// Takes `inner` over and switches its descriptor to non-blocking mode
    /// (that of its open file description, which every duplicate of the
    /// descriptor shares). A regular file or a directory, which is always
    /// ready and which epoll refuses, is an `InvalidInput` error: read it
    /// directly.
    pub fn new(inner: T) -> io::Result<Fd<T>> {
        Fd::try_new(inner).map_err(|(_, e)| e)
    }

    /// [`new`](Self::new), giving `inner` back with the error, so that a
    /// descriptor refused here can still be used (a regular file, read
    /// directly).
    pub fn try_new(inner: T) -> Result<Fd<T>, (T, io::Error)> {
        let fd = inner.as_raw_fd();
        match refuse_files(fd).and_then(|()| set_nonblocking(fd, true)) {
            Ok(()) => Ok(Fd {
                inner: Registered::non_blocking(inner),
            }),
            Err(e) => Err((inner, e)),
        }
    }

    /// Runs `op` until it does anything but fail with `WouldBlock` (or
    /// `Interrupted`), waiting for the descriptor to become readable after
    /// each `WouldBlock`; past the [read time-out](Self::set_read_timeout)
    /// fails with `TimedOut`. `op` must be non-blocking and must say
    /// `WouldBlock` only when the kernel did (a wait for an edge that
    /// already came would last until the next one).
    pub fn read_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.run(Interest::Read, &"Fd::read_with", op)
    }

    /// [`read_with`](Self::read_with) for writability, with the write
    /// time-out.
    pub fn write_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.run(Interest::Write, &"Fd::write_with", op)
    }

    /// Runs `op` as [`read_with`](Self::read_with) says, for `interest`.
    /// A fiber adds the descriptor to the epoll set only once `op` has
    /// said `WouldBlock`: a descriptor that never blocks, and that epoll
    /// may refuse (`/dev/null`, say, as a redirected standard input), is
    /// never added, so its operations go ahead on a fiber as on a thread.
    fn run<R>(
        &self,
        interest: Interest,
        reason: Reason,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        if Task::current().is_some() && !self.inner.is_registered() {
            loop {
                match op(self.inner.socket()) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    done => return done,
                }
            }
            // `io` registers the descriptor, then looks at its edges and
            // runs `op` again before any wait: readiness that came since
            // this `WouldBlock` is found by that run.
        }
        self.inner.io(interest, reason, op)
    }

    /// Waits until the descriptor is readable, or has hung up or failed,
    /// within the read time-out: for code that makes its own calls (a C
    /// library's). It looks with `poll` first, so a descriptor that is
    /// ready already returns at once; `read_with` saves that call.
    pub fn readable(&self) -> io::Result<()> {
        self.read_with(|fd| poll_now(fd.as_raw_fd(), libc::POLLIN | libc::POLLRDHUP))
    }

    /// [`readable`](Self::readable) for writability, within the write
    /// time-out.
    pub fn writable(&self) -> io::Result<()> {
        self.write_with(|fd| poll_now(fd.as_raw_fd(), libc::POLLOUT))
    }

    /// Sets the time-out of [`read_with`](Self::read_with)'s waits:
    /// `None` waits for good; a zero duration is an error, as for sockets.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_timeout(Interest::Read, timeout)
    }

    /// Sets the time-out of [`write_with`](Self::write_with)'s waits.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_timeout(Interest::Write, timeout)
    }

    /// The read time-out.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.inner.timeout(Interest::Read)
    }

    /// The write time-out.
    pub fn write_timeout(&self) -> Option<Duration> {
        self.inner.timeout(Interest::Write)
    }

    /// What the descriptor belongs to.
    pub fn get_ref(&self) -> &T {
        self.inner.socket()
    }

    /// Gives the value back, its descriptor taken out of the epoll set and
    /// still in non-blocking mode.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

/// Whether `fd` has `events` (or a hang-up or an error) now: `Ok` if so,
/// `WouldBlock` if not.
fn poll_now(fd: RawFd, events: libc::c_short) -> io::Result<()> {
    let mut pollfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd; a zero time-out never blocks.
    match unsafe { libc::poll(&mut pollfd, 1, 0) } {
        0 => Err(io::ErrorKind::WouldBlock.into()),
        n if n > 0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Refuses a regular file or a directory, which epoll does not take.
fn refuse_files(fd: RawFd) -> io::Result<()> {
    // SAFETY: an all-zero `stat` is a valid value to overwrite.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `stat` is a live, writable struct of the right type.
    crate::net::reactor::cvt(unsafe { libc::fstat(fd, &mut stat) })?;
    match stat.st_mode & libc::S_IFMT {
        libc::S_IFREG | libc::S_IFDIR => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a regular file or a directory is always ready: read it without `Fd`",
        )),
        _ => Ok(()),
    }
}

impl<T: AsRawFd> AsRawFd for Fd<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl<T: AsRawFd + AsFd> AsFd for Fd<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.socket().as_fd()
    }
}

impl<T: AsRawFd + fmt::Debug> fmt::Debug for Fd<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fd").field("inner", self.get_ref()).finish()
    }
}
