//! Scoped fibers: spawned fibers that may borrow from the caller, all of
//! which have finished when the scope returns.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::{join, JoinError, JoinHandle};
use crate::sched::registry::Registry;
use crate::sync::WaitGroup;

/// A scope to spawn fibers that borrow from outside it; see [`scope`].
pub struct Scope<'scope, 'env: 'scope> {
    registry: Arc<Registry>,
    pending: WaitGroup,
    /// Scoped fibers that failed (panicked, or never ran) and whose
    /// handle has not reported it.
    unjoined_failures: Arc<AtomicUsize>,
    /// Joins of fibers cancelled through their handles, which were then
    /// dropped unjoined: each says whether its fiber failed, which then
    /// counts as reported.
    excused: Arc<Excused>,
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

/// See [`Scope::excused`]. The joins borrow what the scope's fibers
/// return, but `scope` runs every one before those borrows end (see
/// [`excuse_check`]).
type Excused = Mutex<Vec<ExcuseCheck>>;
type ExcuseCheck = Box<dyn FnOnce() -> bool + Send>;

/// A handle to join one scoped fiber.
pub struct ScopedJoinHandle<'scope, T> {
    /// Taken by `join`.
    inner: Option<JoinHandle<T>>,
    unjoined_failures: Arc<AtomicUsize>,
    excused: Arc<Excused>,
    /// [`excuse_check`] for `T`, made where `T: Send` is known.
    to_check: fn(JoinHandle<T>) -> ExcuseCheck,
    /// Set by `cancel`.
    cancelled: AtomicBool,
    _scope: PhantomData<&'scope ()>,
}

impl<T> ScopedJoinHandle<'_, T> {
    fn inner(&self) -> &JoinHandle<T> {
        self.inner.as_ref().expect("taken only by join")
    }

    /// Waits for the fiber's result.
    pub fn join(mut self) -> Result<T, JoinError> {
        let result = self.inner.take().expect("taken only here").join();
        if result.is_err() {
            // Every failure was counted once (see `ScopedRun`); this handle
            // reports it. Relaxed: a counter read after `pending.wait()`
            // synchronised.
            self.unjoined_failures.fetch_sub(1, Ordering::Relaxed);
        }
        result
    }

    /// Whether the fiber has finished (so `join` would not wait).
    pub fn is_finished(&self) -> bool {
        self.inner().is_finished()
    }

    /// The fiber's id, unique within its runtime.
    pub fn id(&self) -> u64 {
        self.inner().id()
    }

    /// Cancels the fiber, as [`JoinHandle::cancel`] does: it unwinds from
    /// its next switch point, and `join` reports the cancellation. A fiber
    /// cancelled this way is the handle's business: dropped unjoined, the
    /// handle does not make `scope` panic for it (nor for a panic of its
    /// own that came first).
    ///
    /// ```
    /// let rt = fiber_rt::Runtime::new().unwrap();
    /// rt.block_on(|| {
    ///     let never = fiber_rt::sync::WaitGroup::new();
    ///     never.add(1);
    ///     fiber_rt::scope(|s| {
    ///         // Waits for good, borrowing `never`.
    ///         let waiting = s.spawn(|| never.wait());
    ///         waiting.cancel();
    ///     }); // returns once the fiber has unwound
    /// });
    /// ```
    pub fn cancel(&self) {
        // Relaxed: read by this handle's own drop.
        self.cancelled.store(true, Ordering::Relaxed);
        self.inner().cancel();
    }
}

impl<T> Drop for ScopedJoinHandle<'_, T> {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return; // joined
        };
        // Relaxed: written by this handle.
        if self.cancelled.load(Ordering::Relaxed) {
            // `scope` joins it once every fiber is done, and takes a
            // failure it reports off the count.
            self.excused
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((self.to_check)(inner));
        }
    }
}

impl<T> std::fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedJoinHandle")
            .field("inner", &self.inner)
            .finish()
    }
}

/// Runs `f` with a [`Scope`] on which it can spawn fibers that borrow from
/// the caller's stack; returns once every one of them has finished.
///
/// If a scoped fiber panics, or never runs (no stack could be had for it),
/// and its handle was not joined, `scope` panics after all have finished.
///
/// ```
/// let rt = fiber_rt::Runtime::new().unwrap();
/// rt.block_on(|| {
///     let mut words = vec!["a".to_string(), "b".to_string()];
///     let total: usize = fiber_rt::scope(|s| {
///         let handles: Vec<_> = words.iter().map(|w| s.spawn(move || w.len())).collect();
///         handles.into_iter().map(|h| h.join().unwrap()).sum()
///     });
///     words.push("c".into()); // borrows have ended
///     assert_eq!(total, 2);
/// });
/// ```
///
/// # Panics
///
/// If called outside a fiber: use [`Runtime::scope`](super::Runtime::scope) there.
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    scope_on(super::current_registry("scope").clone(), f)
}

pub(crate) fn scope_on<'env, F, T>(registry: Arc<Registry>, f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scope = Scope {
        registry,
        pending: WaitGroup::new(),
        unjoined_failures: Arc::new(AtomicUsize::new(0)),
        excused: Arc::default(),
        _scope: PhantomData,
        _env: PhantomData,
    };
    // Every fiber must be done before the borrows they hold end, panic or
    // not, and also when the owner is cancelled at shutdown as it waits:
    // then the cancellation's unwind waits here, where its parks are real
    // ones (see `worker::unwind_if_cancelled`), until the last child has
    // finished its own unwinding. A child that never does gets the owner
    // abandoned with it, its stack leaked, and the borrows with it.
    let mut wait_on_unwind = WaitOnUnwind(Some(&scope.pending));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&scope)));
    scope.pending.wait();
    wait_on_unwind.0 = None;
    // Every handle is gone (none outlives `f`) and every fiber done: the
    // list is whole, and each join returns at once. Run also on an
    // unwind, so that no join outlives the borrows.
    let excused =
        std::mem::take(&mut *scope.excused.lock().unwrap_or_else(PoisonError::into_inner));
    for failed in excused {
        if failed() {
            // Relaxed: as for a join, after `pending.wait()`.
            scope.unjoined_failures.fetch_sub(1, Ordering::Relaxed);
        }
    }
    match result {
        Err(payload) => std::panic::resume_unwind(payload),
        // Relaxed: `pending.wait()` above synchronised with every fiber's end.
        Ok(_) if scope.unjoined_failures.load(Ordering::Relaxed) > 0 => {
            panic!("a scoped fiber panicked or never ran, and its handle was not joined")
        }
        Ok(value) => value,
    }
}

/// Waits for a scope's fibers if dropped while armed: on an unwind out of
/// the scope's own wait.
struct WaitOnUnwind<'a>(Option<&'a WaitGroup>);

impl Drop for WaitOnUnwind<'_> {
    fn drop(&mut self) {
        if let Some(pending) = self.0 {
            pending.wait();
        }
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Spawns a fiber that may borrow anything that outlives the scope.
    ///
    /// # Panics
    ///
    /// Where [`FiberBuilder::spawn`](crate::FiberBuilder::spawn) returns
    /// an error.
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        self.pending.add(1);
        let panics = self.unjoined_failures.clone();
        let body = join::wrap(move || {
            // Count a panic until a join reports it: `scope` panics if none
            // does. Told by `f` not returning, not by
            // `std::thread::panicking()`: that counts every unwind parked on
            // this thread, another fiber's too.
            struct CountUnlessReturned(Arc<AtomicUsize>, bool);
            impl Drop for CountUnlessReturned {
                fn drop(&mut self) {
                    if !self.1 {
                        // Relaxed: read after `pending.wait()` synchronised.
                        self.0.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            let mut count = CountUnlessReturned(panics, false);
            let value = f();
            count.1 = true;
            value
        });
        let scoped = ScopedRun {
            body: Some(body),
            failures: self.unjoined_failures.clone(),
            _done: Done(self.pending.clone()),
        };
        // `scoped` is used whole, so the closure captures it whole (not
        // field by field): dropped unrun, it drops in `ScopedRun`'s order.
        let run: Box<dyn FnOnce() + Send + 'scope> = Box::new(move || {
            let mut scoped = scoped;
            if let Some(body) = scoped.body.take() {
                body();
            }
        });
        // `Done` counts down after the fiber dropped all it captured, run or
        // not (see `ScopedRun`), and `scope_on` waits for that before 'scope
        // ends. SAFETY: only the lifetime changes, and by the above nothing
        // outlives its borrows.
        let run: Box<dyn FnOnce() + Send + 'static> = unsafe { std::mem::transmute(run) };
        let task = self
            .registry
            .spawn_joinable(None, None, run, join::cancelled_unrun::<T>)
            .unwrap_or_else(|e| panic!("spawning a scoped fiber: {e}"));
        ScopedJoinHandle {
            inner: Some(join::handle(task)),
            unjoined_failures: self.unjoined_failures.clone(),
            excused: self.excused.clone(),
            to_check: excuse_check::<T>,
            cancelled: AtomicBool::new(false),
            _scope: PhantomData,
        }
    }
}

/// The join that `scope` makes for a cancelled fiber whose handle was
/// dropped unjoined: whether it failed.
fn excuse_check<'a, T: Send + 'a>(handle: JoinHandle<T>) -> ExcuseCheck {
    let check: Box<dyn FnOnce() -> bool + Send + 'a> = Box::new(move || handle.join().is_err());
    // SAFETY: only the lifetime changes. The check holds a handle whose
    // result may borrow from the scope; `scope_on` runs every check it is
    // given, after the fibers are done and before it returns, so none
    // outlives those borrows (a handle cannot outlive the scope's
    // closure, so none is added later).
    unsafe { std::mem::transmute::<Box<dyn FnOnce() -> bool + Send + 'a>, ExcuseCheck>(check) }
}

/// A scoped fiber's closure with what must happen after it, whether it ran
/// or was dropped unrun (the runtime shut down first, or no stack could be
/// had for it). Fields drop in declaration order: the closure and all it
/// captured first, and only then the count-down that lets `scope` return
/// and end the borrows.
struct ScopedRun<B> {
    /// Taken when the fiber runs.
    body: Option<B>,
    /// Counts a closure dropped unrun as a failure, which its handle
    /// reports (its join returns the reason) or `scope` does.
    failures: Arc<AtomicUsize>,
    /// Never read: dropped last.
    _done: Done,
}

impl<B> Drop for ScopedRun<B> {
    fn drop(&mut self) {
        // The closure first, unrun if it is still here: what it captured
        // may borrow from the scope, so it goes before `done`.
        if self.body.take().is_some() {
            // Relaxed: read after `pending.wait()` synchronised.
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Counts a scoped fiber down when dropped: after it ran, or unrun if the
/// runtime shut down first.
struct Done(WaitGroup);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.done();
    }
}

impl std::fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("pending", &self.pending.count())
            .finish()
    }
}
