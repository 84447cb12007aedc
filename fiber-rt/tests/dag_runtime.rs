//! Graphs on the fiber runtime: nodes are fibers that may block, sleep,
//! spawn and run graphs of their own; failures name their node.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fiber_rt::dag::GraphBuilder;
use fiber_rt::{depends, fiber, Builder, Runtime};

#[fiber]
fn load() -> Vec<u64> {
    (1..=1000).collect()
}

#[fiber]
fn sum(xs: &[u64]) -> u64 {
    fiber_rt::sleep(Duration::from_millis(2)); // parks the fiber, not the worker
    xs.iter().sum()
}

#[fiber]
fn max(xs: &[u64]) -> u64 {
    // A node may spawn fibers and wait for them.
    let halves: Vec<_> = xs.chunks(xs.len() / 2).map(|c| c.to_vec()).collect();
    let handles: Vec<_> = halves
        .into_iter()
        .map(|h| fiber_rt::spawn(move || h.into_iter().max().unwrap_or(0)))
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .max()
        .unwrap_or(0)
}

#[fiber]
fn report(total: &u64, top: &u64) -> String {
    format!("sum={total} max={top}")
}

depends! {
    /// Summary statistics.
    graph Stats {
        sum(load);
        max(load);
        report(sum, max);
    }
}

fn rt() -> Runtime {
    Builder::new().workers(2).build().unwrap()
}

#[test]
fn a_static_graph_runs_on_fibers() {
    let rt = rt();
    for _ in 0..20 {
        let out = rt.run(Stats).unwrap();
        assert_eq!(out.report, "sum=500500 max=1000");
    }
    // The last node's fiber hands the result over just before it ends.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while rt.metrics().live > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(rt.metrics().live, 0, "every node's fiber finished");
}

#[fiber]
fn nested() -> String {
    // A node runs another graph on the same runtime without deadlock.
    fiber_rt::run(Stats).unwrap().report
}

depends! {
    graph Outer {
        nested();
    }
}

#[test]
fn a_node_runs_a_graph_of_its_own() {
    let rt = Builder::new().workers(1).build().unwrap();
    assert_eq!(rt.run(Outer).unwrap().nested, "sum=500500 max=1000");
}

#[test]
fn a_graph_runs_from_inside_a_fiber() {
    let rt = rt();
    let report = rt.block_on(|| fiber_rt::run(Stats).unwrap().report);
    assert_eq!(report, "sum=500500 max=1000");
}

#[test]
fn a_failing_node_stops_its_dependents_and_is_named() {
    let rt = rt();
    let ran = Arc::new(AtomicUsize::new(0));
    let mut b = GraphBuilder::new();
    let ok = {
        let ran = ran.clone();
        b.node("ok", move || {
            ran.fetch_add(1, Ordering::SeqCst);
        })
    };
    let bad = b.node("bad", || panic!("disk on fire"));
    let after_bad = {
        let ran = ran.clone();
        b.node("after_bad", move || {
            ran.fetch_add(100, Ordering::SeqCst);
        })
    };
    b.edge(bad, after_bad);
    let _ = ok;
    let err = rt.run(b.build().unwrap()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("bad") && text.contains("disk on fire"),
        "{text}"
    );
    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "the independent node ran, the dependent did not"
    );
}

#[test]
fn a_wide_random_graph_runs_every_node_once_after_its_dependencies() {
    let rt = rt();
    let n = 3000;
    let order = Arc::new(fiber_rt::sync::Mutex::new(Vec::with_capacity(n)));
    let mut b = GraphBuilder::new();
    let ids: Vec<_> = (0..n)
        .map(|i| {
            let order = order.clone();
            b.node(format!("n{i}"), move || order.lock().push(i))
        })
        .collect();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut edges = Vec::new();
    for j in 1..n {
        for _ in 0..3 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = (seed % j as u64) as usize;
            b.edge(ids[i], ids[j]);
            edges.push((i, j));
        }
    }
    rt.run(b.build().unwrap()).unwrap();
    let order = order.lock().clone();
    assert_eq!(order.len(), n, "every node ran exactly once");
    let mut position = vec![usize::MAX; n];
    for (p, &node) in order.iter().enumerate() {
        assert_eq!(position[node], usize::MAX, "node {node} ran twice");
        position[node] = p;
    }
    for (i, j) in edges {
        assert!(
            position[i] < position[j],
            "n{j} ran before its dependency n{i}"
        );
    }
}

#[fiber(name = "inner node")]
fn inner_node() -> Option<String> {
    fiber_rt::current().and_then(|me| me.node)
}

depends! {
    graph NamedInner {
        inner_node();
    }
}

#[fiber(name = "outer node")]
fn outer_node() -> (Option<String>, Option<String>) {
    let inner = fiber_rt::run(NamedInner)
        .expect("the inner graph runs")
        .inner_node;
    // Back in the outer node: its own name again.
    (inner, fiber_rt::current().and_then(|me| me.node))
}

depends! {
    graph NamedOuter {
        outer_node();
    }
}

#[test]
fn a_node_knows_its_name_in_nested_runs_and_built_graphs() {
    let rt = Runtime::new().unwrap();
    let out = rt.run(NamedOuter).unwrap();
    assert_eq!(
        out.outer_node,
        (Some("inner node".into()), Some("outer node".into()))
    );
    let seen = Arc::new(std::sync::Mutex::new(None));
    let mut builder = GraphBuilder::new();
    builder.node("built", {
        let seen = seen.clone();
        move || *seen.lock().unwrap() = fiber_rt::current().and_then(|me| me.node)
    });
    rt.run(builder.build().unwrap()).unwrap();
    assert_eq!(seen.lock().unwrap().as_deref(), Some("built"));
}

#[fiber]
fn port_config() -> Result<u32, String> {
    Ok(7)
}

#[fiber]
fn send_borrowed(port: &u32, tx: &fiber_rt::sync::mpsc::Sender<u32>) {
    tx.send(*port).unwrap();
}

#[fiber]
fn collect_all(rx: fiber_rt::sync::mpsc::Receiver<u32>) -> Vec<u32> {
    // Ends when every sender is gone: the graph's input included.
    rx.iter().collect()
}

depends! {
    graph Borrowed(tx: fiber_rt::sync::mpsc::Sender<u32>, rx: fiber_rt::sync::mpsc::Receiver<u32>) {
        send_borrowed(port_config, tx);
        collect_all(rx);
    }
}

#[test]
fn an_input_goes_when_its_last_reader_is_done_with_it() {
    // `send_borrowed` borrows the sender: the run drops it once that node
    // is done, so `collect_all` sees the channel close. (Kept until the
    // run's end, it hung the run.)
    let rt = Runtime::new().unwrap();
    let (tx, rx) = fiber_rt::sync::mpsc::unbounded();
    let out = rt.run(Borrowed::new(tx, rx)).unwrap();
    assert_eq!(out.collect_all, [7]);
}

/// Counts its drops.
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[fiber]
fn peek_a(t: &Tracked) -> usize {
    t.0.load(Ordering::SeqCst)
}

#[fiber]
fn peek_b(t: &Tracked) -> usize {
    fiber_rt::sleep(Duration::from_millis(5));
    t.0.load(Ordering::SeqCst)
}

#[fiber]
fn fails_first(t: &Tracked) -> Result<usize, String> {
    let _ = t;
    Err("no".into())
}

#[fiber]
fn watch(drops: &Arc<AtomicUsize>, _a: &usize, _b: &usize) -> usize {
    // Runs after both readers of `tracked`: it is gone by then.
    drops.load(Ordering::SeqCst)
}

depends! {
    graph Shared(tracked: Tracked, drops: Arc<AtomicUsize>) {
        peek_a(tracked);
        peek_b(tracked);
        watch(drops, peek_a, peek_b);
    }
}

depends! {
    graph FailingReader(tracked: Tracked) {
        fails_first(tracked);
        peek_b(tracked);
    }
}

#[test]
fn a_shared_input_goes_after_its_last_reader_even_one_that_fails() {
    let rt = Runtime::new().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let out = rt
        .run(Shared::new(Tracked(drops.clone()), drops.clone()))
        .unwrap();
    assert_eq!((out.peek_a, out.peek_b), (0, 0), "alive while read");
    assert_eq!(out.watch, 1, "dropped once both readers were done");
    assert_eq!(drops.load(Ordering::SeqCst), 1, "and only once");

    let drops = Arc::new(AtomicUsize::new(0));
    let err = rt
        .run(FailingReader::new(Tracked(drops.clone())))
        .unwrap_err();
    assert!(err.to_string().contains("fails_first"), "{err}");
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

/// 2000 independent nodes of 1 ms of work each: about a second on two
/// workers. Busy, not asleep: a node that parks gives its runner's place to
/// another, and all 2000 would sleep at once.
fn busy_graph(ran: &Arc<AtomicUsize>) -> fiber_rt::dag::DynGraph {
    let mut builder = GraphBuilder::new();
    for _ in 0..2000 {
        let ran = ran.clone();
        builder.node("", move || {
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_millis(1) {
                std::hint::spin_loop();
            }
            ran.fetch_add(1, Ordering::SeqCst);
        });
    }
    builder.build().unwrap()
}

#[test]
fn a_cancelled_caller_stops_its_run_from_starting_more_nodes() {
    // Cancelled after 30 ms, the run skips the nodes not started yet
    // instead of running them all for nobody; a traced run as well.
    let rt = Builder::new().workers(2).build().unwrap();
    for traced in [false, true] {
        let ran = Arc::new(AtomicUsize::new(0));
        let graph = busy_graph(&ran);
        let caller = rt.spawn(move || {
            if traced {
                fiber_rt::run_traced(graph).0.is_ok()
            } else {
                fiber_rt::run(graph).is_ok()
            }
        });
        std::thread::sleep(Duration::from_millis(30));
        caller.cancel();
        assert!(caller.join().unwrap_err().is_cancelled());
        // Long enough for the whole run, had it gone on.
        std::thread::sleep(Duration::from_millis(1500));
        let ran = ran.load(Ordering::SeqCst);
        assert!(
            ran < 1000,
            "{ran} of 2000 nodes ran after the caller was cancelled (traced: {traced})"
        );
    }
}

/// Panics as it drops.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("the input's destructor panics");
    }
}

#[fiber]
fn reads_bomb(_bomb: &Bomb) -> u32 {
    3
}

depends! {
    graph Bombed(bomb: Bomb) {
        reads_bomb(bomb);
    }
}

#[test]
fn an_input_whose_destructor_panics_fails_no_reader() {
    let rt = Runtime::new().unwrap();
    let out = rt.run(Bombed::new(Bomb)).expect("the reader succeeded");
    assert_eq!(out.reads_bomb, 3);
}
