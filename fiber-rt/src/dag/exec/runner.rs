//! A runner's loop: run a ready node (catching its panic), release its
//! successors (the first ready one runs next, inline), queue the others,
//! then take queued nodes until none is left; and what it tells the run
//! around that: its place while a node parks, the node it names in its
//! stack's header, and the node it was handed should it unwind.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::outcome::drop_quietly;
use super::run::Run;
use super::task::Task;
use super::{POISONED, WAITING};
use crate::dag::end::End;
use crate::dag::error::{panic_message, Failure, FailureKind};
use crate::dag::graph::Plan;
use crate::dag::lanes::Lane;
use crate::sched::park::{self, ParkHook};
use crate::sched::Cancelled;
use crate::stack::header::{NodeNames, StackHeader};

impl<P, S, E> Run<P, S, E>
where
    P: Plan,
    S: Fn(Task) + Send + Sync + 'static,
    E: End<P::Outputs>,
{
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
                    "the runtime shut down while it ran"
                } else {
                    "the fiber running it was cancelled by its handle"
                };
                self.record_failure(node, FailureKind::Cancelled, message.into());
                // What waits for it is skipped (counted and named), as for
                // any failed node; the rest of the run is abandoned.
                self.skip_dependents(node);
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
    pub(super) fn fits(&self, node: u32, stack: usize) -> bool {
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

impl<P, S, E> Run<P, S, E>
where
    P: Plan,
    S: Fn(Task) + Send + Sync + 'static,
    E: End<P::Outputs>,
{
    /// Runs `first` (if any), then what it makes ready, then queued nodes,
    /// until none is left for this task.
    pub(super) fn run_from(self: &Arc<Self>, first: Option<u32>, counted: bool, stack: usize) {
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
