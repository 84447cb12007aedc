//! `fiber_local!`: a value per fiber that moves with it between workers,
//! dropped when the fiber's closure is done; a thread-local off fibers.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use fiber_rt::{fiber_local, Builder};

fiber_local! {
    static COUNT: Cell<u64> = Cell::new(0);
    static LOG: RefCell<Vec<u32>> = RefCell::new(Vec::new());
}

#[test]
fn every_fiber_has_a_value_of_its_own() {
    let rt = Builder::new().workers(2).build().unwrap();
    let handles: Vec<_> = (0..100u64)
        .map(|i| {
            rt.spawn(move || {
                for _ in 0..i {
                    COUNT.with(|c| c.set(c.get() + 1));
                    fiber_rt::yield_now();
                }
                COUNT.with(Cell::get)
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), i as u64);
    }
}

#[test]
fn a_reference_stays_right_across_switches() {
    let rt = Builder::new().workers(2).build().unwrap();
    let handles: Vec<_> = (0..20u32)
        .map(|i| {
            rt.spawn(move || {
                LOG.with(|log| {
                    for k in 0..10 {
                        log.borrow_mut().push(i * 100 + k);
                        // Parks: the fiber may come back on another worker.
                        fiber_rt::sleep(Duration::from_micros(100));
                        fiber_rt::yield_now();
                    }
                    log.borrow().clone()
                })
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let expected: Vec<u32> = (0..10).map(|k| i as u32 * 100 + k).collect();
        assert_eq!(h.join().unwrap(), expected);
    }
}

/// Counts its drops, in a counter of each test's own (tests run at once).
struct CountsDrop(&'static AtomicUsize);

impl Drop for CountsDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

static DROPPED: AtomicUsize = AtomicUsize::new(0);
static DROPPED_IN_DESTRUCTOR: AtomicUsize = AtomicUsize::new(0);
static DROPPED_BY_RUNNERS: AtomicUsize = AtomicUsize::new(0);

fiber_local! {
    static GUARD: CountsDrop = CountsDrop(&DROPPED);
    static MADE_IN_DESTRUCTOR: CountsDrop = CountsDrop(&DROPPED_IN_DESTRUCTOR);
    static RUNNER_GUARD: CountsDrop = CountsDrop(&DROPPED_BY_RUNNERS);
}

#[test]
fn values_are_dropped_before_the_join_returns_even_after_a_panic() {
    let rt = Builder::new().workers(2).build().unwrap();
    let fine = rt.spawn(|| GUARD.with(|_| ()));
    fine.join().unwrap();
    assert_eq!(DROPPED.load(SeqCst), 1);
    let failing = rt.spawn(|| {
        GUARD.with(|_| ());
        panic!("boom");
    });
    assert!(failing.join().unwrap_err().is_panic());
    assert_eq!(DROPPED.load(SeqCst), 2);
    // Never used: nothing made, nothing dropped.
    rt.spawn(|| 1).join().unwrap();
    assert_eq!(DROPPED.load(SeqCst), 2);
}

fiber_local! {
    static BASE: u32 = 40;
    static DERIVED: u32 = BASE.with(|b| b + 2);
    static SELF_REFERENCE: u32 = SELF_REFERENCE.with(|v| v + 1);
}

#[test]
fn an_initializer_may_use_other_fiber_locals_but_not_its_own() {
    let rt = Builder::new().workers(1).build().unwrap();
    assert_eq!(rt.spawn(|| DERIVED.with(|d| *d)).join().unwrap(), 42);
    let err = rt.spawn(|| SELF_REFERENCE.with(|v| *v)).join().unwrap_err();
    assert!(
        err.panic_message()
            .unwrap()
            .contains("used the same fiber-local"),
        "{err}"
    );
}

struct LogsOnDrop(Arc<AtomicUsize>);

impl Drop for LogsOnDrop {
    fn drop(&mut self) {
        // Uses another fiber-local while the fiber's values are dropped:
        // that one is made again, and dropped in turn.
        MADE_IN_DESTRUCTOR.with(|_| ());
        self.0.fetch_add(1, SeqCst);
    }
}

fiber_local! {
    static LOGGER: RefCell<Option<LogsOnDrop>> = RefCell::new(None);
}

#[test]
fn a_destructor_may_use_fiber_locals() {
    let rt = Builder::new().workers(1).build().unwrap();
    let logged = Arc::new(AtomicUsize::new(0));
    let l = logged.clone();
    rt.spawn(move || LOGGER.with(|slot| *slot.borrow_mut() = Some(LogsOnDrop(l))))
        .join()
        .unwrap();
    assert_eq!(logged.load(SeqCst), 1);
    assert_eq!(
        DROPPED_IN_DESTRUCTOR.load(SeqCst),
        1,
        "the value made in a destructor was dropped"
    );
}

struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("a fiber-local's destructor failed");
    }
}

fiber_local! {
    static FRAGILE: PanicsOnDrop = PanicsOnDrop;
}

#[test]
fn a_destructor_s_panic_is_the_fiber_s() {
    let rt = Builder::new().workers(1).build().unwrap();
    let err = rt.spawn(|| FRAGILE.with(|_| 7)).join().unwrap_err();
    assert_eq!(
        err.panic_message(),
        Some("a fiber-local's destructor failed")
    );
    // The worker lives on.
    assert_eq!(rt.spawn(|| 1).join().unwrap(), 1);
}

#[test]
fn off_fibers_it_is_a_thread_local() {
    let threads: Vec<_> = (0..4u64)
        .map(|i| {
            std::thread::spawn(move || {
                COUNT.with(|c| c.set(i));
                std::thread::yield_now();
                COUNT.with(Cell::get)
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        assert_eq!(t.join().unwrap(), i as u64);
    }
}

fiber_rt::fiber_local! {
    /// Used by `a_spawn_blocking_job_has_its_pool_thread_s_value` alone.
    static BLOCKING: Cell<u64> = Cell::new(0);
}

/// A `spawn_blocking` job runs on a plain thread, where a fiber-local is
/// that thread's: it does not see the calling fiber's value (a documented
/// limit: the pool's thread keeps what a job leaves there).
#[test]
fn a_spawn_blocking_job_has_its_pool_thread_s_value() {
    let rt = fiber_rt::Builder::new().workers(1).build().unwrap();
    let (in_job, after) = rt.block_on(|| {
        BLOCKING.set(5);
        let in_job = fiber_rt::spawn_blocking(|| {
            let seen = BLOCKING.get();
            BLOCKING.set(seen + 100);
            seen
        })
        .join()
        .unwrap();
        (in_job, BLOCKING.get())
    });
    assert_ne!(in_job, 5, "the job saw the fiber's value");
    assert_eq!(in_job % 100, 0);
    assert_eq!(after, 5, "the job changed the fiber's value");
}

#[test]
fn graph_nodes_share_their_runner_s_values_which_are_dropped_after_the_run() {
    use fiber_rt::dag::GraphBuilder;
    let rt = Builder::new().workers(2).build().unwrap();
    let mut builder = GraphBuilder::new();
    let mut previous = None;
    for _ in 0..100 {
        let node = builder.node("uses a fiber-local", || RUNNER_GUARD.with(|_| ()));
        if let Some(previous) = previous {
            builder.edge(previous, node);
        }
        previous = Some(node);
    }
    rt.run(builder.build().unwrap()).unwrap();
    drop(rt);
    let dropped = DROPPED_BY_RUNNERS.load(SeqCst);
    assert!(
        (1..=100).contains(&dropped),
        "one value per fiber that ran nodes, each dropped: {dropped}"
    );
}

struct UsesItselfWhenDropped;

impl Drop for UsesItselfWhenDropped {
    fn drop(&mut self) {
        SELF_USER.with(|_| ());
    }
}

fiber_local! {
    static SELF_USER: UsesItselfWhenDropped = UsesItselfWhenDropped;
}

#[test]
fn a_destructor_that_uses_its_own_key_panics_instead_of_looping() {
    let rt = Builder::new().workers(1).build().unwrap();
    let handle = rt.spawn(|| SELF_USER.with(|_| ()));
    let (done, joined) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(handle.join()).unwrap());
    let err = joined
        .recv_timeout(Duration::from_secs(10))
        .expect("the fiber ends")
        .unwrap_err();
    assert!(err.panic_message().unwrap().contains("used after"), "{err}");
}

static TRACKED_LIVE: AtomicUsize = AtomicUsize::new(0);

struct Tracked;

impl Drop for Tracked {
    fn drop(&mut self) {
        TRACKED_LIVE.fetch_sub(1, SeqCst);
    }
}

fiber_local! {
    static TRACKED: Tracked = {
        TRACKED_LIVE.fetch_add(1, SeqCst);
        Tracked
    };
}

/// Captured by fibers that never run: its drop, when the runtime cancels
/// them, uses a fiber-local.
struct UsesALocalWhenDropped;

impl Drop for UsesALocalWhenDropped {
    fn drop(&mut self) {
        TRACKED.with(|_| ());
    }
}

#[test]
fn values_made_while_a_cancelled_fiber_s_closure_is_dropped_are_dropped() {
    let rt = Builder::new().workers(1).build().unwrap();
    // Keeps the one worker busy, so the fibers below never start.
    let (hold, held) = std::sync::mpsc::channel::<()>();
    let (started, start) = std::sync::mpsc::channel();
    let _blocker = rt.spawn(move || {
        started.send(()).unwrap();
        let _ = held.recv();
    });
    start.recv().unwrap();
    let handles: Vec<_> = (0..50)
        .map(|_| {
            let captured = UsesALocalWhenDropped;
            rt.spawn(move || drop(captured))
        })
        .collect();
    drop(handles);
    let (done, dropped) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(rt);
        done.send(()).unwrap();
    });
    // The blocker holds its worker thread, so the drop takes the shutdown
    // timeout; then it is let go.
    std::thread::sleep(Duration::from_millis(100));
    drop(hold);
    dropped
        .recv_timeout(Duration::from_secs(20))
        .expect("the runtime's drop ends");
    assert_eq!(TRACKED_LIVE.load(SeqCst), 0, "fiber-local values leaked");
}

fiber_local! {
    static SEEN: Cell<u32> = Cell::new(0);
}

/// Sets `SEEN` in the fiber that drops it.
struct SetsSeen;

impl Drop for SetsSeen {
    fn drop(&mut self) {
        SEEN.with(|seen| seen.set(7));
    }
}

/// What `SEEN` reads in fibers each started after one whose unjoined
/// result set it as it was dropped (after the fiber's own values were):
/// `round` does one of four rounds on a one-worker runtime.
fn seen_after_unjoined_results(round: fn() -> u32) -> Vec<u32> {
    let rt = Builder::new().workers(1).build().unwrap();
    rt.block_on(move || (0..4).map(|_| round()).collect())
}

#[test]
fn a_value_made_by_a_result_nobody_joins_does_not_reach_the_next_fiber() {
    // The next fiber takes the finished one's stack over.
    let seen = seen_after_unjoined_results(|| {
        drop(fiber_rt::spawn(|| SetsSeen));
        fiber_rt::spawn(|| SEEN.with(Cell::get)).join().unwrap()
    });
    assert_eq!(seen, [0, 0, 0, 0]);
}

#[test]
fn a_value_made_by_a_result_nobody_joins_does_not_go_to_the_pool() {
    // The stack goes back to the pool in between, and out again.
    let seen = seen_after_unjoined_results(|| {
        let big = || fiber_rt::FiberBuilder::new().stack_size(1 << 20);
        drop(big().spawn(|| SetsSeen).unwrap());
        // A fiber of another stack size: no take-over of that one.
        fiber_rt::spawn(|| ()).join().unwrap();
        let reader = big().spawn(|| SEEN.with(Cell::get)).unwrap();
        reader.join().unwrap()
    });
    assert_eq!(seen, [0, 0, 0, 0]);
}

/// Panics as it is dropped, with a payload that uses a fiber-local as it
/// is dropped in turn.
struct PanicsWithLocalUsingPayload;

impl Drop for PanicsWithLocalUsingPayload {
    fn drop(&mut self) {
        std::panic::panic_any(UsesLocalOnDrop);
    }
}

struct UsesLocalOnDrop;

impl Drop for UsesLocalOnDrop {
    fn drop(&mut self) {
        LEFT_BEHIND.with(|v| v.set(0xdead));
    }
}

fiber_local! {
    static LEFT_BEHIND: Cell<u64> = Cell::new(0);
    static PANICKY: PanicsWithLocalUsingPayload = PanicsWithLocalUsingPayload;
}

#[test]
fn a_local_made_by_a_dropped_panic_payload_reaches_no_other_fiber() {
    // The fiber panics of its own; its local's destructor panics too, and
    // that second payload, dropped, makes a local anew: it must go with
    // the fiber, not stay on the stack for the next one (which takes the
    // stack over, on one worker).
    let rt = fiber_rt::Builder::new().workers(1).build().unwrap();
    for _ in 0..20 {
        let failing = rt.spawn(|| {
            PANICKY.with(|_| ());
            panic!("its own panic first")
        });
        let next = rt.spawn(|| LEFT_BEHIND.with(Cell::get));
        assert!(failing.join().unwrap_err().is_panic());
        assert_eq!(next.join().unwrap(), 0, "another fiber's value");
    }
}

fiber_local! {
    static HITS: Cell<u32> = Cell::new(0);
    static NAMES: RefCell<Vec<String>> = RefCell::new(Vec::new());
}

#[test]
fn cell_and_refcell_locals_have_std_s_shorthands() {
    let rt = Builder::new().workers(2).build().unwrap();
    let seen: Vec<(u32, Vec<String>)> = (0..8u32)
        .map(|i| {
            rt.spawn(move || {
                HITS.set(i);
                fiber_rt::yield_now(); // may move to the other worker
                assert_eq!(HITS.replace(i + 10), i);
                NAMES.with_borrow_mut(|names| names.push(format!("fiber {i}")));
                fiber_rt::sleep(Duration::from_millis(1));
                NAMES.set(vec![NAMES.with_borrow(|names| names[0].clone())]);
                (HITS.take() + HITS.get(), NAMES.take())
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    for (i, (hits, names)) in seen.into_iter().enumerate() {
        assert_eq!(hits, i as u32 + 10, "take left the default");
        assert_eq!(names, [format!("fiber {i}")]);
    }
    // A plain thread has its own value.
    HITS.set(5);
    assert_eq!(HITS.get(), 5);
}
