//! Graphs built at run time through the public API: random shapes from
//! fixed seeds, cycles, and long chains.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use fiber_rt::dag::{run_with, GraphBuilder, NodeId, Task};

fn on_threads(task: Task) {
    std::thread::spawn(move || task.run());
}

/// xorshift64, so every seed gives the same graph on every run.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }
}

/// Checks, inside each node, that all its dependencies have finished.
/// (SeqCst: the check reads other threads' marks and must see them in order.)
/// Nodes are added after their dependencies (every edge forward, which
/// `build` takes as they come), and for two of the seeds also in a
/// shuffled order (which `build` sorts).
#[test]
fn random_dags_respect_every_edge() {
    for (seed, shuffled) in [
        (3u64, false),
        (17, false),
        (2024, false),
        (3, true),
        (17, true),
    ] {
        let mut rng = XorShift(seed);
        let nodes = 2000;
        let done: Arc<Vec<AtomicUsize>> =
            Arc::new((0..nodes).map(|_| AtomicUsize::new(0)).collect());
        let mut deps: Vec<Vec<usize>> = vec![Vec::new(); nodes];
        for (to, froms) in deps.iter_mut().enumerate().skip(1) {
            for _ in 0..rng.below(4) {
                let from = rng.below(to);
                if !froms.contains(&from) {
                    froms.push(from);
                }
            }
        }
        // The order the nodes are added in.
        let mut order: Vec<usize> = (0..nodes).collect();
        if shuffled {
            for i in (1..nodes).rev() {
                order.swap(i, rng.below(i + 1));
            }
        }
        let edges = deps.iter().map(Vec::len).sum();
        let mut builder = GraphBuilder::with_capacity(nodes, edges);
        let mut ids = vec![None; nodes];
        for &node in &order {
            let (done, deps) = (Arc::clone(&done), deps[node].clone());
            ids[node] = Some(builder.node(format!("n{node}"), move || {
                for dep in deps {
                    assert_eq!(
                        done[dep].load(Ordering::SeqCst),
                        1,
                        "n{dep} finished before n{node}"
                    );
                }
                done[node].fetch_add(1, Ordering::SeqCst);
            }));
        }
        let ids: Vec<NodeId> = ids.into_iter().map(Option::unwrap).collect();
        for (to, froms) in deps.iter().enumerate() {
            for &from in froms {
                builder.edge(ids[from], ids[to]);
            }
        }
        run_with(builder.build().unwrap(), on_threads).unwrap();
        assert!(
            done.iter().all(|count| count.load(Ordering::SeqCst) == 1),
            "seed {seed} (shuffled: {shuffled}): every node ran once"
        );
    }
}

#[test]
fn build_names_the_cycle() {
    let mut builder = GraphBuilder::new();
    let fetch = builder.node("fetch", || {});
    let parse = builder.node("parse", || {});
    let check = builder.node("check", || {});
    builder
        .edge(fetch, parse)
        .edge(parse, check)
        .edge(check, fetch);
    let err = builder.build().unwrap_err();
    assert_eq!(err.to_string(), "cycle: fetch -> parse -> check -> fetch");
    assert_eq!(err.path().len(), 4);
}

#[test]
fn a_million_node_chain_runs_without_deep_stacks() {
    let count = Arc::new(AtomicUsize::new(0));
    let mut builder = GraphBuilder::new();
    let mut previous: Option<NodeId> = None;
    for _ in 0..1_000_000 {
        let count = Arc::clone(&count);
        let node = builder.node("link", move || {
            // Relaxed: a count read once the run has ended.
            count.fetch_add(1, Ordering::Relaxed);
        });
        if let Some(previous) = previous {
            builder.edge(previous, node);
        }
        previous = Some(node);
    }
    let graph = builder.build().unwrap();
    // Inline on a thread with a small stack: continuation is a loop.
    let runner = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || run_with(graph, |task| task.run()));
    runner.unwrap().join().unwrap().unwrap();
    // Relaxed: the run has ended, after every increment.
    assert_eq!(count.load(Ordering::Relaxed), 1_000_000);
}

#[test]
fn dot_shows_the_built_graph() {
    let mut builder = GraphBuilder::new();
    let a = builder.node("a", || {});
    let b = builder.node("b", || {});
    builder.edge(a, b);
    let graph = builder.build().unwrap();
    assert_eq!(graph.len(), 2);
    assert_eq!(graph.name(b), "b");
    let dot = graph.dot("built");
    assert!(dot.starts_with("digraph \"built\""));
    assert!(dot.contains("n0 -> n1;"));
}

#[test]
fn an_id_from_another_builder_is_refused_even_in_range() {
    let mut first = GraphBuilder::new();
    let a0 = first.node("a0", || {});
    let a1 = first.node("a1", || {});
    let mut second = GraphBuilder::new();
    let b0 = second.node("b0", || {});
    let b1 = second.node("b1", || {});
    // Same indices, other builder: an edge with them would wire the wrong
    // nodes, so it panics instead.
    for (before, after) in [(a1, b0), (b0, a1), (a0, a1)] {
        let edge = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            second.edge(before, after);
        }));
        let message = edge.expect_err("another builder's id");
        let message = message.downcast_ref::<String>().expect("a message");
        assert!(
            message.contains("is not a node of this builder"),
            "{message}"
        );
    }
    second.edge(b0, b1);
    let graph = second.build().unwrap();
    assert_eq!(graph.successors(b0).collect::<Vec<_>>(), [b1]);
    assert_eq!(graph.name(b1), "b1");
    let name = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| graph.name(a0).to_owned()));
    assert!(name.is_err(), "a node of another graph has no name here");
}
