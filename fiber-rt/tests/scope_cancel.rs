//! Scoped fibers cancelled through their handles: the scope still waits
//! for them, and does not panic for a failure whose handle excused it by
//! being dropped unjoined after its `cancel`; a joined handle reports as
//! usual, and the count of unreported failures never goes astray.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fiber_rt::{Builder, Runtime, Scope};

fn rt(workers: usize) -> Runtime {
    Builder::new().workers(workers).build().unwrap()
}

#[test]
fn a_scoped_fiber_cancelled_through_its_handle_is_not_reported_by_the_scope() {
    let rt = rt(2);
    let never = fiber_rt::sync::WaitGroup::new();
    never.add(1);
    let unwound = AtomicUsize::new(0);
    rt.scope(|s| {
        struct CountOnDrop<'a>(&'a AtomicUsize);
        impl Drop for CountOnDrop<'_> {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Both wait for good, borrowing `never` and `unwound`; one handle
        // is joined, the other dropped unjoined.
        let joined = s.spawn(|| {
            let _count = CountOnDrop(&unwound);
            never.wait();
        });
        let dropped = s.spawn(|| {
            let _count = CountOnDrop(&unwound);
            never.wait();
        });
        // Finished before it is cancelled: its result stands.
        let finished = s.spawn(|| 7);
        while !finished.is_finished() {
            fiber_rt::yield_now();
        }
        fiber_rt::sleep(Duration::from_millis(5));
        joined.cancel();
        dropped.cancel();
        finished.cancel();
        drop(dropped);
        assert!(joined.join().unwrap_err().is_cancelled());
        assert_eq!(finished.join().unwrap(), 7);
    });
    // The scope returned (no panic), after both unwound.
    assert_eq!(unwound.load(Ordering::Relaxed), 2);
}

#[test]
fn a_cancelled_handle_returned_by_another_fiber_is_excused_when_dropped() {
    let rt = rt(2);
    let never = fiber_rt::sync::WaitGroup::new();
    never.add(1);
    rt.scope(|s| {
        let waiting = s.spawn(|| never.wait());
        waiting.cancel();
        // `carrier` returns the cancelled handle, which is dropped, with
        // the result, when `carrier`'s handle is.
        let carrier = s.spawn(move || waiting);
        while !carrier.is_finished() {
            fiber_rt::yield_now();
        }
        drop(carrier);
    }); // panics if the cancellation stays counted
}

fiber_rt::fiber_local! {
    static SLOW_DROP: SlowDrop = SlowDrop;
}

/// A fiber-local whose destructor parks a while.
struct SlowDrop;

impl Drop for SlowDrop {
    fn drop(&mut self) {
        fiber_rt::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_fiber_cancelled_in_a_fiber_local_destructor_and_joined_leaves_the_scope_whole() {
    // The cancellation lands after the closure returned, while a
    // fiber-local's destructor parks: the result is an error all the same,
    // and must be counted as one, or the join's report would take the
    // count below zero and the scope would panic.
    let rt = rt(2);
    rt.scope(|s| {
        let handle = s.spawn(|| SLOW_DROP.with(|_| ()));
        fiber_rt::sleep(Duration::from_millis(50));
        handle.cancel();
        assert!(handle.join().unwrap_err().is_cancelled());
    });
}

/// A fiber's result whose destructor spawns on the scope.
struct SpawnOnDrop<'scope, 'env>(&'scope Scope<'scope, 'env>, &'env AtomicBool);

impl Drop for SpawnOnDrop<'_, '_> {
    fn drop(&mut self) {
        let ran = self.1;
        self.0.spawn(move || {
            fiber_rt::sleep(Duration::from_millis(100));
            ran.store(true, Ordering::SeqCst);
        });
    }
}

#[test]
fn the_result_of_a_cancelled_handle_goes_with_the_handle() {
    // So a fiber its destructor spawns on the scope is waited for too.
    let rt = rt(2);
    let ran = AtomicBool::new(false);
    rt.scope(|s| {
        let ran = &ran;
        let handle = s.spawn(move || SpawnOnDrop(s, ran));
        while !handle.is_finished() {
            fiber_rt::yield_now();
        }
        handle.cancel(); // finished first: its result stands
        drop(handle);
    });
    assert!(ran.load(Ordering::SeqCst), "the scope returned first");
}

#[test]
fn fibers_cancelled_around_their_start_leave_no_failure_behind() {
    // Some run before their cancel comes, the others never run (their
    // closure is dropped unrun, which counts as a failure until excused):
    // a scope that counted either wrong panics.
    let rt = rt(2);
    for _ in 0..500 {
        rt.scope(|s| {
            for _ in 0..4 {
                s.spawn(|| 1).cancel();
            }
        });
    }
}

/// Compiles only while a handle is covariant in its result type, as a
/// `JoinHandle` is: a handle of `&'static str` passes for one of a
/// shorter-lived `&str`.
fn shorten<'scope, 'a>(
    handle: fiber_rt::ScopedJoinHandle<'scope, &'static str>,
) -> fiber_rt::ScopedJoinHandle<'scope, &'a str> {
    handle
}

#[test]
fn a_scoped_handle_shortens_its_result_type() {
    let rt = rt(1);
    let word = rt.scope(|s| shorten(s.spawn(|| "word")).join().unwrap());
    assert_eq!(word, "word");
}

/// Parks a while as it drops: a fiber cancelled with one on its stack
/// takes that long to unwind.
struct SlowUnwind;

impl Drop for SlowUnwind {
    fn drop(&mut self) {
        fiber_rt::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_cancelled_handle_whose_join_is_cut_short_still_excuses_its_fiber() {
    let rt = rt(2);
    let never = fiber_rt::sync::WaitGroup::new();
    never.add(1);
    rt.scope(|s| {
        let waiting = s.spawn(|| {
            let _slow = SlowUnwind;
            never.wait();
        });
        fiber_rt::sleep(Duration::from_millis(20));
        // `joiner` cancels `waiting` and joins it, and is cancelled in
        // that join, while `waiting` unwinds slowly: neither handle
        // reports a result, and both cancelled their fibers.
        let joiner = s.spawn(move || {
            waiting.cancel();
            let _ = waiting.join();
        });
        fiber_rt::sleep(Duration::from_millis(50));
        joiner.cancel();
        drop(joiner);
    }); // panics if `waiting`'s cancellation stays counted
}

/// Runs its closure when dropped.
struct RunOnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for RunOnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

#[test]
fn the_runtime_s_drop_while_a_cancelled_child_unwinds_and_its_owner_parks_in_the_scope() {
    // The shutdown cancels the owner in its closure (or in the scope's
    // wait); the scope waits for the child, whose slow unwinding began on
    // a worker and ends on the shutdown's thread, which leaves that
    // thread's count of unwinds one too low. A cancellation raised in the
    // scope's wait, and again inside its own unwind once the count said
    // none was on its way, aborted the process.
    for owner_in_closure in [true, false] {
        drop_while_a_cancelled_child_unwinds(owner_in_closure);
    }
}

fn drop_while_a_cancelled_child_unwinds(owner_in_closure: bool) {
    let rt = rt(2);
    let finished = std::sync::Arc::new(AtomicUsize::new(0));
    let _owner = rt.spawn({
        let finished = finished.clone();
        move || {
            let data = 5u32;
            fiber_rt::scope(|s| {
                let (data, finished) = (&data, finished.clone());
                let child = s.spawn(move || {
                    let _slow = RunOnDrop(|| {
                        fiber_rt::sleep(Duration::from_millis(300));
                        assert_eq!(*data, 5, "the borrow outlived its scope");
                        finished.fetch_add(1, Ordering::SeqCst);
                    });
                    fiber_rt::sleep(Duration::from_secs(3600));
                });
                fiber_rt::sleep(Duration::from_millis(10));
                child.cancel();
                drop(child);
                if owner_in_closure {
                    // Parks in its closure, not in the scope's wait.
                    fiber_rt::sleep(Duration::from_secs(3600));
                }
            });
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    drop(rt);
    assert_eq!(
        finished.load(Ordering::SeqCst),
        1,
        "the child's unwinding did not finish"
    );
}

#[test]
fn cancelling_the_owner_of_a_scope_cancels_its_fibers_too() {
    // Before, the owner's unwinding waited in the scope for fibers that
    // would never finish by themselves. Those that start after the owner
    // was cancelled are cancelled as they start.
    struct CountOnDrop(Arc<AtomicUsize>);
    impl Drop for CountOnDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let rt = Builder::new().workers(2).build().unwrap();
    let unwound = Arc::new(AtomicUsize::new(0));
    let owner = rt.spawn({
        let unwound = unwound.clone();
        move || {
            fiber_rt::scope(|s| {
                for _ in 0..20 {
                    let unwound = unwound.clone();
                    s.spawn(move || {
                        let _count = CountOnDrop(unwound);
                        fiber_rt::sleep(Duration::from_secs(3600));
                    });
                }
                fiber_rt::sleep(Duration::from_secs(3600));
            })
        }
    });
    std::thread::sleep(Duration::from_millis(50));
    owner.cancel();
    let joined = owner
        .join_timeout(Duration::from_secs(30))
        .expect("the owner unwinds, its scope's fibers with it");
    assert!(joined.unwrap_err().is_cancelled());
    assert_eq!(unwound.load(Ordering::SeqCst), 20);
}

/// A scope in a destructor that runs during the shutdown's cancellation
/// of its fiber: the scope's fiber never runs (the shutdown cancels or
/// refuses it) and its handle is dropped unjoined. The scope must not
/// panic for that inside the unwind, which aborted the process.
#[test]
fn a_scope_in_a_destructor_unwound_by_the_shutdown_does_not_abort() {
    struct ScopeOnDrop(Arc<AtomicBool>);
    impl Drop for ScopeOnDrop {
        fn drop(&mut self) {
            let x = 1;
            fiber_rt::scope(|s| {
                s.spawn(|| x + 1);
            });
            // Relaxed: read after the runtime's drop, which joined this.
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let rt = rt(1);
    let done = Arc::new(AtomicBool::new(false));
    let (tx, rx) = fiber_rt::sync::mpsc::unbounded::<()>();
    let guard = ScopeOnDrop(done.clone());
    let waiting = rt.spawn(move || {
        let _guard = guard;
        let _tx = tx;
        // Never answered: the shutdown unwinds the fiber from here.
        let _ = rx.recv();
    });
    std::thread::sleep(Duration::from_millis(20));
    drop(rt);
    assert!(waiting.join().unwrap_err().is_cancelled());
    // Relaxed: as above.
    assert!(
        done.load(Ordering::Relaxed),
        "the destructor ran to its end"
    );
}

/// A fiber parked in its own unwinding leaves its thread's count of
/// unwinds raised; a scope in another fiber on that thread still panics
/// for its failed, unjoined fiber.
#[test]
fn a_scope_still_reports_beside_a_fiber_parked_in_its_unwinding() {
    struct SleepOnDrop;
    impl Drop for SleepOnDrop {
        fn drop(&mut self) {
            fiber_rt::sleep(Duration::from_millis(300));
        }
    }
    let rt = rt(1);
    let parked = rt.spawn(|| {
        let _guard = SleepOnDrop;
        panic!("parks in its unwinding");
    });
    std::thread::sleep(Duration::from_millis(50));
    let reported = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(|| {
            fiber_rt::scope(|s| {
                s.spawn(|| panic!("unjoined"));
            })
        })
    }));
    assert!(
        reported.is_err(),
        "the scope kept its fiber's failure quiet"
    );
    assert!(parked.join().unwrap_err().is_panic());
}

/// An owner cancelled while it waits at the end of its scope cancels the
/// scope's fibers, rather than waiting for them to end by themselves.
#[test]
fn an_owner_cancelled_in_the_scopes_end_wait_cancels_its_fibers() {
    let rt = rt(2);
    let unwound = Arc::new(AtomicUsize::new(0));
    let counted = unwound.clone();
    let owner = rt.spawn(move || {
        struct CountOnDrop(Arc<AtomicUsize>);
        impl Drop for CountOnDrop {
            fn drop(&mut self) {
                // Relaxed: read after the owner's join.
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        fiber_rt::scope(|s| {
            for _ in 0..4 {
                let counted = counted.clone();
                s.spawn(move || {
                    let _count = CountOnDrop(counted);
                    fiber_rt::sleep(Duration::from_secs(3600));
                });
            }
        });
    });
    std::thread::sleep(Duration::from_millis(50));
    owner.cancel();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(owner.join().unwrap_err().is_cancelled()));
    let cancelled = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the owner waited for its sleeping fibers");
    assert!(cancelled);
    // Relaxed: the join ordered the fibers' ends before this.
    assert_eq!(unwound.load(Ordering::Relaxed), 4);
}
