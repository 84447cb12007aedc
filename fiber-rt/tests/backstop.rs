//! The preemption backstop: fibers spinning in code without probes cannot
//! starve the others, even while they allocate, print, or hold a
//! `std::sync::Mutex`.

use std::io::Write;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fiber_rt::Builder;

const SLICE: Duration = Duration::from_millis(2);

/// A spin loop with no probe: not a `#[fiber]`, and never inlined into one.
#[inline(never)]
fn spin_without_probes(stop: &AtomicBool, work: &AtomicU64) {
    while !stop.load(Ordering::Relaxed) {
        work.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn spinners_without_probes_do_not_starve_a_sleeper() {
    let workers = 2;
    let rt = Builder::new()
        .workers(workers)
        .time_slice(SLICE)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let work = Arc::new(AtomicU64::new(0));
    let spinners: Vec<_> = (0..4 * workers)
        .map(|_| {
            let (stop, work) = (stop.clone(), work.clone());
            rt.spawn(move || spin_without_probes(&stop, &work))
        })
        .collect();
    let sleeper = rt.spawn(|| {
        let mut lateness = Vec::new();
        for _ in 0..20 {
            let start = Instant::now();
            fiber_rt::sleep(Duration::from_millis(1));
            lateness.push(start.elapsed().saturating_sub(Duration::from_millis(1)));
        }
        lateness.sort();
        lateness
    });
    let lateness = sleeper.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    spinners.into_iter().for_each(|h| h.join().unwrap());
    let p90 = lateness[lateness.len() * 9 / 10];
    let m = rt.metrics();
    eprintln!(
        "sleeper lateness p90 {p90:?} beside {} probe-less spinners; {m:?}",
        4 * workers
    );
    assert!(m.backstop_handoffs > 0, "the backstop never acted: {m:?}");
    // Each spinner is detached onto a thread of its own after two slices;
    // then the sleeper shares the cores with them through the OS.
    assert!(p90 < Duration::from_millis(200), "p90 lateness {p90:?}");
}

#[test]
fn a_spinner_holding_a_std_mutex_does_not_deadlock_the_others() {
    let rt = Builder::new().workers(1).time_slice(SLICE).build().unwrap();
    let shared = Arc::new(std::sync::Mutex::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let holder = {
        let (shared, stop) = (shared.clone(), stop.clone());
        rt.spawn(move || {
            let mut guard = shared.lock().unwrap();
            let work = AtomicU64::new(0);
            spin_without_probes(&stop, &work); // holds the lock, never yields
            *guard += 1;
        })
    };
    // The only worker is taken by the holder; the backstop detaches it, so
    // this fiber runs, and waits for the lock on its own thread.
    let other = {
        let shared = shared.clone();
        rt.spawn(move || {
            let started = Instant::now();
            *shared.lock().unwrap() += 1;
            started
        })
    };
    let ticker = rt.spawn(|| {
        fiber_rt::sleep(Duration::from_millis(5));
        "ticked"
    });
    assert_eq!(
        ticker.join().unwrap(),
        "ticked",
        "a third fiber ran while the holder spun"
    );
    stop.store(true, Ordering::Relaxed);
    holder.join().unwrap();
    other.join().unwrap();
    assert_eq!(*shared.lock().unwrap(), 2);
}

/// Runs `name` of this test binary in a child process with `FIBER_CHILD`
/// set (its output would otherwise clutter the test's).
fn child(name: &str, seconds: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            name,
            "--nocapture",
            "--test-threads=1",
            "--include-ignored",
        ])
        .env("FIBER_CHILD", seconds)
        .output()
        .unwrap()
}

fn hazards(seconds: u64) {
    let rt = Builder::new().workers(2).time_slice(SLICE).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..8)
        .map(|i| {
            let stop = stop.clone();
            rt.spawn(move || {
                let mut lines = 0u64;
                let mut keep = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    // malloc, free, and std's stdout lock, all the time.
                    keep.push(vec![i as u8; 64 + (lines % 512) as usize]);
                    if keep.len() > 64 {
                        keep.clear();
                    }
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "spinner {i} line {lines}").unwrap();
                    lines += 1;
                }
                lines
            })
        })
        .collect();
    let ticks = rt.spawn(move || {
        let end = Instant::now() + Duration::from_secs(seconds);
        let mut ticks = 0u64;
        while Instant::now() < end {
            fiber_rt::sleep(Duration::from_millis(1));
            ticks += 1;
        }
        ticks
    });
    let ticks = ticks.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    let lines: u64 = spinners.into_iter().map(|h| h.join().unwrap()).sum();
    let m = rt.metrics();
    eprintln!(
        "RESULT ticks={ticks} lines={lines} handoffs={} signals={}",
        m.backstop_handoffs, m.backstop_signals
    );
}

fn check_hazards(seconds: &str) {
    let out = child("allocating_printing_spinners_survive_the_backstop", seconds);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed: {:?}\n{stderr}",
        out.status
    );
    assert!(!stderr.contains("already borrowed"), "{stderr}");
    let result = stderr
        .lines()
        .find(|l| l.starts_with("RESULT"))
        .expect("the child reports");
    let field = |name: &str| -> u64 {
        result
            .split(' ')
            .find_map(|kv| kv.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    assert!(field("ticks=") > 10, "{result}");
    assert!(field("lines=") > 0, "{result}");
}

#[test]
fn allocating_printing_spinners_survive_the_backstop() {
    if let Ok(seconds) = std::env::var("FIBER_CHILD") {
        return hazards(seconds.parse().unwrap());
    }
    check_hazards("2");
}

/// The same hazards for 12 seconds: `cargo test --release --test backstop -- --ignored`.
#[test]
#[ignore]
fn allocating_printing_spinners_survive_the_backstop_for_long() {
    check_hazards("12");
}
