//! Fiber-local values: [`fiber_local!`](crate::fiber_local) declares a
//! static with a value of its own in every fiber, as `thread_local!` does
//! per thread.
//!
//! A `thread_local!` is the wrong tool inside a fiber: the fiber may move
//! to another worker thread at any switch, and the compiler may keep the
//! address of a thread-local across that switch (rust-lang/rust#98479).
//! A fiber-local belongs to the fiber and moves with it, so a reference to
//! it stays right across switches.
//!
//! The values of a fiber are found from its stack, without a thread-local,
//! made at the first use and dropped when the fiber's closure is done,
//! before its `JoinHandle` sees the result. Outside a runtime's fibers (a
//! plain thread, or a hand-driven [`Fiber`](crate::fiber::Fiber)) the
//! static is an ordinary thread-local. That includes the closures of
//! [`spawn_blocking`](crate::spawn_blocking), whose pool keeps its threads:
//! a value one job makes is there for the next job on the same thread.
//!
//! Graph nodes that never block run inline, on a runner fiber that runs
//! many nodes in turn: they share that fiber's values. Give a node state of
//! its own through its inputs and outputs instead.

use std::any::Any;
use std::cell::OnceCell;
use std::fmt;

use crate::sched::task::Task;
use crate::stack::StackHeader;

/// A fiber-local static, declared by [`fiber_local!`](crate::fiber_local).
pub struct LocalKey<T: 'static> {
    init: fn() -> T,
    /// The value of a plain thread, where there is no fiber.
    thread: &'static std::thread::LocalKey<OnceCell<T>>,
}

/// The values of one fiber.
#[derive(Default)]
struct Values {
    /// By key: few keys are in use at once, so a list. Each value is
    /// boxed, so a reference handed out stays put while other keys are
    /// added. `None` while the key's initializer runs.
    entries: Vec<(*const (), Option<Box<dyn Any>>)>,
    /// Keys whose values the fiber's end has dropped: using one again (in
    /// another's destructor) panics, as a thread-local does, rather than
    /// make a value to drop again, maybe for ever.
    dropped: Vec<*const ()>,
}

impl<T: 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn new(
        init: fn() -> T,
        thread: &'static std::thread::LocalKey<OnceCell<T>>,
    ) -> LocalKey<T> {
        LocalKey { init, thread }
    }

    /// Calls `f` with the calling fiber's value, made by the initializer
    /// at the fiber's first use. The reference may be held across
    /// switches (parks, yields, preemption): it is the fiber's, wherever
    /// the fiber runs.
    ///
    /// # Panics
    ///
    /// If the initializer uses this same key.
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let Some(task) = Task::current() else {
            return self.thread.with(|cell| f(cell.get_or_init(self.init)));
        };
        // The value is boxed in the fiber's list, which only this fiber
        // touches and which drops nothing before the fiber's closure is
        // done, so it outlives this call; adding keys moves the boxes'
        // pointers, never the values.
        let value = self.value_in(task);
        // SAFETY: as just said, the value is live and not moved meanwhile.
        f(unsafe { &*value })
    }

    /// The address of the fiber's value, made if it has none.
    fn value_in(&'static self, task: &Task) -> *const T {
        let key = self as *const LocalKey<T> as *const ();
        match find(task, key) {
            Some(Some(value)) => return value.cast(),
            Some(None) => panic!("a fiber_local's initializer used the same fiber-local"),
            None if values(task).dropped.contains(&key) => {
                panic!("a fiber_local was used after the fiber's end dropped it")
            }
            None => {}
        }
        // Marked as being made, then made with no borrow of the list held:
        // the initializer may use other fiber-locals (not this one).
        values(task).entries.push((key, None));
        let unmark = Unmark { task, key };
        let made: Box<dyn Any> = Box::new((self.init)());
        std::mem::forget(unmark);
        let value = (&*made as *const dyn Any).cast::<T>();
        let entry = values(task)
            .entries
            .iter_mut()
            .find(|(k, _)| *k == key)
            .expect("marked above");
        entry.1 = Some(made);
        value
    }
}

/// Takes the mark of a key out of the list if its initializer panics.
struct Unmark<'a> {
    task: &'a Task,
    key: *const (),
}

impl Drop for Unmark<'_> {
    fn drop(&mut self) {
        values(self.task).entries.retain(|(k, _)| *k != self.key);
    }
}

/// The entry for `key` in `task`'s list, if it has one: its value's
/// address, or `None` while its initializer runs.
fn find(task: &Task, key: *const ()) -> Option<Option<*const ()>> {
    let list = task.header().locals.get().cast::<Values>();
    // SAFETY: a non-null list is the fiber's, made by `values`, and only
    // the fiber itself (the caller) uses it.
    let list = unsafe { list.as_ref() }?;
    list.entries
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, value)| {
            value
                .as_ref()
                .map(|value| (&**value as *const dyn Any).cast::<()>())
        })
}

/// The fiber's list, made if it has none.
#[allow(clippy::mut_from_ref)]
fn values(task: &Task) -> &mut Values {
    let header = task.header();
    let mut list = header.locals.get().cast::<Values>();
    if list.is_null() {
        list = Box::into_raw(Box::<Values>::default());
        header.locals.set(list.cast());
    }
    // SAFETY: made above or by an earlier call, and used only by the fiber
    // itself, one call at a time (no reference to the list outlives one).
    unsafe { &mut *list }
}

/// Whether the running fiber has fiber-local values to drop, asked at its
/// base, on its own stack: the header found from the stack pointer, and a
/// load, so that fibers that use none (most) pay little more at their end.
#[inline(always)]
pub(crate) fn any() -> bool {
    // SAFETY: the header of the stack the caller runs on is live.
    StackHeader::current().is_some_and(|header| unsafe { !(*header).locals.get().is_null() })
}

/// At the end of a fiber of the runtime's own (a graph's runner, whose
/// nodes may use fiber-locals; spawned fibers drop theirs in their join
/// wrapper): drops its values, if any. As for threads, a destructor's
/// panic here ends the process.
pub(crate) fn drop_at_exit() {
    if !any() {
        return;
    }
    let task = Task::current().expect("any() found a fiber");
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop_current(task)));
    if dropped.is_err_and(|payload| !payload.is::<crate::sched::Cancelled>()) {
        crate::sched::abort_with("a fiber-local's destructor panicked");
    }
}

/// Calls [`drop_at_exit`] when dropped: at the end of a runtime fiber's
/// closure, an unwind's included.
pub(crate) struct DropAtExit;

impl Drop for DropAtExit {
    fn drop(&mut self) {
        drop_at_exit();
    }
}

/// Drops the running fiber's fiber-local values, newest first. A
/// destructor may use a fiber-local not dropped yet (one it makes is
/// dropped in turn), not one already dropped (that panics). Every value is
/// dropped, whatever panics; the first panic goes on once they are.
#[inline(never)]
pub(crate) fn drop_current(task: &Task) {
    let mut first_panic = None;
    // A fresh borrow of the list each time: destructors use it too.
    while let Some((key, value)) = values(task).entries.pop() {
        values(task).dropped.push(key);
        if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(value)))
        {
            first_panic.get_or_insert(payload);
        }
    }
    let list = task
        .header()
        .locals
        .replace(std::ptr::null_mut())
        .cast::<Values>();
    // SAFETY: made by `values` with `Box::into_raw` (just now at the
    // latest), and taken out of the header just above, so dropped once.
    drop(unsafe { Box::from_raw(list) });
    if let Some(payload) = first_panic {
        std::panic::resume_unwind(payload);
    }
}

/// Takes the running fiber's fiber-local values, if any, out of its stack
/// for good, without dropping them: for destructors that keep making new
/// ones, so that none reaches the next fiber on the stack.
pub(crate) fn forget_current(task: &Task) {
    let list = task.header().locals.replace(std::ptr::null_mut());
    // Leaked on purpose: dropping more values could make more.
    let _ = list;
}

/// The shorthands of `std`'s thread-locals, for a fiber-local `Cell`.
impl<T: 'static> LocalKey<std::cell::Cell<T>> {
    /// Sets the fiber's value (made first by the initializer if need be,
    /// then replaced).
    pub fn set(&'static self, value: T) {
        self.with(|cell| cell.set(value));
    }

    /// A copy of the fiber's value.
    pub fn get(&'static self) -> T
    where
        T: Copy,
    {
        self.with(std::cell::Cell::get)
    }

    /// Takes the fiber's value, leaving `T::default()`.
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.with(std::cell::Cell::take)
    }

    /// Replaces the fiber's value, returning the old one.
    pub fn replace(&'static self, value: T) -> T {
        self.with(|cell| cell.replace(value))
    }
}

/// The shorthands of `std`'s thread-locals, for a fiber-local `RefCell`.
impl<T: 'static> LocalKey<std::cell::RefCell<T>> {
    /// Calls `f` with a shared borrow of the fiber's value.
    ///
    /// # Panics
    ///
    /// If the value is borrowed mutably (by an enclosing call).
    pub fn with_borrow<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        self.with(|cell| f(&cell.borrow()))
    }

    /// Calls `f` with a mutable borrow of the fiber's value.
    ///
    /// # Panics
    ///
    /// If the value is borrowed (by an enclosing call).
    pub fn with_borrow_mut<R>(&'static self, f: impl FnOnce(&mut T) -> R) -> R {
        self.with(|cell| f(&mut cell.borrow_mut()))
    }

    /// Sets the fiber's value.
    ///
    /// # Panics
    ///
    /// If the value is borrowed.
    pub fn set(&'static self, value: T) {
        self.with(|cell| *cell.borrow_mut() = value);
    }

    /// Takes the fiber's value, leaving `T::default()`.
    ///
    /// # Panics
    ///
    /// If the value is borrowed.
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.with(|cell| cell.take())
    }

    /// Replaces the fiber's value, returning the old one.
    ///
    /// # Panics
    ///
    /// If the value is borrowed.
    pub fn replace(&'static self, value: T) -> T {
        self.with(|cell| cell.replace(value))
    }
}

impl<T: 'static> fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKey").finish_non_exhaustive()
    }
}

/// Declares statics with a value of their own in every fiber (and, outside
/// fibers, in every thread), reached through
/// [`LocalKey::with`](crate::local::LocalKey::with).
///
/// ```
/// use std::cell::Cell;
///
/// fiber_rt::fiber_local! {
///     /// Requests this fiber has served.
///     static SERVED: Cell<u32> = Cell::new(0);
/// }
///
/// let rt = fiber_rt::Runtime::new().unwrap();
/// let counts: Vec<u32> = (1..=3)
///     .map(|n| {
///         rt.spawn(move || {
///             for _ in 0..n {
///                 SERVED.with(|s| s.set(s.get() + 1));
///                 fiber_rt::yield_now(); // may move to another worker
///             }
///             SERVED.with(Cell::get)
///         })
///     })
///     .collect::<Vec<_>>()
///     .into_iter()
///     .map(|h| h.join().unwrap())
///     .collect();
/// assert_eq!(counts, [1, 2, 3]);
/// ```
#[macro_export]
macro_rules! fiber_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr; $($rest:tt)*) => {
        $(#[$attr])*
        $vis static $name: $crate::local::LocalKey<$t> = {
            fn __init() -> $t {
                $init
            }
            ::std::thread_local! {
                static __THREAD: ::std::cell::OnceCell<$t> =
                    const { ::std::cell::OnceCell::new() };
            }
            $crate::local::LocalKey::new(__init, &__THREAD)
        };
        $crate::fiber_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr) => {
        $crate::fiber_local!($(#[$attr])* $vis static $name: $t = $init;);
    };
}
