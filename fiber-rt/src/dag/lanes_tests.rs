//! The runners' lanes on the runtime: nodes pushed onto one runner's lane
//! are stolen by others, also while that runner is parked, and each node
//! still runs exactly once, after its dependencies, with failures and
//! nested runs accounted for.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{FailureKind, GraphBuilder, NodeId};
use crate::{Builder, Runtime};

/// Each node's start and end on one shared clock, and how often it ran.
struct Clock {
    now: AtomicUsize,
    runs: Vec<AtomicUsize>,
    started: Vec<AtomicUsize>,
    ended: Vec<AtomicUsize>,
}

impl Clock {
    fn new(nodes: usize) -> Arc<Self> {
        let zeros = || (0..nodes).map(|_| AtomicUsize::new(0)).collect();
        Arc::new(Clock {
            now: AtomicUsize::new(1),
            runs: zeros(),
            started: zeros(),
            ended: zeros(),
        })
    }

    /// Records a run of `node` around `body`.
    fn around(&self, node: usize, body: impl FnOnce()) {
        // SeqCst: one total order of events on every thread.
        self.started[node].store(self.now.fetch_add(1, Ordering::SeqCst), Ordering::SeqCst);
        body();
        // SeqCst: as above.
        self.runs[node].fetch_add(1, Ordering::SeqCst);
        // SeqCst: as above.
        self.ended[node].store(self.now.fetch_add(1, Ordering::SeqCst), Ordering::SeqCst);
    }

    /// Asserts each node ran once (or never, if `skipped`), after its parent.
    fn check_tree(&self, skipped: impl Fn(usize) -> bool) {
        for node in 0..self.runs.len() {
            // SeqCst: read after the run, on the clock's order.
            let runs = self.runs[node].load(Ordering::SeqCst);
            assert_eq!(runs, usize::from(!skipped(node)), "node {node} runs");
            if node > 0 && runs == 1 {
                let parent = (node - 1) / 2;
                // SeqCst: as above.
                let (done, start) = (
                    self.ended[parent].load(Ordering::SeqCst),
                    self.started[node].load(Ordering::SeqCst),
                );
                assert!(done < start, "node {node} started before its parent ended");
            }
        }
    }
}

/// A binary tree of `len` nodes (node `i` before `2i + 1` and `2i + 2`),
/// each node running `body(i)`.
fn tree(len: usize, body: impl Fn(usize) -> Box<dyn FnOnce() + Send>) -> GraphBuilder {
    let mut b = GraphBuilder::new();
    let ids: Vec<NodeId> = (0..len).map(|i| b.node(format!("n{i}"), body(i))).collect();
    for child in 1..len {
        b.edge(ids[(child - 1) / 2], ids[child]);
    }
    b
}

fn runtime(workers: usize) -> Runtime {
    Builder::new().workers(workers).build().unwrap()
}

#[test]
fn lanes_are_stolen_from_while_their_runners_park() {
    for workers in [2, 3] {
        let len = (1 << 12) - 1;
        let clock = Clock::new(len);
        let graph = tree(len, |i| {
            let clock = Arc::clone(&clock);
            Box::new(move || {
                clock.around(i, || match i % 13 {
                    // Parks the runner with nodes on its lane.
                    0 => crate::sleep(Duration::from_micros(50)),
                    5 => crate::yield_now(),
                    _ => {}
                })
            })
        });
        runtime(workers).run(graph.build().unwrap()).unwrap();
        clock.check_tree(|_| false);
    }
}

#[test]
fn a_panic_in_a_tree_skips_exactly_its_subtree() {
    let len = (1 << 11) - 1;
    let failing = 5;
    let in_subtree = |mut node: usize| loop {
        if node == failing {
            break true;
        }
        if node == 0 {
            break false;
        }
        node = (node - 1) / 2;
    };
    let clock = Clock::new(len);
    let graph = tree(len, |i| {
        let clock = Arc::clone(&clock);
        Box::new(move || {
            clock.around(i, || assert_ne!(i, failing, "node {i} fails"));
        })
    });
    let error = runtime(2).run(graph.build().unwrap()).unwrap_err();
    assert_eq!(error.failures().len(), 1);
    assert_eq!(error.failures()[0].node, format!("n{failing}"));
    assert_eq!(error.failures()[0].kind, FailureKind::Panicked);
    let subtree = (0..len).filter(|&n| in_subtree(n)).count();
    assert_eq!(error.skipped(), subtree - 1);
    // The failing node started and panicked: its run was not counted.
    clock.check_tree(in_subtree);
}

#[test]
fn nodes_of_a_wide_graph_each_run_a_nested_graph() {
    const WIDE: usize = 200;
    const INNER: usize = 31;
    let ran = Arc::new(AtomicUsize::new(0));
    let mut b = GraphBuilder::new();
    let root = b.node("root", || {});
    let end = {
        let ran = Arc::clone(&ran);
        b.node("end", move || {
            // Relaxed: every nested run ended before this node started.
            assert_eq!(ran.load(Ordering::Relaxed), WIDE * INNER);
        })
    };
    for _ in 0..WIDE {
        let ran = Arc::clone(&ran);
        let outer = b.node("outer", move || {
            let inner = tree(INNER, |_| {
                let ran = Arc::clone(&ran);
                Box::new(move || {
                    // Relaxed: read once the runs are over.
                    ran.fetch_add(1, Ordering::Relaxed);
                })
            });
            crate::run(inner.build().unwrap()).unwrap();
        });
        b.edge(root, outer).edge(outer, end);
    }
    runtime(2).run(b.build().unwrap()).unwrap();
    // Relaxed: the run is over.
    assert_eq!(ran.load(Ordering::Relaxed), WIDE * INNER);
}
