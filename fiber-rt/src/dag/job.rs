//! The bodies of a run-time graph's nodes: type-erased closures, each
//! called at most once, stored side by side without a box for small ones.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};

/// Bytes a node's closure may take to be stored in its [`Job`] itself.
type Inline = MaybeUninit<[usize; 2]>;

/// A node's body: a closure whose error is already turned into text,
/// called once. A closure of up to two words (most capture an index or an
/// `Arc`) is stored in the cell itself, a bigger one in a `Box`, so a
/// graph of small nodes makes no allocation per node.
///
/// A job has no `Drop` of its own: [`Jobs`] drops the closures never
/// called, and skips that pass over every node when no closure needs it.
pub(super) struct Job {
    called: AtomicBool,
    /// The closure when it fits, else a `Box` of it.
    data: UnsafeCell<Inline>,
    /// Moves the closure out of `data` and calls it.
    call: unsafe fn(*mut Inline) -> Result<(), String>,
    /// Drops a closure that was never called; `None` when that is a no-op.
    drop: Option<unsafe fn(*mut Inline)>,
}

// SAFETY: `Job::new` only takes a `Send` closure, which is all `data` holds.
unsafe impl Send for Job {}

// SAFETY: through `&self` the closure is only reached by the one caller
// that flips `called` (see `call`), which moves it out: as with a
// `Mutex<F>`, `F: Send` is enough.
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
                called: AtomicBool::new(false),
                data: UnsafeCell::new(data),
                call: call_in_place::<F>,
                drop: std::mem::needs_drop::<F>().then_some(drop_in_place::<F> as _),
            }
        } else {
            // SAFETY: a `Box<F>` is one word, aligned like `data`.
            unsafe { data.as_mut_ptr().cast::<Box<F>>().write(Box::new(body)) };
            Job {
                called: AtomicBool::new(false),
                data: UnsafeCell::new(data),
                call: call_in_place::<Box<F>>,
                drop: Some(drop_in_place::<Box<F>>),
            }
        }
    }

    /// Calls the closure; `None` if it was called before.
    fn call(&self) -> Option<Result<(), String>> {
        // Relaxed: winning the flag only needs the swap to be atomic; the
        // closure itself was written before the graph was shared.
        if self.called.swap(true, Ordering::Relaxed) {
            return None;
        }
        // SAFETY: `data` holds the closure `call` was made for (`new`), and
        // the swap above made this its only use: it is moved out once.
        Some(unsafe { (self.call)(self.data.get()) })
    }

    /// Drops the closure if it was never called.
    fn drop_uncalled(&mut self) {
        let called = std::mem::replace(self.called.get_mut(), true);
        if let (false, Some(drop)) = (called, self.drop) {
            // SAFETY: never called, so `data` still holds the closure `drop`
            // was made for, and the flag now set makes this its last use.
            unsafe { drop(self.data.get()) };
        }
    }
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
    pub(super) fn push(&mut self, job: Job) {
        self.any_drop |= job.drop.is_some();
        self.list.push(job);
    }

    pub(super) fn len(&self) -> usize {
        self.list.len()
    }

    /// Calls node `node`'s closure; `None` if it was called before.
    pub(super) fn call(&self, node: usize) -> Option<Result<(), String>> {
        self.list[node].call()
    }
}

impl Drop for Jobs {
    fn drop(&mut self) {
        if self.any_drop {
            self.list.iter_mut().for_each(Job::drop_uncalled);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Job, Jobs};
    use std::sync::Arc;

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
        assert_eq!(Arc::strong_count(&token), 3);
        drop(jobs);
        assert_eq!(Arc::strong_count(&token), 1);
    }
}
