//! Unix domain datagram sockets whose waits park the fiber.

use std::io;
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::registered::Registered;
use super::source::{Interest, Retry};

/// A Unix domain datagram socket: [`std::os::unix::net::UnixDatagram`]
/// whose sends and receives park the calling fiber, never its worker
/// thread (a plain thread blocks, as with std). A send waits while the
/// receiver's queue is full: a [`send`](Self::send) on a connected
/// socket until the kernel says there is room, a [`send_to`](Self::send_to)
/// by yielding a few times, then in pauses of 1 to 16 ms (the kernel tells
/// an unconnected sender nothing when the queue drains). Handles made by
/// [`try_clone`](Self::try_clone) share one socket.
///
/// ```
/// use fiber_rt::net::UnixDatagram;
///
/// let rt = fiber_rt::Runtime::new().unwrap();
/// rt.block_on(|| {
///     let (a, b) = UnixDatagram::pair().unwrap();
///     let echo = fiber_rt::spawn(move || {
///         let mut buf = [0; 16];
///         let n = b.recv(&mut buf).unwrap();
///         b.send(&buf[..n]).unwrap();
///     });
///     a.send(b"ping").unwrap();
///     let mut buf = [0; 16];
///     let n = a.recv(&mut buf).unwrap();
///     assert_eq!(&buf[..n], b"ping");
///     echo.join().unwrap();
/// });
/// ```
pub struct UnixDatagram {
    inner: Arc<Registered<std::os::unix::net::UnixDatagram>>,
}

impl UnixDatagram {
    /// A socket bound to `path`, which must not exist yet.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std::os::unix::net::UnixDatagram::bind(path)?)
    }

    /// A socket bound to `addr` (a path, or an abstract name made with
    /// `SocketAddrExt::from_abstract_name`).
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std::os::unix::net::UnixDatagram::bind_addr(addr)?)
    }

    /// A socket bound to no address: it can send, and receive replies
    /// only once connected.
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std::os::unix::net::UnixDatagram::unbound()?)
    }

    /// Two sockets connected to each other.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = std::os::unix::net::UnixDatagram::pair()?;
        Ok((UnixDatagram::from_std(a)?, UnixDatagram::from_std(b)?))
    }

    /// Takes over a std socket, switching it to non-blocking mode.
    pub fn from_std(socket: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            inner: Arc::new(Registered::new(socket)?),
        })
    }

    /// Another handle to the same socket, its time-outs included, sharing
    /// its descriptor (see [`TcpStream::try_clone`](super::TcpStream::try_clone)).
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            inner: self.inner.clone(),
        })
    }

    /// Sets the peer that [`send`](Self::send) sends to and
    /// [`recv`](Self::recv) receives from. It never waits.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.inner.socket().connect(path)
    }

    /// [`connect`](Self::connect) to `addr` (a path, or an abstract name).
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        self.inner.socket().connect_addr(addr)
    }

    /// Sends one datagram to the socket at `path`; while its queue is
    /// full, tries again after a pause (see the type's docs), within the
    /// write time-out.
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.inner.io_retrying(
            Interest::Write,
            Retry::Pause,
            &"UnixDatagram::send_to",
            |s| s.send_to(buf, path),
        )
    }

    /// Sends one datagram to the socket at `addr`, as
    /// [`send_to`](Self::send_to) does.
    pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        self.inner.io_retrying(
            Interest::Write,
            Retry::Pause,
            &"UnixDatagram::send_to_addr",
            |s| s.send_to_addr(buf, addr),
        )
    }

    /// Sends one datagram to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner
            .io(Interest::Write, &"UnixDatagram::send", |s| s.send(buf))
    }

    /// Receives one datagram and the address it came from.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner
            .io(Interest::Read, &"UnixDatagram::recv_from", |s| {
                s.recv_from(buf)
            })
    }

    /// Receives one datagram.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner
            .io(Interest::Read, &"UnixDatagram::recv", |s| s.recv(buf))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.socket().local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.socket().peer_addr()
    }

    /// Shuts down the read half, the write half or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner
            .shutdown(how, std::os::unix::net::UnixDatagram::shutdown)
    }

    super::timeout_methods!();
}

super::fd_impls!(UnixDatagram, peer);
