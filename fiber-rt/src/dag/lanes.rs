//! Where a run keeps its ready nodes: one LIFO deque (a *lane*) per runner,
//! plus one shared FIFO queue.
//!
//! A runner pushes the successors it made ready, beyond the one it runs
//! inline, onto its own lane and pops them back newest first, so it walks
//! the graph depth first, touching memory it touched a moment ago, and
//! without a single contended atomic operation. A runner with nothing of
//! its own steals the oldest nodes of another lane (in a tree, the biggest
//! subtrees), a batch at a time. The shared queue holds the sources and
//! what tasks without a lane make ready.
//!
//! Lanes are made the first time a runner needs one and reused by the
//! runners that come after it, so a small graph run by one runner makes one.

use std::sync::{Mutex, OnceLock, PoisonError};

use crossbeam_deque::{Injector, Steal, Stealer, Worker};

/// The ready nodes of one run.
pub(crate) struct Lanes {
    /// Sources, and nodes made ready by tasks that hold no lane.
    shared: Injector<u32>,
    /// A fixed number of lanes, so that thieves can walk them without a lock.
    slots: Box<[LaneSlot]>,
}

/// One lane's two ends.
struct LaneSlot {
    /// The thieves' end, set once the lane is made.
    stealer: OnceLock<Stealer<u32>>,
    /// The owner's end while no runner holds it; the lock is only taken
    /// when a runner starts or ends.
    owner: Mutex<Option<Worker<u32>>>,
}

/// A lane held by one runner; handed back when dropped.
pub(crate) struct Lane<'a> {
    slot: &'a LaneSlot,
    /// Its position among the slots, so that steals skip it.
    index: usize,
    /// `Some` until dropped.
    worker: Option<Worker<u32>>,
}

impl Lanes {
    /// Room for `count` lanes, none made yet.
    pub(crate) fn new(count: usize) -> Self {
        Lanes {
            shared: Injector::new(),
            slots: (0..count.max(1))
                .map(|_| LaneSlot {
                    stealer: OnceLock::new(),
                    owner: Mutex::new(None),
                })
                .collect(),
        }
    }

    /// Queues a node on the shared queue.
    pub(crate) fn push_shared(&self, node: u32) {
        self.shared.push(node);
    }

    /// A free lane for a runner, made if need be; `None` when every lane
    /// is held (the runner then queues on the shared queue).
    pub(crate) fn take(&self) -> Option<Lane<'_>> {
        self.slots.iter().enumerate().find_map(|(index, slot)| {
            let mut owner = slot.owner.try_lock().ok()?;
            let worker = match owner.take() {
                Some(worker) => worker,
                // Never made: make it. (Made and absent means held.)
                None if slot.stealer.get().is_none() => {
                    let worker = Worker::new_lifo();
                    // Only the holder of the lock sets it, once.
                    let _ = slot.stealer.set(worker.stealer());
                    worker
                }
                None => return None,
            };
            Some(Lane {
                slot,
                index,
                worker: Some(worker),
            })
        })
    }

    /// Takes a ready node from the shared queue or another lane; with
    /// `into`, a batch of them moves to that lane and one is returned.
    pub(crate) fn steal(&self, into: Option<&Lane<'_>>) -> Option<u32> {
        let own = into.and_then(|lane| lane.worker.as_ref());
        let skip = into.map_or(usize::MAX, |lane| lane.index);
        loop {
            let mut retry = false;
            let shared = match own {
                Some(worker) => self.shared.steal_batch_and_pop(worker),
                None => self.shared.steal(),
            };
            let others = self
                .slots
                .iter()
                .enumerate()
                .filter(|&(index, _)| index != skip)
                .filter_map(|(_, slot)| slot.stealer.get());
            for attempt in std::iter::once(shared).chain(others.map(|stealer| match own {
                Some(worker) => stealer.steal_batch_and_pop(worker),
                None => stealer.steal(),
            })) {
                match attempt {
                    Steal::Success(node) => return Some(node),
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
            if !retry {
                return None;
            }
        }
    }

    /// Whether no node is queued anywhere.
    pub(crate) fn is_empty(&self) -> bool {
        self.shared.is_empty()
            && self
                .slots
                .iter()
                .filter_map(|slot| slot.stealer.get())
                .all(Stealer::is_empty)
    }

    /// Takes every node still queued, once no runner is left.
    pub(crate) fn drain(&mut self) -> Vec<u32> {
        std::iter::from_fn(|| self.steal(None)).collect()
    }
}

impl Lane<'_> {
    /// Pushes a node; returns whether the lane was empty before, in which
    /// case an idle runner may have missed it.
    pub(crate) fn push(&self, node: u32) -> bool {
        let worker = self.worker();
        let was_empty = worker.is_empty();
        worker.push(node);
        was_empty
    }

    /// The newest node of this lane.
    pub(crate) fn pop(&self) -> Option<u32> {
        self.worker().pop()
    }

    fn worker(&self) -> &Worker<u32> {
        self.worker
            .as_ref()
            .expect("a lane holds its deque until dropped")
    }
}

impl Drop for Lane<'_> {
    fn drop(&mut self) {
        *self
            .slot
            .owner
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = self.worker.take();
    }
}
