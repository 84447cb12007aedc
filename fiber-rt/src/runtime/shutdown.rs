//! Shutting a runtime down: stop the workers, then cancel every fiber that
//! has not finished, newest first, on a thread started for it; destructors
//! of cancelled fibers may wait for each other.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_deque::{Steal, Worker as LocalQueue};

use crate::sched::registry::{HookTime, Registry, ThreadHook};
use crate::sched::task::Task;
use crate::sched::task_ref::TaskRef;
use crate::sched::worker::Worker;

pub(crate) fn shutdown(registry: &Arc<Registry>, threads: Vec<thread::JoinHandle<()>>) {
    registry.begin_shutdown();
    if let Some(task) = Task::current() {
        if Arc::ptr_eq(&task.registry, registry) {
            // Dropped by one of its own fibers, whose worker cannot be
            // joined from here: finish on a thread of its own.
            let registry = registry.clone();
            thread::spawn(move || finish(&registry, threads));
            return;
        }
    }
    if Task::current().is_some() || crate::sched::thread::bound() {
        // Dropped by a fiber, or on a worker thread, of another runtime:
        // cancelling our fibers here would mix their switches with that
        // runtime's per-thread state. Finish on a thread of its own.
        let registry = registry.clone();
        let _ = thread::spawn(move || finish(&registry, threads)).join();
        return;
    }
    finish(registry, threads);
}

/// `threads`: the workers', then the monitor's, then the timer's, as the
/// builder starts them (a prefix of that list if a start failed).
fn finish(registry: &Arc<Registry>, mut threads: Vec<thread::JoinHandle<()>>) {
    // The timer keeps running until every fiber is done: a cancelled
    // fiber's destructor may sleep or wait with a timeout.
    let timer = if threads.len() == registry.config.workers + 2 {
        threads.pop()
    } else {
        None
    };
    // The monitor first: it signals worker threads, which must not be
    // joined before it has stopped.
    registry.monitor.stop();
    if threads.len() > registry.config.workers {
        if let Some(monitor) = threads.pop() {
            let _ = monitor.join();
        }
    }
    ask_workers_to_stop(registry, &threads);
    for t in threads.into_iter().rev() {
        // A thread still running is one the backstop took its worker
        // from, with a fiber that never came back (see
        // `ask_workers_to_stop`): let go of, not waited for.
        if t.is_finished() {
            // A worker thread never panics out of its loop; if it did, the
            // panic was already reported and there is nothing left to do.
            let _ = t.join();
        }
    }
    registry.join_extra_threads();
    // No worker runs any more: from now on a spawn is refused (its handle
    // says the shutdown cancelled it) rather than queued for nobody, and
    // every fiber spawned before is in the live list.
    registry.close_live();
    while !matches!(registry.injector.steal(), Steal::Empty) {}
    registry.drain_yielded();
    cancel_on_a_thread_of_its_own(registry);
    registry.timer.stop();
    if let Some(timer) = timer {
        let _ = timer.join();
    }
    drop(registry.offers.clear());
    registry.clear_live();
}

/// Waits for the workers to leave their loops, which each does at
/// its running fiber's next switch point. A fiber that spins in code with
/// probes reaches one only when asked to yield, as the monitor asked it
/// each slice while the runtime ran; with the monitor stopped, this asks
/// in its place until every worker thread has ended. The flags it sets
/// belong to threads not joined yet (workers, and threads the backstop
/// started, which are joined after), whose static TLS blocks are mapped.
/// Code without probes that never switches keeps its worker, and the
/// drop, for as long as it runs, unless the backstop takes the worker from
/// it (the default): such a thread runs a detached fiber, out of the
/// runtime's reach (in a blocking call, say, or a loop without probes), and
/// once the shutdown time-out has passed with only such threads left, the
/// drop lets go of them instead of waiting; [`cancel_all`] reports their
/// fibers. Once the time-out has passed, this asks the backstop itself for
/// workers still held (the monitor, stopped, no longer does).
fn ask_workers_to_stop(registry: &Registry, workers: &[thread::JoinHandle<()>]) {
    let start = Instant::now();
    // Most workers are on their way out already: look again soon, then
    // less and less often, up to every half slice.
    let mut pause = Duration::from_micros(20);
    // Per worker: the switch count it was last seen running at, and since
    // when (see below).
    let mut held: Vec<Option<(u64, Instant)>> = vec![None; registry.clocks.len()];
    loop {
        // A worker the backstop moved runs on a thread of the backstop's.
        let running =
            workers.iter().filter(|t| !t.is_finished()).count() + registry.extra_threads_running();
        if running == 0 {
            return;
        }
        // Acquire: pairs with `orphaned`'s Release (a fiber back in the
        // runtime is no longer counted).
        let detached = registry.detached_threads.load(Ordering::Acquire);
        let timed_out = start.elapsed() >= registry.shutdown_timeout();
        if running <= detached && timed_out {
            return;
        }
        registry.clocks.iter().for_each(crate::preempt::request);
        if timed_out && registry.config.backstop {
            // A worker whose fiber is in a blocking call (or a loop with no
            // probes) that began after the monitor's last look: the monitor
            // is stopped, so the backstop's signal comes from here, and the
            // fiber goes on detached while the drop returns. Before, the
            // drop waited for the call to return, however long it took.
            // As the monitor does, only a slice after the request to yield
            // (above) with no switch since: a fiber with probes yields to
            // that request, and is cancelled in the runtime's reach.
            for (clock, seen) in registry.clocks.iter().zip(&mut held) {
                // Relaxed: samples, as the monitor's; a fiber that switched
                // meanwhile ignores the signal, and is asked again.
                if !clock.running.load(Ordering::Relaxed) {
                    *seen = None;
                    continue;
                }
                let switches = clock.switches.load(Ordering::Relaxed);
                match *seen {
                    Some((held_at, since)) if held_at == switches => {
                        if since.elapsed() >= registry.config.time_slice {
                            crate::preempt::ask_to_detach(clock, switches);
                        }
                    }
                    _ => *seen = Some((switches, Instant::now())),
                }
            }
        }
        thread::sleep(pause);
        pause = (pause * 2).min(registry.config.time_slice / 2);
    }
}

/// Runs [`cancel_all`] on a thread started for it, or here if none can be
/// had. The standard library counts unwinds per thread, and a cancelled
/// fiber that parks in its unwinding leaves that count raised while the
/// others are cancelled (and for good if it is abandoned): on a thread of
/// its own, the count of the thread that drops the runtime (often `main`)
/// is never touched, and `std::thread::panicking()` stays true to it.
fn cancel_on_a_thread_of_its_own(registry: &Arc<Registry>) {
    let name = format!("{}-shutdown", registry.config.thread_name);
    let own = registry.clone();
    match thread::Builder::new().name(name).spawn(move || {
        // Fibers run here too (their destructors): the thread gets what
        // the worker threads got for them.
        let config = &own.config;
        ThreadHook::run(&own, config.on_thread_start.as_ref(), HookTime::Start);
        cancel_all(&own);
        ThreadHook::run(&own, config.on_thread_stop.as_ref(), HookTime::Stop);
    }) {
        Ok(thread) => {
            // The cancellations catch every panic but a fiber's own
            // completion handler's, which aborts.
            let _ = thread.join();
        }
        Err(_) => cancel_all(registry),
    }
}

/// Unwinds every live fiber, on this thread, newest first: a fiber waiting
/// for fibers it spawned (a scope) finds them finished when its turn comes.
///
/// A fiber's destructors may wait during its unwinding (for a lock another
/// fiber holds, a message, a join, a sleep). It then parks like any fiber,
/// and the next one is cancelled, whose unwinding may release what the
/// first waits for; a wake-up during the shutdown queues nothing but
/// unparks this thread, and the next round resumes the woken fiber. With
/// every fiber left waiting, this thread parks until one is woken (by
/// another thread, or by the timer).
///
/// Once no fiber has finished for the runtime's shutdown timeout, the
/// fibers left are abandoned (see [`give_up`]), each reported on
/// standard error: whatever they wait for, a wake-up that never comes or a
/// loop that never ends, the drop returns.
fn cancel_all(registry: &Arc<Registry>) {
    crate::sched::thread::set_cancelling(true);
    let watchdog = Watchdog::start(registry.config.time_slice);
    let worker = Worker::new(usize::MAX, registry.clone(), LocalQueue::new_fifo());
    // Runs a turn of `task`. One the watchdog cut short goes on with the
    // same fiber until `until`, not with the next: the fiber may hold a
    // lock (a `std` one, which parks nothing) that the next one's
    // destructors wait for on this very thread.
    let run = |task: &TaskRef, until: Instant| {
        while watchdog.watch(|| worker.run_until_switch(task.clone())) {
            worker.drop_queued();
            if !task.is_live() || task.is_parked() || Instant::now() >= until {
                break;
            }
            task.resume_for_shutdown();
        }
    };
    registry.shutdown_wait.add_thread();
    let timeout = registry.shutdown_timeout();
    // The live and finished counts, and since when they have been those.
    let mut last_finish: Option<((usize, u64), Instant)> = None;
    // Fibers running detached on threads the drop let go of: out of reach,
    // so left alone (their tasks, which they hold, stay alive with them).
    let mut left_running = Vec::new();
    loop {
        let mut live = registry.live_tasks();
        live.retain(|task| {
            // Acquire: pairs with `orphaned`'s Release.
            let detached = task.detached.load(Ordering::Acquire);
            if detached
                && !left_running
                    .iter()
                    .any(|t: &TaskRef| t.as_ptr() == task.as_ptr())
            {
                report_left_running(registry, task);
                left_running.push(task.clone());
            }
            !detached
        });
        if live.is_empty() {
            // A fiber left running that came back into the runtime
            // meanwhile is live again: the next round takes it.
            if end_pass(registry, &left_running, &worker).is_empty() {
                break;
            }
            continue;
        }
        // Patience runs from the last change: a fiber finished, or one
        // came back into the runtime (the live count alone may stay the
        // same over both), or one was never cancelled yet (it gets its
        // turns before anything is given up).
        let counts = (live.len(), registry.live_counts().finished);
        let fresh = live.iter().any(|task| !task.cancelled_by_shutdown());
        let since = match last_finish {
            Some((seen, since)) if seen == counts && !fresh => since,
            _ => Instant::now(),
        };
        last_finish = Some((counts, since));
        let left = timeout
            .checked_sub(since.elapsed())
            .filter(|d| !d.is_zero());
        // Even with no time left (a zero time-out), every fiber is
        // cancelled and given a turn before any is given up on.
        let Some(left) = left.or(fresh.then_some(Duration::ZERO)) else {
            give_up(registry, &worker, run, live);
            // A fiber left running that came back meanwhile is live
            // again: the next rounds take it, with the others that come
            // back, as any (one may wait for another).
            if end_pass(registry, &left_running, &worker).is_empty() {
                break;
            }
            last_finish = None;
            continue;
        };
        let mut ran = false;
        for task in &live {
            if task.waits_while_cancelled() {
                continue;
            }
            task.cancel_for_shutdown();
            task.resume_for_shutdown();
            run(task, crate::sync::waiter::deadline_from(since, timeout));
            ran = true;
        }
        worker.drop_queued();
        if !ran {
            // Every fiber left waits: until one is woken, or the time is up.
            match crate::net::reactor::in_use() {
                // Some may wait on a socket, whose events no worker takes
                // any more: take them here, a short wait at a time, so
                // that a wake-up by another fiber is not kept waiting.
                Some(reactor) => {
                    let ms = left.as_millis().clamp(1, SOCKET_WAIT_MS as u128);
                    reactor.harvest(ms as libc::c_int);
                }
                None => thread::park_timeout(left),
            }
        }
    }
    registry.shutdown_wait.remove_thread();
    crate::sched::thread::set_cancelling(false);
}

/// Ends the shutdown's pass over the live fibers, unless some of those
/// `left_running` (detached, out of its reach) came back into the runtime
/// meanwhile: those are returned, still to be cancelled. From the pass's
/// end on, a fiber that comes back is cancelled by the thread it comes
/// back on ([`finish_late`]).
fn end_pass(registry: &Registry, left_running: &[TaskRef], worker: &Worker) -> Vec<TaskRef> {
    worker.drop_queued();
    let mut back = Vec::new();
    registry.shutdown_wait.end_pass(|| {
        // Acquire: pairs with `orphaned`'s Release, made before it looks
        // whether the pass is over, under the lock this runs under.
        back = left_running
            .iter()
            .filter(|task| !task.detached.load(Ordering::Acquire) && task.is_live())
            .cloned()
            .collect();
        !back.is_empty()
    });
    back
}

/// For a fiber that ran detached, out of the shutdown's reach, and came
/// back into the runtime (it switched: its blocking call returned) after
/// the shutdown's pass had ended: nobody else will ever run it, so its
/// cancellation runs here, on the thread it came back on, as the pass
/// would have run it: its destructors run, and its join reports the
/// cancellation.
pub(crate) fn finish_late(registry: &Arc<Registry>, task: TaskRef) {
    crate::sched::thread::set_cancelling(true);
    registry.shutdown_wait.add_thread();
    let worker = Worker::new(usize::MAX, registry.clone(), LocalQueue::new_fifo());
    finish_here(registry, &worker, task);
    registry.shutdown_wait.remove_thread();
    crate::sched::thread::set_cancelling(false);
}

/// Cancels `task` and runs it on `worker`, this thread's, until it has
/// unwound; while it waits in its unwinding, parks until it is woken,
/// and gives it up (reported) once the shutdown time-out has passed
/// without a wake-up.
fn finish_here(registry: &Registry, worker: &Worker, task: TaskRef) {
    let timeout = registry.shutdown_timeout();
    loop {
        task.cancel_for_shutdown();
        task.resume_for_shutdown();
        worker.run_until_switch(task.clone());
        worker.drop_queued();
        let since = Instant::now();
        while task.is_live() && task.waits_while_cancelled() {
            match timeout
                .checked_sub(since.elapsed())
                .filter(|d| !d.is_zero())
            {
                Some(left) => thread::park_timeout(left),
                None if task.abandon_if_parked() => {
                    report(registry, &task, "waits");
                    return;
                }
                None => break,
            }
        }
        if !task.is_live() {
            return;
        }
    }
}

/// The longest the shutdown's thread waits for sockets at once, while
/// fibers still to be cancelled wait on them (or on anything else).
const SOCKET_WAIT_MS: u64 = 2;

/// Turns the shutdown gives the fibers still live before it abandons
/// those that keep running (or keep being woken).
const LAST_TURNS: usize = 3;

/// Abandons the fibers left when the shutdown's patience ran out, each
/// reported on standard error. One that waits in a park nobody woke is
/// abandoned in a single step no waker can race ([`Task::abandon_if_parked`]):
/// a wake-up that comes later finds it abandoned and is handed on (a lock,
/// a notification, a free slot goes to the next waiter), so nothing another
/// party waits for is lost with it. One woken just before, or that keeps
/// running, gets another turn, up to [`LAST_TURNS`], and is then abandoned
/// whatever it does.
fn give_up(
    registry: &Registry,
    worker: &Worker,
    run: impl Fn(&TaskRef, Instant),
    mut left: Vec<TaskRef>,
) {
    for turn in 0..=LAST_TURNS {
        left.retain(|task| {
            let reason = *task.parked_on.get();
            if task.abandon_if_parked() {
                let doing = match reason {
                    "" => "waits".to_owned(),
                    reason => format!("waits ({reason})"),
                };
                report(registry, task, &doing);
                return false;
            }
            task.is_live()
        });
        if left.is_empty() || turn == LAST_TURNS {
            break;
        }
        for task in &left {
            task.resume_for_shutdown();
            // One turn each, of a slice at most.
            run(task, Instant::now());
        }
        worker.drop_queued();
        left.retain(|task| task.is_live());
    }
    for task in left {
        report(
            registry,
            &task,
            "keeps running (it yields, or is woken again)",
        );
        task.abandon();
    }
}

/// The fiber's name for a report: its own, else `fiber-<id>`.
fn name_of(task: &Task) -> String {
    match &task.name {
        Some(name) => name.to_string(),
        None => format!("fiber-{}", task.id),
    }
}

/// Says on standard error that `task` is abandoned, and what it was doing.
fn report(registry: &Registry, task: &Task, doing: &str) {
    let name = name_of(task);
    eprintln!(
        "fiber '{name}' was cancelled by its runtime's shutdown, but its unwinding still {doing} after {:?} in which no fiber finished: it is left unfinished, its stack not reclaimed",
        registry.shutdown_timeout()
    );
}

/// Says on standard error that `task` runs detached and is left running.
fn report_left_running(registry: &Registry, task: &Task) {
    let name = name_of(task);
    eprintln!(
        "fiber '{name}' still runs on a thread of its own after its runtime's shutdown time-out ({:?}), out of the runtime's reach (in a blocking call, or a loop without probes): the runtime's drop leaves it running and returns",
        registry.shutdown_timeout()
    );
}

/// Asks the fiber the shutdown runs to yield, at its next probe, once it
/// has run a whole slice in one turn: a cancelled fiber's destructors may
/// loop in code with probes, and the shutdown's patience runs out only
/// between turns. The thread that runs the fibers starts it and stops it
/// (joining it), so the flag it sets belongs to a live thread.
struct Watchdog {
    shared: Arc<Watched>,
    thread: Option<thread::JoinHandle<()>>,
}

struct Watched {
    /// Turns begun plus turns ended: odd while a turn runs.
    turns: AtomicU64,
    /// The last value of `turns` during which the watchdog asked.
    asked: AtomicU64,
    stop: Mutex<bool>,
    stopped: Condvar,
}

impl Watchdog {
    /// Watches the calling thread's turns. Without a thread for it, turns
    /// are not watched: only a fiber that loops for good then keeps the
    /// shutdown, as it did the runtime's workers.
    fn start(slice: Duration) -> Self {
        let shared = Arc::new(Watched {
            turns: AtomicU64::new(0),
            asked: AtomicU64::new(0),
            stop: Mutex::new(false),
            stopped: Condvar::new(),
        });
        let flag = crate::preempt::ThreadFlag::current();
        let watched = shared.clone();
        let thread = thread::Builder::new()
            .name("fiber-shutdown-watchdog".into())
            .spawn(move || {
                let mut seen = 0;
                let mut stop = watched.stop.lock().unwrap_or_else(PoisonError::into_inner);
                while !*stop {
                    stop = watched
                        .stopped
                        .wait_timeout(stop, slice)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                    // Relaxed: a request seen a turn late is harmless (the
                    // next turn's slice clears it), and one seen late is
                    // made again a slice later.
                    let turns = watched.turns.load(Ordering::Relaxed);
                    if turns % 2 == 1 && turns == seen && !*stop {
                        // Release: pairs with `watch`'s Acquire. The probe
                        // reads the flag set below with a plain load, so a
                        // turn may end on this request before `asked` is
                        // seen (not on x86, where stores are seen in
                        // order): it then counts as an ordinary switch.
                        watched.asked.store(turns, Ordering::Release);
                        // SAFETY: the watched thread joins this one before
                        // it ends (`Drop`).
                        unsafe { flag.request() };
                    }
                    seen = turns;
                }
            })
            .ok();
        Watchdog { shared, thread }
    }

    /// Runs one turn, watched; says whether the watchdog asked the fiber
    /// to yield during it.
    fn watch(&self, turn: impl FnOnce()) -> bool {
        /// Ends the turn, also on an unwind.
        struct End<'a>(&'a AtomicU64);
        impl Drop for End<'_> {
            fn drop(&mut self) {
                // Relaxed: see the watchdog's loop.
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Relaxed: see the watchdog's loop.
        let this = self.shared.turns.fetch_add(1, Ordering::Relaxed) + 1;
        let end = End(&self.shared.turns);
        turn();
        drop(end);
        // Acquire: pairs with the watchdog's Release.
        self.shared.asked.load(Ordering::Acquire) == this
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        *self
            .shared
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        self.shared.stopped.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
