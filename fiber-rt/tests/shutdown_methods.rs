//! `Runtime::shutdown_timeout` and `Runtime::shutdown_background`: a
//! shutdown with a time-out of its own, and one that does not wait.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use fiber_rt::Builder;

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
