//! The runtime a plain thread has entered ([`Handle::enter`]): where
//! `spawn`, `run`, `scope` and [`Handle::current`] find a runtime when
//! they are called off a fiber, as in a [`spawn_blocking`] closure. On a
//! fiber, the fiber's own runtime always comes first.
//!
//! [`spawn_blocking`]: super::spawn_blocking

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::sync::Arc;

use super::Handle;
use crate::sched::registry::Registry;
use crate::sched::task::Task;

thread_local! {
    /// The handles entered on this thread, each with its guard's number,
    /// the last one current. A guard takes out its own entry however the
    /// guards are dropped: in any order, or as the thread's locals are
    /// torn down (a guard kept in another thread-local).
    static ENTERED: RefCell<Vec<(u64, Handle)>> = const { RefCell::new(Vec::new()) };
    /// The number of the next guard made on this thread.
    static NEXT_GUARD: Cell<u64> = const { Cell::new(0) };
}

/// Makes a runtime the calling thread's current one until it is dropped;
/// see [`Handle::enter`]. While several guards live, the runtime of the
/// newest one is current; dropping a guard takes its runtime out, whatever
/// the order.
#[must_use = "the runtime stays entered only while the guard lives"]
pub struct EnterGuard {
    /// The guard's entry on its thread; `None` for a guard made on a
    /// fiber, which changes nothing.
    entry: Option<u64>,
    /// Thread-bound: the guard takes its entry out of the thread it was
    /// made on.
    _thread: PhantomData<*const ()>,
}

impl std::fmt::Debug for EnterGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnterGuard")
            .field("on_fiber", &self.entry.is_none())
            .finish()
    }
}

/// Enters `handle`'s runtime on the calling thread (see [`EnterGuard`]).
pub(super) fn enter(handle: &Handle) -> EnterGuard {
    // On a fiber the thread under it changes at every switch, and its
    // runtime is the fiber's own anyway.
    if Task::current().is_some() {
        return EnterGuard {
            entry: None,
            _thread: PhantomData,
        };
    }
    let entry = NEXT_GUARD.with(|next| {
        let entry = next.get();
        next.set(entry + 1);
        entry
    });
    ENTERED.with(|entered| entered.borrow_mut().push((entry, handle.clone())));
    EnterGuard {
        entry: Some(entry),
        _thread: PhantomData,
    }
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let Some(entry) = self.entry.take() else {
            return;
        };
        // Gone already if the thread's locals are being torn down.
        let ours = ENTERED
            .try_with(|entered| {
                let mut entered = entered.borrow_mut();
                let at = entered.iter().rposition(|(e, _)| *e == entry)?;
                Some(entered.remove(at))
            })
            .ok()
            .flatten();
        // The handle goes after the list is let go of.
        drop(ours);
    }
}

/// The handle entered on the calling thread, if any.
pub(super) fn entered() -> Option<Handle> {
    ENTERED
        .try_with(|entered| entered.borrow().last().map(|(_, handle)| handle.clone()))
        .ok()
        .flatten()
}

/// The calling fiber's runtime, or the one entered on the calling plain
/// thread: what `spawn` and its kin spawn on.
pub(super) enum CurrentRegistry {
    /// Borrowed from the running fiber's task, which lives at least as long
    /// as the fiber runs (it owns the fiber's stack): no reference count.
    Fiber(&'static Arc<Registry>),
    /// The handle entered on this plain thread.
    Entered(Handle),
}

impl std::ops::Deref for CurrentRegistry {
    type Target = Arc<Registry>;

    #[inline]
    fn deref(&self) -> &Arc<Registry> {
        match self {
            CurrentRegistry::Fiber(registry) => registry,
            CurrentRegistry::Entered(handle) => handle.registry(),
        }
    }
}

/// The runtime `what` (a function's name, for the message) spawns on.
///
/// # Panics
///
/// Off a fiber, on a thread that entered no runtime.
#[inline]
pub(super) fn current_registry(what: &str) -> CurrentRegistry {
    match Task::current() {
        Some(task) => CurrentRegistry::Fiber(&task.registry),
        None => entered_registry(what),
    }
}

#[cold]
#[inline(never)]
fn entered_registry(what: &str) -> CurrentRegistry {
    match entered() {
        Some(handle) => CurrentRegistry::Entered(handle),
        None => panic!(
            "fiber_rt::{what} was called outside a fiber: call it from a fiber \
             or from a thread that entered a runtime (Handle::enter), or go \
             through a Runtime or its Handle (Runtime::spawn, Runtime::run, \
             JoinSet::spawn_on, FiberBuilder::spawn_on)"
        ),
    }
}
