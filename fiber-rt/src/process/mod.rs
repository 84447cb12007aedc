//! Child processes whose waits park the fiber, never its worker thread:
//! [`Command`] and [`Child`], with the methods of their `std::process`
//! counterparts, and fiber-aware pipes to the child's standard streams
//! ([`ChildStdin`], [`ChildStdout`], [`ChildStderr`]).
//!
//! ```
//! use std::io::{Read, Write};
//! use std::process::Stdio;
//! use fiber_rt::process::Command;
//!
//! # fiber_rt::Runtime::new().unwrap().block_on(|| -> std::io::Result<()> {
//! // Runs `tr` as a filter: the writes and reads park this fiber while
//! // the pipes are full or empty, and other fibers run meanwhile.
//! let mut child = Command::new("tr")
//!     .arg("a-z")
//!     .arg("A-Z")
//!     .stdin(Stdio::piped())
//!     .stdout(Stdio::piped())
//!     .spawn()?;
//! child.stdin.take().unwrap().write_all(b"hello")?; // dropped: closed
//! let mut upper = String::new();
//! child.stdout.take().unwrap().read_to_string(&mut upper)?;
//! assert_eq!(upper, "HELLO");
//! assert!(child.wait()?.success());
//!
//! // Or all at once:
//! let out = Command::new("sh").args(["-c", "echo out; echo err >&2"]).output()?;
//! assert_eq!((&out.stdout[..], &out.stderr[..]), (&b"out\n"[..], &b"err\n"[..]));
//! # Ok(()) }).unwrap();
//! ```
//!
//! A child's exit is waited for on its *pidfd* (Linux 5.3 and later), a
//! descriptor the runtime's epoll set reports readable when the child
//! exits: no thread and no `SIGCHLD` handler of the runtime's own. Where
//! the kernel refuses one, a wait looks again after pauses growing from 1
//! ms to 16 ms. From a plain thread every call blocks the thread, as
//! std's do. A cancelled fiber unwinds out of its wait; the child runs
//! on.
//!
//! Spawning itself (std's `fork`/`exec`, or `posix_spawn`) runs on the
//! calling thread, as with tokio: it takes a fraction of a millisecond.

mod child;
mod exit;
mod pipe;

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::process::{ExitStatus, Output, Stdio};

pub use child::Child;
pub use pipe::{ChildStderr, ChildStdin, ChildStdout};

/// A process to spawn: [`std::process::Command`] whose
/// [`status`](Self::status) and [`output`](Self::output) park the calling
/// fiber, and whose [`spawn`](Self::spawn) gives a fiber-aware [`Child`].
/// The builder methods are std's; the rest of std's (`uid`, `pre_exec`,
/// `process_group` and so on) are on [`as_std_mut`](Self::as_std_mut).
pub struct Command {
    inner: std::process::Command,
    kill_on_drop: bool,
    /// Which standard streams were set here: `output` captures the others.
    stdin_set: bool,
    stdout_set: bool,
    stderr_set: bool,
}

impl Command {
    /// A command to run `program`, as [`std::process::Command::new`].
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command::from(std::process::Command::new(program))
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.inner.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.inner.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Command {
        self.inner.env(key, value);
        self
    }

    /// Sets environment variables for the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.inner.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.inner.env_remove(key);
        self
    }

    /// Clears the child's environment.
    pub fn env_clear(&mut self) -> &mut Command {
        self.inner.env_clear();
        self
    }

    /// Sets the child's working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.inner.current_dir(dir);
        self
    }

    /// Sets the child's standard input ([`Stdio::piped`] gives
    /// [`Child::stdin`]).
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.inner.stdin(cfg);
        self.stdin_set = true;
        self
    }

    /// Sets the child's standard output ([`Stdio::piped`] gives
    /// [`Child::stdout`]).
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.inner.stdout(cfg);
        self.stdout_set = true;
        self
    }

    /// Sets the child's standard error ([`Stdio::piped`] gives
    /// [`Child::stderr`]).
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.inner.stderr(cfg);
        self.stderr_set = true;
        self
    }

    /// Whether dropping a [`Child`] spawned from here, not yet waited
    /// for, kills it (`SIGKILL`). Off by default, as std never kills.
    pub fn kill_on_drop(&mut self, kill: bool) -> &mut Command {
        self.kill_on_drop = kill;
        self
    }

    /// The program to run.
    pub fn get_program(&self) -> &OsStr {
        self.inner.get_program()
    }

    /// The arguments.
    pub fn get_args(&self) -> std::process::CommandArgs<'_> {
        self.inner.get_args()
    }

    /// The working directory set, if any.
    pub fn get_current_dir(&self) -> Option<&Path> {
        self.inner.get_current_dir()
    }

    /// The std command inside.
    pub fn as_std(&self) -> &std::process::Command {
        &self.inner
    }

    /// The std command inside, for std's other settings (those of
    /// `std::os::unix::process::CommandExt` included). Set the standard
    /// streams with this `Command`'s own methods: std's command cannot say
    /// which streams were set on it, so [`output`](Self::output) takes
    /// those set here for unset, captures them, and leaves them inherited
    /// for later spawns.
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.inner
    }

    /// Starts the child. Its standard streams are the parent's unless set
    /// otherwise, as with std.
    pub fn spawn(&mut self) -> io::Result<Child> {
        child::reap_orphans();
        Child::new(self.inner.spawn()?, self.kill_on_drop)
    }

    /// Runs the child to its exit and returns its status; the calling fiber
    /// parks meanwhile. Its standard streams are the parent's unless set
    /// otherwise, as with std.
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        self.spawn()?.wait()
    }

    /// Runs the child to its exit and returns its status and what it wrote
    /// to its standard output and error, which are captured unless set
    /// otherwise on this `Command`; its standard input is empty unless set
    /// otherwise (std's rules). The calling fiber parks meanwhile.
    pub fn output(&mut self) -> io::Result<Output> {
        if !self.stdin_set {
            self.inner.stdin(Stdio::null());
        }
        if !self.stdout_set {
            self.inner.stdout(Stdio::piped());
        }
        if !self.stderr_set {
            self.inner.stderr(Stdio::piped());
        }
        let spawned = self.spawn();
        // Back to what `spawn` and `status` take when nothing is set.
        if !self.stdin_set {
            self.inner.stdin(Stdio::inherit());
        }
        if !self.stdout_set {
            self.inner.stdout(Stdio::inherit());
        }
        if !self.stderr_set {
            self.inner.stderr(Stdio::inherit());
        }
        spawned?.wait_with_output()
    }
}

impl From<std::process::Command> for Command {
    /// Takes over a std command; its standard streams count as unset for
    /// [`output`](Command::output), which replaces them (see
    /// [`as_std_mut`](Command::as_std_mut)).
    fn from(inner: std::process::Command) -> Command {
        Command {
            inner,
            kill_on_drop: false,
            stdin_set: false,
            stdout_set: false,
            stderr_set: false,
        }
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.inner, f)
    }
}
