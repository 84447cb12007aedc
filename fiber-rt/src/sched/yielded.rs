//! Each worker's *yielded slot*: the fiber that yielded last on that worker
//! while another fiber was ready there.
//!
//! A yield between two fibers is the scheduler's tightest loop. Through the
//! local queue it costs a push and a pop (the pop a locked instruction, and
//! most of the deque's bookkeeping); through the slot, one swap: the
//! yielding fiber takes the one waiting in the slot and leaves itself there
//! (by its post action, once it is off its stack), and a fiber that was
//! waiting there already moves on to the back of the local queue.
//!
//! The slot stays the back of the line: its owner runs it only once its
//! LIFO slot and local queue are empty, and moves it to the local queue at
//! every periodic look at the global queue and whenever a slice runs out.
//! Other workers take it like a queued fiber when they steal, and count it
//! when they look for work before sleeping: a fiber is never hidden there
//! from an idle worker while the one after it spins.

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use super::task::Task;
use super::task_ref::TaskRef;

/// One worker's slot, on a cache line of its own: its owner writes it on
/// every yield, and thieves read it while they look for work.
#[repr(align(64))]
pub(crate) struct YieldedSlot {
    /// A [`TaskRef`] given up by `into_raw`, or null.
    task: AtomicPtr<Task>,
}

impl YieldedSlot {
    pub(crate) fn new() -> Self {
        YieldedSlot {
            task: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Takes the fiber in the slot, if any. Any thread.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn take(&self) -> Option<TaskRef> {
        // Relaxed: only skips the swap when there is nothing to take; the
        // swap below decides.
        if self.task.load(Ordering::Relaxed).is_null() {
            return None;
        }
        // Acquire: pairs with the Release in `put`, so the fiber's saved
        // context (written before it was put here) is seen.
        let task = self.task.swap(ptr::null_mut(), Ordering::Acquire);
        // SAFETY: a non-null pointer was stored by `put` from `into_raw`,
        // and the swap hands it to this caller alone.
        (!task.is_null()).then(|| unsafe { TaskRef::from_raw(task) })
    }

    /// Puts `task`, a fiber off its stack with its context saved, in the
    /// slot; returns the fiber that was there. Only the worker that owns
    /// the slot puts: other threads only take.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn put(&self, task: TaskRef) -> Option<TaskRef> {
        let older = self.take();
        // Release: publishes the saved context to whoever takes the fiber.
        // A plain store is enough: the slot is empty now, and only its
        // owner, this thread, ever fills it.
        self.task
            .store(task.into_raw().cast_mut(), Ordering::Release);
        older
    }

    /// Whether a fiber waits in the slot (a hint: it may be taken at once).
    pub(crate) fn is_occupied(&self) -> bool {
        // Relaxed: a hint for the sleep check and the monitor's balancing,
        // which the sleep protocol backs as for a queue (see sleep/README).
        !self.task.load(Ordering::Relaxed).is_null()
    }
}

impl Drop for YieldedSlot {
    fn drop(&mut self) {
        drop(self.take());
    }
}

#[cfg(test)]
mod tests {
    //! The slot's hand-over: a fiber put in is taken out once, by whoever
    //! comes first, and a second put hands back the first fiber.

    use super::YieldedSlot;
    use crate::sched::task::Task;
    use crate::Builder;

    #[test]
    fn a_put_returns_the_fiber_it_displaces_and_a_take_empties_the_slot() {
        let rt = Builder::new().workers(1).build().unwrap();
        // Two finished fibers' tasks, kept alive by these references.
        let a = rt.block_on(|| Task::current().expect("a fiber").arc());
        let b = rt.block_on(|| Task::current().expect("a fiber").arc());
        let slot = YieldedSlot::new();
        assert!(!slot.is_occupied());
        assert!(slot.put(a.clone()).is_none());
        assert!(slot.is_occupied());
        let displaced = slot.put(b.clone()).expect("a was there");
        assert_eq!(displaced.as_ptr(), a.as_ptr());
        let taken = slot.take().expect("b is there");
        assert_eq!(taken.as_ptr(), b.as_ptr());
        assert!(slot.take().is_none());
        assert!(!slot.is_occupied());
    }
}
