//! The signal handler and what it touches: a counter per signal, and a
//! self-pipe that wakes the listener thread.
//!
//! A signal handler may neither allocate nor lock, and waking a fiber does
//! both, so the handler does two async-signal-safe things only: it adds
//! one to its signal's counter, and writes one byte to a pipe, whose write
//! end is non-blocking (a full pipe is readable already, so the byte can
//! be dropped). A plain thread of its own, started with the first
//! listener, blocks reading the pipe's other end; each time a read returns
//! it hands over to [`super::wake_listeners`], which takes a fiber-aware
//! lock and notifies every listener to compare its signal's counter with
//! the count it saw last.
//!
//! A handler is installed once per signal, with `SA_RESTART` (a system
//! call it interrupts goes on) and `SA_ONSTACK` (on a thread that runs
//! fibers, which has an alternate signal stack for the stack-overflow
//! handler, it runs there, not on a fiber's small stack), and stays for
//! the process's lifetime. It replaces the signal's default
//! action and any handler installed before it.

use std::io;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::kind::MAX_SIGNAL;

const SLOTS: usize = MAX_SIGNAL as usize + 1;

/// How many times each signal has been delivered since its handler was
/// installed, indexed by signal number.
static COUNTS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];

/// The self-pipe's write end, for the handler; -1 until the pipe is made.
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

/// What [`install`] has done: whether the pipe and its thread exist, and
/// which signals have their handler.
struct Installed {
    pipe: bool,
    signals: [bool; SLOTS],
}

static INSTALLED: Mutex<Installed> = Mutex::new(Installed {
    pipe: false,
    signals: [false; SLOTS],
});

/// How many times `signum` (a number [`SignalKind::check`] accepted) has
/// been delivered since its handler was installed; it wraps around.
///
/// [`SignalKind::check`]: super::kind::SignalKind::check
pub(super) fn count(signum: libc::c_int) -> usize {
    // Acquire: pairs with the handler's Release add. A listener that
    // reads a count after a wake-up reads it under the fiber-aware lock
    // the listener thread took after it read the handler's byte, so it
    // sees the new count (see `on_signal`); this ordering only matters for
    // a look without the lock (`try_recv`, `recv`'s first look).
    COUNTS[signum as usize].load(Ordering::Acquire)
}

/// Makes sure `signum` (a number [`SignalKind::check`] accepted) has its
/// handler, making the pipe and starting its thread first if no signal
/// has one yet.
///
/// [`SignalKind::check`]: super::kind::SignalKind::check
pub(super) fn install(signum: libc::c_int) -> io::Result<()> {
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if !installed.pipe {
        start_pipe()?;
        installed.pipe = true;
    }
    let slot = signum as usize;
    if !installed.signals[slot] {
        // SAFETY: an all-zero sigaction is a valid starting value.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        action.sa_flags = libc::SA_RESTART | libc::SA_ONSTACK;
        // SAFETY: `sa_mask` is a field of `action`, which we own.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: the handler only does async-signal-safe things (an
        // atomic add, `write`, errno), and `signum` is a catchable signal
        // none of the runtime's own handlers uses (`SignalKind::check`).
        if unsafe { libc::sigaction(signum, &action, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        installed.signals[slot] = true;
    }
    Ok(())
}

/// Makes the self-pipe and starts the thread that reads it.
fn start_pipe() -> io::Result<()> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let [read_end, write_end] = fds;
    let close_both = || {
        // SAFETY: both descriptors are ours, and nothing else has them yet.
        unsafe {
            libc::close(read_end);
            libc::close(write_end);
        }
    };
    // Only the write end is non-blocking: the handler must never wait,
    // and the reader has nothing to do but wait.
    // SAFETY: `write_end` is an open descriptor of ours.
    if unsafe { libc::fcntl(write_end, libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
        let error = io::Error::last_os_error();
        close_both();
        return Err(error);
    }
    if let Err(error) = std::thread::Builder::new()
        .name("fiber-signal".into())
        .spawn(move || serve(read_end))
    {
        close_both();
        return Err(error);
    }
    // Release: pairs with the handler's Acquire load. No handler is
    // installed before this store anyway: `install` calls `sigaction`
    // after it.
    PIPE_WRITE.store(write_end, Ordering::Release);
    Ok(())
}

/// The listener thread: a wake-up of every listener each time a read
/// returns bytes (all the bytes one read takes count as one wake-up:
/// listeners look at counters, not at bytes).
///
/// The read end is never closed, not even if this thread stops: a handler
/// writing to a pipe with no reader would raise `SIGPIPE`, and with a
/// listener for `SIGPIPE`, its own handler again.
fn serve(read_end: libc::c_int) {
    /// Tells the listeners that no more wake-ups will come, however this
    /// thread stops.
    struct CloseOnExit;
    impl Drop for CloseOnExit {
        fn drop(&mut self) {
            super::close_listeners();
        }
    }
    let _close = CloseOnExit;
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: reads at most `buf.len()` bytes into `buf`.
        let n = unsafe { libc::read(read_end, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            super::wake_listeners();
        } else if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            // The write end is never closed, so this does not happen.
            return;
        }
    }
}

/// The handler: an atomic add and a `write`, nothing that could allocate,
/// lock or block; errno is kept for the code it interrupted.
extern "C" fn on_signal(signum: libc::c_int) {
    // SAFETY: `__errno_location` gives this thread's errno; reading and
    // writing it is async-signal-safe.
    let errno = unsafe { *libc::__errno_location() };
    if let Some(count) = usize::try_from(signum).ok().and_then(|i| COUNTS.get(i)) {
        // Release: pairs with `count`'s Acquire load, for a listener that
        // looks without waiting. A waiting listener sees the new count
        // through the pipe instead: this add comes before the `write`
        // below in program order (the compiler cannot move it past a call
        // that could read `COUNTS`), the kernel's pipe orders that `write`
        // before the listener thread's `read` that returns the byte, and
        // that thread then takes the lock the listener reads the count
        // under.
        count.fetch_add(1, Ordering::Release);
    }
    // Acquire: pairs with the Release store in `start_pipe`.
    let fd = PIPE_WRITE.load(Ordering::Acquire);
    if fd >= 0 {
        // SAFETY: `write` is async-signal-safe, and the byte is a static.
        // It fails with EAGAIN only when the pipe is full, and so readable
        // already: the wake-up it stands for is on its way.
        unsafe { libc::write(fd, b"s".as_ptr().cast(), 1) };
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}
