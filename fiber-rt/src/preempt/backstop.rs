//! The third tier: for a fiber that ignores its preemption flag for a
//! whole further slice (code with no probes, such as a long call into a
//! library), the monitor sends SIGURG to the thread running it.
//!
//! The handler never switches fibers: switching inside a handler was
//! measured on these machines to break glibc malloc's per-thread cache,
//! to re-enter std's stdout lock and to deadlock on held mutexes. Nor does
//! it park the thread: a parked thread would keep whatever locks its fiber
//! holds (malloc's, stdout's, the user's), and the fibers waiting for them
//! could fill every worker. Instead it *detaches* the fiber: the fiber
//! keeps the interrupted thread and runs on, and its worker, with its
//! queues, goes to a fresh thread that the monitor starts. The fiber rejoins
//! the runtime at its next switch (a park, a yield, its end): the old
//! thread then queues it through the global queue and ends. This is how Go
//! hands a processor off from a thread stuck in a system call.
//!
//! The handler only acts when the thread runs fiber code: while the thread
//! is in runtime code (`sched::thread::in_runtime`) or the
//! fiber is in a `no_preempt` region, it does nothing and the monitor tries
//! again a tick later. It saves and restores `errno`, is installed with
//! `SA_RESTART`, and passes signals that are not ours to a SIGURG handler
//! installed before it.

use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use crate::sched::thread;

static INSTALL: Once = Once::new();
static mut PREVIOUS: MaybeUninit<libc::sigaction> = MaybeUninit::zeroed();
/// Set once PREVIOUS is written.
static READY: AtomicBool = AtomicBool::new(false);

/// Installs the SIGURG handler, once per process.
pub(crate) fn install() {
    INSTALL.call_once(|| {
        // SAFETY: a valid, zero-initialised action; PREVIOUS is written
        // once, here, and read only after `wait_written` on READY.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigurg as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            crate::stack::chain::install(
                libc::SIGURG,
                &action,
                ptr::addr_of_mut!(PREVIOUS).cast(),
                &READY,
            );
        }
    });
}

/// The calling thread's id, as the monitor signals it.
pub(crate) fn current_thread() -> u64 {
    // SAFETY: pthread_self has no preconditions.
    unsafe { libc::pthread_self() as u64 }
}

/// Asks the fiber running on `clock`'s worker, in the slice after
/// `switches` switches, to leave the worker (see `detach_if_asked`): a
/// signal to the worker's thread. Whether the signal went out.
///
/// The worker's thread must not have been joined: the monitor asks until
/// the shutdown stops it, the shutdown itself only before it joins the
/// workers (see `runtime/shutdown.rs`).
pub(crate) fn ask_to_detach(clock: &super::WorkerClock, switches: u64) -> bool {
    // Relaxed: written by the worker's thread when it started; a worker
    // that runs a fiber has one.
    let thread = clock.thread.load(Ordering::Relaxed);
    // Release: pairs with the handler's Acquire.
    clock
        .backstop
        .store(switches.wrapping_add(1), Ordering::Release);
    if thread != 0 && signal(thread) {
        return true;
    }
    // Relaxed: nobody was signalled to read it.
    clock.backstop.store(0, Ordering::Relaxed);
    false
}

/// Signals `thread` (a worker's thread) that its fiber overran.
pub(crate) fn signal(thread: u64) -> bool {
    // A backstop thread is joined only once no worker's clock names it; the
    // shutdown joins the monitor, then asks itself, then joins the workers.
    // SAFETY: so `thread` is a worker's thread, not joined yet.
    unsafe { libc::pthread_kill(thread as libc::pthread_t, libc::SIGURG) == 0 }
}

extern "C" fn on_sigurg(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: errno is a thread-local int; reading and writing it is
    // async-signal-safe.
    let errno = unsafe { *libc::__errno_location() };
    if !detach_if_asked() {
        chain(sig, info, ctx);
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Detaches the running fiber if the monitor asked for it; `false` if the
/// signal was not ours.
fn detach_if_asked() -> bool {
    let state = thread::state();
    let worker = state.worker.get();
    if worker.is_null() {
        return false;
    }
    // SAFETY: a bound worker lives as long as the runtime, which outlives
    // its threads.
    let worker = unsafe { &*worker };
    let clock = worker.registry.clock(worker.index);
    // Acquire: pairs with the monitor's Release before it signals.
    let asked_for = clock.backstop.swap(0, Ordering::Acquire);
    if asked_for == 0 {
        return false;
    }
    // Relaxed: written by this very thread when it started the fiber.
    if asked_for != clock.switches.load(Ordering::Relaxed).wrapping_add(1) {
        return true; // the fiber it was meant for has already switched
    }
    // Written by this very thread (see `sched::thread`).
    if crate::sched::thread::in_runtime() || crate::sched::thread::detached() {
        return true; // runtime code: the monitor asks again next tick
    }
    if let Some(task) = worker.peek_current() {
        // SAFETY: the running fiber's task; its stack header is live.
        if unsafe { (*task).running_header().no_preempt.get() } > 0 {
            return true;
        }
    }
    // SAFETY: this thread runs the worker and is in fiber code, so nothing
    // else uses the worker now.
    if let Some((task, loop_sp)) = unsafe { worker.detach_running() } {
        // Its next probe, if it has any, brings it back into the runtime;
        // the monitor no longer sets this thread's flag.
        super::detach_thread(clock);
        // Release, both: the shutdown reads them (Acquire) while this may
        // run, when its own signal brought this handler.
        task.detached.store(true, Ordering::Release);
        worker
            .registry
            .detached_threads
            .fetch_add(1, Ordering::Release);
        state
            .orphan
            .set(crate::sched::task_ref::TaskRef::into_raw(task));
        state.orphan_loop.set(Some(loop_sp));
        crate::sched::thread::set_detached(true);
        state.worker.set(ptr::null());
        // The worker runs nothing until its new thread starts.
        clock.idle();
        // Relaxed: the new thread resets it when it starts a slice.
        clock.flag.store(0, Ordering::Relaxed);
        // Release: the worker's state, as this thread left it, is visible
        // to the thread the monitor starts for it.
        clock.handoff.store(true, Ordering::Release);
    }
    true
}

/// Passes a SIGURG that is not ours to the handler installed before ours.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    crate::stack::chain::wait_written(&READY);
    // SAFETY: PREVIOUS is written (see `wait_written`), and never again.
    let previous = unsafe { *ptr::addr_of!(PREVIOUS).cast::<libc::sigaction>() };
    // SIG_DFL and SIG_IGN both ignore SIGURG: nothing to do then.
    crate::stack::chain::call_previous(&previous, sig, info, ctx);
}
