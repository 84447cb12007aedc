//! Preemption: a fiber that runs past its time slice is asked to yield.
//!
//! Two tiers are in place:
//!
//! - **Probes**: `#[fiber]` puts a call to [`point`] at the entry of the
//!   function and at the back-edge of every `loop` and `while` in its body;
//!   call it yourself in long loops of code that is not a `#[fiber]`. A
//!   probe reads the calling thread's preemption flag, a byte of
//!   thread-local storage (initial-exec: an immediate and one load from
//!   `fs`, no call), and branches on it; the branch is never taken until the
//!   monitor asks for a yield. That is one compare-and-branch wherever the
//!   probe sits (see [`point`]): loops pay about 1% here, but a tiny
//!   recursive function (`fib`, about 3 cycles a call) takes about 1.27
//!   times as long, which any load and branch per call costs it.
//! - **Monitor**: one thread per runtime looks at every worker each half
//!   slice; a worker that has run the same fiber for a slice gets its
//!   preemption flag set, together with the flag of the thread running it,
//!   and that fiber yields at its next probe. The monitor also moves a
//!   fiber from a long local queue to the global one when busy workers'
//!   queues differ by two or more, so that spinners share the workers
//!   evenly.
//!
//! The flag is the thread's, not the fiber's. Each thread that runs a
//! worker gives the worker's clock its flag's address when it starts
//! (`bind_thread`); a new slice clears the flag, a fiber that goes on in
//! the running slice (the LIFO slot) finds it as it was. Because a probe
//! reads the flag of the thread it runs on at that moment, and keeps no
//! address across a switch, a fiber that moved to another worker reads its
//! new worker's flag. A thread that runs no worker never has its flag set,
//! so probes there (in a closure sent to a plain thread) cost the load and
//! nothing else. Code that must not yield while its thread's flag is set (a
//! low-level [`Fiber`](crate::fiber::Fiber), `no_preempt` regions) is told
//! apart in the cold path, which looks at the stack it runs on. A fiber
//! the backstop detached keeps its thread, whose flag the handler sets and
//! the monitor no longer writes: the fiber rejoins the runtime at its next
//! probe.
//!
//! The flag uses the initial-exec TLS model, which needs the byte in the
//! static TLS block every thread gets when it starts. That holds for
//! executables and for shared objects loaded at startup; a shared object
//! holding fiber-rt that is loaded later with `dlopen` relies on the C
//! library's reserve of static TLS (glibc keeps one for such objects), and
//! `dlopen` fails if the reserve is used up.
//!
//! `for` loops get no probe inside their body: a load and a branch in a
//! loop the compiler would vectorise cost 2.8 to 6 times the loop itself
//! here. A `for` loop is bounded by its iterator; the fiber yields at the
//! next probe after it.
//!
//! [`no_preempt`] marks a region that must not be preempted: a probe inside
//! it does not yield, and a request that arrived meanwhile is honoured when
//! the region ends.

mod backstop;
mod monitor;

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, Ordering};

pub(crate) use backstop::{ask_to_detach, current_thread, install as install_backstop};
pub(crate) use monitor::{wake_for_trim, Monitor};

use crate::stack::StackHeader;

/// A safe point: yields if the monitor asked the running fiber to. A no-op
/// on a plain thread, on a low-level [`Fiber`](crate::fiber::Fiber), and
/// inside [`no_preempt`].
///
/// It compares the calling thread's preemption flag (a byte of
/// thread-local storage, reached through the initial-exec model) with zero
/// and branches to a cold call when it is set: one compare-and-branch
/// (`asm goto`, hence Rust 1.87), the flag's offset kept in a register
/// across a loop. Every probe reads the flag of the thread it runs on
/// *now*: the offset is the same in every thread and the byte is read
/// afresh each time, so a fiber resumed on another worker reads that
/// worker's flag.
#[inline(always)]
pub fn point() {
    fiber_asm::if_preempt_requested(preempted::<()>);
}

/// The probe's cold path. Generic so that each crate that inlines
/// [`point`] gets a copy of its own, reached by a direct call: a call into
/// another crate goes through the GOT, and the compiler keeps that address
/// in a callee-saved register across a probed loop, which costs a push and
/// a pop per call of a small probed function.
#[cold]
#[inline(never)]
#[allow(clippy::extra_unused_type_parameters)] // the generic is the point
fn preempted<T>() {
    yield_for_preemption();
}

/// The flag is the thread's, not the fiber's, so this is where code that
/// must not yield to the runtime is told apart: code on the thread's own
/// stack (the scheduler loop, a plain thread), on the stack of a low-level
/// [`Fiber`](crate::fiber::Fiber) (no task owns it), or inside
/// [`no_preempt`]. Such code takes this call at each probe until the
/// request is honoured or the next slice clears the flag.
#[cold]
#[inline(never)]
fn yield_for_preemption() {
    let Some(task) = crate::sched::task::Task::current() else {
        return;
    };
    let Some(header) = StackHeader::current() else {
        return;
    };
    // SAFETY: the header of the stack we run on.
    if unsafe { (*header).no_preempt.get() } > 0 {
        return; // honoured when the region ends
    }
    // Relaxed: statistics.
    task.registry
        .stats
        .preempt_yields
        .fetch_add(1, Ordering::Relaxed);
    task.preemptions.fetch_add(1, Ordering::Relaxed);
    crate::sched::park::switch_hooked(task, crate::sched::worker::Switch::Preempt);
}

/// Runs `f` with preemption held off: probes inside it do not yield. Keep
/// such regions short; a request that arrives meanwhile is honoured as soon
/// as the region ends.
///
/// ```
/// let rt = fiber_rt::Runtime::new().unwrap();
/// let sum = rt.block_on(|| fiber_rt::preempt::no_preempt(|| (0..1000u64).sum::<u64>()));
/// assert_eq!(sum, 499_500);
/// ```
pub fn no_preempt<R>(f: impl FnOnce() -> R) -> R {
    let Some(header) = StackHeader::current() else {
        return f();
    };
    struct Region(*const StackHeader);
    impl Drop for Region {
        fn drop(&mut self) {
            // SAFETY: the header of the stack this region runs on.
            let h = unsafe { &*self.0 };
            h.no_preempt.set(h.no_preempt.get() - 1);
        }
    }
    // SAFETY: the header of the stack we run on; only this fiber touches
    // its `no_preempt` count.
    unsafe { (*header).no_preempt.set((*header).no_preempt.get() + 1) };
    let result = {
        let _region = Region(header);
        f()
    };
    point();
    result
}

/// What the monitor knows of one worker, shared between the worker and the
/// monitor thread. Aligned so each worker's flag has its own cache line.
#[repr(align(64))]
#[derive(Default)]
pub(crate) struct WorkerClock {
    /// Set by the monitor: the running fiber should yield. The monitor
    /// sets the running thread's flag (`thread_flag`) with it, which is
    /// what probes read; this copy is what the scheduler and the monitor
    /// consult.
    pub(crate) flag: AtomicU32,
    /// The preemption flag of the thread running this worker (its static
    /// TLS byte, see [`bind_thread`]), or null.
    pub(crate) thread_flag: AtomicPtr<AtomicU8>,
    /// Whether a fiber (rather than the scheduler loop) runs.
    pub(crate) running: AtomicBool,
    /// Bumped each time the worker resumes a fiber.
    pub(crate) switches: AtomicU64,
    /// Id of the fiber the worker last resumed (for dumps: with `running`,
    /// the fiber running on this worker).
    pub(crate) task: AtomicU64,
    /// Time the worker spent looking for work or asleep, in ns (metrics).
    pub(crate) idle_ns: AtomicU64,
    /// When the current idle stretch began (`clock::instant_to_ns`), 0
    /// while the worker is busy.
    pub(crate) idle_since: AtomicU64,
    /// Fibers that parked on this worker.
    pub(crate) parks: AtomicU64,
    /// `pthread_t` of the thread running this worker, for the backstop.
    pub(crate) thread: AtomicU64,
    /// Set by the monitor just before it signals the worker's thread: the
    /// switch count it saw, plus one (0: no request). The handler acts only
    /// if the worker still runs that same fiber.
    pub(crate) backstop: AtomicU64,
    /// Set by the signal handler: the running fiber keeps the old thread,
    /// and the worker needs a new one.
    pub(crate) handoff: AtomicBool,
}

impl WorkerClock {
    pub(crate) const fn new() -> Self {
        WorkerClock {
            flag: AtomicU32::new(0),
            thread_flag: AtomicPtr::new(std::ptr::null_mut()),
            running: AtomicBool::new(false),
            switches: AtomicU64::new(0),
            task: AtomicU64::new(0),
            idle_ns: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            parks: AtomicU64::new(0),
            thread: AtomicU64::new(0),
            backstop: AtomicU64::new(0),
            handoff: AtomicBool::new(false),
        }
    }

    /// The worker is about to resume fiber `task`: a new slice begins.
    /// Called on the thread running the worker.
    #[inline]
    pub(crate) fn start_slice(&self, task: u64) {
        // Relaxed: the monitor only samples these; a stale view delays a
        // preemption request by one tick at most.
        self.flag.store(0, Ordering::Relaxed);
        set_own_flag(0);
        self.switches.store(
            self.switches.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
        self.task.store(task, Ordering::Relaxed);
        // SeqCst: with the monitor's `parked` flag, a Dekker pair that
        // keeps a parked monitor from missing a busy worker (monitor.rs).
        // Only the idle-to-running step needs it (a fiber switching to the
        // next keeps `running` set): skip the locked store on that path.
        if !self.running.load(Ordering::Relaxed) {
            self.running.store(true, Ordering::SeqCst);
        }
    }

    /// The worker switches to a fiber that goes on in the running slice
    /// (one woken into the LIFO slot): the monitor sees no new slice, and
    /// a request for the slice stays set on the thread.
    #[inline]
    pub(crate) fn continue_slice(&self, task: u64) {
        // Relaxed: see `start_slice`.
        self.task.store(task, Ordering::Relaxed);
    }

    /// The worker found nothing to run and starts looking or sleeping;
    /// pass the result to [`idle_end`](Self::idle_end).
    pub(crate) fn idle_begin(&self) -> std::time::Instant {
        let now = std::time::Instant::now();
        // Relaxed, here and in `idle_end`: statistics, written by this
        // worker only and sampled by `Runtime::metrics`.
        self.idle_since
            .store(crate::debug::clock::instant_to_ns(now), Ordering::Relaxed);
        now
    }

    /// The idle stretch begun at `since` ends.
    pub(crate) fn idle_end(&self, since: std::time::Instant) {
        let ns = since.elapsed().as_nanos() as u64;
        self.idle_since.store(0, Ordering::Relaxed);
        self.idle_ns.store(
            self.idle_ns.load(Ordering::Relaxed).wrapping_add(ns),
            Ordering::Relaxed,
        );
    }

    /// Counts a park on this worker.
    #[inline]
    pub(crate) fn count_park(&self) {
        // Relaxed: a statistic with a single writer, this worker (or the
        // shutdown's temporary worker, whose clock nobody reads).
        self.parks.store(
            self.parks.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }

    /// The worker went back to its scheduler loop.
    #[inline]
    pub(crate) fn idle(&self) {
        // Relaxed: see `start_slice`.
        self.running.store(false, Ordering::Relaxed);
    }
}

/// The address of the calling thread's preemption flag, the byte [`point`]
/// reads.
#[inline]
fn own_flag() -> *mut AtomicU8 {
    fiber_asm::preempt_flag_addr().cast()
}

/// Sets the calling thread's preemption flag.
#[inline]
fn set_own_flag(value: u8) {
    // SAFETY: this thread's flag, a byte of its static TLS block, which
    // lives as long as the thread; `AtomicU8` has the layout of a byte.
    // Relaxed: read by probes on this thread, and by nothing else.
    unsafe { (*own_flag()).store(value, Ordering::Relaxed) };
}

/// Called by a thread as it starts running the worker whose clock is
/// `clock`: from now on the monitor sets this thread's flag.
///
/// The monitor may write the flag of a thread that has stopped running the
/// worker (it read the address just before another thread took over): that
/// write only asks a fiber there to yield, and it lands in memory that is
/// still the old thread's, because the monitor itself joins the threads
/// the backstop started once no clock names them, and the shutdown joins
/// worker threads only after the monitor; a thread's static TLS block
/// stays mapped until it is joined.
pub(crate) fn bind_thread(clock: &WorkerClock) {
    // No fiber of this worker runs on this thread yet.
    set_own_flag(0);
    // Release: pairs with the monitor's Acquire in `request`, which then
    // writes to a flag that exists.
    clock.thread_flag.store(own_flag(), Ordering::Release);
}

/// Called by a thread as it stops running a worker (or the fiber the
/// backstop detached on it has left): probes on it are no-ops again.
pub(crate) fn unbind_thread() {
    set_own_flag(0);
}

/// For the backstop's handler, on the thread whose fiber it detaches from
/// `clock`: the monitor stops setting this thread's flag, and the flag is
/// set, so that the fiber rejoins the runtime at its next probe.
pub(crate) fn detach_thread(clock: &WorkerClock) {
    set_own_flag(1);
    // Relaxed, on success and failure: only this thread's own address is
    // swapped for null, and nothing is published with it; the worker's
    // next thread publishes its own flag with Release when it binds.
    let _ = clock.thread_flag.compare_exchange(
        own_flag(),
        std::ptr::null_mut(),
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
}

/// A thread's preemption flag, for another thread to set: the shutdown's
/// watchdog asks a cancelled fiber that loops in code with probes to yield
/// on the thread that unwinds it.
#[derive(Clone, Copy)]
pub(crate) struct ThreadFlag(*mut AtomicU8);

// SAFETY: the address of a byte that other threads only store to
// atomically (`request`), under that method's contract.
unsafe impl Send for ThreadFlag {}

impl ThreadFlag {
    /// The calling thread's flag.
    pub(crate) fn current() -> Self {
        ThreadFlag(own_flag())
    }

    /// Sets the flag: the fiber running on that thread yields at its next
    /// probe (the next slice it starts clears the flag).
    ///
    /// # Safety
    ///
    /// The flag's thread has not been joined (its static TLS block, which
    /// holds the flag, is mapped until then).
    pub(crate) unsafe fn request(self) {
        // SAFETY: the caller's contract; `AtomicU8` has the layout of a
        // byte. Relaxed: a request seen late is honoured at a later probe.
        unsafe { (*self.0).store(1, Ordering::Relaxed) };
    }
}

/// For the monitor: asks the fiber running on `clock`'s worker to yield.
pub(crate) fn request(clock: &WorkerClock) {
    // Relaxed: a request seen late is honoured at a later probe or switch.
    clock.flag.store(1, Ordering::Relaxed);
    // Acquire: pairs with `bind_thread`'s Release.
    let flag = clock.thread_flag.load(Ordering::Acquire);
    // SAFETY: null, or a thread's flag, still in its static TLS block (see
    // `bind_thread`); `AtomicU8` has the layout of a byte.
    if let Some(flag) = unsafe { flag.as_ref() } {
        // Relaxed: as above.
        flag.store(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A runtime whose monitor asks for nothing while a test runs: the
    /// tests set the flag themselves.
    fn runtime() -> crate::Runtime {
        crate::Builder::new()
            .workers(1)
            .time_slice(std::time::Duration::from_secs(1))
            .build()
            .unwrap()
    }

    /// The flag belongs to the thread: code that must not yield to the
    /// runtime passes a probe while the flag is set.
    #[test]
    fn a_set_flag_is_ignored_on_a_plain_thread() {
        std::thread::spawn(|| {
            set_own_flag(1);
            for _ in 0..1000 {
                point();
            }
            unbind_thread();
            assert_eq!(fiber_asm::preempt_flag(), 0);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_low_level_fiber_inside_a_runtime_fiber_never_yields_to_the_runtime() {
        let rt = runtime();
        let (steps, preemptions) = rt.block_on(|| {
            let task = crate::sched::task::Task::current().unwrap();
            let before = task.preemptions.load(Ordering::Relaxed);
            let mut inner = crate::fiber::Fiber::new(|_, n: u32| {
                // As if the monitor had asked this thread's fiber to yield.
                set_own_flag(1);
                let mut steps = 0;
                while steps < n {
                    point();
                    steps += 1;
                }
                steps
            })
            .unwrap();
            let step = inner.resume(1000).unwrap();
            let steps = match step {
                crate::fiber::Step::Complete(steps) => steps,
                crate::fiber::Step::Yielded(()) => unreachable!(),
            };
            // Back on the runtime fiber, the request is honoured.
            point();
            (steps, task.preemptions.load(Ordering::Relaxed) - before)
        });
        assert_eq!((steps, preemptions), (1000, 1));
    }

    #[test]
    fn a_request_waits_for_the_end_of_no_preempt() {
        let rt = runtime();
        let (inside, after) = rt.block_on(|| {
            let task = crate::sched::task::Task::current().unwrap();
            let before = task.preemptions.load(Ordering::Relaxed);
            let inside = no_preempt(|| {
                set_own_flag(1);
                point();
                task.preemptions.load(Ordering::Relaxed) - before
            });
            (inside, task.preemptions.load(Ordering::Relaxed) - before)
        });
        assert_eq!((inside, after), (0, 1));
    }

    /// The state a monitor request leaves when it lands inside a new
    /// slice's `start_slice`, between its clearing of the clock's flag and
    /// of the thread's: the clock's flag set, the thread's clear. The
    /// monitor asks again a slice later all the same, so a fiber spinning
    /// in code with probes is still preempted.
    #[test]
    fn a_request_landing_inside_start_slice_is_not_lost() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        use std::time::{Duration, Instant};
        let rt = crate::Builder::new()
            .workers(1)
            .time_slice(Duration::from_millis(2))
            .build()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let spinner = {
            let stop = stop.clone();
            rt.spawn(move || {
                let task = crate::sched::task::Task::current().unwrap();
                // SAFETY: the running task, on its own fiber.
                let worker = unsafe { task.worker() };
                let clock = worker.registry.clock(worker.index);
                // The interleaving: worker clears the clock's flag; the
                // monitor sets it, then the thread's; the worker clears
                // the thread's.
                clock.flag.store(1, Ordering::Relaxed);
                set_own_flag(0);
                let start = Instant::now();
                while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_millis(500)
                {
                    point();
                }
                task.preemptions.load(Ordering::Relaxed)
            })
        };
        let queued = rt.spawn(Instant::now);
        let ran_at = queued.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        let preemptions = spinner.join().unwrap();
        assert!(
            preemptions > 0,
            "the spinner was never preempted in 500 ms with a 2 ms slice; \
             the fiber queued behind it ran {:?} after it",
            ran_at.elapsed()
        );
    }
}
