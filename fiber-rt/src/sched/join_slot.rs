//! Where a spawned fiber leaves its result for its `JoinHandle`: inside the
//! task itself, so a spawn allocates no channel.
//!
//! The protocol is three bits in one atomic byte:
//!
//! - `COMPLETE`: the result is in the slot (set once, by the fiber);
//! - `WAITING`: a joiner left its waker in the slot and sleeps;
//! - `DETACHED`: the handle was dropped without taking the result;
//! - `TAKEN`: a poll of the handle took the result (a join takes it by
//!   consuming the handle, which needs no bit).
//!
//! Whoever sets its bit second does the follow-up: a fiber that completes
//! after `WAITING` wakes the joiner, after `DETACHED` drops its own result;
//! a joiner that sets `WAITING` after `COMPLETE` takes the result at once,
//! and a handle dropped after `COMPLETE` drops the result. So the value and
//! the waker each have one owner at any time, and no wake-up is lost.
//!
//! A joiner takes its waker back by clearing `WAITING`: if `COMPLETE` was
//! not set before, the fiber never saw the bit, and the waker is the
//! joiner's again (a timed join that gave up, or a poll of the handle as a
//! `Future` that leaves a newer waker). If it was, the fiber owns the
//! waker, and the value is there.

use std::cell::UnsafeCell;
use std::mem::{self, MaybeUninit};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use super::park::{park, refuse_in_hook, Reason, Waker};
use crate::sync::waiter::{park_until, Waiter};

const COMPLETE: u8 = 1;
const WAITING: u8 = 2;
const DETACHED: u8 = 4;
/// Set by a poll that took the value: the handle may not take it again,
/// nor drop it.
const TAKEN: u8 = 8;

/// Room for a result kept in place; larger ones are boxed.
type Inline = MaybeUninit<[u128; 4]>;

pub(crate) struct JoinSlot {
    state: AtomicU8,
    /// The joiner's waker; owned by the joiner until it sets `WAITING`,
    /// then by the completing fiber.
    waker: UnsafeCell<Option<Joiner>>,
    /// The result (or a box of it); owned by the fiber until `COMPLETE`,
    /// then by the handle, or by the fiber again if `DETACHED` came first.
    value: UnsafeCell<Inline>,
}

/// Who waits for the result: a fiber or thread that parks, an async
/// task that polled the handle, or a `Select` round watching it.
enum Joiner {
    Parked(Waker),
    Polled(std::task::Waker),
    Watched(Arc<Waiter>),
}

impl JoinSlot {
    pub(crate) const fn new() -> JoinSlot {
        JoinSlot {
            state: AtomicU8::new(0),
            waker: UnsafeCell::new(None),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Fiber side: leaves `value` for the handle, and wakes a waiting
    /// joiner. Called at most once per task. Returns whether the value was
    /// dropped here instead, its handle gone.
    ///
    /// # Safety
    ///
    /// Called once, by the task's fiber, with the type the handle takes.
    pub(crate) unsafe fn complete<V>(&self, value: V) -> bool {
        // SAFETY: the slot is ours until COMPLETE is published.
        unsafe { self.write(value) };
        // AcqRel: Release publishes the value to the joiner; Acquire sees
        // the waker a joiner stored before setting WAITING.
        let before = self.state.fetch_or(COMPLETE, Ordering::AcqRel);
        if before & DETACHED != 0 {
            // Nobody will take it: the slot is ours again.
            // SAFETY: written just above, and read by nobody else.
            drop(unsafe { self.read::<V>() });
            if before & WAITING != 0 {
                // A handle polled, then dropped: its waker is ours, and
                // goes now rather than with the task (an async task's
                // waker keeps that task alive).
                // SAFETY: the handle gave the waker up when it set WAITING.
                drop(unsafe { (*self.waker.get()).take() });
            }
            return true;
        }
        if before & WAITING != 0 {
            // SAFETY: the joiner gave the waker up when it set WAITING.
            let waker = unsafe { (*self.waker.get()).take() };
            match waker {
                Some(Joiner::Parked(waker)) => waker.wake_joiner(),
                Some(Joiner::Polled(waker)) => waker.wake(),
                Some(Joiner::Watched(waiter)) => waiter.wake(),
                None => {}
            }
        }
        false
    }

    /// Handle side: waits for the result and takes it.
    ///
    /// # Safety
    ///
    /// Called at most once, by the task's handle, with the type the fiber
    /// completes with; [`detach`](Self::detach) follows only if this
    /// unwinds (a cancelled joiner).
    pub(crate) unsafe fn join<V>(&self, reason: Reason) -> V {
        // SAFETY: called by the handle.
        if unsafe { self.state_for_handle() } & COMPLETE == 0 {
            let waker = Waker::current();
            if let Waker::Thread(_) = waker {
                // A wait for a fiber, which a start hook's worker never
                // runs. (A fiber is never in a hook: no look for it.)
                refuse_in_hook(reason);
            }
            // SAFETY: the waker is ours until WAITING is set.
            unsafe { *self.waker.get() = Some(Joiner::Parked(waker)) };
            // AcqRel: Release hands the waker over; Acquire sees the value.
            let before = self.state.fetch_or(WAITING, Ordering::AcqRel);
            if before & COMPLETE != 0 {
                // The fiber completed without seeing our waker: take it back.
                // SAFETY: the fiber did not touch it (it saw no WAITING).
                drop(unsafe { (*self.waker.get()).take() });
            } else {
                // Acquire: as above. Parks may end spuriously: check again.
                while self.state.load(Ordering::Acquire) & COMPLETE == 0 {
                    park(reason);
                }
            }
        }
        // SAFETY: COMPLETE is set, so the value is there and ours.
        unsafe { self.read::<V>() }
    }

    /// Handle side: [`join`](Self::join) until `deadline`; `None` if the
    /// result was not there by then. The waker is taken back out of the
    /// slot then, so the handle may join again, from anywhere.
    ///
    /// # Safety
    ///
    /// As for [`join`](Self::join); after a `None`, `join`, `join_until`
    /// or `detach` may follow.
    pub(crate) unsafe fn join_until<V>(&self, deadline: Instant, reason: Reason) -> Option<V> {
        // SAFETY: called by the handle.
        if unsafe { self.state_for_handle() } & COMPLETE == 0 {
            // SAFETY: the waker is ours until WAITING is set.
            unsafe { *self.waker.get() = Some(Joiner::Parked(Waker::current())) };
            // AcqRel: as in `join`.
            let before = self.state.fetch_or(WAITING, Ordering::AcqRel);
            if before & COMPLETE != 0 {
                // SAFETY: as in `join`.
                drop(unsafe { (*self.waker.get()).take() });
            } else if !park_until(Some(deadline), reason, || self.is_complete()) {
                // Too late: the waker is ours again if the fiber has not
                // completed meanwhile. If it has, it owns the waker (and
                // wakes us for nothing), and the value is there.
                // Acquire: sees the value if COMPLETE is set. Nothing to
                // publish: a fiber that completes after this sees no
                // WAITING and leaves the waker alone, and a later join
                // publishes its own waker with its own WAITING.
                let before = self.state.fetch_and(!WAITING, Ordering::Acquire);
                if before & COMPLETE == 0 {
                    // SAFETY: WAITING is cleared before the fiber saw it,
                    // so the fiber never touches the waker.
                    drop(unsafe { (*self.waker.get()).take() });
                    return None;
                }
            }
        }
        // SAFETY: COMPLETE is set, so the value is there and ours.
        Some(unsafe { self.read::<V>() })
    }

    /// Handle side, for a handle polled as a `Future`: the result if it is
    /// there, else `Pending` with `cx`'s waker left for the fiber to wake.
    ///
    /// # Safety
    ///
    /// As for [`join`](Self::join); after `Pending`, `poll`, `join`,
    /// `join_until` or `detach` may follow.
    pub(crate) unsafe fn poll<V>(&self, cx: &mut Context<'_>) -> Poll<V> {
        // SAFETY: called by the handle.
        if unsafe { self.state_for_handle() } & COMPLETE == 0 {
            let waker = Joiner::Polled(cx.waker().clone());
            // SAFETY: the waker is ours until WAITING is set.
            unsafe { *self.waker.get() = Some(waker) };
            // AcqRel: as in `join`.
            let before = self.state.fetch_or(WAITING, Ordering::AcqRel);
            if before & COMPLETE == 0 {
                return Poll::Pending;
            }
            // SAFETY: as in `join`: the fiber saw no WAITING.
            drop(unsafe { (*self.waker.get()).take() });
        }
        // Relaxed: only the handle reads the bit, and it set it.
        self.state.fetch_or(TAKEN, Ordering::Relaxed);
        // SAFETY: COMPLETE is set, so the value is there and ours.
        Poll::Ready(unsafe { self.read::<V>() })
    }

    /// Handle side, for a `Select` round: `true` if the result is there;
    /// else `waiter` is left for the fiber to wake as it completes, until
    /// [`unwatch`](Self::unwatch) takes it back.
    ///
    /// # Safety
    ///
    /// As for [`poll`](Self::poll): called by the handle, with no other
    /// handle-side call at the same time; after `false`, `unwatch` follows
    /// before any other.
    pub(crate) unsafe fn watch(&self, waiter: &Arc<Waiter>) -> bool {
        // SAFETY: called by the handle.
        if unsafe { self.state_for_handle() } & COMPLETE != 0 {
            return true;
        }
        // SAFETY: the waker is ours until WAITING is set.
        unsafe { *self.waker.get() = Some(Joiner::Watched(waiter.clone())) };
        // AcqRel: as in `join`.
        let before = self.state.fetch_or(WAITING, Ordering::AcqRel);
        if before & COMPLETE == 0 {
            return false;
        }
        // SAFETY: as in `join`: the fiber saw no WAITING.
        drop(unsafe { (*self.waker.get()).take() });
        true
    }

    /// Handle side: takes back the waiter [`watch`](Self::watch) left,
    /// unless the fiber has completed and owns it (it wakes it, or has).
    ///
    /// # Safety
    ///
    /// Called by the handle after a `watch` that returned `false`, with no
    /// other handle-side call at the same time.
    pub(crate) unsafe fn unwatch(&self) {
        // SAFETY: the caller's contract; WAITING is set (by `watch`).
        unsafe { self.take_back_waker() };
    }

    /// Handle side: panics if a poll took the value already, as every
    /// handle-side call does.
    pub(crate) fn check_not_taken(&self) {
        // Relaxed: only the handle sets TAKEN, and the caller is the handle.
        let state = self.state.load(Ordering::Relaxed);
        assert!(
            state & TAKEN == 0,
            "a JoinHandle used after a poll gave its result"
        );
    }

    /// Handle side: the slot's state, once the handle has taken back the
    /// waker an earlier poll left in the slot (with `WAITING` set), unless
    /// the fiber has completed and owns it (the value is there then).
    ///
    /// # Panics
    ///
    /// If a poll took the value already.
    ///
    /// # Safety
    ///
    /// Called by the handle, which alone sets `WAITING` and `TAKEN`.
    #[inline]
    unsafe fn state_for_handle(&self) -> u8 {
        // Acquire: pairs with the Release in `complete`.
        let state = self.state.load(Ordering::Acquire);
        if state & (WAITING | TAKEN) == 0 {
            return state;
        }
        assert!(
            state & TAKEN == 0,
            "a JoinHandle used after a poll gave its result"
        );
        // SAFETY: the caller's contract.
        unsafe { self.take_back_waker() };
        // Acquire: as above.
        self.state.load(Ordering::Acquire)
    }

    /// Takes back the waker a poll left (`WAITING` is set), unless the
    /// fiber has completed and owns it.
    ///
    /// # Safety
    ///
    /// As for [`state_for_handle`](Self::state_for_handle).
    #[cold]
    #[inline(never)]
    unsafe fn take_back_waker(&self) {
        // Acquire: sees the value if COMPLETE is set (see `join_until`).
        let before = self.state.fetch_and(!WAITING, Ordering::Acquire);
        if before & COMPLETE == 0 {
            // SAFETY: WAITING is cleared before the fiber saw it, so the
            // fiber never touches the waker.
            drop(unsafe { (*self.waker.get()).take() });
        }
    }

    /// Handle side: the handle is dropped without joining; the result, now
    /// or later, is dropped.
    ///
    /// # Safety
    ///
    /// As for [`join`](Self::join), instead of it, or after a `join` that
    /// unwound (out of its park) before it took the value.
    pub(crate) unsafe fn detach<V>(&self) {
        // AcqRel: Acquire sees a value already there; Release tells the fiber.
        let before = self.state.fetch_or(DETACHED, Ordering::AcqRel);
        if before & (COMPLETE | TAKEN) == COMPLETE {
            // SAFETY: complete, not taken by a join or a poll: ours to drop.
            drop(unsafe { self.read::<V>() });
        }
    }

    /// Whether the result is there.
    pub(crate) fn is_complete(&self) -> bool {
        // Acquire: a caller that sees it may go on to take the value.
        self.state.load(Ordering::Acquire) & COMPLETE != 0
    }

    /// Before the fiber starts: keeps its closure in the result's room.
    ///
    /// # Safety
    ///
    /// `fits::<F>()`; the room is unused, and [`unstash`](Self::unstash)
    /// takes the closure out before anything else uses the room.
    pub(crate) unsafe fn stash<F>(&self, f: F) {
        debug_assert!(Self::fits::<F>());
        // SAFETY: as promised by the caller.
        unsafe { self.value.get().cast::<F>().write(f) };
    }

    /// Takes back the closure put there by [`stash`](Self::stash).
    ///
    /// # Safety
    ///
    /// The room holds an `F` from `stash`, taken once.
    pub(crate) unsafe fn unstash<F>(&self) -> F {
        // SAFETY: as promised by the caller.
        unsafe { self.value.get().cast::<F>().read() }
    }

    /// Whether a `V` is kept in place rather than boxed.
    pub(crate) const fn fits<V>() -> bool {
        mem::size_of::<V>() <= mem::size_of::<Inline>()
            && mem::align_of::<V>() <= mem::align_of::<Inline>()
    }

    /// # Safety
    ///
    /// The caller owns the slot, which holds no value.
    unsafe fn write<V>(&self, value: V) {
        let at = self.value.get();
        // SAFETY: the slot is ours; `fits` checked size and alignment, and
        // a box always fits.
        unsafe {
            if Self::fits::<V>() {
                at.cast::<V>().write(value);
            } else {
                at.cast::<Box<V>>().write(Box::new(value));
            }
        }
    }

    /// # Safety
    ///
    /// The caller owns the slot, which holds a `V` put there by `write`;
    /// afterwards it holds none.
    unsafe fn read<V>(&self) -> V {
        let at = self.value.get();
        // SAFETY: as `write` left it.
        unsafe {
            if Self::fits::<V>() {
                at.cast::<V>().read()
            } else {
                *at.cast::<Box<V>>().read()
            }
        }
    }
}

// SAFETY: the cells are handed between the fiber and the handle by the
// protocol above, whose atomic bits order every access; values put in are
// `Send` (checked where a handle is made).
unsafe impl Sync for JoinSlot {}
// SAFETY: as above.
unsafe impl Send for JoinSlot {}

#[cfg(test)]
mod tests {
    //! That a `Select` round's waiter leaves the slot however the round
    //! ends, and is woken when the fiber completes while it is there.

    use std::sync::Arc;

    use super::JoinSlot;
    use crate::sync::waiter::Waiter;

    #[test]
    fn a_watch_taken_back_leaves_no_waiter_in_the_slot() {
        let slot = JoinSlot::new();
        let waiter = Waiter::new();
        // SAFETY: this test is the slot's only handle, and unwatches after
        // the `false`.
        assert!(!unsafe { slot.watch(&waiter) });
        assert_eq!(Arc::strong_count(&waiter), 2, "the slot holds it");
        // SAFETY: as above.
        unsafe { slot.unwatch() };
        assert_eq!(Arc::strong_count(&waiter), 1);
        assert!(!waiter.is_notified());
        // SAFETY: completed once, with the type read below.
        assert!(!unsafe { slot.complete(7u32) });
        // SAFETY: the only handle; the value is a `u32`.
        assert_eq!(unsafe { slot.join::<u32>(&"test") }, 7);
    }

    #[test]
    fn a_completion_wakes_the_watcher_and_drops_its_entry() {
        let slot = JoinSlot::new();
        let waiter = Waiter::new();
        // SAFETY: this test is the slot's only handle, and unwatches after
        // the `false`.
        assert!(!unsafe { slot.watch(&waiter) });
        // SAFETY: completed once, with the type read below.
        assert!(!unsafe { slot.complete(7u32) });
        assert!(waiter.is_notified());
        assert_eq!(Arc::strong_count(&waiter), 1, "the fiber dropped it");
        // SAFETY: as above; the fiber owns the waker, which is gone.
        unsafe { slot.unwatch() };
        // SAFETY: the only handle; nothing else is on the slot meanwhile.
        assert!(unsafe { slot.watch(&Waiter::new()) }, "complete: ready");
        // SAFETY: the only handle; the value is a `u32`.
        assert_eq!(unsafe { slot.join::<u32>(&"test") }, 7);
    }
}
