//! Unix domain stream sockets whose waits park the fiber.

use std::io;
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::registered::Registered;
use super::source::Interest;

/// A Unix domain socket server: [`std::os::unix::net::UnixListener`] whose
/// `accept` parks the calling fiber, never its worker thread.
///
/// ```
/// use fiber_rt::net::{UnixListener, UnixStream};
/// use std::io::{Read, Write};
///
/// let path = std::env::temp_dir().join(format!("fiber-doc-{}.sock", std::process::id()));
/// let rt = fiber_rt::Runtime::new().unwrap();
/// let got = rt.block_on({
///     let path = path.clone();
///     move || {
///         let listener = UnixListener::bind(&path).unwrap();
///         let client = fiber_rt::spawn(move || {
///             let mut stream = UnixStream::connect(&path).unwrap();
///             stream.write_all(b"local").unwrap();
///         });
///         let (mut stream, _) = listener.accept().unwrap();
///         let mut got = String::new();
///         stream.read_to_string(&mut got).unwrap();
///         client.join().unwrap();
///         got
///     }
/// });
/// assert_eq!(got, "local");
/// std::fs::remove_file(&path).unwrap();
/// ```
pub struct UnixListener {
    inner: Registered<std::os::unix::net::UnixListener>,
}

impl UnixListener {
    /// Binds to `path`, which must not exist yet, with a queue of 1024
    /// connections not yet accepted.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        let listener = std::os::unix::net::UnixListener::bind(path)?;
        super::widen_backlog(&listener)?;
        UnixListener::from_std(listener)
    }

    /// Binds to `addr` (a path, or an abstract name made with
    /// `SocketAddrExt::from_abstract_name`), as [`bind`](Self::bind) does.
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        let listener = std::os::unix::net::UnixListener::bind_addr(addr)?;
        super::widen_backlog(&listener)?;
        UnixListener::from_std(listener)
    }

    /// Takes over a std listener, switching it to non-blocking mode.
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        Ok(UnixListener {
            inner: Registered::new(listener)?,
        })
    }

    /// Waits for a connection and returns it with the peer's address.
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (stream, peer) = self
            .inner
            .io(Interest::Read, &"UnixListener::accept", |l| l.accept())?;
        Ok((UnixStream::from_std(stream)?, peer))
    }

    /// An endless iterator over accepted connections.
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<UnixStream>> + '_ {
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

    /// Takes the socket's pending error, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.socket().take_error()
    }
}

super::fd_impls!(UnixListener);

/// A Unix domain stream: [`std::os::unix::net::UnixStream`] whose reads
/// and writes park the calling fiber, never its worker thread. Handles
/// made by [`try_clone`](Self::try_clone) share one socket.
pub struct UnixStream {
    inner: Arc<Registered<std::os::unix::net::UnixStream>>,
}

impl UnixStream {
    /// Connects to the socket at `path`. A Unix domain connect completes
    /// at once, or fails, unless the listener's queue is full: then it
    /// blocks the calling thread until the listener accepts.
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        UnixStream::from_std(std::os::unix::net::UnixStream::connect(path)?)
    }

    /// Connects to the socket at `addr` (a path, or an abstract name), as
    /// [`connect`](Self::connect) does.
    pub fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        UnixStream::from_std(std::os::unix::net::UnixStream::connect_addr(addr)?)
    }

    /// Two connected streams.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// Takes over a connected std stream, switching it to non-blocking
    /// mode.
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            inner: Arc::new(Registered::new(stream)?),
        })
    }

    /// Another handle to the same socket, its time-outs included, sharing
    /// its descriptor (see [`TcpStream::try_clone`](super::TcpStream::try_clone)).
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        Ok(UnixStream {
            inner: self.inner.clone(),
        })
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.socket().local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.socket().peer_addr()
    }

    /// Shuts down the read half, the write half or both; waiting parties
    /// of that half then see the end of the stream or an error.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner
            .shutdown(how, std::os::unix::net::UnixStream::shutdown)
    }

    super::timeout_methods!();
}

super::stream_impls!(UnixStream);
super::fd_impls!(UnixStream, peer);
