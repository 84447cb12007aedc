//! `block_on_future`: a fiber waits for a `Future` by parking, whoever
//! calls its waker, from whichever thread, whenever.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use fiber_rt::{block_on_future, Builder};

/// A value delivered later by someone holding the [`Delivery`].
#[derive(Default)]
struct Delivery {
    slot: Mutex<(Option<u64>, Option<Waker>)>,
}

impl Delivery {
    fn deliver(&self, value: u64) {
        let waker = {
            let mut slot = self.slot.lock().unwrap();
            slot.0 = Some(value);
            slot.1.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

struct Receive(Arc<Delivery>);

impl Future for Receive {
    type Output = u64;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        let mut slot = self.0.slot.lock().unwrap();
        match slot.0.take() {
            Some(value) => Poll::Ready(value),
            None => {
                slot.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[test]
fn a_waiting_fiber_parks_and_its_worker_runs_others() {
    // One worker, no preemption backstop to hand a blocked worker on: had
    // the wait blocked the thread, the second fiber (which delivers) never
    // ran.
    let rt = Builder::new()
        .workers(1)
        .preempt_signals(false)
        .build()
        .unwrap();
    let delivery = Arc::new(Delivery::default());
    let receiver = rt.spawn({
        let delivery = delivery.clone();
        move || block_on_future(Receive(delivery))
    });
    let deliverer = rt.spawn(move || {
        fiber_rt::sleep(Duration::from_millis(10));
        delivery.deliver(7);
    });
    deliverer.join().unwrap();
    assert_eq!(receiver.join().unwrap(), 7);
}

/// Pending `left` times, waking itself each time: from the poll itself
/// (before it returns), or from another thread a little later.
struct Bounce {
    left: u32,
    from_thread: bool,
}

impl Future for Bounce {
    type Output = &'static str;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<&'static str> {
        if self.left == 0 {
            return Poll::Ready("done");
        }
        self.left -= 1;
        if self.from_thread {
            let waker = cx.waker().clone();
            std::thread::spawn(move || waker.wake());
        } else {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

#[test]
fn wake_ups_before_and_after_pending_are_never_lost() {
    let rt = Builder::new().workers(2).build().unwrap();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            rt.spawn(move || {
                block_on_future(Bounce {
                    left: if i % 2 == 0 { 1000 } else { 50 },
                    from_thread: i % 2 == 1,
                })
            })
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap(), "done");
    }
    // From a plain thread too.
    assert_eq!(
        block_on_future(Bounce {
            left: 20,
            from_thread: true
        }),
        "done"
    );
}

#[test]
fn many_fibers_wait_for_deliveries_racing_from_threads() {
    let rt = Builder::new().workers(2).build().unwrap();
    let (tx, rx) = mpsc::channel::<Arc<Delivery>>();
    let deliverer = std::thread::spawn(move || {
        let mut delivered = 0u64;
        for delivery in rx {
            delivered += 1;
            delivery.deliver(delivered);
        }
        delivered
    });
    let total = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..64)
        .map(|_| {
            let (tx, total) = (tx.clone(), total.clone());
            rt.spawn(move || {
                for _ in 0..100 {
                    let delivery = Arc::new(Delivery::default());
                    tx.send(delivery.clone()).unwrap();
                    block_on_future(Receive(delivery));
                    total.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    drop(tx);
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(deliverer.join().unwrap(), 6400);
    assert_eq!(total.load(Ordering::Relaxed), 6400);
}

/// Never ready; says when it is dropped.
struct Forever(Arc<AtomicBool>);

impl Future for Forever {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl Drop for Forever {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_fiber_cancelled_while_it_waits_drops_the_future() {
    let rt = Builder::new().workers(2).build().unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    let waiting = rt.spawn({
        let dropped = dropped.clone();
        move || block_on_future(Forever(dropped))
    });
    std::thread::sleep(Duration::from_millis(20));
    waiting.cancel();
    let error = waiting.join().unwrap_err();
    assert!(error.is_cancelled(), "{error}");
    assert!(dropped.load(Ordering::SeqCst));
}

/// Pending, waking itself each time, until the flag is set: a future that
/// "yields" to others this way.
struct Spin(Arc<AtomicBool>);

impl Future for Spin {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn a_future_that_wakes_itself_lets_the_others_on_its_worker_run() {
    // One worker, no preemption signal: polling again at once, without a
    // switch, the waiter kept the fiber that sets the flag from ever
    // running.
    let rt = Builder::new()
        .workers(1)
        .preempt_signals(false)
        .build()
        .unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let waiter = rt.spawn({
        let flag = flag.clone();
        move || block_on_future(Spin(flag))
    });
    let setter = rt.spawn(move || flag.store(true, Ordering::SeqCst));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send((setter.join().is_ok(), waiter.join().is_ok()));
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(30))
            .expect("both finish"),
        (true, true)
    );
}
