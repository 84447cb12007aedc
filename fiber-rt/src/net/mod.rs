//! Network sockets whose waits park the fiber, never its worker thread:
//! [`TcpListener`], [`TcpStream`] and [`UdpSocket`], with the methods of
//! their `std::net` counterparts, and [`UnixListener`], [`UnixStream`] and
//! [`UnixDatagram`], with the stable ones of `std::os::unix::net` (the
//! `*_addr` ones for abstract names included); all but
//! `set_nonblocking` (a fiber's socket always is) and the listeners'
//! `try_clone` (share a listener through an `Arc`: it is `Sync`).
//!
//! A fiber that reads from a socket with nothing to read parks; the
//! runtime's other fibers run on its worker meanwhile, and the fiber is
//! queued again once the socket is readable. So a server can give every
//! connection a fiber of its own and write it as plain blocking code, and
//! a worker thread serves any number of them. From a plain thread the
//! same calls block the thread, as std's do.
//!
//! A socket is registered once, edge-triggered, with one epoll instance
//! per process, by the first operation a fiber makes on it (a socket that
//! only plain threads use never is). An operation that can go ahead costs
//! its system call and an atomic load; one that would block parks the
//! fiber until the socket's next edge. No thread of its own waits for the
//! edges: an idle worker waits for them in place of sleeping, so the fiber
//! a socket wakes is queued by a thread that is awake already, and the
//! preemption monitor takes them at its ticks while every worker is busy
//! (as Go's scheduler polls the network). A plain thread polls its socket
//! itself.
//!
//! Addresses are taken in every form std takes them ([`ToSocketAddrs`]);
//! a host name (`"example.com:80"`) is resolved by the system's resolver
//! on a thread of the blocking pool while the fiber parks. A time-out ends
//! a wait with
//! [`ErrorKind::TimedOut`](std::io::ErrorKind::TimedOut) (std reports
//! `WouldBlock` on Unix). A cancelled fiber unwinds out of its wait (see
//! [`JoinHandle::cancel`](crate::JoinHandle::cancel)).

use std::io;
use std::net::SocketAddr;

/// `Read` and `Write` for a stream type and for shared references to it
/// (so that one fiber may read while another writes). The type has an
/// `inner: Arc<Registered<_>>`.
macro_rules! stream_impls {
    ($stream:ident) => {
        impl std::io::Read for &$stream {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.inner.io(
                    $crate::net::source::Interest::Read,
                    &concat!(stringify!($stream), "::read"),
                    |mut s| std::io::Read::read(&mut s, buf),
                )
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                self.inner.io(
                    $crate::net::source::Interest::Read,
                    &concat!(stringify!($stream), "::read"),
                    |mut s| std::io::Read::read_vectored(&mut s, bufs),
                )
            }
        }

        impl std::io::Write for &$stream {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.inner.io(
                    $crate::net::source::Interest::Write,
                    &concat!(stringify!($stream), "::write"),
                    |mut s| std::io::Write::write(&mut s, buf),
                )
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                self.inner.io(
                    $crate::net::source::Interest::Write,
                    &concat!(stringify!($stream), "::write"),
                    |mut s| std::io::Write::write_vectored(&mut s, bufs),
                )
            }

            fn flush(&mut self) -> std::io::Result<()> {
                // Nothing is buffered here.
                Ok(())
            }
        }

        impl std::io::Read for $stream {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                (&*self).read(buf)
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                (&*self).read_vectored(bufs)
            }
        }

        impl std::io::Write for $stream {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                (&*self).write(buf)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                (&*self).write_vectored(bufs)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}
pub(crate) use stream_impls;

/// `AsRawFd`, `AsFd` and `Debug` for a socket type with an `inner`
/// registration; `Debug` shows the local address, the peer's for a type
/// given with `peer`, and the descriptor.
macro_rules! fd_impls {
    ($socket:ident $(, $peer:ident)?) => {
        impl std::fmt::Debug for $socket {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($socket))
                    .field("addr", &self.local_addr().ok())
                    $(.field(stringify!($peer), &self.peer_addr().ok()))?
                    .field("fd", &self.inner.as_raw_fd())
                    .finish()
            }
        }

        impl std::os::fd::AsRawFd for $socket {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.inner.as_raw_fd()
            }
        }

        impl std::os::fd::AsFd for $socket {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(self.inner.socket())
            }
        }
    };
}
pub(crate) use fd_impls;

/// The backlog of a listener made by a `bind` here, as tokio's: std's 128
/// reset connections when a thousand fibers connected at once.
const BACKLOG: libc::c_int = 1024;

/// Gives a std listener the backlog of [`BACKLOG`]. Listening again on a
/// listening socket only changes its backlog.
fn widen_backlog(listener: &impl std::os::fd::AsRawFd) -> io::Result<()> {
    // SAFETY: a plain system call on a socket `listener` owns.
    reactor::cvt(unsafe { libc::listen(listener.as_raw_fd(), BACKLOG) }).map(drop)
}

/// A socket type's time-out methods and `take_error`, inside its `impl`
/// block. The type has an `inner: Arc<Registered<_>>`.
macro_rules! timeout_methods {
    () => {
        /// Sets the time-out of reads (receives): past it, a wait fails
        /// with `TimedOut`. `None` waits for good; a zero duration is an
        /// error, as with std.
        pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
            self.inner.set_timeout(Interest::Read, timeout)
        }

        /// Sets the time-out of writes (sends), as
        /// [`set_read_timeout`](Self::set_read_timeout) does for reads.
        pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
            self.inner.set_timeout(Interest::Write, timeout)
        }

        /// The read time-out.
        pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
            Ok(self.inner.timeout(Interest::Read))
        }

        /// The write time-out.
        pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
            Ok(self.inner.timeout(Interest::Write))
        }

        /// Takes the socket's pending error, if any.
        pub fn take_error(&self) -> io::Result<Option<io::Error>> {
            self.inner.socket().take_error()
        }
    };
}
pub(crate) use timeout_methods;

mod addr;
mod connect;
pub(crate) mod reactor;
pub(crate) mod registered;
pub(crate) mod source;
mod tcp;
mod udp;
mod unix;
mod unix_datagram;

pub use addr::{lookup_host, ToSocketAddrs};
pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};
pub use unix_datagram::UnixDatagram;

/// Runs `f` on each of `addr`'s addresses until one succeeds; the last
/// error otherwise, as std does.
fn each_addr<T>(
    addr: impl ToSocketAddrs,
    mut f: impl FnMut(&SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for addr in addr.resolve()? {
        match f(&addr) {
            Ok(done) => return Ok(done),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}
