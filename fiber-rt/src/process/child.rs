//! A spawned child process whose waits park the calling fiber.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{ExitStatus, Output};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::exit::ExitWatch;
use super::pipe::{ChildStderr, ChildStdin, ChildStdout};
use crate::sched::task::Task;

/// A child process: [`std::process::Child`] whose waits park the calling
/// fiber, never its worker thread, and whose piped standard streams are
/// fiber-aware. Made by [`Command::spawn`](super::Command::spawn).
///
/// Dropping a `Child` neither waits for the process nor kills it, as with
/// std (unless [`Command::kill_on_drop`](super::Command::kill_on_drop)
/// asked for it). Unlike std, a child dropped before it was reaped does
/// not stay a zombie for the rest of the process's life: once it has
/// exited, the next spawn (or drop) of a `Child` reaps it, through its
/// pidfd, so zombies do not pile up in a program that keeps spawning.
/// (Before Linux 5.4, which can wait on a pidfd, it stays a zombie, as
/// with std.)
pub struct Child {
    /// The parent's end of the child's standard input, if piped.
    pub stdin: Option<ChildStdin>,
    /// The parent's end of the child's standard output, if piped.
    pub stdout: Option<ChildStdout>,
    /// The parent's end of the child's standard error, if piped.
    pub stderr: Option<ChildStderr>,
    /// `Some` until the drop, which hands it to the orphans if need be.
    child: Option<std::process::Child>,
    exit: ExitWatch,
    /// The status once reaped.
    status: Option<ExitStatus>,
    kill_on_drop: bool,
}

impl Child {
    /// Takes over `child`, just spawned: its pipes become fiber-aware.
    pub(crate) fn new(mut child: std::process::Child, kill_on_drop: bool) -> io::Result<Child> {
        let stdin = child.stdin.take().map(ChildStdin::new).transpose();
        let stdout = child.stdout.take().map(ChildStdout::new).transpose();
        let stderr = child.stderr.take().map(ChildStderr::new).transpose();
        let exit = ExitWatch::new(child.id());
        let mut made = Child {
            stdin: None,
            stdout: None,
            stderr: None,
            child: Some(child),
            exit,
            status: None,
            kill_on_drop,
        };
        // A pipe that could not be made non-blocking fails the spawn; the
        // drop then kills the child if asked to.
        made.stdin = stdin?;
        made.stdout = stdout?;
        made.stderr = stderr?;
        Ok(made)
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.std_ref().id()
    }

    fn std_ref(&self) -> &std::process::Child {
        self.child.as_ref().expect("taken only by the drop")
    }

    /// Sends `SIGKILL` to the child, and does not wait for it to die. `Ok`
    /// for a child that has exited, as std's `kill`. The signal goes
    /// through the child's pidfd, which names that process alone: a child
    /// reaped behind this `Child`'s back (a `waitpid(-1)` elsewhere) is
    /// never confused with the process that took its number since (std's
    /// `kill` goes by number).
    pub fn kill(&mut self) -> io::Result<()> {
        if self.status.is_some() {
            // Reaped: its id may name another process by now.
            return Ok(());
        }
        let child = self.child.as_mut().expect("taken only by the drop");
        kill(&self.exit, child)
    }

    /// The exit status if the child has exited (reaping it), without
    /// waiting.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        let child = self.child.as_mut().expect("taken only by the drop");
        self.status = self.exit.try_wait(child)?;
        Ok(self.status)
    }

    /// Waits for the child to exit and returns its status; the calling
    /// fiber parks meanwhile (a plain thread blocks). The child's standard
    /// input, if piped, is closed first, as std does, so that a child
    /// reading it to the end is not waited for forever. Once it has
    /// returned, later calls return the same status. A cancelled fiber
    /// unwinds out of the wait, and the child runs on.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        let status = self.wait_until(None)?;
        Ok(status.expect("a wait without a deadline ends with the exit"))
    }

    /// [`wait`](Self::wait), for at most `timeout`: `None` if the child
    /// was still running then. Standard input is closed first, as there.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        drop(self.stdin.take());
        self.wait_until(Some(crate::sync::waiter::deadline_after(timeout)))
    }

    fn wait_until(&mut self, deadline: Option<Instant>) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        let child = self.child.as_mut().expect("taken only by the drop");
        self.status = self.exit.wait(child, deadline)?;
        Ok(self.status)
    }

    /// Closes standard input, reads standard output and error to their
    /// ends (both at once, so that a child that fills one pipe while the
    /// parent reads the other is not stuck), then waits for the exit. A
    /// stream that was not piped comes back empty. As std's, but the
    /// reads and the wait park the calling fiber.
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let (stdout, stderr) = read_both(self.stdout.take(), self.stderr.take())?;
        let status = self.wait()?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

/// Reads both pipes to their ends at once: on a fiber, standard error on
/// a fiber of its own; on a plain thread, on a thread of its own.
fn read_both(
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
) -> io::Result<(Vec<u8>, Vec<u8>)> {
    fn read_all(mut from: impl Read) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        from.read_to_end(&mut bytes)?;
        Ok(bytes)
    }
    match (stdout, stderr) {
        (None, None) => Ok((Vec::new(), Vec::new())),
        (Some(out), None) => Ok((read_all(out)?, Vec::new())),
        (None, Some(err)) => Ok((Vec::new(), read_all(err)?)),
        (Some(out), Some(err)) if Task::current().is_some() => crate::scope(|s| {
            let err = s.spawn(move || read_all(err));
            let out = read_all(out);
            let err = match err.join() {
                Ok(read) => read,
                Err(e) if e.is_panic() => {
                    std::panic::resume_unwind(e.into_panic().expect("a panic's payload"))
                }
                // No stack for the reader: the error says so.
                Err(e) => Err(io::Error::other(e.to_string())),
            };
            Ok((out?, err?))
        }),
        (Some(out), Some(err)) => std::thread::scope(|s| {
            let err = s.spawn(move || read_all(err));
            let out = read_all(out);
            let err = err
                .join()
                .unwrap_or_else(|payload| std::panic::resume_unwind(payload));
            Ok((out?, err?))
        }),
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if self.status.is_none() {
            // Best effort, as in std's drop: an error (the child has been
            // reaped by someone else) has nobody to go to.
            let killed = self.kill_on_drop && kill(&self.exit, &mut child).is_ok();
            match std::mem::replace(&mut self.exit, ExitWatch::Polling) {
                // Reaped now if it has exited, else an orphan, reaped
                // later: through its pidfd, which names this process
                // alone. Not by its number (std's `try_wait`), which names
                // another child by now if someone else reaped this one.
                ExitWatch::Pidfd(fd) => {
                    let fd = fd.into_inner();
                    if !exited(&fd) {
                        orphans().push(fd);
                    }
                }
                // Without a pidfd it stays a zombie, as std's children do,
                // unless it was just killed and is dead already.
                ExitWatch::Polling => {
                    if killed {
                        let _ = child.try_wait();
                    }
                }
            }
        }
        reap_orphans();
    }
}

/// Sends `SIGKILL` to `child`: through its pidfd if it has one, which names
/// that process alone, so that a child someone else reaped, whose number
/// may name another process by now, is never mistaken for it (std's kill
/// goes by number); `Ok` for a child that has exited, as std's.
fn kill(exit: &ExitWatch, child: &mut std::process::Child) -> io::Result<()> {
    let ExitWatch::Pidfd(fd) = exit else {
        return child.kill();
    };
    // SAFETY: pidfd_send_signal takes a descriptor, a signal number, a
    // null info (as `kill` would fill it) and no flags; it writes nothing.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if sent == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        // Exited and reaped, by someone else: as std's kill of a child that
        // has exited. (A zombie takes the signal.)
        Some(libc::ESRCH) => Ok(()),
        // A kernel or a policy without the call: by number, as std does.
        Some(libc::ENOSYS) => child.kill(),
        _ => Err(error),
    }
}

/// The pidfds of children dropped before they were reaped (see
/// [`reap_orphans`]).
static ORPHANS: Mutex<Vec<OwnedFd>> = Mutex::new(Vec::new());

fn orphans() -> std::sync::MutexGuard<'static, Vec<OwnedFd>> {
    // Nothing under the lock can panic halfway.
    ORPHANS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reaps the orphans that have exited, so that a program that drops
/// children without waiting for them does not collect zombies: called by
/// each spawn and each drop of a [`Child`]. Each look is a `waitid` on
/// the child's pidfd, which does not wait, and names that process alone:
/// one reaped by another party meanwhile (whose number may now name
/// another child) is only forgotten.
pub(crate) fn reap_orphans() {
    let mut orphans = orphans();
    if !orphans.is_empty() {
        orphans.retain(|pidfd| !exited(pidfd));
    }
}

/// Reaps the child of `pidfd` if it has exited; whether it is gone (reaped
/// here, or by someone else before: an error, ECHILD).
fn exited(pidfd: &OwnedFd) -> bool {
    super::exit::reap(pidfd.as_raw_fd()).map_or(true, |status| status.is_some())
}

impl std::fmt::Debug for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Child")
            .field("id", &self.child.as_ref().map(std::process::Child::id))
            .field("status", &self.status)
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish()
    }
}
