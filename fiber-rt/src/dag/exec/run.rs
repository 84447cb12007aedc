//! A run's shared state ([`Run`]): the plan, the spawner, the lanes of
//! ready nodes and the counts that bound its runners; how runners take and
//! give up their places and call for helpers; and the [`Resume`] face a
//! [`Task`] holds.

use std::cell::UnsafeCell;
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use super::abandon::{Enlisted, RunnerFibers};
use super::task::{Resume, Task};
use crate::dag::end::End;
use crate::dag::error::FailureKind;
use crate::dag::graph::Plan;
use crate::dag::lanes::Lanes;
use crate::debug::recorder::Recorder;
use crate::stack::header::NodeNames;

/// The state one run shares between its tasks: one allocation, holding
/// the plan (with its output slots), the spawner and the place for the
/// result.
pub(super) struct Run<P: Plan, S, E> {
    /// Only `outcome` takes it mutably, once no task is left (see `plan`).
    pub(super) plan: UnsafeCell<P>,
    pub(super) spawn: S,
    /// Ready nodes that no runner has taken yet.
    pub(super) lanes: Lanes,
    /// Runners running and not parked: at most `width` are started.
    pub(super) runners: AtomicUsize,
    /// Set while a helper has been called for (spawned, or offered to idle
    /// workers) and has not started yet, so that a busy runner calls for
    /// one at a time, not one per queued node.
    pub(super) helper_pending: AtomicBool,
    pub(super) width: usize,
    /// The size of a default stack, for nodes that ask for none (`None`:
    /// unknown, see `fits`).
    pub(super) default_stack: Option<usize>,
    /// Nodes skipped because a dependency failed (or the run was
    /// abandoned); only touched on failure.
    pub(super) skipped: AtomicUsize,
    /// The first [`NAMED_SKIPS`](super::NAMED_SKIPS) of them, for the error's list of names.
    pub(super) skipped_named: Mutex<Vec<u32>>,
    /// Set when the run's caller, or a fiber running one of its nodes, was
    /// cancelled: the nodes not started yet are skipped, so that a
    /// cancelled run ends soon instead of running its independent
    /// branches for nobody. Read at every node; written once.
    pub(super) abandoned: AtomicBool,
    /// Nodes that panicked or returned `Err`; only touched on failure.
    pub(super) failures: Mutex<Vec<(u32, FailureKind, String)>>,
    /// The fibers running this run's tasks (its caller's aside), to
    /// cancel if the run is abandoned.
    pub(super) fibers: RunnerFibers,
    /// Tasks alive, plus one for the launcher while it hands sources out:
    /// the run ends when the last lets go.
    pub(super) holders: AtomicUsize,
    /// Receives the result.
    pub(super) end: E,
    /// Set for a traced run: times and workers of each node.
    pub(super) trace: Option<Arc<Recorder>>,
    /// Where the plan's node names are, for the headers of the stacks its
    /// nodes run on (which point here while they do).
    pub(super) names: NodeNames,
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
    #[inline]
    pub(super) fn new(
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
    #[inline]
    pub(super) fn plan(&self) -> &P {
        // SAFETY: the plan is only borrowed mutably in `outcome`, which
        // runs once the last task has let go of the run: nothing borrows
        // it then, and nothing borrows it afterwards.
        unsafe { &*self.plan.get() }
    }

    /// Per node: dependencies still running, plus the `POISONED` bit (the
    /// plan's own, see [`Plan::counters`]).
    #[inline]
    pub(super) fn counters(&self) -> &[AtomicU32] {
        self.plan().counters()
    }

    /// Calls for a helper for the node just queued if fewer than `width`
    /// runners run and no helper is on its way.
    ///
    /// The helper takes a place only once it starts. Until then, a runner
    /// that runs out of work and finds the node still queued takes it
    /// itself (see `retire`), so the node is never left waiting for a
    /// helper, and a caller that ran every node itself need not wait for
    /// the helper either: it does not hold the run open.
    pub(super) fn wake(self: &Arc<Self>) {
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
    pub(super) fn start_runner(self: &Arc<Self>) {
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
    #[inline]
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
    #[inline]
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
    #[inline]
    pub(super) fn retire(&self) -> bool {
        // Relaxed: ordered against the queue by the fence below.
        self.runners.fetch_sub(1, Ordering::Relaxed);
        // SeqCst: pairs with the fence in `wake`, so a node queued by
        // a pusher that saw no free place is seen here.
        fence(Ordering::SeqCst);
        self.lanes.is_empty() || !self.claim_runner()
    }
}

impl<P, S, E> Resume for Run<P, S, E>
where
    P: Plan,
    S: Fn(Task) + Send + Sync + 'static,
    E: End<P::Outputs>,
{
    #[inline]
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

    #[inline]
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

    #[inline]
    fn hold(&self) {
        // Relaxed: only a holder makes a task, so the count is not 0 and
        // cannot reach it meanwhile.
        self.holders.fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
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

/// Lets go of a task's hold on its run when dropped.
pub(super) struct Release<'a, R: Resume>(pub(super) &'a R);

impl<R: Resume> Drop for Release<'_, R> {
    fn drop(&mut self) {
        self.0.release();
    }
}
