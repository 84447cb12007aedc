//! Thread start and stop hooks that use the runtime they run in: one that
//! keeps a runtime entered for its thread's life (a guard kept in a
//! thread-local, or forgotten) leaves its worker running and the shutdown
//! unwinding fibers; one that spawns and joins does not hang the drop, and
//! a start hook that waits for a fiber panics rather than hang.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use fiber_rt::{Builder, EnterGuard, Handle};

thread_local! {
    static KEEP: RefCell<Option<EnterGuard>> = const { RefCell::new(None) };
}

/// A start hook that keeps a runtime entered for the thread's life (the
/// guard kept in a thread-local): the worker must still run fibers.
#[test]
fn a_start_hook_that_keeps_a_runtime_entered_leaves_the_worker_running() {
    let other = Builder::new().workers(1).build().unwrap();
    let other = other.handle().clone();
    let rt = Builder::new()
        .workers(1)
        .on_thread_start(move || KEEP.with(|k| *k.borrow_mut() = Some(other.enter())))
        .build()
        .unwrap();
    let answer = rt.spawn(|| 42).join_timeout(Duration::from_secs(5));
    assert!(
        matches!(answer, Ok(Ok(42))),
        "the worker never ran the fiber"
    );
}

/// Same, with `mem::forget` (as is done with tokio's guard).
#[test]
fn a_start_hook_that_forgets_its_guard_leaves_the_worker_running() {
    let rt = Builder::new()
        .workers(1)
        .on_thread_start(|| std::mem::forget(Handle::current().enter()))
        .build()
        .unwrap();
    let answer = rt.spawn(|| 42).join_timeout(Duration::from_secs(5));
    assert!(
        matches!(answer, Ok(Ok(42))),
        "the worker never ran the fiber"
    );
}

/// The shutdown's thread runs the hook too: if it dies there, the parked
/// fiber is never cancelled, its destructors never run.
#[test]
fn a_start_hook_that_keeps_a_guard_on_the_shutdown_thread_still_lets_fibers_unwind() {
    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let rt = Builder::new()
        .workers(1)
        .on_thread_start(|| {
            // Only off the workers: the worker threads are left alone.
            let name = std::thread::current().name().unwrap_or("").to_owned();
            if name.ends_with("-shutdown") {
                std::mem::forget(Handle::current().enter());
            }
        })
        .build()
        .unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = Flag(dropped.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    rt.spawn(move || {
        let _flag = flag;
        tx.send(()).unwrap();
        fiber_rt::sleep(Duration::from_secs(3600));
    });
    rx.recv().unwrap();
    drop(rt);
    assert!(
        dropped.load(Ordering::SeqCst),
        "the fiber was never unwound"
    );
}

/// A stop hook that uses the runtime it runs in (which the docs now
/// promise): the drop must still return.
#[test]
fn a_stop_hook_that_spawns_and_joins_does_not_hang_the_drop() {
    let rt = Builder::new()
        .workers(1)
        .on_thread_stop(|| {
            let _ = fiber_rt::spawn(|| 1).join();
        })
        .build()
        .unwrap();
    assert_eq!(rt.block_on(|| 1), 1);
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        drop(rt);
        let _ = done.send(());
    });
    finished
        .recv_timeout(Duration::from_secs(10))
        .expect("the runtime's drop hangs");
}

/// Runs `wait` in the start hook of a 1-worker runtime and returns the
/// runtime with the message of the panic `wait` raised there (or what it
/// returned, if it did not panic). A hook that hangs fails the test and
/// leaves the runtime behind (its drop would wait for the hook for good).
fn start_hook_says<T: std::fmt::Debug>(
    wait: impl Fn() -> T + Send + Sync + 'static,
) -> (fiber_rt::Runtime, String) {
    let (said, told) = mpsc::channel();
    let said = std::sync::Mutex::new(said);
    let rt = Builder::new()
        .workers(1)
        .on_thread_start(move || {
            let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&wait));
            let message = match waited {
                Ok(value) => format!("returned: {value:?}"),
                Err(payload) => payload
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_default(),
            };
            let _ = said.lock().unwrap().send(message);
        })
        .build()
        .unwrap();
    let Ok(message) = told.recv_timeout(Duration::from_secs(10)) else {
        std::mem::forget(rt);
        panic!("the start hook hangs");
    };
    (rt, message)
}

/// The worker of `rt` runs fibers after its start hook panicked.
fn runs_on(rt: &fiber_rt::Runtime) {
    let answer = rt.spawn(|| 42).join_timeout(Duration::from_secs(10));
    assert!(matches!(answer, Ok(Ok(42))), "the worker runs on");
}

/// A start hook that waits for a fiber would wait for good: its worker
/// runs no fiber until the hook returns, and every worker runs its hook
/// at start. The wait panics instead, naming the hook, and the runtime
/// runs on.
#[test]
fn a_start_hook_that_joins_a_fiber_panics_instead_of_hanging() {
    let (rt, message) = start_hook_says(|| fiber_rt::spawn(|| 1).join().is_ok());
    assert!(
        message.contains("JoinHandle::join in a thread start hook"),
        "{message}"
    );
    runs_on(&rt);
}

/// `Handle::block_on` in a start hook waits for a fiber as a join does:
/// it must panic as the join does, not abort the process (a second
/// refusal in the unwind's wait for the fiber would).
#[test]
fn a_start_hook_that_calls_block_on_panics_instead_of_aborting() {
    let (rt, message) = start_hook_says(|| fiber_rt::Handle::current().block_on(|| 1));
    assert!(message.contains("in a thread start hook"), "{message}");
    runs_on(&rt);
}

/// A start hook may wait for what a plain thread does: a blocking job's
/// end, or another worker's start hook initialising a shared cell. Those
/// waits end, and must not be refused.
#[test]
fn a_start_hook_may_wait_for_plain_threads() {
    static SHARED: fiber_rt::sync::LazyLock<u32> = fiber_rt::sync::LazyLock::new(|| {
        std::thread::sleep(Duration::from_millis(100));
        7
    });
    let (said, told) = mpsc::channel();
    let said = std::sync::Mutex::new(said);
    let both_there = std::sync::Barrier::new(2);
    let starts = std::sync::atomic::AtomicUsize::new(0);
    let rt = Builder::new()
        .workers(2)
        .on_thread_start(move || {
            // Relaxed: a count of calls; the barrier orders the rest.
            if starts.fetch_add(1, Ordering::Relaxed) < 2 {
                // Both workers at once: one initialises, the other waits.
                both_there.wait();
            }
            let waited = std::panic::catch_unwind(|| {
                let job = fiber_rt::spawn_blocking(|| 5).join().unwrap();
                (*SHARED, job)
            });
            let _ = said.lock().unwrap().send(waited.is_ok());
        })
        .build()
        .unwrap();
    for _ in 0..2 {
        let waited = told
            .recv_timeout(Duration::from_secs(30))
            .expect("a start hook hangs");
        assert!(waited, "a wait for a plain thread was refused");
    }
    drop(rt);
}

/// `JoinSet::join_next` in a start hook waits for a fiber as a join does
/// (in timed rounds, none of which ever sees it end): it panics too.
#[test]
fn a_start_hook_that_joins_a_set_panics_instead_of_hanging() {
    let (rt, message) = start_hook_says(|| {
        let mut set = fiber_rt::JoinSet::new();
        set.spawn(|| 1);
        set.join_next().map(|joined| joined.is_ok())
    });
    assert!(message.contains("in a thread start hook"), "{message}");
    runs_on(&rt);
}
