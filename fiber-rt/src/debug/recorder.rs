//! What a traced graph run records while it runs: per node, when it
//! started and ended, on which worker, and how often it was preempted.
//! Each node runs once, so each slot has one writer; the run's end orders
//! every write before [`Recorder::finish`] reads them.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::trace::{NodeTrace, Span, Trace};
use crate::dag::graph::Plan;
use crate::sched::task::Task;

/// A node's start or end that was never recorded.
const UNSET: u64 = 0;
/// A node that ran outside any worker.
const NO_WORKER: usize = usize::MAX;

#[derive(Default)]
struct Slot {
    /// Nanoseconds since the run's start, plus one (0: not recorded).
    start: AtomicU64,
    end: AtomicU64,
    worker: AtomicUsize,
    /// The fiber's preemption count when the node started, then the
    /// number of preemptions during the node.
    preemptions: AtomicU32,
}

/// The recording of one run; made by the executor when a run is traced.
pub(crate) struct Recorder {
    graph: String,
    origin: Instant,
    names: Vec<String>,
    successors: Vec<Vec<usize>>,
    slots: Box<[Slot]>,
}

impl Recorder {
    /// A recorder for a run of `plan`; time counts from now.
    pub(crate) fn new(graph: &str, plan: &impl Plan) -> Recorder {
        let len = plan.len();
        Recorder {
            graph: graph.to_owned(),
            origin: Instant::now(),
            names: (0..len as u32).map(|n| plan.name(n).to_owned()).collect(),
            successors: (0..len as u32)
                .map(|n| plan.successors(n).iter().map(|&s| s as usize).collect())
                .collect(),
            slots: (0..len).map(|_| Slot::default()).collect(),
        }
    }

    fn now(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64 + 1
    }

    /// `node` starts running on the calling fiber.
    pub(crate) fn started(&self, node: u32) {
        let slot = &self.slots[node as usize];
        let (worker, preempted) = match Task::current() {
            // SAFETY: `task` is the running task, on its own fiber.
            Some(task) => (
                unsafe { task.worker() }.index,
                // Relaxed: written by this same fiber.
                task.preemptions.load(Ordering::Relaxed),
            ),
            None => (NO_WORKER, 0),
        };
        // Relaxed, here and below: one writer per slot, and the run's end
        // (every task letting go of the run) orders these before `finish`.
        slot.worker.store(worker, Ordering::Relaxed);
        slot.preemptions.store(preempted, Ordering::Relaxed);
        slot.start.store(self.now(), Ordering::Relaxed);
    }

    /// `node` returned (or panicked) on the calling fiber.
    pub(crate) fn finished(&self, node: u32) {
        let slot = &self.slots[node as usize];
        let end = self.now();
        // Relaxed: see `started`.
        let now_preempted = Task::current().map_or(0, |t| t.preemptions.load(Ordering::Relaxed));
        let before = slot.preemptions.load(Ordering::Relaxed);
        slot.preemptions
            .store(now_preempted.wrapping_sub(before), Ordering::Relaxed);
        slot.end.store(end, Ordering::Relaxed);
    }

    /// The trace, once the run has ended.
    pub(crate) fn finish(&self) -> Trace {
        let wall = Duration::from_nanos(self.now() - 1);
        let nodes = self
            .names
            .iter()
            .zip(&self.successors)
            .zip(self.slots.iter())
            .map(|((name, successors), slot)| {
                // Relaxed: see `started`.
                let start = slot.start.load(Ordering::Relaxed);
                let end = slot.end.load(Ordering::Relaxed);
                let worker = slot.worker.load(Ordering::Relaxed);
                let span = (start != UNSET && end != UNSET).then(|| Span {
                    start: Duration::from_nanos(start - 1),
                    end: Duration::from_nanos(end - 1),
                    worker: (worker != NO_WORKER).then_some(worker),
                    preemptions: slot.preemptions.load(Ordering::Relaxed),
                });
                NodeTrace {
                    name: name.clone(),
                    successors: successors.clone(),
                    span,
                }
            })
            .collect();
        Trace::new(self.graph.clone(), nodes, wall)
    }
}
