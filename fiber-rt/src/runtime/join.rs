//! `JoinHandle`: waiting for a fiber's result, and `JoinError`: why there
//! is none.

use std::any::Any;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::fiber::panic_message;
use crate::sched::task::{Task, Unrun};
use crate::sched::task_ref::TaskRef;
use crate::sched::Cancelled;
use crate::sync::select::sealed::{WatchJoin, Watcher};
use crate::sync::waiter::deadline_after;

/// Owns the right to wait for a fiber's result. Dropping it detaches the
/// fiber, which runs on.
///
/// It is also a [`Future`](std::future::Future) of the result, for async code that waits for
/// a fiber: awaiting it parks nothing, and the fiber wakes the task when
/// it finishes.
///
/// ```
/// let rt = fiber_rt::Runtime::new().unwrap();
/// let handle = rt.spawn(|| 6 * 7);
/// // Any executor will do; here, a fiber's own.
/// let answer = rt.block_on(|| fiber_rt::block_on_future(handle));
/// assert_eq!(answer.unwrap(), 42);
/// ```
pub struct JoinHandle<T> {
    /// The fiber's task, whose join slot receives a `Result<T, JoinError>`.
    task: TaskRef,
    _result: PhantomData<T>,
}

// The handle holds no `T` (the fiber's task does, until it is taken), so
// moving a pinned handle moves nothing a poll relies on.
impl<T> Unpin for JoinHandle<T> {}

/// Why a fiber has no result.
pub struct JoinError {
    id: u64,
    name: Option<Arc<str>>,
    kind: Kind,
}

enum Kind {
    Panicked {
        payload: Payload,
        /// The payload's message, when it is a string, read as the error
        /// was made.
        message: Option<Box<str>>,
    },
    /// By [`JoinHandle::cancel`], or with `by_shutdown` by the runtime's
    /// shutdown.
    Cancelled { by_shutdown: bool },
    /// No stack could be had for the fiber's first run.
    NoStack(io::Error),
}

/// A panic payload: `Send`, and not `Sync` in general, but never reached
/// through a shared reference (`into_panic` moves it out), so that a
/// `JoinError` is `Sync` and converts into `Box<dyn Error + Send + Sync>`
/// (and `io::Error::other`, and error types that ask for both).
struct Payload(Box<dyn Any + Send + 'static>);

// SAFETY: no method reads the box through `&Payload`; it is only moved.
unsafe impl Sync for Payload {}

impl Kind {
    fn panicked(payload: Box<dyn Any + Send + 'static>) -> Kind {
        let message = panic_message(payload.as_ref()).map(Box::from);
        Kind::Panicked {
            payload: Payload(payload),
            message,
        }
    }
}

impl<T> JoinHandle<T> {
    /// Waits for the fiber to finish: parks the caller if it is a fiber,
    /// blocks it if it is a plain thread.
    ///
    /// # Panics
    ///
    /// If the handle, polled as a `Future`, gave its result already.
    pub fn join(self) -> Result<T, JoinError> {
        let this = ManuallyDrop::new(self);
        // SAFETY: moved out of a handle that is never dropped, so once.
        let task = unsafe { std::ptr::read(&this.task) };
        // A joiner cancelled while it waits unwinds out of the join: the
        // result, whenever it comes, is then dropped as for a dropped handle.
        let unwinding = DetachOnUnwind::<T>(&task, PhantomData);
        // SAFETY: the handle joins once (it is consumed) and detaches only
        // if this join unwinds before taking the value; its fiber completes
        // with this type (see `wrap`).
        let result = unsafe { task.join.join::<Result<T, JoinError>>(&"JoinHandle::join") };
        std::mem::forget(unwinding);
        // Off the live list now, so that the joiner's next look at the
        // metrics no longer counts the fiber, which may still be on its
        // way out (it retires itself too).
        task.retire();
        // A switch point even when the result was ready (see `spawn_in`).
        crate::preempt::point();
        result
    }

    /// [`join`](Self::join), waiting at most `timeout`: `Err` gives the
    /// handle back if the fiber has not finished by then, to join again
    /// later (or drop, which detaches the fiber). A zero `timeout` only
    /// looks.
    ///
    /// # Panics
    ///
    /// As [`join`](Self::join).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = fiber_rt::Runtime::new().unwrap();
    /// rt.block_on(|| {
    ///     let slow = fiber_rt::spawn(|| {
    ///         fiber_rt::sleep(Duration::from_millis(50));
    ///         7
    ///     });
    ///     // Not yet: the handle comes back.
    ///     let slow = slow.join_timeout(Duration::from_millis(1)).unwrap_err();
    ///     let result = slow.join_timeout(Duration::from_secs(10)).ok().unwrap();
    ///     assert_eq!(result.unwrap(), 7);
    /// });
    /// ```
    pub fn join_timeout(self, timeout: Duration) -> Result<Result<T, JoinError>, Self> {
        self.join_until(deadline_after(timeout))
    }

    /// [`join_timeout`](Self::join_timeout) with a deadline: `Err` gives
    /// the handle back if the fiber has not finished by `deadline`. A
    /// deadline that has passed only looks.
    pub(crate) fn join_until(self, deadline: Instant) -> Result<Result<T, JoinError>, Self> {
        // A joiner cancelled while it waits unwinds out of here, and drops
        // the handle, which detaches the fiber, as `join`'s does.
        // SAFETY: the slot is joined by this handle alone, and if this
        // gives the value, the handle is forgotten below (so never
        // detaches); its fiber completes with this type (see `wrap`).
        let joined = unsafe {
            self.task
                .join
                .join_until::<Result<T, JoinError>>(deadline, &"JoinHandle::join_timeout")
        };
        let Some(result) = joined else {
            return Err(self);
        };
        let this = ManuallyDrop::new(self);
        // SAFETY: moved out of a handle that is never dropped, so once.
        let task = unsafe { std::ptr::read(&this.task) };
        // As in `join`.
        task.retire();
        crate::preempt::point();
        Ok(result)
    }

    /// Whether the fiber has finished (so `join` would not wait).
    pub fn is_finished(&self) -> bool {
        self.task.join.is_complete()
    }

    /// Cancels the fiber, and returns at once: the fiber unwinds from its
    /// next switch point (a park, a yield, a preemption probe), running
    /// its destructors as a panic would, and `join` then returns a
    /// [`JoinError`] whose [`is_cancelled`](JoinError::is_cancelled) is
    /// true. A parked fiber is woken to unwind; a fiber that has not
    /// started never runs, and its closure is dropped on its worker.
    ///
    /// A fiber that finished first keeps its result, which `join` returns.
    /// One that unwinds from a panic of its own finishes that unwinding,
    /// and reports its panic. Code that never reaches a switch point (a
    /// loop in a function without `#[fiber]` and without
    /// [`preempt::point`](crate::preempt::point)) runs on until it does.
    /// A fiber that catches the cancellation's unwind (with
    /// `catch_unwind`) is cancelled again at its next switch point, once
    /// it has dropped the payload.
    ///
    /// Cancelling is for fibers the program no longer needs, whose
    /// destructors leave shared state consistent: what the fiber held
    /// (a lock guard, a permit, a channel's sender) is released by its
    /// destructors as it unwinds, and a wait it was in leaves the
    /// primitive's queue, passing on anything it was handed meanwhile.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = fiber_rt::Runtime::new().unwrap();
    /// rt.block_on(|| {
    ///     let (_tx, rx) = fiber_rt::sync::mpsc::unbounded::<u32>();
    ///     // Waits for a message that never comes.
    ///     let waiting = fiber_rt::spawn(move || rx.recv());
    ///     fiber_rt::sleep(Duration::from_millis(1));
    ///     waiting.cancel();
    ///     assert!(waiting.join().unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn cancel(&self) {
        self.task.cancel();
    }

    /// A handle that cancels this fiber from anywhere (see
    /// [`CancelHandle`](super::CancelHandle)), while this one stays with
    /// whoever joins it.
    pub fn cancel_handle(&self) -> super::CancelHandle {
        super::CancelHandle::new(self.task.clone())
    }

    /// The fiber's id, unique in the process.
    pub fn id(&self) -> u64 {
        self.task.id
    }

    /// The fiber's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.task.name.as_deref()
    }
}

impl<T> JoinHandle<T> {
    /// Panics if a poll gave the result already (see [`Select::join`]).
    ///
    /// [`Select::join`]: crate::sync::Select::join
    pub(crate) fn check_joinable(&self) {
        self.task.join.check_not_taken();
    }
}

/// `Select` holds the handle by `&mut` (see [`Select::join`]), so no other
/// handle-side call on the slot can come meanwhile.
///
/// [`Select::join`]: crate::sync::Select::join
impl<T> WatchJoin for JoinHandle<T> {
    fn is_ready(&self) -> bool {
        self.is_finished()
    }

    fn watch(&mut self, watcher: &Watcher) -> bool {
        // SAFETY: `&mut self`: the handle, alone on its side of the slot;
        // `Select` unwatches after every `false`, before anything else.
        unsafe { self.task.join.watch(&watcher.0) }
    }

    fn unwatch(&mut self) {
        // SAFETY: `&mut self`: as in `watch`, which returned `false`.
        unsafe { self.task.join.unwatch() }
    }
}

/// Detaches a join that unwinds (see [`JoinHandle::join`]).
struct DetachOnUnwind<'a, T>(&'a Task, PhantomData<T>);

impl<T> Drop for DetachOnUnwind<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the join unwound before taking the value; the type is the
        // one the fiber completes with.
        unsafe { self.0.join.detach::<Result<T, JoinError>>() };
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        // SAFETY: a handle that is dropped did not join (a poll that took
        // the result is marked in the slot, which then drops nothing);
        // the type is the one its fiber completes with.
        unsafe { self.task.join.detach::<Result<T, JoinError>>() };
    }
}

impl<T> std::future::Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    /// The result once the fiber has finished; until then `Pending`, with
    /// the task's waker left for the fiber to wake as it finishes.
    ///
    /// # Panics
    ///
    /// If polled again after it returned the result.
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.get_mut();
        // SAFETY: only this handle joins the slot, and after a poll that
        // took the result the slot refuses to give it again (and to drop
        // it); its fiber completes with this type (see `wrap`).
        let polled = unsafe { this.task.join.poll::<Result<T, JoinError>>(cx) };
        if polled.is_ready() {
            // As in `join`.
            this.task.retire();
        }
        polled
    }
}

impl JoinError {
    /// Whether the fiber panicked (rather than being cancelled, or never
    /// starting).
    pub fn is_panic(&self) -> bool {
        matches!(self.kind, Kind::Panicked { .. })
    }

    /// Whether the fiber was cancelled before it finished: by
    /// [`JoinHandle::cancel`], or because its runtime shut down.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.kind, Kind::Cancelled { .. })
    }

    /// Why the fiber never started, if no stack could be had for it: a
    /// fiber with a closure of up to 64 bytes takes its stack when it
    /// first runs, so the error that `mmap` or a full stack arena gave
    /// then is reported here, to the handle, instead of by the spawn. The
    /// closure was dropped unrun, on its worker's scheduler loop.
    pub fn stack_error(&self) -> Option<&io::Error> {
        match &self.kind {
            Kind::NoStack(e) => Some(e),
            _ => None,
        }
    }

    /// The panic message, when the payload is a string.
    pub fn panic_message(&self) -> Option<&str> {
        match &self.kind {
            Kind::Panicked { message, .. } => message.as_deref(),
            _ => None,
        }
    }

    /// The panic payload, to resume the panic with
    /// `std::panic::resume_unwind`.
    pub fn into_panic(self) -> Option<Box<dyn Any + Send + 'static>> {
        match self.kind {
            Kind::Panicked { payload, .. } => Some(payload.0),
            _ => None,
        }
    }

    /// The id of the fiber.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The fiber's name, or `fiber-<id>`.
    pub fn fiber_name(&self) -> String {
        match &self.name {
            Some(n) => n.to_string(),
            None => format!("fiber-{}", self.id),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.fiber_name();
        match &self.kind {
            Kind::Panicked { .. } => match self.panic_message() {
                Some(msg) => write!(f, "fiber '{name}' panicked: {msg}"),
                None => write!(f, "fiber '{name}' panicked"),
            },
            Kind::Cancelled { by_shutdown: true } => write!(
                f,
                "fiber '{name}' was cancelled: its runtime shut down first"
            ),
            Kind::Cancelled { by_shutdown: false } => {
                write!(f, "fiber '{name}' was cancelled by its handle")
            }
            Kind::NoStack(e) => write!(
                f,
                "fiber '{name}' never started: no stack could be had for it: {e}"
            ),
        }
    }
}

impl std::error::Error for JoinError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::NoStack(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JoinError({self})")
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .field("name", &self.name())
            .finish()
    }
}

/// Wraps `f` so that its result, panic or cancellation reaches the
/// fiber's join slot, where [`handle`] takes it. Spawn it with
/// [`cancelled_unrun::<T>`](cancelled_unrun), which reports a fiber
/// cancelled before it ran.
pub(crate) fn wrap<F, T>(f: F) -> impl FnOnce() + Send
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    wrap_reporting(f, |_| {})
}

/// [`wrap`], telling `report` whether the fiber failed (panicked, was
/// cancelled, or a fiber-local's destructor panicked) just before the
/// result reaches the join slot.
pub(crate) fn wrap_reporting<F, T>(f: F, report: impl FnOnce(bool) + Send) -> impl FnOnce() + Send
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    move || {
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        let task = Task::current().expect("a spawned closure runs on its fiber");
        // The fiber's locals go before the handle sees the result, as a
        // thread's do before its join returns. A destructor's panic is
        // the fiber's, if it had none of its own.
        let mut result = result;
        if crate::local::any() {
            drop_locals(task, &mut result);
        }
        let result = result.map_err(|payload| {
            let kind = if payload.is::<Cancelled>() {
                cancelled(task)
            } else {
                Kind::panicked(payload)
            };
            error(task, kind)
        });
        report(result.is_err());
        // With the handle gone, `complete` drops the result here, while
        // the fiber still counts as live: a destructor that parks is
        // found and cancelled by a shutdown like any parked fiber. (So
        // the fiber retires only afterwards; a joiner retires it too, as
        // it takes the result, for its next look at the metrics.)
        let completed = panic::catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: called once, by the task's fiber, with the type its
            // handle takes.
            unsafe { task.join.complete(result) }
        }));
        if !matches!(completed, Ok(false)) {
            // Dropped here: its destructor may have made fiber-locals
            // anew, which would stay on the stack for the next fiber.
            crate::local::drop_at_exit();
        }
        task.retire();
        if let Err(payload) = completed {
            // A destructor cancelled (by the shutdown, or by a handle
            // dropped after it cancelled the fiber): the fiber is done
            // (the result was complete before it was dropped). Any other
            // panic of a result's destructor ends the process, as a panic
            // in a fiber's completion does.
            if !payload.is::<Cancelled>() {
                panic::resume_unwind(payload);
            }
        }
    }
}

/// Rounds of dropping a fiber's locals that drops made anew.
const LOCALS_ROUNDS: usize = 8;

/// Drops the fiber's locals (see `wrap`); a destructor's panic becomes the
/// fiber's `result` if it had none of its own. Out of line: most fibers
/// have no locals.
#[cold]
#[inline(never)]
fn drop_locals<T>(task: &Task, result: &mut std::thread::Result<T>) {
    // A destructor's panic payload that is not kept (the fiber had a
    // panic of its own) is dropped here, and its drop may make fiber-locals
    // anew: they go too, a few rounds at most, before the stack can pass to
    // another fiber, which must never see them.
    for _ in 0..LOCALS_ROUNDS {
        if !crate::local::any() {
            return;
        }
        let dropped = panic::catch_unwind(AssertUnwindSafe(|| crate::local::drop_current(task)));
        if let Err(payload) = dropped {
            if result.is_ok() {
                *result = Err(payload);
            } else if let Err(again) = panic::catch_unwind(AssertUnwindSafe(|| drop(payload))) {
                // A payload whose drop panics too: kept from going on.
                std::mem::forget(again);
            }
        }
    }
    // Destructors that keep making values: leaked, not handed on.
    crate::local::forget_current(task);
}

/// Why `task` is reported cancelled.
fn cancelled(task: &Task) -> Kind {
    Kind::Cancelled {
        by_shutdown: task.cancelled_by_shutdown(),
    }
}

fn error(task: &Task, kind: Kind) -> JoinError {
    JoinError {
        id: task.id,
        name: task.name.clone(),
        kind,
    }
}

/// Reports to the handle of `task`, whose closure made by [`wrap`] with
/// this `T` was dropped unrun, why the fiber never ran.
///
/// # Safety
///
/// As for [`CancelFn`](crate::sched::task::CancelFn), with the `T` of the
/// task's handle.
pub(crate) unsafe fn cancelled_unrun<T>(task: &Task, why: Unrun) {
    let kind = match why {
        Unrun::Cancelled => cancelled(task),
        Unrun::NoStack(e) => Kind::NoStack(e),
    };
    let cancelled: Result<T, JoinError> = Err(error(task, kind));
    task.retire();
    // SAFETY: the closure did not run, so the slot was not completed; this
    // is the type the handle takes.
    unsafe { task.join.complete(cancelled) };
}

/// The handle of `task`, whose fiber runs a closure made by [`wrap`] with
/// this `T`.
pub(crate) fn handle<T>(task: TaskRef) -> JoinHandle<T> {
    JoinHandle {
        task,
        _result: PhantomData,
    }
}
