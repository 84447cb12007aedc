//! Preemption: a fiber that runs past its time slice is asked to yield.
//!
//! Two tiers are in place:
//!
//! - **Probes**: `#[fiber]` puts a call to [`point`] at the entry of the
//!   function and at the back-edge of every `loop` and `while` in its body;
//!   call it yourself in long loops of code that is not a `#[fiber]`. A
//!   probe in a loop costs two loads from cache and a branch that is never
//!   taken until the monitor asks for a yield (the header's address is
//!   found once per call, outside the loop); one at a function's entry
//!   costs about ten instructions more, which shows on tiny recursive
//!   functions (`fib` takes 1.4 to 2 times as long here).
//! - **Monitor**: one thread per runtime looks at every worker each half
//!   slice; a worker that has run the same fiber for a slice gets its
//!   preemption flag set, and that fiber yields at its next probe. The
//!   monitor also moves a fiber from a long local queue to the global one
//!   when busy workers' queues differ by two or more, so that spinners
//!   share the workers evenly.
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

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

pub(crate) use backstop::{current_thread, install as install_backstop};
pub(crate) use monitor::Monitor;

use crate::stack::arena::{MAX_SHIFT, MIN_SHIFT};
use crate::stack::header::HEADER_SIZE;
use crate::stack::StackHeader;

/// A safe point: yields if the monitor asked the running fiber to. A no-op
/// on a plain thread, on a low-level [`Fiber`](crate::fiber::Fiber), and
/// inside [`no_preempt`].
#[inline(always)]
pub fn point() {
    let sp = frame_sp();
    let class = (sp >> crate::stack::arena::ARENA_SHIFT) as u32;
    // One comparison: is `sp` inside a stack arena at all?
    if class.wrapping_sub(MIN_SHIFT) <= MAX_SHIFT - MIN_SHIFT {
        let top = (sp | ((1usize << class) - 1)) + 1;
        let header = (top - HEADER_SIZE) as *const StackHeader;
        // Relaxed: a stale value only delays the yield to the next probe.
        // SAFETY: we run on this live fiber stack, so its header is set; the
        // flag it points to is a worker's (as long-lived as the runtime) or static.
        let flag = unsafe { &*(*header).preempt_flag.load(Ordering::Relaxed) };
        let requested = flag.load(Ordering::Relaxed);
        if requested != 0 {
            preempted::<()>();
        }
    }
}

/// The stack pointer, as the probe reads it. Unlike
/// [`current_sp`](crate::stack::header::current_sp) this read is `pure`:
/// the compiler may take one reading for a whole function and hoist the
/// header's address out of its loops, leaving two loads and a branch per
/// probe in a loop. That is sound because a frame stays on one stack all
/// its life (a fiber that migrates takes its stack along), and any address
/// in the frame finds the same header.
#[inline(always)]
fn frame_sp() -> usize {
    let sp: usize;
    // SAFETY: reads rsp; no memory access, no side effects.
    unsafe {
        std::arch::asm!(
            "mov {}, rsp",
            out(reg) sp,
            options(pure, nomem, nostack, preserves_flags)
        )
    };
    sp
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
    crate::sched::worker::switch_current(task, crate::sched::worker::Switch::Preempt);
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
    /// Set by the monitor: the running fiber should yield.
    pub(crate) flag: AtomicU32,
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

    /// The worker is about to resume the fiber whose stack header is
    /// `header`: a new slice begins.
    #[inline]
    pub(crate) fn start_slice(&self, header: &StackHeader, task: u64) {
        // Relaxed: the monitor only samples these; a stale view delays a
        // preemption request by one tick at most.
        self.flag.store(0, Ordering::Relaxed);
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
        header
            .preempt_flag
            .store(std::ptr::addr_of!(self.flag).cast_mut(), Ordering::Relaxed);
    }

    /// The worker switches to a fiber that goes on in the running slice
    /// (one woken into the LIFO slot): the monitor sees no new slice.
    #[inline]
    pub(crate) fn continue_slice(&self, header: &StackHeader, task: u64) {
        // Relaxed: see `start_slice`.
        self.task.store(task, Ordering::Relaxed);
        header
            .preempt_flag
            .store(std::ptr::addr_of!(self.flag).cast_mut(), Ordering::Relaxed);
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
