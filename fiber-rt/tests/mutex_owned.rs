//! `Mutex::lock_owned`: a guard with no lifetime, which moves into another
//! fiber or thread and unlocks where it is dropped, and mutual exclusion
//! with ordinary guards.

use std::sync::Arc;
use std::time::Duration;

use fiber_rt::sync::Mutex;
use fiber_rt::Builder;

#[test]
fn an_owned_guard_moves_to_another_fiber_and_unlocks_there() {
    let rt = Builder::new().workers(2).build().unwrap();
    rt.block_on(|| {
        let shared = Arc::new(Mutex::new(Vec::new()));
        let mut held = shared.clone().lock_owned();
        assert!(shared.try_lock().is_none());
        assert!(shared.clone().try_lock_owned().is_none());
        assert!(Arc::ptr_eq(held.mutex(), &shared));
        let holder = fiber_rt::spawn(move || {
            fiber_rt::sleep(Duration::from_millis(2));
            held.push("holder");
        });
        // Parks until the other fiber drops the guard.
        shared.lock().push("waiter");
        holder.join().unwrap();
        assert_eq!(*shared.lock(), ["holder", "waiter"]);
    });
}

#[test]
fn owned_and_borrowed_guards_exclude_each_other_under_load() {
    let rt = Builder::new().workers(2).build().unwrap();
    rt.block_on(|| {
        let shared = Arc::new(Mutex::new(0u64));
        let fibers: Vec<_> = (0..8)
            .map(|i| {
                let shared = shared.clone();
                fiber_rt::spawn(move || {
                    for _ in 0..2_000 {
                        if i % 2 == 0 {
                            let mut guard = shared.clone().lock_owned();
                            let seen = *guard;
                            fiber_rt::yield_now();
                            *guard = seen + 1;
                        } else {
                            let mut guard = shared.lock();
                            let seen = *guard;
                            fiber_rt::yield_now();
                            *guard = seen + 1;
                        }
                    }
                })
            })
            .collect();
        fibers.into_iter().for_each(|f| f.join().unwrap());
        assert_eq!(*shared.lock(), 16_000);
    });
}

#[test]
fn an_owned_guard_unlocks_on_a_plain_thread() {
    let shared = Arc::new(Mutex::new("free"));
    let held = shared.clone().lock_owned();
    std::thread::spawn(move || drop(held)).join().unwrap();
    assert_eq!(*shared.try_lock().expect("unlocked"), "free");
}
