//! Which signal a listener waits for, and which ones it may not.

use std::fmt;
use std::io;

/// The highest signal number there is a counter for: `SIGRTMAX` on
/// x86_64 Linux.
pub(super) const MAX_SIGNAL: libc::c_int = 64;

/// A Unix signal to listen for with [`signal`](super::signal).
///
/// The constructors name the usual ones; [`from_raw`](Self::from_raw)
/// takes any number, which [`signal`](super::signal) then checks (see
/// there for the signals it refuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalKind(libc::c_int);

impl SignalKind {
    /// The signal numbered `signum`, unchecked until it is listened for.
    pub const fn from_raw(signum: i32) -> Self {
        SignalKind(signum)
    }

    /// The signal's number.
    pub const fn as_raw_value(&self) -> i32 {
        self.0
    }

    /// `SIGINT`: Ctrl-C at the terminal.
    pub const fn interrupt() -> Self {
        SignalKind(libc::SIGINT)
    }

    /// `SIGTERM`: the polite request to stop (`kill`'s default, and what
    /// service managers and container runtimes send first).
    pub const fn terminate() -> Self {
        SignalKind(libc::SIGTERM)
    }

    /// `SIGHUP`: the terminal went away; daemons take it as "reload".
    pub const fn hangup() -> Self {
        SignalKind(libc::SIGHUP)
    }

    /// `SIGUSR1`, for the application's own use.
    pub const fn user_defined1() -> Self {
        SignalKind(libc::SIGUSR1)
    }

    /// `SIGUSR2`, for the application's own use.
    pub const fn user_defined2() -> Self {
        SignalKind(libc::SIGUSR2)
    }

    /// `SIGCHLD`: a child process stopped or ended.
    pub const fn child() -> Self {
        SignalKind(libc::SIGCHLD)
    }

    /// `SIGPIPE`: a write to a pipe or socket with no reader. Rust
    /// programs ignore it by default (the write fails with `EPIPE`);
    /// listening for it keeps that failure.
    pub const fn pipe() -> Self {
        SignalKind(libc::SIGPIPE)
    }

    /// `SIGWINCH`: the terminal's window changed size.
    pub const fn window_change() -> Self {
        SignalKind(libc::SIGWINCH)
    }

    /// `SIGALRM`: a timer set with `alarm` or `setitimer` ran out.
    pub const fn alarm() -> Self {
        SignalKind(libc::SIGALRM)
    }

    /// Why the runtime does not let a listener catch this signal, if it
    /// does not.
    fn refusal(self) -> Option<&'static str> {
        let why = match self.0 {
            libc::SIGKILL | libc::SIGSTOP => "it cannot be caught",
            libc::SIGSEGV | libc::SIGBUS => {
                "it reports a fault, and the runtime's stack-overflow \
                 detection handles it"
            }
            libc::SIGILL | libc::SIGFPE => {
                "it reports a fault: once a handler returns, the faulting \
                 instruction runs again"
            }
            libc::SIGURG => "the runtime's preemption backstop uses it",
            libc::SIGQUIT => {
                "the runtime keeps it for its fiber dump \
                 (Builder::dump_on_sigquit)"
            }
            n if !(1..=MAX_SIGNAL).contains(&n) || n > libc::SIGRTMAX() => {
                "there is no such signal"
            }
            n if n > 31 && n < libc::SIGRTMIN() => "the C library's threads use it",
            _ => return None,
        };
        Some(why)
    }

    /// `Ok` if a listener may catch the signal; otherwise an
    /// `InvalidInput` error that names it and says why not.
    pub(super) fn check(self) -> io::Result<()> {
        match self.refusal() {
            None => Ok(()),
            Some(why) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot listen for {self}: {why}"),
            )),
        }
    }
}

impl fmt::Display for SignalKind {
    /// The signal's name (`SIGINT`, `SIGRTMIN+2`), or `signal N` for a
    /// number that names none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            libc::SIGHUP => "SIGHUP",
            libc::SIGINT => "SIGINT",
            libc::SIGQUIT => "SIGQUIT",
            libc::SIGILL => "SIGILL",
            libc::SIGTRAP => "SIGTRAP",
            libc::SIGABRT => "SIGABRT",
            libc::SIGBUS => "SIGBUS",
            libc::SIGFPE => "SIGFPE",
            libc::SIGKILL => "SIGKILL",
            libc::SIGUSR1 => "SIGUSR1",
            libc::SIGSEGV => "SIGSEGV",
            libc::SIGUSR2 => "SIGUSR2",
            libc::SIGPIPE => "SIGPIPE",
            libc::SIGALRM => "SIGALRM",
            libc::SIGTERM => "SIGTERM",
            libc::SIGSTKFLT => "SIGSTKFLT",
            libc::SIGCHLD => "SIGCHLD",
            libc::SIGCONT => "SIGCONT",
            libc::SIGSTOP => "SIGSTOP",
            libc::SIGTSTP => "SIGTSTP",
            libc::SIGTTIN => "SIGTTIN",
            libc::SIGTTOU => "SIGTTOU",
            libc::SIGURG => "SIGURG",
            libc::SIGXCPU => "SIGXCPU",
            libc::SIGXFSZ => "SIGXFSZ",
            libc::SIGVTALRM => "SIGVTALRM",
            libc::SIGPROF => "SIGPROF",
            libc::SIGWINCH => "SIGWINCH",
            libc::SIGIO => "SIGIO",
            libc::SIGPWR => "SIGPWR",
            libc::SIGSYS => "SIGSYS",
            n if n >= libc::SIGRTMIN() && n <= libc::SIGRTMAX() => {
                return match n - libc::SIGRTMIN() {
                    0 => f.write_str("SIGRTMIN"),
                    k => write!(f, "SIGRTMIN+{k}"),
                };
            }
            n => return write!(f, "signal {n}"),
        };
        f.write_str(name)
    }
}
