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

use std::cell::UnsafeCell;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::end::{Callback, End, Waiting};
use super::error::{panic_message, Failure, FailureKind, GraphError, NodeFailure};
use super::graph::{Graph, Plan};
use super::lanes::{Lane, Lanes};
use crate::debug::recorder::Recorder;
use crate::sched::park::{self, ParkHook};
use crate::sched::task_ref::TaskRef;
use crate::sched::Cancelled;
use crate::stack::header::{NodeNames, StackHeader};

/// Runs a [`Task`] somewhere: on a fiber, a thread, a pool, or inline.
pub type Spawn = Arc<dyn Fn(Task) + Send + Sync>;

/// Receives the result of a run, exactly once.
pub type Done<O> = Box<dyn FnOnce(Result<O, GraphError>) + Send>;

/// Counter bit set when something a node depends on failed.
/// How many skipped nodes a failed run names in its error (it counts them
/// all): a failed graph of a million nodes names no million.
const NAMED_SKIPS: usize = 64;

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
    let run = Run::new(
        graph.into_plan(),
        spawn,
        width,
        default_stack,
        Waiting::new(),
        None,
    );
    let run = Arc::new(run);
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

/// Abandons a run when dropped: on an unwind out of its caller's part.
struct AbandonOnUnwind<'a, P: Plan, S, E: End<P::Outputs>>(&'a Run<P, S, E>)
where
    S: Fn(Task) + Send + Sync + 'static;

impl<P: Plan, S, E: End<P::Outputs>> Drop for AbandonOnUnwind<'_, P, S, E>
where
    S: Fn(Task) + Send + Sync + 'static,
{
    fn drop(&mut self) {
        self.0.abandon();
    }
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

/// A runner of a running graph: it starts with a ready node (or with the
/// run's queued ready nodes). [`run`](Task::run) it once, on any thread;
/// it goes on to run nodes that become ready after it, and queued ones.
///
/// Dropping a task without running it fails its node with
/// [`FailureKind::Dropped`] and skips the nodes that depend on it.
pub struct Task {
    /// `None` once `run` has taken it, so `Drop` knows the task ran; also
    /// `None` for a helper.
    run: Option<Arc<dyn Resume>>,
    /// A helper's run, if it is still there when the helper starts: a
    /// helper that comes too late then lets go of nothing but this, and
    /// the run's state is dropped where its last runner or its caller
    /// was, which keeps its memory and its lanes' deques on that thread.
    helper: Option<Weak<dyn Resume>>,
    /// The first node, or [`HELPER`].
    node: u32,
    /// Whether the task holds one of the run's `width` runner places.
    counted: bool,
}

/// The node of a task that starts with no node of its own: a *helper*,
/// which joins the run when it starts, if the run is still going and a
/// runner place is free, and takes queued nodes.
const HELPER: u32 = u32::MAX;

impl Task {
    fn new(run: Arc<dyn Resume>, node: u32, counted: bool) -> Self {
        run.hold();
        Task {
            run: Some(run),
            helper: None,
            node,
            counted,
        }
    }

    /// A helper: it holds the run's memory but does not hold the run open,
    /// so nobody waits for it to start, and it may find nothing to do.
    fn helper(run: Weak<dyn Resume>) -> Self {
        Task {
            run: None,
            helper: Some(run),
            node: HELPER,
            counted: true,
        }
    }

    /// Runs the node, then any successor it makes ready first, and so on,
    /// then queued ready nodes until none is left.
    ///
    /// A task that a run starts to take queued nodes off a busy runner (its
    /// [`name`](Task::name) is empty) may find that they were taken
    /// meanwhile, and return at once.
    pub fn run(self) {
        self.run_as(false);
    }

    /// [`run`](Task::run), on a fiber the runtime started for this task
    /// alone: the run lists the fiber meanwhile, and cancels it if it is
    /// abandoned. (A fiber of the caller's own spawner, which may go on to
    /// other work, is never cancelled by the run.)
    pub(crate) fn run_on_own_fiber(self) {
        self.run_as(true);
    }

    fn run_as(mut self, enlisted: bool) {
        if let Some(run) = self.helper.take() {
            if let Some(run) = run.upgrade() {
                run.help(enlisted);
            }
            return;
        }
        if let Some(run) = self.run.take() {
            let stack = run.stack_size(self.node);
            run.resume(self.node, self.counted, stack, enlisted);
        }
    }

    /// Runs the task like [`run`](Task::run) on a stack with room for
    /// `stack` bytes that was not made for it (the caller of a run): nodes
    /// that ask for more get tasks of their own.
    pub(crate) fn run_here(mut self, stack: usize) {
        if let Some(run) = self.run.take() {
            // The caller: it abandons the run itself as it unwinds.
            run.resume(self.node, self.counted, stack, false);
        }
    }

    /// For a task that starts by taking queued nodes, the address of its
    /// run (the same for every such task of one run), which
    /// `run_here`'s `withdraw` is called with.
    pub(crate) fn helper_of(&self) -> Option<usize> {
        let run = self.helper.as_ref()?;
        Some(Weak::as_ptr(run) as *const () as usize)
    }

    /// The first node's display name; empty for a task that starts by
    /// taking queued nodes.
    pub fn name(&self) -> &str {
        self.run.as_ref().map_or("", |run| run.name(self.node))
    }

    /// The stack size the first node asked for in bytes
    /// (`#[fiber(stack = ..)]`), 0 for the runtime's default (and for a
    /// task that starts by taking queued nodes: it hands any that needs a
    /// bigger stack to a task of its own).
    pub fn stack_size(&self) -> usize {
        self.run.as_ref().map_or(0, |run| run.stack_size(self.node))
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if let Some(run) = self.helper.take().and_then(|run| run.upgrade()) {
            // It held nothing; the next need calls another.
            run.helper_gone();
        }
        if let Some(run) = self.run.take() {
            run.dropped(self.node, self.counted);
            run.release();
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
    /// Runs from `node` on, on a stack with room for nodes asking for up
    /// to `stack` bytes (0: the runtime's default), then lets go of the
    /// task's hold on the run. A fiber the runtime started for the task
    /// is `enlisted` meanwhile, to be cancelled if the run is abandoned.
    fn resume(self: Arc<Self>, node: u32, counted: bool, stack: usize, enlisted: bool);
    /// Joins the run as a runner if it is still going and a place is free,
    /// and runs queued nodes (the [`Task::helper`] case); `enlisted` as
    /// for `resume`.
    fn help(self: Arc<Self>, enlisted: bool);
    /// A helper that was called for is gone, run or not.
    fn helper_gone(&self);
    fn name(&self, node: u32) -> &str;
    fn stack_size(&self, node: u32) -> usize;
    fn dropped(&self, node: u32, counted: bool);
    /// Counts a new task as holding the run open.
    fn hold(&self);
    /// Lets go of a task's hold; the last one ends the run.
    fn release(&self);
}

/// The state one run shares between its tasks: one allocation, holding
/// the plan (with its output slots), the spawner and the place for the
/// result.
struct Run<P: Plan, S, E> {
    /// Only `outcome` takes it mutably, once no task is left (see `plan`).
    plan: UnsafeCell<P>,
    spawn: S,
    /// Ready nodes that no runner has taken yet.
    lanes: Lanes,
    /// Runners running and not parked: at most `width` are started.
    runners: AtomicUsize,
    /// Set while a helper has been called for (spawned, or offered to idle
    /// workers) and has not started yet, so that a busy runner calls for
    /// one at a time, not one per queued node.
    helper_pending: AtomicBool,
    width: usize,
    /// The size of a default stack, for nodes that ask for none (`None`:
    /// unknown, see `fits`).
    default_stack: Option<usize>,
    /// Nodes skipped because a dependency failed (or the run was
    /// abandoned); only touched on failure.
    skipped: AtomicUsize,
    /// The first [`NAMED_SKIPS`] of them, for the error's list of names.
    skipped_named: Mutex<Vec<u32>>,
    /// Set when the run's caller, or a fiber running one of its nodes, was
    /// cancelled: the nodes not started yet are skipped, so that a
    /// cancelled run ends soon instead of running its independent
    /// branches for nobody. Read at every node; written once.
    abandoned: AtomicBool,
    /// Nodes that panicked or returned `Err`; only touched on failure.
    failures: Mutex<Vec<(u32, FailureKind, String)>>,
    /// The fibers running this run's tasks (its caller's aside), to
    /// cancel if the run is abandoned.
    fibers: RunnerFibers,
    /// Tasks alive, plus one for the launcher while it hands sources out:
    /// the run ends when the last lets go.
    holders: AtomicUsize,
    /// Receives the result.
    end: E,
    /// Set for a traced run: times and workers of each node.
    trace: Option<Arc<Recorder>>,
    /// Where the plan's node names are, for the headers of the stacks its
    /// nodes run on (which point here while they do).
    names: NodeNames,
}

// SAFETY: the only field that is not `Sync` by itself is the plan's cell,
// and it is only ever written through once no task shares the run any more
// (see `Run::plan`); otherwise it is shared like the `P: Sync` inside it.
unsafe impl<P: Plan, S: Sync, E: Sync> Sync for Run<P, S, E> {}

impl<P, S, E> Run<P, S, E>
where
    P: Plan,
    S: Fn(Task) + Send + Sync + 'static,
    E: End<P::Outputs>,
{
    fn new(
        plan: P,
        spawn: S,
        width: usize,
        default_stack: Option<usize>,
        end: E,
        trace: Option<Arc<Recorder>>,
    ) -> Self {
        let names = plan.node_names();
        Run {
            names,
            plan: UnsafeCell::new(plan),
            spawn,
            // A lane for each runner place, and as many again for runners
            // back from a park while their places were taken.
            lanes: Lanes::new(2 * width.max(1)),
            runners: AtomicUsize::new(0),
            helper_pending: AtomicBool::new(false),
            width: width.max(1),
            default_stack,
            skipped: AtomicUsize::new(0),
            skipped_named: Mutex::new(Vec::new()),
            abandoned: AtomicBool::new(false),
            failures: Mutex::new(Vec::new()),
            fibers: RunnerFibers::default(),
            holders: AtomicUsize::new(1),
            end,
            trace,
        }
    }

    /// The plan, shared by every task.
    fn plan(&self) -> &P {
        // SAFETY: the plan is only borrowed mutably in `outcome`, which
        // runs once the last task has let go of the run: nothing borrows
        // it then, and nothing borrows it afterwards.
        unsafe { &*self.plan.get() }
    }

    /// Per node: dependencies still running, plus the `POISONED` bit (the
    /// plan's own, see [`Plan::counters`]).
    #[inline]
    fn counters(&self) -> &[AtomicU32] {
        self.plan().counters()
    }

    /// Runs one node's body, catching a panic. Returns whether it succeeded.
    /// Inlined into the runner's loop; a failure is handled out of line.
    #[inline]
    fn execute(&self, node: u32) -> bool {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            // Each node is handed to one runner, once: a source is queued
            // once, any other node by the one runner that brings its
            // counter to zero, and a queued node is popped or stolen once.
            // SAFETY: so no other thread runs `node` meanwhile; the plan is
            // the run's own, and nothing outside it calls it during the run.
            unsafe { self.plan().run_node_once(node) }
        }));
        match outcome {
            Ok(Ok(())) => true,
            failed => self.failed(node, failed),
        }
    }

    /// Records how `node` failed (re-raising a cancellation); `false`.
    #[cold]
    #[inline(never)]
    fn failed(&self, node: u32, outcome: std::thread::Result<Result<(), Failure>>) -> bool {
        let (kind, message) = match outcome {
            Ok(Ok(())) => return true,
            Ok(Err(failure)) => (FailureKind::Returned, failure.message),
            Err(payload) if payload.is::<Cancelled>() => {
                // The fiber was cancelled (by its handle, or because the
                // runtime is shutting down): it unwinds to its base, out of
                // this run too (whose holds its guards let go of), instead
                // of going on with the next node.
                let by_shutdown = payload
                    .downcast_ref::<Cancelled>()
                    .is_some_and(|cancelled| cancelled.0.cancelled_by_shutdown());
                let message = if by_shutdown {
                    "its fiber was cancelled: the runtime shut down"
                } else {
                    "its fiber was cancelled by its handle"
                };
                self.record_failure(node, FailureKind::Dropped, message.into());
                self.abandon();
                resume_unwind(payload)
            }
            Err(payload) => {
                let message = panic_message(payload.as_ref());
                self.record_failure(node, FailureKind::Panicked, message);
                // Recorded first: a payload whose destructor panics must not
                // take the failure with it.
                drop_quietly(payload);
                return false;
            }
        };
        self.record_failure(node, kind, message);
        false
    }

    /// Tells `node`'s successors it finished (`ok`) or will never produce an
    /// output. Returns the highest-ranked successor that became ready, with
    /// whether it is poisoned, and queues any others on `lane` (or on the
    /// shared queue without one).
    ///
    /// Only a successor that fits on this task's stack (`stack`, the size
    /// its first node asked for; 0 is the runtime's default) continues
    /// inline: one that asks for a stack of its own is always spawned.
    fn release_successors(
        self: &Arc<Self>,
        node: u32,
        ok: bool,
        stack: usize,
        lane: &Lane<'_>,
    ) -> Option<(u32, bool)> {
        let mut next = None;
        // Lowest rank first: each ready successor displaces the one held
        // for running inline, which is queued, so the lane (a LIFO) hands
        // the queued ones back highest rank first.
        for &succ in self.plan().successors(node).iter().rev() {
            let counter = &self.counters()[succ as usize];
            // A node waiting for this one alone is ready now: no need for an
            // atomic operation (the common case in chains and trees, and
            // the last dependency of any node). Nothing else writes the
            // counter any more, and it stays at 1, which nothing reads.
            // Acquire: pairs with the other dependencies' AcqRel
            // decrements, so their outputs are visible to the successor.
            let seen = counter.load(Ordering::Acquire);
            let before = if ok && seen & WAITING == 1 {
                seen
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
            self.plan().prefetch(succ);
            if !self.fits(succ, stack) {
                (self.spawn)(Task::new(self.clone(), succ, false));
            } else if let Some((queued, _)) = next.replace((succ, before & POISONED != 0)) {
                self.queue(queued, lane);
            }
        }
        next
    }

    /// Queues a ready node on `lane` (or the shared queue), and starts a
    /// runner for it if a place is free and it may be needed.
    fn queue(self: &Arc<Self>, node: u32, lane: &Lane<'_>) {
        // A lane that already held nodes kept any idle runner from leaving
        // (`retire` looks at every lane), so only a node pushed onto an
        // empty lane (or the shared queue) needs to look for a free place.
        // A node is never lost either way: the lane's runner pops it at
        // the latest when its own work runs out.
        if lane.push(node) {
            self.wake();
        }
    }

    /// Whether `node` may run on a task whose stack has room for what its
    /// first node asked for, `stack` (0: the default): a node never runs on
    /// a smaller stack than it was promised (a default one included, on a
    /// task started by a node that asked for a small stack).
    fn fits(&self, node: u32, stack: usize) -> bool {
        let wants = self.plan().stack_size(node);
        if wants == stack {
            return true;
        }
        // With the default's size unknown, nothing else is taken to fit in
        // a default stack, nor a default stack's node in anything else.
        match (self.stack_of(wants), self.stack_of(stack)) {
            (Some(wants), Some(has)) => wants <= has,
            _ => false,
        }
    }

    /// The size of a stack asked for as `request` (0: the default).
    fn stack_of(&self, request: usize) -> Option<usize> {
        match request {
            0 => self.default_stack,
            size => Some(size),
        }
    }

    /// Whether a dependency of `node`, which is ready, failed.
    fn poisoned(&self, node: u32) -> bool {
        // Relaxed: the poison bit was set before the node became ready, and
        // whatever handed the node over (the queue, a spawn, this thread)
        // orders that before this load.
        self.counters()[node as usize].load(Ordering::Relaxed) & POISONED != 0
    }

    /// Calls for a helper for the node just queued if fewer than `width`
    /// runners run and no helper is on its way.
    ///
    /// The helper takes a place only once it starts. Until then, a runner
    /// that runs out of work and finds the node still queued takes it
    /// itself (see `retire`), so the node is never left waiting for a
    /// helper, and a caller that ran every node itself need not wait for
    /// the helper either: it does not hold the run open.
    fn wake(self: &Arc<Self>) {
        // SeqCst: pairs with the fences in `retire` (and `parking`) and
        // `help`: either that runner or helper sees the node just queued,
        // or this sees its place free, or the helper not yet started.
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence above.
        if self.runners.load(Ordering::Relaxed) >= self.width
            || self.helper_pending.load(Ordering::Relaxed)
            || self.helper_pending.swap(true, Ordering::Relaxed)
        {
            return;
        }
        let weak: Weak<Self> = Arc::downgrade(self);
        (self.spawn)(Task::helper(weak));
    }

    /// Spawns a runner for the place the caller claimed, starting with a
    /// queued node (so that the runner's fiber gets the stack that node
    /// asks for).
    fn start_runner(self: &Arc<Self>) {
        let first = loop {
            match self.lanes.steal(&self.lanes.lane(false)) {
                Some(node) => break node,
                // Another runner took it: give the place back, unless
                // more was queued meanwhile.
                None if self.retire() => return,
                None => {}
            }
        };
        (self.spawn)(Task::new(self.clone(), first, true));
    }

    /// Takes a runner place if fewer than `width` are taken.
    fn claim_runner(&self) -> bool {
        // Relaxed: the count only bounds how many runners start; the
        // fences around the queue order it against pushes.
        let mut taken = self.runners.load(Ordering::Relaxed);
        while taken < self.width {
            // Relaxed: as above.
            match self.runners.compare_exchange_weak(
                taken,
                taken + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => taken = now,
            }
        }
        false
    }

    /// Holds the run open for a helper that is starting, unless it has
    /// ended already (no holder is left, and none can come back).
    fn try_hold(&self) -> bool {
        // Relaxed: like `hold`; a count of 0 is final, so a helper that
        // sees a higher one holds a run that has not ended.
        let mut holders = self.holders.load(Ordering::Relaxed);
        while holders > 0 {
            // Relaxed: as above.
            match self.holders.compare_exchange_weak(
                holders,
                holders + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => holders = now,
            }
        }
        false
    }

    /// Gives up the caller's runner place; `true` if it may leave, `false`
    /// if a node was queued meanwhile and it took a place again to run it.
    fn retire(&self) -> bool {
        // Relaxed: ordered against the queue by the fence below.
        self.runners.fetch_sub(1, Ordering::Relaxed);
        // SeqCst: pairs with the fence in `wake`, so a node queued by
        // a pusher that saw no free place is seen here.
        fence(Ordering::SeqCst);
        self.lanes.is_empty() || !self.claim_runner()
    }

    /// The next queued node: the newest of `lane`, else one stolen from
    /// the shared queue or another lane. One that needs a bigger stack than
    /// `stack` gets a task of its own instead.
    fn pop_ready(self: &Arc<Self>, lane: &Lane<'_>, stack: usize) -> Option<u32> {
        loop {
            let node = lane.pop().or_else(|| self.lanes.steal(lane))?;
            if self.fits(node, stack) {
                return Some(node);
            }
            (self.spawn)(Task::new(self.clone(), node, false));
        }
    }
}

/// A counted runner's park hook: while one of its nodes is parked, the
/// runner gives its place up, and a new runner takes the queued nodes if
/// any, its lane's included.
///
/// A runner on a fiber that is itself a node of another run (the caller
/// of a nested run, running it) passes the park on to that run's hook, so
/// the outer runner's place is free too, as it would be if the caller
/// waited for the nested run instead.
struct RunnerHook<'a, P: Plan, S, E> {
    run: &'a Arc<Run<P, S, E>>,
    /// The hook this one is installed over, if any.
    outer: Option<*const dyn ParkHook>,
}

impl<'a, P: Plan, S, E> RunnerHook<'a, P, S, E> {
    fn new(run: &'a Arc<Run<P, S, E>>) -> Self {
        RunnerHook {
            run,
            outer: park::installed_hook(),
        }
    }

    fn outer(&self) -> Option<&dyn ParkHook> {
        // SAFETY: the outer hook's guard lives further down this fiber's
        // stack than this hook's own (which is only ever installed on the
        // fiber that made it, see `resume`), so it is live while this is.
        self.outer.map(|outer| unsafe { &*outer })
    }
}

impl<P, S, E> ParkHook for RunnerHook<'_, P, S, E>
where
    P: Plan,
    S: Fn(Task) + Send + Sync + 'static,
    E: End<P::Outputs>,
{
    fn parking(&self) {
        if !self.run.retire() {
            // `retire` took the place again because nodes are queued: give
            // it to a new runner for them.
            self.run.start_runner();
        }
        if let Some(outer) = self.outer() {
            outer.parking();
        }
    }

    fn resumed(&self) {
        if let Some(outer) = self.outer() {
            outer.resumed();
        }
        // Relaxed: only bounds how many runners start. Back from a park the
        // runner holds a place again, even if that briefly makes more than
        // `width`.
        self.run.runners.fetch_add(1, Ordering::Relaxed);
    }
}

impl<P, S, E> Resume for Run<P, S, E>
where
    P: Plan,
    S: Fn(Task) + Send + Sync + 'static,
    E: End<P::Outputs>,
{
    fn resume(self: Arc<Self>, first: u32, counted: bool, stack: usize, enlisted: bool) {
        // Also on an unwind, so that the run still ends.
        let _release = Release(&*self);
        let _enlisted = enlisted.then(|| Enlisted::new(&self.fibers));
        self.run_from(Some(first), counted, stack);
    }

    fn help(self: Arc<Self>, enlisted: bool) {
        self.helper_gone();
        // SeqCst: pairs with the fence in `wake`: a runner that saw this
        // helper as pending, and so called no other, queued its node
        // before this looks for a place and for queued nodes.
        fence(Ordering::SeqCst);
        if !self.try_hold() {
            // The run ended before this helper started.
            return;
        }
        // Also on an unwind, so that the run still ends.
        let _release = Release(&*self);
        let _enlisted = enlisted.then(|| Enlisted::new(&self.fibers));
        if self.claim_runner() {
            // More queued than this helper takes at once: call the next
            // one, so that runners keep joining up to `width` (a runner
            // only calls when it queues onto an empty lane).
            if !self.lanes.is_empty() {
                self.wake();
            }
            // On the default stack: `pop_ready` hands a node that asks
            // for more to a task of its own.
            self.run_from(None, true, 0);
        }
    }

    fn helper_gone(&self) {
        // Relaxed: only bounds how many helpers are spawned (see `wake`).
        self.helper_pending.store(false, Ordering::Relaxed);
    }

    fn name(&self, node: u32) -> &str {
        self.plan().name(node)
    }

    fn stack_size(&self, node: u32) -> usize {
        self.plan().stack_size(node)
    }

    fn dropped(&self, node: u32, counted: bool) {
        if counted {
            // Relaxed: the place is free; a queued node is not lost either
            // way, since `outcome` fails every node left in the queue.
            self.runners.fetch_sub(1, Ordering::Relaxed);
        }
        self.record_failure(
            node,
            FailureKind::Dropped,
            "its task was dropped before it ran".into(),
        );
        self.drop_node(node);
    }

    fn hold(&self) {
        // Relaxed: only a holder makes a task, so the count is not 0 and
        // cannot reach it meanwhile.
        self.holders.fetch_add(1, Ordering::Relaxed);
    }

    fn release(&self) {
        // AcqRel: Release hands what this task did (its failures, its
        // nodes' outputs) to the last one; Acquire, in the last one, sees
        // what every other task did.
        if self.holders.fetch_sub(1, Ordering::AcqRel) == 1 {
            // SAFETY: this was the last hold: no task is left to borrow
            // the plan, and none can be made.
            let result = unsafe { self.outcome() };
            self.end.end(result);
        }
    }
}

/// Names the nodes a runner runs in the header of the stack it runs on,
/// for messages and dumps (see `StackHeader::node`), and gives the header
/// back as it was when dropped: to the node of an outer run, if this run
/// runs inside one.
struct Naming<'a> {
    header: &'a StackHeader,
    outer: (u32, *const NodeNames),
}

impl<'a> Naming<'a> {
    fn new(header: &'a StackHeader, names: &NodeNames) -> Self {
        let outer = (header.node.replace(0), header.node_names.replace(names));
        Naming { header, outer }
    }

    /// `node` runs from now until `ended`.
    #[inline]
    fn started(&self, node: u32) {
        self.header.node.set(node + 1);
    }

    #[inline]
    fn ended(&self) {
        self.header.node.set(0);
    }
}

impl Drop for Naming<'_> {
    fn drop(&mut self) {
        self.header.node.set(self.outer.0);
        self.header.node_names.set(self.outer.1);
    }
}

/// The fibers the runtime started for a run's tasks, while they run it:
/// slots, with the free ones listed, so that a fiber leaves in constant
/// time however many run.
#[derive(Default)]
struct RunnerFibers(Mutex<Slots>);

#[derive(Default)]
struct Slots {
    fibers: Vec<Option<TaskRef>>,
    free: Vec<usize>,
}

impl RunnerFibers {
    /// Cancels every fiber listed but the calling one, which is the one
    /// abandoning the run (and unwinding, or about to). Outside the lock:
    /// a cancelled fiber that wakes leaves the list at once.
    fn cancel_all(&self) {
        let me = crate::sched::task::Task::current().map(|task| task as *const _);
        let listed: Vec<TaskRef> = {
            let slots = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            slots.fibers.iter().flatten().cloned().collect()
        };
        for fiber in listed.iter().filter(|fiber| Some(fiber.as_ptr()) != me) {
            fiber.cancel();
        }
    }
}

/// Lists the calling fiber, if it is one, among a run's while it lives.
struct Enlisted<'a>(&'a RunnerFibers, Option<usize>);

impl<'a> Enlisted<'a> {
    fn new(fibers: &'a RunnerFibers) -> Self {
        let slot = crate::sched::task::Task::current().map(|task| {
            let mut slots = fibers.0.lock().unwrap_or_else(PoisonError::into_inner);
            let fiber = Some(task.arc());
            match slots.free.pop() {
                Some(slot) => {
                    slots.fibers[slot] = fiber;
                    slot
                }
                None => {
                    slots.fibers.push(fiber);
                    slots.fibers.len() - 1
                }
            }
        });
        Enlisted(fibers, slot)
    }
}

impl Drop for Enlisted<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.1 {
            let mut slots = self.0 .0.lock().unwrap_or_else(PoisonError::into_inner);
            let fiber = slots.fibers[slot].take();
            slots.free.push(slot);
            drop(slots);
            // The reference goes outside the lock.
            drop(fiber);
        }
    }
}

/// A node handed to a runner that has not run it yet, settled if the
/// runner unwinds first: dropped only on an unwind (the runner forgets it
/// otherwise).
struct HandedOver<'a, P: Plan, S, E: End<P::Outputs>>(&'a Run<P, S, E>, Option<(u32, bool)>)
where
    S: Fn(Task) + Send + Sync + 'static;

impl<P: Plan, S, E: End<P::Outputs>> Drop for HandedOver<'_, P, S, E>
where
    S: Fn(Task) + Send + Sync + 'static,
{
    fn drop(&mut self) {
        if let Some((node, poisoned)) = self.1 {
            self.0.lost_by_runner(node, poisoned);
        }
    }
}

/// Lets go of a task's hold on its run when dropped.
struct Release<'a, R: Resume>(&'a R);

impl<R: Resume> Drop for Release<'_, R> {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl<P, S, E> Run<P, S, E>
where
    P: Plan,
    S: Fn(Task) + Send + Sync + 'static,
    E: End<P::Outputs>,
{
    /// Runs `first` (if any), then what it makes ready, then queued nodes,
    /// until none is left for this task.
    fn run_from(self: &Arc<Self>, first: Option<u32>, counted: bool, stack: usize) {
        // A counted runner gives its place up while a node parks (and so
        // does the runner of a run this fiber is a node of, if any).
        let hook = counted.then(|| RunnerHook::new(self));
        let _guard = hook
            .as_ref()
            .map(|hook| park::HookGuard::install(hook as &dyn ParkHook));
        let lane = self.lanes.lane(counted);
        let lane = &lane;
        // The stack the nodes run on (a runner never leaves it), which
        // names the node running there for messages and dumps.
        // SAFETY: the header of the stack this code runs on, which is live
        // while it does.
        let naming =
            StackHeader::current().map(|header| Naming::new(unsafe { &*header }, &self.names));
        let naming = naming.as_ref();
        // A spawner hands the task over to another thread in a way that
        // orders the poison bit's write before this read.
        let mut next = first.map(|first| (first, self.poisoned(first)));
        loop {
            while let Some((node, poisoned)) = next {
                next = self.step(node, poisoned, stack, lane, naming);
                // A runner may go on through thousands of nodes: it yields
                // here when its slice is over, as a fiber's loop does at
                // its probe. Without it the backstop took its worker away
                // from it, and each long run started threads of its own.
                // A cancellation raised there (the shutdown's, or its
                // caller's handle) unwinds out of the run with the node
                // just handed over: the guard settles it on the way out.
                if fiber_asm::preempt_flag() != 0 {
                    self.yield_holding(next);
                }
            }
            next = self
                .pop_ready(lane, stack)
                .map(|node| (node, self.poisoned(node)));
            if next.is_none() && (!counted || self.retire()) {
                return;
            }
        }
    }

    /// Yields at the slice's end between two nodes, holding `next`, the
    /// node just handed to this runner (see `HandedOver`).
    #[cold]
    #[inline(never)]
    fn yield_holding(&self, next: Option<(u32, bool)>) {
        let handed = HandedOver(self, next);
        crate::preempt::point();
        std::mem::forget(handed);
    }

    /// Runs (or skips) one ready node and releases its successors; returns
    /// the successor to run next on this task.
    fn step(
        self: &Arc<Self>,
        node: u32,
        poisoned: bool,
        stack: usize,
        lane: &Lane<'_>,
        naming: Option<&Naming<'_>>,
    ) -> Option<(u32, bool)> {
        // Relaxed: a node started after the flag is set runs for nothing,
        // but runs correctly; the flag only saves work.
        let ok = if poisoned || self.abandoned.load(Ordering::Relaxed) {
            // SAFETY: each node is handed to one runner once (see
            // `execute`), which either runs or, here, skips it.
            unsafe { self.skip(node) };
            false
        } else {
            if let Some(naming) = naming {
                naming.started(node);
            }
            let ok = if let Some(trace) = &self.trace {
                // The untraced path pays this one predictable branch.
                trace.started(node);
                let ok = self.execute(node);
                trace.finished(node);
                ok
            } else {
                self.execute(node)
            };
            if let Some(naming) = naming {
                naming.ended();
            }
            ok
        };
        self.release_successors(node, ok, stack, lane)
    }
}

impl<P, S, E> Run<P, S, E>
where
    P: Plan,
    S: Fn(Task) + Send + Sync + 'static,
    E: End<P::Outputs>,
{
    /// The run's result, computed once no task holds the state any more.
    /// Every node that did not succeed traces back to a recorded failure (a
    /// panic, an `Err`, or a dropped task), so no failures means success.
    ///
    /// # Safety
    ///
    /// Called once, by the task that let go of the run's last hold: no
    /// other task is left to borrow the plan.
    unsafe fn outcome(&self) -> Result<P::Outputs, GraphError> {
        // Nodes still queued lost their runners (dropped by a spawner).
        for node in self.lanes.drain() {
            self.dropped(node, false);
        }
        let mut failed =
            std::mem::take(&mut *self.failures.lock().unwrap_or_else(PoisonError::into_inner));
        if failed.is_empty() {
            // SAFETY: no task is left (the caller's contract), and this is
            // the only mutable borrow of the plan, the last borrow of all.
            let plan = unsafe { &mut *self.plan.get() };
            return match catch_unwind(AssertUnwindSafe(|| plan.finish())) {
                Ok(Some(outputs)) => Ok(outputs),
                _ => Err(GraphError::new(Vec::new(), 0, Vec::new())),
            };
        }
        failed.sort_by_key(|(node, _, _)| *node);
        let failures = failed
            .into_iter()
            .map(|(node, kind, message)| NodeFailure {
                node: self.plan().name(node).to_owned(),
                kind,
                message,
            })
            .collect();
        let mut named = std::mem::take(
            &mut *self
                .skipped_named
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        named.sort_unstable();
        let named = named
            .into_iter()
            .map(|node| self.plan().name(node).to_owned())
            .collect();
        // Relaxed: as in `step`.
        let skipped = self.skipped.load(Ordering::Relaxed);
        Err(GraphError::new(failures, skipped, named))
    }

    /// Counts `node` skipped, and drops what it would have consumed now,
    /// not with the plan at the end: an independent node may be waiting
    /// for it to go (a channel's sender in its closure, say).
    ///
    /// # Safety
    ///
    /// `node` never runs, and is skipped once (see `Plan::skip_node`).
    unsafe fn skip(&self, node: u32) {
        // Relaxed: read only in `outcome`, after every task has let go of
        // its hold, which orders this before it.
        if self.skipped.fetch_add(1, Ordering::Relaxed) < NAMED_SKIPS {
            self.skipped_named
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(node);
        }
        // SAFETY: the caller's contract.
        let skipped = catch_unwind(AssertUnwindSafe(|| unsafe { self.plan().skip_node(node) }));
        if let Err(payload) = skipped {
            drop_quietly(payload);
        }
    }

    /// `node`, handed to the calling runner, will never run: the runner
    /// unwinds (cancelled) before it could. The run is being abandoned or
    /// its runtime shut down, but its result may still be read (a plain
    /// thread waiting for a run the shutdown cut short): the error names
    /// the node, unless it was to be skipped anyway, and counts its
    /// dependents as skipped.
    #[cold]
    #[inline(never)]
    fn lost_by_runner(&self, node: u32, poisoned: bool) {
        if poisoned {
            // SAFETY: handed to this runner alone, which never runs it.
            unsafe { self.skip(node) };
            self.skip_dependents(node);
        } else {
            self.record_failure(
                node,
                FailureKind::Dropped,
                "its runner was cancelled before it could run it".into(),
            );
            self.drop_node(node);
        }
        self.abandon();
    }

    /// `node` will never run (its task was dropped unrun): what it would
    /// have consumed goes, and every node that waits for it is skipped.
    fn drop_node(&self, node: u32) {
        // SAFETY: a dropped task's node was handed to it alone, and never
        // runs; the skip below drops what it would have consumed, once.
        let consumed = catch_unwind(AssertUnwindSafe(|| unsafe { self.plan().skip_node(node) }));
        if let Err(payload) = consumed {
            drop_quietly(payload);
        }
        self.skip_dependents(node);
    }

    /// Skips every node that waits for `node`, which will never produce
    /// an output, here, as a failed node's are by the runners (so that the
    /// error counts and names them), and theirs in turn.
    fn skip_dependents(&self, node: u32) {
        let plan = self.plan();
        let mut released = vec![node];
        while let Some(node) = released.pop() {
            for &succ in plan.successors(node) {
                let counter = &self.counters()[succ as usize];
                // Relaxed, then AcqRel: as for a failed node's successors
                // in `release_successors`.
                counter.fetch_or(POISONED, Ordering::Relaxed);
                if counter.fetch_sub(1, Ordering::AcqRel) & WAITING == 1 {
                    // SAFETY: the last of its dependencies to be released
                    // hands a node over once; a poisoned one never runs.
                    unsafe { self.skip(succ) };
                    released.push(succ);
                }
            }
        }
    }

    /// Skips every node not started yet (see `abandoned`), and cancels
    /// the fibers running nodes of the run now (but the calling one): a
    /// run whose caller gave up (cancelled, or by a `timeout`) leaves no
    /// node running on for nobody.
    fn abandon(&self) {
        // Relaxed: see `step`; the fibers' list has a lock of its own. Once:
        // each fiber cancelled here abandons the run again as it unwinds,
        // and walking the list each time cost the square of its length
        // (24 000 sleeping nodes took 5 s to unwind).
        if !self.abandoned.swap(true, Ordering::Relaxed) {
            self.fibers.cancel_all();
        }
    }

    fn record_failure(&self, node: u32, kind: FailureKind, message: String) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((node, kind, message));
    }
}

/// Drops a panic payload; one whose destructor panics in turn is dropped
/// as far as it goes and the second payload forgotten, never propagated.
fn drop_quietly(payload: Box<dyn std::any::Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}
