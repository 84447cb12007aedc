//! `Handle`: a runtime's spawning end, to keep in other threads and data
//! structures without owning (or borrowing) the runtime itself.

use std::sync::Arc;

use super::context::{self, EnterGuard};
use super::{graph, scope, spawn_in, JoinHandle, Runtime, Scope};
use crate::dag::{Graph, GraphError};
use crate::sched::registry::Registry;
use crate::sched::task::Task;

/// A cheap, cloneable way to reach a runtime: spawn fibers on it, run
/// closures and graphs on it, from any thread, without the [`Runtime`]
/// itself (which shuts the runtime down when dropped, and so usually
/// stays with whoever made it).
///
/// A handle does not keep the runtime running: once the runtime is
/// dropped, a fiber spawned through a handle never runs, and its
/// [`JoinHandle`] reports that the shutdown cancelled it
/// ([`JoinError::is_cancelled`](crate::JoinError::is_cancelled)).
///
/// ```
/// let rt = fiber_rt::Runtime::new().unwrap();
/// let handle = rt.handle().clone();
/// let answer = std::thread::spawn(move || handle.spawn(|| 6 * 7).join().unwrap())
///     .join()
///     .unwrap();
/// assert_eq!(answer, 42);
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(super) registry: Arc<Registry>,
}

impl Handle {
    /// The handle of the runtime the calling fiber runs on.
    ///
    /// # Panics
    ///
    /// If called outside a fiber, on a thread that entered no runtime; see
    /// [`try_current`](Handle::try_current).
    pub fn current() -> Handle {
        Handle::try_current().expect(
            "Handle::current was called outside a fiber, on a thread that \
             entered no runtime: keep a handle from Runtime::handle for plain \
             threads, or enter one there (Handle::enter)",
        )
    }

    /// The handle of the runtime the calling fiber runs on; off a fiber,
    /// of the runtime the calling thread entered ([`enter`](Self::enter),
    /// as the threads of [`spawn_blocking`](crate::spawn_blocking) do for
    /// a closure spawned from a fiber), or `None`.
    pub fn try_current() -> Option<Handle> {
        match Task::current() {
            Some(task) => Some(Handle {
                registry: task.registry.clone(),
            }),
            None => context::entered(),
        }
    }

    /// Makes this runtime the calling plain thread's current one until
    /// the guard drops: [`spawn`](crate::spawn), [`run`](crate::run),
    /// [`scope`](crate::scope), [`JoinSet::spawn`](crate::JoinSet::spawn),
    /// [`FiberBuilder::spawn`](crate::FiberBuilder::spawn) and
    /// [`Handle::current`] called there then use it, as from one of its
    /// fibers. On a fiber the guard changes nothing: a fiber's runtime is
    /// always its own.
    ///
    /// ```
    /// let rt = fiber_rt::Runtime::new().unwrap();
    /// let handle = rt.handle().clone();
    /// std::thread::spawn(move || {
    ///     let _entered = handle.enter();
    ///     assert_eq!(fiber_rt::spawn(|| 6 * 7).join().unwrap(), 42);
    /// })
    /// .join()
    /// .unwrap();
    /// ```
    pub fn enter(&self) -> EnterGuard {
        context::enter(self)
    }

    /// Runs `f` as a new fiber on this runtime, as [`Runtime::spawn`]
    /// does. After the runtime's shutdown the fiber never runs: `f` is
    /// dropped at once, and the handle's `join` reports the cancellation.
    ///
    /// # Panics
    ///
    /// Where [`FiberBuilder::spawn_on`](crate::FiberBuilder::spawn_on)
    /// returns an error (see there).
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        spawn_in(&self.registry, None, None, f).unwrap_or_else(|e| panic!("spawning a fiber: {e}"))
    }

    /// Runs `f` as a fiber and waits for its result, as
    /// [`Runtime::block_on`] does (`f` may borrow from the caller).
    ///
    /// # Panics
    ///
    /// If `f` panics (with its payload), or if its fiber was cancelled or
    /// never ran, with the [`JoinError`](crate::JoinError): after the
    /// runtime's shutdown, always, but where a panic would abort the
    /// process (see [`Runtime::block_on`]).
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        super::block_on_in(&self.registry, f)
    }

    /// Like [`scope()`](crate::scope), from any thread: fibers spawned on
    /// the scope may borrow from the caller, and all have finished when
    /// this returns.
    pub fn scope<'env, F, T>(&self, f: F) -> T
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
    {
        scope::scope_on(self.registry.clone(), f)
    }

    /// Runs `graph` on this runtime and returns its outputs, as
    /// [`Runtime::run`] does. After the runtime's shutdown no node runs,
    /// and the error names them.
    pub fn run<G: Graph>(&self, graph: G) -> Result<G::Outputs, GraphError>
    where
        G::Outputs: Send,
    {
        graph::run_on(&self.registry, graph)
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.registry.config.workers
    }

    /// Counters of the runtime so far, as [`Runtime::metrics`] gives them.
    pub fn metrics(&self) -> super::Metrics {
        super::metrics_of(&self.registry)
    }

    /// Whether the runtime has begun shutting down (its [`Runtime`] was
    /// dropped): fibers spawned from now on may never run.
    pub fn is_shut_down(&self) -> bool {
        self.registry.is_shutdown()
    }

    /// The handle of the runtime `registry` belongs to.
    pub(crate) fn of(registry: Arc<Registry>) -> Handle {
        Handle { registry }
    }

    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }
}

// A panic that unwinds past a handle leaves nothing of the runtime half
// done: every operation through it is complete or reported as failed
// (a spawn queued or refused, a wait's scope finished), as for the
// fibers themselves, whose panics the runtime catches.
impl std::panic::UnwindSafe for Handle {}
impl std::panic::RefUnwindSafe for Handle {}

impl AsRef<Handle> for Handle {
    fn as_ref(&self) -> &Handle {
        self
    }
}

impl AsRef<Handle> for Runtime {
    fn as_ref(&self) -> &Handle {
        self.handle()
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("workers", &self.registry.config.workers)
            .field("shut_down", &self.registry.is_shutdown())
            .finish()
    }
}
