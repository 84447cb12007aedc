//! Unix signals whose waits park the fiber: what a server needs to shut
//! down gracefully on Ctrl-C or `SIGTERM`.
//!
//! [`signal`] makes a [`Signal`], a listener for one kind of signal, and
//! [`Signal::recv`] parks the calling fiber until that signal is delivered
//! to the process (from a plain thread, it blocks the thread). Every
//! listener of a signal wakes for each delivery; deliveries that come
//! while a listener is not waiting are kept for it, and several of them
//! count as one. A listener sees only deliveries after it was made.
//! [`ctrl_c`] waits for the next `SIGINT` in one call. A
//! [`Select`](crate::sync::Select) waits on listeners beside channels and
//! fibers' handles.
//!
//! ```
//! use fiber_rt::signal::{signal, SignalKind};
//!
//! let rt = fiber_rt::Runtime::new().unwrap();
//! rt.block_on(|| {
//!     let mut terminate = signal(SignalKind::terminate()).unwrap();
//!     let server = fiber_rt::spawn(move || {
//!         // ... serve, until asked to stop:
//!         terminate.recv();
//!         "stopped cleanly"
//!     });
//!     // What a service manager does to stop the process.
//!     // SAFETY: `kill` has no memory-safety preconditions.
//!     unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
//!     assert_eq!(server.join().unwrap(), "stopped cleanly");
//! });
//! ```
//!
//! # What listening changes
//!
//! The first listener of a signal installs a handler for it, which stays
//! for the rest of the process's life, as with tokio: from then on the
//! signal's default action (ending the process, for `SIGINT` and
//! `SIGTERM`) no longer happens, even once every listener is gone, and a
//! handler that something else installed for it before is replaced.
//!
//! # Signals that cannot be listened for
//!
//! [`signal`] refuses, with an [`InvalidInput`](io::ErrorKind::InvalidInput)
//! error that names the signal and says why: `SIGKILL` and `SIGSTOP`, which
//! cannot be caught; the faults `SIGSEGV`, `SIGBUS`, `SIGILL` and `SIGFPE`
//! (after a handler returns, the faulting instruction runs again; the
//! runtime's stack-overflow detection handles `SIGSEGV` and `SIGBUS`);
//! `SIGURG`, which the runtime's preemption backstop sends to its workers;
//! `SIGQUIT`, which the runtime keeps for its fiber dump
//! ([`Builder::dump_on_sigquit`](crate::Builder::dump_on_sigquit)) whether
//! or not a runtime asked for it, so that what `SIGQUIT` does does not hang
//! on which came first; the two real-time signals the C library's threads
//! use; and numbers that name no signal.
//!
//! # How it works
//!
//! The handler does nothing a handler may not do: it adds one to its
//! signal's delivery counter and writes a byte to a pipe. A plain thread,
//! started with the first listener, blocks reading that pipe, and for each
//! read takes a fiber-aware lock and notifies a
//! [`Condvar`] that every waiting listener waits on.
//! A listener remembers the count it saw last (when it was made, or at its
//! last `recv`) and waits until its signal's counter differs from it, so a
//! delivery is never lost between a look and a wait, and one from before
//! the listener was made never wakes it. A fiber cancelled while it waits
//! unwinds out of the wait as out of any `Condvar` wait.

mod handler;
mod kind;

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use crate::sync::select::sealed::{Watch, Watcher};
use crate::sync::waiter::{self, Waiter};
use crate::sync::{Condvar, Mutex};

pub use kind::SignalKind;

/// Taken by the listener thread before it notifies [`WOKEN`], and by a
/// listener around its look at a counter and its wait: a delivery counted
/// after the look is notified after the wait began.
static LOCK: Mutex<()> = Mutex::new(());
/// Notified each time the listener thread reads the pipe.
static WOKEN: Condvar = Condvar::new();
/// Set if the listener thread stops, which it does not unless reading the
/// pipe fails: no wake-up comes after that.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// The waiters of `Select`s watching a listener: each wake-up of the
/// listeners wakes and forgets them all.
static WATCHERS: std::sync::Mutex<VecDeque<Arc<Waiter>>> = std::sync::Mutex::new(VecDeque::new());

fn watchers() -> std::sync::MutexGuard<'static, VecDeque<Arc<Waiter>>> {
    // Nothing under the lock can panic halfway.
    WATCHERS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Wakes every listener to look at its counter again, and every `Select`
/// watching one.
fn wake_listeners() {
    {
        let _lock = LOCK.lock();
        WOKEN.notify_all();
    }
    // Taken after the handler counted the deliveries (it wrote the byte
    // this thread read after that): a watcher that looked at a counter
    // under this lock before is woken here, one that looks after sees
    // the new count.
    for watcher in std::mem::take(&mut *watchers()) {
        watcher.wake();
    }
}

/// Tells every listener that no wake-up will come any more.
fn close_listeners() {
    // Release: pairs with `closed`'s Acquire; the lock below also orders
    // it before what a woken listener reads.
    CLOSED.store(true, Ordering::Release);
    wake_listeners();
}

fn closed() -> bool {
    // Acquire: pairs with the Release store in `close_listeners`.
    CLOSED.load(Ordering::Acquire)
}

/// Listens for `kind`, installing its handler if this is the first
/// listener of it. Only deliveries after this call wake the listener.
///
/// Refuses, with an [`InvalidInput`](io::ErrorKind::InvalidInput) error
/// naming the signal, those listed in the [module docs](self), and fails
/// as the system does if the handler's pipe or thread cannot be made.
pub fn signal(kind: SignalKind) -> io::Result<Signal> {
    kind.check()?;
    let signum = kind.as_raw_value();
    handler::install(signum)?;
    Ok(Signal {
        kind,
        seen: handler::count(signum),
    })
}

/// Parks the calling fiber (blocks a plain thread) until a `SIGINT`
/// (Ctrl-C) is delivered after the call. The first call installs the
/// handler: from then on Ctrl-C no longer ends the process (see the
/// [module docs](self)).
///
/// To wait for Ctrl-C more than once, or not to miss one that comes
/// between two waits, keep a listener:
/// [`signal(SignalKind::interrupt())`](signal).
///
/// ```no_run
/// fn main() -> std::io::Result<()> {
///     let rt = fiber_rt::Runtime::new()?;
///     rt.block_on(|| {
///         let server = fiber_rt::spawn(|| loop {
///             // ... accept and serve connections ...
///             fiber_rt::sleep(std::time::Duration::from_secs(1));
///         });
///         fiber_rt::signal::ctrl_c()?;
///         eprintln!("Ctrl-C: stopping");
///         server.cancel(); // unwinds it: its destructors run
///         let _ = server.join();
///         Ok(())
///     })
/// }
/// ```
pub fn ctrl_c() -> io::Result<()> {
    signal(SignalKind::interrupt())?
        .recv()
        .ok_or_else(|| io::Error::other("the signal listener thread has stopped"))
}

/// A listener for one kind of signal, made by [`signal`].
///
/// It keeps the count of deliveries it has seen: [`recv`](Self::recv)
/// returns at once for a delivery that came since the last `recv` (or
/// since the listener was made), and otherwise waits for one. Several
/// deliveries in between count as one.
#[derive(Debug)]
pub struct Signal {
    kind: SignalKind,
    /// The signal's counter when this listener last took a delivery.
    seen: usize,
}

impl Signal {
    /// The signal this listens for.
    pub fn kind(&self) -> SignalKind {
        self.kind
    }

    /// Waits for a delivery of the signal, parking the fiber (blocking a
    /// plain thread). `None` only if the thread that wakes listeners has
    /// stopped, which it does not unless reading its pipe fails.
    pub fn recv(&mut self) -> Option<()> {
        if self.take() {
            return Some(());
        }
        let guard = LOCK.lock();
        let _guard = WOKEN.wait_while(guard, |_| !self.arrived() && !closed());
        self.take().then_some(())
    }

    /// Like [`recv`](Self::recv), giving up once `timeout` has passed.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<(), RecvTimeoutError> {
        if self.take() {
            return Ok(());
        }
        let guard = LOCK.lock();
        let _guard = WOKEN.wait_timeout_while(guard, timeout, |_| !self.arrived() && !closed());
        if self.take() {
            Ok(())
        } else if closed() {
            Err(RecvTimeoutError::Closed)
        } else {
            Err(RecvTimeoutError::Timeout)
        }
    }

    /// Takes a delivery that has come since the last one taken, without
    /// waiting.
    pub fn try_recv(&mut self) -> Result<(), TryRecvError> {
        if self.take() {
            Ok(())
        } else if closed() {
            Err(TryRecvError::Closed)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    /// Whether the signal has come since the listener last took it.
    fn arrived(&self) -> bool {
        handler::count(self.kind.as_raw_value()) != self.seen
    }

    /// Takes the deliveries since the last one taken, if any, as one.
    fn take(&mut self) -> bool {
        let now = handler::count(self.kind.as_raw_value());
        let arrived = now != self.seen;
        self.seen = now;
        arrived
    }
}

/// A listener in a [`Select`](crate::sync::Select) is ready when a
/// delivery has come since it last took one (or its thread has stopped):
/// its `try_recv` then does not say `Empty`. `try_recv` takes `&mut`, so
/// build the `Select` in a block that returns the index, as for a `watch`
/// receiver.
impl Watch for Signal {
    fn is_ready(&self) -> bool {
        self.arrived() || closed()
    }

    fn watch(&self, watcher: &Watcher) -> bool {
        let mut watchers = watchers();
        if self.is_ready() {
            return true;
        }
        watchers.push_back(watcher.0.clone());
        false
    }

    fn unwatch(&self, watcher: &Watcher) {
        waiter::remove(&mut watchers(), &watcher.0);
    }
}

impl crate::sync::select::Selectable for Signal {}

/// Why [`Signal::recv_timeout`] returned without a delivery.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum RecvTimeoutError {
    /// The signal did not come before the timeout.
    Timeout,
    /// The thread that wakes listeners has stopped (see [`Signal::recv`]).
    Closed,
}

/// Why [`Signal::try_recv`] returned without a delivery.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum TryRecvError {
    /// The signal has not come since the listener last took it.
    Empty,
    /// The thread that wakes listeners has stopped (see [`Signal::recv`]).
    Closed,
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecvTimeoutError::Timeout => "timed out waiting for a signal",
            RecvTimeoutError::Closed => "the signal listener thread has stopped",
        })
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "no signal has come",
            TryRecvError::Closed => "the signal listener thread has stopped",
        })
    }
}

impl std::error::Error for RecvTimeoutError {}
impl std::error::Error for TryRecvError {}

#[cfg(test)]
mod tests {
    //! A `Select` that stops watching a listener leaves no waiter behind.

    use std::time::Duration;

    use super::{signal, watchers, SignalKind};
    use crate::sync::Select;

    #[test]
    fn a_select_that_times_out_leaves_no_watcher() {
        // A signal no test here sends.
        let listener = signal(SignalKind::window_change()).unwrap();
        for _ in 0..3 {
            let mut sel = Select::new();
            sel.recv(&listener);
            assert_eq!(sel.ready_timeout(Duration::from_millis(5)), None);
        }
        assert!(watchers().is_empty());
    }
}
