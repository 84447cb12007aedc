//! A worker's own part of the live list: the fibers spawned by fibers
//! running on that worker, added without a lock.
//!
//! Every spawn adds its fiber to the live list. Under a mutex that costs
//! two locked instructions a spawn (lock and unlock), a good part of a
//! spawn's cost. Here the one thread running the worker appends to an
//! array it alone writes and publishes the new length with a release
//! store. Readers (dumps, metrics, the shutdown) take the slots' mutex and
//! read up to the length they acquire; the owner takes the same mutex
//! only to change the array itself: to sweep out the finished fibers, or
//! to move to a bigger array, once the array is full. Readers so never see
//! a slot freed or moved under them, and the owner pays for the lock once
//! per sweep instead of once per spawn.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::task::Task;
use super::task_ref::TaskRef;

/// Slots of a new array. A sweep never shrinks one.
const MIN_SLOTS: usize = 64;

/// The live fibers a worker's fibers spawned, each slot holding one
/// reference to its task (as [`TaskRef::into_raw`] gives it up).
pub(crate) struct LiveSlots {
    /// Held by readers, and by the owner while it sweeps or grows the array.
    lock: Mutex<()>,
    /// The array. Replaced, and its slots below `len` rewritten, only by
    /// the owner holding `lock`; a slot at `len` is written by the owner
    /// alone, before `len` covers it.
    slots: UnsafeCell<Box<[AtomicPtr<Task>]>>,
    /// Slots in use: those below it hold a reference each.
    len: AtomicUsize,
    /// Finished fibers whose slots sweeps (and `clear`) let go of. Written
    /// only under `lock`, so a reader holding it sees `swept` and `len`
    /// from the same moment: `swept + len` fibers added, exactly.
    swept: AtomicU64,
}

// SAFETY: the array behind `slots` is only replaced by its owner under
// `lock`, and only read by other threads under `lock`; the slots are
// atomics, and the tasks they refer to are `Send + Sync` (as `TaskRef` is).
unsafe impl Sync for LiveSlots {}

impl LiveSlots {
    pub(crate) fn new() -> Self {
        LiveSlots {
            lock: Mutex::new(()),
            slots: UnsafeCell::new(empty_slots(MIN_SLOTS)),
            len: AtomicUsize::new(0),
            swept: AtomicU64::new(0),
        }
    }

    /// Adds `task`.
    ///
    /// # Safety
    ///
    /// Only ever called by one thread at a time, the one running the
    /// worker these slots belong to, with that worker held (not given
    /// away by the backstop meanwhile); [`clear`](Self::clear) is not
    /// called at the same time.
    #[inline]
    pub(crate) unsafe fn add(&self, task: TaskRef) {
        // Relaxed: only this thread writes `len`.
        let mut len = self.len.load(Ordering::Relaxed);
        // SAFETY: only this thread replaces the array (the caller's
        // contract), so reading its length races with nothing.
        if len == unsafe { (&*self.slots.get()).len() } {
            // SAFETY: forwarded from the caller: this is the owner.
            unsafe { self.make_room() };
            len = self.len.load(Ordering::Relaxed);
        }
        // SAFETY: as above: the array cannot change under this borrow.
        let slots = unsafe { &*self.slots.get() };
        // Relaxed: published by the Release store of `len` below.
        slots[len].store(task.into_raw() as *mut Task, Ordering::Relaxed);
        // Release: a reader that acquires the new length sees the slot
        // written.
        self.len.store(len + 1, Ordering::Release);
    }

    /// Drops the finished fibers' references, then doubles the array if
    /// that left it more than half full.
    ///
    /// # Safety
    ///
    /// Called by the owner, as for [`add`](Self::add).
    #[cold]
    #[inline(never)]
    unsafe fn make_room(&self) {
        let _guard = self.lock();
        // SAFETY: the owner, holding the lock: no reader looks at the
        // array, and no one else changes it.
        let slots = unsafe { &mut *self.slots.get() };
        let len = self.len.load(Ordering::Relaxed);
        let mut kept = 0;
        for i in 0..len {
            let task = *slots[i].get_mut();
            // SAFETY: every slot below `len` holds a task reference, which
            // keeps the task alive.
            if unsafe { &*task }.is_live() {
                *slots[kept].get_mut() = task;
                kept += 1;
            } else {
                // Freeing a task never comes back to the live list, so
                // dropping it under the lock is safe.
                // SAFETY: the slot's reference, given up by `into_raw`,
                // taken back once (the slot is overwritten or cut off).
                drop(unsafe { TaskRef::from_raw(task) });
            }
        }
        // Relaxed: read by readers under the lock this thread holds.
        self.swept.fetch_add((len - kept) as u64, Ordering::Relaxed);
        if kept > slots.len() / 2 {
            let mut grown = empty_slots(2 * slots.len());
            for (to, from) in grown.iter_mut().zip(slots[..kept].iter_mut()) {
                *to.get_mut() = *from.get_mut();
            }
            *slots = grown;
        }
        // Relaxed: readers read it under the lock this thread holds.
        self.len.store(kept, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Calls `f` with each task in the slots, finished ones too, under the
    /// lock.
    /// Returns the length it read and the swept count: `swept + len` is
    /// the number of fibers added up to the last slot it saw.
    fn for_each(&self, mut f: impl FnMut(&Task)) -> (usize, u64) {
        let _guard = self.lock();
        // Acquire: pairs with the owner's Release in `add`, so the slots
        // below `len` are written.
        let len = self.len.load(Ordering::Acquire);
        // SAFETY: the array is only replaced under the lock held here.
        let slots = unsafe { &*self.slots.get() };
        for slot in &slots[..len] {
            // Relaxed: ordered by the Acquire load of `len`.
            let task = slot.load(Ordering::Relaxed);
            // SAFETY: the slot holds a reference, and only a sweep (under
            // the lock held here) lets go of it.
            f(unsafe { &*task });
        }
        // Relaxed: written only under the lock held here.
        (len, self.swept.load(Ordering::Relaxed))
    }

    /// The live (not retired) fibers.
    pub(crate) fn live_tasks(&self, into: &mut Vec<TaskRef>) {
        self.for_each(|task| {
            if task.is_live() {
                // SAFETY: the slot's reference keeps the task alive.
                into.push(unsafe { TaskRef::from_task(task) });
            }
        });
    }

    /// Fibers added so far, and how many of them are live.
    pub(crate) fn added_and_live(&self) -> (u64, u64) {
        let mut live = 0;
        // One snapshot: the slots counted are exactly those `len` covers,
        // so a fiber added after the length was read is counted neither as
        // added nor as finished.
        let (len, swept) = self.for_each(|task| live += u64::from(task.is_live()));
        (swept + len as u64, live)
    }

    /// Lets go of every task. Once no thread adds any more (the shutdown,
    /// after the workers stopped).
    pub(crate) fn clear(&self) {
        let guard = self.lock();
        // SAFETY: the lock keeps readers out, and no owner adds any more
        // (see above).
        let slots = unsafe { &mut *self.slots.get() };
        // Relaxed: under the lock, and no owner adds any more.
        let len = self.len.swap(0, Ordering::Relaxed);
        // Relaxed: as in `make_room`.
        self.swept.fetch_add(len as u64, Ordering::Relaxed);
        let taken: Vec<*mut Task> = slots[..len].iter_mut().map(|s| *s.get_mut()).collect();
        // Outside the lock: freeing tasks drops what they hold.
        drop(guard);
        for task in taken {
            // SAFETY: each slot's reference, taken back once: `len` is 0.
            drop(unsafe { TaskRef::from_raw(task) });
        }
    }
}

impl Drop for LiveSlots {
    fn drop(&mut self) {
        let len = *self.len.get_mut();
        for slot in &mut self.slots.get_mut()[..len] {
            // SAFETY: each slot below `len` holds a reference, taken back
            // once here.
            drop(unsafe { TaskRef::from_raw(*slot.get_mut()) });
        }
    }
}

fn empty_slots(len: usize) -> Box<[AtomicPtr<Task>]> {
    (0..len)
        .map(|_| AtomicPtr::new(std::ptr::null_mut()))
        .collect()
}

#[cfg(test)]
mod tests {
    //! The slots through the runtime: fibers spawned from a worker land
    //! in its slots, sweeps and growth keep every live one, and readers
    //! count them while the owner adds.

    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use crate::Builder;

    #[test]
    fn parked_fibers_spawned_from_a_worker_stay_listed_across_sweeps_and_growth() {
        let rt = Builder::new().workers(1).build().unwrap();
        let release = Arc::new(AtomicBool::new(false));
        let flag = release.clone();
        let (parked, spawned) = rt.block_on(move || {
            // Many short fibers, which sweeps drop, among parked ones,
            // which they must keep: more than several arrays' worth.
            let mut parked = Vec::new();
            let mut spawned = 0u64;
            for i in 0..2000u64 {
                spawned += 1;
                if i % 3 == 0 {
                    let flag = flag.clone();
                    parked.push(crate::spawn(move || {
                        while !flag.load(Ordering::Acquire) {
                            crate::sleep(std::time::Duration::from_millis(1));
                        }
                        i
                    }));
                } else {
                    crate::spawn(move || i).join().unwrap();
                }
            }
            (parked, spawned)
        });
        // Each parked fiber, and no finished one, is still listed.
        assert_eq!(rt.metrics().live, parked.len());
        assert!(rt.metrics().spawned >= spawned);
        release.store(true, Ordering::Release);
        let sum: u64 = parked.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, (0..2000u64).filter(|i| i % 3 == 0).sum::<u64>());
        assert_eq!(rt.metrics().live, 0);
    }
}
