//! Graphs whose shape is only known at run time: nodes are closures, edges
//! are added one by one, and [`GraphBuilder::build`] checks for cycles. The
//! result runs on the same executor as a `depends!` graph.

use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

use super::dot;
use super::error::Failure;
use super::graph::{Graph, Plan};
use super::huge;
use super::job::{Job, Jobs};
use super::names::Names;
use crate::stack::header::NodeNames;

/// A node of a [`GraphBuilder`], returned when it is added. It belongs to
/// that builder (and the graph it builds): another builder's methods panic
/// on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    index: u32,
    /// The builder's number (see [`next_builder`]).
    builder: u32,
}

impl NodeId {
    /// The node's index: nodes are numbered from 0 in the order added.
    pub fn index(self) -> usize {
        self.index as usize
    }
}

/// A number for a new builder, which its node ids carry. Only told apart
/// from the others (after 2^32 builders the numbers come round again, and
/// a stray id of a builder that far back goes unnoticed).
fn next_builder() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Relaxed: only the numbers' being distinct matters.
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Builds a graph at run time.
///
/// ```
/// use fiber_rt::dag::{run_with, GraphBuilder};
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
///
/// let total = Arc::new(AtomicU32::new(0));
/// let mut builder = GraphBuilder::new();
/// let parts: Vec<_> = (1..=3)
///     .map(|i| {
///         let total = Arc::clone(&total);
///         builder.node(format!("part {i}"), move || {
///             // Relaxed: `check` runs after every part, which orders it.
///             total.fetch_add(i, Ordering::Relaxed);
///         })
///     })
///     .collect();
/// let check = {
///     let total = Arc::clone(&total);
///     builder.try_node("check", move || match total.load(Ordering::Relaxed) {
///         6 => Ok(()),
///         other => Err(format!("total is {other}")),
///     })
/// };
/// for part in parts {
///     builder.edge(part, check);
/// }
/// run_with(builder.build().unwrap(), |task| task.run()).unwrap();
/// ```
pub struct GraphBuilder {
    names: Names,
    costs: Vec<u32>,
    jobs: Jobs,
    edges: Vec<(u32, u32)>,
    /// This builder's number, in its node ids.
    id: u32,
}

impl Default for GraphBuilder {
    fn default() -> Self {
        GraphBuilder {
            names: Names::default(),
            costs: Vec::new(),
            jobs: Jobs::default(),
            edges: Vec::new(),
            id: next_builder(),
        }
    }
}

impl fmt::Debug for GraphBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphBuilder")
            .field("nodes", &self.names)
            .field("edges", &self.edges)
            .finish()
    }
}

impl GraphBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        GraphBuilder::default()
    }

    /// An empty builder with room for `nodes` nodes and `edges` edges
    /// before it grows: a big graph then skips the copies of its arrays
    /// that growing makes (building a binary tree of 1M nodes: 74 ns a
    /// node in the median, from 80, and far steadier).
    pub fn with_capacity(nodes: usize, edges: usize) -> Self {
        GraphBuilder {
            names: Names::with_capacity(nodes),
            costs: huge::with_capacity(nodes),
            jobs: Jobs::with_capacity(nodes),
            edges: huge::with_capacity(edges),
            id: next_builder(),
        }
    }

    /// Adds a node that runs `body`; its name shows in errors and `dot()`.
    pub fn node(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        body: impl FnOnce() + Send + 'static,
    ) -> NodeId {
        self.push(
            name.into(),
            Job::new(move || {
                body();
                Ok(())
            }),
        )
    }

    /// Adds a node whose `Err` fails the run: the nodes after it are
    /// skipped and the error's text ends up in the [`GraphError`](super::GraphError).
    pub fn try_node<E: fmt::Display>(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        body: impl FnOnce() -> Result<(), E> + Send + 'static,
    ) -> NodeId {
        self.push(
            name.into(),
            Job::new(move || body().map_err(|err| err.to_string())),
        )
    }

    fn push(&mut self, name: Cow<'static, str>, job: Job) -> NodeId {
        let id = u32::try_from(self.jobs.len())
            .ok()
            .filter(|&id| id < u32::MAX)
            .expect("fewer than 2^32 - 1 nodes");
        self.names.push(&name);
        huge::push(&mut self.costs, 1);
        self.jobs.push(job);
        NodeId {
            index: id,
            builder: self.id,
        }
    }

    /// Sets a node's cost hint (default 1): among ready nodes, those on the
    /// costliest path to the end start first.
    pub fn cost(&mut self, node: NodeId, cost: u32) -> &mut Self {
        let index = self.check(node);
        self.costs[index] = cost;
        self
    }

    /// Makes `after` wait for `before`. Adding the same edge twice is
    /// harmless; an edge from a node to itself is a cycle.
    ///
    /// # Panics
    /// When either id belongs to another builder.
    pub fn edge(&mut self, before: NodeId, after: NodeId) -> &mut Self {
        self.check(before);
        self.check(after);
        huge::push(&mut self.edges, (before.index, after.index));
        self
    }

    fn check(&self, node: NodeId) -> usize {
        assert!(
            node.builder == self.id && node.index() < self.jobs.len(),
            "{node:?} is not a node of this builder"
        );
        node.index()
    }

    /// Checks the graph and lays it out for running: `Err` names a cycle.
    ///
    /// Ready nodes start highest critical-path rank first. Sources too,
    /// within blocks of 1024 in the order the nodes were added: a graph
    /// with that many sources has far more ready work than workers, and
    /// node order keeps neighbours together in cache.
    pub fn build(self) -> Result<DynGraph, CycleError> {
        let len = self.jobs.len();
        let (starts, mut successors) =
            compress(len, self.edges.iter().map(|&(from, to)| (from, to)));
        let mut in_degree = huge::filled(len, 0u32);
        for &(_, to) in &self.edges {
            let degree = &mut in_degree[to as usize];
            *degree += 1;
            // The run keeps a flag in the counter's top bit.
            assert!(*degree < 1 << 31, "a node waits for fewer than 2^31 others");
        }
        // Nodes added after every node they wait for (every edge goes
        // forward) are in a topological order already, and have no cycle:
        // no sort to make, and the ranks come from one sweep backwards
        // over the arrays. Most graphs are built that way, as a node is
        // usually added once its inputs exist. Any other graph is sorted,
        // which reads the rows in an order of its own: building the random
        // 1M-node graph of the benchmarks took 160-215 ns a node sorted,
        // and takes 71-90 ns so (a binary tree: 50-64, now 34-37).
        let order = if self.edges.iter().all(|&(from, to)| from < to) {
            None
        } else {
            Some(
                topological_order(&starts, &successors, &in_degree).map_err(|cycle| {
                    CycleError {
                        path: cycle
                            .iter()
                            .map(|&n| self.names.get(n as usize).to_owned())
                            .collect(),
                    }
                })?,
            )
        };
        let mut rank = huge::filled(len, 0u64);
        let mut set_rank = |node: usize| {
            let row = &successors[starts[node] as usize..starts[node + 1] as usize];
            let longest = row.iter().map(|&s| rank[s as usize]).max().unwrap_or(0);
            rank[node] = u64::from(self.costs[node]).saturating_add(longest);
        };
        match &order {
            Some(order) => order.iter().rev().for_each(|&node| set_rank(node as usize)),
            None => (0..len).rev().for_each(set_rank),
        }
        for node in 0..len {
            let row = &mut successors[starts[node] as usize..starts[node + 1] as usize];
            // Stable, so equal ranks keep the order the edges were added in.
            row.sort_by_key(|&s| std::cmp::Reverse(rank[s as usize]));
        }
        let mut sources: Vec<u32> = (0..len as u32)
            .filter(|&n| in_degree[n as usize] == 0)
            .collect();
        for block in sources.chunks_mut(SOURCE_BLOCK) {
            block.sort_by_key(|&s| std::cmp::Reverse(rank[s as usize]));
        }
        Ok(DynGraph {
            id: self.id,
            names: self.names,
            costs: self.costs,
            jobs: self.jobs,
            // In place: an `AtomicU32` is laid out like a `u32`.
            in_degree: in_degree.into_iter().map(AtomicU32::new).collect(),
            starts,
            successors,
            sources,
            rank,
        })
    }
}

/// Sources are started highest rank first within blocks of this many, and
/// block after block in the order they were added. A graph with more
/// sources than this has far more ready work than workers, so their
/// order hardly changes when the run ends, but it decides which memory
/// the run touches: a random 1M-node graph (a quarter of it sources)
/// took 180 ns a node on one worker with every source in rank order,
/// where a node's rank says little about its place, and 100-120 ns so.
const SOURCE_BLOCK: usize = 1024;

/// Compressed rows: `successors[starts[n]..starts[n + 1]]` are the heads of
/// the edges leaving `n`, in the order they were given.
fn compress(len: usize, edges: impl Iterator<Item = (u32, u32)> + Clone) -> (Vec<u32>, Vec<u32>) {
    let mut starts = huge::filled(len + 1, 0u32);
    for (from, _) in edges.clone() {
        starts[from as usize + 1] += 1;
    }
    for i in 0..len {
        starts[i + 1] += starts[i];
    }
    let mut fill = starts.clone();
    let mut successors = huge::filled(starts[len] as usize, 0u32);
    for (from, to) in edges {
        successors[fill[from as usize] as usize] = to;
        fill[from as usize] += 1;
    }
    (starts, successors)
}

/// Kahn's algorithm; on a cycle, returns one cycle as a closed path.
fn topological_order(
    starts: &[u32],
    successors: &[u32],
    in_degree: &[u32],
) -> Result<Vec<u32>, Vec<u32>> {
    let len = in_degree.len();
    let mut waiting = in_degree.to_vec();
    let mut order: Vec<u32> = (0..len as u32)
        .filter(|&n| waiting[n as usize] == 0)
        .collect();
    let mut next = 0;
    while next < order.len() {
        let node = order[next] as usize;
        next += 1;
        for &succ in &successors[starts[node] as usize..starts[node + 1] as usize] {
            waiting[succ as usize] -= 1;
            if waiting[succ as usize] == 0 {
                order.push(succ);
            }
        }
    }
    if order.len() == len {
        return Ok(order);
    }
    Err(find_cycle(starts, successors, &waiting))
}

/// A cycle among the nodes Kahn's algorithm could not order. Each of them
/// waits for another of them, so walking backwards along such edges must
/// come back to a node already seen.
fn find_cycle(starts: &[u32], successors: &[u32], waiting: &[u32]) -> Vec<u32> {
    let len = waiting.len();
    let stuck = |n: usize| waiting[n] > 0;
    // Predecessor rows, restricted to stuck nodes.
    let edges = (0..len).filter(|&n| stuck(n)).flat_map(|from| {
        successors[starts[from] as usize..starts[from + 1] as usize]
            .iter()
            .filter(move |&&to| stuck(to as usize))
            .map(move |&to| (to, from as u32))
    });
    let (pred_starts, preds) = compress(len, edges.collect::<Vec<_>>().into_iter());
    let mut seen_at = vec![usize::MAX; len];
    let mut walk = Vec::new();
    let mut node = (0..len)
        .find(|&n| stuck(n))
        .expect("a failed topological sort leaves a node");
    while seen_at[node] == usize::MAX {
        seen_at[node] = walk.len();
        walk.push(node as u32);
        node = preds[pred_starts[node] as usize] as usize;
    }
    // The walk went against the edges: reverse the loop, start it at the
    // node added first (so the report does not depend on the walk), close it.
    let mut cycle: Vec<u32> = walk[seen_at[node]..].iter().rev().copied().collect();
    let first = (0..cycle.len()).min_by_key(|&i| cycle[i]).unwrap_or(0);
    cycle.rotate_left(first);
    cycle.push(cycle[0]);
    cycle
}

/// A cycle found by [`GraphBuilder::build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleError {
    path: Vec<String>,
}

impl CycleError {
    /// The cycle's node names, the first repeated at the end.
    pub fn path(&self) -> &[String] {
        &self.path
    }
}

impl fmt::Display for CycleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cycle: {}", self.path.join(" -> "))
    }
}

impl Error for CycleError {}

/// A graph from [`GraphBuilder::build`], ready to run once.
pub struct DynGraph {
    /// The number of the builder that made it, in its node ids.
    id: u32,
    names: Names,
    costs: Vec<u32>,
    jobs: Jobs,
    /// Per node, how many nodes it waits for; handed to the run as its
    /// counters, so a run of a big graph makes and fills none.
    in_degree: Vec<AtomicU32>,
    starts: Vec<u32>,
    successors: Vec<u32>,
    sources: Vec<u32>,
    rank: Vec<u64>,
}

impl fmt::Debug for DynGraph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynGraph")
            .field("nodes", &self.names.len())
            .field("edges", &self.successors.len())
            .finish()
    }
}

impl DynGraph {
    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// A node's name.
    ///
    /// # Panics
    ///
    /// When `node` belongs to another graph, as the methods below.
    pub fn name(&self, node: NodeId) -> &str {
        self.names.get(self.check(node))
    }

    /// A node's critical-path rank: its cost plus the largest rank after it.
    pub fn rank(&self, node: NodeId) -> u64 {
        self.rank[self.check(node)]
    }

    /// The nodes that wait for `node`, highest rank first.
    pub fn successors(&self, node: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        let builder = self.id;
        self.row(self.check(node) as u32)
            .iter()
            .map(move |&index| NodeId { index, builder })
    }

    fn check(&self, node: NodeId) -> usize {
        assert!(
            node.builder == self.id && node.index() < self.names.len(),
            "{node:?} is not a node of this graph"
        );
        node.index()
    }

    // Inlined: called for every node of a run.
    #[inline]
    fn row(&self, node: u32) -> &[u32] {
        let node = node as usize;
        &self.successors[self.starts[node] as usize..self.starts[node + 1] as usize]
    }

    /// The graph in Graphviz `dot` syntax, under the name `graph`.
    pub fn dot(&self, graph: &str) -> String {
        let nodes = (0..self.len()).map(|n| dot::Node {
            name: self.names.get(n),
            cost: self.costs[n],
            rank: self.rank[n],
            successors: self.row(n as u32),
        });
        dot::render(graph, nodes, std::iter::empty())
    }
}

impl Graph for DynGraph {
    type Outputs = ();
    type Plan = DynGraph;

    fn into_plan(self) -> DynGraph {
        self
    }
}

impl Plan for DynGraph {
    type Outputs = ();

    fn len(&self) -> usize {
        self.names.len()
    }

    #[inline]
    fn counters(&self) -> &[AtomicU32] {
        &self.in_degree
    }

    // Inlined: called for every node of a run.
    #[inline]
    fn successors(&self, node: u32) -> &[u32] {
        self.row(node)
    }

    fn sources(&self) -> &[u32] {
        &self.sources
    }

    fn name(&self, node: u32) -> &str {
        self.names.get(node as usize)
    }

    fn node_names(&self) -> NodeNames {
        self.names.node_names()
    }

    fn stack_size(&self, _node: u32) -> usize {
        0
    }

    // Inlined: called for every node that becomes ready.
    #[inline]
    fn prefetch(&self, node: u32) {
        self.jobs.prefetch(node as usize);
    }

    // Inlined: called for every node of a run. (Safe to call in any
    // order: each closure is taken once, checked.)
    #[inline]
    unsafe fn run_node(&self, node: u32) -> Result<(), Failure> {
        self.jobs
            .call(node as usize)
            .expect("the executor runs each node once")
            .map_err(Failure::error)
    }

    // Inlined into the executor's generic code in the caller's crate.
    #[inline]
    unsafe fn run_node_once(&self, node: u32) -> Result<(), Failure> {
        // SAFETY: forwarded from the caller: nothing else takes this node's
        // closure meanwhile.
        unsafe { self.jobs.call_once(node as usize) }
            // Called by hand before the run, say: a failure of the node,
            // as with `run_node`.
            .expect("the executor runs each node once")
            .map_err(Failure::error)
    }

    unsafe fn skip_node(&self, node: u32) {
        self.jobs.discard(node as usize);
    }

    fn finish(&mut self) -> Option<()> {
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(names: &[&'static str], close: bool) -> GraphBuilder {
        let mut builder = GraphBuilder::new();
        let ids: Vec<_> = names.iter().map(|&n| builder.node(n, || {})).collect();
        for pair in ids.windows(2) {
            builder.edge(pair[0], pair[1]);
        }
        if close {
            builder.edge(ids[ids.len() - 1], ids[0]);
        }
        builder
    }

    #[test]
    fn node_closures_small_and_big_run_once_and_drop_once() {
        let token = std::sync::Arc::new(());
        let mut builder = GraphBuilder::new();
        let small = std::sync::Arc::clone(&token);
        let big = (std::sync::Arc::clone(&token), [7u64; 8]);
        let a = builder.node("small", move || drop(small));
        let b = builder.node("big", move || {
            let (token, words) = big;
            assert_eq!(words[7], 7);
            drop(token);
        });
        let unrun = std::sync::Arc::clone(&token);
        builder.node("unrun", move || drop(unrun));
        builder.node("big unrun", {
            let big = (std::sync::Arc::clone(&token), [0u8; 64]);
            move || drop(big)
        });
        let graph = builder.build().unwrap();
        assert_eq!(std::sync::Arc::strong_count(&token), 5);
        // SAFETY: each node once, in order.
        unsafe { graph.run_node(a.index) }.unwrap();
        // SAFETY: as above.
        unsafe { graph.run_node(b.index) }.unwrap();
        assert_eq!(std::sync::Arc::strong_count(&token), 3);
        drop(graph);
        assert_eq!(std::sync::Arc::strong_count(&token), 1);
    }

    #[test]
    fn a_cycle_is_named_in_order() {
        let mut builder = chain(&["a", "b", "c"], true);
        let tail = builder.node("tail", || {});
        let c = NodeId {
            index: 2,
            builder: builder.id,
        };
        builder.edge(c, tail);
        let err = builder.build().unwrap_err();
        assert_eq!(err.to_string(), "cycle: a -> b -> c -> a");
    }

    #[test]
    fn a_self_edge_is_a_cycle() {
        let mut builder = GraphBuilder::new();
        let a = builder.node("a", || {});
        builder.edge(a, a);
        assert_eq!(builder.build().unwrap_err().path(), ["a", "a"]);
    }

    #[test]
    fn a_cycle_behind_a_valid_prefix_is_found() {
        let mut builder = chain(&["x", "y"], false);
        let p = builder.node("p", || {});
        let q = builder.node("q", || {});
        let y = NodeId {
            index: 1,
            builder: builder.id,
        };
        builder.edge(y, p).edge(p, q).edge(q, p);
        assert_eq!(
            builder.build().unwrap_err().to_string(),
            "cycle: p -> q -> p"
        );
    }

    #[test]
    fn ranks_and_successor_order_follow_costs() {
        let mut builder = GraphBuilder::new();
        let root = builder.node("root", || {});
        let cheap = builder.node("cheap", || {});
        let dear = builder.node("dear", || {});
        builder.cost(dear, 50).edge(root, cheap).edge(root, dear);
        let graph = builder.build().unwrap();
        assert_eq!(graph.rank(root), 51);
        assert_eq!(graph.successors(root).collect::<Vec<_>>(), [dear, cheap]);
        assert_eq!(Plan::sources(&graph), [0]);
        assert!(graph.dot("g").contains("n0 -> n2;\n    n0 -> n1;"));
    }

    #[test]
    fn nodes_added_before_their_dependencies_get_the_same_ranks_and_rows() {
        // The same diamond with a tail, added in dependency order (every
        // edge forward, no sort needed) and backwards (sorted).
        let names = ["top", "left", "right", "bottom", "tail"];
        let edges = [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)];
        let build = |order: &[usize]| {
            let mut builder = GraphBuilder::new();
            let mut added = [None; 5];
            for &n in order {
                added[n] = Some(builder.node(names[n], || {}));
            }
            let ids = added.map(|id| id.expect("every node added"));
            builder.cost(ids[2], 10);
            for &(from, to) in &edges {
                builder.edge(ids[from], ids[to]);
            }
            let graph = builder.build().unwrap();
            names
                .iter()
                .enumerate()
                .map(|(n, name)| {
                    let row: Vec<String> = graph
                        .successors(ids[n])
                        .map(|s| graph.name(s).to_owned())
                        .collect();
                    (*name, graph.rank(ids[n]), row)
                })
                .collect::<Vec<_>>()
        };
        let forward = build(&[0, 1, 2, 3, 4]);
        assert_eq!(forward, build(&[4, 3, 2, 1, 0]));
        assert_eq!(forward[0].1, 13);
        assert_eq!(forward[0].2, ["right", "left"]);
        assert_eq!(forward[3].1, 2);
    }

    #[test]
    fn sources_start_by_rank_within_blocks_in_node_order_across_them() {
        // Two blocks of sources; in each, every other source is dear.
        let n = 2 * SOURCE_BLOCK;
        let mut builder = GraphBuilder::new();
        let ids: Vec<_> = (0..n).map(|_| builder.node("s", || {})).collect();
        for (i, &id) in ids.iter().enumerate() {
            builder.cost(id, if i % 2 == 1 { 10 } else { 1 });
        }
        let graph = builder.build().unwrap();
        let sources = Plan::sources(&graph);
        assert_eq!(sources.len(), n);
        for (b, block) in sources.chunks(SOURCE_BLOCK).enumerate() {
            let range = (b * SOURCE_BLOCK) as u32..((b + 1) * SOURCE_BLOCK) as u32;
            assert!(block.iter().all(|s| range.contains(s)), "block {b}");
            let (dear, cheap) = block.split_at(SOURCE_BLOCK / 2);
            assert!(dear.iter().all(|s| s % 2 == 1), "block {b}: dear first");
            assert!(cheap.iter().all(|s| s % 2 == 0), "block {b}: then cheap");
            // Equal ranks keep node order.
            assert!(dear.windows(2).all(|w| w[0] < w[1]), "block {b}");
        }
    }

    #[test]
    fn a_node_run_by_hand_before_the_run_fails_in_the_run() {
        let mut builder = GraphBuilder::new();
        builder.node("early", || {});
        let graph = builder.build().unwrap();
        // SAFETY: the one node, once.
        unsafe { graph.run_node(0) }.unwrap();
        let rt = crate::Builder::new().workers(1).build().unwrap();
        let err = rt.run(graph).unwrap_err();
        assert!(err.to_string().contains("`early` panicked"), "{err}");
    }
}
