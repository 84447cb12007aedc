//! `Notify`: a wake-up with no data. A `notify_one` before the wait is
//! kept (once); `notify_waiters` wakes those waiting now and keeps
//! nothing; a cancelled waiter passes on a `notify_one` it was handed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fiber_rt::sync::Notify;
use fiber_rt::Builder;

/// Waits until `count`, which waiters bump just before they wait, reaches
/// `n` (plus the short pauses the callers add, as nothing tells when a
/// waiter is in line).
fn until(count: &AtomicUsize, n: usize) {
    // SeqCst: a plain flag read across threads; the order is all it needs.
    while count.load(Ordering::SeqCst) < n {
        fiber_rt::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_notify_one_before_the_wait_is_kept_once() {
    let notify = Notify::new();
    notify.notify_one();
    notify.notify_one();
    // The permit: no wait.
    assert!(notify.notified_timeout(Duration::from_secs(30)));
    // Only one was kept.
    assert!(!notify.notified_timeout(Duration::from_millis(10)));
}

#[test]
fn notify_one_wakes_one_waiter_at_a_time_in_order() {
    let rt = Builder::new().workers(2).build().unwrap();
    rt.block_on(|| {
        let notify = Arc::new(Notify::new());
        let waiting = Arc::new(AtomicUsize::new(0));
        let woken = Arc::new(AtomicUsize::new(0));
        let fibers: Vec<_> = (0..3)
            .map(|i| {
                let (notify, in_line, woken) = (notify.clone(), waiting.clone(), woken.clone());
                let fiber = fiber_rt::spawn(move || {
                    in_line.fetch_add(1, Ordering::SeqCst);
                    notify.notified();
                    woken.fetch_add(1, Ordering::SeqCst);
                    i
                });
                // In line in spawn order.
                until(&waiting, i + 1);
                fiber_rt::sleep(Duration::from_millis(2));
                fiber
            })
            .collect();
        for (i, fiber) in fibers.into_iter().enumerate() {
            notify.notify_one();
            assert_eq!(fiber.join().unwrap(), i);
            assert_eq!(
                woken.load(Ordering::SeqCst),
                i + 1,
                "one wake-up, one waiter"
            );
        }
    });
}

#[test]
fn notify_waiters_wakes_every_waiter_and_keeps_no_permit() {
    let rt = Builder::new().workers(2).build().unwrap();
    rt.block_on(|| {
        let notify = Arc::new(Notify::new());
        let waiting = Arc::new(AtomicUsize::new(0));
        let fibers: Vec<_> = (0..4)
            .map(|_| {
                let (notify, waiting) = (notify.clone(), waiting.clone());
                fiber_rt::spawn(move || {
                    waiting.fetch_add(1, Ordering::SeqCst);
                    notify.notified();
                })
            })
            .collect();
        until(&waiting, 4);
        fiber_rt::sleep(Duration::from_millis(5));
        notify.notify_waiters();
        fibers.into_iter().for_each(|f| f.join().unwrap());
        assert!(
            !notify.notified_timeout(Duration::from_millis(10)),
            "no permit"
        );
    });
}

#[test]
fn a_cancelled_waiter_passes_on_the_notify_one_it_was_handed() {
    let rt = Builder::new().workers(1).build().unwrap();
    rt.block_on(|| {
        let notify = Arc::new(Notify::new());
        let waiting = Arc::new(AtomicUsize::new(0));
        let first = {
            let (notify, waiting) = (notify.clone(), waiting.clone());
            fiber_rt::spawn(move || {
                waiting.fetch_add(1, Ordering::SeqCst);
                notify.notified();
            })
        };
        until(&waiting, 1);
        // On one worker, this fiber runs on: the first is handed the
        // wake-up and cancelled before it runs again.
        notify.notify_one();
        first.cancel();
        assert!(first.join().unwrap_err().is_cancelled());
        // The wake-up was not lost with it: it is the permit now.
        assert!(notify.notified_timeout(Duration::from_secs(30)));
    });
}

#[test]
fn plain_threads_wait_too() {
    let notify = Arc::new(Notify::new());
    let waiter = {
        let notify = notify.clone();
        std::thread::spawn(move || notify.notified())
    };
    while !waiter.is_finished() {
        notify.notify_waiters();
        std::thread::sleep(Duration::from_millis(1));
    }
    waiter.join().unwrap();
}

#[test]
fn a_notify_waiters_between_listen_and_wait_is_not_lost() {
    let notify = Notify::new();
    let listener = notify.listen();
    assert!(!listener.is_notified());
    notify.notify_waiters();
    assert!(listener.is_notified());
    assert!(listener.wait_timeout(Duration::from_secs(30)));
    // `notify_waiters` left no permit for a later wait.
    assert!(!notify.notified_timeout(Duration::from_millis(10)));
}

#[test]
fn a_listener_dropped_unwaited_passes_its_notify_one_on() {
    let notify = Notify::new();
    let first = notify.listen();
    let second = notify.listen();
    notify.notify_one();
    assert!(first.is_notified() && !second.is_notified());
    drop(first);
    assert!(second.is_notified(), "the next in line got it");
    second.wait();
    // Handed on, not copied: nothing is left over.
    assert!(!notify.notified_timeout(Duration::from_millis(10)));
}

#[test]
fn a_listener_dropped_unwaited_gives_the_permit_back() {
    let notify = Notify::new();
    notify.notify_one();
    let listener = notify.listen();
    assert!(listener.is_notified(), "it took the permit");
    drop(listener);
    assert!(notify.notified_timeout(Duration::from_secs(30)));
}

#[test]
fn a_listener_that_timed_out_leaves_the_line() {
    let notify = Notify::new();
    assert!(!notify.listen().wait_timeout(Duration::from_millis(5)));
    // Nobody in line: the next `notify_one` is kept as the permit.
    notify.notify_one();
    assert!(notify.notified_timeout(Duration::from_secs(30)));
}

fn spin(times: u64) {
    for _ in 0..times {
        std::hint::spin_loop();
    }
}

/// A state change announced with `notify_waiters` while the waiter is
/// between its look at the state and its wait: listening first, the
/// waiter never misses one. Waiting with `notified` after the look
/// instead misses some, and its round never ends. The waiter is a plain
/// thread, so that the two sides surely run at once.
#[test]
fn listening_before_the_look_misses_no_state_change() {
    const ROUNDS: u64 = 20_000;
    let rt = Builder::new().workers(2).build().unwrap();
    rt.block_on(|| {
        let notify = Arc::new(Notify::new());
        let state = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (ack, acks) = fiber_rt::sync::mpsc::unbounded::<u64>();
        let waiter = {
            let (notify, state) = (notify.clone(), state.clone());
            std::thread::spawn(move || {
                for round in 1..=ROUNDS {
                    loop {
                        let listener = notify.listen();
                        // Acquire: pairs with the setter's Release.
                        if state.load(Ordering::Acquire) >= round {
                            break;
                        }
                        // A varying pause between the look and the wait,
                        // where the change comes in some rounds.
                        spin(round % 1024);
                        assert!(
                            listener.wait_timeout(Duration::from_secs(30)),
                            "round {round}: the change was missed"
                        );
                    }
                    ack.send(round).unwrap();
                }
            })
        };
        for round in 1..=ROUNDS {
            spin(round * 7919 % 1024);
            // Release: what the waiter reads after its wake-up.
            state.store(round, Ordering::Release);
            notify.notify_waiters();
            assert_eq!(acks.recv().unwrap(), round);
        }
        waiter.join().unwrap();
    });
}
