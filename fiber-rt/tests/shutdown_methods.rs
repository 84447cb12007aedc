//! `Runtime::shutdown_timeout` and `Runtime::shutdown_background`: a
//! shutdown with a time-out of its own (any, `Duration::MAX` included),
//! and one that does not wait, after which no fiber spawned ever runs.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use fiber_rt::Builder;

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        // SeqCst: read by the test thread after the fiber's join.
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Waits, as it is dropped, for a message on `rx`, and then says so.
struct WaitsOnDrop {
    rx: Option<fiber_rt::sync::mpsc::Receiver<()>>,
    done: mpsc::Sender<()>,
}

impl Drop for WaitsOnDrop {
    fn drop(&mut self) {
        let _ = self.rx.take().unwrap().recv();
        let _ = self.done.send(());
    }
}

#[test]
fn shutdown_timeout_gives_up_on_a_stuck_destructor_after_its_own_time() {
    let rt = Builder::new()
        .workers(1)
        .shutdown_timeout(Duration::from_secs(3600))
        .build()
        .unwrap();
    // Nobody ever sends: the destructor waits for good.
    let (keep, rx) = fiber_rt::sync::mpsc::unbounded::<()>();
    let (done, _never) = mpsc::channel();
    let (started_tx, started) = mpsc::channel();
    let stuck = rt.spawn(move || {
        let _waits = WaitsOnDrop { rx: Some(rx), done };
        started_tx.send(()).unwrap();
        fiber_rt::sleep(Duration::from_secs(3600));
    });
    started.recv().unwrap();
    let start = Instant::now();
    rt.shutdown_timeout(Duration::from_millis(50));
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "waited the builder's hour"
    );
    assert!(stuck.join().unwrap_err().is_cancelled());
    drop(keep);
}

#[test]
fn shutdown_background_returns_while_a_destructor_still_waits() {
    let rt = Builder::new().workers(1).build().unwrap();
    let handle = rt.handle().clone();
    let (tx, rx) = fiber_rt::sync::mpsc::unbounded::<()>();
    let (done, unwound) = mpsc::channel();
    let (started_tx, started) = mpsc::channel();
    let waiting = rt.spawn(move || {
        let _waits = WaitsOnDrop { rx: Some(rx), done };
        started_tx.send(()).unwrap();
        fiber_rt::sleep(Duration::from_secs(3600));
    });
    started.recv().unwrap();
    rt.shutdown_background();
    assert!(handle.is_shut_down());
    // The destructor waits for this message, sent only once the call has
    // returned: a shutdown that waited for it would never have returned.
    tx.send(()).unwrap();
    unwound.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(waiting.join().unwrap_err().is_cancelled());
    // Spawns are refused from the moment the call returns.
    assert!(handle.spawn(|| ()).join().unwrap_err().is_cancelled());
}

#[test]
fn shutdown_timeout_of_duration_max_still_cancels_the_fibers() {
    let rt = Builder::new().workers(1).build().unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let (started_tx, started) = mpsc::channel();
    let f = rt.spawn(move || {
        let _f = flag;
        started_tx.send(()).unwrap();
        fiber_rt::sleep(Duration::from_secs(3600));
    });
    started.recv().unwrap();
    // `since + timeout` overflowed: the shutdown's thread panicked, and
    // nothing was cancelled.
    rt.shutdown_timeout(Duration::MAX);
    let d = dropped.load(Ordering::SeqCst);
    let r = f.join_timeout(Duration::from_secs(5));
    assert!(
        d && r.is_ok(),
        "destructor ran: {d}; join completed: {}",
        r.is_ok()
    );
}

#[test]
fn no_fiber_spawned_after_shutdown_background_returns_ever_runs() {
    // A worker that found a fiber just before the call, and started it
    // just after, ran it (a few in each hundred rounds): busy threads make
    // a searching worker's `yield_now` give its core away, which widens
    // that window.
    let stop = Arc::new(AtomicBool::new(false));
    let hogs: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || while !stop.load(Ordering::Relaxed) {})
        })
        .collect();
    let ran_after = Arc::new(AtomicUsize::new(0));
    for _ in 0..300 {
        let rt = Builder::new().workers(2).build().unwrap();
        let handle = rt.handle().clone();
        // Keep the workers searching: a stream of tiny spawns.
        let feeding = Arc::new(AtomicBool::new(true));
        let f2 = feeding.clone();
        let h2 = handle.clone();
        let feeder = std::thread::spawn(move || {
            while f2.load(Ordering::Relaxed) {
                drop(h2.spawn(|| ()));
                std::thread::yield_now();
            }
        });
        std::thread::sleep(Duration::from_millis(2));
        rt.shutdown_background();
        // Refused from here on: none of these may run.
        for _ in 0..20 {
            let r = ran_after.clone();
            drop(handle.spawn(move || {
                r.fetch_add(1, Ordering::SeqCst);
            }));
        }
        feeding.store(false, Ordering::Relaxed);
        feeder.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    hogs.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(
        ran_after.load(Ordering::SeqCst),
        0,
        "fibers spawned after shutdown_background ran"
    );
}

/// A fiber in a loop with a probe every ~2 ms: a zero time-out still
/// cancels it (it reaches its probe long before any real wait), so its
/// destructors have run when the drop returns.
#[test]
fn a_zero_timeout_still_cancels_a_fiber_with_probes() {
    let mut detached_runs = 0;
    for round in 0..20 {
        let rt = Builder::new().workers(1).build().unwrap();
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let spins = Arc::new(AtomicU64::new(0));
        let s = spins.clone();
        rt.spawn(move || {
            let _flag = flag;
            loop {
                // ~2 ms without a probe (a `for` loop has none inside).
                let start = Instant::now();
                for _ in 0..u64::MAX {
                    if start.elapsed() > Duration::from_millis(2) {
                        break;
                    }
                    std::hint::spin_loop();
                }
                s.fetch_add(1, Ordering::SeqCst);
                fiber_rt::preempt::point();
            }
        });
        while spins.load(Ordering::SeqCst) < 3 {
            std::thread::yield_now();
        }
        rt.shutdown_timeout(Duration::ZERO);
        if !dropped.load(Ordering::SeqCst) {
            detached_runs += 1;
            eprintln!("round {round}: the drop returned before the fiber unwound");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(detached_runs, 0);
}
