//! A `JoinHandle` is a `Future`: a poll before the fiber finishes leaves
//! the task's waker, which the fiber wakes once as it finishes; a newer
//! poll replaces the waker; a handle polled and then joined, or dropped,
//! still gets, or drops, the result once.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use fiber_rt::sync::WaitGroup;
use fiber_rt::{block_on_future, Builder, JoinHandle};

/// A waker that counts its wake-ups.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        // Relaxed: a tally, read after the fiber is known to be done.
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

impl Count {
    fn woken(&self) -> usize {
        // Relaxed: see `wake_by_ref`.
        self.0.load(Ordering::Relaxed)
    }
}

fn poll<T>(handle: &mut JoinHandle<T>, waker: &Waker) -> Poll<Result<T, fiber_rt::JoinError>> {
    Pin::new(handle).poll(&mut Context::from_waker(waker))
}

/// A fiber that waits until `gate` is done, then returns `value`.
fn gated(rt: &fiber_rt::Runtime, gate: &WaitGroup, value: u64) -> JoinHandle<u64> {
    let gate = gate.clone();
    rt.spawn(move || {
        gate.wait();
        value
    })
}

#[test]
fn a_fiber_and_a_thread_await_join_handles() {
    let rt = Builder::new().workers(2).build().unwrap();
    let slow = rt.spawn(|| {
        fiber_rt::sleep(Duration::from_millis(20));
        6
    });
    let awaited = rt.block_on(|| block_on_future(slow).unwrap() * 7);
    assert_eq!(awaited, 42);
    let slow = rt.spawn(|| {
        fiber_rt::sleep(Duration::from_millis(20));
        "done"
    });
    // A plain thread blocks in `block_on_future` until the fiber wakes it.
    assert_eq!(block_on_future(slow).unwrap(), "done");
}

#[test]
fn a_pending_poll_is_woken_once_when_the_fiber_finishes() {
    let rt = Builder::new().workers(1).build().unwrap();
    let gate = WaitGroup::new();
    gate.add(1);
    let mut handle = gated(&rt, &gate, 7);
    let count = Arc::new(Count::default());
    let waker = Waker::from(count.clone());
    assert!(poll(&mut handle, &waker).is_pending());
    assert_eq!(count.woken(), 0);
    gate.done();
    wait_until_woken(&count);
    match poll(&mut handle, &waker) {
        Poll::Ready(result) => assert_eq!(result.unwrap(), 7),
        Poll::Pending => panic!("woken, yet pending"),
    }
    assert_eq!(count.woken(), 1);
}

#[test]
fn a_newer_poll_replaces_the_waker() {
    let rt = Builder::new().workers(1).build().unwrap();
    let gate = WaitGroup::new();
    gate.add(1);
    let mut handle = gated(&rt, &gate, 8);
    let (first, second) = (Arc::new(Count::default()), Arc::new(Count::default()));
    assert!(poll(&mut handle, &Waker::from(first.clone())).is_pending());
    assert!(poll(&mut handle, &Waker::from(second.clone())).is_pending());
    gate.done();
    wait_until_woken(&second);
    assert_eq!(first.woken(), 0, "the replaced waker was woken");
    match poll(&mut handle, &Waker::from(second.clone())) {
        Poll::Ready(result) => assert_eq!(result.unwrap(), 8),
        Poll::Pending => panic!("woken, yet pending"),
    }
}

/// Waits (30 s at most) until `count`'s waker has been woken.
fn wait_until_woken(count: &Count) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while count.woken() == 0 {
        assert!(std::time::Instant::now() < deadline, "never woken");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_handle_polled_then_joined_gets_the_result() {
    let rt = Builder::new().workers(1).build().unwrap();
    let gate = WaitGroup::new();
    gate.add(1);
    let mut handle = gated(&rt, &gate, 9);
    let count = Arc::new(Count::default());
    assert!(poll(&mut handle, &Waker::from(count.clone())).is_pending());
    let opener = std::thread::spawn({
        let gate = gate.clone();
        move || {
            std::thread::sleep(Duration::from_millis(20));
            gate.done();
        }
    });
    // The join takes its own waker's place: it is woken, not the task.
    assert_eq!(handle.join().unwrap(), 9);
    opener.join().unwrap();
    assert_eq!(count.woken(), 0);
}

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        // Relaxed: read after the fiber is known to be done.
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn a_handle_polled_then_dropped_drops_the_result_when_it_comes() {
    let rt = Builder::new().workers(1).build().unwrap();
    let gate = WaitGroup::new();
    gate.add(1);
    let dropped = Arc::new(AtomicBool::new(false));
    let finished = WaitGroup::new();
    finished.add(1);
    let mut handle = {
        let (gate, dropped, finished) = (gate.clone(), dropped.clone(), finished.clone());
        rt.spawn(move || {
            gate.wait();
            // Done once the closure returns its result, which the slot
            // then drops (the handle is gone).
            let _finished = Finished(finished);
            DropFlag(dropped)
        })
    };
    struct Finished(WaitGroup);
    impl Drop for Finished {
        fn drop(&mut self) {
            self.0.done();
        }
    }
    let count = Arc::new(Count::default());
    assert!(poll(&mut handle, &Waker::from(count.clone())).is_pending());
    drop(handle);
    gate.done();
    finished.wait();
    // The result is dropped by the fiber's completion, just after.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // Relaxed: see `DropFlag`.
    while !dropped.load(Ordering::Relaxed) {
        assert!(std::time::Instant::now() < deadline, "the result was kept");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(count.woken(), 0, "a dropped handle's task was woken");
}

#[test]
#[should_panic(expected = "used after a poll gave its result")]
fn a_poll_after_the_result_panics() {
    let rt = Builder::new().workers(1).build().unwrap();
    let mut handle = rt.spawn(|| 1);
    let waker = Waker::from(Arc::new(Count::default()));
    while poll(&mut handle, &waker).is_pending() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = poll(&mut handle, &waker);
}

/// Fibers finishing while a thread polls their handles: every result
/// arrives once, and no wake-up is lost (a lost one leaves the thread
/// waiting for good, which the time-out turns into a failure).
#[test]
fn polls_racing_the_fibers_end_lose_no_wake_up() {
    const ROUNDS: u64 = 2000;
    let rt = Builder::new().workers(2).build().unwrap();
    let (tx, rx) = mpsc::channel();
    let handle = rt.handle().clone();
    std::thread::spawn(move || {
        let mut sum = 0;
        for round in 0..ROUNDS {
            let fiber = handle.spawn(move || {
                for _ in 0..round % 3 {
                    fiber_rt::yield_now();
                }
                round
            });
            sum += block_on_future(fiber).unwrap();
        }
        tx.send(sum).unwrap();
    });
    let sum = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("a poll's wake-up was lost");
    assert_eq!(sum, ROUNDS * (ROUNDS - 1) / 2);
}

/// Counts its drops.
struct CountDrops(Arc<AtomicUsize>);

impl Drop for CountDrops {
    fn drop(&mut self) {
        // Relaxed: read on this thread after the drops.
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// A handle whose poll took the result drops nothing when it goes: the
/// result is the caller's alone.
#[test]
fn a_polled_result_is_dropped_once() {
    let rt = Builder::new().workers(1).build().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let mut handle = {
        let drops = drops.clone();
        rt.spawn(move || CountDrops(drops))
    };
    let waker = Waker::from(Arc::new(Count::default()));
    let result = loop {
        if let Poll::Ready(result) = poll(&mut handle, &waker) {
            break result.unwrap();
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    drop(handle);
    // Relaxed: see `CountDrops`.
    assert_eq!(drops.load(Ordering::Relaxed), 0);
    drop(result);
    assert_eq!(drops.load(Ordering::Relaxed), 1);
}

/// A handle polled, then dropped before its fiber finished: the waker it
/// left goes when the fiber does (it was kept with the task, and an async
/// task's waker keeps that task alive).
#[test]
fn a_polled_then_dropped_handle_lets_go_of_its_waker() {
    let rt = Builder::new().workers(2).build().unwrap();
    let count = Arc::new(Count::default());
    let waker = Waker::from(count.clone());
    let gate = WaitGroup::new();
    gate.add(1);
    let handles: Vec<_> = (0..50).map(|_| gated(&rt, &gate, 1)).collect();
    for mut handle in handles {
        assert!(poll(&mut handle, &waker).is_pending());
    }
    // Ours, and one per pending handle, dropped above with its handle.
    gate.done();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while Arc::strong_count(&count) > 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} wakers kept",
            Arc::strong_count(&count) - 2
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(rt);
}
