//! Channels of capacity 0 (`mpsc::bounded(0)`, `mpmc::bounded(0)`): a send
//! returns once a receiver has taken its message; a send whose wait ends
//! otherwise (time-out, receivers gone, cancellation) takes its message
//! back, so it is never delivered; `try_send` succeeds only while a
//! receiver waits.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fiber_rt::sync::mpsc::{self, SendTimeoutError, TryRecvError, TrySendError};
use fiber_rt::sync::{mpmc, Select};
use fiber_rt::{Builder, Runtime};

fn rt(workers: usize) -> Runtime {
    Builder::new().workers(workers).build().unwrap()
}

#[test]
fn a_send_returns_once_the_message_is_taken() {
    rt(2).block_on(|| {
        let (tx, rx) = mpsc::bounded::<u32>(0);
        assert_eq!(tx.capacity(), Some(0));
        let taken = Arc::new(AtomicBool::new(false));
        let receiver = {
            let taken = taken.clone();
            fiber_rt::spawn(move || {
                fiber_rt::sleep(Duration::from_millis(20));
                // SeqCst: a flag the sender reads once its send returns.
                taken.store(true, Ordering::SeqCst);
                rx.recv().unwrap()
            })
        };
        tx.send(7).unwrap();
        assert!(
            taken.load(Ordering::SeqCst),
            "send returned before the receiver came"
        );
        assert_eq!(receiver.join().unwrap(), 7);
    });
}

#[test]
fn a_send_that_times_out_takes_its_message_back() {
    let (tx, rx) = mpsc::bounded::<String>(0);
    match tx.send_timeout("late".to_owned(), Duration::from_millis(10)) {
        Err(SendTimeoutError::Timeout(value)) => assert_eq!(value, "late"),
        other => panic!("expected a time-out, got {other:?}"),
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "not delivered");
    assert_eq!(rx.len(), 0);
}

#[test]
fn try_send_succeeds_only_while_a_receiver_waits() {
    rt(2).block_on(|| {
        let (tx, rx) = mpsc::bounded::<u32>(0);
        assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
        let receiver = fiber_rt::spawn(move || rx.recv().unwrap());
        // Once the receiver parks, the message is handed to it.
        let mut value = 2;
        loop {
            match tx.try_send(value) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) => value = back,
                Err(other) => panic!("{other:?}"),
            }
            fiber_rt::sleep(Duration::from_millis(1));
        }
        assert_eq!(receiver.join().unwrap(), 2);
    });
}

#[test]
fn a_waiting_send_gets_its_message_back_when_the_receiver_goes() {
    rt(2).block_on(|| {
        let (tx, rx) = mpsc::bounded::<String>(0);
        let sender = fiber_rt::spawn(move || tx.send("unheard".to_owned()));
        // The message is offered (the sender waits) before the receiver
        // goes.
        while rx.is_empty() {
            fiber_rt::sleep(Duration::from_millis(1));
        }
        drop(rx);
        let back = sender.join().unwrap().unwrap_err();
        assert_eq!(back.0, "unheard");
    });
}

#[test]
fn a_cancelled_send_is_not_delivered() {
    rt(2).block_on(|| {
        let (tx, rx) = mpsc::bounded::<u32>(0);
        let sender = fiber_rt::spawn(move || tx.send(5));
        while rx.is_empty() {
            fiber_rt::sleep(Duration::from_millis(1));
        }
        sender.cancel();
        assert!(sender.join().unwrap_err().is_cancelled());
        assert!(
            matches!(rx.try_recv(), Err(TryRecvError::Disconnected)),
            "the cancelled send's message is gone, and so is its sender"
        );
    });
}

#[test]
fn select_sees_a_waiting_sender() {
    rt(2).block_on(|| {
        let (tx, rx) = mpsc::bounded::<u32>(0);
        let (_idle_tx, idle) = mpsc::bounded::<u32>(0);
        let sender = fiber_rt::spawn(move || tx.send(9));
        let mut sel = Select::new();
        let i = sel.recv(&idle);
        let r = sel.recv(&rx);
        let ready = sel.ready();
        assert_ne!(ready, i);
        assert_eq!(ready, r);
        assert_eq!(rx.try_recv(), Ok(9));
        sender.join().unwrap().unwrap();
    });
}

/// Four senders hand 5,000 messages each to two receivers, all on fibers
/// across two workers: each message is taken exactly once.
#[test]
fn many_senders_and_receivers_hand_every_message_over_once() {
    const SENDERS: u32 = 4;
    const EACH: u32 = 5_000;
    rt(2).block_on(|| {
        let (tx, rx) = mpmc::bounded::<u32>(0);
        let receivers: Vec<_> = (0..2)
            .map(|_| {
                let rx = rx.clone();
                fiber_rt::spawn(move || rx.iter().collect::<Vec<_>>())
            })
            .collect();
        drop(rx);
        let senders: Vec<_> = (0..SENDERS)
            .map(|s| {
                let tx = tx.clone();
                fiber_rt::spawn(move || {
                    for i in 0..EACH {
                        tx.send(s * EACH + i).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        for sender in senders {
            sender.join().unwrap();
        }
        let mut seen = HashSet::new();
        for receiver in receivers {
            for value in receiver.join().unwrap() {
                assert!(seen.insert(value), "{value} taken twice");
            }
        }
        assert_eq!(seen.len(), (SENDERS * EACH) as usize);
    });
}

#[test]
fn plain_threads_meet_too() {
    let (tx, rx) = mpsc::bounded::<u32>(0);
    let receiver = std::thread::spawn(move || (rx.recv().unwrap(), rx.recv().unwrap()));
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    assert_eq!(receiver.join().unwrap(), (1, 2));
}

/// Sets its flag when dropped.
struct Tracked(Arc<AtomicBool>);

impl Drop for Tracked {
    fn drop(&mut self) {
        // SeqCst: a flag the test reads after the drop.
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A `try_send` handed to a waiting receiver that is cancelled before it
/// takes the message leaves the message queued with no sender waiting for
/// it. The last receiver's drop must drop it, as it drops what a buffered
/// channel holds: nobody will ever take it, and its sender (a request's
/// reply channel, say) waits for it to go.
#[test]
fn a_try_sent_message_left_queued_goes_with_the_last_receiver() {
    rt(1).block_on(|| {
        let (tx, rx) = mpsc::bounded::<Tracked>(0);
        // The only receiver: its cancellation's unwind drops it.
        let receiver = fiber_rt::spawn(move || rx.recv().map(drop));
        let dropped = Arc::new(AtomicBool::new(false));
        let mut message = Tracked(dropped.clone());
        // Handed over while the receiver waits, and the receiver cancelled
        // before it runs again (one worker: it runs only once we wait).
        loop {
            match tx.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) => message = back,
                Err(e) => panic!("{e:?}"),
            }
            fiber_rt::sleep(Duration::from_millis(1));
        }
        receiver.cancel();
        assert!(receiver.join().unwrap_err().is_cancelled());
        assert!(tx.is_closed(), "the receiver is gone");
        assert!(
            dropped.load(Ordering::SeqCst),
            "the last receiver's drop left the message queued"
        );
        assert_eq!(tx.len(), 0);
    });
}

/// A zero time-out leaves no time to wait for the take: the message goes
/// to a receiver that waits already, as with `try_send`, or is not sent.
#[test]
fn a_zero_time_out_send_hands_over_only_to_a_waiting_receiver() {
    rt(2).block_on(|| {
        let (tx, rx) = mpsc::bounded::<u32>(0);
        assert_eq!(
            tx.send_timeout(1, Duration::ZERO),
            Err(SendTimeoutError::Timeout(1))
        );
        assert_eq!(rx.len(), 0, "nothing was queued");
        let receiver = fiber_rt::spawn(move || rx.recv().unwrap());
        let mut value = 2;
        loop {
            match tx.send_timeout(value, Duration::ZERO) {
                Ok(()) => break,
                Err(SendTimeoutError::Timeout(back)) => value = back,
                Err(other) => panic!("{other:?}"),
            }
            fiber_rt::sleep(Duration::from_millis(1));
        }
        assert_eq!(receiver.join().unwrap(), 2);
    });
}
