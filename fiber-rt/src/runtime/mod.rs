//! `Runtime` and `Builder`: worker threads that run fibers, and the
//! functions a fiber calls to spawn, yield, sleep and scope.

mod blocking;
mod builder;
mod graph;
mod join;
mod scope;
mod shutdown;

use std::io;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub use blocking::{spawn_blocking, BlockingHandle};
pub use builder::{Builder, FiberBuilder};
pub use graph::run;
pub use join::{JoinError, JoinHandle};
pub use scope::{scope, Scope, ScopedJoinHandle};

use crate::sched::park::{park, Waker};
use crate::sched::registry::Registry;
use crate::sched::task::Task;
use crate::sync::oneshot;

/// A pool of worker threads running fibers.
///
/// Dropping the runtime shuts it down: it waits for each worker to reach a
/// switch point (the fibers running at that moment run until they yield,
/// park or finish), then cancels every fiber that has not finished, whether
/// queued or parked: each is unwound, so its destructors run and its stack
/// goes back to the pool, and its `JoinHandle` reports
/// [`JoinError::is_cancelled`].
pub struct Runtime {
    registry: Arc<Registry>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Runtime {
    /// A runtime with one worker per available core and default settings.
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// Settings for a runtime.
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn start(registry: Arc<Registry>, threads: Vec<thread::JoinHandle<()>>) -> Runtime {
        Runtime { registry, threads }
    }

    /// Runs `f` as a fiber on this runtime.
    ///
    /// # Panics
    ///
    /// If no stack can be had for the fiber (see [`FiberBuilder::spawn_on`]
    /// for the error instead).
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        spawn_in(&self.registry, None, None, f).unwrap_or_else(|e| panic!("spawning a fiber: {e}"))
    }

    /// Runs `f` as a fiber and waits for its result. A panic in `f` is
    /// resumed on the caller.
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.spawn(f).join() {
            Ok(value) => value,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic().unwrap()),
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`scope`], from a thread outside the runtime: fibers spawned on
    /// the scope may borrow from the caller, and all have finished when
    /// this returns.
    pub fn scope<'env, F, T>(&self, f: F) -> T
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
    {
        scope::scope_on(self.registry.clone(), f)
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.registry.config.workers
    }

    /// Counters of this runtime so far.
    pub fn metrics(&self) -> Metrics {
        use std::sync::atomic::Ordering::Relaxed;
        let stats = &self.registry.stats;
        // Relaxed: independent statistics, each exact on its own.
        Metrics {
            workers: self.registry.config.workers,
            spawned: stats.spawned.load(Relaxed),
            finished: stats.finished.load(Relaxed),
            steals: stats.steals.load(Relaxed),
            live: self.registry.live_count(),
            preempt_requests: stats.preempt_requests.load(Relaxed),
            preempt_yields: stats.preempt_yields.load(Relaxed),
        }
    }

    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        shutdown::shutdown(&self.registry, std::mem::take(&mut self.threads));
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.registry.config.workers)
            .finish()
    }
}

/// Counters of a runtime, from [`Runtime::metrics`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Worker threads.
    pub workers: usize,
    /// Fibers spawned.
    pub spawned: u64,
    /// Fibers that finished (returned, panicked or were cancelled).
    pub finished: u64,
    /// Fibers taken from another worker's queue.
    pub steals: u64,
    /// Fibers spawned and not finished.
    pub live: usize,
    /// Times the monitor asked a fiber that overran its slice to yield.
    pub preempt_requests: u64,
    /// Times a fiber yielded at a probe because it was asked to.
    pub preempt_yields: u64,
}

pub(crate) fn spawn_in<F, T>(
    registry: &Arc<Registry>,
    name: Option<Arc<str>>,
    stack_size: Option<usize>,
    f: F,
) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let task = registry.spawn(name, stack_size, join::wrap(tx, f))?;
    Ok(join::handle(rx, task.id, task.name.clone()))
}

/// The runtime of the calling fiber.
fn current_registry(what: &str) -> Arc<Registry> {
    match Task::current() {
        Some(task) => task.registry.clone(),
        None => panic!(
            "fiber_rt::{what} was called outside a fiber: call it from a fiber, \
             or use the Runtime's own method from a plain thread"
        ),
    }
}

/// Runs `f` as a new fiber on the caller's runtime.
///
/// # Panics
///
/// If called outside a fiber (use [`Runtime::spawn`] there), or if no
/// stack can be had ([`FiberBuilder::spawn`] returns that error instead).
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let registry = current_registry("spawn");
    spawn_in(&registry, None, None, f).unwrap_or_else(|e| panic!("spawning a fiber: {e}"))
}

/// Suspends the calling fiber for at least `duration`, letting others
/// run; on a plain thread, sleeps the thread.
pub fn sleep(duration: Duration) {
    let Some(task) = Task::current() else {
        return thread::sleep(duration);
    };
    let deadline = Instant::now() + duration;
    task.registry.timer.add(deadline, Waker::Fiber(task.arc()));
    while Instant::now() < deadline {
        park("sleep");
    }
}

pub use crate::sched::park::yield_now;

/// The calling fiber, if the caller is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrentFiber {
    /// Unique within its runtime.
    pub id: u64,
    /// The name given with [`FiberBuilder::name`].
    pub name: Option<Arc<str>>,
}

/// Id and name of the calling fiber; `None` on a plain thread.
pub fn current() -> Option<CurrentFiber> {
    Task::current().map(|t| CurrentFiber {
        id: t.id,
        name: t.name.clone(),
    })
}
