//! The multi-threaded runtime: spawning, joining, yielding, sleeping,
//! scopes, panics and shutdown.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fiber_rt::{Builder, FiberBuilder, Runtime};

fn rt(workers: usize) -> Runtime {
    Builder::new().workers(workers).build().unwrap()
}

#[test]
fn spawn_and_join_a_million_fibers_across_workers() {
    let rt = rt(2);
    let n: u64 = if cfg!(debug_assertions) {
        200_000
    } else {
        1_000_000
    };
    let sum = rt.block_on(move || {
        // Batches of spawns, then joins: fibers are stolen by the other worker.
        let mut sum = 0;
        for batch in 0..(n / 1000) {
            let handles: Vec<_> = (0..1000)
                .map(|i| fiber_rt::spawn(move || batch * 1000 + i))
                .collect();
            sum += handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>();
        }
        sum
    });
    assert_eq!(sum, n * (n - 1) / 2);
    // A joined fiber is off the live list by the time its joiner returns.
    let m = rt.metrics();
    assert_eq!(m.spawned, n + 1);
    assert_eq!(m.live, 0, "every fiber finished");
    assert!(m.steals <= m.spawned);
}

#[test]
fn join_from_a_plain_thread_blocks_until_done() {
    let rt = rt(2);
    let h = rt.spawn(|| {
        fiber_rt::sleep(Duration::from_millis(20));
        7
    });
    assert!(!h.is_finished());
    assert_eq!(h.join().unwrap(), 7);
}

#[test]
fn a_panicking_fiber_is_reported_and_its_worker_lives_on() {
    let rt = rt(1);
    let h = FiberBuilder::new()
        .name("doomed")
        .spawn_on(&rt, || -> u32 { panic!("no luck: {}", 42) })
        .unwrap();
    let err = h.join().unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), Some("no luck: 42"));
    assert_eq!(err.to_string(), "fiber 'doomed' panicked: no luck: 42");
    // The only worker still runs fibers.
    assert_eq!(rt.block_on(|| 5), 5);
}

#[test]
fn yield_now_interleaves_fibers_on_one_worker() {
    let rt = rt(1);
    let log = Arc::new(fiber_rt::sync::Mutex::new(Vec::new()));
    let shared = log.clone();
    // Spawned from a fiber, all three are queued before any of them runs.
    rt.block_on(move || {
        let handles: Vec<_> = (0..3)
            .map(|id| {
                let log = shared.clone();
                fiber_rt::spawn(move || {
                    for step in 0..3 {
                        log.lock().push((id, step));
                        fiber_rt::yield_now();
                    }
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
    });
    let log = log.lock().clone();
    // Round robin: every fiber takes step k before any takes step k + 1.
    for k in 0..2 {
        let last_k = log.iter().rposition(|&(_, s)| s == k).unwrap();
        let first_next = log.iter().position(|&(_, s)| s == k + 1).unwrap();
        assert!(last_k < first_next, "{log:?}");
    }
}

/// Spawns a child that spawns the next, and so on until `stop`: the local
/// queue is never empty meanwhile.
fn spawn_chain(stop: Arc<std::sync::atomic::AtomicBool>) {
    // Relaxed: a flag; nothing else is published through it.
    if !stop.load(Ordering::Relaxed) {
        drop(fiber_rt::spawn(move || spawn_chain(stop)));
    }
}

#[test]
fn a_yielding_fiber_is_not_starved_by_a_queue_that_never_empties() {
    // A fiber that yields waits behind what is queued; the queue here is
    // never empty, since each fiber spawns the next before it ends. The
    // yielder must still get its turns (each of the chain's fibers starts a
    // fresh time slice, so preemption does not help it).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = rt(1);
        let yields = rt.block_on(|| {
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let chain = stop.clone();
            drop(fiber_rt::spawn(move || spawn_chain(chain)));
            let mut yields = 0;
            for _ in 0..1000 {
                fiber_rt::yield_now();
                yields += 1;
            }
            stop.store(true, Ordering::Relaxed);
            yields
        });
        tx.send(yields).unwrap();
    });
    let yields = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the yielding fiber was starved");
    assert_eq!(yields, 1000);
}

#[test]
fn a_fiber_that_yielded_is_taken_by_an_idle_worker_while_the_next_one_spins() {
    // A spawns B and yields; B spins, never switching, until A has run
    // again. With no preemption of B (no probes, no signals), only the
    // other worker can run A: the yielded fiber must not be hidden from it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = Builder::new()
            .workers(2)
            .preempt_signals(false)
            .build()
            .unwrap();
        for _ in 0..200 {
            rt.block_on(|| {
                let resumed = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let flag = resumed.clone();
                let spinner = fiber_rt::spawn(move || {
                    // Acquire: pairs with A's Release below.
                    while !flag.load(Ordering::Acquire) {
                        std::hint::spin_loop();
                    }
                });
                fiber_rt::yield_now();
                // Release: B may stop.
                resumed.store(true, Ordering::Release);
                spinner.join().unwrap();
            });
        }
        tx.send(()).unwrap();
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("a yielded fiber waited for good behind a spinning one");
}

#[test]
fn a_fiber_that_yielded_behind_a_spinner_is_run_by_a_worker_that_was_asleep() {
    // A wakes B, which goes to A's LIFO slot (not stealable), then spins
    // until the other worker has gone to sleep, then yields: B runs and
    // spins, never switching, until A has run again, and A waits in the
    // yielded slot, which wakes no one. With no backstop, the monitor
    // moves A to the global queue, and wakes the sleeping worker for it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = Builder::new()
            .workers(2)
            .preempt_signals(false)
            .time_slice(Duration::from_millis(2))
            .build()
            .unwrap();
        rt.block_on(|| {
            let resumed = Arc::new(AtomicBool::new(false));
            let flag = resumed.clone();
            let (go_tx, go_rx) = fiber_rt::sync::mpsc::unbounded::<()>();
            let spinner = fiber_rt::spawn(move || {
                go_rx.recv().unwrap();
                // Acquire: pairs with A's Release below.
                while !flag.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
            });
            fiber_rt::sleep(Duration::from_millis(20)); // B parks on `recv`
            go_tx.send(()).unwrap(); // B: into this worker's LIFO slot
            let idle = Instant::now();
            while idle.elapsed() < Duration::from_millis(30) {
                std::hint::spin_loop(); // no probe: the other worker sleeps
            }
            fiber_rt::yield_now();
            // Release: B may stop.
            resumed.store(true, Ordering::Release);
            spinner.join().unwrap();
        });
        tx.send(()).unwrap();
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("a yielded fiber waited for good behind a spinning one");
}

#[test]
fn a_fiber_joining_many_is_woken_once_they_have_all_run() {
    // One worker: the three fibers are queued before any runs. The joiner
    // waits for the first; when it finishes, the other two are still
    // queued, so the joiner is queued behind them rather than run next,
    // and then finds all three finished.
    let rt = rt(1);
    let log = rt.block_on(|| {
        let log = Arc::new(fiber_rt::sync::Mutex::new(Vec::new()));
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let log = log.clone();
                fiber_rt::spawn(move || log.lock().push(format!("ran {i}")))
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            h.join().unwrap();
            log.lock().push(format!("joined {i}"));
        }
        let log = log.lock().clone();
        log
    });
    assert_eq!(
        log,
        ["ran 0", "ran 1", "ran 2", "joined 0", "joined 1", "joined 2"]
    );
}

#[test]
fn sleepers_wake_in_deadline_order() {
    let rt = rt(2);
    let order = Arc::new(fiber_rt::sync::Mutex::new(Vec::new()));
    let start = Instant::now();
    let handles: Vec<_> = [50u64, 10, 30, 20, 40]
        .into_iter()
        .map(|ms| {
            let order = order.clone();
            rt.spawn(move || {
                fiber_rt::sleep(Duration::from_millis(ms));
                order.lock().push(ms);
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(*order.lock(), [10, 20, 30, 40, 50]);
    assert!(start.elapsed() >= Duration::from_millis(50));
}

#[test]
fn scoped_fibers_borrow_from_the_caller() {
    let rt = rt(2);
    let data: Vec<u64> = (1..=1000).collect();
    let counter = AtomicUsize::new(0);
    let sum: u64 = rt.scope(|s| {
        let handles: Vec<_> = data
            .chunks(100)
            .map(|chunk| {
                let counter = &counter;
                s.spawn(move || {
                    counter.fetch_add(1, Ordering::Relaxed);
                    chunk.iter().sum::<u64>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(sum, 500_500);
    assert_eq!(counter.load(Ordering::Relaxed), 10);
}

#[test]
fn a_scoped_handle_says_when_its_fiber_is_done() {
    let rt = rt(1);
    let gate = fiber_rt::sync::WaitGroup::new();
    gate.add(1);
    let own_id = rt.scope(|s| {
        let handle = s.spawn(|| {
            gate.wait();
            fiber_rt::current().expect("a fiber").id
        });
        assert!(!handle.is_finished());
        gate.done();
        while !handle.is_finished() {
            fiber_rt::yield_now();
        }
        let id = handle.id();
        assert_eq!(handle.join().unwrap(), id);
        id
    });
    assert!(own_id > 0);
}

#[test]
fn a_scope_waits_for_unjoined_fibers_and_reports_their_panic() {
    let rt = rt(2);
    let finished = AtomicUsize::new(0);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.scope(|s| {
            s.spawn(|| {
                fiber_rt::sleep(Duration::from_millis(20));
                finished.fetch_add(1, Ordering::Relaxed);
            });
            s.spawn(|| panic!("scoped failure"));
        })
    }));
    assert!(result.is_err(), "the unjoined panic surfaces");
    assert_eq!(
        finished.load(Ordering::Relaxed),
        1,
        "the sleeper finished before scope returned"
    );
}

#[test]
fn fiber_names_ids_and_current() {
    let rt = rt(1);
    assert!(fiber_rt::current().is_none());
    let h = FiberBuilder::new()
        .name("named")
        .spawn_on(&rt, || fiber_rt::current().unwrap())
        .unwrap();
    let id = h.id();
    let me = h.join().unwrap();
    assert_eq!(me.id, id);
    assert_eq!(me.name.as_deref(), Some("named"));
}

#[test]
fn fibers_may_spawn_fibers_and_block_on_runs_nested() {
    let rt = rt(2);
    let depth = rt.block_on(|| {
        fn nest(n: u32) -> u32 {
            if n == 0 {
                return 0;
            }
            fiber_rt::spawn(move || nest(n - 1)).join().unwrap() + 1
        }
        nest(100)
    });
    assert_eq!(depth, 100);
}

#[test]
fn block_on_borrows_from_its_caller() {
    let rt = rt(2);
    let words = vec!["one".to_string(), "three".to_string()];
    let mut log = Vec::new();
    let total = rt.block_on(|| {
        // Parks and moves between workers while holding both borrows.
        fiber_rt::sleep(Duration::from_millis(5));
        log.push(words.len());
        words.iter().map(String::len).sum::<usize>()
    });
    assert_eq!(total, 8);
    assert_eq!(log, [2]);
    // From inside a fiber, borrowing that fiber's stack.
    let inner = rt.block_on(|| {
        let mut seen = 0;
        for word in &words {
            seen += rt.block_on(|| word.len());
        }
        seen
    });
    assert_eq!(inner, 8);
}

#[test]
fn block_on_resumes_a_panic_of_its_fiber_after_it_has_finished() {
    let rt = rt(2);
    let dropped = AtomicBool::new(false);
    struct SetOnDrop<'a>(&'a AtomicBool);
    impl Drop for SetOnDrop<'_> {
        fn drop(&mut self) {
            // Parks while unwinding: block_on must wait for it.
            fiber_rt::sleep(Duration::from_millis(20));
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(|| {
            let _guard = SetOnDrop(&dropped);
            panic!("boom in block_on");
        })
    }));
    let payload = result.expect_err("the panic reaches the caller");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom in block_on"));
    assert!(dropped.load(Ordering::SeqCst), "unwound before returning");
}

#[test]
fn a_fiber_cancelled_in_block_on_cancels_the_closure_s_fiber_too() {
    // The caller, a fiber of `rt`, waits in `other.block_on` for a closure
    // that would wait for good: cancelling the caller cancels the closure,
    // and the caller's join returns once both have unwound.
    let rt = Arc::new(rt(2));
    let other = Arc::new(self::rt(1));
    let never = fiber_rt::sync::WaitGroup::new();
    never.add(1);
    let caller = rt.spawn({
        let (other, never) = (other.clone(), never.clone());
        move || other.block_on(|| never.wait())
    });
    std::thread::sleep(Duration::from_millis(20));
    caller.cancel();
    let joined = caller
        .join_timeout(Duration::from_secs(30))
        .expect("the caller unwinds");
    assert!(joined.unwrap_err().is_cancelled());
    // The same wait, its caller's runtime dropped: no time-out needed.
    let owner = Builder::new()
        .workers(1)
        .shutdown_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    owner.spawn({
        let (other, never) = (other.clone(), never.clone());
        move || other.block_on(|| never.wait())
    });
    std::thread::sleep(Duration::from_millis(20));
    let start = Instant::now();
    drop(owner);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "the drop waited for its shutdown time-out: {:?}",
        start.elapsed()
    );
}

#[test]
fn spawn_blocking_keeps_workers_free() {
    let rt = rt(1);
    let ticks = rt.block_on(|| {
        let slow = fiber_rt::spawn_blocking(|| {
            std::thread::sleep(Duration::from_millis(100));
            "done"
        });
        // The only worker still runs fibers while the blocking job sleeps.
        let ticker = fiber_rt::spawn(|| {
            let mut n = 0;
            while n < 5 {
                fiber_rt::sleep(Duration::from_millis(5));
                n += 1;
            }
            n
        });
        assert_eq!(slow.join().unwrap(), "done");
        ticker.join().unwrap()
    });
    assert_eq!(ticks, 5);
}

#[test]
fn builder_rejects_bad_settings() {
    let err = Builder::new().workers(0).build().unwrap_err();
    assert!(err.to_string().contains("at least one worker"), "{err}");
    let err = Builder::new()
        .time_slice(Duration::from_micros(10))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("time slice"), "{err}");
    let err = Builder::new().stack_size(4 << 30).build().unwrap_err();
    assert!(err.to_string().contains("stack size"), "{err}");
}

struct CountDrop(Arc<AtomicUsize>);
impl Drop for CountDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn shutdown_cancels_parked_and_queued_fibers_and_runs_their_destructors() {
    let drops = Arc::new(AtomicUsize::new(0));
    let rt = rt(2);
    let (tx, rx) = fiber_rt::sync::mpsc::unbounded::<()>();
    let mut handles = Vec::new();
    for _ in 0..50 {
        let rx_hold = tx.clone();
        let guard = CountDrop(drops.clone());
        let wait = fiber_rt::sync::WaitGroup::new();
        wait.add(1);
        handles.push(rt.spawn(move || {
            let _guard = guard;
            let _keep = rx_hold;
            wait.wait(); // never done: parked for good
        }));
    }
    let guard = CountDrop(drops.clone());
    handles.push(rt.spawn(move || {
        let _guard = guard;
        let _ = rx.recv(); // parked: a sender stays alive in `tx`
    }));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(rt.metrics().live, 51);
    drop(rt);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        51,
        "every parked fiber was unwound"
    );
    for h in handles {
        assert!(h.join().unwrap_err().is_cancelled());
    }
    drop(tx);
}

#[test]
fn dropping_the_runtime_from_one_of_its_fibers_does_not_hang() {
    let rt = Arc::new(std::sync::Mutex::new(Some(rt(2))));
    let handle = {
        let guard = rt.lock().unwrap();
        let rt2 = rt.clone();
        guard.as_ref().unwrap().spawn(move || {
            let taken = rt2.lock().unwrap().take();
            drop(taken);
            "dropped"
        })
    };
    assert_eq!(handle.join().unwrap(), "dropped");
}

#[test]
fn a_ping_pong_pair_cannot_starve_its_worker_s_other_fibers() {
    // Two fibers waking each other switch straight to one another through
    // the LIFO slot; they share one time slice, so when it runs out the
    // rest of the local queue gets its turn.
    let rt = Builder::new()
        .workers(1)
        .time_slice(Duration::from_millis(2))
        .build()
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (ran_tx, ran_rx) = std::sync::mpsc::channel();
    let main = {
        let stop = stop.clone();
        rt.spawn(move || {
            let (ping_tx, ping_rx) = fiber_rt::sync::mpsc::bounded::<u32>(1);
            let (pong_tx, pong_rx) = fiber_rt::sync::mpsc::bounded::<u32>(1);
            // All three go to this worker's local queue.
            let echo = fiber_rt::spawn(move || {
                while let Ok(n) = ping_rx.recv() {
                    if pong_tx.send(n).is_err() {
                        break;
                    }
                }
            });
            let pinger = fiber_rt::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    ping_tx.send(1).unwrap();
                    pong_rx.recv().unwrap();
                    n += 1;
                }
                n
            });
            fiber_rt::yield_now(); // let the pair start
            let bystander = fiber_rt::spawn(move || ran_tx.send("ran").unwrap());
            bystander.join().unwrap();
            (pinger, echo)
        })
    };
    let ran = ran_rx.recv_timeout(Duration::from_secs(10));
    stop.store(true, Ordering::Relaxed);
    assert_eq!(ran, Ok("ran"), "the bystander starved beside the pair");
    let (pinger, echo) = main.join().unwrap();
    assert!(pinger.join().unwrap() > 0);
    echo.join().unwrap();
}

/// Spins on the CPU for `d` without switching.
#[inline(never)]
fn spin_for(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

#[test]
fn yielding_fibers_all_finish_while_workers_steal_and_the_backstop_hands_off() {
    // Sixteen fibers yield in a loop on two workers, so fibers move
    // through the yielded slots, local queues and steals all the time; a
    // quarter of them now and then spin past a 1 ms slice, so that (with
    // signals on) the backstop hands their worker to a new thread. Every
    // yield must come back exactly once.
    const FIBERS: u64 = 16;
    const YIELDS: u64 = 5_000;
    for signals in [false, true] {
        let rt = Builder::new()
            .workers(2)
            .time_slice(Duration::from_millis(1))
            .preempt_signals(signals)
            .build()
            .unwrap();
        let total = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..FIBERS)
            .map(|i| {
                let total = total.clone();
                rt.spawn(move || {
                    for k in 0..YIELDS {
                        if i % 4 == 0 && k % 1000 == 0 {
                            spin_for(Duration::from_millis(3));
                        }
                        fiber_rt::yield_now();
                        // Relaxed: a count, read after the joins.
                        total.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(
            total.load(Ordering::Relaxed) as u64,
            FIBERS * YIELDS,
            "signals: {signals}"
        );
    }
}

#[test]
fn dropping_the_runtime_while_fibers_yield_frees_every_fiber() {
    // Fibers that only yield sit in yielded slots and queues when the
    // runtime is dropped: each must be cancelled and freed (its captured
    // token dropped), whatever moment the drop comes at.
    for round in 0..50u64 {
        let token = Arc::new(());
        let rt = rt(2);
        for _ in 0..6 {
            let token = token.clone();
            drop(rt.spawn(move || {
                let _token = token;
                loop {
                    fiber_rt::yield_now();
                }
            }));
        }
        std::thread::sleep(Duration::from_micros(200 + (round % 7) * 100));
        drop(rt);
        assert_eq!(Arc::strong_count(&token), 1, "round {round}");
    }
}

/// At shutdown, a scoped fiber is cancelled (and its captures dropped)
/// before the fiber whose scope it borrows from, also when the scope's
/// owner was spawned from a plain thread after the worker had spawned
/// fibers of its own.
#[test]
fn shutdown_cancels_a_scoped_fiber_before_the_owner_of_its_scope() {
    static OWNED_DROPPED: AtomicBool = AtomicBool::new(false);
    static BORROW_OUTLIVED: AtomicBool = AtomicBool::new(false);
    struct Owned;
    impl Drop for Owned {
        fn drop(&mut self) {
            OWNED_DROPPED.store(true, Ordering::SeqCst);
        }
    }
    struct Borrower<'a>(&'a Owned);
    impl Drop for Borrower<'_> {
        fn drop(&mut self) {
            let _ = self.0;
            if OWNED_DROPPED.load(Ordering::SeqCst) {
                BORROW_OUTLIVED.store(true, Ordering::SeqCst);
            }
        }
    }

    let rt = rt(1);
    rt.block_on(|| fiber_rt::spawn(|| ()).join().unwrap());
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let owner = rt.spawn(move || {
        let owned = Owned;
        fiber_rt::scope(|s| {
            let owned = &owned;
            drop(s.spawn(move || {
                let _borrower = Borrower(owned);
                tx.send(()).unwrap();
                fiber_rt::sleep(Duration::from_secs(3600));
            }));
        });
    });
    rx.recv().unwrap();
    drop(owner);
    drop(rt);
    assert!(OWNED_DROPPED.load(Ordering::SeqCst));
    assert!(!BORROW_OUTLIVED.load(Ordering::SeqCst));
}

/// A fiber that has not run yet takes over the stack of the fiber that
/// finished just before it on its worker (when it needs the same kind of
/// stack): each still finds itself, with its own id and name, and one
/// needing another kind of stack gets its own.
#[test]
fn fibers_that_take_over_a_finished_fiber_s_stack_know_who_they_are() {
    let rt = rt(1);
    rt.block_on(|| {
        let handles: Vec<_> = (0..300u64)
            .map(|i| {
                let builder = match i % 3 {
                    0 => FiberBuilder::new().name(format!("f{i}")),
                    1 => FiberBuilder::new(),
                    _ => FiberBuilder::new().stack_size(1 << 20),
                };
                builder
                    .spawn(move || {
                        let me = fiber_rt::current().expect("a fiber");
                        // Some stack depth of its own, on the stack it got.
                        let deep = std::hint::black_box([i; 512]);
                        (me.id, me.name.map(|n| n.to_string()), deep[511])
                    })
                    .unwrap()
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            let id = h.id();
            let (seen_id, name, last) = h.join().unwrap();
            assert_eq!(seen_id, id);
            assert_eq!(name, (i % 3 == 0).then(|| format!("f{i}")));
            assert_eq!(last, i as u64);
        }
    });
    let m = rt.metrics();
    assert_eq!((m.spawned, m.finished, m.live), (301, 301, 0), "{m:?}");
}

#[test]
fn an_interval_ticks_on_its_grid_and_skips_what_a_slow_loop_missed() {
    let rt = rt(1);
    let (dues, last_next, start) = rt.block_on(|| {
        let start = Instant::now();
        let period = Duration::from_millis(10);
        let mut every = fiber_rt::interval_at(start, period);
        let mut dues = vec![every.tick(), every.tick()];
        // Busy past three more instants of the grid: the next tick comes at
        // once, due at the first missed one, and the ones after it are
        // skipped.
        fiber_rt::sleep(Duration::from_millis(35));
        dues.push(every.tick());
        (dues, every.next_tick(), start)
    });
    let offsets: Vec<u128> = dues.iter().map(|due| (*due - start).as_millis()).collect();
    assert_eq!(offsets, [0, 10, 20]);
    // The grid's next instant after the late tick: at least 50 ms in.
    let next = (last_next - start).as_millis();
    assert!(next >= 50 && next % 10 == 0, "next tick at {next} ms");
}

#[test]
fn thread_hooks_run_on_every_worker_thread_as_it_starts_and_stops() {
    let started = Arc::new(AtomicUsize::new(0));
    let stopped = Arc::new(AtomicUsize::new(0));
    let (on_start, on_stop) = (started.clone(), stopped.clone());
    let rt = Builder::new()
        .workers(3)
        .on_thread_start(move || {
            // On the worker thread itself, before any fiber.
            let name = std::thread::current().name().map(str::to_owned);
            assert!(name.is_some_and(|n| n.starts_with("fiber-worker-")));
            // Inside the runtime, as its fibers are.
            assert_eq!(fiber_rt::Handle::current().workers(), 3);
            on_start.fetch_add(1, Ordering::SeqCst);
        })
        .on_thread_stop(move || {
            on_stop.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    assert_eq!(rt.block_on(|| 1), 1);
    drop(rt);
    // The three workers', and the thread the drop unwinds fibers on.
    assert_eq!(started.load(Ordering::SeqCst), 4);
    assert_eq!(stopped.load(Ordering::SeqCst), 4);
}

#[test]
fn destructors_the_shutdown_runs_see_what_the_start_hook_set_up() {
    use std::cell::Cell;
    thread_local! {
        static READY: Cell<bool> = const { Cell::new(false) };
    }
    struct Check(std::sync::mpsc::Sender<bool>);
    impl Drop for Check {
        fn drop(&mut self) {
            let _ = self.0.send(READY.with(Cell::get));
        }
    }
    let rt = Builder::new()
        .workers(2)
        .on_thread_start(|| READY.with(|ready| ready.set(true)))
        .build()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let (started_tx, started) = std::sync::mpsc::channel();
    rt.spawn(move || {
        let _check = Check(tx);
        started_tx.send(READY.with(Cell::get)).unwrap();
        fiber_rt::sleep(Duration::from_secs(3600));
    });
    assert!(started.recv().unwrap(), "set up on the worker");
    drop(rt);
    assert!(rx.recv().unwrap(), "set up where the shutdown unwound it");
}

#[test]
fn a_panicking_thread_hook_leaves_the_worker_running() {
    let rt = Builder::new()
        .workers(1)
        .on_thread_start(|| panic!("start hook"))
        .build()
        .unwrap();
    assert_eq!(rt.block_on(|| 6 * 7), 42);
}

#[test]
fn an_interval_far_behind_a_tiny_period_still_ticks_next_after_now() {
    // Ten seconds of 1 ns periods missed: more than a u32 counts.
    let Some(start) = Instant::now().checked_sub(Duration::from_secs(10)) else {
        return; // The clock started less than ten seconds ago.
    };
    let mut every = fiber_rt::interval_at(start, Duration::from_nanos(1));
    // The next tick is after the late one came, so after this (a 1 ns
    // grid is past again by the time it is looked at).
    let before = Instant::now();
    assert_eq!(every.tick(), start);
    assert!(
        every.next_tick() > before,
        "the next tick, {:?}, is behind {before:?}, when the late one came",
        every.next_tick()
    );
}

#[test]
fn an_interval_of_a_period_too_long_to_add_ticks_once_and_is_reset_without_overflow() {
    let mut every = fiber_rt::interval(Duration::MAX);
    let before = Instant::now();
    every.tick();
    // Far away, as a sleep of `Duration::MAX` is.
    assert!(every.next_tick() > before + Duration::from_secs(365 * 24 * 3600));
    every.reset();
    assert!(every.next_tick() > before + Duration::from_secs(365 * 24 * 3600));
}
