//! `Runtime::metrics`: the counters add up. Alone in its own test binary,
//! so the process-wide stack pool counters see only this file's fibers.

use std::time::{Duration, Instant};

use fiber_rt::sync::mpsc;
use fiber_rt::Builder;

#[test]
fn counters_add_up() {
    let rt = Builder::new().workers(2).build().unwrap();
    let pool_before = fiber_rt::stack::pool_stats();
    // Spawns from inside a fiber land on its worker's queue, where the
    // other worker steals from.
    let total: u64 = rt.block_on(|| {
        let handles: Vec<_> = (0..2000u64).map(|i| fiber_rt::spawn(move || i)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(total, 1999 * 2000 / 2);
    // 100 round trips over bounded channels: every receive that finds the
    // channel empty parks its fiber.
    let (ping_tx, ping_rx) = mpsc::bounded::<u32>(1);
    let (pong_tx, pong_rx) = mpsc::bounded::<u32>(1);
    let echo = rt.spawn(move || {
        while let Ok(n) = ping_rx.recv() {
            pong_tx.send(n).unwrap();
        }
    });
    let pinger = rt.spawn(move || {
        for n in 0..100 {
            ping_tx.send(n).unwrap();
            assert_eq!(pong_rx.recv().unwrap(), n);
        }
    });
    pinger.join().unwrap();
    echo.join().unwrap();

    // Joined fibers are off the live list by the time their joiners return.
    let m = rt.metrics();
    assert_eq!(m.spawned, 2003);
    assert_eq!(m.finished, 2003);
    assert_eq!(m.live, 0);
    assert!(m.steals <= m.spawned, "{m:?}");
    assert!(m.parks >= 100, "{m:?}");
    assert_eq!(m.parks, m.per_worker.iter().map(|w| w.parks).sum::<u64>());
    assert_eq!(m.per_worker.len(), 2);
    for w in &m.per_worker {
        let sum = w.busy + w.idle;
        assert!(
            sum <= m.uptime && m.uptime - sum < Duration::from_millis(1),
            "{m:?}"
        );
    }
    let pool = m.stack_pool;
    // A fiber takes a stack from the pool at its first run, unless it
    // takes over the stack of the fiber that finished just before it.
    let requests = pool.hits + pool.misses - (pool_before.hits + pool_before.misses);
    assert!((1..=2003).contains(&requests), "{pool:?} {pool_before:?}");
    assert!(
        pool.pooled >= 1,
        "finished fibers' stacks wait in the pool: {pool:?}"
    );
}

#[test]
fn busy_and_idle_time_follow_the_work() {
    // Without the backstop: it would move the spinner below, which has no
    // probes, off its worker after two slices.
    let rt = Builder::new()
        .workers(2)
        .preempt_signals(false)
        .build()
        .unwrap();
    // Let both workers go idle, then measure a quiet stretch.
    std::thread::sleep(Duration::from_millis(50));
    let quiet = rt.metrics();
    std::thread::sleep(Duration::from_millis(100));
    let after_quiet = rt.metrics();
    for (before, after) in quiet.per_worker.iter().zip(&after_quiet.per_worker) {
        let idle = after.idle - before.idle;
        assert!(
            idle >= Duration::from_millis(80),
            "idle for {idle:?} of 100 ms"
        );
    }

    // One fiber keeps one worker busy for 200 ms.
    let spin = Duration::from_millis(200);
    rt.block_on(move || {
        let until = Instant::now() + spin;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    });
    let m = rt.metrics();
    let busy: Vec<Duration> = m
        .per_worker
        .iter()
        .zip(&after_quiet.per_worker)
        .map(|(now, then)| now.busy - then.busy)
        .collect();
    let most = busy.iter().max().unwrap();
    assert!(*most >= spin, "busy {busy:?} while one fiber spun {spin:?}");
    let least = busy.iter().min().unwrap();
    assert!(
        *least < spin / 2,
        "the other worker was idle: busy {busy:?}"
    );
}

/// While the only worker's fiber spawns fibers that cannot run yet (so
/// none finishes), another thread's reads of the metrics never count one
/// as finished: spawned and live come from the same moment.
#[test]
fn metrics_read_while_a_worker_spawns_count_nothing_finished() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let rt = fiber_rt::Builder::new()
        .workers(1)
        .time_slice(Duration::from_secs(1))
        .preempt_signals(false)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let spawner = {
        let stop = stop.clone();
        rt.spawn(move || {
            let mut handles = Vec::new();
            while !stop.load(Ordering::Relaxed) && handles.len() < 200_000 {
                handles.push(fiber_rt::spawn(|| 1u64));
            }
            handles
        })
    };
    let start = Instant::now();
    let mut polls = 0;
    while start.elapsed() < Duration::from_millis(200) {
        let m = rt.metrics();
        assert_eq!(m.finished, 0, "after {polls} reads: {m:?}");
        polls += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let handles = spawner.join().unwrap();
    let spawned = handles.len() as u64;
    assert_eq!(
        handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>(),
        spawned
    );
}

/// While fibers are spawned and finish on both workers, every report's
/// three fiber counts agree: each fiber spawned is either finished or
/// live. (`live` was counted in a pass of its own, after the other two,
/// and most reads taken during such churn had more live fibers than
/// spawned ones.)
#[test]
fn spawned_is_finished_plus_live_in_every_report() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let rt = Builder::new().workers(2).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let stop = stop.clone();
        rt.spawn(move || {
            let mut rounds = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let handles: Vec<_> = (0..64u64).map(|i| fiber_rt::spawn(move || i)).collect();
                let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
                assert_eq!(sum, 63 * 64 / 2);
                rounds += 1;
            }
            rounds
        })
    };
    let start = Instant::now();
    let mut reads = 0u64;
    let mut busy_reads = 0u64;
    while start.elapsed() < Duration::from_millis(300) || busy_reads < 100 {
        let m = rt.metrics();
        assert_eq!(
            m.spawned,
            m.finished + m.live as u64,
            "after {reads} reads: {m:?}"
        );
        reads += 1;
        busy_reads += u64::from(m.live > 1);
        assert!(start.elapsed() < Duration::from_secs(60), "{m:?}");
    }
    stop.store(true, Ordering::Relaxed);
    assert!(churn.join().unwrap() > 0);
    let m = rt.metrics();
    assert_eq!((m.finished, m.live), (m.spawned, 0), "{m:?}");
}
