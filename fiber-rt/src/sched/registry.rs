//! What all workers of a runtime share: the global queue, the stealers of
//! each local queue, the sleep state, the list of live fibers, the timer.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_deque::{Injector, Steal, Stealer, Worker as LocalQueue};

use super::live::Live;
use super::live_slots::LiveSlots;
use super::offers::Offers;
use super::padded::Padded;
use super::sleep::Sleep;
use super::task::{CancelFn, Task};
use super::task_ref::TaskRef;
use super::thread;
use super::timer::Timer;
use super::worker::Worker;
use super::yielded::YieldedSlot;
use crate::preempt::{Monitor, WorkerClock};
use crate::stack::StackKind;

/// Settings fixed when the runtime is built.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) workers: usize,
    pub(crate) stack_size: usize,
    pub(crate) guard_pages: bool,
    pub(crate) thread_name: String,
    pub(crate) time_slice: Duration,
    pub(crate) dump_on_sigquit: bool,
    /// Whether the preemption backstop (SIGURG) is on.
    pub(crate) backstop: bool,
    /// How long the shutdown waits for cancelled fibers while none
    /// finishes (see `runtime/shutdown.rs`).
    pub(crate) shutdown_timeout: Duration,
    /// Run on each worker thread as it starts and as it ends.
    pub(crate) on_thread_start: Option<ThreadHook>,
    pub(crate) on_thread_stop: Option<ThreadHook>,
}

/// A function run on the runtime's worker threads (see
/// `Builder::on_thread_start`).
#[derive(Clone)]
pub(crate) struct ThreadHook(pub(crate) Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for ThreadHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ThreadHook")
    }
}

impl ThreadHook {
    /// Runs the hook, inside `registry`'s runtime (`Handle::current`
    /// works there); a panic in it is reported and goes no further, so
    /// that the worker runs on (or ends) as it would have.
    ///
    /// In a start hook, a wait for a fiber's end that would block its
    /// thread for good (see `park::refuse_in_hook`) panics instead: the
    /// worker runs no fiber until its hook returns. (A stop hook's worker
    /// has stopped for good, or runs on another thread: there a wait can
    /// end.)
    pub(crate) fn run(registry: &Arc<Registry>, hook: Option<&ThreadHook>, when: HookTime) {
        if let Some(ThreadHook(hook)) = hook {
            let runtime = crate::runtime::Handle::of(registry.clone());
            let _entered = runtime.enter();
            let state = super::thread::state();
            let name = match when {
                HookTime::Start => "thread start",
                HookTime::Stop => "thread stop",
            };
            state.in_start_hook.set(when == HookTime::Start);
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook()));
            state.in_start_hook.set(false);
            if outcome.is_err() {
                eprintln!("fiber runtime: the {name} hook panicked; its thread goes on");
            }
        }
    }
}

/// When a thread hook runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum HookTime {
    Start,
    Stop,
}

pub(crate) struct Registry {
    pub(crate) config: Config,
    /// The stack of a fiber spawned without a size of its own (checked
    /// when the runtime was built).
    default_stack: StackKind,
    pub(crate) injector: Injector<TaskRef>,
    pub(crate) stealers: Vec<Stealer<TaskRef>>,
    pub(crate) sleep: Sleep,
    pub(crate) timer: Timer,
    shutdown: AtomicBool,
    /// Workers looking for work to steal; bounded so idle workers do not
    /// all hammer the queues at once. Written by searching workers, read
    /// by every notice of work: on lines of its own, as are the other
    /// counters written often by one side and read or written by another.
    searching: Padded<AtomicUsize>,
    live: Live,
    /// Written by thieves (steals) and the monitor.
    pub(crate) stats: Padded<Stats>,
    /// One per worker, read by the preemption monitor.
    pub(crate) clocks: Vec<WorkerClock>,
    /// Shared with the list of monitors asleep with nothing to trim
    /// (see `preempt::wake_for_trim`).
    pub(crate) monitor: Arc<Monitor>,
    /// The workers, by index; emptied at shutdown (they refer back to us).
    workers: Mutex<Vec<Arc<Worker>>>,
    /// Per worker: its last hand-off found no thread (said once).
    handoff_failing: Vec<AtomicBool>,
    /// Threads started for workers by the backstop, joined at shutdown.
    extra_threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// Threads running a fiber the backstop detached (see `Task::detached`),
    /// which a shutdown may have to leave running.
    pub(crate) detached_threads: std::sync::atomic::AtomicUsize,
    /// When the runtime was built: workers' busy time counts from here.
    pub(crate) started: std::time::Instant,
    /// Graph runs asking idle workers for help.
    pub(crate) offers: Offers,
    /// Each worker's yielded slot (see `yielded`), by worker index.
    yielded: Box<[YieldedSlot]>,
    /// What the shutdown's cancellations wait on: see [`ShutdownWait`].
    pub(crate) shutdown_wait: ShutdownWait,
}

/// How the shutdown learns that a cancelled fiber it left waiting was
/// woken (see `runtime/shutdown.rs`): a wake-up during the shutdown
/// queues nothing (no worker runs any more), but unparks the thread
/// running the cancellations.
#[derive(Default)]
pub(crate) struct ShutdownWait {
    state: Mutex<WaitState>,
}

#[derive(Default)]
struct WaitState {
    /// The threads running cancellations: the shutdown's, and any that a
    /// fiber came back on after it (see `shutdown::finish_late`).
    threads: Vec<std::thread::Thread>,
    /// A shutdown time-out that replaces the configured one, given by
    /// `Runtime::shutdown_timeout`.
    timeout: Option<std::time::Duration>,
    /// Set once the shutdown's pass over the live fibers has ended: a
    /// fiber that comes back into the runtime after that (one that ran
    /// detached, out of its reach) is cancelled by its own thread.
    pass_over: bool,
}

impl ShutdownWait {
    fn state(&self) -> std::sync::MutexGuard<'_, WaitState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the calling thread one of those woken, while it runs
    /// cancellations.
    pub(crate) fn add_thread(&self) {
        self.state().threads.push(std::thread::current());
    }

    /// Takes the calling thread back out of those woken.
    pub(crate) fn remove_thread(&self) {
        let me = std::thread::current().id();
        self.state().threads.retain(|thread| thread.id() != me);
    }

    /// A fiber was woken during the shutdown: the next round of whichever
    /// thread runs it resumes it (the unpark's token is kept if that
    /// thread is not parked yet).
    pub(crate) fn woken(&self) {
        self.state()
            .threads
            .iter()
            .for_each(std::thread::Thread::unpark);
    }

    /// Ends the shutdown's pass, unless `back()` says a fiber came back
    /// into the runtime meanwhile (`false`: another round takes it). Under
    /// the lock [`came_back`](Self::came_back) takes, so a fiber that
    /// comes back is either seen here or sees the pass over.
    pub(crate) fn end_pass(&self, back: impl FnOnce() -> bool) -> bool {
        let mut state = self.state();
        if back() {
            return false;
        }
        state.pass_over = true;
        true
    }

    /// Replaces the configured shutdown time-out.
    pub(crate) fn set_timeout(&self, timeout: std::time::Duration) {
        self.state().timeout = Some(timeout);
    }

    /// For a fiber that ran detached and has just come back into the
    /// runtime, having marked itself so: whether the shutdown's pass is
    /// over, so that nobody else will run it.
    pub(crate) fn came_back(&self) -> bool {
        self.state().pass_over
    }
}

/// Counters, read by `Runtime::metrics`. Relaxed throughout: statistics
/// need no ordering with anything else.
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) steals: AtomicU64,
    /// Flags set by the monitor.
    pub(crate) preempt_requests: AtomicU64,
    /// Yields at a probe because of a flag.
    pub(crate) preempt_yields: AtomicU64,
    /// SIGURGs sent to fibers that ignored their flag.
    pub(crate) backstop_signals: AtomicU64,
    /// Workers handed to a fresh thread, their fiber detached.
    pub(crate) backstop_handoffs: AtomicU64,
    /// Fibers that never started for want of a stack.
    pub(crate) stackless: AtomicU64,
    /// Each worker's busy and idle time as last reported by the metrics,
    /// so that reports never go backwards (a sample may catch a worker
    /// between the two stores that end an idle stretch).
    pub(crate) reported: std::sync::Mutex<Vec<(std::time::Duration, std::time::Duration)>>,
}

impl Registry {
    pub(crate) fn new(config: Config) -> (Arc<Registry>, Vec<LocalQueue<TaskRef>>) {
        let config_workers = config.workers;
        let locals: Vec<_> = (0..config.workers)
            .map(|_| LocalQueue::new_fifo())
            .collect();
        let stealers = locals.iter().map(LocalQueue::stealer).collect();
        let default_stack = StackKind::new(config.stack_size, config.guard_pages)
            .expect("the builder checked the stack size");
        let registry = Arc::new(Registry {
            default_stack,
            config,
            injector: Injector::new(),
            stealers,
            sleep: Sleep::new(),
            timer: Timer::new(),
            shutdown: AtomicBool::new(false),
            searching: Padded(AtomicUsize::new(0)),
            live: Live::new(config_workers),
            stats: Padded::default(),
            clocks: (0..config_workers)
                .map(|_| WorkerClock::default())
                .collect(),
            monitor: Arc::default(),
            workers: Mutex::new(Vec::new()),
            handoff_failing: (0..config_workers)
                .map(|_| AtomicBool::new(false))
                .collect(),
            extra_threads: Mutex::new(Vec::new()),
            detached_threads: std::sync::atomic::AtomicUsize::new(0),
            started: std::time::Instant::now(),
            offers: Offers::default(),
            yielded: (0..config_workers).map(|_| YieldedSlot::new()).collect(),
            shutdown_wait: ShutdownWait::default(),
        });
        (registry, locals)
    }

    /// A fresh fiber id, unique in the process (so that ids from several
    /// runtimes, in one `JoinSet` or one log, never collide). One counter,
    /// not blocks per worker: a fiber's id is then larger than its
    /// spawner's, and the shutdown, which cancels newest first, relies on
    /// that (a scope's owner is cancelled after the fibers it waits for).
    pub(crate) fn next_fiber_id(&self) -> u64 {
        /// Taken by every spawn, of every runtime: on a line of its own.
        static NEXT_ID: Padded<AtomicU64> = Padded(AtomicU64::new(1));
        // Relaxed: the counter alone orders the ids; a spawner's id was
        // taken before its own code ran, in the same modification order.
        NEXT_ID.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        // Acquire: pairs with the Release in `begin_shutdown`.
        self.shutdown.load(Ordering::Acquire)
    }

    /// Worker `index`'s yielded slot; `None` for a worker that is not one
    /// of the runtime's (the shutdown's temporary worker).
    #[inline]
    pub(crate) fn yielded(&self, index: usize) -> Option<&YieldedSlot> {
        self.yielded.get(index)
    }

    /// Whether a fiber waits in any worker's yielded slot.
    pub(crate) fn any_yielded(&self) -> bool {
        self.yielded.iter().any(YieldedSlot::is_occupied)
    }

    /// Lets go of the fibers in every yielded slot, at shutdown, once no
    /// worker runs (the live list cancels them).
    pub(crate) fn drain_yielded(&self) {
        self.yielded.iter().for_each(|slot| drop(slot.take()));
    }

    /// The preemption clock of worker `index`; the shutdown's temporary
    /// worker (index past the end) shares a clock nobody samples.
    pub(crate) fn clock(&self, index: usize) -> &WorkerClock {
        static UNSAMPLED: WorkerClock = WorkerClock::new();
        self.clocks.get(index).unwrap_or(&UNSAMPLED)
    }

    /// Makes the workers, once, right after the registry.
    pub(crate) fn add_workers(self: &Arc<Self>, locals: Vec<LocalQueue<TaskRef>>) {
        let workers = locals
            .into_iter()
            .enumerate()
            .map(|(index, local)| Arc::new(Worker::new(index, self.clone(), local)))
            .collect();
        *self.workers.lock().unwrap_or_else(|e| e.into_inner()) = workers;
    }

    /// Starts a thread running worker `index`'s scheduler loop.
    pub(crate) fn start_worker_thread(
        self: &Arc<Self>,
        index: usize,
    ) -> io::Result<std::thread::JoinHandle<()>> {
        let worker = self.workers.lock().unwrap_or_else(|e| e.into_inner())[index].clone();
        std::thread::Builder::new()
            .name(format!("{}-{index}", self.config.thread_name))
            .spawn(move || {
                crate::stack::overflow::ensure_handler();
                // Relaxed: read by the monitor only to signal this thread,
                // after it has seen this worker run a fiber (which orders it).
                worker
                    .registry
                    .clock(index)
                    .thread
                    .store(crate::preempt::current_thread(), Ordering::Relaxed);
                let (registry, config) = (&worker.registry, &worker.registry.config);
                ThreadHook::run(registry, config.on_thread_start.as_ref(), HookTime::Start);
                worker.run();
                ThreadHook::run(registry, config.on_thread_stop.as_ref(), HookTime::Stop);
            })
    }

    /// The backstop detached worker `index`'s fiber on its thread: give the
    /// worker a thread of its own again. `false` if no thread could be
    /// started: the caller tries again later. Meanwhile other workers may
    /// steal from its local queue and yielded slot; the fiber in its LIFO
    /// slot waits.
    pub(crate) fn hand_off(self: &Arc<Self>, index: usize) -> bool {
        if self.is_shutdown() {
            return true;
        }
        let failing = &self.handoff_failing[index];
        match self.start_worker_thread(index) {
            Ok(handle) => {
                let mut threads = self.extra_threads.lock().unwrap_or_else(|e| e.into_inner());
                self.reap_finished(&mut threads);
                threads.push(handle);
                // Relaxed: a statistic.
                self.stats.backstop_handoffs.fetch_add(1, Ordering::Relaxed);
                // Relaxed: only the monitor thread reads and writes it.
                if failing.swap(false, Ordering::Relaxed) {
                    eprintln!("fiber runtime: worker {index} has a thread again");
                }
                true
            }
            Err(e) => {
                // Relaxed: as above. Said once, not at every retry.
                if !failing.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "fiber runtime: no thread for worker {index} ({e}); retrying each tick"
                    );
                }
                false
            }
        }
    }

    /// Joins the threads the backstop started that have ended, and that no
    /// worker's clock names any more (the monitor may still signal those).
    fn reap_finished(&self, threads: &mut Vec<std::thread::JoinHandle<()>>) {
        use std::os::unix::thread::JoinHandleExt;
        let named: Vec<u64> = self
            .clocks
            .iter()
            .map(|c| c.thread.load(Ordering::Relaxed))
            .collect();
        let (done, running): (Vec<_>, Vec<_>) = std::mem::take(threads)
            .into_iter()
            .partition(|t| t.is_finished() && !named.contains(&t.as_pthread_t()));
        *threads = running;
        for t in done {
            let _ = t.join();
        }
    }

    /// How many threads the backstop started have not ended (none starts
    /// once the monitor has stopped).
    pub(crate) fn extra_threads_running(&self) -> usize {
        self.extra_threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|thread| !thread.is_finished())
            .count()
    }

    /// Joins the threads the backstop started and lets go of the workers.
    ///
    /// Threads still running are let go of instead (a shutdown found them
    /// running detached fibers it leaves alone: see `runtime/shutdown.rs`).
    pub(crate) fn join_extra_threads(&self) {
        let threads =
            std::mem::take(&mut *self.extra_threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            if t.is_finished() {
                let _ = t.join();
            }
        }
        self.workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    pub(crate) fn begin_shutdown(&self) {
        // Release: everything before the shutdown is visible to workers that see it.
        self.shutdown.store(true, Ordering::Release);
        self.sleep.wake_all();
    }

    /// Creates a fiber running `f` and queues it: on the calling worker if
    /// the caller is one of ours, else on the global queue.
    pub(crate) fn spawn<F>(
        self: &Arc<Self>,
        name: Option<Arc<str>>,
        stack_size: Option<usize>,
        f: F,
    ) -> io::Result<TaskRef>
    where
        F: FnOnce() + Send + 'static,
    {
        self.spawn_task(name, stack_size, f, None)
    }

    /// Like [`spawn`](Self::spawn), for a fiber with a `JoinHandle`:
    /// `cancelled` reports to the handle if the runtime shuts down before
    /// the fiber starts (its closure is then dropped unrun).
    pub(crate) fn spawn_joinable<F>(
        self: &Arc<Self>,
        name: Option<Arc<str>>,
        stack_size: Option<usize>,
        f: F,
        cancelled: CancelFn,
    ) -> io::Result<TaskRef>
    where
        F: FnOnce() + Send + 'static,
    {
        self.spawn_task(name, stack_size, f, Some(cancelled))
    }

    fn spawn_task<F>(
        self: &Arc<Self>,
        name: Option<Arc<str>>,
        stack_size: Option<usize>,
        f: F,
        cancelled: Option<CancelFn>,
    ) -> io::Result<TaskRef>
    where
        F: FnOnce() + Send + 'static,
    {
        // Checked now; the stack itself is taken at the first run.
        let stack = match stack_size {
            None => self.default_stack,
            Some(size) => StackKind::new(size, self.config.guard_pages)?,
        };
        let entered = thread::enter();
        let worker = self.local_worker(&entered);
        let id = self.next_fiber_id();
        let task = Task::create(self.clone(), id, stack, name, f, cancelled)?;
        // SAFETY: `task` was just made, and nothing has seen it yet.
        let [live, queued] = unsafe { task.more_refs::<2>() };
        let added = match worker {
            Some(worker) => worker.add_live(live).map(|()| worker.push_new(queued)),
            // A plain thread's spawn once the shutdown has begun is
            // refused: no worker takes a fiber from the global queue any
            // more, and one that waited for it there (a thread stop hook
            // joining it) kept its thread, and so the drop, for good.
            // Acquire, in `is_shutdown`: pairs with `begin_shutdown`.
            None if self.is_shutdown() => {
                drop(queued);
                Err(live)
            }
            // Queued under the live list's lock: see `Live::add`.
            None => self.add_live(live, || self.injector.push(queued)),
        };
        drop(entered);
        if added.is_err() {
            // The runtime has shut down: nothing would ever run it.
            task.refuse();
        } else if worker.is_none() {
            self.notify_work();
        }
        Ok(task)
    }

    /// How long the shutdown waits for cancelled fibers while none
    /// finishes: the configured time, or the one the drop was given.
    pub(crate) fn shutdown_timeout(&self) -> std::time::Duration {
        self.shutdown_wait
            .state()
            .timeout
            .unwrap_or(self.config.shutdown_timeout)
    }

    /// Queues a woken fiber.
    pub(crate) fn schedule(&self, task: TaskRef) {
        self.schedule_as(task, false)
    }

    /// Queues a fiber woken by a fiber that finished, which it was joining
    /// (see `Worker::push_joiner`).
    pub(crate) fn schedule_joiner(&self, task: TaskRef) {
        self.schedule_as(task, true)
    }

    fn schedule_as(&self, task: TaskRef, joiner: bool) {
        if self.is_shutdown() {
            // The runtime's drop runs it: it finds it in the live list.
            return self.shutdown_wait.woken();
        }
        let entered = thread::enter();
        match self.local_worker(&entered) {
            Some(worker) if joiner => worker.push_joiner(task),
            Some(worker) => worker.push_woken(task),
            None => {
                self.injector.push(task);
                self.notify_work();
            }
        }
        drop(entered);
    }

    /// The worker of this registry that the caller runs on, if the caller
    /// is one of our fibers and still has its worker (`entered` keeps the
    /// backstop from taking it meanwhile).
    fn local_worker(&self, entered: &thread::Entered) -> Option<&Worker> {
        if entered.detached() {
            return None;
        }
        let task = Task::current()?;
        // SAFETY: `task` is the running task, so its worker is set and alive.
        let worker = unsafe { task.worker() };
        std::ptr::eq(&*worker.registry, self).then_some(worker)
    }

    /// Wakes a sleeping worker if there is one and none is already looking
    /// for work.
    pub(crate) fn notify_work(&self) {
        // SeqCst: part of the sleep protocol (see sleep/README.md): the
        // queue push before this must be ordered before reading `searching`
        // and the sleeper count.
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.searching.load(Ordering::SeqCst) == 0 {
            self.sleep.wake_one();
        }
    }

    /// Whether `worker` would find something to run.
    pub(crate) fn has_work_for(&self, worker: &Worker) -> bool {
        worker.has_local_work()
            || !self.injector.is_empty()
            || self.stealers.iter().any(|s| !s.is_empty())
            || self.offers.any()
            || self.any_yielded()
            || self.is_shutdown()
    }

    /// Registers the caller as searching for work, unless enough workers
    /// already are; searching ends when the returned guard drops.
    pub(crate) fn start_searching(&self) -> Option<Searching<'_>> {
        let max_searching = self.config.workers.div_ceil(2).max(1);
        // SeqCst: read by producers in `notify_work` (sleep/README.md).
        if self.searching.fetch_add(1, Ordering::SeqCst) >= max_searching {
            self.searching.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Searching(self))
    }

    /// Takes a fiber from another worker's queue.
    pub(crate) fn steal_for(&self, worker: &Worker) -> Option<TaskRef> {
        let found = self.try_steal(worker);
        if found.is_some() {
            // Relaxed: a statistic.
            self.stats.steals.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    fn try_steal(&self, worker: &Worker) -> Option<TaskRef> {
        let stealers = &self.stealers;
        let n = stealers.len();
        for i in 1..n {
            let victim = &stealers[(worker.index + i) % n];
            loop {
                // Half the victim's queue (at most a few dozen) at once, as
                // from the global queue: one touch of the victim's end per
                // batch rather than per fiber, where the owner pops too.
                match victim.steal_batch_and_pop(worker.local_queue()) {
                    Steal::Success(task) => {
                        // Work left behind, or brought back in a batch:
                        // another idle worker may take it. This passes a
                        // burst's one notice on (sleep/README.md, "Bursts").
                        if !worker.local_queue().is_empty() || !victim.is_empty() {
                            self.notify_work();
                        }
                        return Some(task);
                    }
                    Steal::Empty => break,
                    Steal::Retry => continue,
                }
            }
        }
        // Then a fiber waiting in another worker's yielded slot.
        (1..n).find_map(|i| self.yielded((worker.index + i) % n)?.take())
    }

    /// Adds `task` to the live list, from a thread not running a worker.
    /// Adds `task` to the shared part of the live list and runs `queue`
    /// (see [`Live::add`]); gives the task back once the shutdown has
    /// closed the list.
    pub(crate) fn add_live(&self, task: TaskRef, queue: impl FnOnce()) -> Result<(), TaskRef> {
        self.live.add(task, queue)
    }

    /// Refuses every later spawn from a thread that runs no worker (see
    /// [`Live::close`]).
    pub(crate) fn close_live(&self) {
        self.live.close();
    }

    /// Worker `index`'s own part of the live list, if it has one.
    pub(crate) fn live_slots(&self, index: usize) -> Option<&LiveSlots> {
        self.live.worker_slots(index)
    }

    /// Fibers spawned, finished and live so far, from one moment.
    pub(crate) fn live_counts(&self) -> super::live::Counts {
        self.live.counts()
    }

    /// Every live fiber, newest first.
    pub(crate) fn live_tasks(&self) -> Vec<TaskRef> {
        self.live.tasks()
    }

    /// Drops the live list's references to tasks; see [`Live::clear`].
    pub(crate) fn clear_live(&self) {
        self.live.clear();
    }
}

/// A worker searching for work; see [`Registry::start_searching`].
pub(crate) struct Searching<'a>(&'a Registry);

impl Drop for Searching<'_> {
    fn drop(&mut self) {
        // SeqCst: see `start_searching`. A worker that stops searching goes
        // on to run a fiber or to the sleep protocol, which looks at the
        // queues again after registering as a sleeper.
        self.0.searching.fetch_sub(1, Ordering::SeqCst);
    }
}
