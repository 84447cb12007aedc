//! Scoped fibers: spawned fibers that may borrow from the caller, all of
//! which have finished when the scope returns.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use super::{join, JoinError, JoinHandle};
use crate::sched::registry::Registry;
use crate::sched::task::Task;
use crate::sched::task_ref::TaskRef;
use crate::sched::{CancelHold, Cancelled};
use crate::sync::waiter::deadline_after;
use crate::sync::WaitGroup;

/// A scope to spawn fibers that borrow from outside it; see [`scope`].
pub struct Scope<'scope, 'env: 'scope> {
    registry: Arc<Registry>,
    pending: WaitGroup,
    /// Its fibers while they run, to cancel them with their owner.
    running: Arc<Running>,
    /// Scoped fibers that failed (panicked, were cancelled, or never
    /// ran) and whose handle has not reported it, nor excused it.
    unjoined_failures: Arc<AtomicUsize>,
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

/// What one scoped fiber's failure has come to, shared by the fiber and
/// its handle: whether it failed ([`FAILED`], set as its result is made,
/// or as its closure is dropped unrun) and whether its handle excused it
/// ([`EXCUSED`]: cancelled through the handle, which was then dropped
/// unjoined). A failure counts in the scope's `unjoined_failures` unless
/// excused: whichever flag is set second settles it (`fail` counts only
/// if not excused yet, `excuse` takes a failure counted already back
/// off), so either order of the two read-modify-writes on the byte ends
/// with the same count.
type Outcome = AtomicU8;
const FAILED: u8 = 1;
const EXCUSED: u8 = 2;

/// A scope's fibers that are running, by id: a scope whose owner is
/// cancelled cancels them (and any that starts afterwards), so that it
/// need not wait for them to finish by themselves.
#[derive(Default)]
struct Running {
    fibers: std::sync::Mutex<(bool, std::collections::HashMap<u64, TaskRef>)>,
}

impl Running {
    /// The calling fiber, one of the scope's, starts: it is cancelled at
    /// once if its owner was.
    fn enter(&self, task: &Task) {
        let mut fibers = self.fibers.lock().unwrap_or_else(PoisonError::into_inner);
        if fibers.0 {
            drop(fibers);
            // Raised at its first switch point, as any cancellation.
            task.cancel();
        } else {
            fibers.1.insert(task.id, task.arc());
        }
    }

    fn leave(&self, id: u64) {
        let left = self
            .fibers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .remove(&id);
        // Dropped outside the lock.
        drop(left);
    }

    /// The owner was cancelled: cancels every fiber running, and every one
    /// that starts from now on.
    fn cancel_all(&self) {
        let running: Vec<TaskRef> = {
            let mut fibers = self.fibers.lock().unwrap_or_else(PoisonError::into_inner);
            fibers.0 = true;
            fibers.1.values().cloned().collect()
        };
        running.iter().for_each(|task| task.cancel());
    }
}

/// Marks the fiber of `outcome` failed: it counts unless excused.
fn fail(outcome: &Outcome, failures: &AtomicUsize) {
    // Relaxed, here and below: the flags are settled by the order of the
    // read-modify-writes on `outcome` alone, and the count is read after
    // `pending.wait()` synchronised with every fiber's end (and the
    // handles are all gone by then, their effects before it too).
    if outcome.fetch_or(FAILED, Ordering::Relaxed) & EXCUSED == 0 {
        failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// Excuses the fiber of `outcome`: a failure counted already is taken off.
fn excuse(outcome: &Outcome, failures: &AtomicUsize) {
    if outcome.fetch_or(EXCUSED, Ordering::Relaxed) & FAILED != 0 {
        failures.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A handle to join one scoped fiber.
pub struct ScopedJoinHandle<'scope, T> {
    /// Taken by `join`.
    inner: Option<JoinHandle<T>>,
    unjoined_failures: Arc<AtomicUsize>,
    outcome: Arc<Outcome>,
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
        self.reported(result)
    }

    /// [`join`](Self::join), waiting at most `timeout`, as
    /// [`JoinHandle::join_timeout`] does: `Err` gives the handle back if
    /// the fiber has not finished by then. The scope waits for the fiber
    /// either way.
    pub fn join_timeout(self, timeout: Duration) -> Result<Result<T, JoinError>, Self> {
        self.join_until(deadline_after(timeout))
    }

    /// [`join_timeout`](Self::join_timeout) with a deadline, as
    /// [`JoinHandle::join_until`] does.
    pub(crate) fn join_until(mut self, deadline: Instant) -> Result<Result<T, JoinError>, Self> {
        let inner = self.inner.take().expect("taken only by a join");
        match inner.join_until(deadline) {
            Ok(result) => Ok(self.reported(result)),
            Err(inner) => {
                self.inner = Some(inner);
                Err(self)
            }
        }
    }

    /// Books the result a join returned: the handle reports its failure.
    fn reported(&mut self, result: Result<T, JoinError>) -> Result<T, JoinError> {
        // Reported here: the drop has nothing to excuse. (A join that
        // unwinds, its caller cancelled, leaves the flag, and the drop
        // excuses the fiber of a handle that cancelled it.)
        *self.cancelled.get_mut() = false;
        if result.is_err() {
            // A failure was counted once, as the result was made or the
            // closure dropped unrun (never excused: only a handle dropped
            // unjoined excuses); this handle reports it. Relaxed: a
            // counter read after `pending.wait()` synchronised.
            self.unjoined_failures.fetch_sub(1, Ordering::Relaxed);
        }
        result
    }

    /// Whether the fiber has finished (so `join` would not wait).
    pub fn is_finished(&self) -> bool {
        self.inner().is_finished()
    }

    /// The fiber's id, unique in the process.
    pub fn id(&self) -> u64 {
        self.inner().id()
    }

    /// Cancels the fiber, as [`JoinHandle::cancel`] does: it unwinds from
    /// its next switch point, and `join` reports the cancellation. A fiber
    /// cancelled this way is the handle's business: dropped unjoined, the
    /// handle does not make `scope` panic for whatever failure the fiber
    /// had (its cancellation, or a panic of its own).
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
        if *self.cancelled.get_mut() {
            excuse(&self.outcome, &self.unjoined_failures);
        }
        // The inner handle (if not joined) goes now, and with it the
        // fiber's result, if in, as before.
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
/// If a scoped fiber panics, is cancelled, or never runs (no stack could
/// be had for it), and its handle was not joined, `scope` panics after all
/// have finished; unless that handle cancelled the fiber (see
/// [`ScopedJoinHandle::cancel`]), or the scope ends in a destructor run by
/// a cancellation's unwind, where a panic would abort the process: it is
/// said on standard error then. (In a destructor run by a panic, a scope
/// panics as `std::thread::scope` does, which aborts.)
///
/// If the caller is cancelled (by its handle, by a [`timeout`] it runs in,
/// or by the runtime's drop) while `f` runs or while the scope waits for
/// its fibers, the scope's fibers are cancelled too, those running and any
/// that starts afterwards, and the caller unwinds once they have.
///
/// [`timeout`]: crate::timeout
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
/// If called outside a fiber on a thread that entered no runtime
/// ([`Handle::enter`](crate::Handle::enter)): use
/// [`Runtime::scope`](super::Runtime::scope) there.
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    scope_on(Arc::clone(&super::current_registry("scope")), f)
}

pub(crate) fn scope_on<'env, F, T>(registry: Arc<Registry>, f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    // Its end waits for its fibers, which a start hook's worker does not
    // run: refused before anything is spawned, as a refusal in that wait
    // would be raised again in the wait on the unwind, and abort.
    crate::sched::park::refuse_in_hook(&"scope");
    let scope = Scope {
        registry,
        pending: WaitGroup::new(),
        running: Arc::default(),
        unjoined_failures: Arc::new(AtomicUsize::new(0)),
        _scope: PhantomData,
        _env: PhantomData,
    };
    // Every fiber must be done before the borrows they hold end, panic or
    // not, and also when the owner is cancelled (at shutdown, say): the
    // wait holds the owner's cancellation, so it is a real one, until the
    // last child has finished its own unwinding; a cancellation caught
    // from `f` goes on after it, and one asked for meanwhile is raised at
    // the owner's next switch point. Raised in the wait instead, it would
    // unwind past a payload kept here, and could be raised again inside
    // its own unwind, which aborts. A child that never finishes gets the
    // owner abandoned with it, its stack leaked, and the borrows with it.
    // The wait on an unwind is a last resort, should the wait itself
    // unwind.
    let mut wait_on_unwind = WaitOnUnwind(Some(&scope.pending));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&scope)));
    if matches!(&result, Err(payload) if payload.is::<Cancelled>()) {
        // The owner was cancelled: so are its scoped fibers, rather than
        // waited for until they finish by themselves (maybe never).
        scope.running.cancel_all();
    }
    // An owner cancelled while it waits here (by its handle, or by a
    // `timeout` it runs in) cancels the scope's fibers too, those running
    // and any that starts afterwards, and waits on for them to unwind.
    let cancelled_in_wait = {
        let _hold = CancelHold::new();
        let cancelled = !scope.pending.wait_unless(owner_cancelled);
        if cancelled {
            scope.running.cancel_all();
            scope.pending.wait();
        }
        cancelled
    };
    wait_on_unwind.0 = None;
    let value = match result {
        Err(payload) => std::panic::resume_unwind(payload),
        Ok(value) => value,
    };
    if cancelled_in_wait {
        // Its fibers are done: the owner's cancellation goes on from here
        // (unless it may not be raised now, inside an unwind), and their
        // failures, its own doing, are not the scope's to report.
        crate::sched::worker::cancellation_point();
        return value;
    }
    // Relaxed: `pending.wait()` above synchronised with every fiber's end.
    if scope.unjoined_failures.load(Ordering::Relaxed) > 0 {
        const UNJOINED: &str =
            "a scoped fiber panicked or never ran, and its handle was not joined";
        // Not raised inside an unwind of the runtime's making (a scope in
        // a destructor of a fiber being cancelled, whose scoped fibers the
        // shutdown cancels or refuses): a panic there would abort the
        // process.
        if !in_runtime_unwind() {
            std::panic::panic_any(UNJOINED);
        }
        eprintln!("fiber runtime: {UNJOINED} (during an unwind, so not raised)");
    }
    value
}

/// Whether the calling fiber has been cancelled (its cancellation held
/// by the scope's wait); never on a plain thread.
fn owner_cancelled() -> bool {
    Task::current().is_some_and(Task::is_cancelled)
}

/// Whether the caller runs inside an unwind of the runtime's making: on a
/// fiber, a cancellation's (see `worker::in_cancel_unwind`); on a plain
/// thread, any. Not the thread's count of unwinds on a fiber: a fiber that
/// parked in its own unwinding leaves that count raised on its first
/// thread, for every fiber that runs there next, and off on the thread it
/// resumes on. A panic's unwind on a fiber is treated as
/// `std::thread::scope` treats any: the scope panics, and a panic in a
/// destructor during cleanup aborts the process.
pub(super) fn in_runtime_unwind() -> bool {
    match Task::current() {
        Some(task) => crate::sched::worker::in_cancel_unwind(task),
        None => std::thread::panicking(),
    }
}

/// Waits for a scope's fibers if dropped while armed: on an unwind out of
/// the scope's own wait.
struct WaitOnUnwind<'a>(Option<&'a WaitGroup>);

impl Drop for WaitOnUnwind<'_> {
    fn drop(&mut self) {
        if let Some(pending) = self.0 {
            let _hold = CancelHold::new();
            pending.wait();
        }
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Waits until every fiber spawned on this scope so far has finished
    /// and dropped what it captured (what `scope` waits for as it ends).
    pub(crate) fn wait_all(&self) {
        self.pending.wait();
    }

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
        let outcome = Arc::new(Outcome::new(0));
        // A failure counts until a join reports it (`scope` panics if none
        // does): told by the result that reaches the handle, so also a
        // panic of a fiber-local's destructor, or a cancellation while
        // one parks, after `f` returned.
        let body = join::wrap_reporting(f, {
            let (outcome, failures) = (outcome.clone(), self.unjoined_failures.clone());
            move |failed| {
                if failed {
                    fail(&outcome, &failures);
                }
            }
        });
        let running = self.running.clone();
        let body = move || {
            let task = Task::current().expect("a scoped closure runs on its fiber");
            running.enter(task);
            // Left on an unwind too.
            struct Leave(Arc<Running>, u64);
            impl Drop for Leave {
                fn drop(&mut self) {
                    self.0.leave(self.1);
                }
            }
            let _leave = Leave(running.clone(), task.id);
            body();
        };
        let scoped = ScopedRun {
            body: Some(body),
            failures: self.unjoined_failures.clone(),
            outcome: outcome.clone(),
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
            outcome,
            cancelled: AtomicBool::new(false),
            _scope: PhantomData,
        }
    }
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
    /// reports (its join returns the reason) or `scope` does, unless the
    /// handle excused it.
    failures: Arc<AtomicUsize>,
    outcome: Arc<Outcome>,
    /// Never read: dropped last.
    _done: Done,
}

impl<B> Drop for ScopedRun<B> {
    fn drop(&mut self) {
        // The closure first, unrun if it is still here: what it captured
        // may borrow from the scope, so it goes before `done`.
        let body = self.body.take();
        if body.is_some() {
            // Before the closure drops: a destructor of what it captured
            // may panic (and `Task::fail_start` carry on).
            fail(&self.outcome, &self.failures);
        }
        drop(body);
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
