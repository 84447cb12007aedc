//! Dropping a runtime while fibers spin in code with probes: the workers
//! are still asked to yield until they have left their loops, and a
//! cancelled fiber whose destructor spins is asked too, so the shutdown
//! timeout holds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use fiber_rt::{preempt, Builder, Runtime};

/// Drops `rt` on a thread of its own; how long the drop took, or `None` if
/// it took longer than `limit` (the thread is then left behind).
fn timed_drop(rt: Runtime, limit: Duration) -> Option<Duration> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let start = Instant::now();
        drop(rt);
        let _ = tx.send(start.elapsed());
    });
    rx.recv_timeout(limit).ok()
}

#[test]
fn dropping_a_runtime_while_a_fiber_spins_with_probes_returns() {
    let rt = Builder::new()
        .workers(1)
        .time_slice(Duration::from_millis(2))
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let spinner = {
        let stop = stop.clone();
        rt.spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                preempt::point();
            }
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    assert!(rt.metrics().preempt_yields > 0, "the probes work");
    let took = timed_drop(rt, Duration::from_secs(10));
    // Lets a drop that hangs go, so the test process can end.
    stop.store(true, Ordering::Relaxed);
    assert!(
        took.is_some(),
        "the drop waited for a fiber nobody asked to yield"
    );
    assert!(spinner.join().unwrap_err().is_cancelled());
}

#[test]
fn a_cancelled_fiber_whose_destructor_spins_with_probes_is_given_up_on() {
    struct SpinOnDrop(Arc<AtomicBool>);
    impl Drop for SpinOnDrop {
        fn drop(&mut self) {
            while !self.0.load(Ordering::Relaxed) {
                preempt::point();
            }
        }
    }
    let rt = Builder::new()
        .workers(1)
        .time_slice(Duration::from_millis(2))
        .shutdown_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (parked_tx, parked) = mpsc::channel();
    let fiber = {
        let stop = stop.clone();
        rt.spawn(move || {
            let _spin = SpinOnDrop(stop);
            let (_tx, rx) = fiber_rt::sync::oneshot::channel::<()>();
            parked_tx.send(()).unwrap();
            // Parks for good; the shutdown cancels it here.
            let _ = rx.recv();
        })
    };
    parked.recv().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let took = timed_drop(rt, Duration::from_secs(10));
    stop.store(true, Ordering::Relaxed);
    assert!(
        took.is_some(),
        "the drop did not give up on the spinning destructor after its timeout"
    );
    assert!(fiber.join().unwrap_err().is_cancelled());
}

/// Locks a `std` mutex when dropped and works under it, at probes.
struct WorkUnderStdLock(Arc<std::sync::Mutex<u32>>);

impl Drop for WorkUnderStdLock {
    fn drop(&mut self) {
        let mut count = self.0.lock().unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(20) {
            preempt::point();
        }
        *count += 1;
    }
}

#[test]
fn destructors_that_work_under_a_std_lock_do_not_hang_the_drop() {
    // The watchdog cuts the first destructor's turn short while it holds
    // the lock: the shutdown goes on with that fiber, not the next one,
    // whose destructor would block the shutdown's thread on the lock.
    let rt = Builder::new()
        .workers(1)
        .time_slice(Duration::from_millis(2))
        .shutdown_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let lock = Arc::new(std::sync::Mutex::new(0));
    let (parked_tx, parked) = mpsc::channel();
    let fibers: Vec<_> = (0..2)
        .map(|_| {
            let (lock, parked_tx) = (lock.clone(), parked_tx.clone());
            rt.spawn(move || {
                let _work = WorkUnderStdLock(lock);
                let (_tx, rx) = fiber_rt::sync::oneshot::channel::<()>();
                parked_tx.send(()).unwrap();
                let _ = rx.recv();
            })
        })
        .collect();
    parked.recv().unwrap();
    parked.recv().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let took = timed_drop(rt, Duration::from_secs(10));
    assert!(
        took.is_some(),
        "the drop hung on a std lock a preempted fiber held"
    );
    assert_eq!(*lock.lock().unwrap(), 2);
    for fiber in fibers {
        assert!(fiber.join().unwrap_err().is_cancelled());
    }
}

#[test]
fn dropping_a_runtime_whose_worker_moved_to_a_backstop_thread_returns() {
    let rt = Builder::new()
        .workers(1)
        .time_slice(Duration::from_millis(2))
        .build()
        .unwrap();
    // No probes for 100 ms: the backstop moves the worker to a thread of
    // its own, and this one ends at the yield.
    let first_thread = rt
        .spawn(|| {
            let thread = std::thread::current().id();
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(100) {
                std::hint::spin_loop();
            }
            fiber_rt::yield_now();
            thread
        })
        .join()
        .unwrap();
    assert!(rt.metrics().backstop_handoffs > 0, "the worker was moved");
    let stop = Arc::new(AtomicBool::new(false));
    let (on_tx, on) = mpsc::channel();
    let spinner = {
        let stop = stop.clone();
        rt.spawn(move || {
            on_tx.send(std::thread::current().id()).unwrap();
            while !stop.load(Ordering::Relaxed) {
                preempt::point();
            }
        })
    };
    assert_ne!(on.recv().unwrap(), first_thread);
    std::thread::sleep(Duration::from_millis(50));
    let took = timed_drop(rt, Duration::from_secs(10));
    stop.store(true, Ordering::Relaxed);
    assert!(
        took.is_some(),
        "the drop waited for a fiber on the backstop's thread that nobody asked to yield"
    );
    assert!(spinner.join().unwrap_err().is_cancelled());
}
