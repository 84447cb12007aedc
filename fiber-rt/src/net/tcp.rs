//! TCP listeners and streams whose waits park the fiber.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::connect::connect;
use super::registered::Registered;
use super::source::Interest;
use super::{each_addr, ToSocketAddrs};

/// A TCP socket server, listening for connections: [`std::net::TcpListener`]
/// whose `accept` parks the calling fiber, never its worker thread (a plain
/// thread blocks, as with std).
///
/// ```
/// use fiber_rt::net::{TcpListener, TcpStream};
/// use std::io::{Read, Write};
///
/// let rt = fiber_rt::Runtime::new().unwrap();
/// let reply = rt.block_on(|| {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let server = fiber_rt::spawn(move || {
///         let (mut stream, _) = listener.accept().unwrap();
///         let mut buf = [0; 5];
///         stream.read_exact(&mut buf).unwrap();
///         stream.write_all(&buf).unwrap();
///     });
///     let mut client = TcpStream::connect(addr).unwrap();
///     client.write_all(b"hello").unwrap();
///     let mut reply = String::new();
///     client.read_to_string(&mut reply).unwrap();
///     server.join().unwrap();
///     reply
/// });
/// assert_eq!(reply, "hello");
/// ```
pub struct TcpListener {
    inner: Registered<std::net::TcpListener>,
}

impl TcpListener {
    /// Binds to the first of `addr`'s addresses that can be bound, as
    /// [`std::net::TcpListener::bind`] does (a host name is resolved while
    /// the fiber parks).
    ///
    /// The queue of connections not yet accepted holds 1024 (std's holds
    /// 128, too few when many fibers connect at once).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        let listener = each_addr(addr, |addr| std::net::TcpListener::bind(addr))?;
        super::widen_backlog(&listener)?;
        TcpListener::from_std(listener)
    }

    /// Takes over a std listener, switching it to non-blocking mode.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: Registered::new(listener)?,
        })
    }

    /// Waits for a connection and returns it with the peer's address.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = self
            .inner
            .io(Interest::Read, &"TcpListener::accept", |l| l.accept())?;
        Ok((TcpStream::from_std(stream)?, peer))
    }

    /// An endless iterator over accepted connections.
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<TcpStream>> + '_ {
        std::iter::repeat_with(|| self.accept().map(|(stream, _)| stream))
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.socket().local_addr()
    }

    /// Sets `accept`'s time-out: past it, `accept` fails with `TimedOut`.
    /// `None` waits for good; a zero duration is an error.
    pub fn set_accept_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_timeout(Interest::Read, timeout)
    }

    /// `accept`'s time-out.
    pub fn accept_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.inner.timeout(Interest::Read))
    }

    /// Sets the IP time-to-live of connections from this listener.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.socket().set_ttl(ttl)
    }

    /// The IP time-to-live.
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.socket().ttl()
    }

    /// Takes the socket's pending error, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.socket().take_error()
    }
}

super::fd_impls!(TcpListener);

/// A TCP connection: [`std::net::TcpStream`] whose reads, writes and
/// connect park the calling fiber, never its worker thread (a plain thread
/// blocks, as with std).
///
/// Handles made by [`try_clone`](Self::try_clone) share one socket, so one
/// fiber may read while another writes. Time-outs end a wait with
/// `ErrorKind::TimedOut`.
pub struct TcpStream {
    inner: Arc<Registered<std::net::TcpStream>>,
}

impl TcpStream {
    /// Connects to the first of `addr`'s addresses that accepts, as
    /// [`std::net::TcpStream::connect`] does, parking the caller during
    /// each handshake (and while a host name is resolved).
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |addr| connect(addr, None)).map(TcpStream::new)
    }

    /// Connects to `addr`, giving up with `TimedOut` after `timeout`.
    /// A zero duration is an error, as with std.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        let deadline = crate::sync::waiter::deadline_after(timeout);
        connect(addr, Some(deadline)).map(TcpStream::new)
    }

    /// Takes over a connected std stream, switching it to non-blocking mode.
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream::new(Registered::new(stream)?))
    }

    fn new(inner: Registered<std::net::TcpStream>) -> TcpStream {
        TcpStream {
            inner: Arc::new(inner),
        }
    }

    /// Another handle to the same socket, its time-outs included: unlike
    /// std's, it shares the descriptor (`as_raw_fd` is the same) rather
    /// than duplicating it, and the socket closes with the last handle.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            inner: self.inner.clone(),
        })
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.socket().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.socket().local_addr()
    }

    /// Shuts down the read half, the write half or both; waiting parties
    /// of that half then see the end of the stream or an error.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how, std::net::TcpStream::shutdown)
    }

    /// Reads without taking the bytes out of the socket's queue.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner
            .io(Interest::Read, &"TcpStream::peek", |s| s.peek(buf))
    }

    super::timeout_methods!();

    /// Sets `TCP_NODELAY` (Nagle's algorithm off when `true`).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.socket().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.socket().nodelay()
    }

    /// Sets the IP time-to-live.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.socket().set_ttl(ttl)
    }

    /// The IP time-to-live.
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.socket().ttl()
    }
}

super::stream_impls!(TcpStream);
super::fd_impls!(TcpStream, peer);
