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
/// shutdown). Dropped where the unwind is caught, it tells its fiber that
/// the unwind is over: a fiber that caught it and goes on is cancelled
/// again at its next switch point.
pub(crate) struct Cancelled(pub(crate) task_ref::TaskRef);

impl Drop for Cancelled {
    fn drop(&mut self) {
        // Relaxed: see `Task::cancel_raised`.
        self.0
            .cancel_raised
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Prints `msg` and aborts: for states the runtime cannot recover from.
pub(crate) fn abort_with(msg: &str) -> ! {
    eprintln!("fatal fiber runtime error: {msg}");
    std::process::abort()
}
