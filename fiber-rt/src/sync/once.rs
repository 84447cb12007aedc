//! One-time initialisation whose waiters park: `OnceLock` and `LazyLock`.
//!
//! std's `OnceLock` and `LazyLock` block the thread of a party that finds
//! another initialising. Under fibers that thread is a worker, and if the
//! initialiser is a fiber parked on that same worker (its closure reads a
//! socket, sleeps, waits for a channel), it never runs again: the worker
//! is deadlocked. Here the waiting party parks instead.
//!
//! The protocol: `state` goes from `EMPTY` to `RUNNING` by a compare-and-
//! swap that makes one party the initialiser, then to `DONE` once the
//! value is written, or back to `EMPTY` if the closure fails, panics or is
//! cancelled. Whoever moves it off `RUNNING` then takes the list of
//! waiters under its lock and wakes them all; a waiter registers under
//! that lock after it has seen `RUNNING` there, so it is either in the
//! list that gets woken or sees the new state and never waits.

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::mem::MaybeUninit;
use std::ops::Deref;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use super::waiter::{self, Waiter};
use crate::sched::park::Waker;

/// Who waits for a cell's initialiser, and who that is (to tell a
/// re-entrant call, which would wait for itself).
#[derive(Default)]
struct Waiting {
    initializer: Option<Waker>,
    waiters: Vec<Arc<Waiter>>,
}

const EMPTY: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;

/// A cell written once, whose readers wait, parked, while another party
/// initialises it: std's `OnceLock`, for fibers. A fiber that calls
/// [`get_or_init`](Self::get_or_init) while another fiber runs the
/// closure parks, and its worker runs others (the initialiser among them,
/// if its closure parks too); a plain thread blocks.
///
/// If the closure panics, or its fiber is cancelled, the cell stays empty
/// and the next caller runs its own closure.
///
/// ```
/// use fiber_rt::sync::OnceLock;
/// use std::time::Duration;
///
/// static CONFIG: OnceLock<String> = OnceLock::new();
///
/// let rt = fiber_rt::Runtime::builder().workers(1).build().unwrap();
/// let lens: Vec<usize> = rt.block_on(|| {
///     let readers: Vec<_> = (0..4)
///         .map(|_| {
///             fiber_rt::spawn(|| {
///                 CONFIG
///                     .get_or_init(|| {
///                         // Parks: the others wait parked, not blocking
///                         // the one worker this fiber needs to go on.
///                         fiber_rt::sleep(Duration::from_millis(5));
///                         "port = 8080".to_string()
///                     })
///                     .len()
///             })
///         })
///         .collect();
///     readers.into_iter().map(|r| r.join().unwrap()).collect()
/// });
/// assert_eq!(lens, [11; 4]);
/// ```
pub struct OnceLock<T> {
    state: AtomicU8,
    /// Parties waiting for the initialiser to finish, and the initialiser.
    waiters: std::sync::Mutex<Waiting>,
    /// Written once by the initialiser, before `state` becomes `DONE`.
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the value is written by one party (the one that moved `state` to
// RUNNING) before `DONE` is published, and only read after `DONE` is seen,
// so it is shared like a `&T` once written: `Sync` needs `T: Sync`, and
// `Send` too, since the writer may be another thread than the readers
// (and `into_inner` moves it out wherever the cell went).
unsafe impl<T: Send + Sync> Sync for OnceLock<T> {}
// SAFETY: the cell owns a `T`, moved with it.
unsafe impl<T: Send> Send for OnceLock<T> {}

impl<T: RefUnwindSafe + UnwindSafe> RefUnwindSafe for OnceLock<T> {}
impl<T: UnwindSafe> UnwindSafe for OnceLock<T> {}

impl<T> OnceLock<T> {
    /// An empty cell.
    pub const fn new() -> Self {
        OnceLock {
            state: AtomicU8::new(EMPTY),
            waiters: std::sync::Mutex::new(Waiting {
                initializer: None,
                waiters: Vec::new(),
            }),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// The value, if the cell has one; never waits.
    pub fn get(&self) -> Option<&T> {
        // Acquire: pairs with the Release that publishes DONE, so the
        // value written before it is seen.
        if self.state.load(Ordering::Acquire) == DONE {
            // SAFETY: DONE: written, and kept until `take` (`&mut self`).
            Some(unsafe { (*self.value.get()).assume_init_ref() })
        } else {
            None
        }
    }

    /// The value, if the cell has one; `&mut self` proves nobody else
    /// looks.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        if *self.state.get_mut() == DONE {
            // SAFETY: DONE, and the borrow is exclusive.
            Some(unsafe { self.value.get_mut().assume_init_mut() })
        } else {
            None
        }
    }

    /// The value, waiting (parked, if a fiber) until some party has
    /// initialised the cell.
    pub fn wait(&self) -> &T {
        loop {
            if let Some(value) = self.get() {
                return value;
            }
            self.wait_until_set();
        }
    }

    /// The value, initialising the cell with `f` if it is empty. A party
    /// that finds another initialising waits for it (parked, if a fiber).
    ///
    /// # Panics
    ///
    /// If `f` calls it again on the same cell (it would wait for itself).
    pub fn get_or_init(&self, f: impl FnOnce() -> T) -> &T {
        match self.get_or_try_init(|| Ok::<T, std::convert::Infallible>(f())) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// [`get_or_init`](Self::get_or_init) with a closure that may fail:
    /// an `Err` leaves the cell empty, for the next caller to try, and is
    /// returned.
    pub fn get_or_try_init<E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<&T, E> {
        if let Some(value) = self.get() {
            return Ok(value);
        }
        self.initialize(f)
    }

    /// Puts `value` in the cell if it is empty (waiting for an initialiser
    /// at work, whose value then wins); otherwise gives `value` back.
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        self.get_or_init(|| value.take().expect("taken once"));
        match value {
            None => Ok(()),
            Some(value) => Err(value),
        }
    }

    /// The value, if any, consuming the cell.
    pub fn into_inner(mut self) -> Option<T> {
        self.take()
    }

    /// Takes the value out, leaving the cell empty.
    pub fn take(&mut self) -> Option<T> {
        if *self.state.get_mut() != DONE {
            return None;
        }
        *self.state.get_mut() = EMPTY;
        // SAFETY: it was DONE, and now no one reads the value again.
        Some(unsafe { self.value.get_mut().assume_init_read() })
    }

    #[cold]
    fn initialize<E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<&T, E> {
        let mut f = Some(f);
        loop {
            // Acquire on both outcomes: a DONE seen must show the value.
            match self
                .state
                .compare_exchange(EMPTY, RUNNING, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => {
                    let f = f.take().expect("an initialiser runs its closure once");
                    return self.run(f);
                }
                // SAFETY: DONE: written, and kept until `take` (`&mut self`).
                Err(DONE) => return Ok(unsafe { (*self.value.get()).assume_init_ref() }),
                Err(_) => self.wait_while_running(),
            }
        }
    }

    /// Runs the initialiser's closure; the cell is RUNNING and ours.
    fn run<E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<&T, E> {
        self.lock().initializer = Some(Waker::current());
        // A panic, or a cancellation's unwind, leaves the cell empty and
        // wakes the waiters, one of which initialises it then.
        let reset = Finish { cell: self };
        let result = f();
        std::mem::forget(reset);
        match result {
            Ok(value) => {
                // SAFETY: RUNNING is ours: nobody else writes or reads.
                unsafe { (*self.value.get()).write(value) };
                self.finish(DONE);
                // SAFETY: written just above, and DONE.
                Ok(unsafe { (*self.value.get()).assume_init_ref() })
            }
            Err(error) => {
                self.finish(EMPTY);
                Err(error)
            }
        }
    }

    /// Leaves RUNNING for `state` and wakes every waiter.
    fn finish(&self, state: u8) {
        let waiters = {
            let mut waiting = self.lock();
            // Release: publishes the value (for DONE). Stored under the
            // waiters' lock, so a party that registers after sees it (see
            // the module's protocol), and so is the initialiser cleared:
            // the next one, whose compare-and-swap comes after this store,
            // names itself in `run` only once this lock is released,
            // which then leaves its name alone (a name cleared there made
            // its re-entrant call wait for itself, rather than panic).
            self.state.store(state, Ordering::Release);
            waiting.initializer = None;
            std::mem::take(&mut waiting.waiters)
        };
        for waiter in waiters {
            // Hands nothing over: a waiter that never acts on it (an
            // abandoned fiber) takes nothing from the others, who all try.
            waiter.wake();
        }
    }

    /// Waits until the initialiser at work is done (or gave up).
    fn wait_while_running(&self) {
        self.wait_for(RUNNING, &"OnceLock::get_or_init");
    }

    /// Waits until the cell has a value, or its initialiser gave up.
    fn wait_until_set(&self) {
        self.wait_for(EMPTY, &"OnceLock::wait");
        self.wait_for(RUNNING, &"OnceLock::wait");
    }

    /// Waits while the state is `state` (EMPTY or RUNNING).
    fn wait_for(&self, state: u8, reason: crate::sched::park::Reason) {
        let waiter = {
            let mut waiting = self.lock();
            // Relaxed: under the lock, after which `finish` stores; a
            // stale state only means one more registration, woken by the
            // `finish` that follows. The caller's next look reads the
            // state with Acquire.
            if self.state.load(Ordering::Relaxed) != state {
                return;
            }
            if state == RUNNING && waiting.initializer.as_ref().is_some_and(Waker::is_current) {
                drop(waiting);
                panic!("OnceLock waited on from inside its own initialisation");
            }
            let waiter = Waiter::new();
            waiting.waiters.push(waiter.clone());
            waiter
        };
        waiter::wait_or_cancel(&waiter, reason, || {
            self.lock().waiters.retain(|w| !Arc::ptr_eq(w, &waiter));
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        // Nothing under the lock can panic halfway.
        self.waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Puts an initialiser's cell back to empty if its closure unwinds.
struct Finish<'a, T> {
    cell: &'a OnceLock<T>,
}

impl<T> Drop for Finish<'_, T> {
    fn drop(&mut self) {
        self.cell.finish(EMPTY);
    }
}

impl<T> Drop for OnceLock<T> {
    fn drop(&mut self) {
        drop(self.take());
    }
}

impl<T> Default for OnceLock<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> From<T> for OnceLock<T> {
    fn from(value: T) -> Self {
        OnceLock {
            state: AtomicU8::new(DONE),
            waiters: std::sync::Mutex::new(Waiting {
                initializer: None,
                waiters: Vec::new(),
            }),
            value: UnsafeCell::new(MaybeUninit::new(value)),
        }
    }
}

impl<T: Clone> Clone for OnceLock<T> {
    fn clone(&self) -> Self {
        match self.get() {
            Some(value) => OnceLock::from(value.clone()),
            None => OnceLock::new(),
        }
    }
}

impl<T: PartialEq> PartialEq for OnceLock<T> {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl<T: Eq> Eq for OnceLock<T> {}

impl<T: fmt::Debug> fmt::Debug for OnceLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_tuple("OnceLock");
        match self.get() {
            Some(value) => d.field(value),
            None => d.field(&format_args!("<uninit>")),
        };
        d.finish()
    }
}

/// A value made at its first use, whose other first users wait, parked,
/// while it is made: std's `LazyLock`, for fibers (see [`OnceLock`]).
///
/// If the function panics, the value is never made, and every later use
/// panics, as std's does. So does a cancellation of the fiber running it
/// (by its handle, or by the runtime's shutdown, which cancels every
/// fiber): a function that parks is where cancellations land, and it
/// cannot run twice. For a value whose making may park and be cancelled,
/// use a [`OnceLock`] and `get_or_init`, which the next party retries.
///
/// ```
/// use fiber_rt::sync::LazyLock;
///
/// static TABLE: LazyLock<Vec<u64>> = LazyLock::new(|| (0..10).map(|i| i * i).collect());
///
/// let rt = fiber_rt::Runtime::new().unwrap();
/// assert_eq!(rt.block_on(|| TABLE[3]), 9);
/// ```
pub struct LazyLock<T, F = fn() -> T> {
    cell: OnceLock<T>,
    /// Taken by the one party that makes the value.
    init: Cell<Option<F>>,
}

// SAFETY: `init` is taken only by the party that made the cell RUNNING,
// one at a time (an unwinding one leaves it taken), so it is moved to one
// thread, never shared: `F: Send`. The value is shared as in `OnceLock`.
unsafe impl<T: Send + Sync, F: Send> Sync for LazyLock<T, F> {}

impl<T: RefUnwindSafe + UnwindSafe, F: UnwindSafe> RefUnwindSafe for LazyLock<T, F> {}

impl<T, F: FnOnce() -> T> LazyLock<T, F> {
    /// A value to be made by `init` at its first use.
    pub const fn new(init: F) -> Self {
        LazyLock {
            cell: OnceLock::new(),
            init: Cell::new(Some(init)),
        }
    }

    /// The value, made now if it was not yet (waiting, parked, for
    /// another party that is making it).
    ///
    /// # Panics
    ///
    /// If making it panicked before.
    pub fn force(this: &Self) -> &T {
        this.cell.get_or_init(|| match this.init.take() {
            Some(init) => init(),
            None => poisoned(),
        })
    }

    /// The value, made now if it was not yet; `&mut` proves nobody else
    /// looks.
    ///
    /// # Panics
    ///
    /// If making it panicked before.
    pub fn force_mut(this: &mut Self) -> &mut T {
        if this.cell.get_mut().is_none() {
            let value = match this.init.get_mut().take() {
                Some(init) => init(),
                None => poisoned(),
            };
            // Empty, and exclusively ours: it takes the value.
            let _ = this.cell.set(value);
        }
        this.cell.get_mut().expect("made just above")
    }

    /// The value, if it has been made; never waits.
    pub fn get(this: &Self) -> Option<&T> {
        this.cell.get()
    }

    /// The value, if it has been made.
    pub fn get_mut(this: &mut Self) -> Option<&mut T> {
        this.cell.get_mut()
    }
}

#[cold]
fn poisoned() -> ! {
    panic!("LazyLock instance has previously been poisoned")
}

impl<T: Default> Default for LazyLock<T> {
    /// A value to be made by `T::default` at its first use.
    fn default() -> Self {
        LazyLock::new(T::default)
    }
}

impl<T, F: FnOnce() -> T> std::ops::DerefMut for LazyLock<T, F> {
    fn deref_mut(&mut self) -> &mut T {
        LazyLock::force_mut(self)
    }
}

impl<T, F: FnOnce() -> T> Deref for LazyLock<T, F> {
    type Target = T;

    fn deref(&self) -> &T {
        LazyLock::force(self)
    }
}

impl<T: fmt::Debug, F> fmt::Debug for LazyLock<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_tuple("LazyLock");
        match self.cell.get() {
            Some(value) => d.field(value),
            None => d.field(&format_args!("<uninit>")),
        };
        d.finish()
    }
}
