//! Traces one run of a small graph and draws it: `trace.json` opens in
//! <https://ui.perfetto.dev> or `chrome://tracing`, `gantt.svg` in any
//! browser (one row per worker, the critical path in red). Also prints the
//! graph with measured times as Graphviz text, and the runtime's counters.
//!
//! ```text
//! cargo run --release -p fiber-examples --example trace -- /tmp/out
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fiber_rt::{depends, fiber, Builder};

/// Holds a worker for `ms` milliseconds, as computing would.
fn compute(ms: u64) {
    let until = Instant::now() + Duration::from_millis(ms);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

#[fiber(cost = 4)]
fn fetch() -> Vec<u32> {
    compute(4);
    (1..=10_000).collect()
}

#[fiber(cost = 20)]
fn parse(raw: &[u32]) -> Vec<u64> {
    // Waits for an outside service: the fiber parks, its worker runs others.
    fiber_rt::sleep(Duration::from_millis(20));
    raw.iter().map(|&x| u64::from(x) * 2).collect()
}

#[fiber(cost = 8)]
fn index(raw: &[u32]) -> usize {
    compute(8);
    raw.len()
}

#[fiber(cost = 6)]
fn thumbnails(raw: &[u32]) -> usize {
    compute(6);
    raw.len() / 100
}

#[fiber(cost = 3)]
fn publish(parsed: &[u64], entries: &usize, thumbs: &usize) -> String {
    compute(3);
    format!(
        "{} values, {entries} index entries, {thumbs} thumbnails",
        parsed.len()
    )
}

depends! {
    /// Fetch, process three ways, publish.
    graph Publishing {
        parse(fetch);
        index(fetch);
        thumbnails(fetch);
        publish(parse, index, thumbnails);
    }
}

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    std::fs::create_dir_all(&dir)?;
    let rt = Builder::new().workers(2).build()?;

    let (result, trace) = rt.run_traced(Publishing);
    match result {
        Ok(out) => println!("published: {}", out.publish),
        Err(e) => println!("the run failed: {e}"),
    }
    let path: Vec<_> = trace
        .critical_path()
        .iter()
        .map(|&i| trace.nodes()[i].name.as_str())
        .collect();
    println!(
        "wall time {:?}, measured critical path: {}",
        trace.wall_time(),
        path.join(" -> ")
    );
    println!(
        "critical path by cost: {}",
        Publishing::TABLE.critical_path().join(" -> ")
    );
    print!("{}", trace.dot());

    let json = dir.join("trace.json");
    let svg = dir.join("gantt.svg");
    trace.write_chrome_json(&json)?;
    trace.write_svg(&svg)?;
    println!("wrote {}", json.display());
    println!("wrote {}", svg.display());

    let m = rt.metrics();
    for (i, w) in m.per_worker.iter().enumerate() {
        println!("worker {i}: busy {:?}, idle {:?}", w.busy, w.idle);
    }
    Ok(())
}
