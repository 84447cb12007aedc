//! Settings for a runtime (`Builder`) and for one fiber (`FiberBuilder`).

use std::io;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::{spawn_in, JoinHandle, Runtime};
use crate::sched::registry::{Config, Registry, ThreadHook};
use crate::stack::{DEFAULT_STACK_SIZE, MAX_STACK_SIZE, MIN_STACK_SIZE};

/// Settings for a [`Runtime`].
///
/// ```
/// use std::time::Duration;
/// let rt = fiber_rt::Builder::new()
///     .workers(2)
///     .stack_size(64 * 1024)
///     .thread_name("pipeline")
///     .time_slice(Duration::from_millis(5))
///     .build()
///     .unwrap();
/// assert_eq!(rt.workers(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    config: Config,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// Defaults: one worker per available core, 256 KiB stacks with guard
    /// pages, threads named `fiber-worker-N`, a 10 ms time slice, a
    /// 1 s shutdown timeout.
    pub fn new() -> Self {
        Builder {
            config: Config {
                workers: thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1),
                stack_size: DEFAULT_STACK_SIZE,
                guard_pages: true,
                thread_name: "fiber-worker".to_owned(),
                time_slice: Duration::from_millis(10),
                dump_on_sigquit: false,
                backstop: true,
                shutdown_timeout: Duration::from_secs(1),
                on_thread_start: None,
                on_thread_stop: None,
            },
        }
    }

    /// Number of worker threads (at least 1).
    pub fn workers(mut self, n: usize) -> Self {
        self.config.workers = n;
        self
    }

    /// Default stack size of fibers, rounded up to a power of two.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.config.stack_size = bytes;
        self
    }

    /// Whether fiber stacks get a guard page (default `true`). Without,
    /// a stack takes one memory mapping instead of two, so far more fibers
    /// fit under `vm.max_map_count`, but an overflow corrupts memory
    /// silently instead of aborting with a message.
    pub fn guard_pages(mut self, on: bool) -> Self {
        self.config.guard_pages = on;
        self
    }

    /// Prefix of worker thread names (`<prefix>-0`, `<prefix>-1`, ...).
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.config.thread_name = prefix.into();
        self
    }

    /// How long a fiber may run before it is asked to yield (1 ms to 1 s).
    pub fn time_slice(mut self, slice: Duration) -> Self {
        self.config.time_slice = slice;
        self
    }

    /// Whether the preemption backstop is on (default `true`): a fiber that
    /// ignores its preemption request for another whole slice (code with
    /// no probes) is detached from its worker by a SIGURG, keeping its
    /// thread, while the worker goes on with its other fibers on a fresh
    /// thread. See [`preempt`](crate::preempt).
    pub fn preempt_signals(mut self, on: bool) -> Self {
        self.config.backstop = on;
        self
    }

    /// Whether `SIGQUIT` (`kill -QUIT <pid>`, Ctrl-\\ in a terminal)
    /// prints a [fiber dump](crate::debug) of this runtime to stderr
    /// (default `false`). The process keeps running. This replaces the
    /// signal's default action (a core dump) for the whole process.
    pub fn dump_on_sigquit(mut self, on: bool) -> Self {
        self.config.dump_on_sigquit = on;
        self
    }

    /// How long dropping the runtime waits for cancelled fibers to finish
    /// when none does (default 1 s).
    ///
    /// The drop cancels every unfinished fiber, and their destructors run.
    /// A destructor may wait (for a lock, a channel, a join, a sleep): the
    /// fiber then parks, the drop goes on with the other fibers, whose
    /// unwinding may release what it waits for, and resumes it once it is
    /// woken. Once no fiber has finished for this long, the fibers left
    /// (waiting for something that never comes, or looping) are reported
    /// on standard error and left unfinished, their stacks and what those
    /// hold never reclaimed (the runtime's shared state among it: an
    /// abandoned fiber still refers to it), their `JoinHandle`s report
    /// them cancelled, and the drop returns. An abandoned fiber's place in
    /// a `fiber_rt::sync` queue is skipped: the lock, notification or free
    /// slot a release would have handed it goes to the next waiter, so a
    /// thread that shares the primitive is not left waiting; but what the
    /// abandoned fiber itself holds (a `Mutex` guard, a `OnceLock` it is
    /// initialising) stays held for good. A fiber that
    /// was woken just before the timeout, or keeps running, gets a few
    /// more turns first. A loop is seen only at its probes (`#[fiber]`
    /// code, [`preempt::point`](crate::preempt::point)), a blocking call
    /// (a `std` lock or channel, a read of stdin) not at all: the
    /// preemption backstop gives such a fiber's worker to a new thread and
    /// leaves the fiber on the old one, and once this time-out has passed
    /// the drop names it on standard error and returns, leaving it running
    /// there: when its call returns it either finishes (its `JoinHandle`,
    /// which waits for it meanwhile, gets its result) or, at its next
    /// switch point, is cancelled and unwound on that thread (its
    /// destructors run, and may wait for locks and messages, though no
    /// longer for sleeps: the runtime's timer has stopped). Without the
    /// backstop (`preempt_signals(false)`) such a fiber keeps its worker's
    /// thread, and the drop, for as long as it runs.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config.shutdown_timeout = timeout;
        self
    }

    /// Runs `f` on each worker thread as it starts, before it runs any
    /// fiber: to set up thread-local state, pin the thread, name it for a
    /// profiler. A worker whose thread the preemption backstop replaced
    /// (see [`preempt_signals`](Self::preempt_signals)) starts on a new
    /// thread, which runs `f` too, and so does the thread the runtime's
    /// drop unwinds the cancelled fibers on (their destructors run there).
    /// `f` runs inside the runtime (`Handle::current` works there). A
    /// panic in `f` is reported on standard error, and the worker runs on.
    /// `f` may spawn fibers but not wait for them: its worker runs none
    /// until `f` returns, and every worker runs `f` as it starts, so a
    /// wait for a fiber's end with no time-out there (a `join`, a scope,
    /// `block_on`) would never end; it panics instead. A lock, a `recv` or
    /// a cell's initialisation may wait there for a plain thread (a
    /// blocking job, another worker's hook), but one that waits for a
    /// fiber hangs.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// let started = Arc::new(Mutex::new(Vec::new()));
    /// let seen = started.clone();
    /// let rt = fiber_rt::Builder::new()
    ///     .workers(2)
    ///     .on_thread_start(move || {
    ///         let name = std::thread::current().name().map(str::to_owned);
    ///         seen.lock().unwrap().push(name.unwrap_or_default());
    ///     })
    ///     .build()
    ///     .unwrap();
    /// drop(rt); // joins the workers
    /// let started = started.lock().unwrap();
    /// assert!(started.contains(&"fiber-worker-0".to_owned()));
    /// assert!(started.contains(&"fiber-worker-1".to_owned()));
    /// ```
    pub fn on_thread_start(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.config.on_thread_start = Some(ThreadHook(Arc::new(f)));
        self
    }

    /// Runs `f` on each worker thread as it stops running its worker (at
    /// the shutdown, or once the backstop has handed its worker to
    /// another thread), after the last fiber it ran has switched away, and
    /// on the thread the drop unwinds cancelled fibers on, once they have.
    /// `f` runs inside the runtime, but a fiber it spawns during the
    /// shutdown is refused (its join says it was cancelled). A panic in
    /// `f` is reported on standard error.
    pub fn on_thread_stop(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.config.on_thread_stop = Some(ThreadHook(Arc::new(f)));
        self
    }

    /// Starts the worker threads.
    pub fn build(self) -> io::Result<Runtime> {
        let c = &self.config;
        let invalid = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        if c.workers == 0 {
            return invalid("a runtime needs at least one worker".into());
        }
        if c.stack_size > MAX_STACK_SIZE {
            return invalid(format!(
                "stack size {} is larger than the largest supported, {MAX_STACK_SIZE} (sizes below {MIN_STACK_SIZE} are rounded up)",
                c.stack_size
            ));
        }
        if c.time_slice < Duration::from_millis(1) || c.time_slice > Duration::from_secs(1) {
            return invalid(format!(
                "time slice {:?} is out of range (1 ms to 1 s)",
                c.time_slice
            ));
        }
        let (registry, locals) = Registry::new(self.config.clone());
        registry.add_workers(locals);
        if c.backstop {
            crate::preempt::install_backstop();
        }
        let mut threads = Vec::with_capacity(c.workers + 2);
        for index in 0..c.workers {
            match registry.start_worker_thread(index) {
                Ok(t) => threads.push(t),
                Err(e) => {
                    super::shutdown::shutdown(&registry, threads);
                    return Err(e);
                }
            }
        }
        let monitor = registry.clone();
        match thread::Builder::new()
            .name(format!("{}-monitor", c.thread_name))
            .spawn(move || crate::preempt::Monitor::run(monitor))
        {
            Ok(t) => threads.push(t),
            Err(e) => {
                super::shutdown::shutdown(&registry, threads);
                return Err(e);
            }
        }
        let timer = registry.clone();
        match thread::Builder::new()
            .name(format!("{}-timer", c.thread_name))
            .spawn(move || timer.timer.run())
        {
            Ok(t) => threads.push(t),
            Err(e) => {
                super::shutdown::shutdown(&registry, threads);
                return Err(e);
            }
        }
        if c.dump_on_sigquit {
            if let Err(e) = crate::debug::sigquit::register(Arc::downgrade(&registry)) {
                super::shutdown::shutdown(&registry, threads);
                return Err(e);
            }
        }
        Ok(Runtime::start(registry, threads))
    }
}

/// Settings for one fiber: a name (shown in panics, overflow messages and
/// dumps) and a stack size.
///
/// ```
/// let rt = fiber_rt::Runtime::new().unwrap();
/// let handle = fiber_rt::FiberBuilder::new()
///     .name("parser")
///     .stack_size(1 << 20)
///     .spawn_on(&rt, || fiber_rt::current().unwrap().name.unwrap().to_string())
///     .unwrap();
/// assert_eq!(handle.join().unwrap(), "parser");
/// ```
#[derive(Clone, Debug, Default)]
pub struct FiberBuilder {
    name: Option<Arc<str>>,
    stack_size: Option<usize>,
}

impl FiberBuilder {
    /// No name, the runtime's default stack size.
    pub fn new() -> Self {
        Self::default()
    }

    /// The fiber's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into().into());
        self
    }

    /// The fiber's stack size, rounded up to a power of two.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Spawns on the caller's runtime (the caller must be a fiber, or a
    /// thread that entered a runtime: [`Handle::enter`](crate::Handle::enter)).
    ///
    /// # Errors
    ///
    /// If the stack size is larger than [`MAX_STACK_SIZE`], or if the
    /// closure is too large to wait in the fiber's control block (over 64
    /// bytes) and leaves too little room to run on its stack (where it is
    /// laid) or no stack can be had for it now. A fiber with a smaller
    /// closure takes its stack when it first runs: if none can be had then,
    /// its [`JoinHandle::join`] says so ([`JoinError::stack_error`]).
    ///
    /// [`MAX_STACK_SIZE`]: crate::stack::MAX_STACK_SIZE
    /// [`JoinError::stack_error`]: crate::JoinError::stack_error
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let registry = super::current_registry("FiberBuilder::spawn");
        spawn_in(&registry, self.name, self.stack_size, f)
    }

    /// Spawns on `rt`: a [`Runtime`], or its [`Handle`](crate::Handle).
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn).
    pub fn spawn_on<F, T>(self, rt: &impl AsRef<super::Handle>, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        spawn_in(rt.as_ref().registry(), self.name, self.stack_size, f)
    }
}
