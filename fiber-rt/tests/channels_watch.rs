//! `watch`: observers see the latest value, `changed` wakes every one of
//! them (fibers and plain threads), the sender's drop ends their waits
//! once they have seen its last value, waits that are cancelled or time
//! out change nothing for the others, and `wait_for` waits for a value
//! that satisfies it.

use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use fiber_rt::sync::watch::{self, RecvError, RecvTimeoutError};
use fiber_rt::{Builder, JoinError, JoinHandle, Runtime};

mod common;

fn rt(workers: usize) -> Runtime {
    Builder::new().workers(workers).build().unwrap()
}

/// Joins `handle` from a plain thread, failing the test instead of hanging
/// it if the fiber is not done within a minute.
fn join_within_a_minute<T: Send + 'static>(handle: JoinHandle<T>) -> Result<T, JoinError> {
    let (tx, rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(handle.join());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the fiber finished")
}

#[test]
fn observers_see_the_latest_value_and_whether_it_is_new_to_them() {
    let (tx, mut rx) = watch::channel("a");
    assert_eq!(*rx.borrow(), "a");
    assert!(!rx.borrow().has_changed(), "the first value counts as seen");
    assert_eq!(rx.has_changed(), Ok(false));
    tx.send("b").unwrap();
    tx.send("c").unwrap();
    assert_eq!(rx.has_changed(), Ok(true));
    let seen = rx.borrow();
    assert!(seen.has_changed());
    assert_eq!(*seen, "c", "only the latest value is kept");
    drop(seen);
    assert_eq!(rx.has_changed(), Ok(true), "borrow does not mark it seen");
    let seen = rx.borrow_and_update();
    assert!(seen.has_changed());
    assert_eq!(*seen, "c");
    drop(seen);
    assert_eq!(rx.has_changed(), Ok(false));
    assert!(!rx.borrow_and_update().has_changed());
    assert_eq!(*tx.borrow(), "c");
    assert_eq!(format!("{:?}", tx.borrow()), "\"c\"");
}

#[test]
fn changed_returns_at_once_for_an_unseen_value_and_marks_it_seen() {
    let (tx, mut rx) = watch::channel(0);
    tx.send(1).unwrap();
    assert_eq!(rx.changed(), Ok(()));
    assert_eq!(*rx.borrow(), 1);
    assert_eq!(rx.has_changed(), Ok(false));
    assert_eq!(
        rx.changed_timeout(Duration::from_millis(5)),
        Err(RecvTimeoutError::Timeout)
    );
}

#[test]
fn changed_wakes_every_parked_fiber_and_thread() {
    let rt = rt(2);
    for round in 1..=20u32 {
        let (tx, rx) = watch::channel(0u32);
        let fibers: Vec<_> = (0..6)
            .map(|_| {
                let mut rx = rx.clone();
                rt.spawn(move || {
                    rx.changed().unwrap();
                    *rx.borrow_and_update()
                })
            })
            .collect();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let mut rx = rx.clone();
                std::thread::spawn(move || {
                    rx.changed().unwrap();
                    *rx.borrow_and_update()
                })
            })
            .collect();
        if round % 2 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        tx.send(round).unwrap();
        for fiber in fibers {
            assert_eq!(join_within_a_minute(fiber).unwrap(), round);
        }
        for thread in threads {
            assert_eq!(thread.join().unwrap(), round);
        }
    }
}

#[test]
fn observers_see_the_value_only_move_forward_and_always_see_the_last() {
    const LAST: u64 = 20_000;
    let rt = rt(2);
    let (tx, rx) = watch::channel(0u64);
    let watch_until_closed = move |mut rx: watch::Receiver<u64>| {
        let mut last = *rx.borrow_and_update();
        let mut looks = 0u64;
        while rx.changed().is_ok() {
            let now = *rx.borrow_and_update();
            assert!(now > last, "the value went from {last} back to {now}");
            last = now;
            looks += 1;
        }
        (last, looks)
    };
    let fibers: Vec<_> = (0..3)
        .map(|_| {
            let rx = rx.clone();
            rt.spawn(move || watch_until_closed(rx))
        })
        .collect();
    let thread = {
        let rx = rx.clone();
        std::thread::spawn(move || watch_until_closed(rx))
    };
    drop(rx);
    rt.spawn(move || {
        for v in 1..=LAST {
            tx.send_modify(|value| *value = v);
            if v % 64 == 0 {
                fiber_rt::yield_now();
            }
        }
    })
    .join()
    .unwrap();
    for fiber in fibers {
        let (last, looks) = join_within_a_minute(fiber).unwrap();
        assert_eq!(last, LAST);
        assert!(looks <= LAST);
    }
    assert_eq!(thread.join().unwrap().0, LAST);
}

#[test]
fn the_senders_drop_ends_waits_once_its_last_value_was_seen() {
    let rt = rt(2);
    let (tx, mut rx) = watch::channel(1);
    let parked: Vec<_> = (0..3)
        .map(|_| {
            let mut rx = rx.clone();
            rt.spawn(move || rx.changed())
        })
        .collect();
    std::thread::sleep(Duration::from_millis(5));
    tx.send(2).unwrap();
    drop(tx);
    for p in parked {
        // Woken by the send, or by the drop with the new value unseen.
        assert_eq!(join_within_a_minute(p).unwrap(), Ok(()));
    }
    // An unseen value still comes through, then the end.
    assert_eq!(rx.has_changed(), Ok(true));
    assert_eq!(rx.changed(), Ok(()));
    assert_eq!(*rx.borrow(), 2, "the last value stays");
    assert_eq!(rx.changed(), Err(RecvError));
    assert_eq!(rx.has_changed(), Err(RecvError));
    assert_eq!(
        rx.changed_timeout(Duration::from_secs(5)),
        Err(RecvTimeoutError::Closed)
    );
    // A receiver parked when the sender goes is woken with the error.
    let (tx, rx) = watch::channel(());
    let waiting = {
        let mut rx = rx.clone();
        rt.spawn(move || rx.changed())
    };
    std::thread::sleep(Duration::from_millis(5));
    drop(tx);
    assert_eq!(join_within_a_minute(waiting).unwrap(), Err(RecvError));
}

#[test]
fn send_needs_a_receiver_and_the_others_do_not() {
    let (tx, rx) = watch::channel(String::from("a"));
    assert_eq!(tx.receiver_count(), 1);
    let rx2 = rx.clone();
    let mut rx3 = tx.subscribe();
    assert_eq!(tx.receiver_count(), 3);
    assert_eq!(
        rx3.has_changed(),
        Ok(false),
        "subscribed at the current value"
    );
    drop((rx, rx2));
    assert!(!tx.is_closed());
    drop(rx3.borrow_and_update());
    drop(rx3);
    assert!(tx.is_closed());
    assert_eq!(tx.send("b".into()).unwrap_err().0, "b", "nothing changed");
    assert_eq!(*tx.borrow(), "a");
    assert_eq!(tx.send_replace("c".into()), "a");
    tx.send_modify(|s| s.push('d'));
    assert_eq!(*tx.borrow(), "cd");
    let mut rx = tx.subscribe();
    assert!(!tx.send_if_modified(|_| false));
    assert_eq!(
        rx.has_changed(),
        Ok(false),
        "an unmodified value is no news"
    );
    assert!(tx.send_if_modified(|s| {
        s.push('e');
        true
    }));
    assert_eq!(rx.changed(), Ok(()));
    assert_eq!(*rx.borrow(), "cde");
}

#[test]
fn a_clone_has_seen_what_its_original_has() {
    let (tx, mut rx) = watch::channel(0);
    tx.send(1).unwrap();
    let unseen = rx.clone();
    rx.borrow_and_update();
    let seen = rx.clone();
    assert_eq!(unseen.has_changed(), Ok(true));
    assert_eq!(seen.has_changed(), Ok(false));
}

#[test]
fn a_send_waiting_for_a_borrow_parks_the_fiber_not_the_worker() {
    // One worker with no preemption backstop: had the send blocked the
    // thread, the fiber holding the borrow could never run to drop it.
    let rt = common::one_worker();
    let value = rt.block_on(|| {
        let (tx, rx) = watch::channel(0);
        let holder = fiber_rt::spawn(move || {
            let value = rx.borrow();
            fiber_rt::sleep(Duration::from_millis(5));
            let first = *value;
            drop(value);
            (first, rx)
        });
        fiber_rt::sleep(Duration::from_millis(1));
        tx.send(1).unwrap();
        let (first, rx) = holder.join().unwrap();
        let now = *rx.borrow();
        (first, now)
    });
    assert_eq!(value, (0, 1));
}

#[test]
fn a_cancelled_wait_leaves_the_others_to_be_woken() {
    let rt = rt(2);
    let (tx, rx) = watch::channel(0);
    let (parked_tx, parked) = std_mpsc::channel();
    let spawn_waiter = || {
        let (mut rx, parked_tx) = (rx.clone(), parked_tx.clone());
        rt.spawn(move || {
            parked_tx.send(()).unwrap();
            rx.changed().map(|()| *rx.borrow())
        })
    };
    let (first, cancelled, last) = (spawn_waiter(), spawn_waiter(), spawn_waiter());
    (0..3).for_each(|_| parked.recv().unwrap());
    std::thread::sleep(Duration::from_millis(5));
    cancelled.cancel();
    assert!(join_within_a_minute(cancelled).unwrap_err().is_cancelled());
    tx.send(7).unwrap();
    assert_eq!(join_within_a_minute(first).unwrap(), Ok(7));
    assert_eq!(join_within_a_minute(last).unwrap(), Ok(7));
}

#[test]
fn wait_for_returns_at_once_for_a_value_that_satisfies_it_already() {
    let (tx, mut rx) = watch::channel(3u32);
    // Seen already, and still looked at.
    let got = rx.wait_for(|&v| v == 3).unwrap();
    assert_eq!(*got, 3);
    assert!(!got.has_changed());
    drop(got);
    tx.send(4).unwrap();
    let got = rx.wait_for(|&v| v % 2 == 0).unwrap();
    assert_eq!(*got, 4);
    assert!(got.has_changed(), "new to this receiver");
    drop(got);
    assert_eq!(rx.has_changed(), Ok(false), "counted as seen");
}

#[test]
fn wait_for_waits_until_a_later_value_satisfies_it() {
    let rt = rt(2);
    let (tx, mut rx) = watch::channel(0u32);
    let (tested_tx, tested) = std_mpsc::channel();
    let waiter = rt.spawn(move || {
        let got = *rx
            .wait_for(|&v| {
                tested_tx.send(v).unwrap();
                v >= 3
            })
            .unwrap();
        (got, rx.has_changed())
    });
    for v in 1..=3 {
        // One value at a time, each once the last was looked at.
        assert_eq!(tested.recv_timeout(Duration::from_secs(60)), Ok(v - 1));
        tx.send(v).unwrap();
    }
    assert_eq!(join_within_a_minute(waiter).unwrap(), (3, Ok(false)));
    assert_eq!(tested.try_recv(), Ok(3));
}

/// A value that comes while `wait_for` waits is as new to the receiver as
/// one that was there before the call: its borrow says it changed.
#[test]
fn wait_for_says_a_value_that_came_while_it_waited_changed() {
    let rt = rt(2);
    let (tx, mut rx) = watch::channel(0u32);
    let waiter = rt.spawn(move || {
        let got = rx.wait_for(|&v| v == 1).unwrap();
        (*got, got.has_changed())
    });
    let setter = rt.spawn(move || {
        fiber_rt::yield_now();
        tx.send(1).unwrap();
        tx
    });
    let _tx = join_within_a_minute(setter).unwrap();
    assert_eq!(join_within_a_minute(waiter).unwrap(), (1, true));
}

#[test]
fn wait_for_fails_once_the_sender_is_gone_and_its_last_value_will_not_do() {
    let rt = rt(2);
    let (tx, mut rx) = watch::channel(0u32);
    let waiter = rt.spawn(move || {
        let missed = rx.wait_for(|&v| v > 10).map(|v| *v);
        // The last value is still looked at.
        let last = rx.wait_for(|&v| v == 5).map(|v| *v);
        (missed, last)
    });
    let setter = rt.spawn(move || {
        fiber_rt::yield_now();
        (1..=5).for_each(|v| tx.send(v).unwrap());
    });
    join_within_a_minute(setter).unwrap();
    assert_eq!(
        join_within_a_minute(waiter).unwrap(),
        (Err(RecvError), Ok(5))
    );
    // From a plain thread too, with the sender gone before the call.
    let (tx, mut rx) = watch::channel(1u32);
    drop(tx);
    assert_eq!(rx.wait_for(|&v| v == 2).map(|v| *v), Err(RecvError));
    assert_eq!(rx.wait_for(|&v| v == 1).map(|v| *v), Ok(1));
}
