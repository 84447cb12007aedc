//! The preemption flag is one byte per thread: a write through one thread's
//! address shows in that thread's reads and in no other thread's. Each test
//! runs on a thread of its own, whose flag starts clear.

use std::sync::atomic::{AtomicU8, Ordering};

/// Sets the calling thread's flag.
fn set_own(value: u8) {
    // SAFETY: the address of a byte of this thread's static TLS block,
    // which lives as long as the thread; `AtomicU8` has a byte's layout.
    // Relaxed: read back by this same thread.
    unsafe { (*fiber_asm::preempt_flag_addr().cast::<AtomicU8>()).store(value, Ordering::Relaxed) };
}

/// Runs `f` on a new thread and returns what it returns.
fn on_new_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().unwrap()
}

#[test]
fn each_thread_reads_its_own_flag() {
    on_new_thread(|| {
        assert_eq!(fiber_asm::preempt_flag(), 0, "a new thread's flag is clear");
        set_own(1);
        assert_eq!(fiber_asm::preempt_flag(), 1);
        let here = fiber_asm::preempt_flag_addr() as usize;
        let (before, after, there) = on_new_thread(|| {
            let before = fiber_asm::preempt_flag();
            set_own(7);
            let addr = fiber_asm::preempt_flag_addr() as usize;
            (before, fiber_asm::preempt_flag(), addr)
        });
        assert_eq!((before, after), (0, 7));
        assert_ne!(here, there);
        assert_eq!(
            fiber_asm::preempt_flag(),
            1,
            "untouched by the other thread"
        );
    });
}

#[test]
fn another_thread_can_set_a_flag_by_its_address() {
    on_new_thread(|| {
        let addr = fiber_asm::preempt_flag_addr() as usize;
        on_new_thread(move || {
            // SAFETY: the flag of the thread that waits for this one to end.
            let flag = unsafe { &*(addr as *const AtomicU8) };
            // Relaxed: the join orders it before that thread's read.
            flag.store(3, Ordering::Relaxed);
        });
        assert_eq!(fiber_asm::preempt_flag(), 3);
    });
}

#[test]
fn the_branching_probe_calls_back_exactly_while_the_flag_is_set() {
    on_new_thread(|| {
        let calls = std::cell::Cell::new(0);
        let probe = || fiber_asm::if_preempt_requested(|| calls.set(calls.get() + 1));
        // A loop, so that the offset may be kept in a register while the
        // flag changes under it.
        for round in 0..6u8 {
            set_own(round % 2);
            probe();
        }
        assert_eq!(calls.get(), 3, "once per round with the flag set");
        set_own(0);
        probe();
        assert_eq!(calls.get(), 3);
    });
}

#[test]
fn the_thread_flags_start_clear_and_belong_to_their_thread() {
    on_new_thread(|| {
        assert_eq!(
            (fiber_asm::thread_flag::<0>(), fiber_asm::thread_flag::<1>()),
            (0, 0),
            "a new thread's flags are clear"
        );
        fiber_asm::set_thread_flag::<1>(1);
        assert_eq!(fiber_asm::thread_flag::<0>(), 0, "only byte 1 was set");
        assert_eq!(fiber_asm::thread_flag::<1>(), 1);
        let other = on_new_thread(fiber_asm::thread_flag::<1>);
        assert_eq!(other, 0, "another thread's byte is its own");
        assert_eq!(fiber_asm::preempt_flag(), 0, "the preemption flag is apart");
    });
}
