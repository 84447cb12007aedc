//! `fiber_rt::signal`: listeners wake for deliveries of their own signal
//! made after they were, from fibers and plain threads alike.
//!
//! The tests share the process, and so its signals: each takes `SERIAL`
//! for its whole run, and waits until every signal it sends has been
//! counted before it ends. Timeouts here only guard against hangs.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fiber_rt::signal::{self, ctrl_c, RecvTimeoutError, SignalKind, TryRecvError};
use fiber_rt::{Builder, JoinError, JoinHandle, Runtime};

/// Long enough never to run out on a loaded machine; only a hang reaches it.
const GUARD: Duration = Duration::from_secs(60);

fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn runtime() -> Runtime {
    Builder::new().workers(2).build().unwrap()
}

/// Sends `signum` to this process.
fn send(signum: i32) {
    // SAFETY: `kill` has no memory-safety preconditions; every signal the
    // tests send has a listener, so its handler is installed.
    assert_eq!(unsafe { libc::kill(libc::getpid(), signum) }, 0);
}

fn join<T>(handle: JoinHandle<T>) -> Result<T, JoinError> {
    match handle.join_timeout(GUARD) {
        Ok(result) => result,
        Err(_) => panic!("the fiber did not finish in time"),
    }
}

#[test]
fn a_fiber_waiting_in_recv_wakes() {
    let _serial = serial();
    let rt = runtime();
    let mut usr1 = signal::signal(SignalKind::user_defined1()).unwrap();
    let (waiting_tx, waiting) = std_mpsc::channel();
    let fiber = rt.spawn(move || {
        waiting_tx.send(()).unwrap();
        usr1.recv()
    });
    waiting.recv().unwrap();
    send(libc::SIGUSR1);
    assert_eq!(join(fiber).unwrap(), Some(()));
}

#[test]
fn every_listener_of_a_signal_wakes() {
    let _serial = serial();
    let rt = runtime();
    let fibers: Vec<_> = (0..2)
        .map(|_| {
            let mut usr2 = signal::signal(SignalKind::user_defined2()).unwrap();
            rt.spawn(move || usr2.recv())
        })
        .collect();
    send(libc::SIGUSR2);
    for fiber in fibers {
        assert_eq!(join(fiber).unwrap(), Some(()));
    }
}

#[test]
fn a_listener_does_not_wake_for_another_signal() {
    let _serial = serial();
    let rt = runtime();
    let mut usr1 = signal::signal(SignalKind::user_defined1()).unwrap();
    let mut usr2 = signal::signal(SignalKind::user_defined2()).unwrap();
    send(libc::SIGUSR2);
    assert_eq!(usr2.recv_timeout(GUARD), Ok(()));
    assert_eq!(usr1.try_recv(), Err(TryRecvError::Empty));
    let fiber = rt.spawn(move || usr1.recv());
    send(libc::SIGUSR1);
    assert_eq!(join(fiber).unwrap(), Some(()));
    assert_eq!(usr2.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn a_signal_sent_before_the_listener_was_made_does_not_wake_it() {
    let _serial = serial();
    let mut witness = signal::signal(SignalKind::hangup()).unwrap();
    send(libc::SIGHUP);
    assert_eq!(
        witness.recv_timeout(GUARD),
        Ok(()),
        "the signal was counted"
    );
    let mut late = signal::signal(SignalKind::hangup()).unwrap();
    assert_eq!(late.try_recv(), Err(TryRecvError::Empty));
    send(libc::SIGHUP);
    assert_eq!(late.recv_timeout(GUARD), Ok(()));
    assert_eq!(witness.recv_timeout(GUARD), Ok(()));
}

#[test]
fn deliveries_between_two_recvs_count_as_one() {
    let _serial = serial();
    let mut listener = signal::signal(SignalKind::window_change()).unwrap();
    let mut witness = signal::signal(SignalKind::window_change()).unwrap();
    for _ in 0..3 {
        send(libc::SIGWINCH);
        // Each delivery counted before the next is sent, so that the
        // kernel does not merge them while one is pending.
        assert_eq!(witness.recv_timeout(GUARD), Ok(()));
    }
    assert_eq!(listener.try_recv(), Ok(()));
    assert_eq!(listener.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(
        listener.recv_timeout(Duration::from_millis(10)),
        Err(RecvTimeoutError::Timeout)
    );
}

#[test]
fn ctrl_c_returns_in_a_fiber_on_sigint() {
    let _serial = serial();
    // Installs the handler before any SIGINT is sent, which would
    // otherwise end the test process.
    let _installed = signal::signal(SignalKind::interrupt()).unwrap();
    let rt = runtime();
    let mut fiber = rt.spawn(ctrl_c);
    // Only a SIGINT after `ctrl_c` made its listener wakes it, and nothing
    // tells when that is: send one until it returns.
    for _ in 0..3000 {
        send(libc::SIGINT);
        fiber = match fiber.join_timeout(Duration::from_millis(20)) {
            Ok(result) => {
                result.unwrap().unwrap();
                return;
            }
            Err(fiber) => fiber,
        };
    }
    panic!("ctrl_c did not return");
}

#[test]
fn a_plain_thread_blocks_in_recv() {
    let _serial = serial();
    let mut terminate = signal::signal(SignalKind::terminate()).unwrap();
    let (done_tx, done) = std_mpsc::channel();
    let thread = std::thread::spawn(move || done_tx.send(terminate.recv()).unwrap());
    send(libc::SIGTERM);
    assert_eq!(done.recv_timeout(GUARD), Ok(Some(())));
    thread.join().unwrap();
}

#[test]
fn a_real_time_signal_by_number() {
    let _serial = serial();
    let kind = SignalKind::from_raw(libc::SIGRTMIN() + 1);
    assert_eq!(kind.to_string(), "SIGRTMIN+1");
    let rt = runtime();
    let mut listener = signal::signal(kind).unwrap();
    let fiber = rt.spawn(move || listener.recv());
    send(kind.as_raw_value());
    assert_eq!(join(fiber).unwrap(), Some(()));
}

#[test]
fn a_fiber_cancelled_in_recv_unwinds() {
    /// Sets its flag when dropped: tells that the fiber's destructors ran.
    struct SetOnDrop(Arc<AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, SeqCst);
        }
    }

    let _serial = serial();
    let rt = runtime();
    let dropped = Arc::new(AtomicBool::new(false));
    let guard = SetOnDrop(dropped.clone());
    let mut alarm = signal::signal(SignalKind::alarm()).unwrap();
    let (waiting_tx, waiting) = std_mpsc::channel();
    let fiber = rt.spawn(move || {
        let _guard = guard;
        waiting_tx.send(()).unwrap();
        alarm.recv()
    });
    waiting.recv().unwrap();
    fiber.cancel();
    assert!(join(fiber).unwrap_err().is_cancelled());
    assert!(dropped.load(SeqCst), "the fiber's destructors ran");
    // The lock and the condition variable the fiber waited on still work.
    let mut alarm = signal::signal(SignalKind::alarm()).unwrap();
    let fiber = rt.spawn(move || alarm.recv());
    send(libc::SIGALRM);
    assert_eq!(join(fiber).unwrap(), Some(()));
}

#[test]
fn refused_signals_are_named_in_the_error() {
    let refused = [
        (libc::SIGKILL, "SIGKILL"),
        (libc::SIGSTOP, "SIGSTOP"),
        (libc::SIGSEGV, "SIGSEGV"),
        (libc::SIGBUS, "SIGBUS"),
        (libc::SIGILL, "SIGILL"),
        (libc::SIGFPE, "SIGFPE"),
        (libc::SIGURG, "SIGURG"),
        (libc::SIGQUIT, "SIGQUIT"),
        (32, "signal 32"),
        (0, "signal 0"),
        (-1, "signal -1"),
        (65, "signal 65"),
    ];
    for (signum, name) in refused {
        let error = signal::signal(SignalKind::from_raw(signum)).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{name}");
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("cannot listen for {name}: ")),
            "{message}"
        );
    }
    let error = signal::signal(SignalKind::from_raw(libc::SIGKILL)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot listen for SIGKILL: it cannot be caught"
    );
}

#[test]
fn a_select_over_a_listener_and_a_channel_wakes_for_the_signal() {
    use fiber_rt::sync::{mpsc, Select};
    let _serial = serial();
    let rt = runtime();
    let mut usr2 = signal::signal(SignalKind::user_defined2()).unwrap();
    let (_tx, rx) = mpsc::unbounded::<()>();
    let (waiting_tx, waiting) = std_mpsc::channel();
    let fiber = rt.spawn(move || {
        let quiet = {
            let mut sel = Select::new();
            sel.recv(&usr2);
            sel.recv(&rx);
            sel.ready_timeout(Duration::from_millis(20))
        };
        waiting_tx.send(()).unwrap();
        let i = {
            let mut sel = Select::new();
            sel.recv(&rx);
            sel.recv(&usr2);
            sel.ready()
        };
        (quiet, i, usr2.try_recv())
    });
    waiting.recv().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    send(libc::SIGUSR2);
    let (quiet, i, taken) = join(fiber).unwrap();
    assert_eq!(quiet, None, "ready with no delivery");
    assert_eq!(i, 1);
    assert_eq!(taken, Ok(()));
}

#[test]
fn a_select_never_misses_a_delivery_that_races_its_look() {
    // A plain thread sends while the fiber looks at the listener and
    // registers: a delivery lost between the two leaves the fiber waiting
    // until GUARD.
    use fiber_rt::sync::Select;
    const ROUNDS: usize = 300;
    let _serial = serial();
    let rt = runtime();
    let mut usr1 = signal::signal(SignalKind::user_defined1()).unwrap();
    let (go_tx, go) = std_mpsc::channel::<()>();
    let (done_tx, done) = std_mpsc::channel::<bool>();
    let fiber = rt.spawn(move || {
        for _ in 0..ROUNDS {
            go_tx.send(()).unwrap();
            let woke = {
                let mut sel = Select::new();
                sel.recv(&usr1);
                sel.ready_timeout(GUARD).is_some()
            };
            assert_eq!(usr1.try_recv(), Ok(()));
            done_tx.send(woke).unwrap();
        }
    });
    for round in 0..ROUNDS {
        go.recv().unwrap();
        // Varying moments of the fiber's look.
        for _ in 0..(round * 7919) % 2000 {
            std::hint::spin_loop();
        }
        send(libc::SIGUSR1);
        assert!(
            done.recv().unwrap(),
            "round {round}: the delivery was missed"
        );
    }
    join(fiber).unwrap();
}
