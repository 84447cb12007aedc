//! The fiber core against corosensei: switch round trip, create+run+complete
//! on a pooled stack, resident memory of a fiber that touched 4 KiB.

use std::hint::black_box;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult};
use fiber_rt::fiber::{Fiber, Step};

use crate::harness::{ns_per_iter, resident_bytes, Report};

pub fn switch_round_trip() -> Report {
    let mut r = Report::new("switch round trip (resume + suspend)", "ns")
        .target("no slower than corosensei in the same run");
    let iters = 10_000_000;

    let mut fib = Fiber::<u64, u64, ()>::new(|s, mut x| loop {
        x = s.suspend(x + 1);
    })
    .unwrap();
    r.add(
        "fiber",
        ns_per_iter(iters, 5, |n| {
            for i in 0..n {
                match fib.resume(i) {
                    Ok(Step::Yielded(v)) => assert_eq!(black_box(v), i + 1),
                    _ => unreachable!(),
                }
            }
        }),
    );

    let mut co = Coroutine::<u64, u64, ()>::new(|y, mut x| loop {
        x = y.suspend(x + 1);
    });
    r.add(
        "corosensei",
        ns_per_iter(iters, 5, |n| {
            for i in 0..n {
                match co.resume(i) {
                    CoroutineResult::Yield(v) => assert_eq!(black_box(v), i + 1),
                    CoroutineResult::Return(()) => unreachable!(),
                }
            }
        }),
    );
    r
}

pub fn create_complete() -> Report {
    let mut r =
        Report::new("create + run + complete, pooled stack", "ns").target("fiber at most 25 ns");
    let iters = 2_000_000;

    r.add(
        "fiber",
        ns_per_iter(iters, 5, |n| {
            for i in 0..n {
                let mut fib = Fiber::<u64, (), u64>::new(|_, x| x * 2).unwrap();
                match fib.resume(i) {
                    Ok(Step::Complete(v)) => assert_eq!(black_box(v), i * 2),
                    _ => unreachable!(),
                }
            }
        }),
    );

    // corosensei has no pool: hand the same stack from one coroutine to the next.
    let mut spare = Some(DefaultStack::new(256 * 1024).unwrap());
    r.add(
        "corosensei",
        ns_per_iter(iters, 5, |n| {
            for i in 0..n {
                let stack = spare.take().unwrap();
                let mut co = Coroutine::<u64, (), u64, _>::with_stack(stack, |_, x| x * 2);
                match co.resume(i) {
                    CoroutineResult::Return(v) => assert_eq!(black_box(v), i * 2),
                    CoroutineResult::Yield(()) => unreachable!(),
                }
                spare = Some(co.into_stack());
            }
        }),
    );
    r
}

/// Touches about 4 KiB of the fiber's stack, then suspends.
#[inline(never)]
fn touch_4k() -> u8 {
    let mut buf = [0u8; 4000];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = i as u8;
    }
    black_box(&mut buf)[3999]
}

pub fn resident_memory() -> Report {
    let mut r = Report::new(
        "resident memory of a suspended fiber that touched 4 KiB",
        "KiB",
    )
    .target("fiber at most 8 KiB");
    let n = 10_000;

    let before = resident_bytes();
    let fibers: Vec<_> = (0..n)
        .map(|_| {
            let mut f = Fiber::<(), u8, ()>::new(|s, ()| {
                s.suspend(touch_4k());
            })
            .unwrap();
            f.resume(()).unwrap();
            f
        })
        .collect();
    r.add(
        "fiber",
        (resident_bytes() - before) as f64 / n as f64 / 1024.0,
    );
    drop(fibers);

    let before = resident_bytes();
    let coroutines: Vec<_> = (0..n)
        .map(|_| {
            let mut c = Coroutine::<(), u8, ()>::new(|y, ()| {
                y.suspend(touch_4k());
            });
            c.resume(());
            c
        })
        .collect();
    r.add(
        "corosensei",
        (resident_bytes() - before) as f64 / n as f64 / 1024.0,
    );
    drop(coroutines);
    r
}
