//! The bodies of a run-time graph's nodes: type-erased closures, each
//! called at most once, stored side by side without a box for small ones.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicPtr, Ordering};

/// Bytes a node's closure may take to be stored in its [`Job`] itself.
type Inline = MaybeUninit<[usize; 2]>;

/// A node's body: a closure whose error is already turned into text,
/// called once. A closure of up to two words (most capture an index or an
/// `Arc`) is stored in the job itself, a bigger one in a `Box`, so a
/// graph of small nodes makes no allocation per node.
///
/// Three words: a run-time graph of a million nodes keeps a million of
/// them, and freeing that memory is a good part of running a cheap graph.
/// The vtable pointer is also the flag saying whether the closure was
/// taken: the one caller that swaps it out for null (or, in
/// [`call_once`](Job::call_once), finds it set and clears it) moves the
/// closure out.
///
/// A job has no `Drop` of its own: [`Jobs`] drops the closures never
/// called, and skips that pass over every node when no closure needs it.
pub(super) struct Job {
    /// The closure when it fits, else a `Box` of it.
    data: UnsafeCell<Inline>,
    /// What to do with what `data` holds; null once it was taken.
    vtable: AtomicPtr<Vtable>,
}

/// The functions that handle one closure type held in a [`Job`].
struct Vtable {
    /// Moves the closure out of `data` and calls it.
    call: unsafe fn(*mut Inline) -> Result<(), String>,
    /// Drops a closure that was never called; `None` when that is a no-op.
    drop: Option<unsafe fn(*mut Inline)>,
}

/// The [`Vtable`] for a `T` held in place (the closure or its box).
struct VtableOf<T>(PhantomData<T>);

impl<T: FnOnce() -> Result<(), String>> VtableOf<T> {
    const VTABLE: Vtable = Vtable {
        call: call_in_place::<T>,
        drop: if std::mem::needs_drop::<T>() {
            Some(drop_in_place::<T>)
        } else {
            None
        },
    };
}

// SAFETY: `Job::new` only takes a `Send` closure, which is all `data` holds.
unsafe impl Send for Job {}

// SAFETY: through `&self` the closure is only reached by the one caller
// that takes its vtable pointer (see `call`; `call_once`'s contract rules
// out a concurrent taker), which moves it out: as with a `Mutex<F>`,
// `F: Send` is enough.
unsafe impl Sync for Job {}

impl Job {
    pub(super) fn new<F: FnOnce() -> Result<(), String> + Send + 'static>(body: F) -> Job {
        let mut data = Inline::uninit();
        let fits = std::mem::size_of::<F>() <= std::mem::size_of::<Inline>()
            && std::mem::align_of::<F>() <= std::mem::align_of::<Inline>();
        if fits {
            // SAFETY: `F` fits `data`'s size and alignment (checked above).
            unsafe { data.as_mut_ptr().cast::<F>().write(body) };
            Job {
                data: UnsafeCell::new(data),
                vtable: vtable(&VtableOf::<F>::VTABLE),
            }
        } else {
            // SAFETY: a `Box<F>` is one word, aligned like `data`.
            unsafe { data.as_mut_ptr().cast::<Box<F>>().write(Box::new(body)) };
            Job {
                data: UnsafeCell::new(data),
                vtable: vtable(&VtableOf::<Box<F>>::VTABLE),
            }
        }
    }

    /// Calls the closure; `None` if it was taken before.
    #[inline]
    fn call(&self) -> Option<Result<(), String>> {
        // Relaxed: winning the pointer only needs the swap to be atomic;
        // the closure itself was written before the graph was shared.
        let vtable = self.vtable.swap(std::ptr::null_mut(), Ordering::Relaxed);
        // SAFETY: a non-null pointer is one of the `'static` vtables `new`
        // stores, never written through.
        let vtable = unsafe { vtable.as_ref() }?;
        // SAFETY: `data` holds the closure the vtable was made for (`new`),
        // and the swap above made this its only use: it is moved out once.
        Some(unsafe { (vtable.call)(self.data.get()) })
    }

    /// [`call`](Job::call) without the swap, a locked instruction that is
    /// a good part of a cheap node; `None` if the closure was taken before.
    ///
    /// # Safety
    ///
    /// Nothing tries to take the closure at the same time (no `call` or
    /// `call_once` on this job on another thread meanwhile).
    #[inline]
    unsafe fn call_once(&self) -> Option<Result<(), String>> {
        // Relaxed: as in `call`; by the contract no other thread takes the
        // closure meanwhile, so a load and a store suffice.
        let vtable = self.vtable.load(Ordering::Relaxed);
        // SAFETY: a non-null pointer is one of the `'static` vtables `new`
        // stores, never written through.
        let vtable = unsafe { vtable.as_ref() }?;
        // Null marks the closure taken, for later calls and `drop_untaken`.
        self.vtable.store(std::ptr::null_mut(), Ordering::Relaxed);
        // SAFETY: `data` holds the closure the vtable was made for, and
        // clearing the pointer made this its only use.
        Some(unsafe { (vtable.call)(self.data.get()) })
    }

    /// Drops the closure uncalled, if nobody took it before.
    fn discard(&self) {
        // Relaxed: as in `call`.
        let vtable = self.vtable.swap(std::ptr::null_mut(), Ordering::Relaxed);
        // SAFETY: as in `call`.
        if let Some(drop) = unsafe { vtable.as_ref() }.and_then(|vtable| vtable.drop) {
            // SAFETY: the swap made this the closure's only use, and `data`
            // holds the closure `drop` was made for.
            unsafe { drop(self.data.get()) };
        }
    }

    /// Whether dropping the job untaken has anything to do.
    fn needs_drop(&mut self) -> bool {
        // SAFETY: as in `call`.
        unsafe { self.vtable.get_mut().as_ref() }.is_some_and(|vtable| vtable.drop.is_some())
    }

    /// Drops the closure if it was never taken.
    fn drop_untaken(&mut self) {
        let vtable = std::mem::replace(self.vtable.get_mut(), std::ptr::null_mut());
        // SAFETY: as in `call`.
        if let Some(drop) = unsafe { vtable.as_ref() }.and_then(|vtable| vtable.drop) {
            // SAFETY: never taken, so `data` still holds the closure `drop`
            // was made for, and the pointer now null makes this its last use.
            unsafe { drop(self.data.get()) };
        }
    }
}

/// A vtable as the pointer a job keeps: only ever read through.
fn vtable(vtable: &'static Vtable) -> AtomicPtr<Vtable> {
    AtomicPtr::new(std::ptr::from_ref(vtable).cast_mut())
}

/// Moves an `F` out of `data` and calls it.
///
/// # Safety
///
/// `data` holds an initialised `F`, which nothing uses afterwards.
unsafe fn call_in_place<F: FnOnce() -> Result<(), String>>(
    data: *mut Inline,
) -> Result<(), String> {
    // SAFETY: per the contract, the `F` is there and is read only here.
    let body = unsafe { data.cast::<F>().read() };
    body()
}

/// Drops the `F` in `data`.
///
/// # Safety
///
/// `data` holds an initialised `F`, which nothing uses afterwards.
unsafe fn drop_in_place<F>(data: *mut Inline) {
    // SAFETY: per the contract.
    unsafe { data.cast::<F>().drop_in_place() };
}

/// Every node's job, in node order.
#[derive(Default)]
pub(super) struct Jobs {
    list: Vec<Job>,
    /// Whether any closure has something to drop: if none has, freeing a
    /// graph of a million nodes does not walk them all.
    any_drop: bool,
}

impl Jobs {
    pub(super) fn push(&mut self, mut job: Job) {
        self.any_drop |= job.needs_drop();
        super::huge::push(&mut self.list, job);
    }

    /// Room for `count` jobs before the list grows.
    pub(super) fn with_capacity(count: usize) -> Self {
        Jobs {
            list: super::huge::with_capacity(count),
            any_drop: false,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.list.len()
    }

    /// Starts loading node `node`'s job into the cache. In a graph whose
    /// nodes become ready out of order, the job is the first thing a run
    /// of the node misses on, and by the time the node is run (after its
    /// siblings, or once popped from the queue) the load is done.
    #[inline]
    pub(super) fn prefetch(&self, node: usize) {
        if let Some(job) = self.list.get(node) {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let first = (job as *const Job).cast::<i8>();
            // A job may straddle two cache lines.
            let last = first.wrapping_add(std::mem::size_of::<Job>() - 1);
            // SAFETY: a prefetch only hints the cache; it reads nothing
            // the program sees, and both addresses are inside the job.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(first);
                _mm_prefetch::<_MM_HINT_T0>(last);
            }
        }
    }

    /// Drops node `node`'s closure uncalled, if it was not taken before.
    pub(super) fn discard(&self, node: usize) {
        self.list[node].discard();
    }

    /// Calls node `node`'s closure; `None` if it was called before.
    #[inline]
    pub(super) fn call(&self, node: usize) -> Option<Result<(), String>> {
        self.list[node].call()
    }

    /// [`call`](Jobs::call) without the locked swap.
    ///
    /// # Safety
    ///
    /// As for [`Job::call_once`]: nothing tries to take node `node`'s
    /// closure at the same time.
    #[inline]
    pub(super) unsafe fn call_once(&self, node: usize) -> Option<Result<(), String>> {
        // SAFETY: forwarded from the caller.
        unsafe { self.list[node].call_once() }
    }
}

impl Drop for Jobs {
    fn drop(&mut self) {
        if self.any_drop {
            self.list.iter_mut().for_each(Job::drop_untaken);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Job, Jobs};
    use std::sync::Arc;

    #[test]
    fn a_job_is_three_words() {
        assert_eq!(std::mem::size_of::<Job>(), 3 * std::mem::size_of::<usize>());
    }

    #[test]
    fn uncalled_closures_are_dropped_once_and_called_ones_not_again() {
        let token = Arc::new(());
        let mut jobs = Jobs::default();
        // Nothing to drop: an index.
        jobs.push(Job::new(|| Ok(())));
        for _ in 0..3 {
            let token = Arc::clone(&token);
            jobs.push(Job::new(move || {
                drop(token);
                Ok(())
            }));
        }
        assert_eq!(jobs.call(0), Some(Ok(())));
        assert_eq!(jobs.call(1), Some(Ok(())));
        assert_eq!(jobs.call(1), None, "a job runs once");
        // SAFETY: this thread alone uses the jobs.
        assert_eq!(unsafe { jobs.call_once(2) }, Some(Ok(())));
        assert_eq!(jobs.call(2), None, "taken by `call_once`");
        // SAFETY: as above.
        assert_eq!(unsafe { jobs.call_once(1) }, None, "taken by `call`");
        assert_eq!(Arc::strong_count(&token), 2);
        drop(jobs);
        assert_eq!(Arc::strong_count(&token), 1);
    }
}
