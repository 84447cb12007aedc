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
