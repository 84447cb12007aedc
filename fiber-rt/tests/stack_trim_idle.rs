//! Stacks that come to the global pool while every runtime is idle (a
//! runtime dropped after a burst hands its workers' stacks over as they
//! exit) are trimmed too: the idle runtimes' monitors come back for them.
//! A test binary of its own: the pool is the process's.

use std::time::{Duration, Instant};

use fiber_rt::stack::pool_stats;
use fiber_rt::Builder;

mod common;
use common::deep_stack_burst;

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
    deep_stack_burst(&busy, FIBERS, 64 << 10, 16);
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
