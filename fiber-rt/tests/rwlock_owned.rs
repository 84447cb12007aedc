//! `RwLock::read_owned` / `write_owned`: guards with no lifetime, which
//! move into another fiber or thread and release the lock where they are
//! dropped, and exclude borrowed guards as theirs do.

use std::sync::Arc;
use std::time::Duration;

use fiber_rt::sync::RwLock;
use fiber_rt::Builder;

#[test]
fn an_owned_write_guard_moves_to_another_fiber_and_releases_there() {
    let rt = Builder::new().workers(2).build().unwrap();
    rt.block_on(|| {
        let shared = Arc::new(RwLock::new(Vec::new()));
        let mut held = shared.clone().write_owned();
        assert!(shared.try_read().is_none());
        assert!(shared.clone().try_read_owned().is_none());
        assert!(Arc::ptr_eq(held.lock(), &shared));
        let writer = fiber_rt::spawn(move || {
            fiber_rt::sleep(Duration::from_millis(2));
            held.push("writer");
        });
        // Parks until the other fiber drops the guard.
        shared.write().push("after");
        writer.join().unwrap();
        assert_eq!(*shared.read(), ["writer", "after"]);
    });
}

#[test]
fn owned_readers_share_and_keep_writers_out() {
    let shared = Arc::new(RwLock::new(7));
    let first = shared.clone().read_owned();
    let second = shared.clone().try_read_owned().expect("readers share");
    assert_eq!((*first, *second), (7, 7));
    assert!(shared.clone().try_write_owned().is_none());
    std::thread::spawn(move || drop(first)).join().unwrap();
    assert!(shared.try_write().is_none(), "a reader is left");
    drop(second);
    *shared.clone().try_write_owned().expect("free") += 1;
    assert_eq!(*shared.read(), 8);
}

#[test]
fn owned_and_borrowed_writers_exclude_each_other_under_load() {
    let rt = Builder::new().workers(2).build().unwrap();
    rt.block_on(|| {
        let shared = Arc::new(RwLock::new(0u64));
        let fibers: Vec<_> = (0..8)
            .map(|i| {
                let shared = shared.clone();
                fiber_rt::spawn(move || {
                    for _ in 0..2_000 {
                        if i % 2 == 0 {
                            let mut guard = shared.clone().write_owned();
                            let seen = *guard;
                            fiber_rt::yield_now();
                            *guard = seen + 1;
                        } else {
                            let mut guard = shared.write();
                            let seen = *guard;
                            fiber_rt::yield_now();
                            *guard = seen + 1;
                        }
                    }
                })
            })
            .collect();
        fibers.into_iter().for_each(|f| f.join().unwrap());
        assert_eq!(*shared.read(), 16_000);
    });
}
