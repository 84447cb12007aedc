//! A scheduled fiber: its control block and the park/unpark protocol (how
//! it starts is in [`start`]).

use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use fiber_asm::StackPointer;

use super::join_slot::JoinSlot;
use super::park::Reason;
use super::registry::Registry;
use super::start::{self, StashedFn, Use};
use super::task_ref::{self, TaskRef};
use super::worker::Worker;
use crate::stack::{Stack, StackHeader, StackKind};

/// The fiber runs, or is queued to run, with no wake-up pending.
const RUNNING: u8 = 0;
/// The fiber runs, or is queued, and a wake-up arrived that its next park
/// will consume instead of sleeping.
const NOTIFIED: u8 = 1;
/// The fiber is off its worker and waits for a wake-up.
const PARKED: u8 = 2;
/// The shutdown gave up on the fiber (see [`Task::abandon_if_parked`]): it
/// never runs again, and a wake-up does not reach it, so whoever meant to
/// hand it something (a lock, a notification, a free slot) hands it on.
const ABANDONED: u8 = 3;

/// A cancellation was asked for, by the fiber's handle or the shutdown.
const CANCEL_ASKED: u8 = 1;
/// The shutdown cancelled the fiber (and resumed it, if it was parked).
const CANCEL_SHUTDOWN: u8 = 2;

/// A fiber's control block. Shared ([`TaskRef`]) between the queues, the
/// wait lists that can wake it, and its `JoinHandle`.
///
/// Aligned to a cache line, and 256 bytes long: four lines, each written
/// by every spawn and read by whichever core runs, wakes or joins the
/// fiber (a test keeps it at that size).
#[repr(align(64))]
pub(crate) struct Task {
    /// References to the task: see [`TaskRef`].
    pub(crate) refs: AtomicUsize,
    pub(crate) id: u64,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) registry: Arc<Registry>,
    /// RUNNING, NOTIFIED or PARKED: see [`Task::unpark`].
    state: AtomicU8,
    /// Nonzero once the fiber is cancelled ([`CANCEL_ASKED`], and with
    /// [`CANCEL_SHUTDOWN`] by the shutdown): it unwinds at its next switch
    /// point. Read through [`is_cancelled`](Self::is_cancelled).
    cancelled: AtomicU8,
    /// Nonzero while a cancellation's unwind is on its way (from the
    /// point that raised it until its payload is dropped, where it is
    /// caught): meanwhile the fiber's destructors run, and its switches are
    /// real ones (see `worker::unwind_if_cancelled`). It holds the raise's
    /// number, which its payload carries: a payload caught and kept (by
    /// `scope`, say) while a later cancellation unwinds says nothing of
    /// that one when it is dropped, and clears only its own.
    /// Relaxed throughout: written and read on the fiber's own thread of
    /// the moment, but the payload may be dropped on any thread.
    pub(crate) cancel_raised: AtomicU32,
    /// The thread (its `ThreadState`) on which the fiber switched away
    /// while that thread was unwinding, or null: the fiber parked or
    /// yielded in a destructor during a panic, its own most likely (see
    /// `worker::note_unwinding`). A cancellation raised in there would be
    /// a panic in a destructor during cleanup, which aborts, so none is
    /// raised while this is set: the fiber finishes its unwinding instead.
    pub(crate) unwound_on: Cell<*const super::thread::ThreadState>,
    /// What the fiber is parked on, for dumps ("" while running).
    pub(crate) parked_on: Cell<Reason>,
    /// Where the fiber's context is saved while it is not running.
    sp: Cell<Option<StackPointer>>,
    /// The stack, from the first run until the fiber finishes.
    stack: Cell<Option<Stack>>,
    /// The kind of stack the fiber gets at its first run.
    stack_kind: StackKind,
    /// The worker running the fiber; set each time a worker resumes it.
    pub(crate) worker: Cell<*const Worker>,
    /// Cleared when the fiber has finished (see [`Task::retire`]).
    live: AtomicBool,
    /// When the fiber was spawned, on the coarse clock
    /// ([`coarse_now_ns`](crate::debug::clock::coarse_now_ns)): a few ns
    /// per spawn where `Instant::now()` costs ~20.
    pub(crate) created: u64,
    /// While the fiber is in `sleep`: its deadline
    /// ([`instant_to_ns`](crate::debug::clock::instant_to_ns)), else 0.
    pub(crate) sleep_until: AtomicU64,
    /// Set once the fiber has finished and given its stack back.
    finished: AtomicBool,
    /// Times the fiber yielded at a probe because it was asked to.
    pub(crate) preemptions: AtomicU32,
    /// Told when the fiber parks and resumes (see [`park::HookGuard`]).
    ///
    /// [`park::HookGuard`]: super::park::HookGuard
    pub(crate) park_hook: Cell<Option<*const dyn super::park::ParkHook>>,
    /// The fiber's result, until its handle takes it. Before the fiber
    /// starts, the same room may hold its closure (see [`Task::create`]).
    pub(crate) join: JoinSlot,
    /// For a fiber whose closure waits in `join`'s room: what takes it out,
    /// to lay it on a stack for the first switch, to run it in place on a
    /// stack taken over, or to drop it unrun ([`Use`]). Taken once.
    place: Cell<Option<StashedFn>>,
    /// Set until the fiber's first code runs, for dumps (until then it has
    /// no saved context when its closure waits in the task, like a running
    /// fiber).
    unstarted: AtomicBool,
    /// Set while the fiber runs on a thread the backstop took its worker
    /// from (in a blocking call, or a loop without probes): out of the
    /// runtime's reach, so a shutdown leaves it alone (see
    /// `runtime/shutdown.rs`).
    pub(crate) detached: AtomicBool,
    /// Reports to the fiber's `JoinHandle` that it was cancelled before it
    /// started (called by `start` after dropping the unrun closure).
    pub(super) cancelled_unrun: Option<CancelFn>,
    /// The header of a stack lent to the fiber (see [`lend`]) while it
    /// runs there, else null.
    ///
    /// [`lend`]: super::lend
    pub(super) lent: Cell<*const StackHeader>,
}

// SAFETY: the `Cell` fields are touched only by the thread that currently
// owns the fiber's execution: the worker that resumes it (before the switch)
// or the fiber itself (while it runs). Ownership passes between threads
// through the run queues and the `state` protocol, whose atomics order the
// accesses.
unsafe impl Send for Task {}
// SAFETY: as above; shared access from other threads only uses the atomics
// (`state`, `cancelled`) and immutable fields.
unsafe impl Sync for Task {}

/// Why a fiber's closure was dropped without running.
pub(crate) enum Unrun {
    /// The runtime shut down first.
    Cancelled,
    /// No stack could be had for its first run.
    NoStack(io::Error),
}

/// Reports to a task's `JoinHandle` why it never ran (or never finished:
/// see [`Task::abandon`]).
///
/// # Safety
///
/// Called once, for a task whose closure was dropped without running (so
/// its join slot is not complete): on the task's own fiber, or, if no
/// stack could be had for it, on the thread that found that out; or, by
/// the shutdown, for a fiber it abandons, whose slot is not complete and
/// which never runs again.
pub(crate) type CancelFn = unsafe fn(&Task, Unrun);

/// The error of a spawn whose closure, `room` bytes at the top of its
/// stack, leaves too little of a `stack_kind` stack to run on.
#[cold]
fn closure_too_large(room: usize, stack_kind: StackKind) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "a fiber's closure, which takes {room} bytes at the top of its stack \
             (its alignment included), does not fit its stack of {} bytes",
            stack_kind.usable_size()
        ),
    )
}

impl Task {
    /// A task that will run `f` on a stack of kind `stack_kind`.
    ///
    /// A small closure waits in the task itself, and the fiber takes its
    /// stack only when it first runs ([`Task::take_sp`]), from the cache
    /// of the worker that runs it: a fiber that waits in a queue holds no
    /// stack, and the one it gets is the one that worker's last finished
    /// fiber gave back, warm in its cache. A large closure is written to a
    /// stack taken now. Always inlined into the spawn: it fills in the
    /// task where it is allocated.
    #[inline(always)]
    pub(crate) fn create<F>(
        registry: Arc<Registry>,
        id: u64,
        stack_kind: StackKind,
        name: Option<Arc<str>>,
        f: F,
        cancelled_unrun: Option<CancelFn>,
    ) -> io::Result<TaskRef>
    where
        F: FnOnce() + Send + 'static,
    {
        let stack = if JoinSlot::fits::<F>() {
            // Its 64 bytes fit the smallest stack, with room to run.
            None
        } else {
            // The block starts up to `align - 1` bytes below `top - size`
            // (see `start::place`).
            let room = std::mem::size_of::<start::Block<F>>()
                + std::mem::align_of::<start::Block<F>>().max(16);
            if room + 8192 >= stack_kind.usable_size() {
                return Err(closure_too_large(room, stack_kind));
            }
            Some(stack_kind.take()?)
        };
        let created = crate::debug::clock::coarse_now_ns();
        let task = TaskRef::new(|| Task {
            refs: task_ref::initial_refs(),
            id,
            name,
            registry,
            state: AtomicU8::new(RUNNING),
            cancelled: AtomicU8::new(0),
            cancel_raised: AtomicU32::new(0),
            unwound_on: Cell::new(std::ptr::null()),
            parked_on: Cell::new(&""),
            sp: Cell::new(None),
            stack: Cell::new(None),
            stack_kind,
            worker: Cell::new(std::ptr::null()),
            live: AtomicBool::new(true),
            created,
            sleep_until: AtomicU64::new(0),
            finished: AtomicBool::new(false),
            preemptions: AtomicU32::new(0),
            park_hook: Cell::new(None),
            join: JoinSlot::new(),
            place: Cell::new(None),
            unstarted: AtomicBool::new(true),
            detached: AtomicBool::new(false),
            cancelled_unrun,
            lent: Cell::new(std::ptr::null()),
        });
        match stack {
            None => {
                // SAFETY: the room is unused until the fiber completes, long
                // after `use_stashed` has taken the closure out.
                unsafe { task.join.stash(f) };
                task.place.set(Some(start::use_stashed::<F>));
            }
            Some(stack) => {
                task.sp.set(Some(start::place(&task, &stack, f)));
                task.stack.set(Some(stack));
            }
        }
        Ok(task)
    }

    /// The task whose fiber is running the caller, if any.
    ///
    /// Found from the stack pointer, never from a thread-local: a fiber may
    /// move between threads, its stack does not.
    #[inline]
    pub(crate) fn current() -> Option<&'static Task> {
        let header = StackHeader::current()?;
        // SAFETY: we run on this stack, so it is live; the owner pointer is
        // a live task for as long as its fiber runs, or null.
        let owner = unsafe { (*header).owner.load(Ordering::Relaxed) } as *const Task;
        // SAFETY: non-null owners are tasks kept alive by the worker that
        // runs them (its `current` reference) while the fiber runs, or, for
        // a fiber the backstop detached, by its thread's `orphan` reference.
        unsafe { owner.as_ref() }
    }

    /// The id of the task at `owner`, a stack header's owner pointer (for
    /// the overflow message of an unnamed fiber); `None` for no owner.
    ///
    /// # Safety
    ///
    /// `owner` is null or a live task.
    pub(crate) unsafe fn id_of_owner(owner: *mut ()) -> Option<u64> {
        // SAFETY: the caller's contract.
        unsafe { (owner as *const Task).as_ref() }.map(|task| task.id)
    }

    /// A new reference to this task.
    pub(crate) fn arc(&self) -> TaskRef {
        // SAFETY: every Task is made by `Task::create`, behind a TaskRef, and
        // `self` is a live reference to it.
        unsafe { TaskRef::from_task(self) }
    }

    /// The worker the caller (a fiber) is running on.
    ///
    /// # Safety
    ///
    /// `self` is the running task, called from its own fiber. If the fiber
    /// may have been detached by the backstop, only the worker's immutable
    /// fields (`index`, `registry`) may be used: another thread owns the
    /// rest (`sched::thread::enter` tells which).
    pub(crate) unsafe fn worker(&self) -> &Worker {
        // SAFETY: set by the worker before it resumed us; workers live as
        // long as the runtime.
        unsafe { &*self.worker.get() }
    }

    /// The header of the stack the fiber runs on: a stack lent to it (see
    /// [`lend`](super::lend)) while it runs there, else its own.
    pub(crate) fn running_header(&self) -> &StackHeader {
        // SAFETY: a lent stack's header is live while the pointer is set
        // (`lend` clears it before it gives the stack back).
        unsafe { self.lent.get().as_ref() }.unwrap_or_else(|| self.header())
    }

    /// The header of the task's own stack.
    pub(crate) fn header(&self) -> &StackHeader {
        // SAFETY: peeks at the stack without taking it; only the thread
        // that owns the task's execution calls this: before resuming it, or
        // (the backstop's handler) while it runs on that same thread.
        let stack = unsafe { &*self.stack.as_ptr() };
        stack
            .as_ref()
            .expect("a runnable fiber has its stack")
            .header()
    }

    /// The saved context, taken to resume it. A fiber's first run lays its
    /// stack out here, on the thread that is about to run it.
    #[inline]
    pub(crate) fn take_sp(&self) -> io::Result<StackPointer> {
        match self.sp.take() {
            Some(sp) => Ok(sp),
            None => self.first_run(),
        }
    }

    /// [`take_sp`](Self::take_sp) for a fiber that has not run yet: takes
    /// its stack, from the calling thread's cache first. If none can be
    /// had, the fiber is left as it was, for [`fail_start`](Self::fail_start).
    #[cold]
    #[inline(never)]
    fn first_run(&self) -> io::Result<StackPointer> {
        let stack = self.stack_kind.take()?;
        let place = self
            .place
            .take()
            .expect("a runnable fiber has a saved context or a closure to place");
        // SAFETY: `place` was made for this task's closure type, and the
        // closure waits in the task (stashed once, by `create`).
        let sp = unsafe { place(self, Use::Place(&stack)) }.expect("a closure placed on a stack");
        self.stack.set(Some(stack));
        Ok(sp)
    }

    /// Ends a fiber that could not start because no stack could be had
    /// for it (`error`): its closure is dropped unrun, on the calling
    /// thread's stack, and its handle told why. Called by the worker that
    /// found that out, in its scheduler loop, off any fiber's stack.
    #[cold]
    pub(crate) fn fail_start(&self, error: io::Error) {
        let why = if self.is_cancelled() {
            Unrun::Cancelled
        } else {
            // Relaxed: a statistic.
            let count = self
                .registry
                .stats
                .stackless
                .fetch_add(1, Ordering::Relaxed)
                + 1;
            // Said on standard error too, the first time and then at each
            // power of two: a fiber whose handle was dropped (or that has
            // none) would be lost without a word otherwise.
            if count.is_power_of_two() {
                eprintln!(
                    "fiber runtime: {count} fiber(s) so far could not start: no stack could be had \
                     ({error}); their closures were dropped unrun (see Metrics::stackless)"
                );
            }
            Unrun::NoStack(error)
        };
        self.end_unrun(why);
    }

    /// Ends a fiber that the runtime refused to queue because it has shut
    /// down (see `Live::close`): its closure is dropped unrun, on the
    /// spawner's stack, and its handle told that the shutdown cancelled
    /// it. Called by the spawner, on a fiber that nothing else has seen
    /// run or queued.
    #[cold]
    pub(crate) fn refuse(&self) {
        self.cancel_for_shutdown();
        self.end_unrun(Unrun::Cancelled);
    }

    /// Drops the closure of a fiber that never started and tells its
    /// handle why (`why`).
    fn end_unrun(&self, why: Unrun) {
        if let Some(place) = self.place.take() {
            // A destructor that panics loses only its own unwinding: the
            // handle is told below either way.
            // SAFETY: as in `first_run`; without a stack the closure is
            // dropped, once.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe {
                place(self, Use::Drop)
            }));
        }
        if let Some(report) = self.cancelled_unrun {
            // SAFETY: once (the closure is gone, so this task never starts),
            // for a closure dropped unrun.
            unsafe { report(self, why) };
        }
        self.mark_finished();
    }

    /// Whether this fiber, queued and never run, can take over the stack
    /// of a fiber of kind `kind` that just finished on it: its closure
    /// waits in the task, it needs that kind of stack, and it was not
    /// cancelled (which the usual first run reports).
    pub(crate) fn can_take_over(&self, kind: StackKind) -> bool {
        self.place.get().is_some() && self.stack_kind == kind && !self.is_cancelled()
    }

    /// The kind of stack this fiber runs on.
    pub(crate) fn stack_kind(&self) -> StackKind {
        self.stack_kind
    }

    /// Takes over the stack of `from`, a fiber that finished on it and is
    /// still current on this thread (see [`can_take_over`](Self::can_take_over)),
    /// names this fiber in its header, and returns the closure's handler,
    /// to run it there ([`Use::RunHere`]). `from` is marked finished.
    /// Inline: its one caller is a finishing fiber's hot path, where the
    /// compiler's own choice made it a call after unrelated changes (16
    /// instructions a spawn + join more).
    #[inline]
    pub(crate) fn take_over_stack(&self, from: &Task) -> StashedFn {
        let stack = from.stack.take();
        debug_assert!(stack.is_some() && from.lent.get().is_null());
        self.stack.set(stack);
        debug_assert!(
            self.header().locals.get().is_null(),
            "a fiber's locals outlived it"
        );
        // The header names us before `from` can be freed: what finds the
        // running fiber from the stack pointer never sees a freed task.
        self.claim_header(self.header());
        from.mark_finished();
        self.place
            .take()
            .expect("a fiber that takes a stack over has its closure stashed")
    }

    /// Names this fiber, which is about to run on the stack of `header`,
    /// as that stack's owner.
    pub(crate) fn claim_header(&self, header: &StackHeader) {
        self.mark_started();
        // Relaxed: read only by this fiber and by signal handlers on the
        // thread running it, after this store in program order.
        header
            .owner
            .store(self as *const Task as *mut (), Ordering::Relaxed);
        // The name lives in the task, which outlives the stack's use by
        // this fiber (the stack is released, or taken over, before the
        // task is freed).
        let name: *const str = self.name.as_deref().unwrap_or("");
        header.name.set(name);
    }

    /// Called by the fiber's first code, whichever way its stack was laid
    /// out (here at the first run, or at spawn for a large closure).
    pub(crate) fn mark_started(&self) {
        // Relaxed: a hint for dumps.
        self.unstarted.store(false, Ordering::Relaxed);
    }

    /// Whether the fiber has not run yet (for dumps).
    pub(crate) fn is_unstarted(&self) -> bool {
        // Relaxed: a hint.
        self.unstarted.load(Ordering::Relaxed)
    }

    /// Where to save the context when this fiber switches away.
    pub(crate) fn sp_slot(&self) -> *mut StackPointer {
        self.sp.as_ptr().cast()
    }

    /// Gives the stack back, and counts the fiber finished if its join did
    /// not already. Called after the fiber has switched off it for the last
    /// time.
    pub(crate) fn release_stack(&self) {
        // Dropping the stack resets its header (no owner) for the pool.
        drop(self.stack.take());
        self.mark_finished();
    }

    /// Counts the fiber finished, off its stack for good.
    fn mark_finished(&self) {
        // Release: a dump that sees the flag sees the fiber off its stack.
        self.finished.store(true, Ordering::Release);
        self.retire();
    }

    /// Counts the fiber finished: the live list lets go of it at its
    /// shard's next sweep. Called when the fiber is off its stack for good,
    /// or earlier, for a joined fiber, just before its result is out.
    pub(crate) fn retire(&self) {
        // Release: pairs with the Acquire in `is_live`; a sweep that sees
        // the fiber retired may drop the list's reference.
        self.live.store(false, Ordering::Release);
    }

    /// Whether the fiber still counts as live (not retired).
    pub(crate) fn is_live(&self) -> bool {
        // Acquire: pairs with the Release in `retire`.
        self.live.load(Ordering::Acquire)
    }

    /// Whether the fiber has finished (for dumps).
    pub(crate) fn is_finished(&self) -> bool {
        // Acquire: pairs with the Release in `release_stack`.
        self.finished.load(Ordering::Acquire)
    }

    /// Whether the fiber is parked, off its stack with its context saved
    /// (for dumps; it may be woken right after).
    pub(crate) fn is_parked(&self) -> bool {
        // Acquire: pairs with the AcqRel in `complete_park`, which
        // published the saved context.
        self.state.load(Ordering::Acquire) == PARKED
    }

    /// For the shutdown, about to resume this fiber (off its stack, on no
    /// queue that anyone still takes from): whatever its state, it runs
    /// now. A wake-up pending or a park in place is consumed by the resume
    /// itself, which the fiber's own wait loop takes as a wake-up, spurious
    /// or not.
    pub(crate) fn resume_for_shutdown(&self) {
        // Acquire: sees what a waker wrote before it woke the fiber, and the
        // context the fiber saved when it parked.
        self.state.swap(RUNNING, Ordering::Acquire);
    }

    /// Whether the shutdown should leave this fiber be for now: it was
    /// cancelled (and resumed) already, and waits again in a park (in a
    /// destructor) that nobody has woken yet.
    pub(crate) fn waits_while_cancelled(&self) -> bool {
        self.cancelled_by_shutdown() && self.is_parked()
    }

    /// Whether the fiber is cancelled: it unwinds at its next switch
    /// point, or never runs if it has not started.
    #[inline(always)]
    pub(crate) fn is_cancelled(&self) -> bool {
        // Relaxed: a flag read at every switch point. A cancellation seen
        // a switch late is honoured at the next one; one that must be seen
        // at once (the fiber parked) comes with a wake-up that publishes it.
        self.cancelled.load(Ordering::Relaxed) != 0
    }

    /// Whether the shutdown cancelled the fiber (rather than its handle
    /// alone).
    pub(crate) fn cancelled_by_shutdown(&self) -> bool {
        // Relaxed: set by the shutdown's thread, which alone reads it for
        // its decisions; the fiber reads it for its error message only.
        self.cancelled.load(Ordering::Relaxed) & CANCEL_SHUTDOWN != 0
    }

    /// Cancels the fiber from its handle: it unwinds from its next switch
    /// point (woken first if it is parked), or never runs if it has not
    /// started. Does nothing to a fiber that has finished.
    pub(crate) fn cancel(&self) {
        // Relaxed: the wake-up below publishes the flag to a parked fiber
        // (its AcqRel pairs with the fiber's Acquire as it resumes or
        // consumes the wake-up); a running one reads it at a later switch.
        self.cancelled.fetch_or(CANCEL_ASKED, Ordering::Relaxed);
        // A spurious wake-up to whatever the fiber waits for, which every
        // wait in the runtime tolerates: it goes round its loop and parks
        // again, and that park's switch raises the cancellation.
        self.unpark();
    }

    /// Cancels the fiber for the shutdown, which then resumes it.
    pub(crate) fn cancel_for_shutdown(&self) {
        // Relaxed: the shutdown's thread is the only one running fibers
        // now, and resumes this one itself.
        self.cancelled
            .fetch_or(CANCEL_ASKED | CANCEL_SHUTDOWN, Ordering::Relaxed);
    }

    /// Gives up on a cancelled fiber that waits in a park nobody has woken,
    /// after the shutdown's patience ran out; `false`, doing nothing, if it
    /// does not wait so (it was woken, or keeps running). The one step
    /// from parked to abandoned decides against any waker at once: a
    /// wake-up either came first (and the fiber gets another turn) or
    /// finds it abandoned and is handed on ([`unpark`](Self::unpark)).
    pub(crate) fn abandon_if_parked(&self) -> bool {
        // Acquire: sees the fiber's state as it parked; nothing is
        // published (the fiber never runs again).
        let parked = self
            .state
            .compare_exchange(PARKED, ABANDONED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok();
        if parked {
            self.give_up();
        }
        parked
    }

    /// Gives up on a cancelled fiber whatever it does (it keeps running,
    /// yielding, or is woken again and again), once the shutdown has tried
    /// everything else. A wake-up it got just before is lost with it.
    pub(crate) fn abandon(&self) {
        // Acquire: as in `abandon_if_parked`.
        self.state.swap(ABANDONED, Ordering::Acquire);
        self.give_up();
    }

    /// What abandoning a fiber does: its stack is left mapped and never
    /// reused (frames on it may still be pointed to by other abandoned
    /// fibers), its handle is told it was cancelled, and it no longer
    /// counts as live.
    fn give_up(&self) {
        std::mem::forget(self.stack.take());
        if !self.join.is_complete() {
            if let Some(report) = self.cancelled_unrun {
                // SAFETY: the fiber never runs again, so its closure will
                // not complete the slot, which is not complete now: this is
                // the one completion, as for a closure dropped unrun.
                unsafe { report(self, Unrun::Cancelled) };
            }
        }
        self.retire();
    }

    /// Fiber side of a park: `true` if a wake-up was already pending (it is
    /// consumed, and the caller must not switch away).
    pub(crate) fn consume_notification(&self) -> bool {
        // Acquire: pairs with the Release in `unpark`, so what the waker
        // wrote before waking us is visible.
        self.state
            .compare_exchange(NOTIFIED, RUNNING, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Scheduler side of a park, run once the fiber is off its stack:
    /// `true` if the fiber is now parked, `false` if a wake-up came in
    /// meanwhile and the fiber must be queued again.
    pub(crate) fn complete_park(&self) -> bool {
        // AcqRel: publishes the fiber's saved context to whoever unparks it
        // (Release), and sees a concurrent waker's writes (Acquire).
        match self
            .state
            .compare_exchange(RUNNING, PARKED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(_) => {
                // NOTIFIED: the wake-up is consumed by running again.
                // Acquire, and a swap rather than a store: a second waker
                // may have written NOTIFIED again (Release) since the CAS
                // read it, and what it wrote before must be seen too.
                self.state.swap(RUNNING, Ordering::Acquire);
                false
            }
        }
    }

    /// Wakes the fiber: queues it if it is parked, or leaves a wake-up for
    /// its next park. Never resumes a fiber that is still on its stack: a
    /// fiber is PARKED only once the scheduler has completed the park after
    /// the switch.
    ///
    /// `false` if the fiber was abandoned by the shutdown: it will never
    /// act on the wake-up, so what it was to be handed goes to another.
    pub(crate) fn unpark(&self) -> bool {
        self.unpark_as(false)
    }

    /// [`unpark`](Self::unpark) by a fiber that has finished, for the fiber
    /// joining it: queued behind what waits on this worker rather than in
    /// its LIFO slot (see `Worker::push_joiner`).
    pub(crate) fn unpark_joiner(&self) -> bool {
        self.unpark_as(true)
    }

    fn unpark_as(&self, joiner: bool) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            let next = match state {
                // For good: nothing to write, nobody to wake.
                ABANDONED => return false,
                PARKED => RUNNING,
                RUNNING => NOTIFIED,
                // Already NOTIFIED: still written back, never just read. A
                // plain load would publish nothing: the fiber could consume
                // the older wake-up, miss what this waker wrote before
                // calling, and park for good (a lost wake-up, seen when a
                // stale wake-up was pending).
                _ => NOTIFIED,
            };
            // AcqRel: Release publishes the waker's writes to the fiber
            // (also when it was already notified: the fiber's Acquire in
            // `consume_notification` then reads this write); Acquire sees
            // the saved context of a fiber that parked.
            match self
                .state
                .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) if state == PARKED && joiner => {
                    self.registry.schedule_joiner(self.arc());
                    return true;
                }
                Ok(_) if state == PARKED => {
                    self.registry.schedule(self.arc());
                    return true;
                }
                Ok(_) => return true,
                Err(actual) => state = actual,
            }
        }
    }
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Task;

    /// A field more, and every spawn writes a fifth cache line that the
    /// core running the fiber then reads: find room in the four first.
    #[test]
    fn a_task_takes_four_cache_lines() {
        assert_eq!(std::mem::size_of::<Task>(), 256);
    }
}
