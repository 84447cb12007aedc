//! A fiber's result reaches its `JoinHandle`, and one that nobody takes is
//! dropped exactly once, whichever side finishes first.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fiber_rt::sync::oneshot;
use fiber_rt::Runtime;

mod common;
use common::Rng;

fn rt() -> Runtime {
    Runtime::builder().workers(2).build().unwrap()
}

/// Counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_result_left_unjoined_is_dropped_once_whichever_side_is_first() {
    let rt = rt();
    let drops = Arc::new(AtomicUsize::new(0));

    // The handle goes first: the fiber drops its own result when it ends.
    let (go, wait) = oneshot::channel::<()>();
    let d = drops.clone();
    let handle = rt.spawn(move || {
        wait.recv().unwrap();
        Counted(d)
    });
    drop(handle);
    go.send(()).unwrap();
    wait_for(|| drops.load(Ordering::SeqCst) == 1);

    // The fiber goes first: the handle drops the result it never took.
    let d = drops.clone();
    let handle = rt.spawn(move || Counted(d));
    wait_for(|| handle.is_finished());
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(handle);
    assert_eq!(drops.load(Ordering::SeqCst), 2);

    // A result that is joined is dropped by its taker, once.
    let d = drops.clone();
    let counted = rt.spawn(move || Counted(d)).join().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    drop(counted);
    assert_eq!(drops.load(Ordering::SeqCst), 3);
}

#[test]
fn large_results_and_over_aligned_results_come_back_whole() {
    #[derive(Clone, Copy, Debug, PartialEq)]
    #[repr(align(64))]
    struct Aligned([u8; 64]);

    let rt = rt();
    let big = rt.block_on(|| {
        let h = fiber_rt::spawn(|| (0..100u64).collect::<Vec<_>>().try_into().unwrap());
        let big: [u64; 100] = h.join().unwrap();
        big
    });
    assert_eq!(big.iter().sum::<u64>(), 4950);
    let aligned = rt.spawn(|| Aligned([7; 64])).join().unwrap();
    assert_eq!(aligned, Aligned([7; 64]));
    assert_eq!(&aligned as *const Aligned as usize % 64, 0);
}

#[test]
fn joins_that_wait_and_joins_that_find_the_result_ready_both_work() {
    let rt = rt();
    let sum: u64 = rt.block_on(|| {
        let slow: Vec<_> = (0..50u64)
            .map(|i| {
                fiber_rt::spawn(move || {
                    fiber_rt::sleep(Duration::from_millis(i % 5));
                    i
                })
            })
            .collect();
        let fast: Vec<_> = (0..50u64).map(|i| fiber_rt::spawn(move || i)).collect();
        fiber_rt::sleep(Duration::from_millis(2));
        slow.into_iter()
            .chain(fast)
            .map(|h| h.join().unwrap())
            .sum()
    });
    assert_eq!(sum, 2 * (0..50).sum::<u64>());
}

fn wait_for(cond: impl Fn() -> bool) {
    for _ in 0..5000 {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("condition not met in 5 s");
}

#[test]
fn closures_too_large_to_wait_in_their_task_run_as_well() {
    let rt = rt();
    // 256 bytes: written to the stack at spawn instead of waiting in the
    // task for the first run.
    let sums: Vec<u64> = rt.block_on(|| {
        let handles: Vec<_> = (0..100u64)
            .map(|i| {
                let big = [i; 32];
                fiber_rt::spawn(move || big.iter().sum::<u64>())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(sums, (0..100u64).map(|i| 32 * i).collect::<Vec<_>>());
}

#[test]
fn a_spawn_that_fails_inside_a_fiber_leaves_the_caller_s_own_join_alone() {
    let rt = rt();
    let outer = rt.spawn(|| {
        // No stack that large: the spawn fails, and its closure is dropped
        // unrun here, on the caller's fiber.
        let failed = fiber_rt::FiberBuilder::new()
            .stack_size(usize::MAX)
            .spawn(|| 7u8);
        assert!(failed.is_err());
        // A closure too large for its stack: an error too, its closure
        // dropped here as well.
        let big = [1u64; 2048];
        let too_large = fiber_rt::FiberBuilder::new()
            .stack_size(16 * 1024)
            .spawn(move || big.len());
        assert_eq!(
            too_large.map(drop).unwrap_err().kind(),
            std::io::ErrorKind::InvalidInput
        );
        fiber_rt::sleep(Duration::from_millis(20));
        [42u64; 16]
    });
    // The caller is still running: its handle has no result yet.
    std::thread::sleep(Duration::from_millis(5));
    assert!(!outer.is_finished());
    assert_eq!(outer.join().unwrap(), [42u64; 16]);
    let m = rt.metrics();
    assert_eq!((m.spawned, m.live), (1, 0), "{m:?}");
}

#[test]
fn every_result_is_dropped_once_under_random_joins_detaches_panics_and_shutdown() {
    let created = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    for seed in 1..=4u64 {
        // More workers than cores: fibers finish, get joined and get
        // dropped on every thread in every order.
        let rt = Runtime::builder().workers(4).build().unwrap();
        let (c, d) = (created.clone(), dropped.clone());
        let kept = rt.block_on(move || {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut kept = Vec::new();
            for i in 0..2000u64 {
                let (c, d) = (c.clone(), d.clone());
                let how = rng.next() % 6;
                let h = fiber_rt::spawn(move || {
                    match how {
                        0 => fiber_rt::yield_now(),
                        1 => fiber_rt::sleep(Duration::from_micros(i % 50)),
                        2 if i % 331 == 0 => panic!("fiber {i} panics on purpose"),
                        _ => {}
                    }
                    c.fetch_add(1, Ordering::SeqCst);
                    Counted(d)
                });
                match rng.next() % 4 {
                    0 => drop(h),        // detached at once
                    1 => drop(h.join()), // joined
                    2 => kept.push(h),   // left to the runtime's drop
                    _ => {
                        fiber_rt::yield_now();
                        drop(h) // detached, maybe after it finished
                    }
                }
            }
            kept.len()
        });
        assert!(kept > 0);
        // Fibers still running or queued are cancelled by the drop; every
        // result made is dropped by then, exactly once.
        drop(rt);
        assert_eq!(
            created.load(Ordering::SeqCst),
            dropped.load(Ordering::SeqCst),
            "seed {seed}"
        );
    }
}

/// A result nobody will take is dropped by its fiber; a destructor that
/// parks there is cancelled by the shutdown like any parked fiber, and the
/// runtime's drop returns (it used to abort the process).
#[test]
fn a_dropped_result_whose_destructor_parks_is_cancelled_at_shutdown() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use fiber_rt::sync::mpsc;

    struct ParksOnDrop(mpsc::Receiver<()>, Arc<AtomicUsize>);
    impl Drop for ParksOnDrop {
        fn drop(&mut self) {
            self.1.fetch_add(1, Ordering::SeqCst);
            // Parks for good: the sender lives on, and never sends.
            let _ = self.0.recv();
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }

    let rt = fiber_rt::Builder::new().workers(2).build().unwrap();
    let (tx, rx) = mpsc::unbounded::<()>();
    let (go_tx, go_rx) = mpsc::unbounded::<()>();
    let drops = Arc::new(AtomicUsize::new(0));
    let counted = drops.clone();
    let handle = rt.spawn(move || {
        let _ = go_rx.recv();
        ParksOnDrop(rx, counted)
    });
    drop(handle);
    go_tx.send(()).unwrap();
    let start = Instant::now();
    while drops.load(Ordering::SeqCst) == 0 {
        assert!(start.elapsed() < Duration::from_secs(20), "never dropped");
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(rt);
    // The destructor's wait was cancelled: it never got past the wait.
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(tx);
}

#[test]
fn a_join_error_converts_into_errors_that_cross_threads() {
    let rt = rt();
    let error = rt.spawn(|| panic!("out of cheese")).join().unwrap_err();
    // `?` into `Box<dyn Error + Send + Sync>` needs the error to be both.
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(error);
    let shared = Arc::new(boxed);
    let message = std::thread::spawn({
        let shared = shared.clone();
        move || shared.to_string()
    })
    .join()
    .unwrap();
    assert!(message.ends_with("panicked: out of cheese"), "{message}");
    let io = std::io::Error::other(rt.spawn(|| panic!("again")).join().unwrap_err());
    assert!(io.to_string().ends_with("panicked: again"), "{io}");
    // The payload still comes out whole, to resume the panic with.
    let payload = rt
        .spawn(|| std::panic::panic_any(7u32))
        .join()
        .unwrap_err()
        .into_panic()
        .unwrap();
    assert_eq!(payload.downcast_ref::<u32>(), Some(&7));
}
