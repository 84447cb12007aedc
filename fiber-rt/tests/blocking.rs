//! `spawn_blocking`'s pool: each job gets a thread of its own while the
//! pool has fewer than its limit, so jobs that wait for each other (one
//! receives what the next one sends) never wait in line behind each other.

use std::time::Duration;

use fiber_rt::Builder;

#[test]
fn a_job_waiting_for_the_next_one_gets_a_thread_of_its_own() {
    let rt = Builder::new().workers(2).build().unwrap();
    for _ in 0..20 {
        let received = rt.block_on(|| {
            // Leaves a pool thread idle: the case where the spawns below
            // had both been handed to it, one after the other.
            fiber_rt::spawn_blocking(|| ()).join().unwrap();
            fiber_rt::sleep(Duration::from_millis(5));
            let (tx, rx) = std::sync::mpsc::channel::<u32>();
            let waiter = fiber_rt::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(10)));
            let sender = fiber_rt::spawn_blocking(move || tx.send(7).unwrap());
            sender.join().unwrap();
            waiter.join().unwrap()
        });
        assert_eq!(received, Ok(7));
    }
}

#[test]
fn a_burst_of_jobs_runs_at_once() {
    const JOBS: usize = 16;
    let rt = Builder::new().workers(2).build().unwrap();
    let all_started = rt.block_on(|| {
        // Leaves a pool thread (or a few) idle: every spawn of the burst
        // had been handed to them, with no thread started for the rest.
        fiber_rt::spawn_blocking(|| ()).join().unwrap();
        fiber_rt::sleep(Duration::from_millis(5));
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(JOBS));
        let jobs: Vec<_> = (0..JOBS)
            .map(|_| {
                let barrier = barrier.clone();
                // Each waits for all the others: only jobs that run at
                // once get past it.
                fiber_rt::spawn_blocking(move || barrier.wait())
            })
            .collect();
        jobs.into_iter()
            .map(|job| job.join_timeout(Duration::from_secs(10)))
            .all(|joined| joined.is_ok())
    });
    assert!(all_started, "the jobs ran in line, not at once");
}
