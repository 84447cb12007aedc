//! `depends!` graphs run end to end on plain threads: outputs, inputs,
//! moved outputs, failures, and the constant node table.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use fiber_rt::dag::{run_with, FailureKind, Moved, Task};
use fiber_rt::{depends, fiber};

/// Runs each ready task on a thread of its own.
fn on_threads(task: Task) {
    std::thread::spawn(move || task.run());
}

#[fiber]
fn load() -> Vec<u64> {
    (1..=100).collect()
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
    /// The example from the architecture document.
    graph Stats {
        sum(load);
        max(load);
        report(sum, max);
    }
}

#[test]
fn every_node_output_is_in_the_outputs() {
    for _ in 0..50 {
        let out = run_with(Stats, on_threads).unwrap();
        assert_eq!(out.report, "sum=5050 max=100");
        assert_eq!((out.sum, out.max, out.load.len()), (5050, 100, 100));
    }
}

#[test]
fn the_table_is_constant_and_topological() {
    const NODES: &[fiber_rt::dag::NodeInfo] = Stats::NODES;
    let names: Vec<_> = NODES.iter().map(|n| n.name).collect();
    assert_eq!(names, ["load", "sum", "max", "report"]);
    let in_degrees: Vec<_> = NODES.iter().map(|n| n.in_degree).collect();
    assert_eq!(in_degrees, [0, 1, 1, 2]);
    for (i, node) in NODES.iter().enumerate() {
        for &succ in node.successors {
            assert!(
                succ as usize > i,
                "{} comes before its successor",
                node.name
            );
        }
    }
    assert_eq!(NODES[0].rank, 3);
    assert_eq!(Stats::TABLE.critical_path(), ["load", "sum", "report"]);
    let dot = Stats::dot();
    for edge in ["n0 -> n1;", "n0 -> n2;", "n1 -> n3;", "n2 -> n3;"] {
        assert!(dot.contains(edge), "{edge} in {dot}");
    }
}

#[fiber]
fn scale(xs: Vec<u64>, factor: &u64) -> Vec<u64> {
    xs.into_iter().map(|x| x * factor).collect()
}

#[fiber]
fn total(xs: &[u64]) -> u64 {
    xs.iter().sum()
}

depends! {
    graph Scaled(xs: Vec<u64>, factor: u64) {
        scale(xs, factor);
        total(scale);
    }
}

#[test]
fn one_graph_type_serves_many_runs_with_inputs() {
    for factor in 1..=20 {
        let out = run_with(Scaled::new(vec![1, 2, 3], factor), on_threads).unwrap();
        assert_eq!(out.total, 6 * factor);
        assert_eq!(out.scale, [factor, 2 * factor, 3 * factor]);
    }
}

#[fiber]
fn produce() -> String {
    "payload".to_string()
}

#[fiber]
fn consume(text: String) -> usize {
    text.len()
}

depends! {
    graph Handoff {
        consume(produce);
    }
}

#[test]
fn a_moved_output_leaves_a_moved_marker() {
    let out = run_with(Handoff, on_threads).unwrap();
    assert_eq!(out.produce, Moved);
    assert_eq!(out.consume, 7);
}

// Counters read after the run (SeqCst throughout: simplest to reason about).
static SIDE_RAN: AtomicUsize = AtomicUsize::new(0);
static AFTER_RAN: AtomicUsize = AtomicUsize::new(0);
static LOG: Mutex<Vec<&str>> = Mutex::new(Vec::new());

#[fiber]
fn root() -> u32 {
    1
}

#[fiber]
fn explode(_: &u32) -> u32 {
    panic!("exploded on purpose")
}

#[fiber]
fn after_explode(_: &u32) -> u32 {
    AFTER_RAN.fetch_add(1, Ordering::SeqCst);
    0
}

#[fiber(name = "side branch")]
fn side(x: &u32) -> u32 {
    SIDE_RAN.fetch_add(1, Ordering::SeqCst);
    x + 1
}

#[fiber]
fn side_end(x: &u32) -> u32 {
    LOG.lock().unwrap().push("side end");
    x + 1
}

depends! {
    graph Fragile {
        explode(root);
        after_explode(explode);
        side(root);
        side_end(side);
    }
}

#[test]
fn a_panic_skips_dependents_and_lets_other_branches_finish() {
    let err = run_with(Fragile, on_threads).expect_err("the run fails");
    assert_eq!(err.node(), Some("explode"));
    assert_eq!(err.failures()[0].kind, FailureKind::Panicked);
    assert_eq!(err.failures()[0].message, "exploded on purpose");
    assert_eq!(err.skipped(), 1);
    assert_eq!(err.skipped_nodes().collect::<Vec<_>>(), ["after_explode"]);
    assert_eq!(
        AFTER_RAN.load(Ordering::SeqCst),
        0,
        "the dependent was skipped"
    );
    assert_eq!(
        SIDE_RAN.load(Ordering::SeqCst),
        1,
        "the independent branch ran"
    );
    assert_eq!(*LOG.lock().unwrap(), ["side end"]);
    assert_eq!(Fragile::TABLE.node("side branch").unwrap().1.field, "side");
}

#[fiber]
fn parse(text: &str) -> Result<u64, std::num::ParseIntError> {
    text.parse()
}

#[fiber]
fn double(n: &u64) -> u64 {
    n * 2
}

depends! {
    graph Parse(text: String) {
        parse(text);
        double(parse);
    }
}

#[test]
fn an_err_names_the_fiber_and_shows_the_error() {
    assert_eq!(
        run_with(Parse::new("21".into()), on_threads)
            .unwrap()
            .double,
        42
    );
    let err = run_with(Parse::new("twenty".into()), on_threads)
        .err()
        .unwrap();
    assert_eq!(err.to_string(), "fiber `parse` returned an error: invalid digit found in string (1 dependent fiber skipped)");
}

// A wider graph: two layers that fan out and fan in.
#[fiber]
fn seed() -> u64 {
    1
}
#[fiber]
fn a1(x: &u64) -> u64 {
    x + 1
}
#[fiber]
fn a2(x: &u64) -> u64 {
    x + 2
}
#[fiber]
fn a3(x: &u64) -> u64 {
    x + 3
}
#[fiber(cost = 50)]
fn b1(x: &u64, y: &u64) -> u64 {
    x * y
}
#[fiber]
fn b2(x: &u64, y: &u64) -> u64 {
    x + y
}
#[fiber]
fn fold(x: &u64, y: &u64, z: &u64) -> u64 {
    x + y + z
}

depends! {
    graph Lattice {
        a1(seed);
        a2(seed);
        a3(seed);
        b1(a1, a2);
        b2(a2, a3);
        fold(b1, b2, a3);
    }
}

#[test]
fn a_lattice_computes_through_every_path() {
    // seed 1: a = 2, 3, 4; b1 = 6, b2 = 7; fold = 6 + 7 + 4.
    for _ in 0..50 {
        assert_eq!(run_with(Lattice, on_threads).unwrap().fold, 17);
    }
    // The costly b1 raises a1 and a2 above a3, so seed starts them first.
    let (_, seed) = Lattice::TABLE.node("seed").unwrap();
    let first = Lattice::NODES[seed.successors[0] as usize].name;
    assert!(first == "a1" || first == "a2", "{first}");
    assert_eq!(Lattice::NODES[seed.successors[2] as usize].name, "a3");
}

#[test]
fn fiber_nodes_describe_their_parameters() {
    use fiber_rt::__private::{Borrow, Move, Node, Param};
    use std::any::TypeId;

    fn mode<N: Param<I>, const I: usize>() -> TypeId
    where
        N::Mode: 'static,
    {
        TypeId::of::<N::Mode>()
    }

    assert_eq!(<scale as Node>::NAME, "scale");
    assert_eq!(<scale as Node>::COST, 1);
    assert_eq!(mode::<scale, 0>(), TypeId::of::<Move>());
    assert_eq!(mode::<scale, 1>(), TypeId::of::<Borrow>());
    assert_eq!(
        TypeId::of::<<scale as Param<0>>::Target>(),
        TypeId::of::<Vec<u64>>()
    );
    assert_eq!(
        TypeId::of::<<scale as Param<1>>::Target>(),
        TypeId::of::<u64>()
    );
    assert_eq!(
        TypeId::of::<<scale as Node>::Output>(),
        TypeId::of::<Vec<u64>>()
    );
    assert_eq!(
        TypeId::of::<<parse as Node>::Output>(),
        TypeId::of::<u64>(),
        "a fallible fiber outputs its `Ok` type"
    );
}

#[fiber]
fn inner_total() -> u64 {
    // A node may run a whole graph of its own.
    run_with(Stats, on_threads).unwrap().sum
}

#[fiber]
fn outer(total: &u64) -> u64 {
    total + 1
}

depends! {
    graph Nested {
        outer(inner_total);
    }
}

#[test]
fn a_node_can_run_another_graph() {
    assert_eq!(run_with(Nested, on_threads).unwrap().outer, 5051);
}
