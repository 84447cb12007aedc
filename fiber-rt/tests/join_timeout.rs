//! Timed joins and waits: `JoinHandle::join_timeout` gives the handle back
//! when the fiber is not done in time, and that handle joins again from
//! anywhere; `ScopedJoinHandle::join_timeout`,
//! `BlockingHandle::join_timeout` and `WaitGroup::wait_timeout` likewise.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fiber_rt::sync::{oneshot, WaitGroup};
use fiber_rt::{JoinHandle, Runtime};

fn rt() -> Runtime {
    Runtime::builder().workers(2).build().unwrap()
}

const SHORT: Duration = Duration::from_millis(20);
const LONG: Duration = Duration::from_secs(30);

/// Joins `handle`, which must not be done before `SHORT` has passed, with
/// a short time-out first, then a long one.
fn times_out_then_joins<T>(handle: JoinHandle<T>) -> T {
    let started = Instant::now();
    let handle = match handle.join_timeout(SHORT) {
        Ok(_) => panic!("the fiber waits for a message that has not been sent"),
        Err(handle) => handle,
    };
    assert!(started.elapsed() >= SHORT, "the wait ended early");
    match handle.join_timeout(LONG) {
        Ok(result) => result.unwrap(),
        Err(_) => panic!("the fiber did not finish in {LONG:?}"),
    }
}

#[test]
fn a_join_that_times_out_gives_the_handle_back_to_join_again() {
    let rt = rt();
    // From a fiber (which parks) and from a plain thread (which blocks).
    let (go, wait) = oneshot::channel::<u32>();
    let handle = rt.spawn(move || wait.recv().unwrap() + 1);
    let joined = rt.spawn(move || times_out_then_joins(handle));
    fiber_rt::sleep(SHORT * 3);
    go.send(41).unwrap();
    assert_eq!(joined.join().unwrap(), 42);

    let (go, wait) = oneshot::channel::<u32>();
    let handle = rt.spawn(move || wait.recv().unwrap() * 2);
    let sender = std::thread::spawn(move || {
        std::thread::sleep(SHORT * 3);
        go.send(21).unwrap();
    });
    assert_eq!(times_out_then_joins(handle), 42);
    sender.join().unwrap();
}

#[test]
fn a_zero_time_out_only_looks() {
    let rt = rt();
    rt.block_on(|| {
        let (go, wait) = oneshot::channel::<()>();
        let handle = fiber_rt::spawn(move || wait.recv().unwrap());
        let handle = handle.join_timeout(Duration::ZERO).unwrap_err();
        go.send(()).unwrap();
        // Looks again until the fiber is done.
        let mut handle = handle;
        let started = Instant::now();
        loop {
            match handle.join_timeout(Duration::ZERO) {
                Ok(result) => break result.unwrap(),
                Err(again) => handle = again,
            }
            assert!(started.elapsed() < LONG, "the fiber never finished");
            fiber_rt::yield_now();
        }
    });
}

#[test]
fn a_handle_given_back_joins_from_another_fiber_after_its_first_joiner_moved_on() {
    // The first joiner's waker was in the slot until its time ran out:
    // the fiber must wake the second joiner, whichever way the two
    // joins, the send and the fiber's end interleave.
    let rt = rt();
    for round in 0..200 {
        let (go, wait) = oneshot::channel::<u32>();
        let target = rt.spawn(move || wait.recv().unwrap());
        let first = rt.spawn(move || target.join_timeout(Duration::from_micros(50)));
        let Err(target) = first.join().unwrap() else {
            panic!("the target finished before its message was sent");
        };
        let second = rt.spawn(move || target.join().unwrap());
        if round % 2 == 0 {
            fiber_rt::yield_now();
        }
        go.send(round).unwrap();
        match second.join_timeout(LONG) {
            Ok(result) => assert_eq!(result.unwrap(), round),
            Err(_) => panic!("round {round}: the second joiner was never woken"),
        }
    }
}

#[test]
fn failures_come_through_a_timed_join_and_a_handle_dropped_after_a_time_out_detaches() {
    let rt = rt();
    rt.block_on(|| {
        let (go, wait) = oneshot::channel::<()>();
        let panicking = fiber_rt::spawn(move || {
            wait.recv().unwrap();
            panic!("as planned")
        });
        let panicking = panicking.join_timeout(SHORT).unwrap_err();
        go.send(()).unwrap();
        let error = panicking.join_timeout(LONG).ok().unwrap().unwrap_err();
        assert_eq!(error.panic_message(), Some("as planned"));
    });

    // Dropped after a time-out, the handle leaves the fiber running, and
    // its result is dropped once, when it ends.
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let (go, wait) = oneshot::channel::<()>();
    let (done, finished) = oneshot::channel::<()>();
    let handle = rt.spawn({
        let drops = drops.clone();
        move || {
            wait.recv().unwrap();
            let _ = done.send(());
            Counted(drops)
        }
    });
    drop(handle.join_timeout(SHORT).err().expect("not done yet"));
    go.send(()).unwrap();
    finished.recv().unwrap();
    let started = Instant::now();
    while drops.load(Ordering::SeqCst) == 0 {
        assert!(started.elapsed() < LONG, "the result was never dropped");
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(SHORT);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn a_joiner_cancelled_in_a_timed_join_detaches_the_fiber() {
    let rt = rt();
    let (go, wait) = oneshot::channel::<()>();
    let target = rt.spawn(move || {
        wait.recv().unwrap();
        5
    });
    let target_id = target.id();
    let joiner = rt.spawn(move || target.join_timeout(LONG).is_ok());
    std::thread::sleep(SHORT);
    joiner.cancel();
    assert!(joiner.join().unwrap_err().is_cancelled());
    // The target runs on to its end, its result dropped with nobody to
    // take it.
    go.send(()).unwrap();
    let started = Instant::now();
    while rt.metrics().live > 0 {
        assert!(started.elapsed() < LONG, "fiber {target_id} never finished");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_scoped_join_that_times_out_gives_the_handle_back_and_the_scope_still_waits() {
    let rt = rt();
    let answer = rt.block_on(|| {
        let (go, wait) = oneshot::channel::<u32>();
        let borrowed = 40;
        fiber_rt::scope(|s| {
            let handle = s.spawn(|| wait.recv().unwrap() + borrowed);
            let handle = handle.join_timeout(SHORT).unwrap_err();
            go.send(2).unwrap();
            handle.join_timeout(LONG).ok().unwrap().unwrap()
        })
    });
    assert_eq!(answer, 42);

    // A failure reported by a timed join is the caller's: `scope` does
    // not panic for it.
    let reported = rt.block_on(|| {
        fiber_rt::scope(|s| {
            let handle = s.spawn(|| panic!("reported"));
            match handle.join_timeout(LONG) {
                Ok(result) => result.unwrap_err().panic_message().map(str::to_owned),
                Err(_) => None,
            }
        })
    });
    assert_eq!(reported.as_deref(), Some("reported"));
}

#[test]
fn a_wait_group_wait_times_out_and_then_sees_the_count_reach_zero() {
    let rt = rt();
    let wg = WaitGroup::new();
    wg.add(2);
    let waiting = rt.spawn({
        let wg = wg.clone();
        move || {
            let early = wg.wait_timeout(SHORT);
            let late = wg.wait_timeout(LONG);
            (early, late)
        }
    });
    // A plain thread's wait times out too.
    assert!(!wg.wait_timeout(SHORT));
    wg.done();
    std::thread::sleep(SHORT * 2);
    wg.done();
    assert_eq!(waiting.join().unwrap(), (false, true));
    assert!(wg.wait_timeout(Duration::ZERO));
    // A timed-out waiter left no entry behind for `done` to wake.
    wg.add(1);
    assert!(!wg.wait_timeout(Duration::from_millis(1)));
    wg.done();
    assert!(wg.wait_timeout(LONG));
}

#[test]
fn a_blocking_job_s_timed_join_gives_the_handle_back_until_the_job_is_done() {
    let rt = rt();
    let result = rt.block_on(|| {
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let job = fiber_rt::spawn_blocking(move || {
            wait.recv().unwrap();
            "done"
        });
        let job = job.join_timeout(SHORT).unwrap_err();
        assert!(!job.is_finished());
        go.send(()).unwrap();
        job.join_timeout(LONG).ok().unwrap()
    });
    assert_eq!(result.unwrap(), "done");
}
