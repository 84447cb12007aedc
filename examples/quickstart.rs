//! The smallest complete program: four fibers in a graph, run on a
//! preemptive work-stealing runtime.
//!
//! ```text
//! cargo run --release -p fiber-examples --example quickstart
//! ```

use fiber_rt::{depends, fiber, Runtime};

#[fiber]
fn load() -> Vec<u64> {
    (1..=1_000_000).collect()
}

#[fiber]
fn sum(xs: &[u64]) -> u64 {
    xs.iter().sum()
}

#[fiber]
fn max(xs: &[u64]) -> u64 {
    xs.iter().copied().max().unwrap_or(0)
}

#[fiber]
fn report(total: &u64, top: &u64) -> String {
    format!("sum={total} max={top}")
}

depends! {
    /// Summary statistics over a loaded data set.
    pub graph Stats {
        sum(load);
        max(load);
        report(sum, max);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::new()?; // one worker per core, preemptive
    let out = rt.run(Stats)?; // typed output of every node
    println!("{}", out.report);
    println!(
        "critical path: {}",
        Stats::TABLE.critical_path().join(" -> ")
    );
    Ok(())
}
