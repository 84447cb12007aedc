//! `Handle::enter`: a plain thread that entered a runtime spawns, scopes
//! and runs graphs on it with the free functions, as its fibers do; the
//! guard gives back what was current before it; and a `spawn_blocking`
//! closure runs in the runtime of the fiber that spawned it.

use std::panic::{catch_unwind, AssertUnwindSafe};

use fiber_rt::dag::GraphBuilder;
use fiber_rt::{Builder, Handle, JoinSet};

/// Which runtime a handle reaches: its workers' count, which the tests
/// make differ.
fn workers(handle: &Handle) -> usize {
    handle.workers()
}

#[test]
fn an_entered_thread_spawns_scopes_and_runs_graphs_with_the_free_functions() {
    let rt = Builder::new().workers(2).build().unwrap();
    let handle = rt.handle().clone();
    std::thread::spawn(move || {
        assert!(Handle::try_current().is_none());
        let _entered = handle.enter();
        assert_eq!(workers(&Handle::current()), 2);
        assert_eq!(fiber_rt::spawn(|| 6 * 7).join().unwrap(), 42);
        let on_fiber = fiber_rt::spawn(|| fiber_rt::current().is_some());
        assert!(on_fiber.join().unwrap());
        let mut total = 0;
        fiber_rt::scope(|s| {
            s.spawn(|| total += 1);
        });
        assert_eq!(total, 1);
        let mut builder = GraphBuilder::new();
        builder.node("only", || {});
        fiber_rt::run(builder.build().unwrap()).unwrap();
        let mut set = JoinSet::new();
        set.spawn(|| 1);
        assert_eq!(set.join_next().map(|joined| joined.unwrap()), Some(1));
    })
    .join()
    .unwrap();
}

#[test]
fn the_guard_gives_back_the_runtime_entered_before_it() {
    let one = Builder::new().workers(1).build().unwrap();
    let two = Builder::new().workers(2).build().unwrap();
    let (one, two) = (one.handle().clone(), two.handle().clone());
    std::thread::spawn(move || {
        let outer = one.enter();
        {
            let _inner = two.enter();
            assert_eq!(workers(&Handle::current()), 2);
        }
        assert_eq!(workers(&Handle::current()), 1);
        drop(outer);
        assert!(Handle::try_current().is_none());
        let outside = catch_unwind(AssertUnwindSafe(|| fiber_rt::spawn(|| ())));
        let message = outside.unwrap_err();
        let message = message.downcast_ref::<String>().unwrap();
        assert!(message.contains("Handle::enter"), "{message}");
    })
    .join()
    .unwrap();
}

#[test]
fn on_a_fiber_the_guard_leaves_the_fibers_own_runtime_current() {
    let one = Builder::new().workers(1).build().unwrap();
    let two = Builder::new().workers(2).build().unwrap();
    let two = two.handle().clone();
    let seen = one.block_on(move || {
        let _entered = two.enter();
        fiber_rt::yield_now();
        workers(&Handle::current())
    });
    assert_eq!(seen, 1);
    // Nothing was left entered on the thread that ran the fiber, nor here.
    assert!(Handle::try_current().is_none());
    assert_eq!(
        one.spawn(|| Handle::try_current().map(|h| h.workers()))
            .join()
            .unwrap(),
        Some(1)
    );
}

#[test]
fn a_blocking_closure_runs_in_the_runtime_of_the_fiber_that_spawned_it() {
    let rt = Builder::new().workers(2).build().unwrap();
    let (workers_seen, spawned) = rt.block_on(|| {
        fiber_rt::spawn_blocking(|| {
            assert!(fiber_rt::current().is_none(), "a plain thread");
            let workers_seen = Handle::try_current().map(|handle| handle.workers());
            (workers_seen, fiber_rt::spawn(|| 6 * 7).join().unwrap())
        })
        .join()
        .unwrap()
    });
    assert_eq!((workers_seen, spawned), (Some(2), 42));
    // The test's own thread enters through the runtime itself too.
    let entered = rt.enter();
    assert_eq!(Handle::current().workers(), 2);
    drop(entered);
    // Spawned from a plain thread, a blocking closure has no runtime.
    let none = fiber_rt::spawn_blocking(Handle::try_current)
        .join()
        .unwrap();
    assert!(none.is_none());
}

#[test]
fn guards_dropped_in_any_order_each_take_out_their_own_runtime() {
    let one = Builder::new().workers(1).build().unwrap();
    let two = Builder::new().workers(2).build().unwrap();
    let (one, two) = (one.handle().clone(), two.handle().clone());
    std::thread::spawn(move || {
        let outer = one.enter();
        let inner = two.enter();
        // Out of order: the newer guard's runtime stays current.
        drop(outer);
        assert_eq!(workers(&Handle::current()), 2);
        drop(inner);
        // Nothing is left entered (the outer runtime came back before).
        assert!(Handle::try_current().is_none());
    })
    .join()
    .unwrap();
}

#[test]
fn guards_kept_in_thread_locals_are_dropped_as_the_thread_ends() {
    use std::cell::RefCell;
    thread_local! {
        static FIRST: RefCell<Option<fiber_rt::EnterGuard>> = const { RefCell::new(None) };
        static SECOND: RefCell<Option<fiber_rt::EnterGuard>> = const { RefCell::new(None) };
    }
    let one = Builder::new().workers(1).build().unwrap();
    let two = Builder::new().workers(1).build().unwrap();
    let (one, two) = (one.handle().clone(), two.handle().clone());
    // The locals' destructors run in an order of the platform's choosing,
    // which drops the guards out of order: it aborted the process once.
    std::thread::spawn(move || {
        SECOND.with(|second| drop(second.borrow()));
        FIRST.with(|first| *first.borrow_mut() = Some(one.enter()));
        SECOND.with(|second| *second.borrow_mut() = Some(two.enter()));
    })
    .join()
    .unwrap();
}
