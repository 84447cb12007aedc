//! Waiting for the readiness of any file descriptor, parking the fiber:
//! [`Fd`], for descriptors the runtime has no type of its own for (an
//! `eventfd`, a `timerfd`, an `inotify` instance, a pipe, a terminal, a
//! socket made by another library).

mod fd;

pub use fd::Fd;
