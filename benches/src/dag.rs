//! Dependency-graph execution: per-node overhead of fiber's graph executor
//! against rayon (the best hand-written equivalent of each shape), tokio
//! (one task per node, atomic in-degree counters) and dagrs, 2 workers.
//!
//! Every node does the same trivial work ([`work`]); only running the graph
//! is timed, not building it. Shapes:
//! - chain: 1M nodes, each after the one before;
//! - tree: a fan-out binary tree of depth 20 (2^20 - 1 nodes, each node
//!   before its two children);
//! - wavefront: 1024x1024 cells, cell (i,j) after (i-1,j) and (i,j-1);
//! - random: 1M nodes, node j after 0 to 3 distinct nodes drawn from the
//!   4096 before it (fixed seed);
//! - static: a `depends!` graph of 8 nodes, run many times.

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fiber_rt::dag::{GraphBuilder, NodeId};
use fiber_rt::{depends, fiber, Builder};
use rayon::prelude::*;

use crate::harness::Report;

const WORKERS: usize = 2;

/// What every node does: a few arithmetic operations the optimiser cannot
/// drop.
#[inline]
fn work(node: u32) {
    let x = black_box(node).wrapping_mul(0x9E37_79B9).rotate_left(7) ^ 0x5bd1_e995;
    black_box(x);
}

/// A graph as compressed successor rows, shared by the peers that walk it.
struct Shape {
    starts: Vec<u32>,
    successors: Vec<u32>,
    in_degree: Vec<u32>,
}

impl Shape {
    fn new(len: usize, edges: &[(u32, u32)]) -> Shape {
        let mut starts = vec![0u32; len + 1];
        let mut in_degree = vec![0u32; len];
        for &(from, to) in edges {
            starts[from as usize + 1] += 1;
            in_degree[to as usize] += 1;
        }
        for i in 0..len {
            starts[i + 1] += starts[i];
        }
        let mut fill = starts.clone();
        let mut successors = vec![0u32; edges.len()];
        for &(from, to) in edges {
            successors[fill[from as usize] as usize] = to;
            fill[from as usize] += 1;
        }
        Shape {
            starts,
            successors,
            in_degree,
        }
    }

    fn len(&self) -> usize {
        self.in_degree.len()
    }

    fn row(&self, node: u32) -> &[u32] {
        let n = node as usize;
        &self.successors[self.starts[n] as usize..self.starts[n + 1] as usize]
    }

    fn edges(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        (0..self.len() as u32).flat_map(move |n| self.row(n).iter().map(move |&s| (n, s)))
    }

    /// Topological levels: level of a node is 1 + the largest level of its
    /// dependencies.
    fn levels(&self) -> Vec<Vec<u32>> {
        let mut level = vec![0u32; self.len()];
        let mut levels: Vec<Vec<u32>> = Vec::new();
        // Node ids of every shape here are already in topological order.
        for n in 0..self.len() as u32 {
            let l = level[n as usize] as usize;
            if levels.len() <= l {
                levels.resize_with(l + 1, Vec::new);
            }
            levels[l].push(n);
            for &s in self.row(n) {
                level[s as usize] = level[s as usize].max(l as u32 + 1);
            }
        }
        levels
    }
}

fn chain_edges(len: u32) -> Vec<(u32, u32)> {
    (1..len).map(|i| (i - 1, i)).collect()
}

/// Node `i`'s children are `2i + 1` and `2i + 2`.
fn tree_edges(depth: u32) -> (usize, Vec<(u32, u32)>) {
    let len = (1u32 << depth) - 1;
    let edges = (1..len).map(|c| ((c - 1) / 2, c)).collect();
    (len as usize, edges)
}

fn wavefront_edges(side: u32) -> Vec<(u32, u32)> {
    let mut edges = Vec::with_capacity(2 * (side * side) as usize);
    for i in 0..side {
        for j in 0..side {
            let cell = i * side + j;
            if i > 0 {
                edges.push((cell - side, cell));
            }
            if j > 0 {
                edges.push((cell - 1, cell));
            }
        }
    }
    edges
}

/// Node `j` waits for 0 to 3 distinct nodes among the `WINDOW` before it.
fn random_edges(len: u32, seed: u64) -> Vec<(u32, u32)> {
    const WINDOW: u32 = 4096;
    let mut state = seed;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut edges = Vec::new();
    let mut picked = Vec::with_capacity(3);
    for j in 1..len {
        let deps = next() % 4;
        let window = j.min(WINDOW) as u64;
        picked.clear();
        for _ in 0..deps {
            let from = j - 1 - (next() % window) as u32;
            if !picked.contains(&from) {
                picked.push(from);
                edges.push((from, j));
            }
        }
    }
    edges.sort_unstable();
    edges
}

fn fiber_graph(shape: &Shape) -> fiber_rt::dag::DynGraph {
    let mut b = GraphBuilder::new();
    let ids: Vec<NodeId> = (0..shape.len() as u32)
        .map(|i| b.node("n", move || work(i)))
        .collect();
    for (from, to) in shape.edges() {
        b.edge(ids[from as usize], ids[to as usize]);
    }
    b.build().expect("the shapes have no cycles")
}

/// Best of `rounds` timings of `f`, which gets a fresh `prepare()` each
/// time (untimed): ns per node.
fn best_per_node<P>(
    nodes: usize,
    rounds: u32,
    mut prepare: impl FnMut() -> P,
    mut f: impl FnMut(P),
) -> f64 {
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let input = prepare();
        let start = Instant::now();
        f(input);
        best = best.min(start.elapsed());
    }
    best.as_nanos() as f64 / nodes as f64
}

fn fiber_ns(rt: &fiber_rt::Runtime, shape: &Shape) -> f64 {
    best_per_node(
        shape.len(),
        3,
        || fiber_graph(shape),
        |g| {
            rt.run(g).expect("the graph runs");
            // The last runner frees the graph (its node closures) after
            // handing the result over: that is part of the cost, and must
            // not spill into the next timed run.
            while rt.metrics().live > 0 {
                std::thread::sleep(Duration::from_micros(20));
            }
        },
    )
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .build()
        .unwrap()
}

fn rayon_pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .build()
        .unwrap()
}

/// One run of a graph on tokio: one task per node; a finished task
/// decrements its successors' counters and spawns those that reach zero.
struct TokioRun {
    shape: Arc<Shape>,
    counters: Vec<AtomicU32>,
    sinks_left: AtomicUsize,
    done: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

fn tokio_node(run: Arc<TokioRun>, node: u32) {
    work(node);
    let row = run.shape.row(node);
    if row.is_empty() {
        // AcqRel: the last sink to finish sees every other sink's work.
        if run.sinks_left.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(tx) = run.done.lock().unwrap().take() {
                let _ = tx.send(());
            }
        }
        return;
    }
    for &s in row {
        // AcqRel: the last decrementer sees every dependency's work.
        if run.counters[s as usize].fetch_sub(1, Ordering::AcqRel) == 1 {
            let run = run.clone();
            tokio::spawn(async move { tokio_node(run, s) });
        }
    }
}

fn tokio_ns(rt: &tokio::runtime::Runtime, shape: &Arc<Shape>) -> f64 {
    let sinks = (0..shape.len() as u32)
        .filter(|&n| shape.row(n).is_empty())
        .count();
    best_per_node(
        shape.len(),
        3,
        || {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let run = Arc::new(TokioRun {
                shape: shape.clone(),
                counters: shape.in_degree.iter().map(|&d| AtomicU32::new(d)).collect(),
                sinks_left: AtomicUsize::new(sinks),
                done: Mutex::new(Some(tx)),
            });
            (run, rx)
        },
        |(run, rx)| {
            rt.block_on(async move {
                let sources: Vec<u32> = (0..run.shape.len() as u32)
                    .filter(|&n| run.shape.in_degree[n as usize] == 0)
                    .collect();
                for s in sources {
                    let run = run.clone();
                    tokio::spawn(async move { tokio_node(run, s) });
                }
                drop(run);
                rx.await.unwrap();
            })
        },
    )
}

/// dagrs: one `DefaultNode` per node, with an action that does [`work`].
struct DagrsWork(u32);

#[dagrs::async_trait::async_trait]
impl dagrs::Action for DagrsWork {
    async fn run(
        &self,
        _input: &mut dagrs::InChannels,
        _output: &mut dagrs::OutChannels,
        _env: Arc<dagrs::EnvVar>,
    ) -> dagrs::Output {
        work(self.0);
        dagrs::Output::empty()
    }
}

fn dagrs_graph(shape: &Shape) -> dagrs::Graph {
    let mut table = dagrs::NodeTable::new();
    let mut graph = dagrs::Graph::new();
    let mut ids = Vec::with_capacity(shape.len());
    for n in 0..shape.len() as u32 {
        let node = dagrs::DefaultNode::with_action(format!("n{n}"), DagrsWork(n), &mut table);
        ids.push(graph.add_node(node).expect("dagrs takes the node"));
    }
    for n in 0..shape.len() as u32 {
        let row = shape.row(n);
        if !row.is_empty() {
            graph
                .add_edge(ids[n as usize], row.iter().map(|&s| ids[s as usize]))
                .expect("dagrs takes the edge");
        }
    }
    graph
}

/// dagrs on a smaller instance of the shape (it keeps a channel per edge
/// and a task per node); `None` if it fails.
fn dagrs_ns(rt: &tokio::runtime::Runtime, shape: &Shape) -> Option<f64> {
    let ok = std::cell::Cell::new(true);
    let ns = best_per_node(
        shape.len(),
        2,
        || dagrs_graph(shape),
        |mut g| {
            let result = rt.block_on(async move { g.async_start().await.map(|_| ()) });
            if result.is_err() {
                ok.set(false);
            }
        },
    );
    ok.get().then_some(ns)
}

fn targets(ours: f64, taskflow: f64) -> String {
    format!(
        "fiber at most {ours} ns/node (half of Taskflow's {taskflow} ns measured here), \
         faster than tokio and dagrs, within 1.5x of hand-written rayon"
    )
}

fn add_dagrs(r: &mut Report, rt: &tokio::runtime::Runtime, small: &Shape) {
    match dagrs_ns(rt, small) {
        Some(ns) => r.add("dagrs", ns),
        None => println!("  dagrs failed on {} nodes", small.len()),
    }
}

pub fn chain() -> Report {
    const LEN: u32 = 1 << 20;
    const DAGRS_LEN: u32 = 20_000;
    let mut r = Report::new("graph: chain of 1M nodes, 2 workers", "ns/node").target(format!(
        "{}\nnote: rayon is a plain loop in one task; dagrs runs a chain of {DAGRS_LEN} \
         (a tokio task, a lock and channels per node: 1M nodes would take many seconds a run)",
        targets(20.0, 41.0)
    ));
    let shape = Arc::new(Shape::new(LEN as usize, &chain_edges(LEN)));
    let rt = Builder::new().workers(WORKERS).build().unwrap();
    r.add("fiber", fiber_ns(&rt, &shape));
    drop(rt);

    let pool = rayon_pool();
    r.add(
        "rayon",
        best_per_node(
            LEN as usize,
            3,
            || (),
            |()| pool.install(|| (0..LEN).for_each(work)),
        ),
    );
    drop(pool);

    let rt = tokio_rt();
    r.add("tokio", tokio_ns(&rt, &shape));
    add_dagrs(
        &mut r,
        &rt,
        &Shape::new(DAGRS_LEN as usize, &chain_edges(DAGRS_LEN)),
    );
    r
}

fn rayon_tree(node: u32, len: u32) {
    work(node);
    let (left, right) = (2 * node + 1, 2 * node + 2);
    if right < len {
        rayon::join(|| rayon_tree(left, len), || rayon_tree(right, len));
    } else if left < len {
        rayon_tree(left, len);
    }
}

pub fn tree() -> Report {
    const DEPTH: u32 = 20;
    const DAGRS_DEPTH: u32 = 14;
    let mut r = Report::new(
        "graph: fan-out binary tree of depth 20 (2^20 - 1 nodes), 2 workers",
        "ns/node",
    )
    .target(format!(
        "{}\nnote: rayon is rayon::join recursion; dagrs runs depth {DAGRS_DEPTH}",
        targets(40.0, 87.0)
    ));
    let (len, edges) = tree_edges(DEPTH);
    let shape = Arc::new(Shape::new(len, &edges));
    let rt = Builder::new().workers(WORKERS).build().unwrap();
    r.add("fiber", fiber_ns(&rt, &shape));
    drop(rt);

    let pool = rayon_pool();
    r.add(
        "rayon",
        best_per_node(
            len,
            3,
            || (),
            |()| pool.install(|| rayon_tree(0, len as u32)),
        ),
    );
    drop(pool);

    let rt = tokio_rt();
    r.add("tokio", tokio_ns(&rt, &shape));
    let (small_len, small_edges) = tree_edges(DAGRS_DEPTH);
    add_dagrs(&mut r, &rt, &Shape::new(small_len, &small_edges));
    r
}

pub fn wavefront() -> Report {
    const SIDE: u32 = 1024;
    const DAGRS_SIDE: u32 = 100;
    let mut r = Report::new("graph: 1024x1024 wavefront, 2 workers", "ns/node").target(format!(
        "{}\nnote: rayon runs anti-diagonals with par_iter; dagrs runs {DAGRS_SIDE}x{DAGRS_SIDE}",
        targets(40.0, 80.0)
    ));
    let len = (SIDE * SIDE) as usize;
    let shape = Arc::new(Shape::new(len, &wavefront_edges(SIDE)));
    let rt = Builder::new().workers(WORKERS).build().unwrap();
    r.add("fiber", fiber_ns(&rt, &shape));
    drop(rt);

    let pool = rayon_pool();
    r.add(
        "rayon",
        best_per_node(
            len,
            3,
            || (),
            |()| {
                pool.install(|| {
                    for d in 0..2 * SIDE - 1 {
                        let lo = d.saturating_sub(SIDE - 1);
                        let hi = d.min(SIDE - 1);
                        (lo..=hi)
                            .into_par_iter()
                            .for_each(|i| work(i * SIDE + (d - i)));
                    }
                })
            },
        ),
    );
    drop(pool);

    let rt = tokio_rt();
    r.add("tokio", tokio_ns(&rt, &shape));
    add_dagrs(
        &mut r,
        &rt,
        &Shape::new(
            (DAGRS_SIDE * DAGRS_SIDE) as usize,
            &wavefront_edges(DAGRS_SIDE),
        ),
    );
    r
}

pub fn random() -> Report {
    const LEN: u32 = 1 << 20;
    const DAGRS_LEN: u32 = 10_000;
    const SEED: u64 = 0x00C0_FFEE_1234_5678;
    let shape = Arc::new(Shape::new(LEN as usize, &random_edges(LEN, SEED)));
    let levels = shape.levels();
    let mut r = Report::new(
        "graph: random DAG, 1M nodes, 0-3 dependencies each within the previous 4096, 2 workers",
        "ns/node",
    )
    .target(format!(
        "faster than tokio and dagrs, within 1.5x of hand-written rayon\n\
         note: {} edges, {} topological levels; rayon runs the levels with par_iter; \
         dagrs runs the first {DAGRS_LEN} nodes",
        shape.successors.len(),
        levels.len()
    ));
    let rt = Builder::new().workers(WORKERS).build().unwrap();
    r.add("fiber", fiber_ns(&rt, &shape));
    drop(rt);

    let pool = rayon_pool();
    r.add(
        "rayon",
        best_per_node(
            LEN as usize,
            3,
            || (),
            |()| {
                pool.install(|| {
                    for level in &levels {
                        level.par_iter().for_each(|&n| work(n));
                    }
                })
            },
        ),
    );
    drop(pool);

    let rt = tokio_rt();
    r.add("tokio", tokio_ns(&rt, &shape));
    add_dagrs(
        &mut r,
        &rt,
        &Shape::new(DAGRS_LEN as usize, &random_edges(DAGRS_LEN, SEED)),
    );
    r
}

#[fiber]
fn load() -> u64 {
    black_box(7)
}
#[fiber]
fn part_a(x: &u64) -> u64 {
    black_box(*x + 1)
}
#[fiber]
fn part_b(x: &u64) -> u64 {
    black_box(*x + 2)
}
#[fiber]
fn part_c(x: &u64) -> u64 {
    black_box(*x + 3)
}
#[fiber]
fn part_d(x: &u64) -> u64 {
    black_box(*x + 4)
}
#[fiber]
fn join_ab(a: &u64, b: &u64) -> u64 {
    black_box(a * b)
}
#[fiber]
fn join_cd(c: &u64, d: &u64) -> u64 {
    black_box(c * d)
}
#[fiber]
fn total(ab: &u64, cd: &u64) -> u64 {
    black_box(ab + cd)
}

depends! {
    /// load, four parts of it, two pairs joined, one total: 8 nodes.
    graph Diamond {
        part_a(load);
        part_b(load);
        part_c(load);
        part_d(load);
        join_ab(part_a, part_b);
        join_cd(part_c, part_d);
        total(join_ab, join_cd);
    }
}

/// The same 8 nodes by hand: `rayon::join` for each fork.
fn rayon_diamond() -> u64 {
    let x = black_box(7u64);
    let ((a, b), (c, d)) = rayon::join(
        || rayon::join(|| black_box(x + 1), || black_box(x + 2)),
        || rayon::join(|| black_box(x + 3), || black_box(x + 4)),
    );
    black_box(black_box(a * b) + black_box(c * d))
}

pub fn static_graph() -> Report {
    const RUNS: u64 = 100_000;
    let mut r = Report::new(
        "graph: a depends! graph of 8 nodes (fork of 4, two joins, total) run from a fiber, 2 workers",
        "ns/run",
    )
    .target(
        "faster than tokio, within 1.5x of hand-written rayon (nested rayon::join)\n\
         note: fiber runs the graph from a fiber (fiber_rt::run); tokio spawns the parts and \
         awaits their JoinHandles from block_on; rayon is nested rayon::join",
    );
    let rt = Builder::new().workers(WORKERS).build().unwrap();
    let expected = (8 * 9) + (10 * 11);
    r.add(
        "fiber depends!",
        rt.block_on(move || {
            best_per_node(
                RUNS as usize,
                3,
                || (),
                |()| {
                    for _ in 0..RUNS {
                        let out = fiber_rt::run(Diamond).expect("the graph runs");
                        assert_eq!(out.total, expected);
                    }
                },
            )
        }),
    );
    drop(rt);

    let pool = rayon_pool();
    r.add(
        "rayon",
        best_per_node(
            RUNS as usize,
            3,
            || (),
            |()| {
                pool.install(|| {
                    for _ in 0..RUNS {
                        assert_eq!(rayon_diamond(), expected);
                    }
                })
            },
        ),
    );
    drop(pool);

    let rt = tokio_rt();
    r.add(
        "tokio",
        rt.block_on(async {
            let start = Instant::now();
            for _ in 0..RUNS {
                let x = black_box(7u64);
                let parts = [1, 2, 3, 4].map(|k| tokio::spawn(async move { black_box(x + k) }));
                let mut v = [0u64; 4];
                for (slot, h) in v.iter_mut().zip(parts) {
                    *slot = h.await.unwrap();
                }
                let ab = tokio::spawn(async move { black_box(v[0] * v[1]) });
                let cd = tokio::spawn(async move { black_box(v[2] * v[3]) });
                let (ab, cd) = (ab.await.unwrap(), cd.await.unwrap());
                assert_eq!(black_box(ab + cd), expected);
            }
            start.elapsed().as_nanos() as f64 / RUNS as f64
        }),
    );
    r
}
