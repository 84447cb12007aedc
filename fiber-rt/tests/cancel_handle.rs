//! `CancelHandle`: cancels a fiber from another fiber or thread while its
//! `JoinHandle` (or its `JoinSet`) waits elsewhere; cloneable, and harmless
//! once the fiber has finished.

use std::time::Duration;

use fiber_rt::sync::mpsc;
use fiber_rt::{Builder, JoinSet};

#[test]
fn a_fiber_is_cancelled_while_another_joins_it() {
    let rt = Builder::new().workers(2).build().unwrap();
    rt.block_on(|| {
        let (_tx, rx) = mpsc::unbounded::<u32>();
        let waiting = fiber_rt::spawn(move || rx.recv());
        let stop = waiting.cancel_handle();
        assert_eq!(stop.id(), waiting.id());
        let joiner = fiber_rt::spawn(move || waiting.join());
        // From a plain thread, through a clone.
        let from_thread = stop.clone();
        std::thread::spawn(move || from_thread.cancel())
            .join()
            .unwrap();
        let joined = joiner.join().unwrap();
        assert!(joined.unwrap_err().is_cancelled());
        assert!(stop.is_finished());
    });
}

#[test]
fn a_set_member_is_cancelled_while_the_owner_waits_in_join_next() {
    let rt = Builder::new().workers(2).build().unwrap();
    rt.block_on(|| {
        let (_tx, rx) = mpsc::unbounded::<u32>();
        let mut set = JoinSet::new();
        let id = set.spawn(move || rx.recv().map(|_| "message"));
        let stop = set.cancel_handle(id).expect("a member of the set");
        assert!(set.cancel_handle(id + 1_000_000).is_none());
        let supervisor = fiber_rt::spawn(move || {
            fiber_rt::sleep(Duration::from_millis(1));
            stop.cancel();
        });
        let (joined_id, result) = set.join_next_with_id().unwrap();
        assert_eq!(joined_id, id);
        assert!(result.unwrap_err().is_cancelled());
        supervisor.join().unwrap();
    });
}

#[test]
fn cancelling_a_finished_fiber_keeps_its_result() {
    let rt = Builder::new().workers(1).build().unwrap();
    let fiber = rt.spawn(|| 42);
    let stop = fiber.cancel_handle();
    while !stop.is_finished() {
        std::thread::sleep(Duration::from_millis(1));
    }
    stop.cancel();
    assert_eq!(fiber.join().unwrap(), 42);
    // The handle outlives the fiber, and the runtime.
    drop(rt);
    stop.cancel();
    assert!(stop.is_finished());
}
