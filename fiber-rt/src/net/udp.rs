//! UDP sockets whose waits park the fiber.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::registered::Registered;
use super::source::Interest;
use super::{each_addr, ToSocketAddrs};

/// A UDP socket: [`std::net::UdpSocket`] whose sends and receives park the
/// calling fiber, never its worker thread (a plain thread blocks, as with
/// std). Handles made by [`try_clone`](Self::try_clone) share one socket.
///
/// ```
/// use fiber_rt::net::UdpSocket;
///
/// let rt = fiber_rt::Runtime::new().unwrap();
/// rt.block_on(|| {
///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
///     let to = b.local_addr().unwrap();
///     let echo = fiber_rt::spawn(move || {
///         let mut buf = [0; 16];
///         let (n, from) = b.recv_from(&mut buf).unwrap();
///         b.send_to(&buf[..n], from).unwrap();
///     });
///     a.send_to(b"ping", to).unwrap();
///     let mut buf = [0; 16];
///     let (n, _) = a.recv_from(&mut buf).unwrap();
///     assert_eq!(&buf[..n], b"ping");
///     echo.join().unwrap();
/// });
/// ```
pub struct UdpSocket {
    inner: Arc<Registered<std::net::UdpSocket>>,
}

impl UdpSocket {
    /// Binds to the first of `addr`'s addresses that can be bound (a host
    /// name is resolved while the fiber parks).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        UdpSocket::from_std(each_addr(addr, |addr| std::net::UdpSocket::bind(addr))?)
    }

    /// Takes over a std socket, switching it to non-blocking mode.
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            inner: Arc::new(Registered::new(socket)?),
        })
    }

    /// Another handle to the same socket, its time-outs included, sharing
    /// its descriptor (see [`TcpStream::try_clone`](super::TcpStream::try_clone)).
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            inner: self.inner.clone(),
        })
    }

    /// Receives one datagram and the address it came from.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.io(Interest::Read, &"UdpSocket::recv_from", |s| {
            s.recv_from(buf)
        })
    }

    /// Receives one datagram without taking it out of the queue.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.io(Interest::Read, &"UdpSocket::peek_from", |s| {
            s.peek_from(buf)
        })
    }

    /// Sends one datagram to `addr` (its first address; a host name is
    /// resolved while the fiber parks).
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let addr = addr.resolve()?.into_iter().next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to")
        })?;
        self.inner.io(Interest::Write, &"UdpSocket::send_to", |s| {
            s.send_to(buf, addr)
        })
    }

    /// Sets the peer that [`send`](Self::send) sends to and
    /// [`recv`](Self::recv) receives from: the first of `addr`'s addresses
    /// that can be set (a host name is resolved while the fiber parks).
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        // A UDP connect only records the address: it never blocks.
        each_addr(addr, |addr| self.inner.socket().connect(addr))
    }

    /// Sends one datagram to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner
            .io(Interest::Write, &"UdpSocket::send", |s| s.send(buf))
    }

    /// Receives one datagram from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner
            .io(Interest::Read, &"UdpSocket::recv", |s| s.recv(buf))
    }

    /// Receives one datagram from the connected peer, leaving it queued
    /// for the next receive.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner
            .io(Interest::Read, &"UdpSocket::peek", |s| s.peek(buf))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.socket().local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.socket().peer_addr()
    }

    super::timeout_methods!();

    /// Sets `SO_BROADCAST`.
    pub fn set_broadcast(&self, broadcast: bool) -> io::Result<()> {
        self.inner.socket().set_broadcast(broadcast)
    }

    /// Whether `SO_BROADCAST` is set.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.inner.socket().broadcast()
    }

    /// Sets the IP time-to-live.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.socket().set_ttl(ttl)
    }

    /// The IP time-to-live.
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.socket().ttl()
    }

    /// Joins the IPv4 multicast group `group` on the interface with
    /// address `interface` (`UNSPECIFIED`: the system's choice).
    pub fn join_multicast_v4(&self, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.inner.socket().join_multicast_v4(group, interface)
    }

    /// Leaves an IPv4 multicast group joined before.
    pub fn leave_multicast_v4(&self, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.inner.socket().leave_multicast_v4(group, interface)
    }

    /// Joins the IPv6 multicast group `group` on interface number
    /// `interface` (0: the system's choice).
    pub fn join_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.inner.socket().join_multicast_v6(group, interface)
    }

    /// Leaves an IPv6 multicast group joined before.
    pub fn leave_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.inner.socket().leave_multicast_v6(group, interface)
    }

    /// Sets whether this socket's IPv4 multicast datagrams loop back to it.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.inner.socket().set_multicast_loop_v4(on)
    }

    /// Whether IPv4 multicast datagrams loop back.
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.inner.socket().multicast_loop_v4()
    }

    /// Sets the time-to-live of IPv4 multicast datagrams.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.inner.socket().set_multicast_ttl_v4(ttl)
    }

    /// The time-to-live of IPv4 multicast datagrams.
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.inner.socket().multicast_ttl_v4()
    }

    /// Sets whether this socket's IPv6 multicast datagrams loop back to it.
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.inner.socket().set_multicast_loop_v6(on)
    }

    /// Whether IPv6 multicast datagrams loop back.
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.inner.socket().multicast_loop_v6()
    }
}

super::fd_impls!(UdpSocket);
