//! A runtime's way to wait for sockets in place of sleeping: an epoll
//! instance of its own that holds the reactor's (readable while sockets
//! have events ready) and an eventfd that brings the waiting worker back
//! when there is work (`Sleep::wake_one`) or the runtime shuts down.
//!
//! Both are level-triggered: an event ready before the wait, or a wake-up
//! written before it, ends the wait at once, so neither is lost between
//! the decision to wait and the wait.

use std::io;
use std::os::fd::RawFd;

use crate::net::reactor::{cvt, Reactor};

pub(crate) struct Driver {
    epoll: RawFd,
    wake: RawFd,
}

impl Driver {
    pub(crate) fn new(reactor: &Reactor) -> io::Result<Driver> {
        // SAFETY: a plain system call.
        let epoll = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: as above.
        let wake = match cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) }) {
            Ok(fd) => fd,
            Err(e) => {
                close(epoll);
                return Err(e);
            }
        };
        // From here on, dropping `driver` closes both.
        let driver = Driver { epoll, wake };
        for fd in [reactor.fd(), wake] {
            let mut event = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: fd as u64,
            };
            // SAFETY: both descriptors are open; `event` is valid.
            cvt(unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, fd, &mut event) })?;
        }
        Ok(driver)
    }

    /// Waits until sockets have events ready or [`wake`](Self::wake) is
    /// called (or a signal comes), and takes the wake-up. `false` if the
    /// wait failed other than by a signal (a descriptor closed under us,
    /// by code that closes every descriptor): the caller stops driving,
    /// rather than spin.
    pub(crate) fn wait(&self) -> bool {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 2];
        // SAFETY: room for two events.
        let waited = unsafe { libc::epoll_wait(self.epoll, events.as_mut_ptr(), 2, -1) };
        let failed = waited < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR);
        // The eventfd is read only when it was written (or the wait says
        // nothing): a wake-up by sockets alone then costs no third system
        // call after this one and the harvest. One written meanwhile
        // stays readable, and the next wait takes it at once.
        let woken = usize::try_from(waited).map_or(true, |n| {
            events[..n]
                .iter()
                .any(|event| event.u64 == self.wake as u64)
        });
        if woken {
            let mut count: u64 = 0;
            // SAFETY: reads 8 bytes into a live u64; the eventfd is
            // non-blocking, so an unwritten one returns EAGAIN at once.
            unsafe { libc::read(self.wake, (&mut count as *mut u64).cast(), 8) };
        }
        !failed
    }

    /// Brings the waiting worker back.
    pub(crate) fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to the eventfd. A full
        // counter (EAGAIN) is readable already.
        unsafe { libc::write(self.wake, (&one as *const u64).cast(), 8) };
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        close(self.wake);
        close(self.epoll);
    }
}

fn close(fd: RawFd) {
    // SAFETY: closes a descriptor this module made and no one else uses.
    unsafe { libc::close(fd) };
}
