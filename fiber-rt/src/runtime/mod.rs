//! `Runtime` and `Builder`: worker threads that run fibers, and the
//! functions a fiber calls to spawn, yield, sleep and scope.

mod blocking;
mod builder;
mod cancel_handle;
mod context;
mod future;
mod graph;
mod handle;
mod interval;
mod join;
mod join_set;
mod scope;
mod shutdown;
mod timeout;

use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub use blocking::{spawn_blocking, BlockingHandle};
pub use builder::{Builder, FiberBuilder};
pub use cancel_handle::CancelHandle;
use context::current_registry;
pub use context::EnterGuard;
pub use future::block_on_future;
pub use graph::{run, run_traced};
pub use handle::Handle;
pub use interval::{interval, interval_at, Interval};
pub use join::{JoinError, JoinHandle};
pub use join_set::{JoinSet, Timeout as JoinSetTimeout};
pub use scope::{scope, Scope, ScopedJoinHandle};
pub(crate) use shutdown::finish_late;
pub use timeout::{timeout, timeout_at, Elapsed};

use crate::sched::park::{park, Waker};
use crate::sched::registry::Registry;
use crate::sched::task::Task;

/// A pool of worker threads running fibers.
///
/// Dropping the runtime shuts it down: it waits for each worker to reach a
/// switch point (the fibers running at that moment run until they yield,
/// park or finish), then cancels every fiber that has not finished, whether
/// queued or parked: each is unwound, so its destructors run and its stack
/// goes back to the pool, and its `JoinHandle` reports
/// [`JoinError::is_cancelled`]. A destructor may wait (for a lock another
/// cancelled fiber holds, say): its fiber parks while the others unwind.
/// If no fiber finishes for [`Builder::shutdown_timeout`], the fibers
/// still unfinished are reported on standard error and left so, their
/// stacks not reclaimed.
pub struct Runtime {
    handle: Handle,
    /// The runtime's threads, to join at the shutdown; `None` once a
    /// shutdown has taken them.
    threads: Option<Vec<thread::JoinHandle<()>>>,
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
        Runtime {
            handle: Handle { registry },
            threads: Some(threads),
        }
    }

    /// Runs `f` as a fiber on this runtime.
    ///
    /// The fiber takes its stack when it first runs; if none can be had
    /// then, [`JoinHandle::join`] says so ([`JoinError::stack_error`]).
    ///
    /// # Panics
    ///
    /// Where [`FiberBuilder::spawn_on`] returns an error (see there).
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.handle.spawn(f)
    }

    /// This runtime's [`Handle`]: clone it to spawn on the runtime from
    /// other threads, or keep it where the runtime itself cannot go.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Shuts the runtime down as dropping it does, waiting at most about
    /// `timeout` (in place of the builder's
    /// [`shutdown_timeout`](Builder::shutdown_timeout)) for cancelled
    /// fibers while none finishes, before giving up on those left.
    pub fn shutdown_timeout(mut self, timeout: Duration) {
        self.handle.registry.shutdown_wait.set_timeout(timeout);
        if let Some(threads) = self.threads.take() {
            shutdown::shutdown(&self.handle.registry, threads);
        }
    }

    /// Shuts the runtime down on a thread of its own and returns at once:
    /// the workers stop and the fibers left are cancelled meanwhile, as
    /// when it is dropped. For a runtime dropped where waiting for its
    /// fibers' destructors is not wanted (an async context, a deadline).
    pub fn shutdown_background(mut self) {
        let Some(threads) = self.threads.take() else {
            return;
        };
        // Shut down from the caller's point of view: a spawn after this
        // returns is refused, as after a drop.
        self.handle.registry.begin_shutdown();
        // Shared, so that the threads come back here if no thread can be
        // started to shut down on.
        let threads = Arc::new(std::sync::Mutex::new(Some(threads)));
        let take = |threads: &std::sync::Mutex<Option<_>>| {
            threads.lock().unwrap_or_else(|e| e.into_inner()).take()
        };
        let registry = self.handle.registry.clone();
        let theirs = threads.clone();
        let spawned = thread::Builder::new()
            .name(format!("{}-shutdown", registry.config.thread_name))
            .spawn(move || {
                if let Some(threads) = take(&theirs) {
                    shutdown::shutdown(&registry, threads);
                }
            });
        if spawned.is_err() {
            // No thread to be had: shut down here, as a drop would.
            if let Some(threads) = take(&threads) {
                shutdown::shutdown(&self.handle.registry, threads);
            }
        }
    }

    /// Makes this runtime the calling thread's current one while the guard
    /// lives, as [`Handle::enter`] does.
    pub fn enter(&self) -> EnterGuard {
        self.handle.enter()
    }

    /// Runs `f` as a fiber and waits for its result. A panic in `f` is
    /// resumed on the caller.
    ///
    /// The caller waits until `f` has finished, so `f` may borrow from it,
    /// as a fiber spawned on a [`scope`](Runtime::scope) may:
    ///
    /// ```
    /// let rt = fiber_rt::Runtime::new().unwrap();
    /// let words = vec!["a", "bb", "ccc"];
    /// let total = rt.block_on(|| {
    ///     let handles: Vec<_> = words
    ///         .iter()
    ///         .map(|w| fiber_rt::spawn({
    ///             let len = w.len();
    ///             move || len
    ///         }))
    ///         .collect();
    ///     handles.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
    /// });
    /// assert_eq!(total, 6);
    /// assert_eq!(words.len(), 3); // still ours
    /// ```
    ///
    /// # Panics
    ///
    /// If `f` panics (with its payload), or if its fiber was cancelled or
    /// never ran (no stack could be had for it), with the [`JoinError`]:
    /// after the runtime's shutdown, always, but in a destructor the
    /// shutdown runs as it cancels a fiber (or on a thread unwinding from
    /// a panic), where a panic would abort the process: there `f` runs on
    /// the caller itself.
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        block_on_in(self.registry(), f)
    }

    /// Like [`scope()`], from a thread outside the runtime: fibers spawned on
    /// the scope may borrow from the caller, and all have finished when
    /// this returns.
    pub fn scope<'env, F, T>(&self, f: F) -> T
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
    {
        self.handle.scope(f)
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.handle.workers()
    }

    /// Counters of this runtime so far.
    ///
    /// ```
    /// let rt = fiber_rt::Builder::new().workers(2).build().unwrap();
    /// rt.block_on(|| fiber_rt::sleep(std::time::Duration::from_millis(5)));
    /// let m = rt.metrics();
    /// assert_eq!(m.per_worker.len(), 2);
    /// assert!(m.parks >= 1);
    /// println!("{m:#?}");
    /// ```
    pub fn metrics(&self) -> Metrics {
        self.handle.metrics()
    }

    /// A snapshot of every live fiber: id, name, state, age, and for a
    /// fiber off its stack a symbolized backtrace. `Display` prints a
    /// report like Go's SIGQUIT dump; see [`debug`](crate::debug) for what
    /// a build needs for readable backtraces.
    pub fn dump(&self) -> crate::debug::Dump {
        crate::debug::take_dump(self.registry())
    }

    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.handle.registry
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(threads) = self.threads.take() {
            shutdown::shutdown(&self.handle.registry, threads);
        }
    }
}

// As for its `Handle`: a panic that unwinds past the runtime leaves none
// of its operations half done (its thread list only changes in the
// shutdown, which takes it whole).
impl std::panic::UnwindSafe for Runtime {}
impl std::panic::RefUnwindSafe for Runtime {}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.workers())
            .finish()
    }
}

/// Counters of a runtime, from [`Runtime::metrics`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Worker threads.
    pub workers: usize,
    /// Fibers spawned.
    pub spawned: u64,
    /// Fibers that finished (returned, panicked or were cancelled). A
    /// fiber with a `JoinHandle` counts as finished by the time `join`
    /// returns its result, so a joiner sees it counted (`is_finished` may
    /// say yes a moment earlier).
    pub finished: u64,
    /// Steals from other workers: each takes one fiber from a yielded
    /// slot, or a batch (up to half a queue) from a run queue, and counts
    /// once.
    pub steals: u64,
    /// Fibers spawned and not finished (see `finished`): in every report,
    /// `spawned == finished + live`.
    pub live: usize,
    /// Times the monitor asked a fiber that overran its slice to yield.
    pub preempt_requests: u64,
    /// Times a fiber yielded at a probe because it was asked to.
    pub preempt_yields: u64,
    /// Signals sent to fibers that ignored a request for a further slice.
    pub backstop_signals: u64,
    /// Times such a fiber was detached and its worker given a new thread.
    pub backstop_handoffs: u64,
    /// Fibers that never started because no stack could be had for them
    /// (see [`JoinError::stack_error`]); their closures were dropped
    /// unrun. Counted as finished too.
    pub stackless: u64,
    /// Times a fiber parked (waited on a lock, channel, join, sleep..).
    pub parks: u64,
    /// Time since the runtime was built.
    pub uptime: Duration,
    /// Per worker, by index.
    pub per_worker: Vec<WorkerMetrics>,
    /// The process-wide stack pool (shared by every runtime).
    pub stack_pool: crate::stack::PoolStats,
}

/// Counters of one worker thread, in [`Metrics::per_worker`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerMetrics {
    /// Time not idle: running fibers, or the scheduler between them.
    /// `busy + idle` is the runtime's uptime, give or take a few microseconds:
    /// each of the two is kept from going backwards between reports.
    pub busy: Duration,
    /// Time looking for work with none queued, or asleep.
    pub idle: Duration,
    /// Fibers that parked on this worker.
    pub parks: u64,
}

/// Counters of the runtime of `registry` so far (see [`Runtime::metrics`]).
pub(crate) fn metrics_of(registry: &Registry) -> Metrics {
    let stats = &registry.stats;
    let uptime = registry.started.elapsed();
    let now_ns = crate::debug::clock::instant_to_ns(Instant::now());
    // Relaxed: independent statistics, each exact on its own.
    let per_worker: Vec<WorkerMetrics> = registry
        .clocks
        .iter()
        .map(|clock| {
            let since = clock.idle_since.load(Relaxed);
            let ongoing = if since == 0 {
                0
            } else {
                now_ns.saturating_sub(since)
            };
            let idle = Duration::from_nanos(clock.idle_ns.load(Relaxed) + ongoing).min(uptime);
            WorkerMetrics {
                busy: uptime - idle,
                idle,
                parks: clock.parks.load(Relaxed),
            }
        })
        .collect();
    // One pass for the three, so that `spawned == finished + live`.
    let counts = registry.live_counts();
    let mut reported = stats.reported.lock().unwrap_or_else(|e| e.into_inner());
    reported.resize(per_worker.len(), (Duration::ZERO, Duration::ZERO));
    let per_worker: Vec<WorkerMetrics> = per_worker
        .into_iter()
        .zip(reported.iter_mut())
        .map(|(mut w, (busy, idle))| {
            w.busy = w.busy.max(*busy);
            w.idle = w.idle.max(*idle);
            (*busy, *idle) = (w.busy, w.idle);
            w
        })
        .collect();
    drop(reported);
    Metrics {
        workers: registry.config.workers,
        spawned: counts.spawned,
        finished: counts.finished,
        steals: stats.steals.load(Relaxed),
        live: counts.live as usize,
        preempt_requests: stats.preempt_requests.load(Relaxed),
        preempt_yields: stats.preempt_yields.load(Relaxed),
        backstop_signals: stats.backstop_signals.load(Relaxed),
        backstop_handoffs: stats.backstop_handoffs.load(Relaxed),
        stackless: stats.stackless.load(Relaxed),
        parks: per_worker.iter().map(|w| w.parks).sum(),
        uptime,
        per_worker,
        stack_pool: crate::stack::pool_stats(),
    }
}

/// [`Runtime::block_on`] on `registry`.
fn block_on_in<F, T>(registry: &Arc<Registry>, f: F) -> T
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    if registry.is_shutdown() && scope::in_runtime_unwind() {
        // A destructor the shutdown's cancellation runs (or one on a
        // plain thread unwinding from a panic): no fiber can be spawned
        // any more, and a panic here would abort the process. `f` runs
        // on the caller itself, which is what waiting for it amounts to.
        return f();
    }
    // It waits for a fiber: in a start hook, refused (see `scope_on`).
    crate::sched::park::refuse_in_hook(&"block_on");
    // A scoped fiber: the scope waits for it however the wait below
    // ends (a panic, or the caller's cancellation if it is a fiber),
    // so nothing `f` borrows can end while it runs.
    scope::scope_on(registry.clone(), |s| {
        let handle = s.spawn(f);
        // A caller cancelled while it waits cancels the fiber too, as
        // the wait unwinds: the scope then waits for it to unwind, and
        // the caller goes on unwinding (it would wait for the fiber to
        // finish by itself otherwise, maybe for good).
        let cancel_on_unwind = CancelOnUnwind(&handle);
        // The fiber's end first, then its result, which is in by then:
        // one wait. Joined first, a plain thread was woken for the
        // result and then often again for the end (four futex calls a
        // call against two, and twice the time).
        s.wait_all();
        std::mem::forget(cancel_on_unwind);
        match handle.join() {
            Ok(value) => value,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic().unwrap()),
            Err(e) => panic!("{e}"),
        }
    })
}

/// [`spawn_in`] without its switch point after the spawn, for callers
/// that must keep the handle before one (see `JoinSet`).
#[inline]
pub(crate) fn spawn_unprobed<F, T>(
    registry: &Arc<Registry>,
    name: Option<Arc<str>>,
    stack_size: Option<usize>,
    f: F,
) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    registry
        .spawn_joinable(name, stack_size, join::wrap(f), join::cancelled_unrun::<T>)
        .map(join::handle)
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
    // The handle first: a cancellation raised at the probe below drops it,
    // which detaches the child (its result is dropped when it comes).
    let handle = spawn_unprobed(registry, name, stack_size, f)?;
    // A switch point like a probe: a fiber that spawns and joins in a loop
    // may run on without ever parking (its children done by another
    // worker by the time it joins them), and without this it would look
    // like a spinner, go unpreempted, and get its worker handed off.
    crate::preempt::point();
    Ok(handle)
}

/// Runs `f` as a new fiber on the caller's runtime.
///
/// The fiber takes its stack when it first runs; if none can be had then,
/// [`JoinHandle::join`] says so ([`JoinError::stack_error`]).
///
/// # Panics
///
/// If called outside a fiber on a thread that entered no runtime
/// ([`Handle::enter`]; or use [`Runtime::spawn`] there), or where
/// [`FiberBuilder::spawn`] returns an error (see there).
#[inline]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    spawn_in(&current_registry("spawn"), None, None, f)
        .unwrap_or_else(|e| panic!("spawning a fiber: {e}"))
}

/// Suspends the calling fiber for at least `duration`, letting others
/// run; on a plain thread, sleeps the thread.
pub fn sleep(duration: Duration) {
    sleep_until(crate::sync::waiter::deadline_after(duration));
}

/// Suspends the calling fiber until `deadline` (at least), letting others
/// run; on a plain thread, sleeps the thread. Returns at once for a
/// deadline that has passed.
pub fn sleep_until(deadline: Instant) {
    let Some(task) = Task::current() else {
        return thread::sleep(deadline.saturating_duration_since(Instant::now()));
    };
    if Instant::now() >= deadline {
        return;
    }
    // Taken out on an unwind too (a fiber cancelled at shutdown).
    let _entry = task
        .registry
        .timer
        .add_guarded(deadline, Waker::Fiber(task.arc()));
    // Relaxed: read only by dumps, which show it as a hint.
    task.sleep_until
        .store(crate::debug::clock::instant_to_ns(deadline), Relaxed);
    while Instant::now() < deadline {
        park(&"sleep");
    }
    // Relaxed: as above.
    task.sleep_until.store(0, Relaxed);
}

pub use crate::sched::park::yield_now;

/// Cancels a scoped fiber when dropped: on an unwind out of `block_on`'s
/// wait for it.
struct CancelOnUnwind<'h, 'scope, T>(&'h ScopedJoinHandle<'scope, T>);

impl<T> Drop for CancelOnUnwind<'_, '_, T> {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// The calling fiber, if the caller is one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CurrentFiber {
    /// Unique in the process.
    pub id: u64,
    /// The name given with [`FiberBuilder::name`].
    pub name: Option<Arc<str>>,
    /// The graph node the fiber is running, if it runs one: a graph's
    /// nodes run on the fibers of its run (the caller's included), so a
    /// node sees their id and name, and its own here.
    pub node: Option<String>,
}

/// Id and name of the calling fiber, and the graph node it runs, if any;
/// `None` on a plain thread.
pub fn current() -> Option<CurrentFiber> {
    Task::current().map(|t| CurrentFiber {
        id: t.id,
        name: t.name.clone(),
        node: crate::stack::header::StackHeader::current().and_then(|header| {
            // SAFETY: the header of the stack this code runs on, live while
            // it does; called on that stack.
            unsafe { (*header).running_node() }.map(str::to_owned)
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finished fibers the live list still holds (it sweeps lazily) keep
    /// the registry alive through their tasks: the runtime's drop must let
    /// go of them, or every dropped runtime would leak.
    #[test]
    fn a_dropped_runtime_frees_its_registry() {
        let rt = Builder::new().workers(2).build().unwrap();
        let handles: Vec<_> = (0..10).map(|i| rt.spawn(move || i)).collect();
        let sum: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, 45);
        let registry = Arc::downgrade(rt.registry());
        drop(rt);
        // The workers have been joined; nothing of the runtime is left.
        let deadline = Instant::now() + Duration::from_secs(5);
        while registry.upgrade().is_some() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        assert!(
            registry.upgrade().is_none(),
            "the registry outlived its runtime"
        );
    }

    /// Spawns from plain threads racing the runtime's drop: a fiber queued
    /// on the global queue just after the shutdown emptied it stayed there
    /// for good, and its task kept the registry alive (one round in a few
    /// hundred leaked before spawns were queued under the live list's
    /// lock, which the shutdown's close takes).
    #[test]
    fn spawns_racing_the_shutdown_leave_nothing_behind() {
        for round in 0..300 {
            let rt = Builder::new().workers(1).build().unwrap();
            let registry = Arc::downgrade(rt.registry());
            let spawners: Vec<_> = (0..2)
                .map(|_| {
                    let handle = rt.handle().clone();
                    thread::spawn(move || {
                        let mut after = 0;
                        while after < 50 {
                            if handle.is_shut_down() {
                                after += 1;
                            }
                            drop(handle.spawn(|| ()));
                        }
                    })
                })
                .collect();
            thread::sleep(Duration::from_micros(round % 7 * 50));
            drop(rt);
            spawners.into_iter().for_each(|s| s.join().unwrap());
            let deadline = Instant::now() + Duration::from_secs(5);
            while registry.upgrade().is_some() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(1));
            }
            assert!(
                registry.upgrade().is_none(),
                "round {round}: the registry outlived its runtime"
            );
        }
    }
}
