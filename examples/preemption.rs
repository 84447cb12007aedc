//! Spinners against a ticker, with and without preemption.
//!
//! One worker runs a ticker fiber that wants to tick every millisecond,
//! and spinner fibers that never block. With preemption (the spinners are
//! `#[fiber]` functions, whose loops carry probes) the ticker keeps
//! ticking; with preemption held off (`no_preempt`) it starves until the
//! spinners are done.
//!
//! ```text
//! cargo run --release -p fiber-examples --example preemption [spin-ms]
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fiber_rt::{fiber, preempt, Builder};

#[fiber]
fn spin(stop: &AtomicBool) -> u64 {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n = n.wrapping_add(1); // a probe sits at the top of this body
    }
    n
}

/// Runs 4 spinners for `spin_for` beside a ticker on one worker; returns the
/// ticks and the longest gap between two of them.
fn trial(preemptive: bool, spin_for: Duration) -> (usize, Duration) {
    let rt = Builder::new()
        .workers(1)
        .time_slice(Duration::from_millis(2))
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (started_tx, started) = std::sync::mpsc::channel();
    let ticker = rt.spawn(move || {
        // The start counts as a tick: a starved first sleep is a gap too.
        let start = Instant::now();
        let mut ticks = vec![start];
        let _ = started_tx.send(());
        while start.elapsed() < Duration::from_millis(300) {
            fiber_rt::sleep(Duration::from_millis(1));
            ticks.push(Instant::now());
        }
        ticks
    });
    // The spinners come once the ticker runs, so they compete with it.
    started.recv().unwrap();
    let spinners: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            rt.spawn(move || {
                let stopper = {
                    let stop = stop.clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(spin_for);
                        stop.store(true, Ordering::Relaxed);
                    })
                };
                let n = if preemptive {
                    spin(&stop)
                } else {
                    preempt::no_preempt(|| spin(&stop))
                };
                stopper.join().unwrap();
                n
            })
        })
        .collect();
    spinners.into_iter().for_each(|s| drop(s.join()));
    let ticks = ticker.join().unwrap();
    let longest_gap = ticks
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    (ticks.len(), longest_gap)
}

fn main() {
    let spin_ms: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let spin_for = Duration::from_millis(spin_ms);
    for (label, preemptive) in [("with preemption", true), ("without preemption", false)] {
        let (ticks, gap) = trial(preemptive, spin_for);
        println!(
            "{label}: {ticks} ticks in 300 ms beside 4 spinners running {spin_ms} ms, longest gap {:.1} ms",
            gap.as_secs_f64() * 1e3
        );
    }
}
