//! A fiber dump on `SIGQUIT` (Ctrl-\), as Go prints its goroutines; unlike
//! Go, and like the JVM's thread dump, the process keeps running.
//!
//! A signal handler may neither allocate nor lock, and taking a dump does
//! both, so the handler only writes one byte to a pipe (`write` is
//! async-signal-safe). A thread of its own, blocked reading the pipe,
//! wakes up, dumps every runtime built with
//! [`Builder::dump_on_sigquit`](crate::Builder::dump_on_sigquit), and
//! prints the dumps to stderr.
//!
//! Nor may a handler wait: the pipe's write end is non-blocking, and a
//! byte that finds the pipe full is dropped (a dump is due anyway). A
//! blocking write would hang the interrupted thread until the dump thread
//! read, and for good if that thread waited for something the interrupted
//! one held (stderr's lock, a lock of the live list) or got the signal
//! itself. Each read takes every byte waiting, and gives one dump: the
//! SIGQUITs that came while a dump was taken give one more, not one each.

use std::io::Write;
use std::sync::{Mutex, OnceLock, Weak};

use crate::sched::registry::Registry;

/// The runtimes to dump; dropped runtimes fall out when a dump finds them gone.
static RUNTIMES: Mutex<Vec<Weak<Registry>>> = Mutex::new(Vec::new());

/// The pipe's write end, for the handler; -1 until installed.
static PIPE_WRITE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Adds `registry` to what a `SIGQUIT` dumps, installing the handler and
/// starting the dump thread on first use.
pub(crate) fn register(registry: Weak<Registry>) -> std::io::Result<()> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| install().map_err(|e| e.to_string()))
        .clone()
        .map_err(std::io::Error::other)?;
    let mut runtimes = RUNTIMES.lock().unwrap_or_else(|e| e.into_inner());
    runtimes.retain(|r| r.strong_count() > 0);
    runtimes.push(registry);
    Ok(())
}

fn install() -> std::io::Result<()> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
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
    // and the dump thread has nothing to do but wait.
    // SAFETY: `write_end` is an open descriptor of ours.
    if unsafe { libc::fcntl(write_end, libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
        let error = std::io::Error::last_os_error();
        close_both();
        return Err(error);
    }
    if let Err(error) = std::thread::Builder::new()
        .name("fiber-sigquit".into())
        .spawn(move || serve(read_end))
    {
        close_both();
        return Err(error);
    }
    // Relaxed: the handler is installed below, after this store, and a
    // signal delivered before it runs the default action anyway.
    PIPE_WRITE.store(write_end, std::sync::atomic::Ordering::Relaxed);
    // SAFETY: an all-zero sigaction is a valid starting value.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_sigquit as extern "C" fn(libc::c_int) as usize;
    // On the thread's alternate stack where it has one (every worker
    // does): the signal may land on a fiber whose stack is nearly full.
    action.sa_flags = libc::SA_RESTART | libc::SA_ONSTACK;
    // SAFETY: `sa_mask` is a field of `action`, which we own.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: the handler only calls async-signal-safe functions.
    if unsafe { libc::sigaction(libc::SIGQUIT, &action, std::ptr::null_mut()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The handler: no allocation, no lock; errno is kept for the code it
/// interrupted.
extern "C" fn on_sigquit(_: libc::c_int) {
    // SAFETY: `__errno_location` gives this thread's errno.
    let errno = unsafe { *libc::__errno_location() };
    // Relaxed: set once before the handler was installed.
    let fd = PIPE_WRITE.load(std::sync::atomic::Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: `write` is async-signal-safe; the byte is a static. The
        // write end is non-blocking: a full pipe drops the byte (EAGAIN),
        // and a dump is pending anyway.
        unsafe { libc::write(fd, b"q".as_ptr().cast(), 1) };
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Bytes one read takes: a pipe's default capacity, so that one read
/// empties a full pipe.
const READ_AT_ONCE: usize = 64 << 10;

/// The dump thread: one dump of every registered runtime per read, however
/// many bytes (SIGQUITs) it took.
fn serve(read_end: libc::c_int) {
    let mut buf = vec![0u8; READ_AT_ONCE];
    loop {
        // SAFETY: reads at most `buf.len()` bytes into `buf`.
        let n = unsafe { libc::read(read_end, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            return;
        }
        let live: Vec<_> = {
            let mut runtimes = RUNTIMES.lock().unwrap_or_else(|e| e.into_inner());
            runtimes.retain(|r| r.strong_count() > 0);
            runtimes.iter().filter_map(Weak::upgrade).collect()
        };
        let mut report = String::from("SIGQUIT: fiber dump\n");
        for (i, registry) in live.iter().enumerate() {
            report.push_str(&format!("\nruntime {i}: {}", super::dump::take(registry)));
        }
        report.push_str("\nend of fiber dump\n");
        let _ = std::io::stderr().lock().write_all(report.as_bytes());
    }
}
