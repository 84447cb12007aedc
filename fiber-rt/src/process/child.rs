//! A spawned child process whose waits park the calling fiber.

use std::io::{self, Read};
use std::process::{ExitStatus, Output};
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
/// asked for it): a child that is never waited for stays a zombie until
/// this process ends.
pub struct Child {
    /// The parent's end of the child's standard input, if piped.
    pub stdin: Option<ChildStdin>,
    /// The parent's end of the child's standard output, if piped.
    pub stdout: Option<ChildStdout>,
    /// The parent's end of the child's standard error, if piped.
    pub stderr: Option<ChildStderr>,
    child: std::process::Child,
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
            child,
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
        self.child.id()
    }

    /// Sends `SIGKILL` to the child, as std's `kill` does (which see for
    /// a child that has exited already). Does not wait for it to die.
    pub fn kill(&mut self) -> io::Result<()> {
        if self.status.is_some() {
            // Reaped: its id may name another process by now.
            return Ok(());
        }
        self.child.kill()
    }

    /// The exit status if the child has exited (reaping it), without
    /// waiting.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        self.status = self.child.try_wait()?;
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
        self.status = self.exit.wait(&mut self.child, deadline)?;
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
        if self.kill_on_drop && self.status.is_none() {
            // Best effort, as in std's drop: an error (the child has
            // been reaped by someone else) has nobody to go to. Reaped
            // at once if it is dead already, to spare a zombie.
            if self.child.kill().is_ok() {
                let _ = self.child.try_wait();
            }
        }
    }
}

impl std::fmt::Debug for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Child")
            .field("id", &self.child.id())
            .field("status", &self.status)
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish()
    }
}
