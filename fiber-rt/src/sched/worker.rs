//! A worker thread: its scheduler loop, its queues, and the switches in and
//! out of fibers.
//!
//! The protocol that makes parking safe: whoever switches away leaves a
//! [`Post`] action in the worker, and whoever is resumed on that worker runs
//! it first ([`Worker::run_post`]). So a fiber is requeued, marked parked or
//! freed only once it is off its stack, and a concurrent wake-up can never
//! resume a fiber that is still running.

use std::cell::Cell;
use std::sync::Arc;

use crossbeam_deque::{Steal, Worker as LocalQueue};
use fiber_asm::StackPointer;

use super::live_slots::LiveSlots;
use super::registry::Registry;
use super::start::StashedFn;
use super::task::Task;
use super::task_ref::TaskRef;
use super::thread;
use super::yielded::YieldedSlot;
use crate::preempt::WorkerClock;

/// Every this many scheduling decisions, the global queue goes first, so
/// fibers that keep waking each other cannot starve it.
const GLOBAL_QUEUE_INTERVAL: u32 = 61;

/// Rounds of looking for work (a few microseconds in all) before an idle
/// worker goes to sleep.
const SEARCH_ROUNDS: u32 = 64;

/// What a fiber asks for when it switches away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Switch {
    /// Go to the back of the queue.
    Yield,
    /// Sleep until woken.
    Park,
    /// Asked to yield by the preemption monitor: go to the back of the
    /// queue, and let the scheduler loop look at the global queue first,
    /// where fibers woken by timers and other threads wait.
    Preempt,
}

/// Where a finished fiber's stack goes: see [`Worker::finish_current`].
pub(crate) enum Finish {
    /// Switch to this context for good; the stack is given back after.
    Switch(StackPointer),
    /// This fiber (now the worker's current) took the stack over: run its
    /// stashed closure with this, here.
    Here(*const Task, StashedFn),
}

/// Work left for whoever runs next on this worker.
#[derive(Default)]
pub(crate) enum Post {
    #[default]
    Nothing,
    Requeue(TaskRef),
    /// Into the worker's yielded slot (see `yielded`).
    Yielded(TaskRef),
    Park(TaskRef),
    Done(TaskRef),
}

/// A worker's scheduler state: its queues and its loop. Owned by the
/// registry for the life of the runtime and run by one thread at a time
/// (normally the same one; the preemption backstop can hand it to a fresh
/// thread while the old one stays with a fiber that ignores preemption).
/// Fibers reach it through their task's `worker`.
pub(crate) struct Worker {
    pub(crate) index: usize,
    pub(crate) registry: Arc<Registry>,
    local: LocalQueue<TaskRef>,
    /// The fiber most recently woken by a fiber on this worker: it runs
    /// next, while its data is hot in cache.
    lifo: Cell<Option<TaskRef>>,
    /// This worker's yielded slot, kept in the registry (other workers
    /// steal from it); `None` for the shutdown's temporary worker.
    yielded: Option<*const YieldedSlot>,
    /// This worker's clock, kept in the registry (the monitor samples it);
    /// cached here for the switches, which each touch it.
    clock: *const WorkerClock,
    /// This worker's own part of the live list, kept in the registry;
    /// `None` for the shutdown's temporary worker.
    live: Option<*const LiveSlots>,
    /// The scheduler loop's context while a fiber runs.
    sched_sp: Cell<Option<StackPointer>>,
    post: Cell<Post>,
    /// The fiber running on this worker (keeps its task alive).
    current: Cell<Option<TaskRef>>,
    /// Scheduling decisions left until the periodic look at the global
    /// queue (a countdown: cheaper to test on every switch than a modulo).
    until_global: Cell<u32>,
    /// The next scheduling decision looks at the global queue first.
    prefer_global: Cell<bool>,
    /// The newest offer of help seen at this worker's last look at the
    /// offers (see `offers`).
    offers_seen: Cell<u64>,
}

// SAFETY: a worker's `Cell`s and local queue are used by the one thread
// that runs it at a time. A worker changes threads only (a) when a thread
// is spawned to run it, which orders everything before, and (b) in the
// backstop, whose handler takes the running fiber out of the worker on the
// old thread while that thread is outside runtime code (so not using the
// worker), before the monitor spawns the new thread (Release/Acquire on
// the clock's `handoff` flag, then the spawn).
unsafe impl Send for Worker {}
// SAFETY: as above; shared references on other threads only read
// immutable fields (`index`, `registry`).
unsafe impl Sync for Worker {}

impl Worker {
    pub(crate) fn new(index: usize, registry: Arc<Registry>, local: LocalQueue<TaskRef>) -> Self {
        let yielded = registry
            .yielded(index)
            .map(|slot| slot as *const YieldedSlot);
        let clock: *const WorkerClock = registry.clock(index);
        let live = registry
            .live_slots(index)
            .map(|slots| slots as *const LiveSlots);
        Worker {
            index,
            clock,
            live,
            registry,
            local,
            lifo: Cell::new(None),
            yielded,
            sched_sp: Cell::new(None),
            post: Cell::new(Post::Nothing),
            current: Cell::new(None),
            until_global: Cell::new(GLOBAL_QUEUE_INTERVAL),
            prefer_global: Cell::new(false),
            offers_seen: Cell::new(0),
        }
    }

    /// The scheduler loop: runs fibers until the runtime shuts down, or
    /// until the backstop gives this worker to another thread.
    pub(crate) fn run(&self) {
        thread::bind(self);
        loop {
            self.run_post();
            if self.registry.is_shutdown() {
                break;
            }
            if let Some(task) = self.find_task() {
                // The shutdown began since the look above: the fiber found
                // is left to it (it cancels it, from the list of live
                // fibers), so that none spawned after
                // `Runtime::shutdown_background` returned ever starts.
                // Acquire, in `is_shutdown`: such a fiber came through a
                // queue, whose hand-over orders the flag before this load.
                if self.registry.is_shutdown() {
                    break;
                }
                if self.resume(task) {
                    return orphaned(&self.registry);
                }
                continue;
            }
            // Idle time is measured here, where the worker has nothing to
            // run, so switches between fibers pay nothing for it.
            let clock = self.clock();
            let idle = clock.idle_begin();
            match self.search() {
                Some(task) => {
                    clock.idle_end(idle);
                    // As above.
                    if self.registry.is_shutdown() {
                        break;
                    }
                    if self.resume(task) {
                        return orphaned(&self.registry);
                    }
                }
                None => {
                    let drove = self
                        .registry
                        .sleep
                        .sleep(|| self.registry.has_work_for(self));
                    clock.idle_end(idle);
                    if let Some(reactor) = drove {
                        // Counted as searching while it queues the fibers
                        // the sockets wake, so that no sleeper is signalled
                        // for them: this worker looks at the queues next.
                        let _searching = self.registry.start_searching();
                        reactor.harvest(0);
                    }
                }
            }
        }
        // Whatever is still queued is cancelled by the runtime's drop,
        // which finds it in the registry's list of live fibers.
        while self.local.pop().is_some() {}
        self.lifo.take();
        drop(self.take_yielded());
        thread::unbind();
    }

    /// Switches from the scheduler loop into `task`; returns when some fiber
    /// on this worker switches back to the loop: `true` if that fiber was
    /// detached by the backstop, and the worker now belongs to another
    /// thread (so this thread must not touch it again).
    ///
    /// A fiber that cannot start for want of a stack ends here, for good:
    /// the previous context's post action has run, so no stack this worker
    /// was done with is still held. Its closure is dropped on the loop's
    /// stack ([`Task::fail_start`]).
    fn resume(&self, task: TaskRef) -> bool {
        let target = match task.take_sp() {
            Ok(target) => target,
            Err(error) => {
                task.fail_start(error);
                return false;
            }
        };
        self.install(task, false);
        self.registry.monitor.wake();
        // SAFETY: `target` is the saved context of a fiber that is queued, so
        // not running anywhere; our own context goes to `sched_sp`, which
        // only fibers on this worker switch back to.
        let value = unsafe { fiber_asm::switch(self.sched_sp.as_ptr().cast(), target, 0) };
        value == thread::ORPHANED
    }

    /// For the backstop's handler: takes the running fiber and this
    /// worker's loop context out of the worker, which may then be run by
    /// another thread.
    ///
    /// # Safety
    ///
    /// Called on the thread running this worker, while it runs fiber code
    /// outside the runtime (so nothing else touches the worker), and only
    /// then.
    pub(crate) unsafe fn detach_running(&self) -> Option<(TaskRef, StackPointer)> {
        let task = self.current.take()?;
        match self.sched_sp.get() {
            Some(sp) => Some((task, sp)),
            None => {
                self.current.set(Some(task));
                None
            }
        }
    }

    /// The fiber running on this worker, without taking it.
    pub(crate) fn peek_current(&self) -> Option<*const Task> {
        let task = self.current.take();
        let ptr = task.as_ref().map(TaskRef::as_ptr);
        self.current.set(task);
        ptr
    }

    /// Runs `task` until it switches away, and completes what it left.
    /// Used by the shutdown to unwind fibers on the dropping thread.
    pub(crate) fn run_until_switch(&self, task: TaskRef) {
        let orphaned = self.resume(task);
        debug_assert!(!orphaned, "the shutdown's worker has no backstop");
        self.run_post();
    }

    /// Lets go of the fibers queued here. For the shutdown's worker, which
    /// resumes fibers from the live list, not from its queues (a fiber
    /// that yields or is woken while switching away lands here).
    pub(crate) fn drop_queued(&self) {
        while self.local.pop().is_some() {}
        drop(self.lifo.take());
    }

    /// Makes `task` this worker's current fiber and takes its context,
    /// with a time slice of its own or, with `inherit`, in the slice of the
    /// fiber that woke it (the LIFO slot's rule, so that two fibers waking
    /// each other cannot keep the rest of the queue waiting: their shared
    /// slice runs out like anyone's). Called by a fiber that switches away.
    ///
    /// A fiber that cannot start for want of a stack goes back to the
    /// front of this worker's queue, and the loop's context is returned
    /// instead: the loop first runs the post action left by the switch,
    /// which may give back the very stack the fiber needs (that of a
    /// fiber that just finished), and then tries once more ([`resume`]).
    ///
    /// [`resume`]: Self::resume
    ///
    /// Always inlined, like the rest of a switch's bookkeeping: the
    /// compiler's own choice left it a call (about 25 instructions a yield).
    #[inline(always)]
    fn adopt_with(&self, task: TaskRef, inherit: bool) -> StackPointer {
        match task.take_sp() {
            Ok(sp) => {
                self.install(task, inherit);
                sp
            }
            Err(_) => self.retry_from_loop(task),
        }
    }

    #[cold]
    fn retry_from_loop(&self, task: TaskRef) -> StackPointer {
        // The LIFO slot is empty where fibers adopt the next one (they took
        // from it first); the queue is the fallback, never the loss.
        if let Some(other) = self.lifo.replace(Some(task)) {
            self.local.push(other);
        }
        self.to_loop()
    }

    /// Makes `task` this worker's current fiber, in a slice of its own or,
    /// with `inherit`, in the slice of the fiber that woke it.
    #[inline]
    fn install(&self, task: TaskRef, inherit: bool) {
        task.worker.set(self);
        let clock = self.clock();
        if inherit {
            clock.continue_slice(task.id);
        } else {
            clock.start_slice(task.id);
        }
        let previous = self.current.replace(Some(task));
        debug_assert!(previous.is_none(), "a worker runs one fiber at a time");
        // The slot was empty: nothing to drop (and no drop call to pay).
        std::mem::forget(previous);
    }

    /// Runs the action the previous context left. Called first thing by
    /// every context that is resumed on this worker. Inlined for the
    /// yield's requeue (always: the compiler's own choice flips with
    /// unrelated changes); parks and finishes take the call.
    #[inline(always)]
    pub(crate) fn run_post(&self) {
        match self.post.take() {
            Post::Nothing => {}
            // No wake-up of idle workers: a yield adds no work, and one that
            // is stealing will see the queue anyway.
            Post::Requeue(task) => self.local.push(task),
            Post::Yielded(task) => self.put_yielded(task),
            other => self.run_post_slow(other),
        }
    }

    #[inline(never)]
    fn run_post_slow(&self, post: Post) {
        match post {
            Post::Nothing => {}
            Post::Requeue(task) => self.local.push(task),
            Post::Yielded(task) => self.put_yielded(task),
            Post::Park(task) => {
                self.clock().count_park();
                if !task.complete_park() {
                    // Woken while it was switching away: run it again.
                    self.local.push(task);
                    self.registry.notify_work();
                }
            }
            Post::Done(task) => task.release_stack(),
        }
    }

    /// Called on the running fiber `task`: leaves it as `how` asks and
    /// switches to the next ready fiber on this worker, or to the scheduler
    /// loop. Returns when the fiber is resumed, on whatever worker.
    pub(crate) fn switch_away(&self, task: &Task, how: Switch) {
        let me = self
            .current
            .take()
            .expect("a running fiber is its worker's current");
        let target = match how {
            Switch::Yield => self.yield_target(me),
            Switch::Preempt => {
                self.leave_post(Post::Requeue(me));
                let target = self.yield_slice();
                // The preempted fiber is work an idle worker could take: two
                // fibers that spin, one woken into the other's LIFO slot,
                // would otherwise share this worker while another sleeps
                // (the monitor's balancing only moves a fiber between
                // queues that differ by two). One fence a slice.
                self.registry.notify_work();
                target
            }
            Switch::Park => {
                self.leave_post(Post::Park(me));
                self.next_target()
            }
        };
        // Ours goes to the task's slot, which nobody reads until the post
        // action above has run (a yield's puts the fiber in the yielded
        // slot, where any worker may take it from then on).
        // SAFETY: `target` is a queued fiber's context or this worker's
        // scheduler loop, neither running; ours is saved as said above.
        unsafe { fiber_asm::switch(task.sp_slot(), target, 0) };
        after_resume(task);
    }

    /// Where the yielding fiber `me` switches to. The common case, another
    /// fiber ready on this worker, goes through the yielded slot instead
    /// of the local queue (see `yielded`): `me` waits there once off its
    /// stack, and two fibers yielding to each other swap places with one
    /// atomic swap and none of the queue's bookkeeping.
    #[inline]
    fn yield_target(&self, me: TaskRef) -> StackPointer {
        if self.slice_check_due() {
            self.leave_post(Post::Requeue(me));
            return self.yield_slice();
        }
        let Some((next, inherit)) = self.next_ready() else {
            // Nothing else here: the loop looks further (global queue,
            // other workers) before resuming us.
            self.leave_post(Post::Requeue(me));
            return self.to_loop();
        };
        self.leave_post(Post::Yielded(me));
        self.adopt_with(next, inherit)
    }

    /// This worker's clock.
    #[inline]
    fn clock(&self) -> &WorkerClock {
        // SAFETY: the clocks live in the registry (or are static), which
        // `self.registry` keeps alive as long as this worker.
        unsafe { &*self.clock }
    }

    /// Takes the fiber in this worker's yielded slot, if any.
    #[inline]
    fn take_yielded(&self) -> Option<TaskRef> {
        self.yielded_slot()?.take()
    }

    /// This worker's yielded slot (none for the shutdown's temporary
    /// worker).
    #[inline]
    fn yielded_slot(&self) -> Option<&YieldedSlot> {
        let slot = self.yielded?;
        // SAFETY: the slot lives in the registry, which `self.registry`
        // keeps alive as long as this worker.
        Some(unsafe { &*slot })
    }

    /// Leaves `post` for whoever runs next on this worker. The previous
    /// action was run already (every context runs it first), so nothing
    /// is dropped here.
    #[inline]
    fn leave_post(&self, post: Post) {
        let previous = self.post.replace(post);
        debug_assert!(
            matches!(previous, Post::Nothing),
            "a post action left unrun"
        );
        std::mem::forget(previous);
    }

    /// The post action of a yield: `task` waits in the yielded slot, and
    /// the fiber it displaces, which yielded before it, goes to the back of
    /// the local queue. No wake-up of idle workers, as for any requeue
    /// after a yield: idle ones that look find both, and the monitor moves
    /// them on for a sleeping one if the fiber now running never switches
    /// (see `sleep/README.md`). A worker without a slot (the shutdown's
    /// temporary one) requeues `task` instead.
    ///
    /// Always inlined in optimized builds, with the slot's `put` and
    /// `take`: the compiler's own choice made it a call in some builds
    /// (about 10 instructions a yield more, callgrind: 190 against 180 a
    /// yield). Not in debug builds, whose inlined frames left `finish`
    /// deeper than a stack take-over allows (see `finish_current`).
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn put_yielded(&self, task: TaskRef) {
        match self.yielded_slot() {
            Some(slot) => {
                if let Some(older) = slot.put(task) {
                    self.local.push(older);
                }
            }
            None => self.local.push(task),
        }
    }

    /// Called as the running fiber finishes, on its stack: where the
    /// stack goes next.
    ///
    /// The next ready fiber on this worker runs next either way. If it has
    /// not started yet and needs the same kind of stack, it takes this one
    /// over and runs on it at once ([`Finish::Here`]): no switch, and no
    /// stack given back to the pool and taken again (a fiber that spawns
    /// many small ones and joins them runs them one after the other this
    /// way). Only if `shallow`, though: the caller says whether little of
    /// the stack is in use under it, all of which the next fiber would
    /// lose. Otherwise the finished fiber's stack is given back by the
    /// post action, after the switch.
    ///
    /// Always inlined into its one caller, `start::finish`, in optimized
    /// builds: the compiler's own choice flips with unrelated changes
    /// (about 20 instructions a spawn+join when it is a call). Not in
    /// debug builds, whose inlined frame would leave `finish` deeper than
    /// a take-over allows.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn finish_current(&self, shallow: bool) -> Finish {
        let me = self
            .current
            .take()
            .expect("a running fiber is its worker's current");
        if self.slice_check_due() {
            self.leave_post(Post::Done(me));
            return Finish::Switch(self.yield_slice());
        }
        match self.next_ready() {
            Some((next, inherit)) if shallow && next.can_take_over(me.stack_kind()) => {
                let stashed = next.take_over_stack(&me);
                // The finished fiber's last reference may go here; nothing
                // finds it from this stack any more.
                drop(me);
                let running: *const Task = next.as_ptr();
                self.install(next, inherit);
                Finish::Here(running, stashed)
            }
            next => {
                self.leave_post(Post::Done(me));
                Finish::Switch(self.switch_to(next))
            }
        }
    }

    /// Counts a scheduling decision, and says whether this one must go
    /// through the loop: the slice is used up, it is time for the periodic
    /// look at the global queue, or the runtime is shutting down.
    #[inline]
    fn slice_check_due(&self) -> bool {
        // Relaxed: a request seen a switch late is honoured at the next.
        let used_up = self.clock().flag.load(std::sync::atomic::Ordering::Relaxed) != 0;
        used_up || self.tick() || self.registry.is_shutdown()
    }

    /// Counts a scheduling decision; says whether this one is due for the
    /// periodic look at the global queue.
    #[inline(always)]
    fn tick(&self) -> bool {
        let left = self.until_global.get() - 1;
        if left == 0 {
            self.until_global.set(GLOBAL_QUEUE_INTERVAL);
            true
        } else {
            self.until_global.set(left);
            false
        }
    }

    /// The next ready fiber on this worker (made current), or the loop.
    #[inline]
    fn next_target(&self) -> StackPointer {
        // Now and then the loop looks at the global queue first, so fibers
        // that keep waking each other cannot starve it; the fiber in the
        // LIFO slot waits at the back of the local queue meanwhile (left in
        // its slot, the loop would take it first and start it a new slice).
        if self.slice_check_due() {
            return self.yield_slice();
        }
        let next = self.next_ready();
        self.switch_to(next)
    }

    /// The next ready fiber on this worker, in the order every switch
    /// takes them: the LIFO slot (`true`: it runs on in the slice of the
    /// fiber that woke it), the local queue, the yielded slot.
    #[inline]
    fn next_ready(&self) -> Option<(TaskRef, bool)> {
        if let Some(woken) = self.lifo.take() {
            return Some((woken, true));
        }
        self.pop_local()
            .or_else(|| self.take_yielded())
            .map(|queued| (queued, false))
    }

    /// The context of `next` (made current), or, with none, the loop.
    #[inline]
    fn switch_to(&self, next: Option<(TaskRef, bool)>) -> StackPointer {
        match next {
            Some((next, inherit)) => self.adopt_with(next, inherit),
            None => self.to_loop(),
        }
    }

    /// The slice is over: the fiber in the LIFO slot goes to the back of
    /// the queue, and the loop looks at the global queue first.
    fn yield_slice(&self) -> StackPointer {
        // The yielded fiber first: it has waited longer than a fiber that
        // is requeued by the post action after this switch.
        if let Some(yielded) = self.take_yielded() {
            self.local.push(yielded);
        }
        if let Some(woken) = self.lifo.take() {
            self.local.push(woken);
        }
        self.prefer_global.set(true);
        self.to_loop()
    }

    /// The scheduler loop's context, to switch to it.
    fn to_loop(&self) -> StackPointer {
        self.clock().idle();
        self.sched_sp
            .get()
            .expect("the scheduler loop is suspended while a fiber runs")
    }

    /// The scheduler loop's choice of the next fiber.
    fn find_task(&self) -> Option<TaskRef> {
        let periodic = self.tick();
        if periodic {
            // A busy worker never searches: offers of help get their turn
            // here, as the global queue does, or a graph whose nodes wait
            // for each other without parking would wait for an idle worker
            // that never comes.
            self.take_offer();
        }
        if self.prefer_global.take() || periodic {
            if let Some(task) = self.steal_global() {
                return Some(task);
            }
        }
        self.lifo
            .take()
            .or_else(|| self.local.pop())
            .or_else(|| self.take_yielded())
            .or_else(|| self.steal_global())
            .or_else(|| self.registry.steal_for(self))
    }

    /// Before sleeping, keeps looking for work for a short while, counted
    /// as searching: producers do not wake sleepers while someone searches,
    /// which saves a futex wake-up per spawn or wake-up in bursts of work.
    ///
    /// It also takes offers of help from graph runs (see `offers`), and
    /// keeps searching while there are any, so that it never stops over
    /// one it has seen: an offer is either withdrawn, or still there at
    /// its next look and taken.
    fn search(&self) -> Option<TaskRef> {
        let _searching = self.registry.start_searching()?;
        let mut round = 0;
        while round < SEARCH_ROUNDS || self.registry.offers.any() {
            round += 1;
            if let Some(task) = self.find_task() {
                return Some(task);
            }
            if self.take_offer() {
                continue; // the next round finds its fiber queued
            }
            if self.registry.is_shutdown() {
                return None;
            }
            // Sockets' events that came meanwhile: their fibers are found
            // by the next round (counted as searching, this signals no
            // sleeper), where they would wait for the end of the search
            // and the sleep's wait otherwise.
            if let Some(reactor) = crate::net::reactor::in_use() {
                if reactor.harvest(0) > 0 {
                    continue;
                }
            }
            if round % 8 == 7 {
                std::thread::yield_now();
            } else {
                for _ in 0..64 {
                    std::hint::spin_loop();
                }
            }
        }
        None
    }

    /// Takes an offer of help seen on an earlier look, if any, and queues
    /// a fiber for it on the global queue. If no stack can be had, the
    /// helper is dropped, which its run takes as "no help".
    fn take_offer(&self) -> bool {
        let Some(helper) = self.registry.offers.take_seen(&self.offers_seen) else {
            return false;
        };
        let _ = self.registry.spawn(None, None, move || {
            let _locals = crate::local::DropAtExit;
            helper.run_on_own_fiber()
        });
        true
    }

    /// Pops the local queue, looking first whether it is empty, which is
    /// inlined and cheap (the pop is a call and, in a FIFO queue, a locked
    /// instruction): a switch between two fibers often finds it empty.
    #[inline]
    fn pop_local(&self) -> Option<TaskRef> {
        if self.local.is_empty() {
            None
        } else {
            self.local.pop()
        }
    }

    fn steal_global(&self) -> Option<TaskRef> {
        loop {
            match self.registry.injector.steal_batch_and_pop(&self.local) {
                Steal::Success(task) => return Some(task),
                Steal::Empty => return None,
                Steal::Retry => continue,
            }
        }
    }

    /// Queues a fiber woken by a fiber of this worker: it goes to the LIFO
    /// slot, and the fiber that was there to the local queue.
    pub(crate) fn push_woken(&self, task: TaskRef) {
        // Only a displaced fiber is work another worker could take: the
        // LIFO slot runs here, next.
        if let Some(previous) = self.lifo.replace(Some(task)) {
            self.local.push(previous);
            self.registry.notify_work();
        }
    }

    /// Queues a fiber woken by a fiber of this worker that has finished:
    /// the fiber joining it. With nothing else queued here it takes the
    /// LIFO slot, to run next like any woken fiber. Otherwise it goes to
    /// the back of the local queue: a fiber that spawned many and joins
    /// them in turn then finds them all finished when it runs, instead of
    /// being switched to, and parking again, after each one.
    pub(crate) fn push_joiner(&self, task: TaskRef) {
        if self.local.is_empty() && !self.lifo_occupied() {
            self.lifo.set(Some(task));
        } else {
            self.local.push(task);
            self.registry.notify_work();
        }
    }

    /// Adds a fiber spawned on this worker to the live list. Like every
    /// method that touches the worker's cells, called only on the thread
    /// running this worker, while it holds it (`thread::enter`).
    /// Gives the task back if the list is closed: the shutdown's own
    /// worker adds to the shared part, which the shutdown closes.
    #[inline]
    pub(crate) fn add_live(&self, task: TaskRef) -> Result<(), TaskRef> {
        // The slots live in the registry, which `self.registry` keeps
        // alive as long as this worker. Only the thread running this worker
        // adds to them (see above and the `Sync` impl), and the shutdown
        // clears them only after every worker thread has stopped.
        match self.live {
            Some(slots) => {
                // SAFETY: see above.
                unsafe { (*slots).add(task) };
                Ok(())
            }
            None => self.registry.add_live(task, || ()),
        }
    }

    /// Queues a new fiber spawned on this worker.
    pub(crate) fn push_new(&self, task: TaskRef) {
        // Only a push onto an empty queue tells idle workers (see
        // sleep/README.md, "Bursts"): the notice costs a full fence and a
        // read of a line that searching workers write, on every spawn of
        // a burst otherwise. On a runtime of one worker there is nobody to
        // wake: the one worker is this one, awake.
        let was_empty = self.local.is_empty();
        self.local.push(task);
        if was_empty && self.registry.config.workers > 1 {
            self.registry.notify_work();
        }
    }

    /// The local queue, for a thief's batch to land in (on the thread
    /// running this worker).
    pub(crate) fn local_queue(&self) -> &LocalQueue<TaskRef> {
        &self.local
    }

    /// Whether this worker has fibers queued locally.
    pub(crate) fn has_local_work(&self) -> bool {
        !self.local.is_empty()
            || self.lifo_occupied()
            || self.yielded_slot().is_some_and(YieldedSlot::is_occupied)
    }

    fn lifo_occupied(&self) -> bool {
        let t = self.lifo.take();
        let occupied = t.is_some();
        self.lifo.set(t);
        occupied
    }
}

/// The running fiber `task` switches away as `how` asks: through its
/// worker, or, if the backstop detached it, through its thread's old loop
/// frame. Returns when the fiber is resumed, on whatever worker.
pub(crate) fn switch_current(task: &Task, how: Switch) {
    // Both before the thread counts as in runtime code: an unwind raised
    // here starts in the fiber's code, as any panic of its own would.
    note_unwinding(task);
    unwind_if_cancelled(task);
    let entered = thread::enter();
    if entered.detached() {
        // SAFETY: `task` is the running fiber, detached on this thread.
        unsafe { thread::switch_detached(task, how) };
        after_resume(task);
    } else {
        // SAFETY: `task` is the running task, on its own fiber, and this
        // thread owns its worker (it is not detached).
        unsafe { task.worker() }.switch_away(task, how);
    }
    drop(entered);
}

/// First thing a fiber does when resumed: finish what was left for us.
/// Always inlined: it is half of every switch's bookkeeping.
#[inline(always)]
fn after_resume(task: &Task) {
    // SAFETY: the worker that resumed us set `task.worker`.
    let worker = unsafe { task.worker() };
    worker.run_post();
    unwind_if_cancelled(task);
}

/// A cancelled fiber unwinds at its first switch point after the
/// cancellation. While that unwind is on its way its destructors run, and
/// its switches are real ones: a destructor may wait for something that
/// another cancelled fiber's unwinding releases, and the shutdown resumes
/// the fiber once it is woken (see `runtime/shutdown.rs`). A fiber that
/// catches the unwind is cancelled again at its next switch point. One
/// that switched away while unwinding from a panic of its own finishes
/// that unwinding first.
///
/// The fiber's own flags say whether an unwind is on its way, not
/// `std::thread::panicking()` now: on the shutdown's thread that counts
/// the unwinds of every cancelled fiber parked in a destructor, so it
/// could keep a cancelled fiber from ever unwinding.
#[inline(always)]
fn unwind_if_cancelled(task: &Task) {
    if task.is_cancelled() {
        raise_cancel(task);
    }
}

/// A switch point without the switch: raises the calling fiber's
/// cancellation here if one was asked for (and may be raised: see
/// `raise_cancel`). Does nothing on a plain thread.
pub(crate) fn cancellation_point() {
    if let Some(task) = Task::current() {
        unwind_if_cancelled(task);
    }
}

#[cold]
#[inline(never)]
fn raise_cancel(task: &Task) {
    // The payload's drop says the cancellation's unwind is over. A fiber
    // that caught the payload and keeps it leaves the flag set; on the
    // shutdown's thread, where every one of its cancellations is raised,
    // no unwind counted there says none is on its way any more, and the
    // fiber is cancelled again. A worker thread's count cannot say so (a
    // fiber that finished its unwinding on another thread than it began
    // on leaves both counts off), and raising a cancellation inside that
    // unwind would abort: there, a fiber that keeps the payload is not
    // cancelled again while it does.
    // A fiber that holds its cancellation (a scope waiting for its
    // fibers, see `super::CancelHold`) is not cancelled again meanwhile.
    // Relaxed: see `Task::cancel_raised`.
    let raised = task
        .cancel_raised
        .load(std::sync::atomic::Ordering::Relaxed);
    if raised != 0
        && raised & super::CANCEL_HELD == 0
        && thread::state().cancelling.get()
        && !std::thread::panicking()
    {
        task.cancel_raised
            .store(0, std::sync::atomic::Ordering::Relaxed);
    }
    if may_raise_cancel(task) {
        cancel_now(task);
    }
}

/// Raises the cancellation of `task`, the running fiber, here.
pub(crate) fn cancel_now(task: &Task) -> ! {
    std::panic::resume_unwind(Box::new(super::Cancelled::raise(task.arc())))
}

/// Whether a cancellation may be raised in `task` now: none is on its
/// way, and the fiber did not switch away in the middle of an unwind.
fn may_raise_cancel(task: &Task) -> bool {
    // Relaxed: see `Task::cancel_raised`.
    task.cancel_raised
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
        && task.unwound_on.get().is_null()
}

/// Whether a cancellation's unwind is on its way in `task` (the runtime's
/// own mark, exact). Not `unwound_on`, which is a guess from the thread's
/// count of unwinds and also marks a fiber that merely switched on a
/// thread where another fiber parked in its unwinding.
pub(crate) fn in_cancel_unwind(task: &Task) -> bool {
    // Relaxed: see `Task::cancel_raised`.
    let raised = task
        .cancel_raised
        .load(std::sync::atomic::Ordering::Relaxed);
    raised & !super::CANCEL_HELD != 0
}

/// Notes, as `task` switches away, whether it does so in the middle of an
/// unwind (see `Task::unwound_on`). The standard library counts unwinds
/// per thread, so this is a guess: a fiber that parked in its own
/// unwinding leaves its thread's count raised while others run there, and
/// the count of the thread it finishes on is not raised at all. So the
/// mark is kept on any other thread, and cleared only by a switch, with no
/// unwind counted, on the thread that set it. In the hot path, one load
/// of the process's panic count and one of the mark.
#[inline(always)]
fn note_unwinding(task: &Task) {
    if std::thread::panicking() || !task.unwound_on.get().is_null() {
        note_unwinding_slow(task);
    }
}

#[cold]
#[inline(never)]
fn note_unwinding_slow(task: &Task) {
    let state = thread::state();
    if state.cancelling.get() {
        // The shutdown's thread: the unwinds counted there are the
        // cancellations it raised, which `Task::cancel_raised` follows
        // fiber by fiber. Marking by the count would take every fiber that
        // switches while another is parked in its cancellation for one
        // that unwinds, and never cancel it again. (A fiber that panics of
        // its own during the shutdown and parks in that unwinding is not
        // told apart from one that does not: rare enough to leave.)
        return;
    }
    let here: *const thread::ThreadState = state;
    let marked = task.unwound_on.get();
    if std::thread::panicking() {
        if marked.is_null() {
            task.unwound_on.set(here);
        }
    } else if marked == here {
        task.unwound_on.set(std::ptr::null());
    }
}

/// The loop frame of a thread whose worker the backstop gave away, resumed
/// by the fiber it had detached: queue that fiber through the registry and
/// stop running the loop.
fn orphaned(registry: &Arc<Registry>) {
    let (task, how) = thread::take_orphan();
    thread::unbind();
    // The switch is settled first, so that a shutdown that sees the fiber
    // back (below) never finds it half parked.
    let runnable = match how {
        Some(Switch::Yield | Switch::Preempt) => true,
        Some(Switch::Park) => !task.complete_park(),
        None => false,
    };
    // Back in the runtime: a shutdown deals with it as with any fiber.
    // Release, both: what the fiber did before is visible to a shutdown
    // that sees them (Acquire).
    task.detached
        .store(false, std::sync::atomic::Ordering::Release);
    registry
        .detached_threads
        .fetch_sub(1, std::sync::atomic::Ordering::Release);
    if how.is_none() {
        return task.release_stack();
    }
    if registry.is_shutdown() {
        if registry.shutdown_wait.came_back() {
            // After the shutdown's pass: nobody else would ever run it.
            return crate::runtime::finish_late(registry, task);
        }
        // The pass takes it at its next round, which this brings on (it
        // may be waiting for a wake-up, and this fiber's may have come
        // while the pass still took it for out of reach).
        return registry.shutdown_wait.woken();
    }
    if runnable {
        registry.schedule(task);
    }
}
