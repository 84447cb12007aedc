//! Network sockets whose waits park the fiber, never its worker thread:
//! [`TcpListener`], [`TcpStream`] and [`UdpSocket`], with the methods of
//! their `std::net` counterparts.
//!
//! A fiber that reads from a socket with nothing to read parks; the
//! runtime's other fibers run on its worker meanwhile, and the fiber is
//! queued again once the socket is readable. So a server can give every
//! connection a fiber of its own and write it as plain blocking code, and
//! a worker thread serves any number of them. From a plain thread the
//! same calls block the thread, as std's do.
//!
//! One thread per process, started at the first socket, waits for every
//! socket at once in `epoll_wait`, each registered once, edge-triggered:
//! an operation that can go ahead costs its system call and an atomic
//! load, and only one that would block talks to that thread.
//!
//! What does not park: resolving a host name (`"example.com:80"`) blocks
//! the calling thread, as std's resolver does; resolve in
//! [`spawn_blocking`](crate::spawn_blocking) for names that may be slow,
//! and pass addresses. A time-out ends a wait with
//! [`ErrorKind::TimedOut`](std::io::ErrorKind::TimedOut) (std reports
//! `WouldBlock` on Unix). A cancelled fiber unwinds out of its wait (see
//! [`JoinHandle::cancel`](crate::JoinHandle::cancel)).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

mod connect;
mod reactor;
mod registered;
mod source;
mod tcp;
mod udp;

pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;

/// Runs `f` on each of `addr`'s addresses until one succeeds; the last
/// error otherwise, as std does.
fn each_addr<T>(
    addr: impl ToSocketAddrs,
    mut f: impl FnMut(&SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for addr in addr.to_socket_addrs()? {
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
