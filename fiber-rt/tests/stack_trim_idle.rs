//! Stacks that come to the global pool while every runtime is idle (a
//! runtime dropped after a burst hands its workers' stacks over as they
//! exit) are trimmed too: the idle runtimes' monitors come back for them.
//! A test binary of its own: the pool is the process's.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fiber_rt::stack::pool_stats;
use fiber_rt::sync::Barrier;
use fiber_rt::{Builder, FiberBuilder};

/// Touches `depth` KiB of the stack below this frame.
#[inline(never)]
fn dig(depth: usize) -> u8 {
    let mut page = [0u8; 1024];
    black_box(&mut page);
    if depth <= 1 {
        page[7]
    } else {
        dig(depth - 1).wrapping_add(page[depth % 1024])
    }
}

#[test]
fn stacks_pooled_while_the_only_runtime_left_sleeps_are_trimmed() {
    const FIBERS: usize = 200;
    // An idle runtime: its monitor parks with nothing to trim.
    let idle = Builder::new().workers(1).build().unwrap();
    idle.block_on(|| ());
    std::thread::sleep(Duration::from_millis(200));
    // A burst on another runtime, dropped at once: its workers' stacks
    // reach the global pool as they exit.
    let busy = Builder::new().workers(2).build().unwrap();
    // All alive at once, so that each has a stack of its own.
    let barrier = Arc::new(Barrier::new(FIBERS + 1));
    let fibers: Vec<_> = (0..FIBERS)
        .map(|_| {
            let barrier = barrier.clone();
            FiberBuilder::new()
                .stack_size(64 << 10)
                .spawn_on(&busy, move || {
                    let byte = dig(16);
                    barrier.wait();
                    byte
                })
                .unwrap()
        })
        .collect();
    barrier.wait();
    for fiber in fibers {
        fiber.join().unwrap();
    }
    drop(busy);
    assert!(pool_stats().pooled >= FIBERS as u64, "{:?}", pool_stats());
    // Within a few trimming periods (a second each).
    let deadline = Instant::now() + Duration::from_secs(4);
    while pool_stats().trimmed < FIBERS as u64 {
        assert!(
            Instant::now() < deadline,
            "stacks not trimmed 4 s after the burst: {:?}",
            pool_stats()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(idle);
}
