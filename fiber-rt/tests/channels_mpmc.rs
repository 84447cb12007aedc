//! `mpmc`: every message goes to exactly one of several receivers, from
//! fibers and plain threads; disconnection from either side; `Select`;
//! time limits; and cancelled waiters that pass on what they were handed.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use fiber_rt::sync::mpmc::{self, RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
use fiber_rt::sync::Select;
use fiber_rt::{Builder, JoinError, JoinHandle, Runtime};

fn rt(workers: usize) -> Runtime {
    Builder::new().workers(workers).build().unwrap()
}

/// Without preemption, so that a fiber is cancelled only where it parks,
/// never between taking what it waited for and returning it.
fn rt_cancel_at_parks_only() -> Runtime {
    Builder::new()
        .workers(2)
        .preempt_signals(false)
        .build()
        .unwrap()
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

/// Checks that `received`, gathered from every consumer, holds each of
/// `producers * per` messages `(producer, i)` exactly once, and that each
/// consumer saw each producer's messages in order.
fn assert_each_once(received: Vec<Vec<(usize, usize)>>, producers: usize, per: usize) {
    let mut seen = vec![false; producers * per];
    for consumer in &received {
        let mut last = vec![None; producers];
        for &(p, i) in consumer {
            assert!(!seen[p * per + i], "message ({p}, {i}) received twice");
            seen[p * per + i] = true;
            assert!(last[p] < Some(i), "producer {p}'s messages out of order");
            last[p] = Some(i);
        }
    }
    assert!(seen.iter().all(|&s| s), "a message was lost");
}

#[test]
fn four_producers_and_four_consumers_pass_50k_messages_each_exactly_once() {
    const PER: usize = 50_000;
    let rt = rt(2);
    for capacity in [Some(16), None] {
        let (tx, rx) = match capacity {
            Some(n) => mpmc::bounded::<(usize, usize)>(n),
            None => mpmc::unbounded(),
        };
        for p in 0..4 {
            let tx = tx.clone();
            rt.spawn(move || (0..PER).for_each(|i| tx.send((p, i)).unwrap()));
        }
        drop(tx);
        let consumers: Vec<_> = (0..4)
            .map(|_| {
                let rx = rx.clone();
                rt.spawn(move || rx.iter().collect::<Vec<_>>())
            })
            .collect();
        drop(rx);
        let received = consumers.into_iter().map(|c| c.join().unwrap()).collect();
        assert_each_once(received, 4, PER);
    }
}

#[test]
fn plain_threads_and_fibers_share_one_channel_both_ways() {
    const PER: usize = 5_000;
    let rt = rt(2);
    let (tx, rx) = mpmc::bounded::<(usize, usize)>(4);
    // Two producers and two consumers on threads, as many on fibers.
    let threads: Vec<_> = (0..2)
        .map(|p| {
            let tx = tx.clone();
            std::thread::spawn(move || (0..PER).for_each(|i| tx.send((p, i)).unwrap()))
        })
        .collect();
    let fibers: Vec<_> = (2..4)
        .map(|p| {
            let tx = tx.clone();
            rt.spawn(move || (0..PER).for_each(|i| tx.send((p, i)).unwrap()))
        })
        .collect();
    drop(tx);
    let thread_consumers: Vec<_> = (0..2)
        .map(|_| {
            let rx = rx.clone();
            std::thread::spawn(move || rx.iter().collect::<Vec<_>>())
        })
        .collect();
    let fiber_consumers: Vec<_> = (0..2)
        .map(|_| {
            let rx = rx.clone();
            rt.spawn(move || rx.iter().collect::<Vec<_>>())
        })
        .collect();
    drop(rx);
    threads.into_iter().for_each(|t| t.join().unwrap());
    fibers.into_iter().for_each(|f| f.join().unwrap());
    let mut received: Vec<_> = thread_consumers
        .into_iter()
        .map(|c| c.join().unwrap())
        .collect();
    received.extend(fiber_consumers.into_iter().map(|c| c.join().unwrap()));
    assert_each_once(received, 4, PER);
}

#[test]
fn each_message_wakes_one_of_many_parked_receivers_and_none_is_lost() {
    let rt = rt(2);
    for round in 0..50 {
        let (tx, rx) = mpmc::unbounded::<usize>();
        let receivers: Vec<_> = (0..8)
            .map(|_| {
                let rx = rx.clone();
                rt.spawn(move || rx.recv().unwrap())
            })
            .collect();
        if round % 2 == 0 {
            // Mostly parked by now; otherwise they find the messages queued.
            std::thread::sleep(Duration::from_millis(1));
        }
        (0..8).for_each(|i| tx.send(i).unwrap());
        let mut got: Vec<_> = receivers
            .into_iter()
            .map(|r| join_within_a_minute(r).expect("each receiver got a message"))
            .collect();
        got.sort_unstable();
        assert_eq!(got, (0..8).collect::<Vec<_>>(), "round {round}");
        assert!(rx.is_empty());
    }
}

#[test]
fn the_last_sender_gone_wakes_every_parked_receiver_after_the_queue_drains() {
    let rt = rt(2);
    let (tx, rx) = mpmc::unbounded::<u32>();
    let parked: Vec<_> = (0..4)
        .map(|_| {
            let rx = rx.clone();
            rt.spawn(move || rx.recv())
        })
        .collect();
    let also_a_thread = {
        let rx = rx.clone();
        std::thread::spawn(move || rx.recv())
    };
    std::thread::sleep(Duration::from_millis(5));
    let tx2 = tx.clone();
    drop(tx);
    assert!(!rx.is_closed(), "one sender is left");
    tx2.send(7).unwrap();
    drop(tx2);
    let mut results: Vec<_> = parked
        .into_iter()
        .map(|r| join_within_a_minute(r).unwrap())
        .collect();
    results.push(also_a_thread.join().unwrap());
    // One got the message; the others learnt that no sender is left.
    assert_eq!(results.iter().filter(|r| **r == Ok(7)).count(), 1);
    assert_eq!(
        results
            .iter()
            .filter(|r| **r == Err(mpmc::RecvError))
            .count(),
        4
    );
    assert!(rx.is_closed());
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)),
        Err(RecvTimeoutError::Disconnected)
    );
}

/// Counts its drops: tells that the messages left were dropped.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn the_last_receiver_gone_fails_parked_senders_and_drops_what_is_queued() {
    let rt = rt(2);
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpmc::bounded::<Counted>(2);
    tx.send(Counted(drops.clone())).unwrap();
    tx.send(Counted(drops.clone())).unwrap();
    let parked: Vec<_> = (0..3)
        .map(|_| {
            let (tx, drops) = (tx.clone(), drops.clone());
            rt.spawn(move || tx.send(Counted(drops)).map_err(|e| e.0))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(5));
    let rx2 = rx.clone();
    drop(rx);
    assert!(!tx.is_closed(), "one receiver is left");
    drop(rx2);
    assert!(tx.is_closed());
    assert_eq!(drops.load(SeqCst), 2, "the queued messages were dropped");
    for sender in parked {
        // The message comes back, and is dropped here.
        assert!(join_within_a_minute(sender).unwrap().is_err());
    }
    assert_eq!(drops.load(SeqCst), 5);
    match tx.try_send(Counted(drops.clone())) {
        Err(TrySendError::Disconnected(_)) => {}
        other => panic!("expected Disconnected, got {other:?}"),
    }
    match tx.send_timeout(Counted(drops.clone()), Duration::from_secs(5)) {
        Err(SendTimeoutError::Disconnected(_)) => {}
        other => panic!("expected Disconnected, got {other:?}"),
    }
}

#[test]
fn waits_with_a_time_limit_end_at_it_or_get_what_comes_in_time() {
    let rt = rt(2);
    rt.block_on(|| {
        let (tx, rx) = mpmc::bounded::<u32>(1);
        let short = Duration::from_millis(5);
        assert_eq!(rx.recv_timeout(short), Err(RecvTimeoutError::Timeout));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        tx.send_timeout(1, short).unwrap();
        assert!(matches!(
            tx.send_timeout(2, short),
            Err(SendTimeoutError::Timeout(2))
        ));
        assert!(matches!(tx.try_send(2), Err(TrySendError::Full(2))));
        // A slot frees while the sender waits: the send goes through.
        let rx2 = rx.clone();
        let taker = fiber_rt::spawn(move || {
            fiber_rt::sleep(Duration::from_millis(2));
            rx2.recv().unwrap()
        });
        tx.send_timeout(2, Duration::from_secs(10)).unwrap();
        assert_eq!(taker.join().unwrap(), 1);
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(2));
    });
}

#[test]
fn a_channel_tells_its_length_bound_and_whether_the_other_side_is_gone() {
    let (tx, rx) = mpmc::bounded::<u32>(3);
    assert_eq!((tx.capacity(), rx.capacity()), (Some(3), Some(3)));
    assert!(tx.is_empty() && rx.is_empty());
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    let rx2 = rx.clone();
    assert_eq!((tx.len(), rx2.len()), (2, 2));
    assert_eq!(rx2.try_iter().collect::<Vec<_>>(), [1, 2]);
    assert_eq!(mpmc::unbounded::<u8>().0.capacity(), None);
    assert_eq!(mpmc::bounded::<u8>(0).0.capacity(), Some(0), "a rendezvous");
    tx.send(3).unwrap();
    drop(tx);
    assert_eq!(rx.into_iter().collect::<Vec<_>>(), [3]);
}

#[test]
fn select_wakes_for_a_message_that_a_clone_may_take_first() {
    let rt = rt(2);
    rt.block_on(|| {
        let (tx_a, rx_a) = mpmc::unbounded::<u32>();
        let (tx_b, rx_b) = mpmc::unbounded::<u32>();
        // A plain receiver competes with the select for channel a's messages.
        let rival = {
            let rx_a = rx_a.clone();
            fiber_rt::spawn(move || rx_a.iter().count())
        };
        let sender = fiber_rt::spawn(move || {
            for i in 0..200 {
                if i % 2 == 0 {
                    tx_a.send(i).unwrap();
                } else {
                    tx_b.send(i).unwrap();
                }
                fiber_rt::yield_now();
            }
        });
        let (mut from_a, mut from_b) = (0, 0);
        let mut sel = Select::new();
        let a = sel.recv(&rx_a);
        sel.recv(&rx_b);
        while from_b < 100 {
            let i = sel.ready();
            let rx = if i == a { &rx_a } else { &rx_b };
            match rx.try_recv() {
                Ok(_) if i == a => from_a += 1,
                Ok(_) => from_b += 1,
                // The rival took it: select again.
                Err(TryRecvError::Empty) => {}
                // The sender is done: b's messages are all queued.
                Err(TryRecvError::Disconnected) => {
                    from_b += rx_b.try_iter().count();
                    break;
                }
            }
        }
        sender.join().unwrap();
        assert_eq!(from_b, 100, "every message of b came through the select");
        drop(rx_a);
        // Channel a's messages went to one or the other, none lost.
        assert_eq!(from_a + rival.join().unwrap(), 100);
    });
}

#[test]
fn a_cancelled_receiver_passes_on_the_message_it_was_woken_for() {
    // The receiver is cancelled at varying moments around the send that
    // wakes it: it got the message, or the other receiver does.
    let rt = rt_cancel_at_parks_only();
    for round in 0..200u64 {
        let (tx, rx) = mpmc::unbounded::<u64>();
        let (parked_tx, parked) = std_mpsc::channel();
        let spawn_receiver = |parked_tx: std_mpsc::Sender<()>| {
            let rx = rx.clone();
            rt.spawn(move || {
                parked_tx.send(()).unwrap();
                rx.recv().unwrap()
            })
        };
        let cancelled = spawn_receiver(parked_tx.clone());
        parked.recv().unwrap();
        // So that it parks first and is the one the message wakes.
        std::thread::sleep(Duration::from_micros(200));
        let other = spawn_receiver(parked_tx);
        parked.recv().unwrap();
        for _ in 0..(round * 7919) % 2048 {
            std::hint::spin_loop();
        }
        if round % 2 == 0 {
            tx.send(round).unwrap();
            cancelled.cancel();
        } else {
            cancelled.cancel();
            tx.send(round).unwrap();
        }
        match join_within_a_minute(cancelled) {
            // It took the message: the other one needs another.
            Ok(got) => {
                assert_eq!(got, round);
                tx.send(round).unwrap();
            }
            Err(error) => assert!(error.is_cancelled()),
        }
        let got = join_within_a_minute(other).expect("the message reached the other receiver");
        assert_eq!(got, round);
        assert!(rx.is_empty());
    }
}

#[test]
fn a_cancelled_sender_passes_on_the_slot_it_was_handed() {
    let rt = rt_cancel_at_parks_only();
    for round in 0..200u64 {
        let (tx, rx) = mpmc::bounded::<u64>(1);
        tx.send(0).unwrap();
        let (parked_tx, parked) = std_mpsc::channel();
        let spawn_sender = |parked_tx: std_mpsc::Sender<()>, value: u64| {
            let tx = tx.clone();
            rt.spawn(move || {
                parked_tx.send(()).unwrap();
                tx.send(value).unwrap();
            })
        };
        let cancelled = spawn_sender(parked_tx.clone(), 1);
        parked.recv().unwrap();
        std::thread::sleep(Duration::from_micros(200));
        let other = spawn_sender(parked_tx, 2);
        parked.recv().unwrap();
        for _ in 0..(round * 7919) % 2048 {
            std::hint::spin_loop();
        }
        if round % 2 == 0 {
            cancelled.cancel();
            assert_eq!(rx.recv(), Ok(0));
        } else {
            assert_eq!(rx.recv(), Ok(0));
            cancelled.cancel();
        }
        // It sent its message, or unwound and left its slot to the other.
        let first_sent = join_within_a_minute(cancelled).is_ok();
        let mut got = vec![rx.recv().unwrap()];
        if got[0] == 1 {
            got.push(rx.recv().unwrap());
        }
        join_within_a_minute(other).expect("the slot reached the other sender");
        let expected: &[u64] = if first_sent { &[1, 2] } else { &[2] };
        assert_eq!(got, expected, "round {round}");
        assert!(rx.is_empty());
    }
}
