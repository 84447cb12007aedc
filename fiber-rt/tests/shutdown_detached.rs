//! A fiber in a blocking call when its runtime is dropped: the backstop
//! moved it off its worker, out of the shutdown's reach, and the drop
//! returns without it. When its call returns and it switches (a yield, a
//! park) after the drop, it is cancelled on the thread it runs on: its
//! destructors run and its join says it was cancelled. Before, it was
//! queued for workers that had stopped, and its join waited for good.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use fiber_rt::{Builder, JoinHandle, Runtime};

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        // Relaxed: read after the join that follows this drop.
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A runtime whose backstop moves a blocked fiber off its worker soon,
/// and whose drop gives up on such a fiber soon.
fn runtime() -> Runtime {
    Builder::new()
        .workers(1)
        .time_slice(Duration::from_millis(2))
        .shutdown_timeout(Duration::from_millis(50))
        .build()
        .unwrap()
}

/// Spawns `then` after a blocking call that lasts until `release` is
/// sent, and drops the runtime once the backstop has moved the fiber off
/// its worker; then lets the call return. Returns the fiber's handle and
/// whether its destructors ran, once joined.
fn blocked_at_the_drop<T: Send + 'static>(
    then: impl FnOnce() -> T + Send + 'static,
) -> (Result<T, fiber_rt::JoinError>, bool) {
    let rt = runtime();
    let dropped = Arc::new(AtomicBool::new(false));
    let (release, released) = mpsc::channel::<()>();
    let flag = DropFlag(dropped.clone());
    let fiber: JoinHandle<T> = rt.spawn(move || {
        let _flag = flag;
        // A blocking call: a std channel parks the thread, not the fiber.
        released.recv().unwrap();
        then()
    });
    let start = Instant::now();
    while rt.metrics().backstop_handoffs == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never moved off its worker"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(rt);
    assert!(!fiber.is_finished(), "the drop left the fiber running");
    release.send(()).unwrap();
    let joined = fiber
        .join_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("the fiber never finished after the drop"));
    (joined, dropped.load(Ordering::Relaxed))
}

#[test]
fn a_fiber_that_yields_after_the_drop_is_cancelled_and_unwound() {
    let (joined, dropped) = blocked_at_the_drop(|| {
        fiber_rt::yield_now();
        7
    });
    assert!(joined.unwrap_err().is_cancelled());
    assert!(dropped, "its destructors ran");
}

#[test]
fn a_fiber_that_parks_after_the_drop_is_cancelled_and_unwound() {
    let (joined, dropped) = blocked_at_the_drop(|| {
        let (_keep, rx) = fiber_rt::sync::mpsc::unbounded::<u32>();
        rx.recv()
    });
    assert!(joined.unwrap_err().is_cancelled());
    assert!(dropped, "its destructors ran");
}

#[test]
fn a_fiber_that_returns_without_switching_keeps_its_result() {
    let (joined, dropped) = blocked_at_the_drop(|| 7);
    assert_eq!(joined.unwrap(), 7);
    assert!(dropped);
}

#[test]
fn a_destructor_that_waits_for_a_message_after_the_drop_gets_it() {
    /// Waits, as it is dropped, for a message a plain thread sends later:
    /// the wake-up reaches the thread that runs the late cancellation.
    struct WaitsOnDrop(Option<fiber_rt::sync::mpsc::Receiver<u32>>);
    impl Drop for WaitsOnDrop {
        fn drop(&mut self) {
            let rx = self.0.take().unwrap();
            assert_eq!(rx.recv(), Ok(42));
        }
    }
    let (tx, rx) = fiber_rt::sync::mpsc::unbounded::<u32>();
    let (joined, dropped) = blocked_at_the_drop(move || {
        let _waits = WaitsOnDrop(Some(rx));
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            tx.send(42).unwrap();
        });
        fiber_rt::yield_now();
    });
    assert!(joined.unwrap_err().is_cancelled());
    assert!(dropped, "its destructors ran, the waiting one included");
}
