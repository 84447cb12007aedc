//! A write-once cell holding one node's output for the length of a run.
//!
//! The executor's counters already order every write before every read, but
//! the slot does not rely on that for soundness: a small state machine makes
//! each access check that it is allowed, so a wrongly wired graph panics
//! instead of reading uninitialised memory or moving a value out from under
//! a borrow.

use std::cell::UnsafeCell;
use std::fmt;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU8, Ordering};

/// No value yet.
const EMPTY: u8 = 0;
/// One writer owns the cell while it stores the value.
const WRITING: u8 = 1;
/// A value is present and nobody has borrowed or taken it.
const FULL: u8 = 2;
/// A value is present and has been lent out: it can no longer be taken
/// through `&self`, only through `&mut self` once the borrows are over.
const SHARED: u8 = 3;
/// The value was moved out.
const TAKEN: u8 = 4;

/// A write-once cell: [`put`](Slot::put) once, then either lend it out with
/// [`get`](Slot::get) any number of times or move it out once with
/// [`take`](Slot::take), never both.
pub struct Slot<T> {
    state: AtomicU8,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: every way to get a value into a slot (`full`, `put`) requires
// `T: Send`, so a slot of a type that is not `Send` stays empty forever and
// holds nothing that could cross a thread.
unsafe impl<T> Send for Slot<T> {}

// SAFETY: threads sharing a `&Slot<T>` can move a `T` in (`put`) and out
// (`take`), which require `T: Send`, and can borrow it only through `get`,
// which requires `T: Sync`: the reasoning that makes `Mutex<T>: Sync` for
// `T: Send`. A slot of a type that is not `Send` is always empty (see above).
unsafe impl<T> Sync for Slot<T> {}

impl<T> Slot<T> {
    /// An empty slot.
    ///
    /// Any `T` may have one, so that a graph's slot struct is `Send + Sync`
    /// whatever its nodes output; only a `Send` value can be put in.
    pub const fn empty() -> Self {
        Slot {
            state: AtomicU8::new(EMPTY),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Whether a value is present.
    pub fn is_full(&self) -> bool {
        // Relaxed: a snapshot for reports and assertions, no data is read.
        matches!(self.state.load(Ordering::Relaxed), FULL | SHARED)
    }
}

impl<T: Send> Slot<T> {
    /// A slot that already holds `value`.
    pub const fn full(value: T) -> Self {
        Slot {
            state: AtomicU8::new(FULL),
            value: UnsafeCell::new(MaybeUninit::new(value)),
        }
    }

    /// Stores `value`; gives it back if the slot was written before.
    pub fn put(&self, value: T) -> Result<(), T> {
        // Relaxed: winning the race only needs the CAS to be atomic; the
        // value is published by the Release store below.
        if self
            .state
            .compare_exchange(EMPTY, WRITING, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return Err(value);
        }
        // SAFETY: the successful EMPTY -> WRITING transition makes this thread
        // the only one that may touch the cell until it stores FULL.
        unsafe { (*self.value.get()).write(value) };
        // Release: readers that observe FULL with Acquire see the value.
        self.state.store(FULL, Ordering::Release);
        Ok(())
    }
}

/// Reading needs no `T: Send`: a slot of a type that is not `Send` is
/// always empty, so these only ever find `None` in one.
impl<T> Slot<T> {
    /// Lends the value out, or `None` when there is none (or it was taken).
    pub fn get(&self) -> Option<&T>
    where
        T: Sync,
    {
        // Acquire: pairs with `put`'s Release so the value is visible.
        let mut state = self.state.load(Ordering::Acquire);
        if state == FULL {
            // Acquire on both outcomes for the same reason as the load.
            state = match self.state.compare_exchange(
                FULL,
                SHARED,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => SHARED,
                Err(now) => now,
            };
        }
        if state != SHARED {
            return None;
        }
        // SAFETY: SHARED means the value is initialised, and no `&self`
        // method leaves SHARED, so nothing can move or drop the value while
        // the returned borrow (tied to `&self`) lives.
        Some(unsafe { (*self.value.get()).assume_init_ref() })
    }

    /// Moves the value out, or `None` when there is none or it has been lent.
    pub fn take(&self) -> Option<T> {
        // Acquire: pairs with `put`'s Release so the value is visible.
        self.state
            .compare_exchange(FULL, TAKEN, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        // SAFETY: the FULL -> TAKEN transition happens once, so this is the
        // only read of an initialised value that nobody has borrowed.
        Some(unsafe { (*self.value.get()).assume_init_read() })
    }

    /// Moves the value out through exclusive access: borrows handed out by
    /// [`get`](Slot::get) are over, so a lent value can be taken too.
    pub fn take_mut(&mut self) -> Option<T> {
        let state = self.state.get_mut();
        if *state != FULL && *state != SHARED {
            return None;
        }
        *state = TAKEN;
        // SAFETY: the state said initialised and is now TAKEN, so the value
        // is read once and never dropped again.
        Some(unsafe { self.value.get_mut().assume_init_read() })
    }
}

impl<T> Slot<T> {
    /// Drops the value, lent out or not, through a shared reference: for
    /// a run-time input once its last reader is done with it.
    ///
    /// # Safety
    ///
    /// No borrow handed out by [`get`](Slot::get) is alive, and none is
    /// asked for afterwards (the value is gone; `get` would say `None`,
    /// but a borrow taken before this call would dangle).
    pub unsafe fn drop_lent(&self) {
        // Acquire: the value was written (Release in `put`, or by the
        // slot's making) before it was lent or taken.
        let state = self.state.swap(TAKEN, Ordering::Acquire);
        if matches!(state, FULL | SHARED) {
            // SAFETY: the state said initialised, the swap made this the
            // only party to drop it, and no borrow is alive (the caller's
            // contract).
            unsafe { (*self.value.get()).assume_init_drop() };
        }
    }
}

impl<T> Drop for Slot<T> {
    fn drop(&mut self) {
        if matches!(*self.state.get_mut(), FULL | SHARED) {
            // SAFETY: the state says the value is initialised, and `&mut self`
            // rules out any outstanding borrow. (Only a `Send` value gets
            // here, so dropping it on this thread is fine.)
            unsafe { self.value.get_mut().assume_init_drop() };
        }
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot::empty()
    }
}

impl<T> fmt::Debug for Slot<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Relaxed: a snapshot for display only.
        let state = match self.state.load(Ordering::Relaxed) {
            EMPTY => "empty",
            WRITING => "writing",
            FULL => "full",
            SHARED => "shared",
            _ => "taken",
        };
        f.debug_struct("Slot").field("state", &state).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Slot;
    use std::sync::Arc;

    #[test]
    fn put_once_then_lend() {
        let slot = Slot::empty();
        assert_eq!(slot.get(), None);
        assert_eq!(slot.put(7u32), Ok(()));
        assert_eq!(slot.put(8), Err(8));
        assert_eq!(slot.get(), Some(&7));
        assert_eq!(
            slot.take(),
            None,
            "a lent value cannot be moved through &self"
        );
    }

    #[test]
    fn take_once() {
        let slot = Slot::full(String::from("x"));
        assert_eq!(slot.take().as_deref(), Some("x"));
        assert_eq!(slot.take(), None);
        assert_eq!(slot.get(), None);
        assert!(!slot.is_full());
    }

    #[test]
    fn take_mut_after_lending() {
        let mut slot = Slot::full(vec![1, 2]);
        assert_eq!(slot.get().map(Vec::len), Some(2));
        assert_eq!(slot.take_mut(), Some(vec![1, 2]));
        assert_eq!(slot.take_mut(), None);
    }

    #[test]
    fn drops_what_it_holds_exactly_once() {
        let token = Arc::new(());
        let full = Slot::full(Arc::clone(&token));
        let taken = Slot::full(Arc::clone(&token));
        let moved_out = taken.take();
        assert_eq!(Arc::strong_count(&token), 3);
        drop(full);
        drop(taken);
        assert_eq!(Arc::strong_count(&token), 2);
        drop(moved_out);
        assert_eq!(Arc::strong_count(&token), 1);
    }

    #[test]
    fn concurrent_readers_see_the_write() {
        let slot = Arc::new(Slot::empty());
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let slot = Arc::clone(&slot);
                std::thread::spawn(move || loop {
                    if let Some(v) = slot.get() {
                        break *v;
                    }
                    std::hint::spin_loop();
                })
            })
            .collect();
        slot.put(42u64).unwrap();
        for r in readers {
            assert_eq!(r.join().unwrap(), 42);
        }
    }
}
