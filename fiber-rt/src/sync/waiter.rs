//! The building block of every primitive in `sync`: a waiter that parks
//! until another party sets its flag and wakes it.
//!
//! A primitive keeps its waiters in its own lock-protected state, decides
//! under that lock whether to wait, and hands out wake-ups by
//! [`Waiter::notify`]. The waiting side parks until its flag is set, so a
//! spurious or early wake-up of the fiber or thread never ends a wait.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::sched::park::{park, Reason, Waker};
use crate::sched::task::Task;

/// Hands a wake-up that gives something over (a lock, a notification, a
/// free slot) to the first waiter `next` yields that takes it: one the
/// shutdown abandoned never will, so it goes on to the one after.
pub(crate) fn notify_first(mut next: impl FnMut() -> Option<Arc<Waiter>>) {
    while let Some(waiter) = next() {
        if waiter.notify() {
            return;
        }
    }
}

/// One party waiting on a primitive.
#[derive(Debug)]
pub(crate) struct Waiter {
    waker: Waker,
    notified: AtomicBool,
    /// See [`claim_return`](Self::claim_return).
    returned: AtomicBool,
}

impl Waiter {
    /// A waiter for the calling fiber or thread.
    pub(crate) fn new() -> Arc<Waiter> {
        Arc::new(Waiter {
            waker: Waker::current(),
            notified: AtomicBool::new(false),
            returned: AtomicBool::new(false),
        })
    }

    /// Sets the flag and wakes the waiter; `false` if the waiter is a
    /// fiber the shutdown abandoned, which will never act on it: a
    /// notifier that handed it something must hand it to someone else.
    #[must_use = "a wake-up that reached an abandoned fiber must be passed on"]
    pub(crate) fn notify(&self) -> bool {
        // Release: what the notifier did before is visible to the waiter.
        self.notified.store(true, Ordering::Release);
        self.waker.wake()
    }

    /// [`notify`](Self::notify) for a wake-up that hands nothing over
    /// (a message left queued, a broadcast, a closed channel): whether an
    /// abandoned fiber got it does not matter.
    pub(crate) fn wake(&self) {
        let _ = self.notify();
    }

    /// Whether the caller is the one to give back what the waiter was
    /// handed (a lock, permits) and will never use. Two parties may find
    /// that out: the waiter itself, cancelled after it was handed it but
    /// before it woke, and a notifier whose wake-up then finds it abandoned
    /// (it parked again in its unwinding, and the shutdown gave up on it).
    /// Only the first claim succeeds, so it is given back once.
    pub(crate) fn claim_return(&self) -> bool {
        // AcqRel: the two claims are ordered by this one atomic.
        !self.returned.swap(true, Ordering::AcqRel)
    }

    /// Whether [`notify`](Self::notify) has been called.
    pub(crate) fn is_notified(&self) -> bool {
        // Acquire: pairs with the Release in `notify`.
        self.notified.load(Ordering::Acquire)
    }

    /// Parks until notified or until `deadline`, if any, whichever comes
    /// first; returns whether notified (see [`park_until`]). `reason`
    /// shows in fiber dumps.
    pub(crate) fn wait_until(&self, deadline: Option<Instant>, reason: Reason) -> bool {
        park_until(deadline, reason, || self.is_notified())
    }
}

/// Parks the caller until `done` says so or until `deadline`, if any,
/// whichever comes first; returns whether `done`. `done` is asked first,
/// and again after every wake-up (parks may end for nothing): whoever
/// makes it true wakes the caller after. With a deadline, a fiber has its
/// runtime's timer wake it then, and takes the timer's entry out again if
/// done first; a plain thread blocks with a timeout.
pub(crate) fn park_until(
    deadline: Option<Instant>,
    reason: Reason,
    done: impl Fn() -> bool,
) -> bool {
    if done() {
        return true;
    }
    let Some(deadline) = deadline else {
        while !done() {
            park(reason);
        }
        return true;
    };
    let Some(task) = Task::current() else {
        return loop {
            if done() {
                break true;
            }
            let now = Instant::now();
            if now >= deadline {
                break false;
            }
            std::thread::park_timeout(deadline - now);
        };
    };
    // Taken out on return, and on an unwind (a fiber cancelled at
    // shutdown).
    let _entry = task
        .registry
        .timer
        .add_guarded(deadline, Waker::Fiber(task.arc()));
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        park(reason);
    }
}

/// Removes `waiter` from `list` if it is still there; returns whether it was.
/// (Generic: a primitive may list its waiters with what they were handed.)
pub(crate) fn remove<W>(list: &mut std::collections::VecDeque<Arc<W>>, waiter: &Arc<W>) -> bool {
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
pub(crate) fn wait_or_cancel(waiter: &Waiter, reason: Reason, on_cancel: impl FnOnce()) {
    wait_until_or_cancel(waiter, None, reason, on_cancel);
}

/// [`wait_or_cancel`] until `deadline`, if any: returns whether `waiter`
/// was notified before it (always, without one). A caller whose wait
/// timed out still has to take the waiter off its primitive's lists,
/// under the primitive's lock, and if it is no longer there, a notifier
/// took it: the wake-up is the caller's, as if it had come in time.
pub(crate) fn wait_until_or_cancel(
    waiter: &Waiter,
    deadline: Option<Instant>,
    reason: Reason,
    on_cancel: impl FnOnce(),
) -> bool {
    let mut guard = OnUnwind(Some(on_cancel));
    let notified = waiter.wait_until(deadline, reason);
    guard.0 = None;
    notified
}

/// Waits until the other side of a channel is gone (every receiver, for
/// a sender's `closed`), until `deadline` if there is one; whether it is.
/// `lock` gives the channel's state, under which `gone` looks and
/// `waiters` lists the parties waiting so, which the other side's last
/// drop takes and wakes (under the same lock, so none is missed). A wait
/// that ends otherwise takes its entry out again.
pub(crate) fn wait_until_gone<'a, S: 'a>(
    lock: impl Fn() -> std::sync::MutexGuard<'a, S>,
    gone: impl Fn(&S) -> bool,
    waiters: impl Fn(&mut S) -> &mut Vec<Arc<Waiter>>,
    deadline: Option<Instant>,
    reason: Reason,
) -> bool {
    loop {
        let waiter = {
            let mut s = lock();
            if gone(&s) {
                return true;
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return false;
            }
            let waiter = Waiter::new();
            waiters(&mut s).push(waiter.clone());
            waiter
        };
        let leave = || waiters(&mut lock()).retain(|w| !Arc::ptr_eq(w, &waiter));
        if !wait_until_or_cancel(&waiter, deadline, reason, leave) {
            leave();
        }
    }
}

/// The instant `timeout` from now; a timeout too long to add stands for
/// waiting for good, in practice (about 30 years from now).
pub(crate) fn deadline_after(timeout: std::time::Duration) -> Instant {
    deadline_from(Instant::now(), timeout)
}

/// The instant `timeout` after `since`, or about 30 years after it if that
/// overflows (a time-out of `Duration::MAX`).
pub(crate) fn deadline_from(since: Instant, timeout: std::time::Duration) -> Instant {
    since
        .checked_add(timeout)
        .unwrap_or_else(|| since + std::time::Duration::from_secs(1 << 30))
}

/// Runs its function when dropped, unless taken out first: on an unwind.
pub(crate) struct OnUnwind<F: FnOnce()>(pub(crate) Option<F>);

impl<F: FnOnce()> Drop for OnUnwind<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Waiter;
    use crate::sched::task::Task;
    use crate::Builder;

    #[test]
    fn timed_waits_notified_early_leave_no_timer_entries_behind() {
        let rt = Builder::new().workers(2).build().unwrap();
        rt.block_on(|| {
            let hour = Instant::now() + Duration::from_secs(3600);
            for _ in 0..200 {
                let waiter = Waiter::new();
                let notifier = waiter.clone();
                crate::spawn(move || notifier.notify());
                assert!(
                    waiter.wait_until(Some(hour), &"test"),
                    "notified, not timed out"
                );
            }
            let registry = &Task::current().expect("a fiber").registry;
            assert_eq!(registry.timer.len(), 0);
        });
    }

    #[test]
    fn a_timed_wait_nobody_notifies_ends_at_its_deadline_on_a_fiber_and_a_thread() {
        let rt = Builder::new().workers(1).build().unwrap();
        let wait = || {
            let deadline = Instant::now() + Duration::from_millis(10);
            assert!(!Waiter::new().wait_until(Some(deadline), &"test"));
            assert!(Instant::now() >= deadline);
        };
        rt.block_on(wait);
        wait();
    }
}
