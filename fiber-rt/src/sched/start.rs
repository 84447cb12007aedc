//! How a fiber starts: its closure and task laid at the top of its stack,
//! the stack laid out for the first switch, and the function the fiber
//! begins in.

use std::ptr::NonNull;
use std::sync::atomic::Ordering;

use fiber_asm::{Exit, StackPointer};

use super::task::Task;
use crate::stack::{Stack, StackHeader};

/// Moves a task's stashed closure onto a stack (see [`Task::create`]), or,
/// given none, drops it.
pub(super) type PlaceFn = unsafe fn(&Task, Option<&Stack>) -> Option<StackPointer>;

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
    // Fits: checked by `create`.
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

/// [`place`] for a closure stashed in the task's join slot; without a
/// stack, drops the closure instead.
///
/// # Safety
///
/// `task`'s join slot holds a stashed `F`, which this takes.
pub(super) unsafe fn place_stashed<F: FnOnce() + Send + 'static>(
    task: &Task,
    stack: Option<&Stack>,
) -> Option<StackPointer> {
    // SAFETY: forwarded from the caller.
    let f = unsafe { task.join.unstash::<F>() };
    match stack {
        Some(stack) => Some(place(task, stack, f)),
        None => {
            drop(f);
            None
        }
    }
}

/// The first Rust code on a task's stack.
unsafe extern "sysv64" fn start<F: FnOnce() + Send + 'static>(_: usize, data: *mut u8) -> Exit {
    let block = data as *mut Block<F>;
    // SAFETY: written by `Task::create`; taken once, here. The task is kept
    // alive by the worker that resumed us.
    let (func, task) = unsafe { ((*block).func.take(), &*(*block).task) };
    task.mark_started();
    // The spawner left the header alone: the fiber names itself there, so
    // that `Task::current` and overflow messages find it.
    // SAFETY: we run on this stack, so its header is live.
    let header = unsafe { &*StackHeader::current().expect("a task runs on a fiber stack") };
    // Relaxed: read only by this fiber and by signal handlers on the
    // thread running it, after this store in program order.
    header
        .owner
        .store(task as *const Task as *mut (), Ordering::Relaxed);
    if let Some(name) = &task.name {
        // The name lives in the task, which outlives the stack's use by
        // this fiber (the stack is released before the task).
        header.name.set(&**name as *const str);
    }
    // SAFETY: we are the running task.
    unsafe { task.worker() }.run_post();
    // The closure is user code: the backstop may take our worker meanwhile.
    super::thread::leave_runtime();
    if !task.cancelled.load(Ordering::Relaxed) {
        let func = func.expect("a fiber starts once");
        // The spawn wrapper catches the user's panics; this catch only keeps
        // an unwind from ever reaching the assembly below us.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(func)).is_err() {
            crate::sched::abort_with("a fiber's completion handler panicked");
        }
    } else {
        drop(func);
        if let Some(report) = task.cancelled_unrun {
            // SAFETY: on the task's fiber, once (a task starts once), and
            // its closure was dropped unrun just above.
            unsafe { report(task, super::task::Unrun::Cancelled) };
        }
    }
    let entered = super::thread::enter();
    if entered.detached() {
        // Finished on a thread the backstop gave us: back to its old loop
        // frame, which frees the stack. `entered` is forgotten: that
        // thread's loop is runtime code.
        std::mem::forget(entered);
        let to = super::thread::orphan_target(None);
        return Exit {
            to,
            value: super::thread::ORPHANED,
        };
    }
    std::mem::forget(entered); // the next context is runtime code too
                               // SAFETY: still the running task (possibly on another worker by now).
    let worker = unsafe { task.worker() };
    let to = worker.finish_current();
    Exit { to, value: 0 }
}
