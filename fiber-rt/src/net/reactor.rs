//! The process's one epoll instance, which every socket a fiber uses is
//! registered with, once, edge-triggered, for both directions; and the
//! harvest of its events, which bumps the edge counts of the sockets they
//! name and wakes the fibers waiting for them (see `source.rs`).
//!
//! No thread of its own waits for the events. An idle worker does, in
//! place of sleeping (`sched/sleep`), so that the fiber a socket wakes is
//! queued by a thread that is awake already, and the preemption monitor
//! takes what is ready at each of its ticks while every worker is busy.
//! This is how Go's scheduler polls the network. A plain thread that waits
//! for a socket polls that socket itself (`poll`), and needs none of it.
//!
//! A socket's [`Source`] lives in a slab that is never freed, and the
//! event's user data is its index: an event harvested just before its
//! socket closed may bump the counts of the next socket to take the slot,
//! which only makes that socket's waiters try their operation again.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use super::source::Source;

/// Events taken from the kernel per `epoll_wait`.
const EVENTS: usize = 64;
/// Sources per slab chunk, and chunks at most: a million sockets at once.
const CHUNK: usize = 1024;
const CHUNKS: usize = 1024;

/// The epoll instance and the slab of sources.
pub(crate) struct Reactor {
    epoll: RawFd,
    /// Chunks of sources, made as needed and never freed, so that a
    /// harvest finds a source by its index without a lock.
    chunks: Box<[OnceLock<Box<[Source]>>]>,
    /// Indexes given back by closed sockets, and the next never used.
    free: Mutex<(Vec<u32>, u32)>,
    /// Registered sockets; workers drive the reactor only while there are
    /// any.
    registered: AtomicUsize,
}

static REACTOR: OnceLock<Reactor> = OnceLock::new();

/// The reactor, made at first use. A failure to make it (no file
/// descriptors left) is returned, and the next call tries again.
pub(crate) fn get() -> io::Result<&'static Reactor> {
    if let Some(reactor) = REACTOR.get() {
        return Ok(reactor);
    }
    /// Makes one reactor at a time, so that no epoll instance is made
    /// only to be dropped.
    static MAKING: Mutex<()> = Mutex::new(());
    let _making = MAKING.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(reactor) = REACTOR.get() {
        return Ok(reactor);
    }
    let reactor = Reactor::new()?;
    Ok(REACTOR.get_or_init(|| reactor))
}

/// The reactor, if sockets are registered with it now: a worker waits for
/// sockets only then.
pub(crate) fn in_use() -> Option<&'static Reactor> {
    let reactor = REACTOR.get()?;
    // Relaxed: a hint. A fiber that parks on a socket registered it first,
    // on a worker that then drives, or that the monitor's ticks cover.
    (reactor.registered.load(Ordering::Relaxed) > 0).then_some(reactor)
}

impl Reactor {
    fn new() -> io::Result<Reactor> {
        // SAFETY: a plain system call.
        let epoll = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        Ok(Reactor {
            epoll,
            chunks: (0..CHUNKS).map(|_| OnceLock::new()).collect(),
            free: Mutex::new((Vec::new(), 0)),
            registered: AtomicUsize::new(0),
        })
    }

    /// The epoll descriptor, for a driver to wait on (nested in its own).
    pub(crate) fn fd(&self) -> RawFd {
        self.epoll
    }

    /// The source at `index`, if its chunk was made.
    fn source(&self, index: u32) -> Option<&Source> {
        let index = index as usize;
        self.chunks.get(index / CHUNK)?.get()?.get(index % CHUNK)
    }

    /// Adds `fd` to the epoll set, both directions, edge-triggered; returns
    /// its source and the index to give back to
    /// [`deregister`](Self::deregister).
    pub(crate) fn register(&self, fd: RawFd) -> io::Result<(&Source, u32)> {
        let index = {
            let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
            match free.0.pop() {
                Some(index) => index,
                None if (free.1 as usize) < CHUNK * CHUNKS => {
                    free.1 += 1;
                    free.1 - 1
                }
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::OutOfMemory,
                        "fiber-rt registers a million sockets at most",
                    ))
                }
            }
        };
        self.chunks[index as usize / CHUNK]
            .get_or_init(|| (0..CHUNK).map(|_| Source::default()).collect());
        let source = self.source(index).expect("its chunk was just made");
        let mut event = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: u64::from(index),
        };
        // SAFETY: `fd` is an open socket its owner keeps open until it
        // deregisters; `event` is valid.
        match cvt(unsafe { libc::epoll_ctl(self.epoll, libc::EPOLL_CTL_ADD, fd, &mut event) }) {
            Ok(_) => {
                // Relaxed: see `in_use`.
                self.registered.fetch_add(1, Ordering::Relaxed);
                Ok((source, index))
            }
            Err(e) => {
                self.give_back(index);
                Err(e)
            }
        }
    }

    /// Takes `fd`, which must still be open, out of the epoll set, and
    /// gives its source's slot back.
    pub(crate) fn deregister(&self, fd: RawFd, index: u32) {
        // SAFETY: `fd` is open (the caller closes it afterwards). A null
        // event is allowed for EPOLL_CTL_DEL since Linux 2.6.9.
        unsafe { libc::epoll_ctl(self.epoll, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
        // Relaxed: see `in_use`.
        self.registered.fetch_sub(1, Ordering::Relaxed);
        self.give_back(index);
    }

    fn give_back(&self, index: u32) {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        free.0.push(index);
    }

    /// Takes the events that are ready, waiting for them up to `timeout_ms`
    /// (0: not at all), and wakes their waiters. Returns how many it took.
    /// Any thread may harvest, several at once.
    pub(crate) fn harvest(&self, timeout_ms: libc::c_int) -> usize {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; EVENTS];
        // SAFETY: `events` has room for EVENTS entries.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll,
                events.as_mut_ptr(),
                EVENTS as libc::c_int,
                timeout_ms,
            )
        };
        // EINTR (a signal) or nothing ready: nothing taken.
        let n = usize::try_from(n).unwrap_or(0);
        for event in &events[..n] {
            let (index, bits) = (event.u64, event.events);
            if let Some(source) = u32::try_from(index).ok().and_then(|i| self.source(i)) {
                source.on_event(bits);
            }
        }
        n
    }
}

/// A system call's result as an `io::Result`.
pub(crate) fn cvt(result: libc::c_int) -> io::Result<libc::c_int> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}
