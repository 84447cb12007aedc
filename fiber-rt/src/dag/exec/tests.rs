//! Executor tests on graphs from the run-time builder, run on a small pool
//! of plain threads.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crate::dag::{run_with, FailureKind, GraphBuilder, NodeId, Task};

/// The pool's queue and whether it is shutting down, with its wake-up.
type Queue = (Mutex<(VecDeque<Task>, bool)>, Condvar);

/// A fixed set of threads taking tasks from one queue.
struct Pool {
    shared: Arc<Queue>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    fn new(threads: usize) -> Self {
        let shared = Arc::new((Mutex::new((VecDeque::<Task>::new(), false)), Condvar::new()));
        let threads = (0..threads)
            .map(|_| {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || loop {
                    let task = {
                        let (lock, ready) = &*shared;
                        let mut queue = lock.lock().unwrap();
                        loop {
                            if let Some(task) = queue.0.pop_front() {
                                break task;
                            }
                            if queue.1 {
                                return;
                            }
                            queue = ready.wait(queue).unwrap();
                        }
                    };
                    task.run();
                })
            })
            .collect();
        Pool { shared, threads }
    }

    fn spawner(&self) -> impl Fn(Task) + Send + Sync + 'static {
        let shared = Arc::clone(&self.shared);
        move |task| {
            shared.0.lock().unwrap().0.push_back(task);
            shared.1.notify_one();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.0.lock().unwrap().1 = true;
        self.shared.1.notify_all();
        for thread in self.threads.drain(..) {
            thread.join().unwrap();
        }
    }
}

/// xorshift64: a fixed seed gives the same graph on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

/// Each node's start and end, as positions on one shared clock.
struct Log {
    clock: AtomicUsize,
    runs: Vec<AtomicUsize>,
    started: Vec<AtomicUsize>,
    ended: Vec<AtomicUsize>,
}

impl Log {
    fn new(nodes: usize) -> Arc<Self> {
        let zeros = || (0..nodes).map(|_| AtomicUsize::new(0)).collect();
        Arc::new(Log {
            clock: AtomicUsize::new(1),
            runs: zeros(),
            started: zeros(),
            ended: zeros(),
        })
    }

    fn record(&self, node: usize) {
        // SeqCst: the clock must order events across threads totally.
        self.started[node].store(self.clock.fetch_add(1, Ordering::SeqCst), Ordering::SeqCst);
        self.runs[node].fetch_add(1, Ordering::SeqCst);
        self.ended[node].store(self.clock.fetch_add(1, Ordering::SeqCst), Ordering::SeqCst);
    }
}

/// A random DAG: an edge only ever goes from a lower to a higher index, in
/// a shuffled insertion order so nodes are not added topologically.
fn random_dag(
    seed: u64,
    nodes: usize,
    edges_per_node: usize,
    log: &Arc<Log>,
) -> (GraphBuilder, Vec<(usize, usize)>) {
    let mut rng = XorShift(seed);
    let mut builder = GraphBuilder::new();
    // Node `label[i]` is the i-th added; labels define the hidden order.
    let mut labels: Vec<usize> = (0..nodes).collect();
    for i in (1..nodes).rev() {
        labels.swap(i, rng.below(i + 1));
    }
    let mut ids: Vec<NodeId> = Vec::with_capacity(nodes);
    let mut by_label = vec![None; nodes];
    for &label in &labels {
        let log = Arc::clone(log);
        let id = builder.node(format!("n{label}"), move || log.record(label));
        builder.cost(id, 1 + rng.below(20) as u32);
        by_label[label] = Some(id);
    }
    ids.extend(by_label.into_iter().map(Option::unwrap));
    let mut edges = Vec::new();
    for to in 1..nodes {
        for _ in 0..rng.below(edges_per_node + 1) {
            let from = rng.below(to);
            edges.push((from, to));
            builder.edge(ids[from], ids[to]);
        }
    }
    (builder, edges)
}

#[test]
fn random_dags_run_every_node_once_after_its_dependencies() {
    let pool = Pool::new(4);
    // The log uses SeqCst throughout: one clock ordering events on all threads.
    for seed in [1, 7, 42, 1234, 99991] {
        let nodes = 3000;
        let log = Log::new(nodes);
        let (builder, edges) = random_dag(seed, nodes, 4, &log);
        run_with(builder.build().unwrap(), pool.spawner()).unwrap();
        for node in 0..nodes {
            assert_eq!(
                log.runs[node].load(Ordering::SeqCst),
                1,
                "seed {seed}: node {node} ran once"
            );
        }
        for &(from, to) in &edges {
            let (done, start) = (
                log.ended[from].load(Ordering::SeqCst),
                log.started[to].load(Ordering::SeqCst),
            );
            assert!(done < start, "seed {seed}: n{to} started at {start}, before its dependency n{from} ended at {done}");
        }
    }
}

#[test]
fn a_chain_continues_inline_without_spawning() {
    let spawns = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let mut builder = GraphBuilder::new();
    let mut previous = None;
    for i in 0..1000 {
        let ran = Arc::clone(&ran);
        let node = builder.node(format!("c{i}"), move || {
            // Relaxed: a count read once the run has ended.
            ran.fetch_add(1, Ordering::Relaxed);
        });
        if let Some(previous) = previous {
            builder.edge(previous, node);
        }
        previous = Some(node);
    }
    let counted = Arc::clone(&spawns);
    run_with(builder.build().unwrap(), move |task: Task| {
        // Relaxed: a count read once the run has ended.
        counted.fetch_add(1, Ordering::Relaxed);
        std::thread::spawn(move || task.run());
    })
    .unwrap();
    // Relaxed: `run_with` returned, so every node's increment happened before.
    assert_eq!(ran.load(Ordering::Relaxed), 1000);
    assert_eq!(
        spawns.load(Ordering::Relaxed),
        1,
        "only the source is spawned"
    );
}

#[test]
fn ready_successors_are_spawned_by_rank() {
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut builder = GraphBuilder::new();
    let root = builder.node("root", || {});
    for (name, cost) in [
        ("light", 1),
        ("heavy", 30),
        ("middle", 10),
        ("heaviest", 50),
    ] {
        let order = Arc::clone(&order);
        let node = builder.node(name, move || order.lock().unwrap().push(name));
        builder.cost(node, cost).edge(root, node);
    }
    // Spawned tasks wait in a queue and run after the root's task returns.
    // One runner at a time, so the order is the order nodes leave the
    // run's queue of ready nodes.
    let queue = Arc::new(Mutex::new(VecDeque::new()));
    let pending = Arc::clone(&queue);
    let graph = builder.build().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    super::start_with_width(
        graph,
        Arc::new(move |task| pending.lock().unwrap().push_back(task)),
        1,
        None,
        Box::new(move |r| sender.send(r).unwrap()),
    );
    loop {
        let task = queue.lock().unwrap().pop_front();
        match task {
            Some(task) => task.run(),
            None => break,
        }
    }
    receiver.recv().unwrap().unwrap();
    // The highest rank continues inline right after the root; the others
    // were queued highest first.
    assert_eq!(
        *order.lock().unwrap(),
        ["heaviest", "heavy", "middle", "light"]
    );
}

#[test]
fn a_panic_skips_its_dependents_and_spares_the_rest() {
    let pool = Pool::new(2);
    let ran = Arc::new(Mutex::new(Vec::new()));
    let mut builder = GraphBuilder::new();
    let mut add = |name: &'static str, fail: bool| {
        let ran = Arc::clone(&ran);
        builder.node(name, move || {
            assert!(!fail, "{name} broke");
            ran.lock().unwrap().push(name);
        })
    };
    let (source, bad, after_bad, after_after) = (
        add("source", false),
        add("bad", true),
        add("after bad", false),
        add("after after", false),
    );
    let (side, side_end) = (add("side", false), add("side end", false));
    builder
        .edge(source, bad)
        .edge(bad, after_bad)
        .edge(after_bad, after_after)
        .edge(source, side)
        .edge(side, side_end);
    builder.edge(side, after_after);
    let err = run_with(builder.build().unwrap(), pool.spawner()).unwrap_err();
    assert_eq!(err.failures().len(), 1);
    assert_eq!(err.failures()[0].node, "bad");
    assert_eq!(err.failures()[0].kind, FailureKind::Panicked);
    assert_eq!(err.failures()[0].message, "bad broke");
    assert_eq!(err.skipped(), 2);
    assert_eq!(
        err.to_string(),
        "fiber `bad` panicked: bad broke (2 dependent fibers skipped)"
    );
    let mut ran = ran.lock().unwrap().clone();
    ran.sort_unstable();
    assert_eq!(ran, ["side", "side end", "source"]);
}

#[test]
fn errors_from_several_branches_are_all_reported() {
    let mut builder = GraphBuilder::new();
    let left = builder.try_node("left", || Err::<(), _>("left failed"));
    let right = builder.try_node("right", || Err::<(), _>(std::fmt::Error));
    let join = builder.node("join", || unreachable!("its dependencies failed"));
    builder.edge(left, join).edge(right, join);
    let err = run_with(builder.build().unwrap(), |task| task.run()).unwrap_err();
    let failed: Vec<_> = err
        .failures()
        .iter()
        .map(|f| (f.node.as_str(), f.kind, f.message.as_str()))
        .collect();
    assert_eq!(
        failed,
        [
            ("left", FailureKind::Returned, "left failed"),
            (
                "right",
                FailureKind::Returned,
                "an error occurred when formatting an argument"
            )
        ]
    );
    assert_eq!(err.skipped(), 1);
}

#[test]
fn a_failure_at_the_head_of_a_long_chain_ends_the_run() {
    let mut builder = GraphBuilder::new();
    let head = builder.try_node("head", || Err::<(), _>("no"));
    let mut previous = head;
    for _ in 0..100_000 {
        let node = builder.node("link", || unreachable!());
        builder.edge(previous, node);
        previous = node;
    }
    let err = run_with(builder.build().unwrap(), |task| task.run()).unwrap_err();
    assert_eq!(err.node(), Some("head"));
    assert_eq!(err.skipped(), 100_000);
}

#[test]
fn dropped_tasks_fail_the_run_instead_of_hanging_it() {
    let mut builder = GraphBuilder::new();
    let first = builder.node("first", || {});
    let second = builder.node("second", || {});
    builder.edge(first, second);
    let err = run_with(builder.build().unwrap(), drop).unwrap_err();
    assert_eq!(err.failures()[0].kind, FailureKind::Dropped);
    // What waits for a node that never ran is skipped, as for any failure.
    assert_eq!(
        err.to_string(),
        "fiber `first` never ran: its task was dropped before it ran (1 dependent fiber skipped)"
    );
    assert_eq!(err.skipped_nodes().collect::<Vec<_>>(), ["second"]);
}

#[test]
fn an_empty_graph_completes_at_once() {
    let graph = GraphBuilder::new().build().unwrap();
    run_with(graph, |_| unreachable!("nothing to spawn")).unwrap();
}

#[test]
fn a_million_node_chain_runs_to_completion() {
    let count = Arc::new(AtomicUsize::new(0));
    let mut builder = GraphBuilder::new();
    let mut previous = None;
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
    let pool = Pool::new(2);
    run_with(builder.build().unwrap(), pool.spawner()).unwrap();
    // Relaxed: `run_with` returned, so every node's increment happened before.
    assert_eq!(count.load(Ordering::Relaxed), 1_000_000);
}

/// Cell (i, j) after (i - 1, j) and (i, j - 1).
fn wavefront(side: usize, pool: &Pool) {
    let count = Arc::new(AtomicUsize::new(0));
    let mut builder = GraphBuilder::new();
    let mut ids = Vec::with_capacity(side * side);
    for i in 0..side {
        for j in 0..side {
            let count = Arc::clone(&count);
            let node = builder.node("cell", move || {
                // Relaxed: a count read once the run has ended.
                count.fetch_add(1, Ordering::Relaxed);
            });
            if i > 0 {
                builder.edge(ids[(i - 1) * side + j], node);
            }
            if j > 0 {
                builder.edge(ids[i * side + j - 1], node);
            }
            ids.push(node);
        }
    }
    run_with(builder.build().unwrap(), pool.spawner()).unwrap();
    // Relaxed: `run_with` returned, so every node's increment happened before.
    assert_eq!(count.load(Ordering::Relaxed), side * side);
}

#[test]
fn a_1024_by_1024_wavefront_runs_to_completion() {
    wavefront(1024, &Pool::new(2));
}

#[test]
fn a_successor_asking_for_its_own_stack_is_spawned() {
    use crate::dag::graph::Plan;

    let mut builder = GraphBuilder::new();
    let a = builder.node("a", || {});
    let b = builder.node("b", || {});
    builder.edge(a, b);
    let inner = builder.build().unwrap();

    /// The chain `a -> b`, with `b` asking for a 1 MiB stack.
    struct Big(crate::dag::DynGraph);
    impl super::Graph for Big {
        type Outputs = ();
        type Plan = Big;
        fn into_plan(self) -> Big {
            self
        }
    }
    impl Plan for Big {
        type Outputs = ();
        fn len(&self) -> usize {
            self.0.len()
        }
        fn counters(&self) -> &[std::sync::atomic::AtomicU32] {
            self.0.counters()
        }
        fn successors(&self, node: u32) -> &[u32] {
            Plan::successors(&self.0, node)
        }
        fn sources(&self) -> &[u32] {
            self.0.sources()
        }
        fn name(&self, node: u32) -> &str {
            Plan::name(&self.0, node)
        }
        fn stack_size(&self, node: u32) -> usize {
            if node == 1 {
                1 << 20
            } else {
                0
            }
        }
        unsafe fn run_node(&self, node: u32) -> Result<(), crate::dag::error::Failure> {
            // SAFETY: forwarded from the caller.
            unsafe { self.0.run_node(node) }
        }
        fn finish(&mut self) -> Option<()> {
            Some(())
        }
    }

    let spawned = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&spawned);
    run_with(Big(inner), move |task: Task| {
        log.lock()
            .unwrap()
            .push((task.name().to_owned(), task.stack_size()));
        task.run();
    })
    .unwrap();
    assert_eq!(
        *spawned.lock().unwrap(),
        [("a".to_owned(), 0), ("b".to_owned(), 1 << 20)]
    );
}

/// A runner cancelled at its yield between two nodes (by its handle here,
/// as the shutdown cancels one) unwinds holding the node it was just
/// handed: the error names that node and counts its dependents skipped.
/// Before, the node was lost, neither run nor skipped, and the run
/// reported success without its last two nodes.
#[test]
fn a_runner_cancelled_between_nodes_reports_the_node_it_was_handed() {
    let rt = crate::Builder::new().workers(1).build().unwrap();
    let fibers: Arc<Mutex<Vec<crate::JoinHandle<()>>>> = Arc::default();
    let mut builder = GraphBuilder::new();
    let listed = Arc::clone(&fibers);
    let first = builder.node("first", move || {
        let me = crate::current().expect("runners are fibers").id;
        let listed = listed.lock().unwrap();
        let mine = listed
            .iter()
            .find(|fiber| fiber.id() == me)
            .expect("listed");
        mine.cancel();
        // As if its slice had run out: the runner yields after this node.
        // SAFETY: this thread is running, so its TLS block is mapped.
        unsafe { crate::preempt::ThreadFlag::current().request() };
    });
    let second = builder.node("second", || panic!("runs after its runner was cancelled"));
    let third = builder.node("third", || panic!("runs after its dependency was lost"));
    builder.edge(first, second).edge(second, third);
    let graph = builder.build().unwrap();
    let handle = rt.handle().clone();
    let spawner = move |task: Task| {
        let mut listed = fibers.lock().unwrap();
        listed.push(handle.spawn(move || task.run()));
    };
    let err = run_with(graph, spawner).unwrap_err();
    assert_eq!(err.node(), Some("second"), "{err}");
    assert_eq!(err.failures()[0].kind, FailureKind::Dropped);
    assert_eq!(err.skipped(), 1);
    assert_eq!(err.skipped_nodes().collect::<Vec<_>>(), ["third"]);
}
