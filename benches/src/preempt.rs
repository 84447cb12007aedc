//! Preemption: what the probes `#[fiber]` inserts cost on small kernels,
//! how late a sleeping fiber wakes while every worker is busy with
//! spinners, and how evenly the spinners share the workers; the same
//! starvation workload on tokio (a cooperative budget, which spinning code
//! never spends) and may (no preemption).

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fiber_rt::{fiber, preempt, Builder};

use crate::harness::Report;

const WORKERS: usize = 2;

/// A small markdown table printed as the workload runs, for figures that
/// need more than one column.
struct Table {
    title: String,
    target: &'static str,
    header: &'static [&'static str],
    rows: Vec<Vec<String>>,
    note: Option<&'static str>,
}

impl Table {
    fn new(
        title: impl Into<String>,
        target: &'static str,
        header: &'static [&'static str],
    ) -> Self {
        Table {
            title: title.into(),
            target,
            header,
            rows: Vec::new(),
            note: None,
        }
    }

    fn note(&mut self, note: &'static str) {
        self.note = Some(note);
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn print(&self) {
        println!("\n### {}", self.title);
        println!("target: {}", self.target);
        println!("| {} |", self.header.join(" | "));
        let align: Vec<_> = (0..self.header.len())
            .map(|i| if i == 0 { "---" } else { "---:" })
            .collect();
        println!("|{}|", align.join("|"));
        for r in &self.rows {
            println!("| {} |", r.join(" | "));
        }
        if let Some(note) = self.note {
            println!("\n{note}");
        }
        println!();
    }
}

fn geomean(xs: &[f64]) -> f64 {
    (xs.iter().map(|x| x.ln()).sum::<f64>() / xs.len() as f64).exp()
}

// ---------------------------------------------------------------------
// Probe overhead. Each kernel twice: as `#[fiber]` compiles it (a probe at
// entry and at the top of every `loop`/`while` body) and as a plain
// function with the same body.

const LCG_MUL: u64 = 6_364_136_223_846_793_005;
const LCG_ADD: u64 = 1_442_695_040_888_963_407;

/// A serial dependency chain: one multiply-add per iteration.
#[fiber]
#[inline(never)]
fn scalar_probed(n: u64) -> u64 {
    let (mut x, mut i) = (n, 0u64);
    while i < n {
        x = x.wrapping_mul(LCG_MUL).wrapping_add(LCG_ADD ^ i);
        i += 1;
    }
    x
}

#[inline(never)]
fn scalar_plain(n: u64) -> u64 {
    let (mut x, mut i) = (n, 0u64);
    while i < n {
        x = x.wrapping_mul(LCG_MUL).wrapping_add(LCG_ADD ^ i);
        i += 1;
    }
    x
}

/// A `for` loop the compiler vectorises. `#[fiber]` leaves a `for` body
/// alone, so its loop compiles to the same code with or without the
/// attribute (checked in the assembly); both versions call one copy of it,
/// so that where the linker happens to place two copies (a loop that
/// straddles a 64-byte line runs up to twice as slow here) does not pass
/// for a probe's cost. What differs is the entry probe.
#[inline(never)]
fn sum_loop(xs: &[u32]) -> u64 {
    let mut s = 0u64;
    for &x in xs {
        s = s.wrapping_add(x as u64);
    }
    s
}

#[fiber]
#[inline(never)]
fn sum_probed(xs: &[u32]) -> u64 {
    sum_loop(xs)
}

#[inline(never)]
fn sum_plain(xs: &[u32]) -> u64 {
    sum_loop(xs)
}

/// The same sum with a probe in the `for` body, as a scheme that probed
/// every back-edge would compile it: why `for` bodies get none.
#[inline(never)]
fn sum_probe_in_body(xs: &[u32]) -> u64 {
    let mut s = 0u64;
    for &x in xs {
        preempt::point();
        s = s.wrapping_add(x as u64);
    }
    s
}

/// The same sum with one probe per 1024 elements: a bound on the time
/// between probes that keeps the inner loop vectorised.
#[inline(never)]
fn sum_probe_per_chunk(xs: &[u32]) -> u64 {
    let mut s = 0u64;
    for chunk in xs.chunks(1024) {
        preempt::point();
        for &x in chunk {
            s = s.wrapping_add(x as u64);
        }
    }
    s
}

/// Follows `next` for `steps` steps from `at`: one dependent load each.
#[fiber]
#[inline(never)]
fn chase_probed(next: &[u32], at: u32, steps: u64) -> u32 {
    let (mut i, mut k) = (at, 0u64);
    while k < steps {
        i = next[i as usize];
        k += 1;
    }
    i
}

#[inline(never)]
fn chase_plain(next: &[u32], at: u32, steps: u64) -> u32 {
    let (mut i, mut k) = (at, 0u64);
    while k < steps {
        i = next[i as usize];
        k += 1;
    }
    i
}

/// Doubly recursive Fibonacci: a probe at every call's entry.
#[fiber]
fn fib_probed(n: u32) -> u64 {
    if n < 2 {
        n as u64
    } else {
        fib_probed(n - 1) + fib_probed(n - 2)
    }
}

fn fib_plain(n: u32) -> u64 {
    if n < 2 {
        n as u64
    } else {
        fib_plain(n - 1) + fib_plain(n - 2)
    }
}

/// A random cyclic permutation of `0..n`, as successor links.
fn cycle(n: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let mut next = vec![0u32; n];
    for w in 0..n {
        next[order[w] as usize] = order[(w + 1) % n];
    }
    next
}

/// Best time per item of each of `variants`, `items` being the work of one
/// call. Calls are short (about a millisecond) and taken in turns, the
/// order reversed every round, for `rounds` rounds: on a shared machine
/// the best of many short calls is the least disturbed.
fn best_per_item(items: u64, rounds: u32, variants: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    let mut best = vec![Duration::MAX; variants.len()];
    for v in variants.iter_mut() {
        v(); // warm-up
    }
    let n = variants.len();
    for round in 0..rounds {
        for k in 0..n {
            let i = if round % 2 == 0 { k } else { n - 1 - k };
            let start = Instant::now();
            variants[i]();
            best[i] = best[i].min(start.elapsed());
        }
    }
    best.iter()
        .map(|b| b.as_nanos() as f64 / items as f64)
        .collect()
}

pub fn probe_overhead() -> Report {
    // One worker, the default slice: the probes read a real worker's flag,
    // and are asked to yield every 10 ms as they would be in use.
    let rt = Builder::new().workers(1).build().unwrap();
    let rows = rt.block_on(|| {
        let rounds = 200;
        let mut rows: Vec<(&'static str, f64, f64)> = Vec::new();

        let n = 500_000u64;
        let t = best_per_item(
            n,
            rounds,
            &mut [
                &mut || {
                    black_box(scalar_plain(black_box(n)));
                },
                &mut || {
                    black_box(scalar_probed(black_box(n)));
                },
            ],
        );
        rows.push(("scalar loop (while, multiply-add chain)", t[0], t[1]));

        let xs: Vec<u32> = (0..16_384u32)
            .map(|i| i.wrapping_mul(2_654_435_761))
            .collect();
        let reps = 200;
        let items = reps * xs.len() as u64;
        let t = best_per_item(
            items,
            rounds,
            &mut [
                &mut || {
                    for _ in 0..reps {
                        black_box(sum_plain(black_box(&xs)));
                    }
                },
                &mut || {
                    for _ in 0..reps {
                        black_box(sum_probed(black_box(&xs)));
                    }
                },
                &mut || {
                    for _ in 0..reps {
                        black_box(sum_probe_in_body(black_box(&xs)));
                    }
                },
                &mut || {
                    for _ in 0..reps {
                        black_box(sum_probe_per_chunk(black_box(&xs)));
                    }
                },
            ],
        );
        rows.push(("vectorisable sum (for over 16k u32)", t[0], t[1]));
        let in_body = ("  same, probe in the for body (not emitted)", t[0], t[2]);
        let per_chunk = ("  same, probe per 1024 items (not emitted)", t[0], t[3]);

        let next = cycle(1 << 16);
        let steps = 50_000u64;
        let (mut at_plain, mut at_probed) = (0u32, 0u32);
        let t = best_per_item(
            steps,
            rounds,
            &mut [
                &mut || {
                    at_plain = chase_plain(black_box(&next), at_plain, steps);
                },
                &mut || {
                    at_probed = chase_probed(black_box(&next), at_probed, steps);
                },
            ],
        );
        rows.push(("pointer chase (while, 256 KiB cycle)", t[0], t[1]));

        let depth = 24;
        let calls = 2 * 75_025u64 - 1; // calls of fib(24): 2 fib(25) - 1
        let t = best_per_item(
            calls,
            rounds,
            &mut [
                &mut || {
                    black_box(fib_plain(black_box(depth)));
                },
                &mut || {
                    black_box(fib_probed(black_box(depth)));
                },
            ],
        );
        rows.push(("recursion (fib 24, probe per call)", t[0], t[1]));
        rows.push(in_body);
        rows.push(per_chunk);
        rows
    });
    drop(rt);

    let mut table = Table::new(
        "probe overhead: ns per item, inside a fiber on 1 worker, 10 ms slice",
        "geomean overhead of the emitted probes at most 2%",
        &["kernel", "no probes", "probes", "overhead"],
    );
    let mut ratios = Vec::new();
    for &(name, plain, probed) in &rows {
        let ratio = probed / plain;
        if !name.starts_with(' ') {
            ratios.push(ratio);
        }
        table.row(vec![
            name.to_string(),
            format!("{plain:.3}"),
            format!("{probed:.3}"),
            format!("{:+.1}%", (ratio - 1.0) * 100.0),
        ]);
    }
    let g = geomean(&ratios);
    table.row(vec![
        "**geomean, emitted probes (first four)**".into(),
        String::new(),
        String::new(),
        format!("{:+.1}%", (g - 1.0) * 100.0),
    ]);
    table.note(
        "The two rows marked \"not emitted\" are loops of their own: where the linker puts a \
         loop moves it by up to a third here (a loop across a 64-byte line), so read them \
         to a factor, not a percent.",
    );
    table.print();

    let mut r = Report::new(
        "probe overhead, geomean over 4 kernels (time relative to no probes)",
        "x",
    )
    .target("#[fiber] probes at most 1.02x");
    r.add("no probes", 1.0);
    r.add("#[fiber] probes", g);
    let body = rows[4];
    r.add("probe in for body", body.2 / body.1);
    r
}

// ---------------------------------------------------------------------
// Starvation: 4 spinners per worker that never yield by themselves, and a
// fiber (task, coroutine) that sleeps 1 ms in a loop. The spinners stop
// when the main thread sets a flag after a fixed wall time, so a runtime
// that cannot preempt them still finishes.

const SPINNERS: usize = 4 * WORKERS;
const WINDOW: Duration = Duration::from_millis(1000);
const PERIOD: Duration = Duration::from_millis(1);

/// What one run of the starvation workload measured.
struct Starved {
    /// Lateness of each of the sleeper's wake-ups during the window, sorted.
    lateness: Vec<Duration>,
    /// What each spinner did.
    spins: Vec<Spun>,
    /// The slice, for a runtime that has one.
    slice: Option<Duration>,
}

impl Starved {
    fn percentile(&self, p: f64) -> Option<Duration> {
        let n = self.lateness.len();
        (n > 0).then(|| self.lateness[((n - 1) as f64 * p).round() as usize])
    }

    /// Jain's fairness index of the spinners' iterations: 1 when all
    /// got the same, 1/n when one got everything.
    fn jain(&self) -> f64 {
        jain(self.spins.iter().map(|s| s.iterations as f64))
    }

    /// Jain's index of the spinners' CPU time.
    fn jain_cpu(&self) -> f64 {
        jain(self.spins.iter().map(|s| s.cpu.as_secs_f64()))
    }
}

fn jain(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let n = xs.clone().count() as f64;
    let sum: f64 = xs.clone().sum();
    let squares: f64 = xs.map(|x| x * x).sum();
    sum * sum / (n * squares)
}

/// How often a spinner reads its thread's CPU clock, in iterations.
const CLOCK_EVERY: u64 = 4096;
/// Thread CPU time between two readings of a spinner that counts as its
/// own: far less than any slice, so a gap in which the thread ran other
/// fibers (or the spinner moved to another thread) is left out.
const OWN_GAP: Duration = Duration::from_micros(200);

/// What a spinner did: its iterations and the CPU time it had.
#[derive(Clone, Copy, Default)]
struct Spun {
    iterations: u64,
    cpu: Duration,
}

/// The calling thread's CPU time.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to, and the clock exists
    // on every Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Counts CPU time between readings of the thread's clock.
struct CpuMeter {
    last: Duration,
    own: Duration,
}

impl CpuMeter {
    fn new() -> Self {
        CpuMeter {
            last: thread_cpu(),
            own: Duration::ZERO,
        }
    }

    fn read(&mut self) {
        let now = thread_cpu();
        if let Some(gap) = now.checked_sub(self.last) {
            if gap < OWN_GAP {
                self.own += gap;
            }
        }
        self.last = now;
    }
}

/// Spins until `stop`, never yielding by itself.
#[fiber]
fn spin(stop: &AtomicBool) -> Spun {
    let (mut n, mut meter) = (0u64, CpuMeter::new());
    // Relaxed: only the flag itself is read.
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        if n % CLOCK_EVERY == 0 {
            meter.read();
        }
    }
    Spun {
        iterations: n,
        cpu: meter.own,
    }
}

/// The same spinner for the peers (no probes).
fn spin_plain(stop: &AtomicBool) -> Spun {
    let (mut n, mut meter) = (0u64, CpuMeter::new());
    // Relaxed: see `spin`.
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        if n % CLOCK_EVERY == 0 {
            meter.read();
        }
    }
    Spun {
        iterations: n,
        cpu: meter.own,
    }
}

/// Sleeps `PERIOD` until `stop`; returns the lateness of each wake-up.
#[fiber]
fn sleep_loop(stop: &AtomicBool) -> Vec<Duration> {
    let mut lateness = Vec::new();
    // Relaxed: see `spin`.
    while !stop.load(Ordering::Relaxed) {
        let start = Instant::now();
        fiber_rt::sleep(PERIOD);
        lateness.push(start.elapsed().saturating_sub(PERIOD));
    }
    lateness
}

/// Drops the wake-up that saw the flag: the window was over.
fn finish(mut lateness: Vec<Duration>, spins: Vec<Spun>, slice: Option<Duration>) -> Starved {
    lateness.pop();
    lateness.sort();
    Starved {
        lateness,
        spins,
        slice,
    }
}

fn starve_fiber(slice: Duration) -> Starved {
    let rt = Builder::new()
        .workers(WORKERS)
        .time_slice(slice)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sleeper = {
        let stop = stop.clone();
        rt.spawn(move || sleep_loop(&stop))
    };
    let spinners: Vec<_> = (0..SPINNERS)
        .map(|_| {
            let stop = stop.clone();
            rt.spawn(move || spin(&stop))
        })
        .collect();
    std::thread::sleep(WINDOW);
    // Relaxed: every fiber only needs to see the flag eventually.
    stop.store(true, Ordering::Relaxed);
    let spins = spinners.into_iter().map(|h| h.join().unwrap()).collect();
    finish(sleeper.join().unwrap(), spins, Some(slice))
}

fn starve_tokio() -> Starved {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sleeper = {
        let stop = stop.clone();
        rt.spawn(async move {
            let mut lateness = Vec::new();
            // Relaxed: see `spin`.
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                tokio::time::sleep(PERIOD).await;
                lateness.push(start.elapsed().saturating_sub(PERIOD));
            }
            lateness
        })
    };
    let spinners: Vec<_> = (0..SPINNERS)
        .map(|_| {
            let stop = stop.clone();
            // No `.await` in the spin: the budget never runs out, so the
            // task never yields.
            rt.spawn(async move { spin_plain(&stop) })
        })
        .collect();
    std::thread::sleep(WINDOW);
    // Relaxed: see `starve_fiber`.
    stop.store(true, Ordering::Relaxed);
    let spins = spinners
        .into_iter()
        .map(|h| rt.block_on(h).unwrap())
        .collect();
    finish(rt.block_on(sleeper).unwrap(), spins, None)
}

fn starve_may() -> Starved {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        may::config().set_workers(WORKERS);
    });
    let stop = Arc::new(AtomicBool::new(false));
    let sleeper = {
        let stop = stop.clone();
        may::go!(move || {
            let mut lateness = Vec::new();
            // Relaxed: see `spin`.
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                may::coroutine::sleep(PERIOD);
                lateness.push(start.elapsed().saturating_sub(PERIOD));
            }
            lateness
        })
    };
    let spinners: Vec<_> = (0..SPINNERS)
        .map(|_| {
            let stop = stop.clone();
            may::go!(move || spin_plain(&stop))
        })
        .collect();
    std::thread::sleep(WINDOW);
    // Relaxed: see `starve_fiber`.
    stop.store(true, Ordering::Relaxed);
    let spins = spinners.into_iter().map(|h| h.join().unwrap()).collect();
    finish(sleeper.join().unwrap(), spins, None)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs `run` `times` times: the lateness of all runs pooled, the
/// spinners' iterations kept per run.
fn repeat(times: usize, run: impl Fn() -> Starved) -> (Starved, Vec<(f64, f64)>) {
    let runs: Vec<Starved> = (0..times).map(|_| run()).collect();
    let jains = runs.iter().map(|r| (r.jain_cpu(), r.jain())).collect();
    let mut lateness: Vec<Duration> = runs.iter().flat_map(|r| r.lateness.clone()).collect();
    lateness.sort();
    // The least fair run's spinners.
    let worst = runs
        .iter()
        .min_by(|a, b| a.jain_cpu().total_cmp(&b.jain_cpu()))
        .expect("at least one run");
    let pooled = Starved {
        lateness,
        spins: worst.spins.clone(),
        slice: worst.slice,
    };
    (pooled, jains)
}

pub fn starvation() -> Report {
    const REPEATS: usize = 3;
    let ms1 = Duration::from_millis(1);
    let ms10 = Duration::from_millis(10);
    let runs = vec![
        (
            "fiber, 1 ms slice",
            REPEATS,
            repeat(REPEATS, || starve_fiber(ms1)),
        ),
        (
            "fiber, 10 ms slice",
            REPEATS,
            repeat(REPEATS, || starve_fiber(ms10)),
        ),
        ("tokio", 1, repeat(1, starve_tokio)),
        ("may", 1, repeat(1, starve_may)),
    ];
    let expected = (WINDOW.as_secs_f64() / PERIOD.as_secs_f64()) as usize;

    let mut latency = Table::new(
        format!(
            "sleeper lateness: sleeps of 1 ms under {SPINNERS} spinners on {WORKERS} workers, \
             {:.1} s per run, runs pooled",
            WINDOW.as_secs_f64()
        ),
        "fiber p99 at most 2 slices with a 1 ms slice",
        &[
            "system",
            "runs",
            "wake-ups",
            "p50 ms",
            "p99 ms",
            "max ms",
            "p50 slices",
            "p99 slices",
        ],
    );
    let mut fairness = Table::new(
        format!(
            "fairness: Jain's index of the CPU time (and iterations) of {SPINNERS} spinners, per run"
        ),
        "fiber at least 0.95",
        &[
            "system",
            "Jain of CPU time, each run",
            "Jain of iterations, each run",
            "min / max CPU time, least fair run",
            "spinners that ran, least fair run",
        ],
    );
    let mut r = Report::new("sleeper p99 lateness under full spinning load", "ms")
        .target("fiber p99 at most 2 ms (2 slices) with a 1 ms slice");
    for (name, times, (s, jains)) in &runs {
        let cell = |d: Option<Duration>| d.map_or("-".to_string(), |d| format!("{:.2}", ms(d)));
        let slices = |d: Option<Duration>| match (d, s.slice) {
            (Some(d), Some(slice)) => format!("{:.2}", d.as_secs_f64() / slice.as_secs_f64()),
            _ => "-".to_string(),
        };
        let (p50, p99, max) = (s.percentile(0.5), s.percentile(0.99), s.percentile(1.0));
        latency.row(vec![
            name.to_string(),
            times.to_string(),
            format!("{} of ~{}", s.lateness.len(), expected * times),
            cell(p50),
            cell(p99),
            cell(max),
            slices(p50),
            slices(p99),
        ]);
        let cpu: Vec<f64> = s.spins.iter().map(|x| x.cpu.as_secs_f64()).collect();
        let (min, maxi) = (
            cpu.iter().copied().fold(f64::INFINITY, f64::min),
            cpu.iter().copied().fold(0.0, f64::max),
        );
        let each = |pick: fn(&(f64, f64)) -> f64| {
            let v: Vec<String> = jains.iter().map(|j| format!("{:.3}", pick(j))).collect();
            v.join(", ")
        };
        fairness.row(vec![
            name.to_string(),
            each(|j| j.0),
            each(|j| j.1),
            format!("{:.3}", if maxi > 0.0 { min / maxi } else { 0.0 }),
            format!(
                "{} of {}",
                s.spins.iter().filter(|x| x.iterations > 0).count(),
                s.spins.len()
            ),
        ]);
        // A sleeper that never woke during the window waited all of it.
        r.add(name, p99.map_or(ms(WINDOW), ms));
    }
    latency.print();
    fairness.print();
    r
}
