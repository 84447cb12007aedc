//! The executor core: atomic in-degree counters, inline continuation, and
//! failure propagation. It knows nothing about fibers or workers: whoever
//! runs a graph hands it a `spawn` callback that runs a [`Task`] somewhere
//! (a fiber, a thread, a pool) and a `done` callback for the result.
//!
//! A finished node decrements each successor's counter (successors are
//! sorted by critical-path rank). The first successor that becomes ready
//! runs next in the same task, in a loop, so a chain of a million nodes
//! needs no stack depth and no queue traffic. The others go to the runner's
//! own lane of ready nodes (see [`lanes`](super::lanes)), as plain node
//! numbers, lowest rank first so that the highest comes back first. A task
//! is a *runner*: once its chain of inline successors ends it takes the
//! newest node of its lane, or steals from the shared queue or another
//! lane, and only leaves when nothing is queued anywhere. A runner that
//! queues a node while fewer than `width` (the number of workers) run
//! calls for a *helper*, one at a time: a task that joins the run when it
//! starts, if the run is still going and a place is still free, and takes
//! queued nodes. A graph with a million ready nodes so costs a handful of
//! fibers, not a million, and since a helper holds nothing until it
//! starts, nobody waits for one: a small graph is often done by its first
//! runner before the helper starts, which then finds nothing to do (the
//! runtime offers helpers to idle workers rather than spawning them, and
//! a run that its caller finishes withdraws its offer: see
//! `sched::offers`). A runner whose node parks (a lock, a channel, a
//! sleep, a nested graph) gives its place up while it waits, and its lane
//! can be stolen from meanwhile, so the queues keep moving and a node may
//! wait for any other node without deadlock. A successor that asks for a
//! bigger stack than its runner's fiber has gets a task of its own. The
//! caller of a run may be its first runner ([`run_here`]): a fiber that
//! would only wait for the result runs nodes meanwhile, which saves
//! starting a fiber and, when it finishes last, waking it. A node
//! that panics or returns `Err` poisons its successors' counters: each one,
//! once ready, is skipped and poisons its own successors, so every node is
//! accounted for and the run always ends. The run ends when the last task
//! lets go of its hold (a count beside the `Arc`'s, since a waiting caller
//! holds the state too, to read the result from it): that task hands the
//! result over exactly once, to `done` or to the parked caller.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::end::{Callback, End, Waiting};
use super::error::GraphError;
use super::graph::{Graph, Plan};
use crate::debug::recorder::Recorder;
use abandon::AbandonOnUnwind;
use run::{Release, Run};
pub use task::Task;

mod abandon;
mod outcome;
mod run;
mod runner;
mod task;
#[cfg(test)]
mod tests;

/// Runs a [`Task`] somewhere: on a fiber, a thread, a pool, or inline.
pub type Spawn = Arc<dyn Fn(Task) + Send + Sync>;

/// Receives the result of a run, exactly once.
pub type Done<O> = Box<dyn FnOnce(Result<O, GraphError>) + Send>;

/// How many skipped nodes a failed run names in its error (it counts them
/// all): a failed graph of a million nodes names no million.
const NAMED_SKIPS: usize = 64;

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
/// ([`FailureKind::Dropped`](super::FailureKind::Dropped)), so even a runtime shutting down mid-run
/// never leaves `done` uncalled.
pub fn start<G: Graph>(graph: G, spawn: Spawn, done: Done<G::Outputs>) {
    let width = std::thread::available_parallelism().map_or(1, |n| n.get());
    start_with_width(graph, spawn, width, None, done);
}

/// Like [`start`], with at most `width` tasks taking ready nodes at once
/// (besides those a blocked node or a stack size calls for), whose
/// default stack (for nodes that ask for none) is `default_stack` bytes,
/// if known.
pub(crate) fn start_with_width<G: Graph>(
    graph: G,
    spawn: Spawn,
    width: usize,
    default_stack: Option<usize>,
    done: Done<G::Outputs>,
) {
    let spawn = move |task| spawn(task);
    let run = Run::new(
        graph.into_plan(),
        spawn,
        width,
        default_stack,
        Callback::new(done),
        None,
    );
    launch(&Arc::new(run), None);
}

/// Runs `graph` with `spawn` and parks the calling fiber (or thread) until
/// the result is in. With `here` (the stack the caller offers), the caller
/// is the first runner: it runs the first source itself, if that fits the
/// stack, and the nodes that follow, before it waits for the others.
/// `run_first` runs that first runner's task, with the stack's size: it
/// may run it right there, or move it onto another stack first. Once the
/// run is over, `withdraw` is called with the run's address (see
/// [`Task::helper_of`]), before the run's state goes.
///
/// The spawner and the place for the result live in the run's shared
/// state: besides the plan's own, the run allocates that state, its
/// counters and its lanes.
pub(crate) fn run_here<G, S>(
    graph: G,
    spawn: S,
    width: usize,
    default_stack: Option<usize>,
    here: Option<usize>,
    run_first: impl FnOnce(Task, usize),
    withdraw: impl FnOnce(usize),
) -> Result<G::Outputs, GraphError>
where
    G: Graph,
    G::Outputs: Send,
    S: Fn(Task) + Send + Sync + 'static,
{
    // Made in its allocation: made on the stack and moved in, the run's
    // state (the plan's slots and counters, the lanes, the locks) took a
    // copy of some hundred bytes a run.
    let mut run = Arc::new_uninit();
    Arc::get_mut(&mut run)
        .expect("a new Arc is unique")
        .write(Run::new(
            graph.into_plan(),
            spawn,
            width,
            default_stack,
            Waiting::new(),
            None,
        ));
    // SAFETY: written just above.
    let run = unsafe { run.assume_init() };
    // A caller cancelled while it runs nodes or waits abandons the run.
    let abandon_on_unwind = AbandonOnUnwind(&*run);
    if let (Some(task), Some(stack)) = (launch(&run, here), here) {
        run_first(task, stack);
    }
    let result = run.end.wait();
    std::mem::forget(abandon_on_unwind);
    withdraw(Arc::as_ptr(&run) as *const () as usize);
    result
}

/// Like [`start`], and records when and where each node runs; the
/// recording is complete once `done` has been called.
pub(crate) fn start_traced<G: Graph>(
    graph: G,
    spawn: Spawn,
    width: usize,
    default_stack: Option<usize>,
    done: Done<G::Outputs>,
) -> (Arc<Recorder>, Abandon) {
    let plan = graph.into_plan();
    let name = std::any::type_name::<G>();
    let name = name.rsplit("::").next().unwrap_or(name);
    let recorder = Arc::new(Recorder::new(name, &plan));
    let spawn = move |task| spawn(task);
    let run = Run::new(
        plan,
        spawn,
        width,
        default_stack,
        Callback::new(done),
        Some(recorder.clone()),
    );
    let run = Arc::new(run);
    launch(&run, None);
    let abandon: Abandon = Box::new(move || run.abandon());
    (recorder, abandon)
}

/// Abandons a run started by [`start_traced`] (see `Run::abandoned`): for
/// a caller cancelled while it waits for the result.
pub(crate) type Abandon = Box<dyn FnOnce() + Send>;

/// Hands the sources out: the first `width` to runners of their own, the
/// others to the shared queue, before any runner can look for them. With
/// `here` (the caller's stack size), the first source's runner is returned
/// for the caller to run, if the source fits that stack. Then lets go of
/// the launcher's hold on the run, which ends it if every task is done.
fn launch<P, S, E>(run: &Arc<Run<P, S, E>>, here: Option<usize>) -> Option<Task>
where
    P: Plan,
    S: Fn(Task) + Send + Sync + 'static,
    E: End<P::Outputs>,
{
    // Also on an unwind (a panicking spawner), so that the run still ends.
    let _release = Release(&**run);
    if let Some(stack) = here {
        if let Some(own) = launch_here(run, stack) {
            return Some(own);
        }
    }
    let sources = run.plan().sources();
    let (first, rest) = sources.split_at(sources.len().min(run.width));
    run.lanes.extend_shared(rest);
    for &source in first {
        // Relaxed: no runner has started, so nothing else counts yet.
        run.runners.fetch_add(1, Ordering::Relaxed);
        (run.spawn)(Task::new(run.clone(), source, true));
    }
    None
}

/// The caller's part of a launch: if the first source fits the caller's
/// `stack`, the caller becomes the only runner, with that source; the other
/// sources are queued and a helper is called for them, so that the caller
/// never waits for a runner that has not started (it may well run every
/// node itself first). Returns `None`, having done nothing, when the
/// first source needs a bigger stack.
fn launch_here<P, S, E>(run: &Arc<Run<P, S, E>>, stack: usize) -> Option<Task>
where
    P: Plan,
    S: Fn(Task) + Send + Sync + 'static,
    E: End<P::Outputs>,
{
    let (&first, rest) = run.plan().sources().split_first()?;
    if !run.fits(first, stack) {
        return None;
    }
    // Relaxed: no runner has started, so nothing else counts yet.
    run.runners.fetch_add(1, Ordering::Relaxed);
    let own = Task::new(run.clone(), first, true);
    run.lanes.extend_shared(rest);
    if !rest.is_empty() {
        run.wake();
    }
    Some(own)
}

/// Runs `graph` to the end with `spawn`, blocking the calling thread (or
/// parking the calling fiber) until the result is in.
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
    let width = std::thread::available_parallelism().map_or(1, |n| n.get());
    run_here(graph, spawn, width, None, None, |_, _| {}, |_| {})
}
