//! A fiber takes its stack when it first runs, not when it is spawned: a
//! fiber waiting in a queue holds no stack, and one for which no stack can
//! be had then fails its join with the reason instead of crashing.
//!
//! The arenas of stack addresses are per size class and per process, and
//! a class's arena holds `2^40 / size` stacks: the tests that fill the
//! 1 GiB arena take turns ([`ARENA`]), and the other uses another class.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fiber_rt::sync::mpsc::{unbounded, Sender};
use fiber_rt::{FiberBuilder, JoinHandle, Runtime};

const GIB: usize = 1 << 30;
/// 1 GiB stacks the arena can map.
const ARENA_SLOTS: usize = (1 << 40) / GIB;

/// Held by a test while it fills the 1 GiB arena.
static ARENA: Mutex<()> = Mutex::new(());

fn arena() -> MutexGuard<'static, ()> {
    ARENA.lock().unwrap_or_else(|e| e.into_inner())
}

/// Fills the 1 GiB arena with fibers on `rt` that have started and wait:
/// they finish once the returned sender has sent them one message each.
fn fill_arena(rt: &Runtime) -> (Sender<()>, Vec<JoinHandle<()>>) {
    fill_arena_but(rt, 0)
}

/// [`fill_arena`], leaving room for `free` stacks.
fn fill_arena_but(rt: &Runtime, free: usize) -> (Sender<()>, Vec<JoinHandle<()>>) {
    let (release_tx, release_rx) = unbounded::<()>();
    let release_rx = Arc::new(fiber_rt::sync::Mutex::new(release_rx));
    let (started_tx, started_rx) = std_mpsc::channel::<()>();
    let holders: Vec<_> = (0..ARENA_SLOTS - free)
        .map(|_| {
            let release_rx = release_rx.clone();
            let started_tx = started_tx.clone();
            FiberBuilder::new()
                .stack_size(GIB)
                .spawn_on(rt, move || {
                    started_tx.send(()).unwrap();
                    release_rx.lock().recv().unwrap();
                })
                .unwrap()
        })
        .collect();
    for _ in 0..holders.len() {
        started_rx.recv().unwrap();
    }
    (release_tx, holders)
}

fn release(release_tx: Sender<()>, holders: Vec<JoinHandle<()>>) {
    for _ in 0..holders.len() {
        release_tx.send(()).unwrap();
    }
    for h in holders {
        h.join().unwrap();
    }
}

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
    let _arena = arena();
    let rt = Runtime::builder().workers(1).build().unwrap();
    let (release_tx, holders) = fill_arena(&rt);
    rt.block_on(|| {
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
    });
    // Counted, with a detached one: its loss is never silent.
    assert_eq!(rt.metrics().stackless, 1);
    drop(
        FiberBuilder::new()
            .stack_size(GIB)
            .spawn_on(&rt, || ())
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while rt.metrics().stackless < 2 {
        assert!(std::time::Instant::now() < deadline, "never counted");
        std::thread::sleep(Duration::from_millis(1));
    }
    // The worker runs on: the holders finish, and their stacks serve a
    // new fiber.
    release(release_tx, holders);
    let again = FiberBuilder::new()
        .stack_size(GIB)
        .spawn_on(&rt, || 7)
        .unwrap();
    assert_eq!(again.join().unwrap(), 7);
    assert_eq!(rt.metrics().stackless, 2);
}

/// A fiber that needs the last stack the arena has, which a fiber that
/// just finished on this worker still holds while the switch away from it
/// is under way, gets it: a first run that finds no stack from a fiber's
/// switch is tried once more from the scheduler loop, after the finished
/// fiber's stack went back to the pool.
#[test]
fn a_fiber_gets_the_stack_that_the_fiber_before_it_just_gave_back() {
    let _arena = arena();
    let rt = Runtime::builder().workers(1).build().unwrap();
    let (release_tx, holders) = fill_arena_but(&rt, 1);
    rt.block_on(|| {
        // A closure this large is laid on its stack at spawn (taking the
        // arena's last one), and that stack is never taken over.
        let big = [7u8; 8 * 1024];
        let first = FiberBuilder::new()
            .stack_size(GIB)
            .spawn(move || std::hint::black_box(big)[100])
            .unwrap();
        let second = FiberBuilder::new().stack_size(GIB).spawn(|| 2u8).unwrap();
        assert_eq!(first.join().unwrap(), 7);
        assert_eq!(second.join().expect("the stack was free by then"), 2);
    });
    release(release_tx, holders);
}

/// A scoped fiber that gets no stack: what its closure borrowed is let go
/// of before `scope` returns, and the failure is never silent (the join
/// reports it; unjoined, `scope` panics).
#[test]
fn a_scoped_fiber_that_gets_no_stack_is_reported_and_lets_go_of_its_borrows_first() {
    static SCOPE_RETURNED: AtomicBool = AtomicBool::new(false);
    static DROPPED_LATE: AtomicBool = AtomicBool::new(false);
    /// Takes its time to drop, and notes whether `scope` returned first.
    struct SlowDrop;
    impl Drop for SlowDrop {
        fn drop(&mut self) {
            std::thread::sleep(Duration::from_millis(50));
            if SCOPE_RETURNED.load(Ordering::SeqCst) {
                DROPPED_LATE.store(true, Ordering::SeqCst);
            }
        }
    }

    let _arena = arena();
    let rt = Runtime::builder()
        .workers(1)
        .stack_size(GIB)
        .build()
        .unwrap();
    let (release_tx, holders) = fill_arena(&rt);
    let data = [1, 2, 3];

    // Joined: the join says why; the scope returns.
    let joined = rt.scope(|s| {
        let data = &data;
        let h = s.spawn(move || data.len());
        h.join().unwrap_err()
    });
    assert!(joined.stack_error().is_some(), "{joined}");

    // Unjoined: `scope` panics, after the closure's captures are gone.
    let unjoined = catch_unwind(AssertUnwindSafe(|| {
        rt.scope(|s| {
            let data = &data;
            let slow = SlowDrop;
            drop(s.spawn(move || {
                let _slow = slow;
                data.len()
            }));
        })
    }));
    SCOPE_RETURNED.store(true, Ordering::SeqCst);
    let payload = unjoined.expect_err("an unjoined scoped fiber that never ran is reported");
    let message = payload.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(message.contains("never ran"), "{message}");
    assert!(!DROPPED_LATE.load(Ordering::SeqCst));

    // The same, with a capture whose destructor panics as the unrun
    // closure is dropped: still counted as a failure, which the join
    // reports and an unjoined handle leaves to `scope`.
    let joined = catch_unwind(AssertUnwindSafe(|| {
        rt.scope(|s| spawn_guarded(s, &data).join().unwrap_err())
    }));
    assert!(
        joined.is_ok(),
        "the scope panicked though the join reported"
    );
    let unjoined = catch_unwind(AssertUnwindSafe(|| {
        rt.scope(|s| drop(spawn_guarded(s, &data)))
    }));
    assert!(
        unjoined.is_err(),
        "the scope returned though its fiber never ran"
    );
    release(release_tx, holders);
}

/// Sends when dropped.
struct DropSignal(std_mpsc::Sender<()>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// Panics as it drops.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("a capture's destructor panicked");
    }
}

/// A scoped fiber borrowing `data` whose closure holds a [`PanicOnDrop`].
fn spawn_guarded<'scope, 'env>(
    s: &'scope fiber_rt::Scope<'scope, 'env>,
    data: &'env [u32; 3],
) -> fiber_rt::ScopedJoinHandle<'scope, usize> {
    let guard = PanicOnDrop;
    s.spawn(move || {
        let _guard = guard;
        data.len()
    })
}
