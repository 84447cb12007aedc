//! Fiber-aware synchronisation under real contention across workers, and
//! from plain threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fiber_rt::sync::{mpsc, oneshot, Barrier, Condvar, Mutex, RwLock, WaitGroup};
use fiber_rt::{Builder, Runtime};

mod common;
use common::Rng;

fn rt(workers: usize) -> Runtime {
    Builder::new().workers(workers).build().unwrap()
}

#[test]
fn four_producers_send_250k_messages_each_exactly_once_in_order() {
    let rt = rt(2);
    const PER: u64 = 250_000;
    let (tx, rx) = mpsc::bounded::<(u64, u64)>(1024);
    for p in 0..4 {
        let tx = tx.clone();
        rt.spawn(move || {
            for i in 0..PER {
                tx.send((p, i)).unwrap();
            }
        });
    }
    drop(tx);
    let next = rt.block_on(move || {
        let mut next = [0u64; 4];
        for (p, i) in rx.iter() {
            assert_eq!(i, next[p as usize], "producer {p} out of order");
            next[p as usize] += 1;
        }
        next
    });
    assert_eq!(next, [PER; 4]);
}

#[test]
fn ten_thousand_fibers_increment_a_mutex_counter() {
    let rt = rt(2);
    let counter = Arc::new(Mutex::new(0u64));
    let handles: Vec<_> = (0..10_000)
        .map(|i| {
            let counter = counter.clone();
            rt.spawn(move || {
                let mut guard = counter.lock();
                let seen = *guard;
                if i % 7 == 0 {
                    fiber_rt::yield_now(); // hold the lock across a switch
                }
                *guard = seen + 1;
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(*counter.lock(), 10_000);
}

#[test]
fn ping_pong_across_workers() {
    let rt = rt(2);
    let (ping_tx, ping_rx) = mpsc::bounded::<u64>(1);
    let (pong_tx, pong_rx) = mpsc::bounded::<u64>(1);
    let ponger = rt.spawn(move || {
        let mut n = 0;
        while let Ok(v) = ping_rx.recv() {
            pong_tx.send(v + 1).unwrap();
            n += 1;
        }
        n
    });
    let last = rt.block_on(move || {
        let mut v = 0;
        for _ in 0..100_000 {
            ping_tx.send(v).unwrap();
            v = pong_rx.recv().unwrap();
        }
        v
    });
    assert_eq!(last, 100_000);
    assert_eq!(ponger.join().unwrap(), 100_000);
}

#[test]
fn rwlock_admits_many_readers_or_one_writer() {
    let rt = rt(2);
    let lock = Arc::new(RwLock::new(0u64));
    let readers_in = Arc::new(AtomicUsize::new(0));
    let max_readers = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for i in 0..200 {
        let (lock, readers_in, max_readers) =
            (lock.clone(), readers_in.clone(), max_readers.clone());
        handles.push(rt.spawn(move || {
            if i % 10 == 0 {
                let mut w = lock.write();
                assert_eq!(readers_in.load(Ordering::SeqCst), 0, "a writer saw readers");
                *w += 1;
                fiber_rt::yield_now();
            } else {
                let r = lock.read();
                let now = readers_in.fetch_add(1, Ordering::SeqCst) + 1;
                max_readers.fetch_max(now, Ordering::SeqCst);
                fiber_rt::sleep(Duration::from_millis(1));
                let _ = *r;
                readers_in.fetch_sub(1, Ordering::SeqCst);
            }
        }));
    }
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(*lock.read(), 20);
    assert!(
        max_readers.load(Ordering::SeqCst) > 1,
        "readers never overlapped"
    );
}

#[test]
fn condvar_hands_items_from_producer_to_consumer() {
    let rt = rt(2);
    let shared = Arc::new((Mutex::new(Vec::<u32>::new()), Condvar::new()));
    let consumer = {
        let shared = shared.clone();
        rt.spawn(move || {
            let (lock, cv) = &*shared;
            let mut got = Vec::new();
            while got.len() < 1000 {
                let mut q = cv.wait_while(lock.lock(), |q| q.is_empty());
                got.append(&mut q);
            }
            got
        })
    };
    for i in 0..1000 {
        let (lock, cv) = &*shared;
        lock.lock().push(i);
        cv.notify_one();
        if i % 100 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert_eq!(consumer.join().unwrap(), (0..1000).collect::<Vec<_>>());
}

#[test]
fn oneshot_wait_group_and_barrier() {
    let rt = rt(2);
    let (tx, rx) = oneshot::channel();
    rt.spawn(move || {
        fiber_rt::sleep(Duration::from_millis(5));
        tx.send("hello").unwrap();
    });
    assert_eq!(rt.block_on(move || rx.recv().unwrap()), "hello");

    let (tx, rx) = oneshot::channel::<u8>();
    drop(tx);
    assert_eq!(rx.recv(), Err(oneshot::RecvError));

    let wg = WaitGroup::new();
    let done = Arc::new(AtomicUsize::new(0));
    wg.add(20);
    for _ in 0..20 {
        let (wg, done) = (wg.clone(), done.clone());
        rt.spawn(move || {
            fiber_rt::sleep(Duration::from_millis(2));
            done.fetch_add(1, Ordering::SeqCst);
            wg.done();
        });
    }
    wg.wait(); // from a plain thread
    assert_eq!(done.load(Ordering::SeqCst), 20);

    let barrier = Arc::new(Barrier::new(8));
    let before = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (barrier, before) = (barrier.clone(), before.clone());
            rt.spawn(move || {
                before.fetch_add(1, Ordering::SeqCst);
                let leader = barrier.wait().is_leader();
                assert_eq!(
                    before.load(Ordering::SeqCst),
                    8,
                    "released before all arrived"
                );
                leader
            })
        })
        .collect();
    let leaders = handles
        .into_iter()
        .filter(|_| true)
        .map(|h| h.join().unwrap())
        .filter(|&l| l)
        .count();
    assert_eq!(leaders, 1);
}

#[test]
fn a_mutex_shared_by_threads_and_fibers() {
    let rt = rt(2);
    let m = Arc::new(Mutex::new(0u64));
    let fibers: Vec<_> = (0..8)
        .map(|_| {
            let m = m.clone();
            rt.spawn(move || {
                for _ in 0..2000 {
                    *m.lock() += 1;
                }
            })
        })
        .collect();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                for _ in 0..2000 {
                    *m.lock() += 1;
                }
            })
        })
        .collect();
    fibers.into_iter().for_each(|h| h.join().unwrap());
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(*m.lock(), 20_000);
}

#[test]
fn dropping_the_receiver_fails_blocked_senders() {
    let rt = rt(2);
    let (tx, rx) = mpsc::bounded::<u32>(1);
    tx.send(1).unwrap();
    let sender = rt.spawn(move || tx.send(2)); // parks: the channel is full
    std::thread::sleep(Duration::from_millis(20));
    drop(rx);
    assert_eq!(sender.join().unwrap().unwrap_err().0, 2);
}

/// Many fibers wake each other through every primitive with random yields
/// and sleeps between the steps, from fibers and from a plain thread, so
/// that wake-ups land at every point of a park (before, during and after
/// the switch). A lost wake-up shows as a hang, caught by the watchdog.
#[test]
fn randomized_park_unpark_races_lose_no_wake_up() {
    let iterations = if cfg!(debug_assertions) { 60 } else { 300 };
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for seed in 1..=iterations {
            let rt = rt(2);
            let total = Arc::new(AtomicUsize::new(0));
            let mut handles = Vec::new();
            let (tx, rx) = mpsc::bounded::<u64>(2);
            let m = Arc::new(Mutex::new(0u64));
            for f in 0..16u64 {
                let (tx, m, total) = (tx.clone(), m.clone(), total.clone());
                handles.push(rt.spawn(move || {
                    let mut rng = Rng(seed * 7919 + f + 1);
                    for i in 0..50 {
                        match rng.next() % 4 {
                            0 => fiber_rt::yield_now(),
                            1 => fiber_rt::sleep(Duration::from_micros(rng.next() % 200)),
                            _ => {}
                        }
                        *m.lock() += 1;
                        tx.send(f * 1000 + i).unwrap();
                    }
                    total.fetch_add(1, Ordering::SeqCst);
                }));
            }
            drop(tx);
            // The consumer is a plain thread: its wake-ups cross runtimes' edges.
            let received = std::thread::spawn(move || rx.iter().count())
                .join()
                .unwrap();
            handles.into_iter().for_each(|h| h.join().unwrap());
            assert_eq!(received, 16 * 50, "seed {seed}");
            assert_eq!(*m.lock(), 16 * 50, "seed {seed}");
            assert_eq!(total.load(Ordering::SeqCst), 16);
        }
        done_tx.send(()).unwrap();
    });
    done_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("a wake-up was lost: the stress hung");
}

/// A `try_lock` that fails must leave the holder's lock alone (it once
/// built a guard it then dropped, unlocking the mutex under its holder).
#[test]
fn a_failed_try_lock_leaves_the_lock_held() {
    let mutex = Mutex::new(0);
    let held = mutex.lock();
    assert!(mutex.try_lock().is_none());
    assert!(mutex.try_lock().is_none(), "still held after a failed try");
    drop(held);
    assert!(mutex.try_lock().is_some());
}

#[test]
fn a_wait_group_count_that_would_overflow_panics_instead_of_wrapping() {
    // Wrapped to zero, the count would let new waits through while a fiber
    // parked on the old count waits for good.
    let rt = Builder::new().workers(2).build().unwrap();
    let group = WaitGroup::new();
    group.add(1);
    let waiter = rt.spawn({
        let group = group.clone();
        move || group.wait()
    });
    let overflow = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| group.add(usize::MAX)));
    assert!(overflow.is_err(), "the add panics");
    assert_eq!(group.count(), 1, "and leaves the count as it was");
    group.done();
    waiter.join().unwrap();
}

#[test]
fn a_channel_tells_its_length_bound_and_whether_the_other_side_is_gone() {
    let (tx, rx) = mpsc::bounded::<u32>(4);
    assert_eq!((tx.capacity(), rx.capacity()), (Some(4), Some(4)));
    assert!(tx.is_empty() && rx.is_empty());
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    assert_eq!((tx.len(), rx.len()), (2, 2));
    assert!(!tx.is_closed() && !rx.is_closed());
    drop(tx);
    assert!(rx.is_closed(), "every sender gone");
    assert_eq!(rx.recv(), Ok(1), "what is left can still be received");
    let (tx, rx) = mpsc::unbounded::<u32>();
    assert_eq!(tx.capacity(), None);
    drop(rx);
    assert!(tx.is_closed(), "the receiver is gone");
    assert_eq!(mpsc::bounded::<u8>(0).0.capacity(), Some(0), "a rendezvous");
}

/// A fiber that takes the lock again right after each release, and keeps
/// it across a park each time, must not keep a waiter out for good: the
/// release wakes the waiter, but the holder, still running, takes the
/// lock back before it runs.
#[test]
fn a_holder_that_locks_again_at_once_does_not_starve_a_waiter() {
    const ROUNDS: usize = 300;
    for workers in [1, 2] {
        let rt = rt(workers);
        let lock = Arc::new(Mutex::new(()));
        // The holder's rounds so far; `ROUNDS` stops it.
        let rounds = Arc::new(AtomicUsize::new(0));
        let holder = {
            let (lock, rounds) = (lock.clone(), rounds.clone());
            rt.spawn(move || {
                while rounds.load(Ordering::Relaxed) < ROUNDS {
                    let _held = lock.lock();
                    rounds.fetch_add(1, Ordering::Relaxed);
                    fiber_rt::sleep(Duration::from_millis(1));
                }
            })
        };
        while rounds.load(Ordering::Relaxed) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let start = rounds.load(Ordering::Relaxed);
        let waiter = {
            let (lock, rounds) = (lock.clone(), rounds.clone());
            rt.spawn(move || {
                let _held = lock.lock();
                rounds.swap(ROUNDS, Ordering::Relaxed)
            })
        };
        let seen = waiter.join().unwrap();
        holder.join().unwrap();
        // Without the hand-over the waiter got it only after the last of
        // the 300 rounds; the bound leaves room for a loaded machine.
        assert!(
            seen < start + ROUNDS / 2,
            "{workers} worker(s): the waiter got the lock after {} of the holder's rounds",
            seen - start
        );
    }
}
