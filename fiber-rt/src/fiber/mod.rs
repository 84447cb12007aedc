//! A low-level fiber: a closure running on a stack of its own, resumed and
//! suspended by hand on one thread, with no scheduler.
//!
//! ```
//! use fiber_rt::fiber::{Fiber, Step};
//!
//! let mut counter = Fiber::new(|yielder, start: u32| {
//!     let mut n = start;
//!     for _ in 0..3 {
//!         n += yielder.suspend(n); // hand `n` out, take the next increment in
//!     }
//!     format!("done at {n}")
//! })
//! .unwrap();
//!
//! assert_eq!(counter.resume(10).unwrap(), Step::Yielded(10));
//! assert_eq!(counter.resume(1).unwrap(), Step::Yielded(11));
//! assert_eq!(counter.resume(1).unwrap(), Step::Yielded(12));
//! assert_eq!(counter.resume(1).unwrap(), Step::Complete("done at 13".to_string()));
//! ```

mod entry;

use std::any::Any;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ptr::NonNull;

use crate::stack::{self, Stack};

/// What [`Fiber::resume`] returns when the fiber did not panic.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<Y, R> {
    /// The fiber called [`Suspender::suspend`] with this value.
    Yielded(Y),
    /// The fiber's closure returned this value; the fiber is finished.
    Complete(R),
}

/// Why [`Fiber::resume`] could not give a [`Step`].
pub enum ResumeError {
    /// The fiber's closure panicked; the payload is the one `panic!` made.
    /// The fiber is finished and its stack has been released.
    Panicked {
        /// The fiber's name ("" when it has none).
        name: String,
        /// What the closure panicked with.
        payload: Box<dyn Any + Send + 'static>,
    },
    /// The fiber had already completed or panicked.
    Finished {
        /// The fiber's name ("" when it has none).
        name: String,
    },
}

impl ResumeError {
    /// The panic message, when the payload is a string.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            ResumeError::Panicked { payload, .. } => panic_message(payload.as_ref()),
            ResumeError::Finished { .. } => None,
        }
    }
}

/// The text of a panic payload made by `panic!("...")`, if it is text.
pub fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

impl fmt::Debug for ResumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ResumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResumeError::Panicked { name, .. } => {
                write!(f, "fiber '{name}' panicked")?;
                match self.panic_message() {
                    Some(msg) => write!(f, ": {msg}"),
                    None => Ok(()),
                }
            }
            ResumeError::Finished { name } => write!(f, "fiber '{name}' has already finished"),
        }
    }
}

impl std::error::Error for ResumeError {}

/// A closure on a stack of its own that can suspend itself.
///
/// `I` is what each [`resume`](Fiber::resume) passes in, `Y` what each
/// [`suspend`](Suspender::suspend) passes out, `R` what the closure returns.
///
/// Dropping a fiber that is suspended unwinds its stack first, so every
/// destructor on it runs. Under `panic = "abort"` that unwind aborts the
/// process, even for a fiber that never started: finish such fibers (or
/// `mem::forget` them, leaking their stacks) in programs built that way.
pub struct Fiber<I, Y, R> {
    /// Data shared with the code on the fiber's stack; lives at the top of
    /// the stack, so it never moves.
    control: NonNull<entry::Control<I, Y, R>>,
    /// `None` once the fiber has finished and given its stack back.
    stack: Option<Stack>,
    name: Box<str>,
    /// A fiber stays on the thread that made it: its closure need not be Send.
    _not_send: PhantomData<*mut ()>,
}

impl<I, Y, R> fmt::Debug for Fiber<I, Y, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fiber")
            .field("name", &self.name)
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// The handle a fiber's closure gets to suspend itself.
pub struct Suspender<I, Y, R> {
    control: NonNull<entry::Control<I, Y, R>>,
    _not_send: PhantomData<*mut ()>,
}

impl<I, Y, R> fmt::Debug for Suspender<I, Y, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Suspender")
    }
}

impl<I: 'static, Y: 'static, R: 'static> Fiber<I, Y, R> {
    /// A fiber on a new (or pooled) stack of [`stack::DEFAULT_STACK_SIZE`].
    #[inline]
    pub fn new<F>(f: F) -> io::Result<Self>
    where
        F: FnOnce(&Suspender<I, Y, R>, I) -> R + 'static,
    {
        Self::with_stack(Stack::new(stack::DEFAULT_STACK_SIZE)?, "", f)
    }

    /// A fiber named `name` (used in panics and overflow messages) running
    /// `f` on `stack`.
    #[inline]
    pub fn with_stack<F>(stack: Stack, name: &str, f: F) -> io::Result<Self>
    where
        F: FnOnce(&Suspender<I, Y, R>, I) -> R + 'static,
    {
        stack::overflow::ensure_handler();
        let name: Box<str> = name.into();
        // SAFETY: `name` is kept in the Fiber, which outlives its use of the stack.
        unsafe { stack.set_name(&*name) };
        let control = entry::Control::install(&stack, f)?;
        Ok(Fiber {
            control,
            stack: Some(stack),
            name,
            _not_send: PhantomData,
        })
    }
}

impl<I, Y, R> Fiber<I, Y, R> {
    /// Runs the fiber until it suspends, returns or panics.
    ///
    /// The first call starts the closure with `input`; later calls make the
    /// pending [`Suspender::suspend`] return `input`.
    #[inline]
    pub fn resume(&mut self, input: I) -> Result<Step<Y, R>, ResumeError> {
        if self.stack.is_none() {
            return Err(ResumeError::Finished {
                name: self.name.to_string(),
            });
        }
        let mut transfer = entry::Transfer::new(entry::Message::Resume(input));
        // SAFETY: the fiber is live (it has its stack) and suspended, since
        // a resume only returns once it has switched back to us.
        let outcome = unsafe { self.control.as_ref().switch_in(&mut transfer) };
        match outcome {
            entry::Outcome::Yielded(y) => Ok(Step::Yielded(y)),
            entry::Outcome::Complete(r) => {
                self.release();
                Ok(Step::Complete(r))
            }
            entry::Outcome::Panicked(payload) => {
                self.release();
                Err(ResumeError::Panicked {
                    name: self.name.to_string(),
                    payload,
                })
            }
            entry::Outcome::Unwound => unreachable!("only a drop unwinds a fiber"),
        }
    }

    /// Whether the fiber has completed or panicked.
    pub fn is_finished(&self) -> bool {
        self.stack.is_none()
    }

    /// The name given at creation ("" if none).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Gives the stack back; the fiber's entry has returned, so nothing of
    /// it is left on the stack.
    fn release(&mut self) {
        self.stack = None;
    }
}

impl<I, Y, R> Drop for Fiber<I, Y, R> {
    fn drop(&mut self) {
        if self.stack.is_none() {
            return;
        }
        // SAFETY: the fiber is live and suspended (or not started).
        unsafe { entry::Control::unwind(self.control) };
        self.release();
    }
}

impl<I, Y, R> Suspender<I, Y, R> {
    /// Hands `value` to the pending [`Fiber::resume`] and waits for the next
    /// one, whose input this returns.
    ///
    /// If the fiber is dropped while suspended here, this unwinds instead of
    /// returning, so the destructors on the fiber's stack run.
    #[inline]
    pub fn suspend(&self, value: Y) -> I {
        // SAFETY: a Suspender only exists on its fiber's own stack while the
        // fiber runs, so the control block is live and we are the running side.
        unsafe { self.control.as_ref().switch_out(value) }
    }
}
