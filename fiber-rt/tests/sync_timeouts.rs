//! Waits with a time limit: channels, condition variables, one-shot
//! channels, locks and `sleep_until`, from fibers and plain threads; and the race
//! between a timeout and a wake-up, which must neither lose a message or a
//! notification nor deliver one twice.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fiber_rt::sync::mpsc::{self, RecvTimeoutError, SendTimeoutError, TrySendError};
use fiber_rt::sync::{oneshot, Condvar, Mutex, RwLock};
use fiber_rt::{Builder, Runtime};

mod common;
use common::Rng;

fn rt(workers: usize) -> Runtime {
    Builder::new().workers(workers).build().unwrap()
}

const SHORT: Duration = Duration::from_millis(20);
const LONG: Duration = Duration::from_secs(20);

#[test]
fn recv_timeout_on_an_empty_channel_gives_up_after_its_time_on_a_fiber_and_a_thread() {
    let rt = rt(2);
    let (tx, rx) = mpsc::unbounded::<u32>();
    let waited = rt.block_on(move || {
        let start = Instant::now();
        assert_eq!(rx.recv_timeout(SHORT), Err(RecvTimeoutError::Timeout));
        (start.elapsed(), rx)
    });
    assert!(waited.0 >= SHORT, "gave up after {:?}", waited.0);
    let rx = waited.1;
    let start = Instant::now();
    assert_eq!(rx.recv_timeout(SHORT), Err(RecvTimeoutError::Timeout));
    assert!(start.elapsed() >= SHORT);
    // The channel still works after timeouts.
    tx.send(7).unwrap();
    assert_eq!(rx.recv_timeout(LONG), Ok(7));
}

#[test]
fn recv_timeout_returns_a_message_sent_while_it_waits_and_sees_the_senders_go() {
    let rt = rt(2);
    let (tx, rx) = mpsc::bounded::<u32>(4);
    rt.spawn(move || {
        fiber_rt::sleep(Duration::from_millis(5));
        tx.send(1).unwrap();
        fiber_rt::sleep(Duration::from_millis(5));
        drop(tx);
    });
    rt.block_on(move || {
        let start = Instant::now();
        assert_eq!(rx.recv_timeout(LONG), Ok(1));
        assert_eq!(rx.recv_timeout(LONG), Err(RecvTimeoutError::Disconnected));
        assert!(start.elapsed() < LONG / 2, "woken, not timed out");
    });
}

#[test]
fn try_send_and_send_timeout_give_the_message_back_when_full_or_disconnected() {
    let rt = rt(2);
    let (tx, rx) = mpsc::bounded::<u32>(1);
    rt.block_on(move || {
        assert!(tx.try_send(1).is_ok());
        assert!(matches!(tx.try_send(2), Err(TrySendError::Full(2))));
        let start = Instant::now();
        assert!(matches!(
            tx.send_timeout(3, SHORT),
            Err(SendTimeoutError::Timeout(3))
        ));
        assert!(start.elapsed() >= SHORT);
        assert_eq!(rx.recv(), Ok(1));
        assert!(tx.send_timeout(4, LONG).is_ok());
        assert_eq!(rx.try_recv(), Ok(4));
        drop(rx);
        assert!(matches!(tx.try_send(5), Err(TrySendError::Disconnected(5))));
        assert!(matches!(
            tx.send_timeout(6, LONG),
            Err(SendTimeoutError::Disconnected(6))
        ));
    });
}

#[test]
fn a_sender_waiting_with_a_timeout_gets_the_slot_a_receiver_frees() {
    let rt = rt(2);
    let (tx, rx) = mpsc::bounded::<u32>(1);
    tx.send(1).unwrap();
    rt.spawn(move || {
        fiber_rt::sleep(Duration::from_millis(5));
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.recv(), Ok(2));
    });
    rt.block_on(move || {
        assert!(tx.send_timeout(2, LONG).is_ok());
    });
}

/// Timeouts that race with sends: the receiver waits a random short time
/// for each message and tries again after a timeout. Every message arrives
/// once, in order, however the races fall.
#[test]
fn messages_racing_receive_timeouts_arrive_once_and_in_order() {
    const MESSAGES: u32 = 3_000;
    let rt = rt(2);
    let (tx, rx) = mpsc::bounded::<u32>(2);
    rt.spawn(move || {
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        for i in 0..MESSAGES {
            if rng.next().is_multiple_of(4) {
                std::thread::sleep(Duration::from_micros(rng.next() % 60));
            } else if rng.next().is_multiple_of(2) {
                fiber_rt::yield_now();
            }
            // Senders time out too, and try again.
            let mut value = i;
            loop {
                let wait = Duration::from_micros(rng.next() % 50);
                match tx.send_timeout(value, wait) {
                    Ok(()) => break,
                    Err(SendTimeoutError::Timeout(back)) => value = back,
                    Err(SendTimeoutError::Disconnected(_)) => panic!("receiver gone"),
                }
            }
        }
    });
    let timeouts = rt.block_on(move || {
        let mut rng = Rng(0x5eed_1234_abcd_0002);
        let mut timeouts = 0;
        let mut next = 0;
        loop {
            let wait = Duration::from_micros(rng.next() % 50);
            match rx.recv_timeout(wait) {
                Ok(value) => {
                    assert_eq!(value, next, "out of order or repeated");
                    next += 1;
                }
                Err(RecvTimeoutError::Timeout) => timeouts += 1,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        assert_eq!(next, MESSAGES, "a message was lost");
        timeouts
    });
    assert!(timeouts > 0, "the test never timed out: it raced nothing");
}

#[test]
fn condvar_wait_timeout_times_out_alone_and_not_when_notified() {
    let rt = rt(2);
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let p = pair.clone();
    rt.block_on(move || {
        let (lock, cv) = &*p;
        let start = Instant::now();
        let (guard, result) = cv.wait_timeout(lock.lock(), SHORT);
        assert!(result.timed_out());
        assert!(start.elapsed() >= SHORT);
        drop(guard);
        let p2 = p.clone();
        fiber_rt::spawn(move || {
            fiber_rt::sleep(Duration::from_millis(5));
            *p2.0.lock() = true;
            p2.1.notify_one();
        });
        let (guard, result) = cv.wait_timeout_while(lock.lock(), LONG, |ready| !*ready);
        assert!(*guard);
        assert!(!result.timed_out());
    });
    // From a plain thread too.
    let (lock, cv) = &*pair;
    let (guard, result) = cv.wait_timeout_while(lock.lock(), SHORT, |ready| !*ready);
    assert!(!result.timed_out(), "the condition already holds");
    drop(guard);
    *lock.lock() = false;
    let (_guard, result) = cv.wait_timeout_while(lock.lock(), SHORT, |ready| !*ready);
    assert!(result.timed_out());
}

/// Fibers wait with short timeouts for tokens that a producer hands out
/// one `notify_one` at a time: a notification that meets a timing-out
/// waiter must still reach someone, so every token is taken.
#[test]
fn condvar_tokens_racing_wait_timeouts_are_all_taken() {
    const TOKENS: usize = 2_000;
    const TAKERS: usize = 8;
    let rt = rt(2);
    let state = Arc::new((Mutex::new(0usize), Condvar::new()));
    let taken = Arc::new(AtomicUsize::new(0));
    let takers: Vec<_> = (0..TAKERS)
        .map(|t| {
            let state = state.clone();
            let taken = taken.clone();
            rt.spawn(move || {
                let mut rng = Rng(0x7a6e_0000 + t as u64 + 1);
                let (lock, cv) = &*state;
                while taken.load(Ordering::Relaxed) < TOKENS {
                    let wait = Duration::from_micros(rng.next() % 100);
                    let (mut tokens, _) = cv.wait_timeout_while(lock.lock(), wait, |n| *n == 0);
                    if *tokens > 0 {
                        *tokens -= 1;
                        taken.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    rt.block_on({
        let state = state.clone();
        move || {
            let mut rng = Rng(0x7a6e_ffff);
            for _ in 0..TOKENS {
                if rng.next().is_multiple_of(8) {
                    std::thread::sleep(Duration::from_micros(rng.next() % 80));
                }
                *state.0.lock() += 1;
                state.1.notify_one();
            }
        }
    });
    for t in takers {
        t.join().unwrap();
    }
    assert_eq!(taken.load(Ordering::Relaxed), TOKENS);
    assert_eq!(*state.0.lock(), 0);
}

#[test]
fn oneshot_try_recv_and_recv_timeout_wait_for_the_value_or_the_sender() {
    let rt = rt(2);
    let (tx, mut rx) = oneshot::channel::<u32>();
    assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Empty));
    rt.block_on(move || {
        assert_eq!(
            rx.recv_timeout(SHORT),
            Err(oneshot::RecvTimeoutError::Timeout)
        );
        fiber_rt::spawn(move || {
            fiber_rt::sleep(Duration::from_millis(5));
            tx.send(9).unwrap();
        });
        assert_eq!(rx.recv_timeout(LONG), Ok(9));
    });
    let (tx, mut rx) = oneshot::channel::<u32>();
    drop(tx);
    assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Disconnected));
    assert_eq!(
        rx.recv_timeout(LONG),
        Err(oneshot::RecvTimeoutError::Disconnected)
    );
}

#[test]
fn rwlock_try_read_and_try_write_take_the_lock_only_when_free() {
    let lock = RwLock::new(1);
    {
        let first = lock.try_read().expect("free");
        let second = lock.try_read().expect("readers share");
        assert!(lock.try_write().is_none(), "readers hold it");
        assert_eq!(*first + *second, 2);
    }
    {
        let mut writer = lock.try_write().expect("free again");
        *writer = 5;
        assert!(lock.try_read().is_none(), "a writer holds it");
        assert!(lock.try_write().is_none());
    }
    assert_eq!(*lock.read(), 5);
}

#[test]
fn lock_timeouts_give_up_while_the_lock_is_held_on_a_fiber_and_a_thread() {
    let rt = rt(2);
    let mutex = Arc::new(Mutex::new(0));
    let rwlock = Arc::new(RwLock::new(0));
    let (mutex2, rwlock2) = (mutex.clone(), rwlock.clone());
    let (held, hold) = (
        Arc::new(std::sync::Barrier::new(2)),
        Arc::new(std::sync::Barrier::new(2)),
    );
    let (held2, hold2) = (held.clone(), hold.clone());
    let holder = rt.spawn(move || {
        let _m = mutex2.lock();
        let _w = rwlock2.write();
        held2.wait();
        hold2.wait();
    });
    held.wait();
    // Timed out, from a fiber and from this thread.
    let waited = rt.block_on({
        let (mutex, rwlock) = (mutex.clone(), rwlock.clone());
        move || {
            let start = Instant::now();
            assert!(mutex.lock_timeout(SHORT).is_none());
            assert!(rwlock.read_timeout(SHORT).is_none());
            assert!(rwlock.write_timeout(SHORT).is_none());
            start.elapsed()
        }
    });
    assert!(waited >= SHORT * 3, "gave up after {waited:?}");
    let start = Instant::now();
    assert!(mutex.lock_timeout(SHORT).is_none());
    assert!(rwlock.write_timeout(SHORT).is_none());
    assert!(start.elapsed() >= SHORT * 2);
    hold.wait();
    holder.join().unwrap();
    // Free again: had at once, and the locks still work.
    *mutex.lock_timeout(LONG).expect("free") += 1;
    *rwlock.write_timeout(LONG).expect("free") += 1;
    assert_eq!(*rwlock.read_timeout(LONG).expect("free"), 1);
    assert_eq!(*mutex.lock(), 1);
}

#[test]
fn a_lock_waiter_that_timed_out_takes_no_wake_up_from_the_one_queued_after_it() {
    let rt = rt(2);
    let mutex = Arc::new(Mutex::new(()));
    let held = mutex.lock();
    let timed = rt.spawn({
        let mutex = mutex.clone();
        move || mutex.lock_timeout(Duration::from_millis(50)).is_some()
    });
    std::thread::sleep(Duration::from_millis(10));
    // Queued after the timed waiter, which gives up before the release.
    let waiting = rt.spawn({
        let mutex = mutex.clone();
        move || drop(mutex.lock())
    });
    assert!(!timed.join().unwrap(), "the lock was held all along");
    drop(held);
    assert!(
        waiting.join_timeout(LONG).is_ok(),
        "the release woke the waiter that had timed out, not the one waiting"
    );
}

#[test]
fn a_writer_that_times_out_lets_the_readers_queued_behind_it_in() {
    // A reader holds the lock; a writer waits with a time-out, and a
    // reader queued after it waits too (no reader passes a waiting
    // writer). When the writer gives up, that reader gets in at once,
    // while the first still holds the lock.
    let rt = rt(2);
    let lock = Arc::new(RwLock::new(()));
    let first = lock.read();
    let writer = rt.spawn({
        let lock = lock.clone();
        move || lock.write_timeout(Duration::from_millis(50)).is_some()
    });
    std::thread::sleep(SHORT);
    let reader = rt.spawn({
        let lock = lock.clone();
        move || drop(lock.read())
    });
    let start = Instant::now();
    while !reader.is_finished() {
        assert!(
            start.elapsed() < LONG,
            "the reader behind the writer that gave up never got in"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(first);
    assert!(
        !writer.join().unwrap(),
        "the writer got the lock a reader held"
    );
    reader.join().unwrap();
}

#[test]
fn lock_timeouts_racing_releases_lose_no_wake_up_and_never_share_the_lock() {
    lock_timeouts_race(16, 300);
}

/// The same race, longer: `cargo test --release --test sync_timeouts -- --ignored`.
#[test]
#[ignore]
fn lock_timeouts_racing_releases_for_long() {
    lock_timeouts_race(32, 20_000);
}

/// Fibers take each lock with random short time-outs, or without, and
/// hold it briefly: every one that got it counted once, inside; none
/// waited for good for a wake-up a timed-out waiter swallowed.
fn lock_timeouts_race(fibers: u64, rounds: u64) {
    let rt = rt(2);
    let mutex = Arc::new(Mutex::new((0u64, false)));
    let rwlock = Arc::new(RwLock::new((0u64, false)));
    let timeouts = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..fibers)
        .map(|f| {
            let (mutex, rwlock, timeouts) = (mutex.clone(), rwlock.clone(), timeouts.clone());
            rt.spawn(move || {
                let mut rng = Rng(0x7153_0000_0000_0001 + f);
                let mut got = 0;
                for _ in 0..rounds {
                    let wait = Duration::from_micros(rng.next() % 80);
                    let timed = rng.next().is_multiple_of(2);
                    let guard = if timed {
                        mutex.lock_timeout(wait)
                    } else {
                        Some(mutex.lock())
                    };
                    match guard {
                        Some(mut g) => {
                            assert!(!g.1, "two holders of the mutex");
                            g.1 = true;
                            g.0 += 1;
                            fiber_rt::yield_now();
                            g.1 = false;
                            got += 1;
                        }
                        None => {
                            timeouts.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    let wait = Duration::from_micros(rng.next() % 80);
                    match rng.next() % 3 {
                        0 => {
                            if let Some(g) = rwlock.read_timeout(wait) {
                                assert!(!g.1, "a reader beside a writer");
                            } else {
                                timeouts.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        1 => match rwlock.write_timeout(wait) {
                            Some(mut g) => {
                                assert!(!g.1, "two writers");
                                g.1 = true;
                                g.0 += 1;
                                fiber_rt::yield_now();
                                g.1 = false;
                            }
                            None => {
                                timeouts.fetch_add(1, Ordering::Relaxed);
                            }
                        },
                        _ => {
                            let mut g = rwlock.write();
                            g.0 += 1;
                        }
                    }
                }
                got
            })
        })
        .collect();
    let mut got = 0;
    for handle in handles {
        match handle.join_timeout(LONG * 3) {
            Ok(result) => got += result.unwrap(),
            Err(_) => panic!("a fiber waited for good: a wake-up was lost"),
        }
    }
    assert_eq!(mutex.lock().0, got);
    assert!(
        timeouts.load(Ordering::Relaxed) > 0,
        "nothing ever timed out: it raced nothing"
    );
}

#[test]
fn sleep_until_waits_for_its_deadline_and_not_for_one_gone_by() {
    let rt = rt(1);
    rt.block_on(|| {
        let start = Instant::now();
        if let Some(gone) = start.checked_sub(Duration::from_secs(3600)) {
            fiber_rt::sleep_until(gone);
        }
        fiber_rt::sleep_until(start);
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "a deadline gone by returns at once"
        );
        let deadline = Instant::now() + SHORT;
        fiber_rt::sleep_until(deadline);
        assert!(Instant::now() >= deadline);
    });
}
