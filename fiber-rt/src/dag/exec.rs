//! The executor core: atomic in-degree counters, inline continuation, and
//! failure propagation. It knows nothing about fibers or workers: whoever
//! runs a graph hands it a `spawn` callback that runs a [`Task`] somewhere
//! (a fiber, a thread, a pool) and a `done` callback for the result.
//!
//! A finished node decrements each successor's counter (successors are
//! sorted by critical-path rank). The first successor that becomes ready
//! runs next in the same task, in a loop, so a chain of a million nodes
//! needs no stack depth and no queue traffic; the others are spawned (as is
//! a successor that asks for a bigger stack than the task's fiber has). A node
//! that panics or returns `Err` poisons its successors' counters: each one,
//! once ready, is skipped and poisons its own successors, so every node is
//! accounted for and the run always ends. The run ends when the last task
//! lets go of the shared state: its `Drop` calls `done` exactly once.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};

use super::error::{panic_message, FailureKind, GraphError, NodeFailure};
use super::graph::{Graph, Plan};
use crate::debug::recorder::Recorder;

/// Runs a [`Task`] somewhere: on a fiber, a thread, a pool, or inline.
pub type Spawn = Arc<dyn Fn(Task) + Send + Sync>;

/// Receives the result of a run, exactly once.
pub type Done<O> = Box<dyn FnOnce(Result<O, GraphError>) + Send>;

/// Counter bit set when something a node depends on failed.
const POISONED: u32 = 1 << 31;
/// Counter bits holding the number of dependencies still running.
const WAITING: u32 = POISONED - 1;

/// Starts a run of `graph`: calls `spawn` once for each source node, and
/// later for each node that becomes ready while its task is busy with
/// another; calls `done` exactly once with the outputs or the error, from
/// whichever thread finishes last (possibly this one, before `start`
/// returns).
///
/// A task that `spawn` drops without running counts as failed
/// ([`FailureKind::Dropped`]), so even a runtime shutting down mid-run
/// never leaves `done` uncalled.
pub fn start<G: Graph>(graph: G, spawn: Spawn, done: Done<G::Outputs>) {
    let plan = graph.into_plan();
    launch(Run::new(plan, spawn, done, None));
}

/// Like [`start`], and records when and where each node runs; the
/// recording is complete once `done` has been called.
pub(crate) fn start_traced<G: Graph>(
    graph: G,
    spawn: Spawn,
    done: Done<G::Outputs>,
) -> Arc<Recorder> {
    let plan = graph.into_plan();
    let name = std::any::type_name::<G>();
    let name = name.rsplit("::").next().unwrap_or(name);
    let recorder = Arc::new(Recorder::new(name, &plan));
    launch(Run::new(plan, spawn, done, Some(recorder.clone())));
    recorder
}

fn launch<P: Plan>(run: Run<P>) {
    let run = Arc::new(run);
    for &source in run.plan.sources() {
        (run.spawn)(Task::new(run.clone(), source));
    }
}

/// Runs `graph` to the end with `spawn`, blocking the calling thread until
/// the result is in.
///
/// ```
/// use fiber_rt::dag::{run_with, GraphBuilder};
///
/// let mut builder = GraphBuilder::new();
/// let a = builder.node("a", || println!("first"));
/// let b = builder.node("b", || println!("second"));
/// builder.edge(a, b);
/// let graph = builder.build().unwrap();
/// // Each ready task on a thread of its own.
/// run_with(graph, |task| {
///     std::thread::spawn(move || task.run());
/// })
/// .unwrap();
/// ```
pub fn run_with<G: Graph>(
    graph: G,
    spawn: impl Fn(Task) + Send + Sync + 'static,
) -> Result<G::Outputs, GraphError>
where
    G::Outputs: Send,
{
    let (sender, receiver) = mpsc::sync_channel(1);
    start(
        graph,
        Arc::new(spawn),
        Box::new(move |result| {
            // The receiver waits below until this arrives, so it is there.
            let _ = sender.send(result);
        }),
    );
    receiver
        .recv()
        .expect("a graph run calls `done` before its state is freed")
}

/// A ready node of a running graph. [`run`](Task::run) it once, on any
/// thread; it may go on to run nodes that become ready after it.
///
/// Dropping a task without running it fails its node with
/// [`FailureKind::Dropped`] and skips the nodes that depend on it.
pub struct Task {
    /// `None` once `run` has taken it, so `Drop` knows the task ran.
    run: Option<Arc<dyn Resume>>,
    node: u32,
}

impl Task {
    fn new(run: Arc<dyn Resume>, node: u32) -> Self {
        Task {
            run: Some(run),
            node,
        }
    }

    /// Runs the node, then any successor it makes ready first, and so on.
    pub fn run(mut self) {
        if let Some(run) = self.run.take() {
            run.resume(self.node);
        }
    }

    /// The node's display name.
    pub fn name(&self) -> &str {
        self.run.as_ref().map_or("", |run| run.name(self.node))
    }

    /// The stack size the node asked for in bytes (`#[fiber(stack = ..)]`),
    /// 0 for the runtime's default.
    pub fn stack_size(&self) -> usize {
        self.run.as_ref().map_or(0, |run| run.stack_size(self.node))
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if let Some(run) = self.run.take() {
            run.dropped(self.node);
        }
    }
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task").field("node", &self.name()).finish()
    }
}

/// The type-erased face of a run that a [`Task`] holds.
trait Resume: Send + Sync {
    fn resume(self: Arc<Self>, node: u32);
    fn name(&self, node: u32) -> &str;
    fn stack_size(&self, node: u32) -> usize;
    fn dropped(&self, node: u32);
}

/// The state one run shares between its tasks.
struct Run<P: Plan> {
    plan: P,
    /// Per node: dependencies still running, plus the `POISONED` bit.
    counters: Box<[AtomicU32]>,
    spawn: Spawn,
    /// Nodes skipped because a dependency failed; only touched on failure.
    skipped: AtomicUsize,
    /// Nodes that panicked or returned `Err`; only touched on failure.
    failures: Mutex<Vec<(u32, FailureKind, String)>>,
    /// Taken by `Drop`; the mutex only makes the box `Sync`.
    done: Mutex<Option<Done<P::Outputs>>>,
    /// Set for a traced run: times and workers of each node.
    trace: Option<Arc<Recorder>>,
}

impl<P: Plan> Run<P> {
    fn new(plan: P, spawn: Spawn, done: Done<P::Outputs>, trace: Option<Arc<Recorder>>) -> Self {
        let len = u32::try_from(plan.len()).expect("a graph has fewer than 2^32 nodes");
        let counters = (0..len)
            .map(|node| {
                let in_degree = plan.in_degree(node);
                assert!(
                    in_degree <= WAITING,
                    "a node waits for fewer than 2^31 others"
                );
                AtomicU32::new(in_degree)
            })
            .collect();
        Run {
            plan,
            counters,
            spawn,
            skipped: AtomicUsize::new(0),
            failures: Mutex::new(Vec::new()),
            done: Mutex::new(Some(done)),
            trace,
        }
    }

    /// Runs one node's body, catching a panic. Returns whether it succeeded.
    fn execute(&self, node: u32) -> bool {
        let outcome = catch_unwind(AssertUnwindSafe(|| self.plan.run_node(node)));
        let (kind, message) = match outcome {
            Ok(Ok(())) => return true,
            Ok(Err(failure)) => (FailureKind::Returned, failure.message),
            Err(payload) => (FailureKind::Panicked, panic_message(payload.as_ref())),
        };
        self.record_failure(node, kind, message);
        false
    }

    /// Tells `node`'s successors it finished (`ok`) or will never produce an
    /// output. Returns the first successor that became ready, with whether
    /// it is poisoned, and spawns any others.
    ///
    /// Only a successor that fits on this task's stack (`stack`, the size
    /// its first node asked for; 0 is the runtime's default) continues
    /// inline: one that asks for a stack of its own is always spawned.
    fn release_successors(
        self: &Arc<Self>,
        node: u32,
        ok: bool,
        stack: usize,
    ) -> Option<(u32, bool)> {
        let mut next = None;
        for &succ in self.plan.successors(node) {
            let counter = &self.counters[succ as usize];
            // A node waiting for this one alone is ready now: no need for an
            // atomic operation (the common case in chains and trees). Its
            // counter keeps its in-degree, which nothing reads any more.
            let only_this = ok && self.plan.in_degree(succ) == 1;
            let before = if only_this {
                1
            } else {
                if !ok {
                    // Relaxed: the decrement below modifies the same atomic after
                    // this in program order, so whoever reads the count that
                    // made the node ready reads this bit too.
                    counter.fetch_or(POISONED, Ordering::Relaxed);
                }
                // AcqRel: Release publishes this node's output slot to the
                // task that runs the successor; Acquire makes the last
                // decrementer see the outputs of every other dependency.
                counter.fetch_sub(1, Ordering::AcqRel)
            };
            if before & WAITING != 1 {
                continue;
            }
            let poisoned = before & POISONED != 0;
            let wants = self.plan.stack_size(succ);
            let fits = wants == 0 || wants <= stack;
            if next.is_none() && fits {
                next = Some((succ, poisoned));
            } else {
                (self.spawn)(Task::new(self.clone(), succ));
            }
        }
        next
    }
}

impl<P: Plan> Resume for Run<P> {
    fn resume(self: Arc<Self>, first: u32) {
        // Relaxed: the poison bit was set before the task was spawned, and
        // handing a task to another thread (as any safe spawner does)
        // orders everything before the hand-off before this load.
        let mut poisoned = self.counters[first as usize].load(Ordering::Relaxed) & POISONED != 0;
        let mut node = first;
        let stack = self.plan.stack_size(first);
        loop {
            let ok = if poisoned {
                // Relaxed: read only in `Drop`, after every task has let go
                // of the `Arc`, which orders this before it.
                self.skipped.fetch_add(1, Ordering::Relaxed);
                false
            } else if let Some(trace) = &self.trace {
                // The untraced path pays this one predictable branch.
                trace.started(node);
                let ok = self.execute(node);
                trace.finished(node);
                ok
            } else {
                self.execute(node)
            };
            match self.release_successors(node, ok, stack) {
                Some((succ, succ_poisoned)) => (node, poisoned) = (succ, succ_poisoned),
                None => return,
            }
        }
    }

    fn name(&self, node: u32) -> &str {
        self.plan.name(node)
    }

    fn stack_size(&self, node: u32) -> usize {
        self.plan.stack_size(node)
    }

    fn dropped(&self, node: u32) {
        self.record_failure(
            node,
            FailureKind::Dropped,
            "its task was dropped before it ran".into(),
        );
    }
}

impl<P: Plan> Drop for Run<P> {
    fn drop(&mut self) {
        let Some(done) = self
            .done
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        let result = self.outcome();
        done(result);
    }
}

impl<P: Plan> Run<P> {
    /// The run's result, computed once no task holds the state any more.
    /// Every node that did not succeed traces back to a recorded failure (a
    /// panic, an `Err`, or a dropped task), so no failures means success.
    fn outcome(&mut self) -> Result<P::Outputs, GraphError> {
        let mut failed = std::mem::take(
            self.failures
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner),
        );
        if failed.is_empty() {
            return match catch_unwind(AssertUnwindSafe(|| self.plan.finish())) {
                Ok(Some(outputs)) => Ok(outputs),
                _ => Err(GraphError::new(Vec::new(), 0)),
            };
        }
        failed.sort_by_key(|(node, _, _)| *node);
        let failures = failed
            .into_iter()
            .map(|(node, kind, message)| NodeFailure {
                node: self.plan.name(node).to_owned(),
                kind,
                message,
            })
            .collect();
        Err(GraphError::new(failures, *self.skipped.get_mut()))
    }

    fn record_failure(&self, node: u32, kind: FailureKind, message: String) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((node, kind, message));
    }
}
