//! Socket addresses in every form std's `ToSocketAddrs` takes, with host
//! names resolved off the worker: the system's resolver blocks its thread
//! (a lookup can take seconds), so a fiber hands it to the blocking pool
//! and parks until the answer is in. An address written out
//! (`"127.0.0.1:80"`, a `SocketAddr`) is parsed on the spot, with no
//! resolver and no allocation.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use smallvec::SmallVec;

/// What a socket can be bound, connected or sent to: the types std's
/// [`ToSocketAddrs`](std::net::ToSocketAddrs) takes, and references to
/// them.
///
/// A host name (`"example.com:80"`, `("example.com", 80)`) is resolved by
/// the system's resolver on a thread of the blocking pool (see
/// [`spawn_blocking`](crate::spawn_blocking)) while the calling fiber
/// parks; a plain thread resolves it itself, as std does.
///
/// ```
/// use fiber_rt::net::{lookup_host, TcpListener, TcpStream};
///
/// let rt = fiber_rt::Runtime::new().unwrap();
/// rt.block_on(|| {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let port = listener.local_addr().unwrap().port();
///     // "localhost" is resolved while this fiber parks.
///     let _stream = TcpStream::connect(("localhost", port)).unwrap();
///     assert!(lookup_host("localhost:80").unwrap().any(|a| a.ip().is_loopback()));
/// });
/// ```
///
/// This trait is sealed: it cannot be implemented outside this crate.
pub trait ToSocketAddrs: sealed::Sealed {
    /// The addresses, in the resolver's order.
    #[doc(hidden)]
    fn resolve(&self) -> io::Result<Addrs>;
}

mod sealed {
    pub trait Sealed {}
}

/// Resolved addresses: one needs no allocation.
#[doc(hidden)]
#[derive(Debug)]
pub struct Addrs(SmallVec<[SocketAddr; 1]>);

impl Addrs {
    fn one(addr: impl Into<SocketAddr>) -> io::Result<Addrs> {
        Ok(Addrs(smallvec::smallvec![addr.into()]))
    }
}

impl IntoIterator for Addrs {
    type Item = SocketAddr;
    type IntoIter = smallvec::IntoIter<[SocketAddr; 1]>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Resolves `host` to its addresses, as [`ToSocketAddrs`] does: a fiber
/// parks while the system's resolver looks a name up.
pub fn lookup_host(host: impl ToSocketAddrs) -> io::Result<impl Iterator<Item = SocketAddr>> {
    Ok(host.resolve()?.into_iter())
}

/// Asks the system's resolver for `addr`'s addresses, off the worker.
fn lookup<A>(addr: A) -> io::Result<Addrs>
where
    A: std::net::ToSocketAddrs + Send + 'static,
{
    off_worker(move || Ok(Addrs(addr.to_socket_addrs()?.collect())))
}

/// Runs blocking `f` on the blocking pool while the calling fiber parks;
/// on a plain thread, runs it right here. A panic in `f` goes on in the
/// caller.
fn off_worker<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    if crate::sched::task::Task::current().is_none() {
        return f();
    }
    match crate::spawn_blocking(f).join() {
        Ok(value) => value,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

impl<T: sealed::Sealed + ?Sized> sealed::Sealed for &T {}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    fn resolve(&self) -> io::Result<Addrs> {
        (**self).resolve()
    }
}

/// Addresses that are given as such: no resolver.
macro_rules! given {
    ($($ty:ty),*) => {$(
        impl sealed::Sealed for $ty {}

        impl ToSocketAddrs for $ty {
            fn resolve(&self) -> io::Result<Addrs> {
                Addrs::one(*self)
            }
        }
    )*};
}

given!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl sealed::Sealed for [SocketAddr] {}

impl ToSocketAddrs for [SocketAddr] {
    fn resolve(&self) -> io::Result<Addrs> {
        Ok(Addrs(self.iter().copied().collect()))
    }
}

impl sealed::Sealed for str {}

/// `"host:port"`: parsed when the host is an address, else looked up.
impl ToSocketAddrs for str {
    fn resolve(&self) -> io::Result<Addrs> {
        if let Ok(addr) = self.parse::<SocketAddr>() {
            return Addrs::one(addr);
        }
        let has_port = self
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
        if !has_port {
            // No resolver needed to refuse it: std's error, here.
            let addrs = std::net::ToSocketAddrs::to_socket_addrs(self)?;
            return Ok(Addrs(addrs.collect()));
        }
        lookup(self.to_owned())
    }
}

impl sealed::Sealed for String {}

impl ToSocketAddrs for String {
    fn resolve(&self) -> io::Result<Addrs> {
        self.as_str().resolve()
    }
}

impl sealed::Sealed for (&str, u16) {}

/// `(host, port)`: parsed when the host is an address, else looked up.
impl ToSocketAddrs for (&str, u16) {
    fn resolve(&self) -> io::Result<Addrs> {
        let (host, port) = *self;
        match host.parse::<IpAddr>() {
            Ok(ip) => Addrs::one((ip, port)),
            Err(_) => lookup((host.to_owned(), port)),
        }
    }
}

impl sealed::Sealed for (String, u16) {}

impl ToSocketAddrs for (String, u16) {
    fn resolve(&self) -> io::Result<Addrs> {
        (self.0.as_str(), self.1).resolve()
    }
}

#[cfg(test)]
mod tests {
    //! What does not need the network: addresses written out are parsed,
    //! and a blocking lookup leaves the worker to other fibers.

    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn all(addr: impl ToSocketAddrs) -> Vec<SocketAddr> {
        addr.resolve().unwrap().into_iter().collect()
    }

    #[test]
    fn addresses_written_out_are_parsed_in_every_form() {
        let v4: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let v6: SocketAddr = "[::1]:443".parse().unwrap();
        assert_eq!(all("127.0.0.1:80"), [v4]);
        assert_eq!(all(String::from("[::1]:443")), [v6]);
        assert_eq!(all(("127.0.0.1", 80)), [v4]);
        assert_eq!(all(("::1".to_owned(), 443)), [v6]);
        assert_eq!(all(v4), [v4]);
        assert_eq!(all((Ipv4Addr::LOCALHOST, 80)), [v4]);
        assert_eq!(all((IpAddr::from(Ipv6Addr::LOCALHOST), 443)), [v6]);
        assert_eq!(all(&[v4, v6][..]), [v4, v6]);
        let by_reference: &SocketAddr = &v6;
        assert_eq!(all(by_reference), [v6]);
    }

    #[test]
    fn a_string_without_a_port_gets_std_s_error() {
        for bad in ["no port here", "localhost", "localhost:99999", ""] {
            let ours = bad.resolve().err().map(|e| (e.kind(), e.to_string()));
            let std = std::net::ToSocketAddrs::to_socket_addrs(bad)
                .err()
                .map(|e| (e.kind(), e.to_string()));
            assert!(ours.is_some(), "{bad:?}");
            assert_eq!(ours, std, "{bad:?}");
        }
    }

    #[test]
    fn a_slow_lookup_parks_the_fiber_and_leaves_the_worker_to_others() {
        // One worker and no backstop: only a parked lookup lets the other
        // fiber run before the lookup is done.
        let rt = crate::Builder::new()
            .workers(1)
            .preempt_signals(false)
            .build()
            .unwrap();
        let other_ran = Arc::new(AtomicBool::new(false));
        let seen_by_lookup = rt.block_on({
            let other_ran = other_ran.clone();
            move || {
                let other = {
                    let other_ran = other_ran.clone();
                    // Relaxed: read after the joins, which order it.
                    crate::spawn(move || other_ran.store(true, Ordering::Relaxed))
                };
                let seen = off_worker({
                    let other_ran = other_ran.clone();
                    move || {
                        // Waits for the other fiber, up to 10 s: a lookup
                        // that blocked the worker would wait it out.
                        for _ in 0..1000 {
                            if other_ran.load(Ordering::Relaxed) {
                                return true;
                            }
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        false
                    }
                });
                other.join().unwrap();
                seen
            }
        });
        assert!(seen_by_lookup, "the other fiber ran only after the lookup");
        assert!(other_ran.load(Ordering::Relaxed));
    }
}
