//! Where a run's result goes when its last task ends: to a callback, or
//! to a caller parked until it arrives. Either lives inside the run's
//! shared state, so handing the result over allocates nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use super::error::GraphError;
use super::exec::Done;
use crate::sched::park::{park, Waker};

/// Receives a run's result, once.
pub(crate) trait End<O>: Send + Sync + 'static {
    /// Called exactly once, by whichever thread ends the run.
    fn end(&self, result: Result<O, GraphError>);
}

/// Hands the result to a callback.
pub(crate) struct Callback<O>(Mutex<Option<Done<O>>>);

impl<O> Callback<O> {
    pub(crate) fn new(done: Done<O>) -> Self {
        Callback(Mutex::new(Some(done)))
    }
}

impl<O: 'static> End<O> for Callback<O> {
    fn end(&self, result: Result<O, GraphError>) {
        // The mutex only makes the box `Sync`: it is taken once.
        let done = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(done) = done {
            done(result);
        }
    }
}

/// Keeps the result for the fiber or thread that started the run, which
/// parks in [`wait`](Waiting::wait) until it is in.
pub(crate) struct Waiting<O> {
    result: Mutex<Option<Result<O, GraphError>>>,
    /// Set once `result` holds the result.
    ready: AtomicBool,
    /// The caller, made when the run is.
    waker: Waker,
}

impl<O> Waiting<O> {
    /// A place for the calling fiber's (or thread's) result.
    pub(crate) fn new() -> Self {
        Waiting {
            result: Mutex::new(None),
            ready: AtomicBool::new(false),
            waker: Waker::current(),
        }
    }

    /// Parks until the run has ended, then takes its result. Called once,
    /// by the fiber or thread that made this.
    pub(crate) fn wait(&self) -> Result<O, GraphError> {
        // Acquire: pairs with the Release in `end`, so the result stored
        // before is seen (the lock would order it too).
        while !self.ready.load(Ordering::Acquire) {
            park(&"dag::run");
        }
        self.result
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .expect("a run's result is taken once")
    }
}

impl<O: Send + 'static> End<O> for Waiting<O> {
    fn end(&self, result: Result<O, GraphError>) {
        *self.result.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
        // Release: the waiter that sees the flag sees the result. The
        // waiter holds the run's state, so `waker` is still there below.
        self.ready.store(true, Ordering::Release);
        // A caller that ended its own run (as its first runner) sees the
        // flag before it would park: a wake-up would only be left pending,
        // to cut its next park short for nothing.
        if !self.waker.is_current() {
            self.waker.wake();
        }
    }
}
