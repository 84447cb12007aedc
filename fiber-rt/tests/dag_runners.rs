//! How a graph's ready nodes are run on the runtime: a few runner fibers
//! take them from a queue, and a runner whose node blocks lets another
//! take its place.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fiber_rt::dag::GraphBuilder;
use fiber_rt::sync::mpsc;
use fiber_rt::Builder;

#[test]
fn nodes_that_wait_for_a_later_node_do_not_deadlock() {
    // One worker, so one runner: each waiter parks its runner, and the
    // sender, queued behind them, still gets to run.
    let rt = Builder::new().workers(1).build().unwrap();
    let got = Arc::new(AtomicUsize::new(0));
    let mut b = GraphBuilder::new();
    let root = b.node("root", || {});
    let mut senders = Vec::new();
    for i in 0..4 {
        let (tx, rx) = mpsc::unbounded::<u32>();
        senders.push(tx);
        let got = Arc::clone(&got);
        let waiter = b.node(format!("waiter {i}"), move || {
            rx.recv().unwrap();
            // Relaxed: read after the run, which orders it.
            got.fetch_add(1, Ordering::Relaxed);
        });
        b.edge(root, waiter);
    }
    let sender = b.node("sender", move || {
        for tx in senders {
            tx.send(1).unwrap();
        }
    });
    // Lowest rank: queued after every waiter.
    b.edge(root, sender);
    rt.run(b.build().unwrap()).unwrap();
    assert_eq!(got.load(Ordering::Relaxed), 4);
}

#[test]
fn a_graph_wider_than_the_stack_limit_runs_on_a_few_fibers() {
    // 100 000 nodes ready at once: far more than the ~32k guard-paged
    // stacks a process can map, so they cannot each get a fiber.
    let rt = Builder::new().workers(2).build().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let mut b = GraphBuilder::new();
    let root = b.node("root", || {});
    for _ in 0..100_000 {
        let ran = Arc::clone(&ran);
        let leaf = b.node("leaf", move || {
            // Relaxed: read after the run, which orders it.
            ran.fetch_add(1, Ordering::Relaxed);
        });
        b.edge(root, leaf);
    }
    rt.run(b.build().unwrap()).unwrap();
    assert_eq!(ran.load(Ordering::Relaxed), 100_000);
    assert!(
        rt.metrics().spawned < 100,
        "{} fibers for one graph",
        rt.metrics().spawned
    );
}

#[test]
fn a_runner_going_through_many_nodes_yields_when_its_slice_is_over() {
    // One worker and no backstop signal: only the runner's own yield
    // between nodes lets the fiber the first node spawns run before the
    // graph is done. Each node spins 100 us with no probe (a closure, not
    // a `#[fiber]`) until that fiber has run, so the graph takes 1 s if
    // the runner never yields, and about a slice if it does.
    const NODES: usize = 10_000;
    let rt = Builder::new()
        .workers(1)
        .time_slice(Duration::from_millis(2))
        .preempt_signals(false)
        .build()
        .unwrap();
    let other_ran = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    // How many nodes had finished when the other fiber ran.
    let seen = Arc::new(AtomicUsize::new(usize::MAX));
    let mut b = GraphBuilder::new();
    let mut previous = None;
    for i in 0..NODES {
        let (other_ran, done, seen) = (other_ran.clone(), done.clone(), seen.clone());
        let node = b.node("spin", move || {
            if i == 0 {
                let (other_ran, done) = (other_ran.clone(), done.clone());
                fiber_rt::spawn(move || {
                    // Relaxed: only counts, read after the run.
                    seen.store(done.load(Ordering::Relaxed), Ordering::Relaxed);
                    other_ran.store(true, Ordering::Relaxed);
                });
            }
            let start = Instant::now();
            while !other_ran.load(Ordering::Relaxed) && start.elapsed() < Duration::from_micros(100)
            {
                std::hint::spin_loop();
            }
            done.fetch_add(1, Ordering::Relaxed);
        });
        if let Some(previous) = previous {
            b.edge(previous, node);
        }
        previous = Some(node);
    }
    rt.run(b.build().unwrap()).unwrap();
    let seen = seen.load(Ordering::Relaxed);
    assert!(
        seen < NODES,
        "the other fiber ran only after all {NODES} nodes (seen {seen})"
    );
    assert!(rt.metrics().preempt_yields > 0, "the runner never yielded");
}
