//! What each OS thread that runs fibers knows about itself, for the
//! preemption backstop: whether it is inside runtime code (then its worker
//! may not be taken from it), and whether its running fiber was detached
//! from its worker.
//!
//! Read by the SIGURG handler on the same thread, so every field is an
//! atomic, a `Cell` or a byte written only with the signal unable to
//! observe a torn state. The two flags read on every switch (in runtime
//! code, detached) are bytes of fiber-asm's static TLS, reached from `fs`
//! afresh each time, so their accessors are inlined; the rest lives in a
//! Rust thread-local reached through non-inlined accessors only: a fiber
//! may move between threads, and the compiler may keep a thread-local's
//! address across a switch.

use std::cell::Cell;
use std::sync::atomic::{compiler_fence, Ordering};

use fiber_asm::StackPointer;

use super::task::Task;
use super::task_ref::TaskRef;
use super::worker::{Switch, Worker};

/// Byte of fiber-asm's thread flags set while the thread runs fiber code
/// outside the runtime. Clear, the thread runs runtime code (scheduler,
/// queues, posts) or no fiber at all: its worker must not be handed to
/// another thread now.
const FIBER_CODE: usize = 0;
/// Byte set while the fiber running on this thread has lost its worker to
/// the backstop: it keeps this thread until its next switch.
const DETACHED: usize = 1;

/// Whether the calling thread runs runtime code (or no fiber): see
/// [`FIBER_CODE`].
#[inline(always)]
pub(crate) fn in_runtime() -> bool {
    fiber_asm::thread_flag::<FIBER_CODE>() == 0
}

/// Whether the fiber running on the calling thread was detached: see
/// [`DETACHED`].
#[inline(always)]
pub(crate) fn detached() -> bool {
    fiber_asm::thread_flag::<DETACHED>() != 0
}

/// Marks the calling thread's fiber detached, or no longer.
#[inline(always)]
pub(crate) fn set_detached(detached: bool) {
    fiber_asm::set_thread_flag::<DETACHED>(u8::from(detached));
}

/// Marks the calling thread as in runtime code, or in fiber code.
#[inline(always)]
fn set_in_runtime(in_runtime: bool) {
    fiber_asm::set_thread_flag::<FIBER_CODE>(u8::from(!in_runtime));
}

pub(crate) struct ThreadState {
    /// The worker this thread runs, or null.
    pub(crate) worker: Cell<*const Worker>,
    /// The detached fiber (a reference counted in its `Arc`).
    pub(crate) orphan: Cell<*const Task>,
    /// Where this thread's scheduler loop waits for the detached fiber.
    pub(crate) orphan_loop: Cell<Option<StackPointer>>,
    /// What the detached fiber asked for when it switched away (`None`:
    /// it finished).
    pub(crate) orphan_switch: Cell<Option<Switch>>,
    /// Set while the thread runs a shutdown's cancellations.
    pub(crate) cancelling: Cell<bool>,
    /// Set while the thread runs its runtime's thread start hook: no wait
    /// for a fiber's end may block it (see `park::refuse_in_hook`).
    pub(crate) in_start_hook: Cell<bool>,
}

thread_local! {
    static STATE: ThreadState = const {
        ThreadState {
            worker: Cell::new(std::ptr::null()),
            orphan: Cell::new(std::ptr::null()),
            orphan_loop: Cell::new(None),
            orphan_switch: Cell::new(None),
            cancelling: Cell::new(false),
            in_start_hook: Cell::new(false),
        }
    };
}

/// The calling thread's state. Never inlined (see the module docs); the
/// reference must not be kept across a switch.
#[inline(never)]
pub(crate) fn state() -> &'static ThreadState {
    // SAFETY: the thread-local lives as long as the thread; callers use the
    // reference only until their next switch, on this same thread.
    STATE.with(|s| unsafe { &*(s as *const ThreadState) })
}

/// Marks the calling thread as inside runtime code until the guard drops,
/// and tells whether the calling fiber has been detached from its worker.
#[inline(always)]
pub(crate) fn enter() -> Entered {
    // A plain load and store, no read-modify-write: only this thread
    // writes the flag and only its own signal handler reads it, so a
    // locked instruction would buy nothing. The store is an `asm!` block
    // the compiler takes for one that may touch any memory, so nothing
    // that follows moves before it.
    let previous = in_runtime();
    set_in_runtime(true);
    // Says where it matters what the `asm!` store already ensures.
    compiler_fence(Ordering::SeqCst);
    Entered {
        previous,
        detached: detached(),
    }
}

/// See [`enter`].
pub(crate) struct Entered {
    previous: bool,
    detached: bool,
}

impl Entered {
    /// Whether the running fiber has lost its worker.
    pub(crate) fn detached(&self) -> bool {
        self.detached
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        // On whatever thread the fiber runs now (it may have moved).
        leave(self.previous);
    }
}

/// Marks the calling thread as running fiber code (outside the runtime).
#[inline(always)]
pub(crate) fn leave_runtime() {
    leave(false);
}

#[inline(always)]
fn leave(previous: bool) {
    // Keeps the runtime code before the store (the store's `asm!` block is
    // a barrier too; this says so where it matters).
    compiler_fence(Ordering::SeqCst);
    set_in_runtime(previous);
}

/// Called by a thread that starts running `worker`'s scheduler loop.
#[inline(never)]
pub(crate) fn bind(worker: &Worker) {
    let s = state();
    set_in_runtime(true);
    s.worker.set(worker);
    crate::preempt::bind_thread(worker.registry.clock(worker.index));
}

/// Marks the calling thread as running a shutdown's cancellations, or no
/// longer.
pub(crate) fn set_cancelling(on: bool) {
    state().cancelling.set(on);
}

/// Whether the calling thread runs (or ran until its fiber was detached)
/// a worker's loop.
#[inline(never)]
pub(crate) fn bound() -> bool {
    let s = state();
    !s.worker.get().is_null() || detached()
}

/// Called when the thread stops running a scheduler loop.
#[inline(never)]
pub(crate) fn unbind() {
    state().worker.set(std::ptr::null());
    crate::preempt::unbind_thread();
}

/// The detached fiber's switch away from this thread: back to the thread's
/// old scheduler loop frame, which queues the fiber through the registry
/// (its worker now belongs to another thread) and ends. The fiber resumes
/// later wherever a worker picks it up.
///
/// # Safety
///
/// `task` is the running, detached fiber on this thread.
pub(crate) unsafe fn switch_detached(task: &Task, how: Switch) {
    let target = orphan_target(Some(how));
    // SAFETY: `target` is this thread's scheduler loop, suspended since it
    // resumed (a fiber that switched to) this one; ORPHANED tells it that
    // it no longer owns its worker.
    unsafe { fiber_asm::switch(task.sp_slot(), target, ORPHANED) };
}

/// Records what the detached fiber asks for (`None`: it finished) and
/// returns its thread's old loop frame to switch to.
pub(crate) fn orphan_target(how: Option<Switch>) -> StackPointer {
    let s = state();
    s.orphan_switch.set(how);
    s.orphan_loop
        .take()
        .expect("a detached fiber's thread kept its loop frame")
}

/// The value a detached fiber hands its thread's old loop frame.
pub(crate) const ORPHANED: usize = 1;

/// Loop side of [`switch_detached`]: takes the detached fiber and what it
/// asked for (`None`: it finished).
pub(crate) fn take_orphan() -> (TaskRef, Option<Switch>) {
    let s = state();
    set_detached(false);
    let task = s.orphan.replace(std::ptr::null());
    // SAFETY: the handler stored a pointer from `TaskRef::into_raw`, once.
    let task = unsafe { TaskRef::from_raw(task) };
    (task, s.orphan_switch.take())
}
