//! Abandoning a run whose caller gave up (cancelled, or by a `timeout`):
//! the nodes not started yet are skipped, and the fibers the runtime
//! started for the run's tasks, listed here while they run it, are
//! cancelled.

use std::sync::atomic::Ordering;
use std::sync::{Mutex, PoisonError};

use super::run::Run;
use super::task::Task;
use crate::dag::end::End;
use crate::dag::graph::Plan;
use crate::sched::task_ref::TaskRef;

/// Abandons a run when dropped: on an unwind out of its caller's part.
pub(super) struct AbandonOnUnwind<'a, P: Plan, S, E: End<P::Outputs>>(pub(super) &'a Run<P, S, E>)
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

/// The fibers the runtime started for a run's tasks, while they run it:
/// slots, with the free ones listed, so that a fiber leaves in constant
/// time however many run.
#[derive(Default)]
pub(super) struct RunnerFibers(Mutex<Slots>);

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
pub(super) struct Enlisted<'a>(&'a RunnerFibers, Option<usize>);

impl<'a> Enlisted<'a> {
    pub(super) fn new(fibers: &'a RunnerFibers) -> Self {
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

impl<P, S, E> Run<P, S, E>
where
    P: Plan,
    S: Fn(Task) + Send + Sync + 'static,
    E: End<P::Outputs>,
{
    /// Skips every node not started yet (see `abandoned`), and cancels
    /// the fibers running nodes of the run now (but the calling one): a
    /// run whose caller gave up (cancelled, or by a `timeout`) leaves no
    /// node running on for nobody.
    pub(super) fn abandon(&self) {
        // Relaxed: see `step`; the fibers' list has a lock of its own. Once:
        // each fiber cancelled here abandons the run again as it unwinds,
        // and walking the list each time cost the square of its length
        // (24 000 sleeping nodes took 5 s to unwind).
        if !self.abandoned.swap(true, Ordering::Relaxed) {
            self.fibers.cancel_all();
        }
    }
}
