//! Parking the caller, whether it is a fiber (its worker runs something
//! else) or a plain thread (it blocks), and waking it again.

use std::sync::Arc;
use std::thread::Thread;

use super::task::Task;
use super::worker::{switch_current, Switch};

/// Something that can be woken: a fiber or a plain thread.
#[derive(Clone, Debug)]
pub(crate) enum Waker {
    Fiber(Arc<Task>),
    Thread(Thread),
}

impl Waker {
    /// The caller's waker.
    pub(crate) fn current() -> Waker {
        match Task::current() {
            Some(task) => Waker::Fiber(task.arc()),
            None => Waker::Thread(std::thread::current()),
        }
    }

    /// Wakes the fiber or thread; a wake-up that arrives before the park is
    /// kept, so the park returns at once.
    pub(crate) fn wake(&self) {
        match self {
            Waker::Fiber(task) => task.unpark(),
            Waker::Thread(thread) => thread.unpark(),
        }
    }
}

/// Parks the caller until it is woken. May return spuriously: callers wait
/// for their own condition in a loop. `reason` shows in fiber dumps.
pub(crate) fn park(reason: &'static str) {
    match Task::current() {
        Some(task) => {
            if task.consume_notification() {
                return;
            }
            task.parked_on.set(reason);
            switch_current(task, Switch::Park);
            task.parked_on.set("");
        }
        None => std::thread::park(),
    }
}

/// Lets other ready fibers run, then continues. On a plain thread, yields
/// the thread to the OS.
pub fn yield_now() {
    match Task::current() {
        Some(task) => switch_current(task, Switch::Yield),
        None => std::thread::yield_now(),
    }
}
