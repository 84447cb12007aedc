//! A TCP connect that parks the caller instead of blocking its thread:
//! std only connects in blocking mode, so the socket is made and connected
//! here, non-blocking from the start.

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Instant;

use super::reactor::cvt;
use super::registered::Registered;
use super::source::{timed_out, Interest};

/// Connects to `addr`, parking until the handshake ends or `deadline`.
pub(crate) fn connect(
    addr: &SocketAddr,
    deadline: Option<Instant>,
) -> io::Result<Registered<std::net::TcpStream>> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: a plain system call.
    let fd = cvt(unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    // SAFETY: `fd` was just made and is owned by nothing else.
    let stream = std::net::TcpStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    // A fiber registers the socket first, so that the edge the
    // handshake's end makes is counted past what is read before the
    // connect (a plain thread polls the socket instead).
    let socket = Registered::new(stream)?;
    let source = socket.source()?;
    let seen = source.seen(Interest::Write);
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` holds a socket address of `len` bytes.
    let started =
        unsafe { libc::connect(fd, (&storage as *const libc::sockaddr_storage).cast(), len) };
    if started == 0 {
        return Ok(socket);
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() != Some(libc::EINPROGRESS) {
        return Err(error);
    }
    let mut seen = seen;
    loop {
        if !source.wait(fd, Interest::Write, seen, deadline, &"TcpStream::connect") {
            return Err(timed_out(format_args!("connecting to {addr}")));
        }
        // The edge may be an earlier one (a fresh socket reports itself
        // writable when registered): ask the socket whether it is done.
        seen = source.seen(Interest::Write);
        if let Some(error) = socket.socket().take_error()? {
            return Err(error);
        }
        match socket.socket().peer_addr() {
            Ok(_) => return Ok(socket),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {}
            Err(e) => return Err(e),
        }
    }
}

/// `addr` as the C socket address the kernel reads, and its length.
fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    // The octets are in network order already.
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than, and aligned for,
            // every socket address.
            unsafe {
                (&mut storage as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in>()
                    .write(sin)
            };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                // As std passes it: the flow label as the caller gave it.
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: as above.
            unsafe {
                (&mut storage as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in6>()
                    .write(sin6)
            };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}
