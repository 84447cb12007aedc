//! A fiber takes its stack when it first runs, not when it is spawned: a
//! fiber waiting in a queue holds no stack, and one for which no stack can
//! be had then fails its join with the reason instead of crashing.
//!
//! Each test uses stacks of a size class no other test here uses (the
//! arenas of stack addresses are per class and per process), and counts on
//! a class's arena holding `2^40 / size` stacks.

use std::sync::mpsc as std_mpsc;

use fiber_rt::{FiberBuilder, Runtime};

const GIB: usize = 1 << 30;

/// More fibers with 512 MiB stacks than that class's arena has room for
/// (2048) are spawned before any of them runs: they all run.
#[test]
fn fibers_waiting_to_run_hold_no_stack() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let sum = rt.block_on(|| {
        let handles: Vec<_> = (0..3000u64)
            .map(|i| {
                FiberBuilder::new()
                    .stack_size(GIB / 2)
                    .spawn(move || i)
                    .expect("a spawn takes no stack")
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(sum, (0..3000).sum::<u64>());
}

/// With every 1 GiB stack the arena can map held by a parked fiber, a fiber
/// that needs one more cannot start: its join says why and names it, its
/// closure is dropped unrun, and the worker runs on.
#[test]
fn a_fiber_that_gets_no_stack_fails_its_join_with_the_reason() {
    const ARENA_SLOTS: usize = (1 << 40) / GIB;
    let rt = Runtime::builder().workers(1).build().unwrap();
    rt.block_on(|| {
        let (release_tx, release_rx) = fiber_rt::sync::mpsc::unbounded::<()>();
        let release_rx = std::sync::Arc::new(fiber_rt::sync::Mutex::new(release_rx));
        let (started_tx, started_rx) = fiber_rt::sync::mpsc::unbounded::<()>();
        let holders: Vec<_> = (0..ARENA_SLOTS)
            .map(|_| {
                let release_rx = release_rx.clone();
                let started_tx = started_tx.clone();
                FiberBuilder::new()
                    .stack_size(GIB)
                    .spawn(move || {
                        started_tx.send(()).unwrap();
                        release_rx.lock().recv().unwrap();
                    })
                    .unwrap()
            })
            .collect();
        for _ in 0..ARENA_SLOTS {
            started_rx.recv().unwrap();
        }

        let (dropped_tx, dropped_rx) = std_mpsc::channel::<()>();
        let guard = DropSignal(dropped_tx);
        let starved = FiberBuilder::new()
            .name("starved")
            .stack_size(GIB)
            .spawn(move || {
                let _guard = guard;
                unreachable!("the fiber has no stack to run on")
            })
            .expect("the spawn itself takes no stack");
        let err = starved.join().unwrap_err();
        assert!(err.stack_error().is_some(), "{err}");
        assert!(!err.is_panic() && !err.is_cancelled());
        let message = err.to_string();
        assert!(
            message.starts_with("fiber 'starved' never started: no stack could be had"),
            "{message}"
        );
        assert!(message.contains("full"), "{message}");
        dropped_rx
            .try_recv()
            .expect("the unrun closure was dropped");

        // The worker runs on: the holders finish, and their stacks serve
        // a new fiber.
        for _ in 0..ARENA_SLOTS {
            release_tx.send(()).unwrap();
        }
        for h in holders {
            h.join().unwrap();
        }
        let again = FiberBuilder::new().stack_size(GIB).spawn(|| 7).unwrap();
        assert_eq!(again.join().unwrap(), 7);
    });
}

/// Sends when dropped.
struct DropSignal(std_mpsc::Sender<()>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}
