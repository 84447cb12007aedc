//! A runner's handle on a run: [`Task`], what a spawner is given to run
//! somewhere, and [`Resume`], the type-erased face of the run it holds.

use std::fmt;
use std::sync::{Arc, Weak};

/// A runner of a running graph: it starts with a ready node (or with the
/// run's queued ready nodes). [`run`](Task::run) it once, on any thread;
/// it goes on to run nodes that become ready after it, and queued ones.
///
/// Dropping a task without running it fails its node with
/// [`FailureKind::Dropped`](crate::dag::FailureKind::Dropped) and skips the nodes that depend on it.
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
pub(super) const HELPER: u32 = u32::MAX;

impl Task {
    pub(super) fn new(run: Arc<dyn Resume>, node: u32, counted: bool) -> Self {
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
    pub(super) fn helper(run: Weak<dyn Resume>) -> Self {
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
pub(super) trait Resume: Send + Sync {
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
