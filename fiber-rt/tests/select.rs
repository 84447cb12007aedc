//! `Select`: waiting on several receivers, from fibers and plain threads,
//! with and without a time limit.

use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use fiber_rt::sync::{mpsc, oneshot, Select};
use fiber_rt::Builder;

#[test]
fn ready_names_the_receiver_a_message_came_to() {
    let rt = Builder::new().workers(2).build().unwrap();
    rt.block_on(|| {
        let (tx_a, rx_a) = mpsc::unbounded::<u32>();
        let (tx_b, rx_b) = mpsc::bounded::<&str>(1);
        let mut sel = Select::new();
        let a = sel.recv(&rx_a);
        let b = sel.recv(&rx_b);
        for round in 0..100u32 {
            // The message is sent once the selecting fiber is parked (or
            // before: either way `ready` must name the right one).
            let tx_a = tx_a.clone();
            let tx_b = tx_b.clone();
            let sender = fiber_rt::spawn(move || {
                fiber_rt::yield_now();
                if round % 2 == 0 {
                    tx_a.send(round).unwrap();
                } else {
                    tx_b.send("b").unwrap();
                }
            });
            let i = sel.ready();
            if round % 2 == 0 {
                assert_eq!(i, a);
                assert_eq!(rx_a.try_recv(), Ok(round));
            } else {
                assert_eq!(i, b);
                assert_eq!(rx_b.try_recv(), Ok("b"));
            }
            sender.join().unwrap();
        }
    });
}

#[test]
fn a_receiver_whose_senders_are_gone_is_ready() {
    let rt = Builder::new().workers(1).build().unwrap();
    rt.block_on(|| {
        let (tx_a, rx_a) = mpsc::unbounded::<u32>();
        let (tx_b, rx_b) = oneshot::channel::<u32>();
        let mut sel = Select::new();
        sel.recv(&rx_a);
        let b = sel.recv(&rx_b);
        let dropper = fiber_rt::spawn(move || {
            fiber_rt::sleep(Duration::from_millis(10));
            drop(tx_b);
        });
        assert_eq!(sel.ready(), b);
        assert_eq!(rx_b.try_recv(), Err(oneshot::TryRecvError::Disconnected));
        dropper.join().unwrap();
        drop(tx_a);
    });
}

#[test]
fn several_ready_receivers_take_turns() {
    let (tx_a, rx_a) = mpsc::unbounded::<u32>();
    let (tx_b, rx_b) = mpsc::unbounded::<u32>();
    for i in 0..10 {
        tx_a.send(i).unwrap();
        tx_b.send(i).unwrap();
    }
    let mut sel = Select::new();
    let a = sel.recv(&rx_a);
    let b = sel.recv(&rx_b);
    let mut picked = [0; 2];
    for _ in 0..10 {
        let i = sel.ready();
        picked[i] += 1;
        if i == a {
            rx_a.try_recv().unwrap();
        } else {
            assert_eq!(i, b);
            rx_b.try_recv().unwrap();
        }
    }
    assert_eq!(
        picked,
        [5, 5],
        "both always ready: each gets every other turn"
    );
}

#[test]
fn a_timed_out_select_leaves_the_receivers_usable() {
    let rt = Builder::new().workers(1).build().unwrap();
    let (tx_a, rx_a) = mpsc::unbounded::<u32>();
    let (_tx_b, rx_b) = oneshot::channel::<u32>();
    let rx_a = rt.block_on(move || {
        let mut sel = Select::new();
        sel.recv(&rx_a);
        sel.recv(&rx_b);
        let start = Instant::now();
        assert_eq!(sel.ready_timeout(Duration::from_millis(30)), None);
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert_eq!(sel.try_ready(), None);
        drop(sel);
        rx_a
    });
    // The receiver waits again, from a fiber, and a later send reaches it.
    let receiver = rt.spawn(move || rx_a.recv().unwrap());
    std::thread::sleep(Duration::from_millis(10));
    tx_a.send(7).unwrap();
    assert_eq!(receiver.join().unwrap(), 7);
}

#[test]
fn a_plain_thread_selects_too() {
    let (tx_a, rx_a) = mpsc::unbounded::<u32>();
    let (tx_b, rx_b) = mpsc::bounded::<u32>(4);
    let (done_tx, done) = std_mpsc::channel();
    let selector = std::thread::spawn(move || {
        let mut sel = Select::new();
        let a = sel.recv(&rx_a);
        let b = sel.recv(&rx_b);
        let mut sum = 0;
        loop {
            let i = sel.ready();
            assert!(i == a || i == b);
            let (this, other) = if i == a {
                (&rx_a, &rx_b)
            } else {
                (&rx_b, &rx_a)
            };
            match this.try_recv() {
                Ok(x) => sum += x,
                // Gone for good: what is left comes from the other one.
                Err(mpsc::TryRecvError::Disconnected) => {
                    sum += other.iter().sum::<u32>();
                    break;
                }
                Err(mpsc::TryRecvError::Empty) => panic!("ready, yet empty"),
            }
        }
        done_tx.send(sum).unwrap();
    });
    let rt = Builder::new().workers(2).build().unwrap();
    let a = rt.spawn(move || (1..=100).for_each(|x| tx_a.send(x).unwrap()));
    let b = rt.spawn(move || (1..=100).for_each(|x| tx_b.send(x * 1000).unwrap()));
    a.join().unwrap();
    b.join().unwrap();
    let sum = done
        .recv_timeout(Duration::from_secs(10))
        .expect("the thread finished");
    assert_eq!(sum, 5050 + 5_050_000);
    selector.join().unwrap();
}

#[test]
fn two_selects_on_one_shared_oneshot_receiver_both_wake() {
    let (tx, rx) = oneshot::channel::<u32>();
    let rx: &'static oneshot::Receiver<u32> = Box::leak(Box::new(rx));
    let (done_tx, done) = std_mpsc::channel();
    let selectors: Vec<_> = (0..2)
        .map(|_| {
            let done_tx = done_tx.clone();
            std::thread::spawn(move || {
                let mut sel = Select::new();
                sel.recv(rx);
                done_tx.send(sel.ready()).unwrap();
            })
        })
        .collect();
    // Both waiting by then, most likely (if not, one finds it ready).
    std::thread::sleep(Duration::from_millis(50));
    tx.send(7).unwrap();
    for _ in 0..2 {
        assert_eq!(done.recv_timeout(Duration::from_secs(10)), Ok(0));
    }
    selectors.into_iter().for_each(|t| t.join().unwrap());
}

#[test]
fn ready_timeout_with_no_receivers_waits_out_the_timeout() {
    let mut sel = Select::new();
    let start = Instant::now();
    assert_eq!(sel.ready_timeout(Duration::from_millis(20)), None);
    assert!(start.elapsed() >= Duration::from_millis(20));
}
