//! Waiting for a child's exit without blocking a worker.
//!
//! A *pidfd* (Linux 5.3) is a descriptor for a process that becomes
//! readable when the process exits. Registered with the reactor like a
//! socket, it wakes the fiber that waits for the exit as a socket's edge
//! does, with no thread and no `SIGCHLD` handler of the runtime's own; a
//! plain thread polls it. The exit status is then reaped with std's
//! `try_wait`, so std's `Child` stays the one owner of the process.
//!
//! Where the kernel refuses a pidfd (an older kernel, a seccomp policy),
//! the waiter looks again after a few yields, then after pauses that grow
//! from 1 ms to 16 ms, as a datagram sent to a full queue does.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Instant;

use crate::net::registered::Registered;
use crate::net::source::{Backoff, Deadline, Interest};

/// How a child's exit is waited for.
pub(crate) enum ExitWatch {
    /// The child's pidfd.
    Pidfd(Registered<OwnedFd>),
    /// No pidfd: look again after growing pauses.
    Polling,
}

impl ExitWatch {
    /// Watches the child `pid`, which the caller has not reaped yet (so
    /// the number cannot name another process meanwhile).
    pub(crate) fn new(pid: u32) -> ExitWatch {
        match pidfd_open(pid) {
            Ok(fd) => match Registered::non_socket(fd) {
                Ok(fd) => ExitWatch::Pidfd(fd),
                Err(_) => ExitWatch::Polling,
            },
            Err(_) => ExitWatch::Polling,
        }
    }

    /// The exit status if `child` has exited (reaping it), without waiting.
    pub(crate) fn try_wait(
        &self,
        child: &mut std::process::Child,
    ) -> io::Result<Option<ExitStatus>> {
        match self {
            ExitWatch::Pidfd(fd) => reap_or_look(fd.as_raw_fd(), child),
            ExitWatch::Polling => child.try_wait(),
        }
    }

    /// Waits until `child` has exited, and reaps it; `None` if `deadline`
    /// came first. A cancelled fiber unwinds out of the wait.
    pub(crate) fn wait(
        &self,
        child: &mut std::process::Child,
        deadline: Option<Instant>,
    ) -> io::Result<Option<ExitStatus>> {
        match self {
            ExitWatch::Pidfd(fd) => {
                let deadline = deadline.map_or(Deadline::None, Deadline::At);
                let reaped = fd.io_until(Interest::Read, deadline, &"Child::wait", |fd| {
                    reap_or_look(fd.as_raw_fd(), child)?
                        .ok_or_else(|| io::ErrorKind::WouldBlock.into())
                });
                match reaped {
                    Ok(status) => Ok(Some(status)),
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(None),
                    Err(e) => Err(e),
                }
            }
            ExitWatch::Polling => {
                let mut backoff = Backoff::new();
                loop {
                    if let Some(status) = child.try_wait()? {
                        return Ok(Some(status));
                    }
                    if deadline.is_some_and(|at| Instant::now() >= at) {
                        return Ok(None);
                    }
                    // Parks a fiber (and unwinds a cancelled one); sleeps a
                    // plain thread.
                    backoff.wait(deadline);
                }
            }
        }
    }
}

/// Reaps the child of `pidfd` if it has exited: its status, `None` while
/// it runs. A `waitid` on the pidfd names that process alone, where std's
/// `try_wait` goes by number: after someone else reaped the child (a
/// `waitpid(-1)` elsewhere), the number may name another child, whose
/// status it would take. Here that is an error (ECHILD), as it is to std
/// while the number is free.
pub(crate) fn reap(pidfd: RawFd) -> io::Result<Option<ExitStatus>> {
    // SAFETY: an all-zero siginfo_t is a valid value to overwrite.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is live and writable; WNOHANG never waits.
    let done = unsafe {
        libc::waitid(
            libc::P_PIDFD,
            pidfd as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG,
        )
    };
    if done != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fields waitid wrote, or the zeroes it left: with WNOHANG, a
    // child still running leaves `si_pid` 0.
    let (pid, code, status) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    // The wait status std's `ExitStatus` is made of, from its parts.
    let raw = match code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_DUMPED => (status & 0x7f) | 0x80,
        _ => status & 0x7f, // CLD_KILLED: only exits are asked for
    };
    Ok(Some(ExitStatus::from_raw(raw)))
}

/// [`reap`], or std's `try_wait` (by number) on Linux 5.3, which has
/// pidfds but cannot wait on one (EINVAL).
fn reap_or_look(pidfd: RawFd, child: &mut std::process::Child) -> io::Result<Option<ExitStatus>> {
    match reap(pidfd) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => child.try_wait(),
        reaped => reaped,
    }
}

/// A pidfd for `pid`, close-on-exec (as every pidfd is).
fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "process id out of range"))?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new
    // descriptor or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = libc::c_int::try_from(fd).expect("a descriptor fits an int");
    // SAFETY: the call returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    //! The wait without a pidfd, which this kernel would otherwise never
    //! take.

    use std::os::unix::process::ExitStatusExt;
    use std::time::{Duration, Instant};

    use super::ExitWatch;

    #[test]
    fn without_a_pidfd_a_wait_looks_again_until_the_exit_or_its_deadline() {
        let rt = crate::Builder::new().workers(1).build().unwrap();
        rt.block_on(|| {
            let mut child = std::process::Command::new("sleep")
                .arg("10")
                .spawn()
                .unwrap();
            let watch = ExitWatch::Polling;
            let deadline = Instant::now() + Duration::from_millis(60);
            assert_eq!(watch.wait(&mut child, Some(deadline)).unwrap(), None);
            assert!(Instant::now() >= deadline);
            child.kill().unwrap();
            let status = watch.wait(&mut child, None).unwrap().expect("no deadline");
            assert_eq!(status.signal(), Some(libc::SIGKILL));
        });
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let status = ExitWatch::Polling.wait(&mut child, None).unwrap();
        assert!(status.is_some_and(|s| s.success()));
    }

    #[test]
    fn a_pidfd_is_had_on_this_kernel() {
        // Linux 5.3 and later: the machines this runs on. A failure here
        // means every wait of the suite took the polling path.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        assert!(matches!(ExitWatch::new(child.id()), ExitWatch::Pidfd(_)));
        child.wait().unwrap();
    }
}
