//! Where a run keeps its ready nodes: one LIFO deque (a *lane*) per runner,
//! plus one shared FIFO queue.
//!
//! A runner pushes the successors it made ready, beyond the one it runs
//! inline, onto its own lane and pops them back newest first, so it walks
//! the graph depth first, touching memory it touched a moment ago, and
//! without a single contended atomic operation. A runner with nothing of
//! its own steals the oldest nodes of another lane (in a tree, the biggest
//! subtrees), a batch at a time. The shared queue holds what tasks without
//! a lane make ready, and sources.
//!
//! A runner takes a lane only when it first has a node to queue (in many
//! small graphs, only one runner ever does), lanes are reused by the
//! runners that come after, and the table of lanes, with the deques made
//! in it, by later runs on the same thread: a run in its steady state
//! allocates none of it, and makes no lane anew.

use std::cell::{OnceCell, RefCell};
use std::sync::{Mutex, OnceLock, PoisonError};

use crossbeam_deque::{Steal, Stealer, Worker};

use super::shared_queue::SharedQueue;

/// How many nodes a thief moves from the shared queue to its lane at once,
/// at most.
const BATCH: usize = 32;

/// Spare lane tables a thread keeps for its next runs, at most.
const SPARE_TABLES: usize = 4;

thread_local! {
    /// Lane tables of runs that ended on this thread, every lane free and
    /// empty (made or not).
    static TABLES: RefCell<Vec<Box<[LaneSlot]>>> = const { RefCell::new(Vec::new()) };
}

/// The ready nodes of one run.
pub(crate) struct Lanes {
    shared: SharedQueue,
    /// A fixed number of lanes, so that thieves can walk them without a lock.
    slots: Box<[LaneSlot]>,
}

/// One lane's two ends.
struct LaneSlot {
    /// The thieves' end, set once the lane is made.
    stealer: OnceLock<Stealer<u32>>,
    /// The owner's end while no runner holds it; the lock is only taken
    /// when a runner takes or gives back the lane.
    owner: Mutex<Option<Worker<u32>>>,
}

/// One task's way of queueing nodes: its lane once it has one, else the
/// shared queue.
pub(crate) struct Lane<'a> {
    lanes: &'a Lanes,
    /// Whether the task may hold a lane at all.
    counted: bool,
    held: OnceCell<Held<'a>>,
}

/// A lane while a runner holds it; handed back when dropped.
struct Held<'a> {
    slot: &'a LaneSlot,
    /// Its position among the slots, so that steals skip it.
    index: usize,
    /// `Some` until dropped.
    worker: Option<Worker<u32>>,
}

impl Lanes {
    /// Room for `count` lanes, none made yet.
    pub(crate) fn new(count: usize) -> Self {
        let count = count.max(1);
        let spare = TABLES.try_with(|tables| {
            let mut tables = tables.borrow_mut();
            let index = tables.iter().position(|table| table.len() == count)?;
            Some(tables.swap_remove(index))
        });
        Lanes {
            shared: SharedQueue::default(),
            slots: spare.ok().flatten().unwrap_or_else(|| table(count)),
        }
    }

    /// Queues a node on the shared queue.
    pub(crate) fn push_shared(&self, node: u32) {
        self.shared.push(node);
    }

    /// Queues nodes on the shared queue, in their order.
    pub(crate) fn extend_shared(&self, nodes: &[u32]) {
        self.shared.extend(nodes);
    }

    /// The queueing end for a task; only a `counted` one (a runner, of
    /// which few run at once) ever takes a lane.
    pub(crate) fn lane(&self, counted: bool) -> Lane<'_> {
        Lane {
            lanes: self,
            counted,
            held: OnceCell::new(),
        }
    }

    /// A free lane, made if need be; `None` when every lane is held.
    fn take(&self) -> Option<Held<'_>> {
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
            Some(Held {
                slot,
                index,
                worker: Some(worker),
            })
        })
    }

    /// Takes a ready node from the shared queue or another lane; a batch
    /// of them moves to `into`'s lane if it holds one.
    pub(crate) fn steal(&self, into: &Lane<'_>) -> Option<u32> {
        let own = into.worker();
        let skip = into.held.get().map_or(usize::MAX, |held| held.index);
        let from_shared = match own {
            Some(worker) => self.shared.steal_batch(|node| worker.push(node), BATCH),
            None => self.shared.steal(),
        };
        if from_shared.is_some() {
            return from_shared;
        }
        loop {
            let mut retry = false;
            for (_, slot) in self.slots.iter().enumerate().filter(|&(i, _)| i != skip) {
                let Some(stealer) = slot.stealer.get() else {
                    continue;
                };
                let attempt = match own {
                    Some(worker) => stealer.steal_batch_and_pop(worker),
                    None => stealer.steal(),
                };
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
    pub(crate) fn drain(&self) -> Vec<u32> {
        if self.is_empty() {
            // The common case, at the end of every run: no batch steals.
            return Vec::new();
        }
        let nobody = self.lane(false);
        std::iter::from_fn(|| self.steal(&nobody)).collect()
    }
}

/// A table of `count` lanes, none made yet.
fn table(count: usize) -> Box<[LaneSlot]> {
    (0..count)
        .map(|_| LaneSlot {
            stealer: OnceLock::new(),
            owner: Mutex::new(None),
        })
        .collect()
}

impl Drop for Lanes {
    fn drop(&mut self) {
        // Keeps the table whole, its deques and their stealers, for the
        // next runs on this thread: no runner of this run is left to refer
        // to them, and a later run's thieves find them empty. (A thread
        // that is being torn down keeps nothing.)
        let mut table = std::mem::take(&mut self.slots);
        if !table.iter_mut().all(LaneSlot::is_reusable) {
            return;
        }
        let _ = TABLES.try_with(|tables| {
            let mut tables = tables.borrow_mut();
            if tables.len() < SPARE_TABLES {
                tables.push(table);
            }
        });
    }
}

impl LaneSlot {
    /// Whether a later run may take this lane as it is: free (no runner
    /// holds it), empty, and not poisoned (a lock poisoned by a panic
    /// would stay so). Every lane is free once its run is dropped, and
    /// empty once its run ended.
    fn is_reusable(&mut self) -> bool {
        let made = self.stealer.get().is_some();
        match self.owner.get_mut() {
            Ok(Some(worker)) => worker.is_empty(),
            Ok(None) => !made,
            Err(_) => false,
        }
    }
}

impl Lane<'_> {
    /// Queues a node; returns whether an idle runner may have missed it:
    /// when it went onto an empty lane or the shared queue.
    pub(crate) fn push(&self, node: u32) -> bool {
        match self.worker_or_take() {
            Some(worker) => {
                let was_empty = worker.is_empty();
                worker.push(node);
                was_empty
            }
            None => {
                self.lanes.push_shared(node);
                true
            }
        }
    }

    /// The newest node of this lane.
    pub(crate) fn pop(&self) -> Option<u32> {
        self.worker()?.pop()
    }

    fn worker(&self) -> Option<&Worker<u32>> {
        self.held.get()?.worker.as_ref()
    }

    /// The lane's deque, taking a lane first if this task may and has none.
    fn worker_or_take(&self) -> Option<&Worker<u32>> {
        if self.held.get().is_none() && self.counted {
            if let Some(held) = self.lanes.take() {
                let _ = self.held.set(held);
            }
        }
        self.worker()
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        *self
            .slot
            .owner
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = self.worker.take();
    }
}

#[cfg(test)]
mod tests {
    //! A run's lanes are kept whole for the next run on the thread: made
    //! lanes stay made, and a lane left with nodes, held, or poisoned
    //! is never handed to a later run.

    use super::{Lanes, TABLES};

    /// How many lanes of the tables this thread keeps are made.
    fn made_in_kept_tables() -> usize {
        TABLES.with_borrow(|tables| {
            tables
                .iter()
                .flat_map(|table| table.iter())
                .filter(|slot| slot.stealer.get().is_some())
                .count()
        })
    }

    #[test]
    fn an_emptied_tables_made_lanes_are_kept_for_the_next_run() {
        TABLES.with_borrow_mut(Vec::clear);
        let lanes = Lanes::new(3);
        {
            let lane = lanes.lane(true);
            lane.push(7);
            assert_eq!(lane.pop(), Some(7));
        }
        drop(lanes);
        assert_eq!(made_in_kept_tables(), 1);
        // The next run takes the table, and its made lane, back.
        let lanes = Lanes::new(3);
        assert_eq!(made_in_kept_tables(), 0);
        let lane = lanes.lane(true);
        lane.push(8);
        assert_eq!(
            lanes
                .slots
                .iter()
                .filter(|s| s.stealer.get().is_some())
                .count(),
            1
        );
        assert_eq!(lane.pop(), Some(8));
    }

    #[test]
    fn a_table_with_nodes_left_is_not_kept() {
        TABLES.with_borrow_mut(Vec::clear);
        let lanes = Lanes::new(2);
        {
            let lane = lanes.lane(true);
            lane.push(1);
        }
        drop(lanes);
        assert!(
            TABLES.with_borrow(Vec::is_empty),
            "a lane still held a node"
        );
    }
}
