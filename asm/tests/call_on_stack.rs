//! `call_on_stack` runs a function on another stack and comes back: the
//! function sees its argument and a stack pointer inside the new stack,
//! the caller finds its own frame intact after it, and an unwinder walks
//! from the function's frames back onto the caller's stack.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

use fiber_asm::call_on_stack;

/// What `on_new_stack` saw: its argument and its stack pointer.
static SEEN_ARG: AtomicUsize = AtomicUsize::new(0);
static SEEN_SP: AtomicUsize = AtomicUsize::new(0);

unsafe extern "sysv64" fn on_new_stack(arg: usize) {
    let sp: usize;
    // SAFETY: reads rsp only.
    unsafe { std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack)) };
    SEEN_ARG.store(arg, Ordering::Relaxed);
    SEEN_SP.store(sp, Ordering::Relaxed);
}

/// A 64 KiB stack, 16-byte aligned at the top.
fn new_stack() -> (Vec<u128>, NonNull<u8>) {
    let mut memory = vec![0u128; 4096];
    let top = memory.as_mut_ptr_range().end as *mut u8;
    (memory, NonNull::new(top).unwrap())
}

#[test]
fn the_function_runs_on_the_new_stack_with_its_argument() {
    let (memory, top) = new_stack();
    let mine = [1u64, 2, 3, 4];
    // SAFETY: `memory` is ours, aligned and big enough; the function does
    // not unwind.
    unsafe { call_on_stack(0xfeed, on_new_stack, top) };
    assert_eq!(SEEN_ARG.load(Ordering::Relaxed), 0xfeed);
    let sp = SEEN_SP.load(Ordering::Relaxed);
    let range = memory.as_ptr_range();
    assert!(
        (range.start as usize..range.end as usize).contains(&sp),
        "rsp {sp:#x} is not on the new stack {range:?}"
    );
    // Locals of the caller's frame are intact afterwards.
    assert_eq!(std::hint::black_box(mine), [1, 2, 3, 4]);
}

/// The frames a backtrace taken on the new stack shows.
static TRACE: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

unsafe extern "sysv64" fn capture(_: usize) {
    let trace = std::backtrace::Backtrace::force_capture().to_string();
    *TRACE.lock().unwrap() = trace;
}

#[inline(never)]
fn caller_with_a_distinctive_name() {
    let (_memory, top) = new_stack();
    // SAFETY: as above.
    unsafe { call_on_stack(0, capture, top) };
}

#[test]
fn an_unwinder_walks_back_onto_the_callers_stack() {
    caller_with_a_distinctive_name();
    let trace = TRACE.lock().unwrap().clone();
    assert!(trace.contains("capture"), "{trace}");
    assert!(trace.contains("caller_with_a_distinctive_name"), "{trace}");
    assert!(
        trace.contains("an_unwinder_walks_back_onto_the_callers_stack"),
        "{trace}"
    );
}
