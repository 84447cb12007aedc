//! The runtime a plain thread has entered ([`Handle::enter`]): where
//! `spawn`, `run`, `scope` and [`Handle::current`] find a runtime when
//! they are called off a fiber, as in a [`spawn_blocking`] closure. On a
//! fiber, the fiber's own runtime always comes first.
//!
//! [`spawn_blocking`]: super::spawn_blocking

use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::Arc;

use super::Handle;
use crate::sched::registry::Registry;
use crate::sched::task::Task;

thread_local! {
    /// The handle entered on this thread, if any.
    static ENTERED: Cell<Option<Handle>> = const { Cell::new(None) };
    /// How many guards are live on this thread: each knows its place, so
    /// that one dropped out of order is caught, not left to put back a
    /// runtime that its successors had replaced.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Makes a runtime the calling thread's current one until it is dropped;
/// see [`Handle::enter`]. Drop guards in the reverse order of their
/// making: each gives back the runtime that was current before it, and one
/// dropped out of order panics.
#[must_use = "the runtime stays entered only while the guard lives"]
pub struct EnterGuard {
    /// What was entered before this guard, to put back; `None` for a
    /// guard made on a fiber, which changes nothing.
    previous: Option<Option<Handle>>,
    /// The number of guards live on the thread with this one.
    depth: usize,
    /// Thread-bound: the guard puts back the state of the thread it was
    /// made on.
    _thread: PhantomData<*const ()>,
}

impl std::fmt::Debug for EnterGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnterGuard")
            .field("on_fiber", &self.previous.is_none())
            .finish()
    }
}

/// Enters `handle`'s runtime on the calling thread (see [`EnterGuard`]).
pub(super) fn enter(handle: &Handle) -> EnterGuard {
    // On a fiber the thread under it changes at every switch, and its
    // runtime is the fiber's own anyway.
    if Task::current().is_some() {
        return EnterGuard {
            previous: None,
            depth: 0,
            _thread: PhantomData,
        };
    }
    let previous = ENTERED.with(|entered| entered.replace(Some(handle.clone())));
    let depth = DEPTH.with(|depth| {
        depth.set(depth.get() + 1);
        depth.get()
    });
    EnterGuard {
        previous: Some(previous),
        depth,
        _thread: PhantomData,
    }
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let Some(previous) = self.previous.take() else {
            return;
        };
        // A guard dropped while the thread's locals are being torn down
        // has nothing left to restore.
        let Ok(live) = DEPTH.try_with(Cell::get) else {
            return;
        };
        if live != self.depth && !std::thread::panicking() {
            panic!(
                "an EnterGuard was dropped out of order: drop the guards of \
                 Handle::enter in the reverse order of their making"
            );
        }
        let _ = DEPTH.try_with(|depth| depth.set(depth.get().saturating_sub(1)));
        let ours = ENTERED.try_with(|entered| entered.replace(previous)).ok();
        // The handle goes after the thread-local is settled.
        drop(ours);
    }
}

/// The handle entered on the calling thread, if any.
pub(super) fn entered() -> Option<Handle> {
    ENTERED
        .try_with(|entered| {
            let handle = entered.take();
            let copy = handle.clone();
            entered.set(handle);
            copy
        })
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
