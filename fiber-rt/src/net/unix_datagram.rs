//! Unix domain datagram sockets whose waits park the fiber.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::registered::Registered;
use super::source::{timed_out, Interest};

/// How often a [`UnixDatagram::send_to`] that finds the receiver's queue
/// full only yields before it tries again: enough for a receiver on the
/// same worker to drain the queue.
const YIELDS: u32 = 4;
/// Its first pause after those; each next one is twice as long, up to
/// [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(1);
const LONGEST_PAUSE: Duration = Duration::from_millis(16);

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

    /// Sends one datagram to the socket at `path`; while its queue is
    /// full, tries again after a pause (see the type's docs), within the
    /// write time-out.
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.send_unconnected(&"UnixDatagram::send_to", |s| s.send_to(buf, path))
    }

    /// Sends one datagram to the socket at `addr`, as
    /// [`send_to`](Self::send_to) does.
    pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        self.send_unconnected(&"UnixDatagram::send_to_addr", |s| s.send_to_addr(buf, addr))
    }

    /// Runs `send` until the receiver's queue has room. Not by waiting for
    /// an edge: an unconnected sender is not told when a receiver's queue
    /// drains (only a connected one is), and each refused send makes its
    /// own socket report itself writable, so a wait for the next edge
    /// would end at once, again and again, and spin.
    fn send_unconnected(
        &self,
        what: &'static &'static str,
        mut send: impl FnMut(&std::os::unix::net::UnixDatagram) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let mut deadline = None;
        let mut pause = FIRST_PAUSE;
        let mut refused = 0;
        loop {
            match send(self.inner.socket()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                done => return done,
            }
            // Read at the first refusal only, as other waits do.
            let until = *deadline.get_or_insert_with(|| {
                self.inner
                    .timeout(Interest::Write)
                    .map(crate::sync::waiter::deadline_after)
            });
            let nap = match until {
                None => pause,
                Some(until) => {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(timed_out(what));
                    }
                    pause.min(left)
                }
            };
            refused += 1;
            if refused <= YIELDS {
                crate::yield_now();
                continue;
            }
            // Parks a fiber, sleeps a plain thread.
            crate::sleep(nap);
            pause = (pause * 2).min(LONGEST_PAUSE);
        }
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
        self.inner.socket().shutdown(how)
    }

    super::timeout_methods!();
}

super::fd_impls!(UnixDatagram);

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixDatagram")
            .field("addr", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .field("fd", &self.inner.as_raw_fd())
            .finish()
    }
}
