//! The traits a graph implements so the executor can run it: [`Graph`] for
//! what users pass to a runner, and the hidden [`Plan`] the executor walks.

use std::sync::atomic::AtomicU32;

use super::error::Failure;
use super::table::{NodeInfo, Table};
use crate::stack::header::NodeNames;

/// A dependency graph that can be run: a `depends!` graph, or a
/// [`DynGraph`](super::DynGraph) from the [`GraphBuilder`](super::GraphBuilder).
///
/// Running consumes the value, so a graph with run-time inputs is built
/// once per run (`Stats { input }`), while its type serves every run.
pub trait Graph: Sized + Send + 'static {
    /// What a successful run gives back: for `depends!` graphs a struct with
    /// a field per fiber, for run-time graphs `()`. It is made on the thread
    /// that finishes the run and handed to `done` there; whoever moves it
    /// on to another thread needs it to be `Send`.
    type Outputs: 'static;

    /// The per-run state the executor walks.
    #[doc(hidden)]
    type Plan: Plan<Outputs = Self::Outputs>;

    /// Sets up the run: output slots, with the inputs already in theirs.
    #[doc(hidden)]
    fn into_plan(self) -> Self::Plan;
}

/// One run of a graph, as the executor sees it. Node indices are `u32`
/// below `len()`.
#[doc(hidden)]
pub trait Plan: Send + Sync + 'static {
    /// What [`finish`](Plan::finish) produces.
    type Outputs: 'static;
    /// Number of nodes.
    fn len(&self) -> usize;
    /// Whether the graph has no nodes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The run's counters, one per node, each at the node's in-degree (how
    /// many nodes it waits for) when the run starts. The plan serves one
    /// run, so they are its own: a `depends!` graph keeps them beside its
    /// output slots and a run-time graph with its rows, and neither run
    /// allocates them.
    fn counters(&self) -> &[AtomicU32];
    /// The nodes waiting for `node`, highest critical-path rank first.
    fn successors(&self, node: u32) -> &[u32];
    /// The nodes that wait for nothing, in the order they are started:
    /// highest rank first (a run-time graph with many sources keeps that
    /// order within blocks, see [`GraphBuilder::build`]).
    ///
    /// [`GraphBuilder::build`]: super::GraphBuilder::build
    fn sources(&self) -> &[u32];
    /// The node's display name.
    fn name(&self, node: u32) -> &str;
    /// Where the node names are, as plain data (see [`NodeNames`]): a
    /// stack's header points there while one of the nodes runs on it.
    /// They stay where they are for the whole run.
    fn node_names(&self) -> NodeNames {
        NodeNames {
            kind: NodeNames::NONE,
            first: 0,
            step: 0,
        }
    }
    /// A hint that `node` is ready and will run soon: a plan may start
    /// loading what running it reads. Does nothing by default.
    #[inline]
    fn prefetch(&self, node: u32) {
        let _ = node;
    }
    /// The node's stack size in bytes, 0 for the runtime's default.
    fn stack_size(&self, node: u32) -> usize;
    /// Runs one node's body. May panic.
    ///
    /// # Safety
    ///
    /// Called at most once per node, never for a node that
    /// [`skip_node`](Plan::skip_node) was called for, and only after every
    /// node it depends on has returned `Ok`: a run-time input is dropped
    /// when its last reader is counted out, which a second call of a
    /// reader would do while another still borrows it.
    unsafe fn run_node(&self, node: u32) -> Result<(), Failure>;
    /// [`run_node`](Plan::run_node) for a caller that never runs a node on
    /// two threads at once: a plan may then check for a second call
    /// without a locked instruction (a run-time graph's check is one per
    /// node). A second call still fails as with `run_node`.
    ///
    /// # Safety
    ///
    /// As for `run_node`, and no call of `run_node` or `run_node_once` for
    /// the same node on another thread at the same time.
    unsafe fn run_node_once(&self, node: u32) -> Result<(), Failure> {
        // SAFETY: the caller's contract covers `run_node`'s.
        unsafe { self.run_node(node) }
    }
    /// Drops what `node` would have consumed (a run-time node's closure, a
    /// value it takes by value): it will never run, because a node it
    /// depends on failed. Does nothing by default.
    ///
    /// # Safety
    ///
    /// Called at most once per node, never for a node that `run_node` was
    /// called for (see there).
    unsafe fn skip_node(&self, node: u32) {
        let _ = node;
    }
    /// Collects the outputs, once every node has returned `Ok`. `None` only
    /// when a slot is unexpectedly empty, which a correct plan never causes.
    fn finish(&mut self) -> Option<Self::Outputs>;
}

/// What `depends!` implements for a graph; [`StaticPlan`] turns it into a
/// [`Plan`].
///
/// # Safety
///
/// `Slots` is `Send` and `Sync`: the slots of one run are shared by the
/// workers that run its nodes. (`depends!` makes them of [`Slot`]s alone,
/// which are, each access being checked on its own: a value moved in or
/// out must be `Send`, one lent to several nodes `Sync`.) The bound is not
/// spelt out, so that a graph naming something that is not a fiber gets
/// the one error on that name, not more about the slots it cannot have.
///
/// [`Slot`]: crate::__private::Slot
#[doc(hidden)]
pub unsafe trait StaticGraph: Sized + Send + 'static {
    /// One output slot per node and one per run-time input.
    type Slots: 'static;
    /// The outputs struct.
    type Outputs: 'static;
    /// The constant node table.
    const TABLE: &'static Table;
    /// Makes the slots for one run, with the inputs moved into theirs.
    fn into_slots(self) -> Self::Slots;
    /// Runs node `node`: reads its inputs from the slots, calls the fiber,
    /// stores its output.
    ///
    /// # Safety
    ///
    /// As for [`Plan::run_node`], for the run these slots belong to.
    unsafe fn run_node(slots: &Self::Slots, node: u32) -> Result<(), Failure>;
    /// Drops the outputs and inputs node `node` would have taken by value:
    /// it never runs (see [`Plan::skip_node`]).
    ///
    /// # Safety
    ///
    /// As for [`Plan::skip_node`].
    unsafe fn skip_node(slots: &Self::Slots, node: u32) {
        let _ = (slots, node);
    }
    /// Moves the outputs out of the slots.
    fn finish(slots: &mut Self::Slots) -> Option<Self::Outputs>;
    /// The run's counters, kept in the slots (see [`Plan::counters`]).
    fn counters(slots: &Self::Slots) -> &[AtomicU32];
}

/// The [`Plan`] of a `depends!` graph: its slots, walked along its table.
#[doc(hidden)]
pub struct StaticPlan<G: StaticGraph> {
    slots: G::Slots,
}

impl<G: StaticGraph> StaticPlan<G> {
    /// A run of `graph`.
    pub fn new(graph: G) -> Self {
        StaticPlan {
            slots: graph.into_slots(),
        }
    }
}

impl<G: StaticGraph> std::fmt::Debug for StaticPlan<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticPlan")
            .field("graph", &G::TABLE.graph)
            .finish_non_exhaustive()
    }
}

// SAFETY: a `StaticPlan` is its slots, which are `Send` by the contract
// of `StaticGraph`.
unsafe impl<G: StaticGraph> Send for StaticPlan<G> {}

// SAFETY: as for `Send`: its slots are `Sync` by the contract of
// `StaticGraph`.
unsafe impl<G: StaticGraph> Sync for StaticPlan<G> {}

impl<G: StaticGraph> Plan for StaticPlan<G> {
    type Outputs = G::Outputs;

    fn len(&self) -> usize {
        G::TABLE.nodes.len()
    }

    #[inline]
    fn counters(&self) -> &[AtomicU32] {
        G::counters(&self.slots)
    }

    fn successors(&self, node: u32) -> &[u32] {
        G::TABLE.nodes[node as usize].successors
    }

    fn sources(&self) -> &[u32] {
        G::TABLE.sources
    }

    fn name(&self, node: u32) -> &str {
        G::TABLE.nodes[node as usize].name
    }

    fn node_names(&self) -> NodeNames {
        NodeNames {
            kind: NodeNames::STRIDED,
            first: G::TABLE.nodes.as_ptr() as usize + std::mem::offset_of!(NodeInfo, name),
            step: std::mem::size_of::<NodeInfo>(),
        }
    }

    fn stack_size(&self, node: u32) -> usize {
        G::TABLE.nodes[node as usize].stack_size
    }

    unsafe fn run_node(&self, node: u32) -> Result<(), Failure> {
        // SAFETY: forwarded from the caller, for this plan's slots.
        unsafe { G::run_node(&self.slots, node) }
    }

    unsafe fn skip_node(&self, node: u32) {
        // SAFETY: forwarded from the caller, for this plan's slots.
        unsafe { G::skip_node(&self.slots, node) }
    }

    fn finish(&mut self) -> Option<G::Outputs> {
        G::finish(&mut self.slots)
    }
}
