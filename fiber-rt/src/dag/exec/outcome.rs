//! How a run ends: its result once no task holds it, and the accounting
//! that makes every node run or be skipped exactly once whatever fails
//! (skips, dropped tasks, nodes lost to a runner's unwind).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::PoisonError;

use super::run::Run;
use super::task::{Resume, Task};
use super::{NAMED_SKIPS, POISONED, WAITING};
use crate::dag::end::End;
use crate::dag::error::{FailureKind, GraphError, NodeFailure};
use crate::dag::graph::Plan;

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
    pub(super) unsafe fn outcome(&self) -> Result<P::Outputs, GraphError> {
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
    pub(super) unsafe fn skip(&self, node: u32) {
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
    pub(super) fn lost_by_runner(&self, node: u32, poisoned: bool) {
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
    pub(super) fn drop_node(&self, node: u32) {
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
    pub(super) fn skip_dependents(&self, node: u32) {
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

    pub(super) fn record_failure(&self, node: u32, kind: FailureKind, message: String) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((node, kind, message));
    }
}

/// Drops a panic payload; one whose destructor panics in turn is dropped
/// as far as it goes and the second payload forgotten, never propagated.
pub(super) fn drop_quietly(payload: Box<dyn std::any::Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}
