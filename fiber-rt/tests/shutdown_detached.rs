//! A fiber in a blocking call when its runtime is dropped: the backstop
//! moved it off its worker, out of the shutdown's reach, and the drop
//! returns without it. When its call returns and it switches (a yield, a
//! park) after the drop, it is cancelled on the thread it runs on: its
//! destructors run and its join says it was cancelled. Before, it was
//! queued for workers that had stopped, and its join waited for good.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
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

/// Receives, as it is dropped, on a fiber channel; records what it got.
struct WaitsOnDrop(
    Option<fiber_rt::sync::mpsc::Receiver<u32>>,
    Arc<Mutex<Option<String>>>,
);
impl Drop for WaitsOnDrop {
    fn drop(&mut self) {
        let got = self.0.take().unwrap().recv();
        *self.1.lock().unwrap() = Some(format!("{got:?}"));
    }
}

/// Sends, as it is dropped, on a fiber channel.
struct SendsOnDrop(fiber_rt::sync::mpsc::Sender<u32>);
impl Drop for SendsOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(42);
    }
}

/// Busy for a while, then yields, as it is dropped: keeps the shutdown's
/// last turns (give_up) busy.
struct Spins(Arc<AtomicUsize>);
impl Drop for Spins {
    fn drop(&mut self) {
        loop {
            self.0.fetch_add(1, Ordering::SeqCst);
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(100) {
                std::hint::spin_loop();
            }
            fiber_rt::yield_now();
        }
    }
}

#[test]
fn two_fibers_back_while_the_shutdown_gives_up_one_waiting_for_the_other() {
    scenario(true)
}

#[test]
fn two_fibers_back_after_the_drop_one_waiting_for_the_other() {
    scenario(false)
}

/// B and A are in blocking calls, moved off their worker; a third fiber's
/// destructor keeps the shutdown busy in its last turns (`give_up`). A and
/// then B come back, during those turns or after the drop: A's destructor
/// waits for what B's sends, so they must be run side by side (run one
/// after the other, A waited out the whole time-out and was abandoned).
fn scenario(during_give_up: bool) {
    let rt = Builder::new()
        .workers(1)
        .time_slice(Duration::from_millis(2))
        .shutdown_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let (tx, rx) = fiber_rt::sync::mpsc::unbounded::<u32>();
    let got = Arc::new(Mutex::new(None));
    let (rel_b, released_b) = mpsc::channel::<()>();
    let (rel_a, released_a) = mpsc::channel::<()>();
    let blocked = Arc::new(AtomicUsize::new(0));
    let bl = blocked.clone();
    let b = rt.spawn(move || {
        let _s = SendsOnDrop(tx);
        bl.fetch_add(1, Ordering::SeqCst);
        released_b.recv().unwrap();
        fiber_rt::yield_now();
    });
    let bl = blocked.clone();
    let g2 = got.clone();
    let a = rt.spawn(move || {
        let _w = WaitsOnDrop(Some(rx), g2);
        bl.fetch_add(1, Ordering::SeqCst);
        released_a.recv().unwrap();
        fiber_rt::yield_now();
    });
    let start = Instant::now();
    while rt.metrics().backstop_handoffs < 2 || blocked.load(Ordering::SeqCst) < 2 {
        assert!(start.elapsed() < Duration::from_secs(30), "not detached");
        std::thread::sleep(Duration::from_millis(1));
    }
    let turns = Arc::new(AtomicUsize::new(0));
    let t2 = turns.clone();
    let _g = rt.spawn(move || {
        let _s = Spins(t2);
        fiber_rt::sleep(Duration::from_secs(3600));
    });
    std::thread::sleep(Duration::from_millis(20));
    let mut dropper = Some(std::thread::spawn(move || drop(rt)));
    // The second turn of the spinning destructor is the shutdown's give_up.
    while turns.load(Ordering::SeqCst) < 2 {
        std::thread::sleep(Duration::from_millis(1));
    }
    if !during_give_up {
        dropper.take().unwrap().join().unwrap();
    }
    rel_a.send(()).unwrap();
    std::thread::sleep(Duration::from_millis(10));
    rel_b.send(()).unwrap();
    if during_give_up {
        dropper.take().unwrap().join().unwrap();
    }
    assert!(b
        .join_timeout(Duration::from_secs(10))
        .is_ok_and(|r| r.unwrap_err().is_cancelled()));
    assert!(a
        .join_timeout(Duration::from_secs(10))
        .is_ok_and(|r| r.unwrap_err().is_cancelled()));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        got.lock().unwrap().as_deref(),
        Some("Ok(42)"),
        "A's destructor never got B's message"
    );
}

/// As it is dropped: says so, waits for a message, then works for a while
/// without switching.
struct SlowDrop {
    started: mpsc::Sender<()>,
    rx: Option<fiber_rt::sync::mpsc::Receiver<()>>,
}
impl Drop for SlowDrop {
    fn drop(&mut self) {
        self.started.send(()).unwrap();
        let _ = self.rx.take().unwrap().recv();
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(250) {
            std::hint::spin_loop();
        }
    }
}

#[test]
/// A comes back into the runtime just as another fiber finishes, which
/// left the live count the same: the shutdown's patience, measured from
/// that count's last change, had run out, and A was abandoned without
/// ever being cancelled (its destructors never ran).
fn a_fiber_back_while_another_finishes_is_cancelled_not_abandoned() {
    let rt = Builder::new()
        .workers(1)
        .time_slice(Duration::from_millis(2))
        .shutdown_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    // A: in a blocking call at the drop; when it returns, it parks.
    let a_dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(a_dropped.clone());
    let (release, released) = mpsc::channel::<()>();
    let a = rt.spawn(move || {
        let _flag = flag;
        released.recv().unwrap();
        let (_keep, rx) = fiber_rt::sync::mpsc::unbounded::<u32>();
        let _ = rx.recv();
    });
    let start = Instant::now();
    while rt.metrics().backstop_handoffs == 0 {
        assert!(start.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(1));
    }
    // P: its destructor waits for a message, then works 250 ms.
    let (started_tx, started) = mpsc::channel();
    let (p_tx, p_rx) = fiber_rt::sync::mpsc::unbounded::<()>();
    let _p = rt.spawn(move || {
        let _slow = SlowDrop {
            started: started_tx,
            rx: Some(p_rx),
        };
        fiber_rt::sleep(Duration::from_secs(3600));
    });
    std::thread::sleep(Duration::from_millis(20));
    let dropper = std::thread::spawn(move || drop(rt));
    started.recv().unwrap(); // the shutdown's pass has begun: P is cancelled
    std::thread::sleep(Duration::from_millis(100));
    p_tx.send(()).unwrap(); // P's destructor goes on, and works
    std::thread::sleep(Duration::from_millis(50));
    release.send(()).unwrap(); // A comes back into the runtime and parks
    dropper.join().unwrap();
    let joined = a.join_timeout(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(100));
    assert!(joined.is_ok_and(|r| r.unwrap_err().is_cancelled()));
    assert!(
        a_dropped.load(Ordering::SeqCst),
        "A was abandoned: its destructors never ran"
    );
}

#[test]
fn the_drop_does_not_wait_for_a_blocking_call_that_began_just_before_it() {
    // The default slice: the monitor's backstop would only act a slice
    // after the call began, and the drop stops the monitor first.
    let rt = Builder::new().workers(2).build().unwrap();
    let (entered, entering) = mpsc::channel();
    let (release, never) = mpsc::channel::<()>();
    let blocked = rt.spawn(move || {
        entered.send(()).unwrap();
        // A blocking call that outlasts the drop by far.
        let _ = never.recv();
    });
    entering.recv().unwrap();
    let start = Instant::now();
    rt.shutdown_timeout(Duration::from_millis(50));
    let took = start.elapsed();
    // Before, the drop waited until the call returned (here: for good).
    assert!(took < Duration::from_secs(20), "the drop took {took:?}");
    release.send(()).unwrap();
    assert!(blocked.join_timeout(Duration::from_secs(30)).is_ok());
}
