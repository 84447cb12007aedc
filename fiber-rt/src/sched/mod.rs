//! The scheduler: worker threads, run queues with work stealing, parking
//! and waking of fibers, idle sleep and timers.
//!
//! One concept per file:
//! - [`task`]: a fiber's control block and the park/unpark protocol;
//! - [`start`]: a fiber's first run: its stack laid out (or taken over from
//!   the fiber that finished before it), its entry function;
//! - [`task_ref`]: counted references to a task, its memory recycled;
//! - [`recycle`]: per-thread caches of fixed-size memory blocks;
//! - [`join_slot`]: where a fiber's result waits for its `JoinHandle`;
//! - [`lend`]: a stack lent to a running fiber for one call;
//! - [`worker`]: a worker thread's scheduler loop and its switches;
//! - [`registry`]: what the workers share: queues, config;
//! - [`live`]: the list of live fibers, for shutdown, dumps and metrics;
//! - [`offers`]: graph runs asking idle workers for help;
//! - [`sleep`]: how idle workers sleep and are woken (see its README);
//! - [`timer`]: deadlines for `sleep`;
//! - [`park`]: parking the caller, fiber or thread, and waking it.

pub(crate) mod join_slot;
pub(crate) mod lend;
mod live;
mod live_slots;
pub(crate) mod offers;
mod padded;
pub(crate) mod park;
pub(crate) mod recycle;
pub(crate) mod registry;
pub(crate) mod sleep;
mod start;
pub(crate) mod task;
pub(crate) mod task_ref;
pub(crate) mod thread;
pub(crate) mod timer;
pub(crate) mod worker;
pub(crate) mod yielded;

/// The panic payload that unwinds a cancelled fiber (by its handle, or at
/// shutdown), with the number of its raise. Dropped where the unwind is
/// caught, it tells its fiber that the unwind is over, if no later raise
/// is on its way: a fiber that caught it and goes on is cancelled again at
/// its next switch point.
pub(crate) struct Cancelled(pub(crate) task_ref::TaskRef, pub(crate) u32);

/// A bit of `Task::cancel_raised`: the fiber holds its cancellation while
/// it waits for fibers that borrow from its stack (see [`CancelHold`]).
pub(crate) const CANCEL_HELD: u32 = 1 << 31;

impl Cancelled {
    /// A payload for `task`'s cancellation, raised now: the fiber notes
    /// the raise's number, which no other raise of the process shares
    /// (until 2^31 more have been made; nonzero, and clear of
    /// [`CANCEL_HELD`]).
    pub(crate) fn raise(task: task_ref::TaskRef) -> Cancelled {
        use std::sync::atomic::{AtomicU32, Ordering};
        static RAISES: AtomicU32 = AtomicU32::new(1);
        let number = loop {
            // Relaxed: only distinct numbers are needed.
            let number = RAISES.fetch_add(1, Ordering::Relaxed) & !CANCEL_HELD;
            if number != 0 {
                break number;
            }
        };
        // Relaxed: see `Task::cancel_raised`. A hold stays.
        let held = task.cancel_raised.load(Ordering::Relaxed) & CANCEL_HELD;
        task.cancel_raised.store(number | held, Ordering::Relaxed);
        Cancelled(task, number)
    }
}

impl Drop for Cancelled {
    fn drop(&mut self) {
        // Relaxed: see `Task::cancel_raised`. Only this raise's mark goes:
        // a later raise, on its way while this payload was kept, stays, and
        // so does a hold.
        let _ = self.0.cancel_raised.fetch_update(
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
            |raised| (raised & !CANCEL_HELD == self.1).then_some(raised & CANCEL_HELD),
        );
    }
}

/// Holds the calling fiber's cancellation while it lives: no cancellation
/// is raised in the fiber meanwhile, at any switch point; one asked for
/// meanwhile is raised at a switch point after, as usual. For a wait that must
/// end before the fiber's frames go: a scope's wait for fibers that borrow
/// from them. A cancellation raised there would only be caught again, or
/// raised inside the unwind of one already on its way, which aborts when
/// the thread's count of unwinds says none is (a fiber that began its
/// unwinding on another thread and ended it on this one leaves it off).
/// Does nothing on a plain thread, or when a hold is on already.
pub(crate) struct CancelHold(Option<task_ref::TaskRef>);

impl CancelHold {
    pub(crate) fn new() -> CancelHold {
        use std::sync::atomic::Ordering;
        let Some(task) = task::Task::current() else {
            return CancelHold(None);
        };
        // Relaxed: see `Task::cancel_raised` (the fiber's own thread).
        let before = task.cancel_raised.fetch_or(CANCEL_HELD, Ordering::Relaxed);
        CancelHold((before & CANCEL_HELD == 0).then(|| task.arc()))
    }
}

impl Drop for CancelHold {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            // Relaxed: see `Task::cancel_raised`.
            task.cancel_raised
                .fetch_and(!CANCEL_HELD, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Prints `msg` and aborts: for states the runtime cannot recover from.
pub(crate) fn abort_with(msg: &str) -> ! {
    eprintln!("fatal fiber runtime error: {msg}");
    std::process::abort()
}
