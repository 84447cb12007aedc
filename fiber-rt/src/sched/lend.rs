//! A stack lent to a running fiber for one call.
//!
//! A fiber that must give some code more stack than it has left (the
//! caller of a graph run, which runs nodes that were each promised a
//! stack of the runtime's default size) takes a stack from the pool and
//! runs that code on it, as part of itself: no new fiber, no queue, no
//! park and wake. While it runs there, the lent stack's header names the
//! fiber as its owner, so everything that finds the current fiber from
//! the stack pointer (parking, preemption, an overflow message) finds it;
//! the fiber may park and move to another thread meanwhile. The stack goes
//! back to the pool when the call returns.

use std::io;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::thread::Result as ThreadResult;

use super::task::Task;
use crate::stack::Stack;

/// Runs `f` as part of the running fiber `task`, on a stack of `size`
/// bytes (with a guard page if `guarded`) lent for the call. A panic in
/// `f` comes out of this call; only the stack could not be had is an
/// `Err`.
pub(crate) fn lend<F: FnOnce() -> R, R>(
    task: &Task,
    size: usize,
    guarded: bool,
    f: F,
) -> io::Result<R> {
    let stack = Stack::with_guard(size, guarded)?;
    let own = task.header();
    let lent = stack.header();
    // Relaxed: the stack is this thread's (fresh from the pool), and only
    // code running on it reads the owner.
    lent.owner
        .store(task as *const Task as *mut (), Ordering::Relaxed);
    lent.name.set(own.name.get());
    // A `no_preempt` region the fiber is in goes on over the call.
    lent.no_preempt.set(own.no_preempt.get());
    task.lent.set(lent);
    let mut call = Call {
        f: Some(f),
        result: None,
    };
    // SAFETY: the stack is ours until it is dropped below, its top is
    // 64-byte aligned, and `run_call` catches every panic. `call` outlives
    // the call, and only `run_call` touches it meanwhile.
    unsafe {
        fiber_asm::call_on_stack(
            &mut call as *mut Call<F, R> as usize,
            run_call::<F, R>,
            stack.top(),
        )
    };
    task.lent.set(std::ptr::null());
    drop(stack);
    match call.result.expect("the lent call ran") {
        Ok(value) => Ok(value),
        Err(payload) => resume_unwind(payload),
    }
}

/// The call and, once it has run, its outcome.
struct Call<F, R> {
    f: Option<F>,
    result: Option<ThreadResult<R>>,
}

/// Runs the call at `call` on the lent stack.
///
/// # Safety
///
/// `call` is the address of a live `Call<F, R>` that nothing else touches
/// until this returns.
unsafe extern "sysv64" fn run_call<F: FnOnce() -> R, R>(call: usize) {
    // SAFETY: the caller's contract.
    let call = unsafe { &mut *(call as *mut Call<F, R>) };
    let f = call.f.take().expect("a lent call runs once");
    call.result = Some(catch_unwind(AssertUnwindSafe(f)));
}
