//! `JoinSet`: fibers joined in the order they finish.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fiber_rt::{Builder, JoinSet};

#[test]
fn results_come_in_the_order_the_fibers_finish() {
    let rt = Builder::new().workers(2).build().unwrap();
    let order = rt.block_on(|| {
        let mut set = JoinSet::new();
        for ms in [60u64, 0, 30] {
            set.spawn(move || {
                fiber_rt::sleep(Duration::from_millis(ms));
                ms
            });
        }
        assert_eq!(set.len(), 3);
        let order: Vec<u64> = std::iter::from_fn(|| set.join_next())
            .map(Result::unwrap)
            .collect();
        assert!(set.is_empty());
        assert!(
            set.join_next().is_none(),
            "an empty set has nothing to join"
        );
        order
    });
    assert_eq!(order, [0, 30, 60]);
}

#[test]
fn failures_are_reported_as_their_fiber_finishes() {
    let rt = Builder::new().workers(2).build().unwrap();
    let mut set = JoinSet::new();
    set.spawn_on(&rt, || 1);
    set.spawn_on(&rt, || -> i32 { panic!("second one fails") });
    // From a plain thread: join_next blocks it.
    let mut ok = 0;
    let mut panics = Vec::new();
    while let Some(result) = set.join_next() {
        match result {
            Ok(value) => ok += value,
            Err(error) => panics.push(error.panic_message().unwrap().to_owned()),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(panics, ["second one fails"]);
}

#[test]
fn a_timed_join_gives_up_and_leaves_the_set_as_it_was() {
    let rt = Builder::new().workers(2).build().unwrap();
    rt.block_on(|| {
        let mut set = JoinSet::new();
        set.spawn(|| {
            fiber_rt::sleep(Duration::from_millis(50));
            "late"
        });
        assert!(set.try_join_next().is_none());
        assert!(set.join_next_timeout(Duration::from_millis(1)).is_err());
        assert_eq!(set.len(), 1);
        let late = set.join_next_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(late.unwrap().unwrap(), "late");
        assert_eq!(
            set.join_next_timeout(Duration::ZERO)
                .unwrap()
                .map(|r| r.unwrap()),
            None
        );
    });
}

#[test]
fn dropping_a_set_cancels_its_fibers() {
    struct CountDrop(Arc<AtomicUsize>);
    impl Drop for CountDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let rt = Builder::new().workers(2).build().unwrap();
    let unwound = Arc::new(AtomicUsize::new(0));
    let finished = rt.block_on(|| {
        let mut set = JoinSet::new();
        for _ in 0..10 {
            let unwound = unwound.clone();
            set.spawn(move || {
                let _guard = CountDrop(unwound);
                fiber_rt::sleep(Duration::from_secs(60));
            });
        }
        // One that finishes first is simply dropped with the set.
        set.spawn(|| ());
        fiber_rt::sleep(Duration::from_millis(20));
        drop(set);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while unwound.load(Ordering::SeqCst) < 10 && std::time::Instant::now() < deadline {
            fiber_rt::sleep(Duration::from_millis(1));
        }
        unwound.load(Ordering::SeqCst)
    });
    assert_eq!(finished, 10, "every sleeper unwound");
}

#[test]
fn cancel_all_reports_each_cancellation_through_join_next() {
    let rt = Builder::new().workers(2).build().unwrap();
    rt.block_on(|| {
        let mut set = JoinSet::new();
        for _ in 0..5 {
            set.spawn(|| fiber_rt::sleep(Duration::from_secs(60)));
        }
        fiber_rt::sleep(Duration::from_millis(10));
        set.cancel_all();
        let results = set.join_all();
        assert_eq!(results.len(), 5);
        assert!(results
            .iter()
            .all(|r| r.as_ref().unwrap_err().is_cancelled()));
    });
}

fiber_rt::fiber_local! {
    /// Its destructor parks for a while: the fiber's result comes that
    /// much after its closure ended.
    static SLOW_TO_DROP: std::cell::Cell<Option<SlowDrop>> = std::cell::Cell::new(None);
}

struct SlowDrop;

impl Drop for SlowDrop {
    fn drop(&mut self) {
        fiber_rt::sleep(Duration::from_millis(300));
    }
}

#[test]
fn try_and_timed_joins_never_wait_for_a_fiber_still_dropping_its_locals() {
    let rt = Builder::new().workers(2).build().unwrap();
    rt.block_on(|| {
        let mut set = JoinSet::new();
        set.spawn(|| {
            SLOW_TO_DROP.with(|slot| slot.set(Some(SlowDrop)));
            7
        });
        fiber_rt::sleep(Duration::from_millis(50)); // its closure is done
        let start = std::time::Instant::now();
        assert!(set.try_join_next().is_none(), "not finished yet");
        assert!(set.join_next_timeout(Duration::from_millis(10)).is_err());
        assert!(
            start.elapsed() < Duration::from_millis(200),
            "waited for the destructor: {:?}",
            start.elapsed()
        );
        assert_eq!(set.join_next().unwrap().unwrap(), 7);
    });
}

#[test]
fn a_fiber_the_shutdown_abandoned_is_still_reported() {
    // Its destructor waits for good, so the shutdown gives up on it: its
    // closure never ends, and only its handle says what became of it.
    let rt = Builder::new()
        .workers(1)
        .shutdown_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let never = fiber_rt::sync::WaitGroup::new();
    never.add(1);
    struct WaitForGood(fiber_rt::sync::WaitGroup);
    impl Drop for WaitForGood {
        fn drop(&mut self) {
            self.0.wait();
        }
    }
    let mut set = JoinSet::new();
    set.spawn_on(&rt, {
        let never = never.clone();
        move || {
            let _stuck = WaitForGood(never);
            fiber_rt::sleep(Duration::from_secs(60));
        }
    });
    std::thread::sleep(Duration::from_millis(20));
    drop(rt);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(set.join_next().map(|r| r.is_err())));
    let reported = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("join_next returns");
    assert_eq!(reported, Some(true), "reported as failed");
}

#[test]
fn a_spawner_cancelled_at_its_spawn_leaves_no_fiber_outside_the_set() {
    // The spawn's switch point comes after the set keeps the handle: a
    // cancellation raised there finds the new fiber in the set, which
    // cancels it as it drops.
    let rt = Builder::new().workers(2).build().unwrap();
    let escaped = Arc::new(AtomicUsize::new(0));
    let spawner = rt.spawn({
        let escaped = escaped.clone();
        move || {
            let mut set = JoinSet::new();
            loop {
                let escaped = escaped.clone();
                set.spawn(move || {
                    fiber_rt::sleep(Duration::from_millis(300));
                    escaped.fetch_add(1, Ordering::SeqCst);
                });
                let spin = std::time::Instant::now();
                while spin.elapsed() < Duration::from_micros(50) {
                    std::hint::spin_loop();
                }
            }
        }
    });
    std::thread::sleep(Duration::from_millis(50));
    spawner.cancel();
    assert!(spawner.join().unwrap_err().is_cancelled());
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(escaped.load(Ordering::SeqCst), 0, "a fiber got away");
}

#[test]
fn results_come_with_the_ids_spawn_returned_and_one_fiber_may_be_cancelled() {
    let rt = Builder::new().workers(2).build().unwrap();
    rt.block_on(|| {
        let mut set = JoinSet::new();
        let quick = set.spawn(|| "quick");
        let (_keep, never) = fiber_rt::sync::mpsc::unbounded::<()>();
        let stuck = set.spawn(move || {
            let _ = never.recv();
            "stuck"
        });
        let (id, result) = set.join_next_with_id().unwrap();
        assert_eq!((id, result.unwrap()), (quick, "quick"));
        assert!(!set.cancel(quick), "joined already: no longer in the set");
        assert!(set.cancel(stuck));
        let (id, result) = set.join_next_with_id().unwrap();
        assert_eq!(id, stuck);
        assert!(result.unwrap_err().is_cancelled());
        assert!(set.try_join_next_with_id().is_none());
        assert!(set.is_empty());
    });
}

#[test]
fn ids_stay_distinct_in_a_set_spanning_two_runtimes() {
    let one = Builder::new().workers(1).build().unwrap();
    let two = Builder::new().workers(1).build().unwrap();
    let mut set = JoinSet::new();
    let (_keep, never) = fiber_rt::sync::mpsc::unbounded::<()>();
    let first = set.spawn_on(&one, move || {
        let _ = never.recv();
        1
    });
    let second = set.spawn_on(&two, || 2);
    assert_ne!(first, second, "fiber ids are unique in the process");
    assert!(set.cancel(first));
    let mut joined: Vec<_> = std::iter::from_fn(|| set.join_next_with_id())
        .map(|(id, result)| (id, result.ok()))
        .collect();
    joined.sort();
    let mut expected = vec![(first, None), (second, Some(2))];
    expected.sort();
    assert_eq!(joined, expected);
}
