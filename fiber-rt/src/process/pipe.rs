//! The parent's ends of a child's standard streams: pipes in non-blocking
//! mode whose reads and writes park the calling fiber, as a socket's do.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::process::Stdio;
use std::time::Duration;

use crate::net::registered::{set_nonblocking, Registered};
use crate::net::source::Interest;

/// One end of a pipe, registered with the reactor once a fiber uses it.
struct Pipe {
    inner: Registered<File>,
}

impl Pipe {
    fn new(fd: impl Into<OwnedFd>) -> io::Result<Pipe> {
        Ok(Pipe {
            inner: Registered::non_socket(File::from(fd.into()))?,
        })
    }

    /// The descriptor, out of the epoll set and back in blocking mode, as
    /// another process expects its standard streams.
    fn into_owned_fd(self) -> io::Result<OwnedFd> {
        let file = self.inner.into_inner();
        set_nonblocking(file.as_raw_fd(), false)?;
        Ok(file.into())
    }
}

/// `Read` (or `Write`), `AsRawFd`, `AsFd`, `Debug`, `into_owned_fd`, the
/// time-out methods of its direction, and the conversion into a
/// [`Stdio`] for a pipe end type.
macro_rules! pipe_end {
    ($end:ident, $from:ty, $direction:ident, $set:ident, $get:ident, $what:literal) => {
        impl $end {
            pub(crate) fn new(end: $from) -> io::Result<$end> {
                Ok($end {
                    pipe: Pipe::new(end)?,
                })
            }

            #[doc = concat!("Sets the time-out of ", $what, ": past it, a wait fails with")]
            /// `TimedOut`. `None` waits for good; a zero duration is an
            /// error, as for sockets.
            pub fn $set(&self, timeout: Option<Duration>) -> io::Result<()> {
                self.pipe.inner.set_timeout(Interest::$direction, timeout)
            }

            #[doc = concat!("The time-out of ", $what, ".")]
            pub fn $get(&self) -> Option<Duration> {
                self.pipe.inner.timeout(Interest::$direction)
            }

            /// The descriptor, for a standard stream of another process
            /// (or any other use): taken out of the runtime's epoll set
            /// and put back in blocking mode.
            pub fn into_owned_fd(self) -> io::Result<OwnedFd> {
                self.pipe.into_owned_fd()
            }
        }

        impl AsRawFd for $end {
            fn as_raw_fd(&self) -> RawFd {
                self.pipe.inner.as_raw_fd()
            }
        }

        impl AsFd for $end {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.pipe.inner.socket().as_fd()
            }
        }

        impl std::fmt::Debug for $end {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($end))
                    .field("fd", &self.as_raw_fd())
                    .finish()
            }
        }

        /// The pipe as another child's standard stream (a shell's `|`).
        impl TryFrom<$end> for Stdio {
            type Error = io::Error;

            fn try_from(end: $end) -> io::Result<Stdio> {
                end.into_owned_fd().map(Stdio::from)
            }
        }
    };
}

macro_rules! read_impls {
    ($end:ident) => {
        impl io::Read for &$end {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.pipe.inner.io(
                    Interest::Read,
                    &concat!(stringify!($end), "::read"),
                    |mut f| io::Read::read(&mut f, buf),
                )
            }

            fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
                self.pipe.inner.io(
                    Interest::Read,
                    &concat!(stringify!($end), "::read"),
                    |mut f| io::Read::read_vectored(&mut f, bufs),
                )
            }
        }

        impl io::Read for $end {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                (&*self).read(buf)
            }

            fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
                (&*self).read_vectored(bufs)
            }
        }
    };
}

/// The child's standard input, if it was [`Stdio::piped`]: writes park the
/// calling fiber while the pipe is full. Dropping it closes the pipe, and
/// the child reads the end of its input.
pub struct ChildStdin {
    pipe: Pipe,
}

/// The child's standard output, if it was [`Stdio::piped`]: reads park the
/// calling fiber until the child writes (or exits).
pub struct ChildStdout {
    pipe: Pipe,
}

/// The child's standard error, if it was [`Stdio::piped`]: as
/// [`ChildStdout`].
pub struct ChildStderr {
    pipe: Pipe,
}

pipe_end!(
    ChildStdin,
    std::process::ChildStdin,
    Write,
    set_write_timeout,
    write_timeout,
    "writes"
);
pipe_end!(
    ChildStdout,
    std::process::ChildStdout,
    Read,
    set_read_timeout,
    read_timeout,
    "reads"
);
pipe_end!(
    ChildStderr,
    std::process::ChildStderr,
    Read,
    set_read_timeout,
    read_timeout,
    "reads"
);
read_impls!(ChildStdout);
read_impls!(ChildStderr);

impl io::Write for &ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pipe
            .inner
            .io(Interest::Write, &"ChildStdin::write", |mut f| {
                io::Write::write(&mut f, buf)
            })
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.pipe
            .inner
            .io(Interest::Write, &"ChildStdin::write", |mut f| {
                io::Write::write_vectored(&mut f, bufs)
            })
    }

    fn flush(&mut self) -> io::Result<()> {
        // Nothing is buffered here.
        Ok(())
    }
}

impl io::Write for ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
