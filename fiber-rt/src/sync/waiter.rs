//! The building block of every primitive in `sync`: a waiter that parks
//! until another party sets its flag and wakes it.
//!
//! A primitive keeps its waiters in its own lock-protected state, decides
//! under that lock whether to wait, and hands out wake-ups by
//! [`Waiter::notify`]. The waiting side parks until its flag is set, so a
//! spurious or early wake-up of the fiber or thread never ends a wait.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::sched::park::{park, Waker};

/// One party waiting on a primitive.
#[derive(Debug)]
pub(crate) struct Waiter {
    waker: Waker,
    notified: AtomicBool,
}

impl Waiter {
    /// A waiter for the calling fiber or thread.
    pub(crate) fn new() -> Arc<Waiter> {
        Arc::new(Waiter {
            waker: Waker::current(),
            notified: AtomicBool::new(false),
        })
    }

    /// Sets the flag and wakes the waiter.
    pub(crate) fn notify(&self) {
        // Release: what the notifier did before is visible to the waiter.
        self.notified.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Whether [`notify`](Self::notify) has been called.
    pub(crate) fn is_notified(&self) -> bool {
        // Acquire: pairs with the Release in `notify`.
        self.notified.load(Ordering::Acquire)
    }

    /// Parks until notified. `reason` shows in fiber dumps.
    pub(crate) fn wait(&self, reason: &'static str) {
        while !self.is_notified() {
            park(reason);
        }
    }
}

/// Removes `waiter` from `list` if it is still there; returns whether it was.
pub(crate) fn remove(
    list: &mut std::collections::VecDeque<Arc<Waiter>>,
    waiter: &Arc<Waiter>,
) -> bool {
    match list.iter().position(|w| Arc::ptr_eq(w, waiter)) {
        Some(i) => {
            list.remove(i);
            true
        }
        None => false,
    }
}

/// Waits for `waiter` to be notified; if the wait is cut short by an unwind
/// (a fiber cancelled at shutdown), runs `on_cancel` so the primitive can
/// drop the waiter from its lists or pass on a wake-up it was given.
pub(crate) fn wait_or_cancel(waiter: &Waiter, reason: &'static str, on_cancel: impl FnOnce()) {
    struct OnUnwind<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for OnUnwind<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    let mut guard = OnUnwind(Some(on_cancel));
    waiter.wait(reason);
    guard.0 = None;
}
