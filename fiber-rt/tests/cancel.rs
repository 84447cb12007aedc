//! `JoinHandle::cancel`: a cancelled fiber unwinds from its next switch
//! point wherever it is (parked, sleeping, spinning, not started yet), its
//! destructors run, what it held or was handed goes on to others, and its
//! join reports the cancellation, unless it finished first.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::Duration;

use fiber_rt::dag::GraphBuilder;
use fiber_rt::sync::{mpsc, Barrier, Condvar, Mutex, Semaphore};
use fiber_rt::{Builder, FiberBuilder, JoinError, JoinHandle};

/// Sets its flag when dropped: tells that a fiber's destructors ran.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

/// Joins `handle` from a plain thread, failing the test instead of hanging
/// it if the fiber does not finish within a minute.
fn join_within_a_minute<T: Send + 'static>(handle: JoinHandle<T>) -> Result<T, JoinError> {
    let (tx, rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(handle.join());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the cancelled fiber finished")
}

#[test]
fn a_fiber_parked_on_a_channel_unwinds_and_runs_its_destructors() {
    let rt = Builder::new().workers(2).build().unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::unbounded::<u32>();
    let (started_tx, started) = std_mpsc::channel();
    let guard = SetOnDrop(dropped.clone());
    let waiting = rt.spawn(move || {
        let _guard = guard;
        started_tx.send(()).unwrap();
        rx.recv()
    });
    started.recv().unwrap();
    std::thread::sleep(Duration::from_millis(10));
    waiting.cancel();
    let error = join_within_a_minute(waiting).unwrap_err();
    assert!(error.is_cancelled());
    assert!(!error.is_panic());
    assert!(dropped.load(SeqCst), "the fiber's destructors ran");
    // The receiver went with the fiber: the channel is closed.
    assert!(tx.send(1).is_err());
}

#[test]
fn a_cancelled_fibers_error_says_its_handle_cancelled_it() {
    let rt = Builder::new().workers(1).build().unwrap();
    let handle = FiberBuilder::new()
        .name("reader")
        .spawn_on(&rt, || loop {
            fiber_rt::sleep(Duration::from_secs(3600));
        })
        .unwrap();
    handle.cancel();
    let error = join_within_a_minute(handle).unwrap_err();
    assert_eq!(error.fiber_name(), "reader");
    assert_eq!(
        error.to_string(),
        "fiber 'reader' was cancelled by its handle"
    );
}

#[test]
fn a_sleeping_fiber_is_cancelled_at_once() {
    let rt = Builder::new().workers(2).build().unwrap();
    let sleeper = rt.spawn(|| fiber_rt::sleep(Duration::from_secs(3600)));
    std::thread::sleep(Duration::from_millis(10));
    sleeper.cancel();
    assert!(join_within_a_minute(sleeper).unwrap_err().is_cancelled());
}

#[test]
fn a_spinning_fiber_is_cancelled_at_its_next_probe() {
    let rt = Builder::new().workers(2).build().unwrap();
    let spins = Arc::new(AtomicUsize::new(0));
    let spinner = {
        let spins = spins.clone();
        rt.spawn(move || loop {
            spins.fetch_add(1, SeqCst);
            fiber_rt::preempt::point();
        })
    };
    while spins.load(SeqCst) == 0 {
        std::thread::yield_now();
    }
    spinner.cancel();
    assert!(join_within_a_minute(spinner).unwrap_err().is_cancelled());
}

#[test]
fn a_fiber_cancelled_before_it_starts_never_runs_and_drops_its_closure() {
    let rt = Builder::new().workers(1).build().unwrap();
    let (ran, dropped) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (ran2, guard) = (ran.clone(), SetOnDrop(dropped.clone()));
    let error = rt.block_on(move || {
        // One worker, which runs us: the child waits in the queue until
        // we switch.
        let child = fiber_rt::spawn(move || {
            let _guard = guard;
            ran2.store(true, SeqCst);
        });
        child.cancel();
        child.join().unwrap_err()
    });
    assert!(error.is_cancelled());
    assert!(
        !ran.load(SeqCst),
        "a fiber cancelled before its start never runs"
    );
    assert!(dropped.load(SeqCst), "its closure was dropped");
}

#[test]
fn a_fiber_that_finished_first_keeps_its_result() {
    let rt = Builder::new().workers(2).build().unwrap();
    let handle = rt.spawn(|| 42);
    while !handle.is_finished() {
        std::thread::yield_now();
    }
    handle.cancel();
    assert_eq!(handle.join().unwrap(), 42);
}

#[test]
fn catching_the_cancellation_does_not_stop_it() {
    let rt = Builder::new().workers(2).build().unwrap();
    let caught = Arc::new(AtomicUsize::new(0));
    let (started_tx, started) = std_mpsc::channel();
    let stubborn = {
        let caught = caught.clone();
        rt.spawn(move || {
            started_tx.send(()).unwrap();
            let first = catch_unwind(AssertUnwindSafe(|| loop {
                fiber_rt::yield_now();
            }));
            assert!(first.is_err(), "the loop only ends by an unwind");
            caught.fetch_add(1, SeqCst);
            // The payload is dropped: the next switch point raises it anew.
            drop(first);
            loop {
                fiber_rt::yield_now();
            }
        })
    };
    started.recv().unwrap();
    stubborn.cancel();
    assert!(join_within_a_minute(stubborn).unwrap_err().is_cancelled());
    assert_eq!(caught.load(SeqCst), 1);
}

#[test]
fn a_cancelled_mutex_waiter_passes_the_lock_on() {
    // The waiter is cancelled at varying moments around the release that
    // hands it the lock: either way, the next waiter gets it.
    let rt = Builder::new().workers(2).build().unwrap();
    for round in 0..200u64 {
        let lock = Arc::new(Mutex::new(0u64));
        let held = lock.lock();
        let (queued_tx, queued) = std_mpsc::channel();
        let cancelled = {
            let (lock, queued_tx) = (lock.clone(), queued_tx.clone());
            rt.spawn(move || {
                queued_tx.send(()).unwrap();
                *lock.lock() += 1;
            })
        };
        queued.recv().unwrap();
        let next = {
            let lock = lock.clone();
            rt.spawn(move || {
                queued_tx.send(()).unwrap();
                *lock.lock() += 10;
            })
        };
        queued.recv().unwrap();
        for _ in 0..(round * 7919) % 2048 {
            std::hint::spin_loop();
        }
        if round % 2 == 0 {
            cancelled.cancel();
            drop(held);
        } else {
            drop(held);
            cancelled.cancel();
        }
        let first = join_within_a_minute(cancelled);
        join_within_a_minute(next).expect("the next waiter got the lock");
        let total = *lock.lock();
        match first {
            Ok(()) => assert_eq!(total, 11, "round {round}"),
            Err(error) => {
                assert!(error.is_cancelled());
                assert_eq!(total, 10, "round {round}");
            }
        }
    }
}

#[test]
fn a_cancelled_semaphore_waiter_loses_no_permits() {
    let rt = Builder::new().workers(2).build().unwrap();
    for round in 0..200u64 {
        let gate = Arc::new(Semaphore::new(2));
        let held = gate.try_acquire_many(2).unwrap();
        let (queued_tx, queued) = std_mpsc::channel();
        let waiter = {
            let (gate, queued_tx) = (gate.clone(), queued_tx.clone());
            rt.spawn(move || {
                queued_tx.send(()).unwrap();
                // Given back when the fiber returns, if it gets them.
                let _permits = gate.acquire_many(2);
            })
        };
        queued.recv().unwrap();
        let next = {
            let gate = gate.clone();
            rt.spawn(move || {
                queued_tx.send(()).unwrap();
                drop(gate.acquire());
            })
        };
        queued.recv().unwrap();
        for _ in 0..(round * 7919) % 2048 {
            std::hint::spin_loop();
        }
        waiter.cancel();
        drop(held);
        // The waiter was handed both permits before its cancellation was
        // seen (and returned with them), or unwound: out of the queue, or
        // giving back what it had been handed.
        if let Err(error) = join_within_a_minute(waiter) {
            assert!(error.is_cancelled());
        }
        join_within_a_minute(next).expect("the next waiter got a permit");
        assert_eq!(gate.available_permits(), 2, "round {round}");
    }
}

#[test]
fn a_fiber_joining_another_is_cancelled_and_the_other_runs_on() {
    let rt = Builder::new().workers(2).build().unwrap();
    let (release_tx, release) = mpsc::unbounded::<()>();
    let (done_tx, done) = std_mpsc::channel();
    let (joining_tx, joining) = std_mpsc::channel();
    let joiner = rt.spawn(move || {
        let worker = fiber_rt::spawn(move || {
            release.recv().unwrap();
            done_tx.send(()).unwrap();
        });
        joining_tx.send(()).unwrap();
        worker.join()
    });
    joining.recv().unwrap();
    std::thread::sleep(Duration::from_millis(10));
    joiner.cancel();
    assert!(join_within_a_minute(joiner).unwrap_err().is_cancelled());
    release_tx.send(()).unwrap();
    done.recv_timeout(Duration::from_secs(60))
        .expect("the joined fiber was not cancelled with its joiner");
}

#[test]
fn a_fiber_running_a_graph_is_cancelled_out_of_a_waiting_node() {
    let rt = Builder::new().workers(2).build().unwrap();
    let (_tx, rx) = mpsc::unbounded::<u32>();
    let (started_tx, started) = std_mpsc::channel();
    let caller = rt.spawn(move || {
        let mut graph = GraphBuilder::new();
        graph.node("waits", move || {
            started_tx.send(()).unwrap();
            let _ = rx.recv();
        });
        fiber_rt::run(graph.build().unwrap())
    });
    started.recv().unwrap();
    std::thread::sleep(Duration::from_millis(10));
    caller.cancel();
    assert!(join_within_a_minute(caller).unwrap_err().is_cancelled());
}

/// Locks a shared counter when dropped, and counts itself there.
struct CountOnDrop(Arc<Mutex<u32>>);

impl Drop for CountOnDrop {
    fn drop(&mut self) {
        *self.0.lock() += 1;
    }
}

#[test]
fn a_cancelled_fiber_may_wait_in_its_destructors() {
    let rt = Builder::new().workers(2).build().unwrap();
    let count = Arc::new(Mutex::new(0u32));
    // Held by this thread while the fiber unwinds: its destructor parks.
    let held = count.lock();
    let (_tx, rx) = mpsc::unbounded::<()>();
    let (started_tx, started) = std_mpsc::channel();
    let waiting = {
        let count = count.clone();
        rt.spawn(move || {
            let _count = CountOnDrop(count);
            started_tx.send(()).unwrap();
            let _ = rx.recv();
        })
    };
    started.recv().unwrap();
    waiting.cancel();
    std::thread::sleep(Duration::from_millis(20));
    assert!(!waiting.is_finished(), "the destructor waits for the lock");
    drop(held);
    assert!(join_within_a_minute(waiting).unwrap_err().is_cancelled());
    assert_eq!(*count.lock(), 1);
}

#[test]
fn a_cancellation_racing_the_fibers_end_either_wins_or_loses_whole() {
    let rt = Builder::new().workers(2).build().unwrap();
    let (mut cancelled, mut finished) = (0, 0);
    for round in 0..2000u64 {
        let handle = rt.spawn(move || {
            for _ in 0..round % 4 {
                fiber_rt::yield_now();
            }
            7
        });
        for _ in 0..(round * 7919) % 1024 {
            std::hint::spin_loop();
        }
        handle.cancel();
        match join_within_a_minute(handle) {
            Ok(value) => {
                assert_eq!(value, 7);
                finished += 1;
            }
            Err(error) => {
                assert!(error.is_cancelled(), "round {round}: {error}");
                cancelled += 1;
            }
        }
    }
    assert_eq!(cancelled + finished, 2000);
}

#[test]
fn a_cancelled_barrier_waiter_no_longer_counts_as_arrived() {
    let rt = Builder::new().workers(2).build().unwrap();
    let barrier = Arc::new(Barrier::new(2));
    let first = {
        let barrier = barrier.clone();
        rt.spawn(move || {
            barrier.wait();
        })
    };
    std::thread::sleep(Duration::from_millis(10));
    first.cancel();
    assert!(join_within_a_minute(first).unwrap_err().is_cancelled());
    let second = {
        let barrier = barrier.clone();
        rt.spawn(move || {
            barrier.wait();
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        !second.is_finished(),
        "the cancelled party's arrival was taken back"
    );
    barrier.wait();
    join_within_a_minute(second).unwrap();
}

#[test]
fn a_cancelled_condvar_waiter_passes_its_notification_on() {
    let rt = Builder::new().workers(2).build().unwrap();
    for round in 0..200u64 {
        let state = Arc::new((Mutex::new(false), Condvar::new()));
        let (queued_tx, queued) = std_mpsc::channel();
        let wait = |state: Arc<(Mutex<bool>, Condvar)>, queued_tx: std_mpsc::Sender<()>| {
            move || {
                let (ready, cv) = &*state;
                let mut ready = ready.lock();
                queued_tx.send(()).unwrap();
                while !*ready {
                    ready = cv.wait(ready);
                }
            }
        };
        let cancelled = rt.spawn(wait(state.clone(), queued_tx.clone()));
        queued.recv().unwrap();
        let other = rt.spawn(wait(state.clone(), queued_tx));
        queued.recv().unwrap();
        // Both wait once the lock is free again.
        drop(state.0.lock());
        for _ in 0..(round * 7919) % 2048 {
            std::hint::spin_loop();
        }
        match round % 3 {
            0 => {
                *state.0.lock() = true;
                state.1.notify_one();
                cancelled.cancel();
            }
            1 => {
                *state.0.lock() = true;
                cancelled.cancel();
                state.1.notify_one();
            }
            _ => {
                // Notified, the waiter parks to lock again, and is
                // cancelled there: out of the wait, it still passes on.
                let mut ready = state.0.lock();
                *ready = true;
                state.1.notify_one();
                std::thread::sleep(Duration::from_micros(round % 100));
                cancelled.cancel();
                drop(ready);
            }
        }
        match join_within_a_minute(cancelled) {
            // It took the notification and returned: the other one still
            // needs one.
            Ok(()) => state.1.notify_one(),
            // Cancelled, whenever: the notification it was given, if any,
            // went on to the other one.
            Err(error) => assert!(error.is_cancelled()),
        }
        join_within_a_minute(other).expect("the notification reached the other waiter");
    }
}

/// Records the threads its drop starts and ends on, sleeping (a real
/// park) in between.
struct SleepOnDrop(Arc<std::sync::Mutex<Option<(ThreadId, ThreadId)>>>);

impl Drop for SleepOnDrop {
    fn drop(&mut self) {
        let before = std::thread::current().id();
        fiber_rt::sleep(Duration::from_millis(2));
        *self.0.lock().unwrap() = Some((before, std::thread::current().id()));
    }
}

/// Parks in its drop.
struct ParkOnDrop;

impl Drop for ParkOnDrop {
    fn drop(&mut self) {
        fiber_rt::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_cancellation_on_a_thread_whose_unwind_count_is_off_unwinds_once() {
    // A cancelled fiber whose destructor parks may end its unwind on
    // another thread than it began on: that thread counts one unwind too
    // few from then on. A cancellation raised there once again must still
    // not be raised a second time in its own unwind (which would abort).
    let rt = Builder::new().workers(2).build().unwrap();
    let mut skewed = None;
    for _ in 0..500 {
        let seen = Arc::new(std::sync::Mutex::new(None));
        let (_tx, rx) = mpsc::unbounded::<()>();
        let guard = SleepOnDrop(seen.clone());
        let (started_tx, started) = std_mpsc::channel();
        let handle = rt.spawn(move || {
            let _guard = guard;
            started_tx.send(()).unwrap();
            let _ = rx.recv();
        });
        started.recv().unwrap();
        std::thread::sleep(Duration::from_micros(200));
        handle.cancel();
        assert!(join_within_a_minute(handle).unwrap_err().is_cancelled());
        let (before, after) = seen.lock().unwrap().take().unwrap();
        if before != after {
            skewed = Some(after);
            break;
        }
    }
    let Some(skewed) = skewed else {
        // Every unwind ended where it began: nothing to check this time.
        return;
    };
    for _ in 0..1000 {
        // Atomics only, in the fiber: on the skewed thread a std lock's
        // guard may take a panic elsewhere in the process for its own
        // and poison the lock (see the limits chapter), as a std channel's
        // inner lock did here.
        let here = Arc::new(AtomicUsize::new(0));
        let go = Arc::new(AtomicBool::new(false));
        let handle = {
            let (here, go) = (here.clone(), go.clone());
            rt.spawn(move || {
                let mine = std::thread::current().id() == skewed;
                here.store(if mine { 1 } else { 2 }, SeqCst);
                // No switch point: it stays on its thread.
                while !go.load(SeqCst) {
                    std::hint::spin_loop();
                }
                if mine {
                    let _guard = ParkOnDrop;
                    fiber_rt::yield_now(); // the cancellation is raised here
                }
            })
        };
        let mine = loop {
            match here.load(SeqCst) {
                0 => std::thread::yield_now(),
                seen => break seen == 1,
            }
        };
        if mine {
            handle.cancel();
        }
        go.store(true, SeqCst);
        let result = join_within_a_minute(handle);
        if mine {
            assert!(result.unwrap_err().is_cancelled());
            return;
        }
    }
}
