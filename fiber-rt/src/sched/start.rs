//! How a fiber starts: its closure and task laid at the top of its stack,
//! the stack laid out for the first switch, and the function the fiber
//! begins in.

use std::ptr::NonNull;

use fiber_asm::{Exit, StackPointer};

use super::task::Task;
use crate::stack::{Stack, StackHeader};

/// What to do with a task's stashed closure (see [`Task::create`]).
pub(crate) enum Use<'a> {
    /// Move it onto this stack, laid out for the first switch (which
    /// returns the context).
    Place(&'a Stack),
    /// Run it here, on the stack the caller runs on, which the task has
    /// taken over from a fiber that just finished on it (see `finish`).
    RunHere,
    /// Drop it unrun.
    Drop,
}

/// Handles a task's stashed closure as [`Use`] says.
pub(crate) type StashedFn = unsafe fn(&Task, Use<'_>) -> Option<StackPointer>;

/// What the stack holds for a fiber that has not started yet.
pub(super) struct Block<F> {
    func: Option<F>,
    /// The task, whose fiber writes itself into the stack's header when it
    /// starts (so the spawner leaves the header's cache line alone).
    task: *const Task,
}

/// Writes `f` and its task at the top of `stack` and lays the stack out so
/// that the first switch to the returned context runs [`start`].
pub(super) fn place<F: FnOnce() + Send + 'static>(
    task: &Task,
    stack: &Stack,
    f: F,
) -> StackPointer {
    let top = stack.top().as_ptr() as usize;
    let size = std::mem::size_of::<Block<F>>();
    let align = std::mem::align_of::<Block<F>>().max(16);
    // Fits, alignment included: checked by `create`.
    let at = (top - size) & !(align - 1);
    let block = at as *mut Block<F>;
    // SAFETY: `[at, top)` is inside the stack's usable range (checked by
    // `create`), aligned, and unused: the fiber has not run.
    unsafe {
        block.write(Block {
            func: Some(f),
            task,
        })
    };
    // SAFETY: `at` is 16-aligned with stack memory below it; `start::<F>`
    // matches the block type and never unwinds.
    unsafe {
        fiber_asm::init_stack(
            NonNull::new_unchecked(at as *mut u8),
            start::<F>,
            block.cast(),
        )
    }
}

/// The [`StashedFn`] of a closure of type `F` stashed in the task's join
/// slot.
///
/// # Safety
///
/// `task`'s join slot holds a stashed `F`, which this takes. With
/// [`Use::RunHere`], `task` is the running task of the caller's worker and
/// owns the stack the caller runs on.
pub(super) unsafe fn use_stashed<F: FnOnce() + Send + 'static>(
    task: &Task,
    how: Use<'_>,
) -> Option<StackPointer> {
    // SAFETY: forwarded from the caller.
    let f = unsafe { task.join.unstash::<F>() };
    match how {
        Use::Place(stack) => Some(place(task, stack, f)),
        Use::RunHere => {
            // As on a fresh stack: with `fp-control`, the finished
            // fiber's floating-point modes stay with it (without it they
            // are the thread's, and this does nothing).
            fiber_asm::reset_control_words();
            run(task, Some(f));
            None
        }
        Use::Drop => {
            drop(f);
            None
        }
    }
}

/// The first Rust code on a task's stack.
///
/// # Safety
///
/// Entered only by the first switch to a stack laid out by [`place`] for
/// this `F`, with `data` the block written there, whose task is the
/// running task of the worker that switched to it.
unsafe extern "sysv64" fn start<F: FnOnce() + Send + 'static>(_: usize, data: *mut u8) -> Exit {
    let block = data as *mut Block<F>;
    // SAFETY: written by `Task::create`; taken once, here. The task is kept
    // alive by the worker that resumed us.
    let (func, task) = unsafe { ((*block).func.take(), &*(*block).task) };
    // The spawner left the header alone: the fiber names itself there, so
    // that `Task::current` and overflow messages find it.
    // SAFETY: we run on this stack, so its header is live.
    let header = unsafe { &*StackHeader::current().expect("a task runs on a fiber stack") };
    task.claim_header(header);
    // SAFETY: we are the running task.
    unsafe { task.worker() }.run_post();
    run(task, func);
    let task: *const Task = task;
    // SAFETY: the worker that resumed us keeps the task alive (its
    // `current`) until `finish` lets go of it.
    unsafe { finish(task) }
}

/// Runs the closure `func` of the running task `task` (or, if the task was
/// cancelled first, drops it and reports that), and returns in runtime
/// code once it is done.
fn run<F: FnOnce() + Send + 'static>(task: &Task, func: Option<F>) {
    // The closure is user code: the backstop may take our worker meanwhile.
    super::thread::leave_runtime();
    if !task.is_cancelled() {
        let func = func.expect("a fiber starts once");
        // The spawn wrapper catches the user's panics; this catch only keeps
        // an unwind from ever reaching the assembly below us. A
        // cancellation may end here: the runtime's own fibers (a graph's
        // runners) let it through to their base.
        if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(func)) {
            if !payload.is::<super::Cancelled>() {
                crate::sched::abort_with("a fiber's completion handler panicked");
            }
        }
    } else {
        // The closure is dropped by the cancellation's unwind, as a running
        // fiber's locals are: its destructors may wait, with real parks
        // (see `worker::unwind_if_cancelled`), and the unwind ends here.
        // The handle is told below either way.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _func = func;
            super::worker::cancel_now(task)
        }));
        // The closure's destructors may have used fiber-locals.
        crate::local::drop_at_exit();
        if let Some(report) = task.cancelled_unrun {
            // SAFETY: on the task's fiber, once (a task starts once), and
            // its closure was dropped unrun just above.
            unsafe { report(task, super::task::Unrun::Cancelled) };
        }
    }
}

/// Stack in use under `finish` (the finished fiber's first frames, and
/// its closure if that was laid on the stack at spawn) up to which the
/// next fiber may take the stack over: it starts this much deeper than on
/// a fresh stack. A large closure's stack is never taken over.
const TAKE_OVER_DEPTH: usize = 1024;

/// The end of a fiber, `task`, whose closure is done: where to switch to
/// for good. While the next ready fiber on this worker has not started
/// yet and fits this stack, it takes the stack over and runs here, with
/// no switch, no stack handed back and none taken (see
/// `Worker::finish_current`); then its end comes here in turn, at the same
/// depth.
///
/// # Safety
///
/// `task` is the running task of the worker it last ran on, kept alive by
/// that worker's `current`, and it runs on its own stack (none lent).
unsafe fn finish(mut task: *const Task) -> Exit {
    loop {
        let entered = super::thread::enter();
        if entered.detached() {
            // Finished on a thread the backstop gave us: back to its old
            // loop frame, which frees the stack. `entered` is forgotten:
            // that thread's loop is runtime code.
            std::mem::forget(entered);
            let to = super::thread::orphan_target(None);
            return Exit {
                to,
                value: super::thread::ORPHANED,
            };
        }
        // The next context is runtime code too.
        std::mem::forget(entered);
        // SAFETY: still the running task (possibly on another worker by
        // now), alive as the caller promised.
        let worker = unsafe { (*task).worker() };
        let shallow = crate::stack::depth_here().is_some_and(|depth| depth <= TAKE_OVER_DEPTH);
        match worker.finish_current(shallow) {
            super::worker::Finish::Switch(to) => return Exit { to, value: 0 },
            super::worker::Finish::Here(next, stashed) => {
                // The finished task may be gone now; `next` is the running
                // task, kept alive by the worker's `current`, and owns this
                // stack.
                task = next;
                // SAFETY: as just said; its closure is stashed, and this
                // is its first run.
                unsafe { stashed(&*next, Use::RunHere) };
            }
        }
    }
}
