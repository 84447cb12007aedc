// The graph from the architecture document builds, runs, and gives every
// node's output; the table and `dot()` describe it.
use fiber_rt::{depends, fiber};

#[fiber]
fn load() -> Vec<u64> {
    (1..=1_000).collect()
}

#[fiber]
fn sum(xs: &Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[fiber]
fn max(xs: &Vec<u64>) -> u64 {
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

fn main() {
    // The functions are still ordinary functions.
    assert_eq!(sum(&vec![1, 2]), 3);

    let out = fiber_rt::dag::run_with(Stats, |task| {
        std::thread::spawn(move || task.run());
    })
    .unwrap();
    assert_eq!(out.report, "sum=500500 max=1000");
    assert_eq!(out.load.len(), 1000);
    assert_eq!((out.sum, out.max), (500500, 1000));

    let names: Vec<_> = Stats::NODES.iter().map(|node| node.name).collect();
    assert_eq!(names, ["load", "sum", "max", "report"]);
    assert_eq!(Stats::TABLE.sources, [0]);
    assert_eq!(Stats::NODES[3].in_degree, 2);
    assert!(Stats::dot().contains("n0 -> n1;"));
}
