//! `fiber_rt::timeout`: a closure that finishes in time gives its value;
//! one that does not is cancelled, and has unwound (destructors run, locks
//! released, waits left) by the time `timeout` returns; a panic reaches
//! the caller; a caller cancelled while it waits takes the closure with
//! it. The time-outs here are short against waits that would never end
//! by themselves, and no test bounds a duration tighter than seconds.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fiber_rt::sync::{mpsc, Mutex};
use fiber_rt::{fiber, timeout, timeout_at, Builder, Elapsed, Runtime};

const SHORT: Duration = Duration::from_millis(50);
const LONG: Duration = Duration::from_secs(10);
/// Far above `SHORT`, far below `LONG` and the one-hour sleeps: a call
/// that took this long waited for something it should not have.
const PATIENCE: Duration = Duration::from_secs(5);

fn rt() -> Runtime {
    Builder::new().workers(2).build().unwrap()
}

/// Sets its flag when dropped: on a return, or on an unwind.
///
/// Atomics here are Relaxed unless a comment says otherwise: each is read
/// only after the `timeout` (or the join) that waited for the fiber that
/// wrote it, which synchronises with that fiber's end.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn panic_text(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
}

#[test]
fn a_closure_that_finishes_in_time_gives_its_value() {
    let rt = rt();
    rt.block_on(|| {
        assert_eq!(timeout(LONG, || 6 * 7), Ok(42));
        let deadline = Instant::now() + LONG;
        assert_eq!(timeout_at(deadline, || "at"), Ok("at"));
        // Waits that end by themselves, well before the deadline.
        let slept = timeout(LONG, || {
            fiber_rt::sleep(Duration::from_millis(5));
            fiber_rt::yield_now();
            "slept"
        });
        assert_eq!(slept, Ok("slept"));
    });
}

#[test]
fn a_closure_borrows_from_the_caller() {
    let rt = rt();
    let mut words = vec!["a".to_string(), "bb".to_string()];
    rt.block_on(|| {
        // In time: a mutable borrow, over once `timeout` returns.
        let total = timeout(LONG, || {
            words.push("ccc".into());
            words.iter().map(String::len).sum::<usize>()
        });
        assert_eq!(total, Ok(6));
        words.push("dddd".into());

        // Out of time: the same, and what the closure did before its wait
        // is there to see.
        let unwound = AtomicBool::new(false);
        let slow = timeout(SHORT, || {
            let _unwound = SetOnDrop(&unwound);
            words.push("eeeee".into());
            fiber_rt::sleep(Duration::from_secs(3600));
            words.push("never".into());
        });
        assert_eq!(slow, Err(Elapsed));
        assert!(unwound.load(Ordering::Relaxed));
        words.push("ffffff".into());
    });
    // Whether the closure got to push "eeeee" before the deadline depends
    // on when its fiber started; "never" it never pushed.
    let lens: Vec<usize> = words.iter().map(String::len).collect();
    assert!(
        lens == [1, 2, 3, 4, 5, 6] || lens == [1, 2, 3, 4, 6],
        "{lens:?}"
    );
}

#[test]
fn a_sleeping_closure_is_cancelled_and_has_unwound_when_timeout_returns() {
    let rt = rt();
    rt.block_on(|| {
        let (dropped, woke) = (AtomicBool::new(false), AtomicBool::new(false));
        let start = Instant::now();
        let result = timeout(SHORT, || {
            let _guard = SetOnDrop(&dropped);
            fiber_rt::sleep(LONG);
            woke.store(true, Ordering::Relaxed);
        });
        let took = start.elapsed();
        assert_eq!(result, Err(Elapsed));
        // The destructor ran before `timeout` returned; the sleep never
        // ended.
        assert!(dropped.load(Ordering::Relaxed));
        assert!(!woke.load(Ordering::Relaxed));
        assert!(took >= SHORT, "returned after {took:?}");
        assert!(took < PATIENCE, "returned after {took:?}");
    });
}

#[test]
fn a_panic_in_the_closure_reaches_the_caller() {
    let rt = rt();
    rt.block_on(|| {
        let formatted = catch_unwind(|| timeout(LONG, || -> u32 { panic!("boom {}", 7) }));
        let payload = formatted.unwrap_err();
        assert_eq!(panic_text(payload.as_ref()), Some("boom 7"));

        // A panic after a switch point, carrying a value that is not a string.
        let custom = catch_unwind(|| {
            timeout(LONG, || {
                fiber_rt::sleep(Duration::from_millis(1));
                std::panic::panic_any(42u64)
            })
        });
        let payload: Box<dyn Any + Send> = custom.unwrap_err();
        assert_eq!(payload.downcast_ref::<u64>(), Some(&42));

        // The caller goes on as usual afterwards.
        assert_eq!(timeout(LONG, || 1), Ok(1));
    });
}

/// A `#[fiber]` function: the macro puts a probe at the top of the loop.
#[fiber]
fn spin_with_probes(turns: &AtomicU64) {
    loop {
        turns.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn a_loop_with_probes_is_cancelled_once_its_slice_runs_out() {
    // One worker: the caller, woken by the timer at the deadline, gets the
    // worker back only as the spinner yields at a probe when its slice is
    // up; the spinner is then cancelled at a probe after the next slice.
    let rt = Builder::new()
        .workers(1)
        .time_slice(Duration::from_millis(2))
        .build()
        .unwrap();
    rt.block_on(|| {
        let (turns, dropped) = (AtomicU64::new(0), AtomicBool::new(false));
        let start = Instant::now();
        let result: Result<(), _> = timeout(SHORT, || {
            let _guard = SetOnDrop(&dropped);
            loop {
                // Not a `#[fiber]`: a probe by hand.
                fiber_rt::preempt::point();
                turns.fetch_add(1, Ordering::Relaxed);
            }
        });
        assert_eq!(result, Err(Elapsed));
        assert!(dropped.load(Ordering::Relaxed));
        assert!(start.elapsed() < PATIENCE, "took {:?}", start.elapsed());

        let result = timeout(SHORT, || spin_with_probes(&turns));
        assert_eq!(result, Err(Elapsed));
        assert!(start.elapsed() < PATIENCE, "took {:?}", start.elapsed());
    });
}

#[test]
fn a_loop_without_switch_points_runs_on_and_its_value_is_kept() {
    // No probe, park or yield: the cancellation is never raised in it, and
    // `timeout` waits until it returns. What it returns is not lost.
    let rt = rt();
    rt.block_on(|| {
        let started = AtomicBool::new(false);
        let spin = Duration::from_millis(300);
        let start = Instant::now();
        let result = timeout(Duration::from_millis(20), || {
            started.store(true, Ordering::Relaxed);
            let until = Instant::now() + spin;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            7
        });
        if started.load(Ordering::Relaxed) {
            // It ran to its end, past the deadline.
            assert_eq!(result, Ok(7));
            assert!(start.elapsed() >= spin);
        } else {
            // Its fiber had not started by the deadline (a loaded machine):
            // cancelled before it ran.
            assert_eq!(result, Err(Elapsed));
        }
    });
}

#[test]
fn a_closure_waiting_on_a_channel_is_woken_and_cancelled() {
    let rt = rt();
    rt.block_on(|| {
        let (tx, mut rx) = mpsc::unbounded::<u32>();
        let dropped = AtomicBool::new(false);
        let result = timeout(SHORT, || {
            let _guard = SetOnDrop(&dropped);
            // A receiver is not `Sync`: lent to the closure by `&mut`.
            let rx = &mut rx;
            rx.recv()
        });
        assert_eq!(result, Err(Elapsed));
        assert!(dropped.load(Ordering::Relaxed));
        // The cancelled wait left the channel: a message sent now is ours.
        tx.send(5).unwrap();
        assert_eq!(rx.recv(), Ok(5));

        // A bounded channel, full: a sender waits for room.
        let (tx, rx) = mpsc::bounded::<u32>(1);
        tx.send(1).unwrap();
        assert_eq!(timeout(SHORT, || tx.send(2)), Err(Elapsed));
        assert_eq!(rx.recv(), Ok(1));
        tx.send(3).unwrap();
        assert_eq!(rx.recv(), Ok(3));
    });
}

#[test]
fn a_closure_waiting_for_a_lock_is_cancelled_and_a_lock_it_held_is_released() {
    let rt = rt();
    rt.block_on(|| {
        let counter = Mutex::new(0);

        // Waits for a lock the caller holds.
        let held = counter.lock();
        let result = timeout(SHORT, || *counter.lock() += 1);
        assert_eq!(result, Err(Elapsed));
        drop(held);
        // It left the lock's queue: the lock is free, and was never had.
        assert_eq!(*counter.try_lock().expect("the lock is free"), 0);

        // Holds the lock while it sleeps: its unwinding lets go.
        let result = timeout(SHORT, || {
            let mut guard = counter.lock();
            *guard += 1;
            fiber_rt::sleep(Duration::from_secs(3600));
        });
        assert_eq!(result, Err(Elapsed));
        let guard = counter.try_lock().expect("released by the unwinding");
        assert!(*guard <= 1);
    });
}

/// A fiber of `rt` waiting in a `timeout` whose closure sleeps for good,
/// once the closure has started; the flag its closure's guard sets when
/// dropped; when the closure was seen started.
fn caller_waiting_in_a_timeout(
    rt: &Runtime,
) -> (
    fiber_rt::JoinHandle<Result<(), Elapsed>>,
    Arc<AtomicBool>,
    Instant,
) {
    let started = Arc::new(AtomicBool::new(false));
    let dropped = Arc::new(AtomicBool::new(false));
    let caller = rt.spawn({
        let (started, dropped) = (started.clone(), dropped.clone());
        move || {
            timeout(LONG, || {
                let _guard = SetOnDrop(&dropped);
                // Release: pairs with the Acquire below.
                started.store(true, Ordering::Release);
                fiber_rt::sleep(Duration::from_secs(3600));
            })
        }
    });
    let start = Instant::now();
    // Acquire: pairs with the Release above.
    while !started.load(Ordering::Acquire) {
        assert!(start.elapsed() < PATIENCE, "the closure never started");
        std::thread::sleep(Duration::from_millis(1));
    }
    (caller, dropped, start)
}

#[test]
fn a_caller_cancelled_while_it_waits_cancels_the_closure() {
    let rt = rt();
    let (caller, dropped, start) = caller_waiting_in_a_timeout(&rt);
    caller.cancel();
    let error = caller.join().unwrap_err();
    assert!(error.is_cancelled(), "{error}");
    // The caller finished after the closure had unwound, long before its
    // time-out would have come.
    assert!(dropped.load(Ordering::Relaxed));
    assert!(start.elapsed() < PATIENCE, "took {:?}", start.elapsed());
}

#[test]
fn a_caller_cancelled_by_the_shutdown_cancels_the_closure() {
    let rt = rt();
    let (caller, dropped, _started_at) = caller_waiting_in_a_timeout(&rt);
    drop(rt);
    assert!(caller.join().unwrap_err().is_cancelled());
    assert!(dropped.load(Ordering::Relaxed));
}

/// Calls `timeout` as it drops, and records what it returned: 1 for the
/// closure's value, 2 for `Elapsed`.
struct TimeoutOnDrop(Arc<AtomicU32>);

impl Drop for TimeoutOnDrop {
    fn drop(&mut self) {
        let outcome = match timeout(LONG, || 5) {
            Ok(5) => 1,
            Err(Elapsed) => 2,
            Ok(other) => panic!("{other}"),
        };
        // Relaxed: read after the join of the fiber this runs on.
        self.0.store(outcome, Ordering::Relaxed);
    }
}

/// Spawns a fiber that waits for good with a [`TimeoutOnDrop`], and
/// returns once it waits: cancelled before it started, it would never run.
fn spawn_waiting(rt: &Runtime, outcome: &Arc<AtomicU32>) -> fiber_rt::JoinHandle<()> {
    let started = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::unbounded::<()>();
    let waiting = rt.spawn({
        let (outcome, started) = (outcome.clone(), started.clone());
        move || {
            let _on_drop = TimeoutOnDrop(outcome);
            let _tx = tx; // never sends
                          // Release: pairs with the Acquire below.
            started.store(true, Ordering::Release);
            let _ = rx.recv();
        }
    });
    let start = Instant::now();
    // Acquire: pairs with the Release above.
    while !started.load(Ordering::Acquire) {
        assert!(start.elapsed() < PATIENCE, "the fiber never started");
        std::thread::sleep(Duration::from_millis(1));
    }
    waiting
}

#[test]
fn a_destructor_can_call_timeout_while_its_fiber_is_cancelled() {
    // By its handle: the runtime runs on, and so does the closure.
    let rt = rt();
    let outcome = Arc::new(AtomicU32::new(0));
    let waiting = spawn_waiting(&rt, &outcome);
    waiting.cancel();
    assert!(waiting.join().unwrap_err().is_cancelled());
    assert_eq!(outcome.load(Ordering::Relaxed), 1);

    // By the runtime's shutdown, which cancels the closure too (as a rule
    // before it runs): `timeout` gives `Elapsed` rather than panicking,
    // which in a destructor during an unwind would abort the process.
    let outcome = Arc::new(AtomicU32::new(0));
    let waiting = spawn_waiting(&rt, &outcome);
    drop(rt);
    assert!(waiting.join().unwrap_err().is_cancelled());
    assert!(matches!(outcome.load(Ordering::Relaxed), 1 | 2));
}

#[test]
fn nested_time_outs_each_end_their_own_closure() {
    let rt = rt();
    rt.block_on(|| {
        // The inner one runs out first: the outer closure gets its error
        // and returns it in time.
        let (inner_dropped, outer_went_on) = (AtomicBool::new(false), AtomicBool::new(false));
        let result = timeout(LONG, || {
            let inner = timeout(SHORT, || {
                let _guard = SetOnDrop(&inner_dropped);
                fiber_rt::sleep(Duration::from_secs(3600));
            });
            outer_went_on.store(true, Ordering::Relaxed);
            inner
        });
        assert_eq!(result, Ok(Err(Elapsed)));
        assert!(inner_dropped.load(Ordering::Relaxed));
        assert!(outer_went_on.load(Ordering::Relaxed));

        // The outer one runs out first: its closure, waiting in the inner
        // `timeout`, is cancelled, which cancels the inner closure; both
        // have unwound when the outer `timeout` returns.
        let (inner_dropped, outer_dropped) = (AtomicBool::new(false), AtomicBool::new(false));
        let start = Instant::now();
        let result = timeout(SHORT, || {
            let _guard = SetOnDrop(&outer_dropped);
            timeout(LONG, || {
                let _guard = SetOnDrop(&inner_dropped);
                fiber_rt::sleep(Duration::from_secs(3600));
            })
        });
        assert_eq!(result, Err(Elapsed));
        assert!(inner_dropped.load(Ordering::Relaxed));
        assert!(outer_dropped.load(Ordering::Relaxed));
        assert!(start.elapsed() < PATIENCE, "took {:?}", start.elapsed());
    });
}

#[test]
fn a_deadline_that_has_passed_runs_the_closure_only_if_its_fiber_started() {
    let rt = rt();
    rt.block_on(|| {
        for _ in 0..20 {
            let ran = AtomicBool::new(false);
            // No switch point in the closure: if it ran, it finished.
            let result = timeout(Duration::ZERO, || ran.store(true, Ordering::Relaxed));
            assert_eq!(result.is_ok(), ran.load(Ordering::Relaxed));

            let ran = AtomicBool::new(false);
            let past = Instant::now() - Duration::from_millis(1);
            let result = timeout_at(past, || ran.store(true, Ordering::Relaxed));
            assert_eq!(result.is_ok(), ran.load(Ordering::Relaxed));
        }
    });
}

#[test]
fn off_a_fiber_it_panics_without_running_the_closure() {
    let ran = AtomicBool::new(false);
    let result = catch_unwind(AssertUnwindSafe(|| {
        timeout(LONG, || ran.store(true, Ordering::Relaxed))
    }));
    let payload = result.unwrap_err();
    let message = panic_text(payload.as_ref()).unwrap();
    assert!(
        message.contains("fiber_rt::timeout was called outside a fiber"),
        "{message}"
    );
    assert!(!ran.load(Ordering::Relaxed));

    let result = catch_unwind(|| timeout_at(Instant::now() + LONG, || 1));
    let payload = result.unwrap_err();
    let message = panic_text(payload.as_ref()).unwrap();
    assert!(
        message.contains("fiber_rt::timeout_at was called outside a fiber"),
        "{message}"
    );
}

#[test]
fn elapsed_is_an_error_and_converts_to_io() {
    let elapsed = Elapsed;
    assert_eq!(elapsed.to_string(), "deadline has elapsed");
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(elapsed);
    assert_eq!(boxed.to_string(), "deadline has elapsed");
    let io: std::io::Error = elapsed.into();
    assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
    assert_eq!(io.to_string(), "deadline has elapsed");
}

/// A closure that waits at the end of a `scope` for its fibers: the time
/// limit cancels them too (it waited for them to end by themselves).
#[test]
fn a_time_limit_reaches_the_fibers_of_a_scope_it_waits_for() {
    let rt = fiber_rt::Builder::new().workers(2).build().unwrap();
    let elapsed = rt.block_on(|| {
        let start = std::time::Instant::now();
        let result = fiber_rt::timeout(std::time::Duration::from_millis(20), || {
            fiber_rt::scope(|s| {
                s.spawn(|| fiber_rt::sleep(std::time::Duration::from_secs(3600)));
            })
        });
        assert_eq!(result, Err(fiber_rt::Elapsed));
        start.elapsed()
    });
    assert!(elapsed < std::time::Duration::from_secs(30), "{elapsed:?}");
}

mod graph_nodes {
    //! A time limit around a graph run: the nodes running on fibers of
    //! their own when the caller gives up are cancelled with the run,
    //! rather than left running for nobody.

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use fiber_rt::{depends, fiber, Builder};

    /// Nodes that started, and nodes whose guard dropped (run or unwound).
    static STARTED: AtomicUsize = AtomicUsize::new(0);
    static ENDED: AtomicUsize = AtomicUsize::new(0);

    struct Ends;
    impl Drop for Ends {
        fn drop(&mut self) {
            // SeqCst: read by the test's thread, in a poll loop.
            ENDED.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn stuck(x: u64) -> u64 {
        // SeqCst: as above.
        STARTED.fetch_add(1, Ordering::SeqCst);
        let _ends = Ends;
        fiber_rt::sleep(Duration::from_secs(3600));
        x
    }

    #[fiber]
    fn src() -> u64 {
        1
    }
    #[fiber]
    fn stuck_a(x: &u64) -> u64 {
        stuck(*x)
    }
    #[fiber]
    fn stuck_b(x: &u64) -> u64 {
        stuck(*x)
    }
    #[fiber]
    fn stuck_c(x: &u64) -> u64 {
        stuck(*x)
    }
    #[fiber]
    fn sum(a: &u64, b: &u64, c: &u64) -> u64 {
        a + b + c
    }

    depends! {
        graph Stuck {
            stuck_a(src);
            stuck_b(src);
            stuck_c(src);
            sum(stuck_a, stuck_b, stuck_c);
        }
    }

    #[test]
    fn a_time_limit_around_a_run_cancels_its_running_nodes() {
        let rt = Builder::new().workers(2).build().unwrap();
        for _ in 0..10 {
            let result = rt
                .block_on(|| fiber_rt::timeout(Duration::from_millis(20), || fiber_rt::run(Stuck)));
            assert_eq!(result.err(), Some(fiber_rt::Elapsed));
        }
        // Every node that started unwinds, and no fiber is left.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // SeqCst: as above.
            let (started, ended) = (STARTED.load(Ordering::SeqCst), ENDED.load(Ordering::SeqCst));
            if started == ended && rt.metrics().live == 0 {
                assert!(started > 0);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {started} nodes still running, {} fibers live",
                started - ended,
                rt.metrics().live
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A graph run with a spawner of the caller's own (`run_with`), whose
/// tasks run on a fiber that serves many runs: a run abandoned by a time
/// limit does not cancel that fiber, which goes on serving the next run.
#[test]
fn an_abandoned_run_leaves_a_spawners_own_fiber_alone() {
    use fiber_rt::dag::{run_with, GraphBuilder, Task};
    let rt = rt();
    let (tx, rx) = mpsc::unbounded::<Task>();
    let pool = rt.spawn(move || {
        let mut served = 0;
        while let Ok(task) = rx.recv() {
            task.run();
            served += 1;
        }
        served
    });
    let graph = || {
        let mut b = GraphBuilder::new();
        let slow = b.node("slow", || fiber_rt::sleep(Duration::from_millis(300)));
        let after = b.node("after", || ());
        b.edge(slow, after);
        b.build().unwrap()
    };
    let spawner = |tx: mpsc::Sender<Task>| {
        move |task| {
            let _ = tx.send(task);
        }
    };
    let timed_out = rt.block_on(|| {
        let tx = tx.clone();
        timeout(Duration::from_millis(20), move || {
            run_with(graph(), spawner(tx))
        })
    });
    assert_eq!(timed_out.err(), Some(Elapsed));
    // The pool fiber serves the next run to its end.
    let next = rt.block_on(|| run_with(graph(), spawner(tx.clone())));
    assert!(next.is_ok(), "{next:?}");
    drop(tx);
    assert!(pool.join().unwrap() >= 2);
}
