//! `TaskRef`: a counted reference to a [`Task`], like `Arc<Task>`, whose
//! memory is recycled instead of freed.
//!
//! A fiber is usually spawned on one worker and finishes on another, so with
//! `Arc` the task's memory went back to the allocator from a thread other
//! than the one that took it. glibc then takes the owning arena's lock, and
//! with spawns in flight on both sides that lock was the largest single cost
//! of a spawn (a quarter of the time in futex calls). Here the last
//! reference puts the memory in its own thread's cache, and spawns take
//! from it: no allocator call in the steady state, whichever thread frees.

use std::alloc::Layout;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicUsize, Ordering};

use super::recycle::Recycler;
use super::task::Task;

/// Task memory kept for reuse: per thread, then process-wide.
static TASKS: Recycler = Recycler::new(Layout::new::<Task>(), 0);

/// A counted reference to a live task.
pub(crate) struct TaskRef(NonNull<Task>);

// SAFETY: a `TaskRef` is a shared reference to a `Task`, which is Send and
// Sync; the count is atomic.
unsafe impl Send for TaskRef {}
// SAFETY: as above.
unsafe impl Sync for TaskRef {}

impl TaskRef {
    /// Builds the task `make` returns in recycled (or new) memory, with a
    /// count of one. The memory is taken first and `make` inlined, so that
    /// the compiler can write the task's fields straight into it rather
    /// than build it on the stack and copy its 256 bytes.
    #[inline(always)]
    pub(crate) fn new(make: impl FnOnce() -> Task) -> TaskRef {
        let memory = TASKS.take().cast::<Task>();
        // SAFETY: the recycler hands out memory of `Task`'s layout, unused.
        unsafe { memory.as_ptr().write(make()) };
        TaskRef(memory)
    }

    /// `N` more references to a task that no one else refers to yet, made
    /// with a plain store to its count rather than `N` atomic increments.
    ///
    /// # Safety
    ///
    /// `self` is the only reference to its task, and no other thread has
    /// seen the task.
    #[inline]
    pub(crate) unsafe fn more_refs<const N: usize>(&self) -> [TaskRef; N] {
        // Relaxed: nobody else reads the count yet; whatever hands the
        // task to another thread later (a queue, a lock) orders this store
        // before that thread's use.
        self.refs.store(1 + N, Ordering::Relaxed);
        [(); N].map(|()| TaskRef(self.0))
    }

    /// A new reference to the task behind `task`.
    ///
    /// # Safety
    ///
    /// `task` is a `Task` made by [`TaskRef::new`] that some reference
    /// keeps alive for the duration of this call.
    pub(crate) unsafe fn from_task(task: &Task) -> TaskRef {
        // Relaxed: a new reference is made from an existing one, which keeps
        // the task alive; no other memory is published by the increment.
        task.refs.fetch_add(1, Ordering::Relaxed);
        TaskRef(NonNull::from(task))
    }

    /// The task's address, for identity.
    pub(crate) fn as_ptr(&self) -> *const Task {
        self.0.as_ptr()
    }

    /// Gives up the reference without dropping it; see [`from_raw`](Self::from_raw).
    pub(crate) fn into_raw(self) -> *const Task {
        let ptr = self.as_ptr();
        std::mem::forget(self);
        ptr
    }

    /// Takes back a reference given up by [`into_raw`](Self::into_raw).
    ///
    /// # Safety
    ///
    /// `ptr` came from `into_raw`, and is taken back once.
    pub(crate) unsafe fn from_raw(ptr: *const Task) -> TaskRef {
        // SAFETY: `into_raw` gave a non-null task pointer.
        TaskRef(unsafe { NonNull::new_unchecked(ptr as *mut Task) })
    }
}

impl Clone for TaskRef {
    fn clone(&self) -> Self {
        // SAFETY: `self` keeps the task alive.
        unsafe { TaskRef::from_task(self) }
    }
}

impl Deref for TaskRef {
    type Target = Task;

    fn deref(&self) -> &Task {
        // SAFETY: the task lives while any reference does.
        unsafe { self.0.as_ref() }
    }
}

impl Drop for TaskRef {
    /// Inlined: a decrement and a branch, with the freeing out of line.
    #[inline]
    fn drop(&mut self) {
        // Release: everything this reference's holder did with the task
        // happens before the last holder drops it (as in `Arc`).
        if self.refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // SAFETY: that was the last reference.
        unsafe { self.free() };
    }
}

impl TaskRef {
    /// Drops and frees the task.
    ///
    /// # Safety
    ///
    /// Called by the holder of the last reference, which just let go of it.
    #[inline(never)]
    unsafe fn free(&mut self) {
        // Acquire: pairs with the other holders' Release decrements.
        fence(Ordering::Acquire);
        // SAFETY: that was the last reference (the caller's promise):
        // nobody else can reach the task, which `new` initialised; its
        // memory came from `TASKS`.
        unsafe {
            std::ptr::drop_in_place(self.0.as_ptr());
            TASKS.give(self.0.cast());
        }
    }
}

impl std::fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

/// The initial count of a task made by [`TaskRef::new`].
pub(crate) fn initial_refs() -> AtomicUsize {
    AtomicUsize::new(1)
}
