//! `broadcast`: every receiver gets every message in order (fibers and
//! plain threads), a receiver the ring overtook is told exactly how many
//! it missed, the channel closes when the senders are gone, messages are
//! dropped once everyone has them, and a cancelled wait leaves the others
//! to be woken.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use fiber_rt::sync::broadcast::{self, RecvError, RecvTimeoutError, TryRecvError};
use fiber_rt::{Builder, JoinError, JoinHandle, Runtime};

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

/// Receives until the channel closes, checking that the messages are
/// `0, 1, 2, ..` with gaps exactly as long as the `Lagged` counts say;
/// returns how many were received and how many missed.
fn follow(mut rx: broadcast::Receiver<u64>) -> (u64, u64) {
    let (mut expected, mut received, mut missed) = (0, 0, 0);
    loop {
        match rx.recv() {
            Ok(n) => {
                assert_eq!(n, expected, "out of order, or a gap not told");
                expected += 1;
                received += 1;
            }
            Err(RecvError::Lagged(n)) => {
                assert!(n > 0);
                expected += n;
                missed += n;
            }
            Err(RecvError::Closed) => return (received, missed),
        }
    }
}

#[test]
fn every_receiver_gets_every_message_in_order() {
    const MESSAGES: u64 = 5_000;
    let rt = rt(2);
    // Room for every message: nobody lags.
    let (tx, rx) = broadcast::channel::<u64>(MESSAGES as usize);
    let fibers: Vec<_> = (0..4)
        .map(|_| {
            let rx = rx.clone();
            rt.spawn(move || follow(rx))
        })
        .collect();
    let thread = {
        let rx = rx.clone();
        std::thread::spawn(move || follow(rx))
    };
    drop(rx);
    rt.spawn(move || {
        for n in 0..MESSAGES {
            assert_eq!(tx.send(n), Ok(5));
            if n % 100 == 0 {
                fiber_rt::yield_now();
            }
        }
    })
    .join()
    .unwrap();
    for fiber in fibers {
        assert_eq!(join_within_a_minute(fiber).unwrap(), (MESSAGES, 0));
    }
    assert_eq!(thread.join().unwrap(), (MESSAGES, 0));
}

#[test]
fn receivers_racing_a_small_ring_miss_only_what_they_are_told_of() {
    const MESSAGES: u64 = 20_000;
    let rt = rt(2);
    let (tx, rx) = broadcast::channel::<u64>(8);
    let receivers: Vec<_> = (0..3)
        .map(|_| {
            let rx = rx.clone();
            rt.spawn(move || follow(rx))
        })
        .collect();
    drop(rx);
    // Two senders, one after the other, so that the values stay in order.
    let senders = [tx.clone(), tx];
    rt.spawn(move || {
        let mut n = 0;
        for tx in senders {
            for _ in 0..MESSAGES / 2 {
                tx.send(n).unwrap();
                n += 1;
            }
        }
    })
    .join()
    .unwrap();
    for r in receivers {
        let (received, missed) = join_within_a_minute(r).unwrap();
        assert_eq!(received + missed, MESSAGES);
        assert!(received >= 8, "at least the last ring full");
    }
}

#[test]
fn a_receiver_overtaken_by_the_ring_is_told_how_many_it_missed() {
    let (tx, mut slow) = broadcast::channel::<u32>(4);
    let mut keeping_up = tx.subscribe();
    for n in 0..3 {
        tx.send(n).unwrap();
        assert_eq!(keeping_up.recv(), Ok(n));
    }
    assert_eq!(slow.len(), 3);
    for n in 3..10 {
        tx.send(n).unwrap();
        assert_eq!(keeping_up.try_recv(), Ok(n));
    }
    // 10 sent, the ring keeps the last 4: 6 missed.
    assert_eq!(slow.len(), 4);
    assert_eq!(slow.try_recv(), Err(TryRecvError::Lagged(6)));
    assert_eq!(slow.recv(), Ok(6), "on from the oldest message kept");
    // A clone lags where its original does.
    for n in 10..15 {
        tx.send(n).unwrap();
        assert_eq!(keeping_up.try_recv(), Ok(n));
    }
    let mut clone = slow.clone();
    assert_eq!(slow.recv(), Err(RecvError::Lagged(4)));
    assert_eq!(
        clone.recv_timeout(Duration::from_secs(5)),
        Err(RecvTimeoutError::Lagged(4))
    );
    for rx in [&mut slow, &mut clone] {
        assert_eq!((rx.recv(), rx.recv()), (Ok(11), Ok(12)));
    }
    assert_eq!(keeping_up.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn the_last_sender_gone_closes_the_channel_after_the_messages_left() {
    let rt = rt(2);
    let (tx, mut rx) = broadcast::channel::<u32>(4);
    let parked: Vec<_> = (0..3)
        .map(|_| {
            let mut rx = rx.clone();
            rt.spawn(move || rx.recv())
        })
        .collect();
    std::thread::sleep(Duration::from_millis(5));
    let tx2 = tx.clone();
    drop(tx);
    tx2.send(1).unwrap();
    drop(tx2);
    for p in parked {
        assert_eq!(join_within_a_minute(p).unwrap(), Ok(1));
    }
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(rx.recv(), Err(RecvError::Closed));
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)),
        Err(RecvTimeoutError::Closed)
    );
    // A receiver parked when the last sender goes is woken with `Closed`.
    let (tx, rx) = broadcast::channel::<u32>(4);
    let waiting = {
        let mut rx = rx;
        rt.spawn(move || rx.recv())
    };
    std::thread::sleep(Duration::from_millis(5));
    drop(tx);
    assert_eq!(
        join_within_a_minute(waiting).unwrap(),
        Err(RecvError::Closed)
    );
}

#[test]
fn send_counts_the_receivers_and_fails_with_none() {
    let (tx, rx) = broadcast::channel::<&str>(4);
    assert_eq!(tx.receiver_count(), 1);
    assert_eq!(tx.send("a"), Ok(1));
    // New subscribers start with the next message; clones where they are.
    let mut fresh = rx.resubscribe();
    let mut from_tx = tx.subscribe();
    let mut clone = rx.clone();
    assert_eq!(tx.receiver_count(), 4);
    assert!(fresh.is_empty() && from_tx.is_empty());
    assert_eq!(clone.try_recv(), Ok("a"));
    assert_eq!(tx.send("b"), Ok(4));
    assert_eq!(fresh.try_recv(), Ok("b"));
    assert_eq!(from_tx.try_recv(), Ok("b"));
    assert_eq!(fresh.try_recv(), Err(TryRecvError::Empty));
    drop((rx, fresh, from_tx, clone));
    assert_eq!(tx.receiver_count(), 0);
    assert_eq!(tx.send("c").unwrap_err().0, "c");
    let mut late = tx.subscribe();
    assert_eq!(late.try_recv(), Err(TryRecvError::Empty), "nothing kept");
}

#[test]
fn recv_timeout_ends_at_its_limit_or_gets_what_comes_in_time() {
    let rt = rt(2);
    rt.block_on(|| {
        let (tx, mut rx) = broadcast::channel::<u32>(2);
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(5)),
            Err(RecvTimeoutError::Timeout)
        );
        let sender = fiber_rt::spawn(move || {
            fiber_rt::sleep(Duration::from_millis(2));
            tx.send(9).unwrap();
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(9));
        sender.join().unwrap();
    });
}

/// Counts its clones and its drops.
#[derive(Debug)]
struct Counted {
    clones: Arc<AtomicUsize>,
    drops: Arc<AtomicUsize>,
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.clones.fetch_add(1, SeqCst);
        Counted {
            clones: self.clones.clone(),
            drops: self.drops.clone(),
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
    }
}

#[test]
fn a_message_is_cloned_for_all_but_its_last_receiver_and_then_dropped() {
    let (clones, drops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let counted = || Counted {
        clones: clones.clone(),
        drops: drops.clone(),
    };
    let (tx, mut a) = broadcast::channel::<Counted>(8);
    let mut b = a.clone();
    let c = a.clone();
    tx.send(counted()).unwrap();
    tx.send(counted()).unwrap();
    drop(a.recv().unwrap());
    drop(b.recv().unwrap());
    assert_eq!((clones.load(SeqCst), drops.load(SeqCst)), (2, 2));
    // The last receiver still to take the first message goes: it is dropped.
    drop(c);
    assert_eq!(drops.load(SeqCst), 3);
    drop(a.recv().unwrap());
    // b is the last to take the second message: it gets it, no clone.
    drop(b.recv().unwrap());
    assert_eq!((clones.load(SeqCst), drops.load(SeqCst)), (3, 5));
    // A message pushed out of a full ring is dropped too.
    let (tx, rx) = broadcast::channel::<Counted>(1);
    tx.send(counted()).unwrap();
    tx.send(counted()).unwrap();
    assert_eq!(drops.load(SeqCst), 6);
    drop(rx);
    assert_eq!(drops.load(SeqCst), 7, "dropped with its last receiver");
    drop(tx);
}

#[test]
fn a_cancelled_wait_leaves_the_others_to_be_woken() {
    let rt = rt(2);
    let (tx, rx) = broadcast::channel::<u32>(4);
    let (parked_tx, parked) = std_mpsc::channel();
    let spawn_receiver = || {
        let (mut rx, parked_tx) = (rx.clone(), parked_tx.clone());
        rt.spawn(move || {
            parked_tx.send(()).unwrap();
            rx.recv()
        })
    };
    let (first, cancelled, last) = (spawn_receiver(), spawn_receiver(), spawn_receiver());
    (0..3).for_each(|_| parked.recv().unwrap());
    std::thread::sleep(Duration::from_millis(5));
    cancelled.cancel();
    assert!(join_within_a_minute(cancelled).unwrap_err().is_cancelled());
    // Its receiver went with it: three left, counting `rx`.
    assert_eq!(tx.send(7), Ok(3));
    assert_eq!(join_within_a_minute(first).unwrap(), Ok(7));
    assert_eq!(join_within_a_minute(last).unwrap(), Ok(7));
}
