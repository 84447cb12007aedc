//! Graph runs asking idle workers for help.
//!
//! A graph run that queues nodes while fewer runners than workers run
//! calls for a helper (see `dag::exec`). Made into a fiber at once, a
//! helper costs its caller a spawn, and the worker that picks it up a
//! share of the run's memory, even when the run (a small graph) is over
//! before the helper starts, which is most of the time. So the helper is
//! *offered* here instead. A worker with nothing to do looks at the offers
//! in its search before sleeping, about every microsecond; a busy one
//! every few dozen fibers it runs, as it looks at the global queue, so
//! that an offer gets its turn under full load too. A worker only takes an
//! offer that was already seen on an earlier look: a run that ends sooner
//! withdraws its offer, and nothing of it crossed to another thread. A run
//! whose nodes take longer gets its helper a little later than a spawn
//! would have given it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::dag::Task;

/// The offers of every run of one runtime.
#[derive(Default)]
pub(crate) struct Offers {
    list: Mutex<Vec<Offer>>,
    /// How many offers `list` holds, read without the lock.
    count: AtomicUsize,
}

struct Offer {
    /// The run that made it, to withdraw it by.
    run: usize,
    task: Task,
    /// Whether a worker has looked at it already.
    seen: bool,
}

impl Offers {
    /// Offers `task`, a helper for the run at address `run`.
    pub(crate) fn offer(&self, run: usize, task: Task) {
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        list.push(Offer {
            run,
            task,
            seen: false,
        });
        // Relaxed: a hint for readers, who take the lock before they
        // trust it (see `take_seen`).
        self.count.store(list.len(), Ordering::Relaxed);
    }

    /// Whether any offer is waiting: part of the check a worker makes
    /// before it sleeps, so that none sleeps over an offer.
    pub(crate) fn any(&self) -> bool {
        // SeqCst: pairs with the fence in `Registry::notify_work`, which
        // follows every offer (see sched/sleep/README.md).
        self.count.load(Ordering::SeqCst) > 0
    }

    /// An offer that a worker had already seen on an earlier call; marks
    /// the others seen.
    pub(crate) fn take_seen(&self) -> Option<Task> {
        // Relaxed: a stale 0 only delays the take to the worker's next
        // look; the lock orders everything else.
        if self.count.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        let taken = match list.iter().position(|offer| offer.seen) {
            Some(index) => Some(list.swap_remove(index).task),
            None => {
                list.iter_mut().for_each(|offer| offer.seen = true);
                None
            }
        };
        // Relaxed: as in `offer`.
        self.count.store(list.len(), Ordering::Relaxed);
        taken
    }

    /// Withdraws the offer of the run at address `run`, if still there. A
    /// run has one at most: it calls for the next helper only once the
    /// last has started (and left this list) or is gone.
    pub(crate) fn withdraw(&self, run: usize) {
        // Relaxed: the run's end ordered its offers (made by its runners)
        // before this; and an offer left behind would do no harm: the
        // worker that takes it finds the run over.
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        let index = list.iter().position(|offer| offer.run == run);
        let withdrawn = index.map(|index| list.swap_remove(index).task);
        // Relaxed: as in `offer`.
        self.count.store(list.len(), Ordering::Relaxed);
        drop(list);
        // Dropped outside the lock: a dropped helper tells its run.
        drop(withdrawn);
    }

    /// Takes every offer, for a runtime shutting down.
    pub(crate) fn clear(&self) -> Vec<Task> {
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        // Relaxed: as in `offer`.
        self.count.store(0, Ordering::Relaxed);
        list.drain(..).map(|offer| offer.task).collect()
    }
}
