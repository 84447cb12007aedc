//! The low-level `Fiber` on one thread: values in and out, floating point
//! and SIMD state, deep recursion, the stack pool, panics and drops.

use std::cell::Cell;
use std::rc::Rc;

use fiber_rt::fiber::{Fiber, ResumeError, Step};
use fiber_rt::stack::{pool_stats, Stack};

#[test]
fn values_flow_both_ways_until_completion() {
    let mut fib = Fiber::new(|s, first: u64| {
        let (mut a, mut b) = (0u64, first);
        for _ in 0..10 {
            let scale = s.suspend(a);
            (a, b) = (b, (a + b) * scale);
        }
        a
    })
    .unwrap();
    let mut seen = vec![];
    loop {
        match fib.resume(1).unwrap() {
            Step::Yielded(v) => seen.push(v),
            Step::Complete(v) => {
                seen.push(v);
                break;
            }
        }
    }
    assert_eq!(seen, [0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55]);
    assert!(fib.is_finished());
    assert!(matches!(fib.resume(1), Err(ResumeError::Finished { .. })));
}

#[test]
fn floating_point_and_simd_survive_switches() {
    use std::arch::x86_64::*;
    let mut fib = Fiber::new(|s, x: f64| {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        let mut v = unsafe { _mm_set_ps(1.0, 2.0, 3.0, 4.0) };
        let mut acc = x;
        for i in 0..100 {
            acc = acc * 1.5 + s.suspend(acc.sqrt());
            // SAFETY: as above.
            v = unsafe { _mm_add_ps(v, _mm_set1_ps(i as f32)) };
        }
        let mut out = [0f32; 4];
        // SAFETY: `out` has room for four floats.
        unsafe { _mm_storeu_ps(out.as_mut_ptr(), v) };
        (acc, out)
    })
    .unwrap();

    // The same computation on this stack, interleaved with the fiber's.
    let mut acc = 2.0f64;
    let mut expect_yield = acc.sqrt();
    let mut input = 2.0;
    let mut i = 0;
    loop {
        match fib.resume(input).unwrap() {
            Step::Yielded(y) => {
                assert_eq!(y, expect_yield, "step {i}");
                input = i as f64 * 0.25;
                acc = acc * 1.5 + input;
                expect_yield = acc.sqrt();
                i += 1;
            }
            Step::Complete((got, lanes)) => {
                assert_eq!(got, acc);
                let sum: f32 = (0..100).map(|i| i as f32).sum();
                assert_eq!(lanes, [4.0 + sum, 3.0 + sum, 2.0 + sum, 1.0 + sum]);
                break;
            }
        }
    }
}

/// Recurses in 512-byte frames until fewer than `limit` bytes are left above
/// `base`; returns the depth reached.
#[inline(never)]
fn recurse_until(base: usize, limit: usize, depth: u64) -> u64 {
    let frame = std::hint::black_box([depth as u8; 512]);
    if frame.as_ptr() as usize - base < limit {
        return depth;
    }
    recurse_until(base, limit, depth + 1) + u64::from(std::hint::black_box(frame)[0] == 255)
}

#[test]
fn recursion_uses_nearly_the_whole_stack() {
    // A 64 KiB stack, aligned to its size, with a 4 KiB guard page at its
    // base: recurse until fewer than 6 KiB are left above the guard page.
    const SIZE: usize = 64 * 1024;
    let stack = Stack::new(SIZE).unwrap();
    assert_eq!(stack.size(), SIZE);
    let mut fib = Fiber::with_stack(stack, "deep", |_, ()| {
        let here = 0u8;
        let base = std::ptr::addr_of!(here) as usize & !(SIZE - 1);
        recurse_until(base, 4096 + 6 * 1024, 0)
    })
    .unwrap();
    match fib.resume(()).unwrap() {
        // 54 KiB of frames of 512 bytes and up (about 2 KiB in a debug build).
        Step::Complete(depth) => assert!(depth >= 20, "only {depth} frames fit"),
        Step::Yielded(()) => unreachable!(),
    }
}

#[test]
fn completed_fibers_reuse_pooled_stacks() {
    let before = pool_stats();
    let mut total = 0u64;
    for i in 0..100_000u64 {
        let mut fib = Fiber::new(move |_, x: u64| x + i).unwrap();
        match fib.resume(1).unwrap() {
            Step::Complete(v) => total += v,
            Step::Yielded(()) => unreachable!(),
        }
    }
    let after = pool_stats();
    assert_eq!(total, 100_000 + (0..100_000u64).sum::<u64>());
    let hits = after.hits - before.hits;
    let misses = after.misses - before.misses;
    // Other tests run in parallel and take stacks too; ours miss at most once
    // per thread that ran them, so nearly every request is a hit.
    assert!(hits >= 99_000, "only {hits} pool hits ({misses} misses)");
}

#[test]
fn a_panic_comes_out_of_resume_with_its_payload() {
    let mut fib =
        Fiber::<(), (), ()>::with_stack(Stack::new(64 * 1024).unwrap(), "boom", |s, ()| {
            s.suspend(());
            panic!("exploded at step {}", 2);
        })
        .unwrap();
    assert_eq!(fib.resume(()).unwrap(), Step::Yielded(()));
    let err = fib.resume(()).unwrap_err();
    assert_eq!(err.panic_message(), Some("exploded at step 2"));
    assert_eq!(err.to_string(), "fiber 'boom' panicked: exploded at step 2");
    assert!(fib.is_finished());

    // A non-string payload comes back as it was.
    let mut fib = Fiber::<(), (), ()>::new(|_, ()| std::panic::panic_any(42u32)).unwrap();
    match fib.resume(()) {
        Err(ResumeError::Panicked { payload, .. }) => {
            assert_eq!(payload.downcast_ref::<u32>(), Some(&42))
        }
        other => panic!("expected a panic, got {other:?}"),
    }
}

struct Flag(Rc<Cell<u32>>);
impl Drop for Flag {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn dropping_a_suspended_fiber_runs_its_destructors() {
    let drops = Rc::new(Cell::new(0));
    let (outer, inner) = (Flag(drops.clone()), drops.clone());
    let mut fib = Fiber::<(), (), ()>::new(move |s, ()| {
        let _held_by_closure = outer;
        let _on_the_stack = Flag(inner);
        loop {
            s.suspend(());
        }
    })
    .unwrap();
    assert_eq!(fib.resume(()).unwrap(), Step::Yielded(()));
    assert_eq!(drops.get(), 0);
    drop(fib);
    assert_eq!(
        drops.get(),
        2,
        "both the captured and the local value were dropped"
    );
}

#[test]
fn dropping_an_unstarted_fiber_drops_its_closure() {
    let drops = Rc::new(Cell::new(0));
    let flag = Flag(drops.clone());
    let fib = Fiber::<(), (), ()>::new(move |_, ()| drop(flag)).unwrap();
    drop(fib);
    assert_eq!(drops.get(), 1);
}

#[test]
fn a_fiber_that_catches_its_unwind_is_unwound_again() {
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let mut fib = Fiber::<(), (), ()>::new(move |s, ()| {
        let _flag = Flag(d);
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| loop {
            s.suspend(());
        }));
        s.suspend(()); // unwinds again instead of switching
    })
    .unwrap();
    fib.resume(()).unwrap();
    drop(fib);
    assert_eq!(drops.get(), 1);
}

#[test]
fn nested_fibers_resume_each_other() {
    let mut outer = Fiber::<u32, u32, u32>::new(|s, x| {
        let mut inner = Fiber::<u32, u32, u32>::new(|s2, y| s2.suspend(y * 10) + 1).unwrap();
        let Step::Yielded(a) = inner.resume(x).unwrap() else {
            unreachable!()
        };
        let b = s.suspend(a);
        let Step::Complete(c) = inner.resume(b).unwrap() else {
            unreachable!()
        };
        c
    })
    .unwrap();
    assert_eq!(outer.resume(4).unwrap(), Step::Yielded(40));
    assert_eq!(outer.resume(7).unwrap(), Step::Complete(8));
}
