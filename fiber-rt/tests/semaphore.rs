//! `Semaphore`: bounds on holders, first come first served, timeouts that
//! leave the queue as they found it, plain threads.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fiber_rt::sync::Semaphore;
use fiber_rt::Builder;

#[test]
fn never_more_holders_than_permits() {
    let rt = Builder::new().workers(2).build().unwrap();
    let gate = Arc::new(Semaphore::new(3));
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..200)
        .map(|i| {
            let (gate, inside, most) = (gate.clone(), inside.clone(), most.clone());
            rt.spawn(move || {
                let _permit = if i % 2 == 0 {
                    gate.acquire()
                } else {
                    gate.acquire_timeout(Duration::from_secs(60)).unwrap()
                };
                let now = inside.fetch_add(1, SeqCst) + 1;
                most.fetch_max(now, SeqCst);
                fiber_rt::yield_now();
                inside.fetch_sub(1, SeqCst);
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert!(
        most.load(SeqCst) <= 3,
        "{} holders at once",
        most.load(SeqCst)
    );
    assert_eq!(gate.available_permits(), 3, "every permit came back");
}

/// Waits until `gate` has `n` waiters (its Debug output says how many).
fn wait_for_waiters(gate: &Semaphore, n: usize) {
    let start = Instant::now();
    while !format!("{gate:?}").contains(&format!("waiting: {n} ")) {
        assert!(start.elapsed() < Duration::from_secs(10), "{gate:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_large_request_is_not_overtaken_by_smaller_ones() {
    let rt = Builder::new().workers(2).build().unwrap();
    let gate = Arc::new(Semaphore::new(2));
    let first = gate.try_acquire().unwrap();
    let second = gate.try_acquire().unwrap();
    let (order_tx, order) = std_mpsc::channel();

    let (g, tx) = (gate.clone(), order_tx.clone());
    let big = rt.spawn(move || {
        let permit = g.acquire_many(2);
        tx.send("big").unwrap();
        fiber_rt::sleep(Duration::from_millis(20));
        drop(permit);
    });
    wait_for_waiters(&gate, 1);
    let (g, tx) = (gate.clone(), order_tx);
    let small = rt.spawn(move || {
        let _permit = g.acquire();
        tx.send("small").unwrap();
    });
    wait_for_waiters(&gate, 2);

    // One permit back: free, but the first waiter wants two, and neither
    // the waiter behind it nor a `try_acquire` may take it.
    drop(first);
    assert_eq!(gate.available_permits(), 1);
    assert!(gate.try_acquire().is_none(), "others wait");
    assert!(
        order.recv_timeout(Duration::from_millis(50)).is_err(),
        "nobody got in"
    );

    drop(second);
    big.join().unwrap();
    small.join().unwrap();
    let order: Vec<_> = order.try_iter().collect();
    assert_eq!(order, ["big", "small"]);
    assert_eq!(gate.available_permits(), 2);
}

#[test]
fn a_waiter_that_times_out_lets_those_behind_it_go() {
    let rt = Builder::new().workers(1).build().unwrap();
    let gate = Arc::new(Semaphore::new(1));
    let g = gate.clone();
    let big = rt.spawn(move || {
        let start = Instant::now();
        let got = g.acquire_many_timeout(5, Duration::from_millis(50));
        assert!(got.is_none(), "only one permit exists");
        assert!(start.elapsed() >= Duration::from_millis(50));
    });
    wait_for_waiters(&gate, 1);
    // Queued behind the big request: it gets the free permit only once
    // the big one gives up.
    let (g, (got_tx, got)) = (gate.clone(), std_mpsc::channel());
    let small = rt.spawn(move || got_tx.send(g.acquire().permits()).unwrap());
    let got = got.recv_timeout(Duration::from_secs(10));
    assert_eq!(got, Ok(1), "the waiter behind the one that gave up got in");
    small.join().unwrap();
    big.join().unwrap();
    assert_eq!(gate.available_permits(), 1);
}

#[test]
fn permits_added_later_wake_waiters_in_order() {
    let rt = Builder::new().workers(2).build().unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let (tx, order) = std_mpsc::channel();
    let mut handles = Vec::new();
    for i in 0..4 {
        let (g, tx) = (gate.clone(), tx.clone());
        handles.push(rt.spawn(move || {
            g.acquire().forget();
            tx.send(i).unwrap();
        }));
        wait_for_waiters(&gate, i + 1);
    }
    for i in 0..4 {
        gate.add_permits(1);
        assert_eq!(order.recv_timeout(Duration::from_secs(10)).unwrap(), i);
    }
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(gate.available_permits(), 0, "forgotten permits stay taken");
}

#[test]
fn plain_threads_wait_too() {
    let gate = Arc::new(Semaphore::new(1));
    let inside = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (gate, inside) = (gate.clone(), inside.clone());
            std::thread::spawn(move || {
                for _ in 0..200 {
                    let _permit = gate.acquire();
                    assert_eq!(inside.fetch_add(1, SeqCst), 0, "one holder at a time");
                    std::thread::yield_now();
                    inside.fetch_sub(1, SeqCst);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(gate.available_permits(), 1);
    assert!(gate.acquire_timeout(Duration::from_millis(1)).is_some());
}

#[test]
fn owned_permits_move_into_fibers_and_come_back() {
    let rt = Builder::new().workers(2).build().unwrap();
    let gate = Arc::new(Semaphore::new(2));
    let inside = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..50)
        .map(|_| {
            let permit = gate.clone().acquire_many_owned(1);
            let inside = inside.clone();
            rt.spawn(move || {
                assert!(inside.fetch_add(1, SeqCst) < 2, "at most two hold a permit");
                fiber_rt::yield_now();
                inside.fetch_sub(1, SeqCst);
                drop(permit);
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(gate.available_permits(), 2);
    let all = gate.clone().try_acquire_many_owned(2).expect("both free");
    assert!(gate.clone().try_acquire_many_owned(1).is_none());
    drop(all);
    assert_eq!(gate.available_permits(), 2);
}

#[test]
fn the_count_of_permits_is_capped_so_it_never_overflows() {
    let gate = Semaphore::new(fiber_rt::sync::MAX_PERMITS);
    let permit = gate.acquire();
    let over = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| gate.add_permits(1)));
    assert!(over.is_err(), "more than MAX_PERMITS refused");
    drop(permit);
    assert_eq!(gate.available_permits(), fiber_rt::sync::MAX_PERMITS);
}

#[test]
fn forgotten_permits_leave_room_for_as_many_added() {
    use fiber_rt::sync::MAX_PERMITS;
    // A rate limiter: each request takes a permit and forgets it, and a
    // refill adds permits back; over time more are added than MAX_PERMITS.
    let limiter = Arc::new(Semaphore::new(MAX_PERMITS));
    limiter.acquire_many(MAX_PERMITS).forget();
    assert_eq!(limiter.available_permits(), 0);
    limiter.add_permits(1);
    limiter.clone().acquire_owned().forget();
    limiter.add_permits(1);
    assert_eq!(limiter.available_permits(), 1);
    // Held permits still count: the semaphore is full again.
    let held = limiter.try_acquire_many(1).expect("one is free");
    drop(held);
    let overflow = std::panic::catch_unwind(|| limiter.add_permits(MAX_PERMITS));
    assert!(overflow.is_err(), "more than MAX_PERMITS in all");
}
