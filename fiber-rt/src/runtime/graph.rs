//! Running a dependency graph on the runtime: every ready node runs as a
//! fiber, so a node may block, sleep, spawn, use channels, or run a graph
//! of its own.

use std::sync::Arc;

use super::Runtime;
use crate::dag::{self, Graph, GraphError};
use crate::debug::Trace;
use crate::sched::registry::Registry;
use crate::sync::oneshot;

impl Runtime {
    /// Runs `graph` to the end and returns the output of every node, or
    /// the error naming the nodes that failed. From a fiber, the fiber
    /// parks meanwhile; from a plain thread, the thread blocks.
    ///
    /// ```
    /// use fiber_rt::dag::GraphBuilder;
    ///
    /// let rt = fiber_rt::Runtime::new().unwrap();
    /// let mut b = GraphBuilder::new();
    /// let first = b.node("first", || ());
    /// let second = b.node("second", || ());
    /// b.edge(first, second);
    /// rt.run(b.build().unwrap()).unwrap();
    /// ```
    pub fn run<G: Graph>(&self, graph: G) -> Result<G::Outputs, GraphError>
    where
        G::Outputs: Send,
    {
        run_on(self.registry(), graph)
    }
}

/// Runs `graph` on the caller's runtime: the caller must be a fiber.
///
/// # Panics
///
/// If called outside a fiber; use [`Runtime::run`] there.
pub fn run<G: Graph>(graph: G) -> Result<G::Outputs, GraphError>
where
    G::Outputs: Send,
{
    run_on(&super::current_registry("run"), graph)
}

impl Runtime {
    /// Like [`run`](Runtime::run), and also returns a [`Trace`] of the run:
    /// when each node started and ended, on which worker, and how often it
    /// was preempted. Draw it with [`Trace::write_svg`] or load
    /// [`Trace::write_chrome_json`]'s file in Perfetto.
    ///
    /// ```
    /// use fiber_rt::dag::GraphBuilder;
    ///
    /// let rt = fiber_rt::Runtime::new().unwrap();
    /// let mut b = GraphBuilder::new();
    /// let load = b.node("load", || ());
    /// let parse = b.node("parse", || ());
    /// b.edge(load, parse);
    /// let (result, trace) = rt.run_traced(b.build().unwrap());
    /// result.unwrap();
    /// assert_eq!(trace.nodes().len(), 2);
    /// let (load, parse) = (trace.nodes()[0].span.unwrap(), trace.nodes()[1].span.unwrap());
    /// assert!(load.end <= parse.start);
    /// ```
    pub fn run_traced<G: Graph>(&self, graph: G) -> (Result<G::Outputs, GraphError>, Trace)
    where
        G::Outputs: Send,
    {
        let (tx, rx) = oneshot::channel();
        let recorder = dag::exec::start_traced(
            graph,
            spawner(self.registry()),
            self.registry().config.workers,
            sender(tx),
        );
        let result = rx.recv().expect("a graph run always reports its result");
        (result, recorder.finish())
    }
}

/// Runs each ready node as a fiber of `registry`.
fn spawner(registry: &Arc<Registry>) -> dag::Spawn {
    let registry = registry.clone();
    Arc::new(move |task: dag::Task| {
        let stack = Some(task.stack_size()).filter(|&s| s > 0);
        // If no stack can be had, the task is dropped unrun, which fails
        // its node (and skips its dependents) instead of losing it.
        let _ = registry.spawn(None, stack, move || task.run());
    })
}

/// Hands a run's result to the caller waiting on the other end.
fn sender<O: Send + 'static>(tx: oneshot::Sender<Result<O, GraphError>>) -> dag::Done<O> {
    Box::new(move |result| {
        // The caller waits on the receiver, so it is still there.
        let _ = tx.send(result);
    })
}

fn run_on<G: Graph>(registry: &Arc<Registry>, graph: G) -> Result<G::Outputs, GraphError>
where
    G::Outputs: Send,
{
    let (tx, rx) = oneshot::channel();
    dag::exec::start_with_width(
        graph,
        spawner(registry),
        registry.config.workers,
        sender(tx),
    );
    rx.recv().expect("a graph run always reports its result")
}
