//! A burst of spawns reaches sleeping workers: a spawn notifies idle
//! workers only when it finds its worker's queue empty, and a steal that
//! leaves work behind passes the notice on (sched/sleep/README.md,
//! "Bursts").
//!
//! Each child fiber blocks its worker's thread (no switch) until three of
//! them run at once, or a deadline passes. The parent blocks its own
//! thread too, so only the other, sleeping, workers can run the children.
//! The longest slice, a second, keeps the monitor's balancing (one fiber
//! a tick, half a slice) and rescue (two slices) out of the measured
//! window: the notices alone must bring the workers in.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use fiber_rt::Builder;

/// Children that must run at once: three of the four workers.
const WANT: usize = 3;
/// How long they have to get there: a notice takes microseconds, and the
/// monitor's first balancing tick comes after 500 ms.
const WINDOW: Duration = Duration::from_millis(400);

/// Blocks the calling thread, without switching, until `WANT` children
/// have arrived or `deadline` passes.
fn rendezvous(arrived: &AtomicUsize, deadline: Instant) {
    arrived.fetch_add(1, SeqCst);
    while arrived.load(SeqCst) < WANT && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `spawn_children` in a fiber on a runtime of 4 workers (3 idle,
/// asleep) and returns the most children seen running at once before the
/// deadline. Panics after 30 s instead of hanging.
fn most_at_once(spawn_children: fn(&dyn Fn())) -> usize {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = Builder::new()
            .workers(4)
            .time_slice(Duration::from_secs(1))
            .preempt_signals(false)
            .build()
            .unwrap();
        let seen = rt.block_on(move || {
            // Blocks (no switch): the other three workers search, then sleep.
            std::thread::sleep(Duration::from_millis(50));
            let arrived = Arc::new(AtomicUsize::new(0));
            let deadline = Instant::now() + WINDOW;
            let handles = RefCell::new(Vec::new());
            let spawn_one = || {
                let arrived = arrived.clone();
                let child = fiber_rt::spawn(move || rendezvous(&arrived, deadline));
                handles.borrow_mut().push(child);
            };
            spawn_children(&spawn_one);
            // Waits without switching: only other workers run children.
            // Counts stop meaning anything at the deadline, where every
            // child returns.
            let mut seen = 0;
            while Instant::now() < deadline && seen < WANT {
                seen = arrived.load(SeqCst);
                std::thread::sleep(Duration::from_millis(1));
            }
            for child in handles.into_inner() {
                child.join().unwrap();
            }
            seen
        });
        tx.send(seen).unwrap();
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the runtime hung")
}

#[test]
fn a_tight_burst_wakes_more_than_one_sleeping_worker() {
    // One notice (the first spawn's), passed on by each steal.
    let seen = most_at_once(|spawn| (0..16).for_each(|_| spawn()));
    assert!(seen >= WANT, "only {seen} of {WANT} children ran at once");
}

#[test]
fn spawns_spaced_out_onto_a_non_empty_queue_wake_sleeping_workers() {
    // Eight back to back; the worker woken for them steals half, leaving
    // the rest queued, so the two spawned later find the queue non-empty
    // and send no notice of their own.
    let seen = most_at_once(|spawn| {
        (0..8).for_each(|_| spawn());
        std::thread::sleep(Duration::from_millis(30));
        spawn();
        std::thread::sleep(Duration::from_millis(30));
        spawn();
    });
    assert!(seen >= WANT, "only {seen} of {WANT} children ran at once");
}
