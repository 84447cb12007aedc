//! Dropping a runtime cancels every fiber left, and their destructors run.
//! Those destructors may wait: for a lock another cancelled fiber holds,
//! for a channel it feeds, for its join, for a sleep. The shutdown lets
//! them park and goes on unwinding the others, so none of these hang;
//! a wait nothing can end is given up on after the shutdown timeout.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};

use fiber_rt::debug::FiberState;
use fiber_rt::sync::{mpsc, Condvar, Mutex, RwLock, Semaphore, WaitGroup};
use fiber_rt::{Builder, Runtime};

fn rt(workers: usize) -> Runtime {
    Builder::new().workers(workers).build().unwrap()
}

/// Drops `rt` on a thread of its own, failing (instead of hanging) if the
/// drop does not return within 20 s; returns how long it took.
fn drop_or_fail(rt: Runtime) -> Duration {
    let (done, finished) = std_mpsc::channel();
    std::thread::spawn(move || {
        let start = Instant::now();
        drop(rt);
        let _ = done.send(start.elapsed());
    });
    finished
        .recv_timeout(Duration::from_secs(20))
        .expect("the runtime's drop hangs")
}

/// Runs its closure when dropped: the destructor under test.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// A fiber that parks until the runtime is dropped.
fn park_for_good() {
    let never = WaitGroup::new();
    never.add(1);
    never.wait();
}

/// Waits until `n` of `rt`'s fibers are parked or asleep, so that the
/// drop finds them past what the test sets up in them.
fn wait_parked(rt: &Runtime, n: usize) {
    let start = Instant::now();
    loop {
        let parked = rt
            .dump()
            .fibers
            .iter()
            .filter(|f| {
                matches!(
                    f.state,
                    FiberState::Parked { .. } | FiberState::Sleeping { .. }
                )
            })
            .count();
        if parked >= n {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{parked} of {n} fibers parked"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Spawns a fiber that takes `lock` and parks until the runtime is
/// dropped; returns once it holds the lock.
fn hold_for_good(rt: &Runtime, lock: &Arc<Mutex<u32>>) -> fiber_rt::JoinHandle<()> {
    let (holding, held) = std_mpsc::channel();
    let lock = lock.clone();
    let holder = rt.spawn(move || {
        let _guard = lock.lock();
        holding.send(()).unwrap();
        park_for_good();
    });
    held.recv().unwrap();
    holder
}

#[test]
fn a_destructor_waiting_for_a_lock_an_older_parked_fiber_holds_gets_it() {
    let rt = rt(2);
    let lock = Arc::new(Mutex::new(0));
    let holder = hold_for_good(&rt, &lock);
    // Newer, so cancelled first: its destructor waits for the holder's
    // unwinding to unlock.
    let waiter = {
        let lock = lock.clone();
        rt.spawn(move || {
            let _d = OnDrop(|| *lock.lock() += 1);
            park_for_good();
        })
    };
    wait_parked(&rt, 2);
    drop_or_fail(rt);
    assert_eq!(*lock.try_lock().expect("unlocked"), 1);
    assert!(holder.join().unwrap_err().is_cancelled());
    assert!(waiter.join().unwrap_err().is_cancelled());
}

#[test]
fn a_destructor_receiving_sees_the_channel_close_when_the_sender_unwinds() {
    let rt = rt(2);
    let (tx, rx) = mpsc::unbounded::<u32>();
    let _sender = rt.spawn(move || {
        let _tx = tx;
        park_for_good();
    });
    let got = Arc::new(std::sync::Mutex::new(None));
    let _receiver = {
        let got = got.clone();
        rt.spawn(move || {
            let _d = OnDrop(|| *got.lock().unwrap() = Some(rx.recv()));
            park_for_good();
        })
    };
    wait_parked(&rt, 2);
    drop_or_fail(rt);
    let got = got.lock().unwrap().take().expect("the destructor ran");
    assert!(got.is_err(), "disconnected, not {got:?}");
}

#[test]
fn a_destructor_joining_an_older_fiber_sees_it_cancelled() {
    let rt = rt(1);
    let older = rt.spawn(park_for_good);
    let seen = Arc::new(std::sync::Mutex::new(None));
    let _joiner = {
        let seen = seen.clone();
        let mut older = Some(older);
        rt.spawn(move || {
            let _d = OnDrop(|| {
                let result = older.take().unwrap().join();
                *seen.lock().unwrap() = Some(result.unwrap_err().is_cancelled());
            });
            park_for_good();
        })
    };
    wait_parked(&rt, 2);
    drop_or_fail(rt);
    assert_eq!(*seen.lock().unwrap(), Some(true));
}

#[test]
fn a_destructor_may_sleep_during_the_shutdown() {
    let rt = rt(2);
    let slept = Arc::new(std::sync::Mutex::new(None));
    let _sleeper = {
        let slept = slept.clone();
        rt.spawn(move || {
            let _d = OnDrop(|| {
                let start = Instant::now();
                fiber_rt::sleep(Duration::from_millis(40));
                *slept.lock().unwrap() = Some(start.elapsed());
            });
            park_for_good();
        })
    };
    wait_parked(&rt, 1);
    let took = drop_or_fail(rt);
    let slept = slept.lock().unwrap().expect("the destructor ran");
    assert!(slept >= Duration::from_millis(40), "slept {slept:?}");
    assert!(took >= slept, "the drop waited for it: {took:?}");
}

#[test]
fn a_destructor_yielding_until_an_older_fiber_unwinds_finishes() {
    let rt = rt(1);
    let flag = Arc::new(AtomicBool::new(false));
    let _setter = {
        let flag = flag.clone();
        // SeqCst: a test flag, read by the yielding fiber below.
        rt.spawn(move || {
            let _d = OnDrop(|| flag.store(true, Ordering::SeqCst));
            park_for_good();
        })
    };
    let done = Arc::new(AtomicBool::new(false));
    let _yielder = {
        let (flag, done) = (flag.clone(), done.clone());
        rt.spawn(move || {
            let _d = OnDrop(|| {
                // SeqCst: test flags.
                while !flag.load(Ordering::SeqCst) {
                    fiber_rt::yield_now();
                }
                done.store(true, Ordering::SeqCst);
            });
            park_for_good();
        })
    };
    wait_parked(&rt, 2);
    drop_or_fail(rt);
    // SeqCst: as above.
    assert!(done.load(Ordering::SeqCst));
}

#[test]
fn waits_nothing_can_end_are_given_up_on_after_the_shutdown_timeout() {
    let timeout = Duration::from_millis(200);
    let rt = Builder::new()
        .workers(2)
        .shutdown_timeout(timeout)
        .build()
        .unwrap();
    // Its sender stays with this thread, which never sends.
    let (keep, never) = mpsc::unbounded::<u32>();
    let stuck = rt.spawn(move || {
        let _d = OnDrop(|| {
            let _ = never.recv();
        });
        park_for_good();
    });
    let finished = Arc::new(AtomicBool::new(false));
    let quick = {
        let finished = finished.clone();
        rt.spawn(move || {
            // SeqCst: a test flag.
            let _d = OnDrop(|| finished.store(true, Ordering::SeqCst));
            park_for_good();
        })
    };
    wait_parked(&rt, 2);
    let took = drop_or_fail(rt);
    assert!(took >= timeout, "gave up after {took:?}");
    // SeqCst: as above.
    assert!(finished.load(Ordering::SeqCst), "the others were unwound");
    assert!(quick.join().unwrap_err().is_cancelled());
    // Abandoned: its handle still hears of it.
    let error = stuck.join().unwrap_err();
    assert!(error.is_cancelled(), "{error}");
    drop(keep);
}

#[test]
fn a_destructor_polling_with_sleeps_for_good_is_given_up_on() {
    let timeout = Duration::from_millis(200);
    for nap in [Duration::from_millis(10), Duration::from_secs(2)] {
        let rt = Builder::new()
            .workers(1)
            .shutdown_timeout(timeout)
            .build()
            .unwrap();
        let polls = Arc::new(AtomicUsize::new(0));
        let counted = polls.clone();
        let poller = rt.spawn(move || {
            // Each poll wakes the fiber from its sleep: wake-ups that are
            // not progress. SeqCst: a test counter.
            let _d = OnDrop(|| loop {
                counted.fetch_add(1, Ordering::SeqCst);
                fiber_rt::sleep(nap);
            });
            park_for_good();
        });
        wait_parked(&rt, 1);
        let took = drop_or_fail(rt);
        assert!(took >= timeout, "gave up after {took:?}");
        assert!(poller.join().unwrap_err().is_cancelled());
        // SeqCst: as above.
        assert!(polls.load(Ordering::SeqCst) >= 1);
    }
}

#[test]
fn a_fiber_that_catches_its_cancellation_is_cancelled_again() {
    let rt = rt(1);
    let yields = Arc::new(AtomicUsize::new(0));
    let counted = yields.clone();
    let fiber = rt.spawn(move || {
        let _ = std::panic::catch_unwind(park_for_good);
        loop {
            // SeqCst: a test counter.
            counted.fetch_add(1, Ordering::SeqCst);
            fiber_rt::yield_now();
        }
    });
    wait_parked(&rt, 1);
    drop_or_fail(rt);
    // SeqCst: as above. Its first yield after the catch unwinds it.
    assert_eq!(yields.load(Ordering::SeqCst), 1);
    assert!(fiber.join().unwrap_err().is_cancelled());
}

#[test]
fn a_fiber_parked_in_the_unwinding_of_its_own_panic_finishes_it_at_shutdown() {
    let rt = rt(1);
    let lock = Arc::new(Mutex::new(0));
    let holder = hold_for_good(&rt, &lock);
    let panicker = {
        let lock = lock.clone();
        rt.spawn(move || {
            let _d = OnDrop(|| *lock.lock() += 1);
            panic!("unwinds, and parks on the way");
        })
    };
    wait_parked(&rt, 2);
    // A cancellation raised in the parked destructor would abort.
    drop_or_fail(rt);
    assert_eq!(*lock.try_lock().expect("unlocked"), 1);
    assert!(holder.join().unwrap_err().is_cancelled());
    assert!(panicker.join().unwrap_err().is_panic());
}

#[test]
fn a_graph_whose_nodes_are_parked_is_cancelled_at_shutdown() {
    let rt = rt(2);
    let mut graph = fiber_rt::dag::GraphBuilder::new();
    for i in 0..6 {
        graph.node(format!("n{i}"), park_for_good);
    }
    let graph = graph.build().unwrap();
    let caller = rt.spawn(move || fiber_rt::run(graph).is_ok());
    wait_parked(&rt, 1);
    // The graph's runners are fibers of the runtime's own: a cancellation
    // reaching their base must end them, not the process.
    drop_or_fail(rt);
    assert!(caller.join().unwrap_err().is_cancelled());
}

#[test]
fn a_scope_is_not_failed_by_another_fiber_parked_in_its_own_unwinding() {
    // One worker: the panicking fiber parks mid-unwind on the thread that
    // then runs the scope, whose child returns normally.
    let rt = rt(1);
    let lock = Arc::new(Mutex::new(()));
    let guard_lock = lock.clone();
    let (release, released) = mpsc::bounded::<()>(1);
    let holder = rt.spawn(move || {
        let _guard = guard_lock.lock();
        let _ = released.recv();
    });
    wait_parked(&rt, 1);
    let panicker = {
        let lock = lock.clone();
        rt.spawn(move || {
            let _d = OnDrop(|| drop(lock.lock()));
            panic!("unwinds, and parks on the way");
        })
    };
    wait_parked(&rt, 2);
    let scoped = rt.block_on(|| {
        std::panic::catch_unwind(|| {
            fiber_rt::scope(|s| {
                s.spawn(|| 7);
            })
        })
        .is_ok()
    });
    release.send(()).unwrap();
    holder.join().unwrap();
    assert!(panicker.join().unwrap_err().is_panic());
    assert!(scoped, "the scope's child returned normally");
}

/// A supervisor that catches its cancellation `times` times, keeping the
/// payloads if `keep`, and then returns.
fn supervise(catches: Arc<AtomicUsize>, keep: bool, times: usize) {
    let mut kept = Vec::new();
    let mut caught = 0;
    while caught < times {
        if let Err(payload) = std::panic::catch_unwind(park_for_good) {
            caught += 1;
            if keep {
                kept.push(payload);
            }
            // SeqCst: a test counter.
            catches.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[test]
fn a_fiber_that_keeps_catching_its_cancellation_is_cancelled_again_each_time() {
    let rt = rt(1);
    let (tx, rx) = mpsc::unbounded::<u32>();
    let catches = Arc::new(AtomicUsize::new(0));
    // The supervisor owns the sender a newer fiber's destructor waits on:
    // that destructor stays parked in its unwinding while the supervisor
    // is cancelled, time and again.
    let supervisor = {
        let catches = catches.clone();
        rt.spawn(move || {
            let _tx = tx;
            supervise(catches, false, 3);
        })
    };
    let closed = Arc::new(AtomicBool::new(false));
    let _receiver = {
        let closed = closed.clone();
        rt.spawn(move || {
            // SeqCst: a test flag.
            let _d = OnDrop(|| closed.store(rx.recv().is_err(), Ordering::SeqCst));
            park_for_good();
        })
    };
    wait_parked(&rt, 2);
    let took = drop_or_fail(rt);
    // SeqCst: as above.
    assert_eq!(catches.load(Ordering::SeqCst), 3);
    assert!(closed.load(Ordering::SeqCst), "the sender was dropped");
    assert!(
        took < Duration::from_millis(900),
        "nothing abandoned: {took:?}"
    );
    supervisor.join().unwrap();
}

#[test]
fn a_fiber_that_keeps_the_payloads_of_its_cancellations_is_cancelled_again() {
    let rt = rt(1);
    let catches = Arc::new(AtomicUsize::new(0));
    let supervisor = {
        let catches = catches.clone();
        rt.spawn(move || supervise(catches, true, 3))
    };
    wait_parked(&rt, 1);
    let took = drop_or_fail(rt);
    // SeqCst: a test counter.
    assert_eq!(catches.load(Ordering::SeqCst), 3);
    assert!(
        took < Duration::from_millis(900),
        "nothing abandoned: {took:?}"
    );
    supervisor.join().unwrap();
}

#[test]
fn the_dropping_thread_s_panic_count_is_left_alone() {
    // An abandoned fiber never ends its cancellation's unwind, and a fiber
    // parked in the unwinding of its own panic ends it elsewhere than it
    // began: neither may leave the dropping thread believing it panics.
    let rt = Builder::new()
        .workers(1)
        .shutdown_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let (keep, never) = mpsc::unbounded::<u32>();
    let _stuck = rt.spawn(move || {
        let _d = OnDrop(|| {
            let _ = never.recv();
        });
        park_for_good();
    });
    let lock = Arc::new(Mutex::new(0));
    let _holder = hold_for_good(&rt, &lock);
    let _panicker = rt.spawn(move || {
        let _d = OnDrop(|| *lock.lock() += 1);
        panic!("unwinds, and parks on the way");
    });
    wait_parked(&rt, 3);
    let state = Arc::new(std::sync::Mutex::new(()));
    let held = state.clone();
    let (asked, answers) = std_mpsc::channel();
    std::thread::spawn(move || {
        let _guard = held.lock().unwrap();
        drop(rt);
        let after = std::thread::panicking();
        // Asked again while another thread is in the middle of a panic:
        // then the thread's own count is what answers.
        let (inside, panicking) = std_mpsc::channel();
        let (go, wait) = std_mpsc::channel::<()>();
        let other = std::thread::spawn(move || {
            let _d = OnDrop(|| {
                inside.send(()).unwrap();
                let _ = wait.recv();
            });
            panic!("elsewhere");
        });
        panicking.recv().unwrap();
        let during = std::thread::panicking();
        go.send(()).unwrap();
        let _ = other.join();
        asked.send((after, during)).unwrap();
    })
    .join()
    .unwrap();
    let (after, during) = answers.recv().unwrap();
    assert!(!after, "the dropping thread believes it panics");
    assert!(!during, "the dropping thread's count is off");
    assert!(
        !state.is_poisoned(),
        "a guard held across the drop poisoned"
    );
    drop(keep);
}

/// A runtime of one worker that gives up on waiting fibers after 100 ms,
/// with one fiber whose destructor runs `wait` (a wait on something a
/// plain thread holds) once the fiber is cancelled: returned once that
/// fiber has been abandoned, its waiter left in the primitive's queue.
fn abandon_waiting_in(wait: impl FnMut() + Send + 'static) {
    let rt = Builder::new()
        .workers(1)
        .shutdown_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let waiting = OnDrop(wait);
    let _fiber = rt.spawn(move || {
        let _waiting = waiting;
        park_for_good();
    });
    wait_parked(&rt, 1);
    drop_or_fail(rt);
}

/// Runs `f` on a thread of its own; fails if it has not returned in 5 s.
fn within_5s(what: &str, f: impl FnOnce() + Send + 'static) {
    let (done, finished) = std_mpsc::channel();
    let thread = std::thread::spawn(move || {
        f();
        let _ = done.send(());
    });
    match finished.recv_timeout(Duration::from_secs(5)) {
        Ok(()) => thread.join().unwrap(),
        Err(std_mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(thread.join().unwrap_err())
        }
        Err(std_mpsc::RecvTimeoutError::Timeout) => panic!("{what} hangs"),
    }
}

// An abandoned fiber never runs again, but its waiter stays queued in the
// primitive it waited on (the clean-up on its stack never runs): what a
// release hands it (the lock, a notification, a free slot) must go on to
// the next waiter, or whoever shares the primitive outside the runtime
// waits for good.

#[test]
fn a_rwlock_released_to_an_abandoned_fiber_goes_on_to_the_next() {
    let lock = Arc::new(RwLock::new(0));
    let held = lock.write();
    let theirs = lock.clone();
    abandon_waiting_in(move || *theirs.write() += 1);
    drop(held);
    within_5s("a read after the abandoned writer", move || {
        assert_eq!(*lock.read(), 0, "the abandoned writer never wrote");
    });
}

#[test]
fn a_mutex_released_to_an_abandoned_fiber_goes_on_to_the_next() {
    let lock = Arc::new(Mutex::new(0));
    let held = lock.lock();
    let theirs = lock.clone();
    abandon_waiting_in(move || *theirs.lock() += 1);
    let next = lock.clone();
    let thread = std::thread::spawn(move || *next.lock() += 100);
    // Queued behind the abandoned fiber by then (if not, it takes the lock
    // as a newcomer, and the test proves less, but does not fail).
    std::thread::sleep(Duration::from_millis(50));
    drop(held);
    within_5s("the thread queued behind the abandoned fiber", move || {
        thread.join().unwrap();
    });
    assert_eq!(*lock.lock(), 100);
}

#[test]
fn a_notification_given_to_an_abandoned_fiber_goes_on_to_the_next() {
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let wait_for_flag = |pair: Arc<(Mutex<bool>, Condvar)>| {
        move || {
            let (flag, condvar) = &*pair;
            let mut set = flag.lock();
            while !*set {
                set = condvar.wait(set);
            }
        }
    };
    abandon_waiting_in(wait_for_flag(pair.clone()));
    let thread = std::thread::spawn(wait_for_flag(pair.clone()));
    std::thread::sleep(Duration::from_millis(50));
    *pair.0.lock() = true;
    pair.1.notify_one();
    within_5s("the thread waiting behind the abandoned fiber", move || {
        thread.join().unwrap();
    });
}

#[test]
fn a_slot_freed_for_an_abandoned_sender_goes_on_to_the_next() {
    let (sender, receiver) = mpsc::bounded(1);
    sender.send(0).unwrap();
    let theirs = sender.clone();
    abandon_waiting_in(move || {
        let _ = theirs.send(1);
    });
    let thread = std::thread::spawn(move || sender.send(2).unwrap());
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(receiver.recv().unwrap(), 0);
    within_5s("the sender waiting behind the abandoned fiber", move || {
        thread.join().unwrap();
        assert_eq!(receiver.recv().unwrap(), 2);
    });
}

#[test]
fn permits_handed_to_an_abandoned_fiber_go_on_to_the_next() {
    let gate = Arc::new(Semaphore::new(0));
    let theirs = gate.clone();
    abandon_waiting_in(move || drop(theirs.acquire_many(2)));
    let next = gate.clone();
    let thread = std::thread::spawn(move || next.acquire_many(2).forget());
    let start = Instant::now();
    while !format!("{gate:?}").contains("waiting: 2 ") {
        assert!(start.elapsed() < Duration::from_secs(10), "{gate:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
    gate.add_permits(2);
    within_5s("the thread queued behind the abandoned fiber", move || {
        thread.join().unwrap();
    });
    assert_eq!(gate.available_permits(), 0, "the thread took them");
}

/// Logs when dropped: the scope owner's data that its children borrow.
struct Borrowed(Arc<std::sync::Mutex<Vec<&'static str>>>);

impl Drop for Borrowed {
    fn drop(&mut self) {
        self.0.lock().unwrap().push("owner's borrowed data dropped");
    }
}

#[test]
fn a_cancelled_scope_owner_waits_for_its_children_before_its_borrows_end() {
    let rt = Builder::new().workers(1).build().unwrap();
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let owner_log = log.clone();
    let _owner = rt.spawn(move || {
        let data = Borrowed(owner_log.clone());
        fiber_rt::scope(|s| {
            let borrowed: &Borrowed = &data;
            let child_log = owner_log.clone();
            s.spawn(move || {
                // The child's cancellation parks in this destructor, which
                // still borrows the owner's data, past the owner's own
                // cancellation (the shutdown cancels newest first and moves
                // on while a fiber waits).
                let _unwinding = OnDrop(move || {
                    fiber_rt::sleep(Duration::from_millis(100));
                    assert!(borrowed.0.lock().is_ok());
                    child_log.lock().unwrap().push("child finished");
                });
                park_for_good();
            });
        });
    });
    wait_parked(&rt, 2);
    drop_or_fail(rt);
    assert_eq!(
        *log.lock().unwrap(),
        ["child finished", "owner's borrowed data dropped"],
        "the scope's borrows ended while a scoped fiber still ran"
    );
}

#[test]
fn a_fiber_stuck_in_a_blocking_call_does_not_hang_the_drop() {
    // The fiber blocks its thread in a std channel's `recv`: the backstop
    // gives its worker to a new thread, and the fiber stays on the old one,
    // out of the runtime's reach. The drop waits its shutdown time-out,
    // says so, and returns (it waited for that thread for good); the fiber
    // finishes later, on its own thread, when its message comes.
    let rt = fiber_rt::Builder::new()
        .workers(1)
        .shutdown_timeout(std::time::Duration::from_millis(200))
        .build()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<u32>();
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stuck = rt.spawn({
        let finished = finished.clone();
        move || {
            let got = rx.recv().unwrap();
            finished.store(true, std::sync::atomic::Ordering::SeqCst);
            got
        }
    });
    // Other fibers still run: the backstop moved the worker.
    assert_eq!(rt.block_on(|| 6 * 7), 42);
    let (dropped_tx, dropped_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(rt);
        let _ = dropped_tx.send(());
    });
    if dropped_rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .is_err()
    {
        eprintln!("the runtime's drop waited for the blocked fiber's thread");
        std::process::exit(101);
    }
    assert!(!stuck.is_finished());
    tx.send(7).unwrap();
    assert_eq!(stuck.join().unwrap(), 7, "it finishes on its own thread");
    assert!(finished.load(std::sync::atomic::Ordering::SeqCst));
}

#[test]
fn a_graph_cut_short_by_the_shutdown_names_the_running_node_and_skips_its_dependents() {
    let rt = rt(2);
    let mut graph = fiber_rt::dag::GraphBuilder::new();
    let (started_tx, started) = std::sync::mpsc::channel();
    let started_tx = std::sync::Mutex::new(started_tx);
    let slow = graph.node("slow", move || {
        started_tx.lock().unwrap().send(()).unwrap();
        park_for_good();
    });
    let after = graph.node("after", || ());
    let last = graph.node("last", || ());
    graph.edge(slow, after).edge(after, last);
    let graph = graph.build().unwrap();
    // From a plain thread, which reads the run's result after the drop.
    let handle = rt.handle().clone();
    let caller = std::thread::spawn(move || handle.run(graph));
    started.recv().unwrap();
    drop_or_fail(rt);
    let err = caller.join().unwrap().unwrap_err();
    assert_eq!(err.node(), Some("slow"));
    assert_eq!(
        err.failures()[0].kind,
        fiber_rt::dag::FailureKind::Cancelled
    );
    assert_eq!(
        err.to_string(),
        "fiber `slow` was cancelled: the runtime shut down while it ran (2 dependent fibers skipped)"
    );
    assert_eq!(err.skipped_nodes().collect::<Vec<_>>(), ["after", "last"]);
}
