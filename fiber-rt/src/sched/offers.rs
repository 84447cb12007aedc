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
//! offer that was already there at its previous look: a run that ends
//! sooner withdraws its offer, and nothing of it crossed to another
//! thread. A run whose nodes take longer gets its helper a little later
//! than a spawn would have given it.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::dag::Task;

/// The offers of every run of one runtime.
///
/// Offers are numbered as they come, and the list keeps them in that
/// order. A worker looks without the lock: it remembers the newest number
/// it saw at its last look, and takes the oldest offer only if that one
/// was there then. So a worker that finds offers which runs withdraw
/// before its next look (most of them) only reads two counters, and the
/// lock the runs take to offer and withdraw stays on their cores.
/// Generic over what is offered for the tests alone.
pub(crate) struct Offers<T = Task> {
    list: Mutex<Vec<Offer<T>>>,
    /// How many offers `list` holds, read without the lock.
    count: AtomicUsize,
    /// The number of the oldest offer listed; `u64::MAX` with none.
    oldest: AtomicU64,
    /// The number of the newest offer made so far (0: none yet).
    newest: AtomicU64,
}

struct Offer<T> {
    /// Its number, in the order offers were made.
    number: u64,
    /// The run that made it, to withdraw it by.
    run: usize,
    task: T,
}

impl<T> Default for Offers<T> {
    fn default() -> Self {
        Offers {
            list: Mutex::default(),
            count: AtomicUsize::new(0),
            oldest: AtomicU64::new(u64::MAX),
            newest: AtomicU64::new(0),
        }
    }
}

impl<T> Offers<T> {
    /// Offers `task`, a helper for the run at address `run`.
    pub(crate) fn offer(&self, run: usize, task: T) {
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        // Relaxed, here and for every store below: hints for the looks
        // without the lock (`take_seen`), which take the lock before they
        // trust them; every change is made under the lock.
        let number = self.newest.load(Ordering::Relaxed) + 1;
        self.newest.store(number, Ordering::Relaxed);
        list.push(Offer { number, run, task });
        self.published(&list);
    }

    /// Updates the hints after a change to `list`.
    fn published(&self, list: &[Offer<T>]) {
        let oldest = list.first().map_or(u64::MAX, |offer| offer.number);
        // Relaxed: see `offer`.
        self.oldest.store(oldest, Ordering::Relaxed);
        self.count.store(list.len(), Ordering::Relaxed);
    }

    /// Whether any offer is waiting: part of the check a worker makes
    /// before it sleeps, so that none sleeps over an offer.
    pub(crate) fn any(&self) -> bool {
        // SeqCst: pairs with the fence in `Registry::notify_work`, which
        // follows every offer (see sched/sleep/README.md).
        self.count.load(Ordering::SeqCst) > 0
    }

    /// The oldest offer, if it was already there at the calling worker's
    /// previous look; `seen` is that worker's memory of the newest number
    /// it saw, which this look updates.
    pub(crate) fn take_seen(&self, seen: &Cell<u64>) -> Option<T> {
        // Relaxed: a stale 0 only delays the take to the worker's next
        // look; the lock orders everything else.
        if self.count.load(Ordering::Relaxed) == 0 {
            return None;
        }
        // Relaxed: hints (see `offer`); a stale oldest number makes the
        // worker take the lock for nothing, or wait a look longer.
        if self.oldest.load(Ordering::Relaxed) > seen.get() {
            seen.set(self.newest.load(Ordering::Relaxed));
            return None;
        }
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        let taken = match list.first() {
            Some(offer) if offer.number <= seen.get() => Some(list.remove(0).task),
            _ => None,
        };
        self.published(&list);
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
        // `remove`, not `swap_remove`: the list stays in number order.
        let withdrawn = index.map(|index| list.remove(index).task);
        self.published(&list);
        drop(list);
        // Dropped outside the lock: a dropped helper tells its run.
        drop(withdrawn);
    }

    /// Takes every offer, for a runtime shutting down.
    pub(crate) fn clear(&self) -> Vec<T> {
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        let taken = list.drain(..).map(|offer| offer.task).collect();
        self.published(&list);
        taken
    }
}

#[cfg(test)]
mod tests {
    //! An offer is taken on a worker's second look at it, oldest first,
    //! never once withdrawn; each worker's looks count for it alone.

    use std::cell::Cell;

    use super::Offers;

    #[test]
    fn an_offer_is_taken_at_the_second_look_that_finds_it() {
        let offers = Offers::<&str>::default();
        let (a, b) = (Cell::new(0), Cell::new(0));
        assert_eq!(offers.take_seen(&a), None);
        offers.offer(1, "first");
        offers.offer(2, "second");
        assert!(offers.any());
        // The first look at them takes nothing.
        assert_eq!(offers.take_seen(&a), None);
        // The second takes the oldest; `b` has not looked before.
        assert_eq!(offers.take_seen(&a), Some("first"));
        assert_eq!(offers.take_seen(&b), None);
        // An offer made since `a`'s last look waits for its next one.
        offers.offer(3, "third");
        assert_eq!(offers.take_seen(&b), Some("second"));
        assert_eq!(offers.take_seen(&b), None);
        assert_eq!(offers.take_seen(&a), None);
        assert_eq!(offers.take_seen(&a), Some("third"));
        assert!(!offers.any());
    }

    #[test]
    fn a_withdrawn_offer_is_never_taken_and_the_order_holds() {
        let offers = Offers::<u32>::default();
        let seen = Cell::new(0);
        for run in 1..=4 {
            offers.offer(run, run as u32 * 10);
        }
        assert_eq!(offers.take_seen(&seen), None);
        offers.withdraw(1);
        offers.withdraw(3);
        offers.withdraw(7); // none: nothing happens
        assert_eq!(offers.take_seen(&seen), Some(20));
        assert_eq!(offers.take_seen(&seen), Some(40));
        assert_eq!(offers.take_seen(&seen), None);
        offers.offer(5, 50);
        assert_eq!(offers.clear(), [50]);
        assert!(!offers.any());
        assert_eq!(offers.take_seen(&seen), None);
    }
}
