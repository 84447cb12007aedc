//! The process's one I/O thread: it waits in `epoll_wait` for every
//! registered socket at once and wakes the fibers (or threads) waiting on
//! the sockets that became ready.
//!
//! Sockets are registered once, edge-triggered, for both directions, so a
//! socket costs no system call per wait: a fiber tries its operation, and
//! only after `EAGAIN` waits for the next edge (see `source.rs`).
//!
//! A registration's [`Source`] is shared with the epoll instance by a
//! pointer (the event's user data). A socket that closes takes its source
//! out of the epoll set, then hands its reference to the I/O thread, which
//! drops it only after the events it is handling: an event it took from
//! the kernel before the removal may still name the source, never one it
//! takes afterwards.

use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::source::Source;

/// Events handled per `epoll_wait`.
const EVENTS: usize = 256;

/// The user data of the eventfd that wakes the I/O thread (no source is
/// ever at address 0).
const WAKE_TOKEN: u64 = 0;

/// The epoll instance and its thread.
pub(crate) struct Reactor {
    epoll: RawFd,
    /// Wakes the I/O thread so that it drops retired sources.
    wake: RawFd,
    /// Sources taken out of the epoll set, to drop after the events in
    /// hand.
    retired: Mutex<Vec<Arc<Source>>>,
}

static REACTOR: OnceLock<Result<Reactor, io::ErrorKind>> = OnceLock::new();

/// The reactor, started at first use. A failure to start it (no file
/// descriptors or threads left) is returned to every caller.
pub(crate) fn get() -> io::Result<&'static Reactor> {
    REACTOR
        .get_or_init(|| Reactor::start().map_err(|e| e.kind()))
        .as_ref()
        .map_err(|&kind| io::Error::new(kind, "fiber-rt could not start its I/O thread"))
}

impl Reactor {
    fn start() -> io::Result<Reactor> {
        // SAFETY: plain system calls; every descriptor made here is either
        // kept in the reactor or closed on the error path.
        let epoll = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: as above.
        let wake = match cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) }) {
            Ok(fd) => fd,
            Err(e) => {
                close(epoll);
                return Err(e);
            }
        };
        let reactor = Reactor {
            epoll,
            wake,
            retired: Mutex::new(Vec::new()),
        };
        let mut event = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: WAKE_TOKEN,
        };
        // SAFETY: both descriptors are open; `event` is a valid event.
        cvt(unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, wake, &mut event) })
            .inspect_err(|_| reactor.close())?;
        std::thread::Builder::new()
            .name("fiber-io".into())
            // The loop needs little: a buffer of events on the heap.
            .stack_size(64 * 1024)
            .spawn(move || {
                // The reactor is in the static by the time anything is
                // registered, so the thread finds it there.
                let reactor = get().expect("the I/O thread runs once its reactor exists");
                reactor.run()
            })
            .inspect_err(|_| reactor.close())?;
        Ok(reactor)
    }

    fn close(&self) {
        close(self.wake);
        close(self.epoll);
    }

    /// Adds `fd` to the epoll set, both directions, edge-triggered, with
    /// `source` as its user data. The reactor keeps a reference to
    /// `source` until [`deregister`](Self::deregister).
    pub(crate) fn register(&self, fd: RawFd, source: &Arc<Source>) -> io::Result<()> {
        let data = Arc::into_raw(source.clone());
        let mut event = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: data as u64,
        };
        // SAFETY: `fd` is an open socket its owner keeps open until it
        // deregisters; `event` is valid.
        let added =
            cvt(unsafe { libc::epoll_ctl(self.epoll, libc::EPOLL_CTL_ADD, fd, &mut event) });
        if added.is_err() {
            // SAFETY: the reference made above, never given to epoll.
            drop(unsafe { Arc::from_raw(data) });
        }
        added.map(drop)
    }

    /// Takes `fd` out of the epoll set and lets go of the reactor's
    /// reference to `source` once no event in hand can name it. `fd` must
    /// still be open.
    pub(crate) fn deregister(&self, fd: RawFd, source: &Arc<Source>) {
        // SAFETY: `fd` is open (the caller closes it afterwards). A null
        // event is allowed for EPOLL_CTL_DEL since Linux 2.6.9.
        let removed =
            unsafe { libc::epoll_ctl(self.epoll, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
        if removed != 0 {
            // Never registered, or already gone: no reference to give back
            // (a leak of one source at worst, if the kernel failed to
            // remove a registered descriptor).
            return;
        }
        // SAFETY: the reference `register` made by `into_raw` for epoll,
        // which no longer holds it. The retired list keeps it until the
        // I/O thread has handled the events in hand.
        let held = unsafe { Arc::from_raw(Arc::as_ptr(source)) };
        let first = {
            let mut retired = self.retired.lock().unwrap_or_else(PoisonError::into_inner);
            retired.push(held);
            retired.len() == 1
        };
        if first {
            self.wake_thread();
        }
    }

    fn wake_thread(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to the eventfd. A full
        // counter (EAGAIN) already wakes the thread.
        unsafe { libc::write(self.wake, (&one as *const u64).cast(), 8) };
    }

    /// The I/O thread's loop.
    fn run(&self) -> ! {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS];
        loop {
            // SAFETY: `events` has room for EVENTS entries.
            let n = unsafe {
                libc::epoll_wait(self.epoll, events.as_mut_ptr(), EVENTS as libc::c_int, -1)
            };
            // EINTR: a signal for this thread; anything else cannot happen
            // with a valid epoll descriptor and buffer.
            let n = usize::try_from(n).unwrap_or(0);
            for event in &events[..n] {
                let (token, bits) = (event.u64, event.events);
                if token == WAKE_TOKEN {
                    self.drain_wake();
                    continue;
                }
                // SAFETY: a source's pointer stays valid while it is in the
                // epoll set, and after its removal until the retired list
                // is dropped below, after this batch.
                let source = unsafe { &*(token as *const Source) };
                source.on_event(bits);
            }
            let retired =
                std::mem::take(&mut *self.retired.lock().unwrap_or_else(PoisonError::into_inner));
            drop(retired);
        }
    }

    fn drain_wake(&self) {
        let mut count: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64; the eventfd is
        // non-blocking, so an empty one returns EAGAIN at once.
        unsafe { libc::read(self.wake, (&mut count as *mut u64).cast(), 8) };
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

fn close(fd: RawFd) {
    // SAFETY: closes a descriptor this module made and no one else uses.
    unsafe { libc::close(fd) };
}
