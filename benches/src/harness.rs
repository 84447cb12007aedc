//! Timing and reporting shared by every workload.

use std::time::{Duration, Instant};

/// One measured figure: a system's cost for one operation of a workload.
#[derive(Debug, Clone)]
pub struct Figure {
    pub system: &'static str,
    pub value: f64,
}

/// A workload's figures, ours first, printed as one table.
#[derive(Debug)]
pub struct Report {
    pub workload: &'static str,
    pub unit: &'static str,
    pub target: Option<String>,
    pub figures: Vec<Figure>,
}

impl Report {
    pub fn new(workload: &'static str, unit: &'static str) -> Self {
        Report {
            workload,
            unit,
            target: None,
            figures: Vec::new(),
        }
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn add(&mut self, system: &'static str, value: f64) {
        println!("  {system:<14} {value:>12.2} {}", self.unit);
        self.figures.push(Figure { system, value });
    }

    /// Prints the table: each figure and its ratio to fiber's (above 1.0
    /// means the peer costs more than fiber).
    pub fn print(&self) {
        let ours = self.figures.first().map(|f| f.value).unwrap_or(f64::NAN);
        println!("\n### {} ({})", self.workload, self.unit);
        if let Some(t) = &self.target {
            println!("target: {t}");
        }
        println!("| system | {} | ratio to fiber |", self.unit);
        println!("|---|---:|---:|");
        for f in &self.figures {
            println!("| {} | {:.2} | {:.2}x |", f.system, f.value, f.value / ours);
        }
        println!();
    }
}

/// Nanoseconds per iteration of `f(iters)`, the best of `rounds` rounds
/// after one warm-up round: the least disturbed run on a shared machine.
pub fn ns_per_iter(iters: u64, rounds: u32, mut f: impl FnMut(u64)) -> f64 {
    f(iters / 10 + 1);
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let start = Instant::now();
        f(iters);
        best = best.min(start.elapsed());
    }
    best.as_nanos() as f64 / iters as f64
}

/// Best of three runs of `f`, which returns the cost of one operation:
/// the least disturbed run on a shared machine.
pub fn best(mut f: impl FnMut() -> f64) -> f64 {
    (0..3).map(|_| f()).fold(f64::INFINITY, f64::min)
}

/// Resident memory of this process, in bytes.
pub fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc_page_size() }
}

extern "C" {
    fn sysconf(name: i32) -> i64;
}

/// # Safety
///
/// Calls `sysconf(_SC_PAGESIZE)`, which has no preconditions.
unsafe fn libc_page_size() -> usize {
    const SC_PAGESIZE: i32 = 30;
    // SAFETY: see the function's contract.
    unsafe { sysconf(SC_PAGESIZE) as usize }
}
