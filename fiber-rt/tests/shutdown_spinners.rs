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
