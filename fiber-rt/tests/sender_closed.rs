//! Senders that wait for their receivers to go (`closed`): a producer, a
//! publisher or a fiber computing an answer stops once nobody listens.

use std::time::Duration;

use fiber_rt::sync::{broadcast, mpmc, mpsc, oneshot, watch};
use fiber_rt::Builder;

#[test]
fn a_oneshot_sender_learns_that_its_receiver_gave_up() {
    let rt = Builder::new().workers(2).build().unwrap();
    rt.block_on(|| {
        let (mut tx, rx) = oneshot::channel::<u32>();
        assert!(!tx.is_closed());
        assert!(!tx.closed_timeout(Duration::from_millis(5)));
        let worker = fiber_rt::spawn(move || {
            tx.closed();
            tx.send(1)
        });
        fiber_rt::sleep(Duration::from_millis(5));
        drop(rx);
        assert_eq!(worker.join().unwrap(), Err(1), "the value comes back");
    });
}

#[test]
fn a_plain_thread_waits_for_the_receiver_to_go() {
    let (mut tx, rx) = oneshot::channel::<u32>();
    let sender = std::thread::spawn(move || {
        tx.closed();
        tx.is_closed()
    });
    std::thread::sleep(Duration::from_millis(5));
    assert!(!sender.is_finished(), "the receiver is still there");
    drop(rx);
    assert!(sender.join().unwrap());
}

#[test]
fn an_mpsc_producer_stops_when_its_receiver_goes() {
    let rt = Builder::new().workers(2).build().unwrap();
    rt.block_on(|| {
        let (tx, rx) = mpsc::unbounded::<u32>();
        let watcher = {
            let tx = tx.clone();
            fiber_rt::spawn(move || tx.closed())
        };
        tx.send(1).unwrap();
        assert_eq!(rx.recv(), Ok(1));
        assert!(!tx.closed_timeout(Duration::from_millis(5)));
        drop(rx);
        watcher.join().unwrap();
        assert!(tx.is_closed() && tx.closed_timeout(Duration::ZERO));
    });
}

#[test]
fn an_mpmc_sender_waits_for_the_last_receiver() {
    let rt = Builder::new().workers(2).build().unwrap();
    rt.block_on(|| {
        let (tx, rx) = mpmc::unbounded::<u32>();
        let rx2 = rx.clone();
        let watcher = fiber_rt::spawn(move || tx.closed_timeout(Duration::from_secs(30)));
        drop(rx);
        fiber_rt::sleep(Duration::from_millis(5));
        assert!(!watcher.is_finished(), "a receiver is left");
        drop(rx2);
        assert!(watcher.join().unwrap());
    });
}

#[test]
fn a_watch_publisher_stops_when_its_last_observer_goes() {
    let rt = Builder::new().workers(2).build().unwrap();
    rt.block_on(|| {
        let (tx, rx) = watch::channel(0u32);
        let rx2 = tx.subscribe();
        let publisher = fiber_rt::spawn(move || {
            let mut sent = 0;
            while !tx.closed_timeout(Duration::from_millis(1)) {
                sent += 1;
                let _ = tx.send(sent);
            }
            tx.is_closed()
        });
        drop(rx);
        fiber_rt::sleep(Duration::from_millis(5));
        assert!(!publisher.is_finished(), "an observer is left");
        drop(rx2);
        assert!(publisher.join().unwrap());
    });
}

#[test]
fn a_broadcast_sender_waits_for_the_last_receiver() {
    let rt = Builder::new().workers(2).build().unwrap();
    rt.block_on(|| {
        let (tx, rx) = broadcast::channel::<u32>(4);
        let rx2 = rx.resubscribe();
        let tx2 = tx.clone();
        let watcher = fiber_rt::spawn(move || {
            tx2.closed();
            tx2.receiver_count()
        });
        drop(rx);
        fiber_rt::sleep(Duration::from_millis(5));
        assert!(!watcher.is_finished(), "a receiver is left");
        assert!(!tx.closed_timeout(Duration::from_millis(1)));
        drop(rx2);
        assert_eq!(watcher.join().unwrap(), 0);
        assert!(tx.closed_timeout(Duration::ZERO));
    });
}
