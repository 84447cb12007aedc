//! Shutting a runtime down: stop the workers, then cancel every fiber that
//! has not finished, on the dropping thread, newest first; destructors
//! of cancelled fibers may wait for each other.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_deque::{Steal, Worker as LocalQueue};

use crate::sched::registry::Registry;
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
    for t in threads.into_iter().rev() {
        // A worker thread never panics out of its loop; if it did, the
        // panic was already reported and there is nothing left to do.
        let _ = t.join();
    }
    registry.join_extra_threads();
    while !matches!(registry.injector.steal(), Steal::Empty) {}
    registry.drain_yielded();
    cancel_all(registry);
    registry.timer.stop();
    if let Some(timer) = timer {
        let _ = timer.join();
    }
    drop(registry.offers.clear());
    registry.clear_live();
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
/// Without progress (no fiber woken, none finished) for the runtime's
/// shutdown timeout, the shutdown gives up: every fiber left is resumed
/// once more, now with timed waits and sleeps ending at once, and those
/// still waiting after that are abandoned (see [`Task::abandon`]), each
/// reported on standard error.
fn cancel_all(registry: &Arc<Registry>) {
    let worker = Worker::new(usize::MAX, registry.clone(), LocalQueue::new_fifo());
    let wait = &registry.shutdown_wait;
    wait.set_thread(Some(thread::current()));
    let mut patience = Patience::new(registry.config.shutdown_timeout);
    let mut resume_all = false;
    loop {
        let live = registry.live_tasks();
        if live.is_empty() {
            break;
        }
        let mut ran = false;
        for task in &live {
            if task.waits_while_cancelled() && !resume_all {
                continue;
            }
            // Relaxed: this thread is the only one running fibers now.
            task.cancelled
                .store(true, std::sync::atomic::Ordering::Relaxed);
            task.resume_for_shutdown();
            worker.run_until_switch(task.clone());
            ran = true;
        }
        worker.drop_queued();
        resume_all = false;
        let finished_or_woken = (registry.live_count(), wait.wakes());
        match patience.check(finished_or_woken) {
            Check::Moving => {}
            Check::Waiting(left) => {
                if !ran {
                    thread::park_timeout(left);
                }
            }
            Check::OutOfPatience if !wait.gave_up() => {
                wait.give_up();
                resume_all = true;
            }
            Check::OutOfPatience => {
                abandon(registry, registry.live_tasks());
                break;
            }
        }
    }
    wait.set_thread(None);
}

/// Reports and abandons the fibers still waiting when the shutdown gives up.
fn abandon(registry: &Registry, live: Vec<TaskRef>) {
    for task in live {
        let name = match &task.name {
            Some(name) => name.to_string(),
            None => format!("fiber-{}", task.id),
        };
        let parked_on = match task.parked_on.get() {
            "" => "a yield".to_owned(),
            reason => reason.to_owned(),
        };
        eprintln!(
            "fiber '{name}' was cancelled by its runtime's shutdown, but a destructor in it still waits ({parked_on}) after {:?} with no fiber woken or finished: it is left unfinished, its stack not reclaimed",
            registry.config.shutdown_timeout
        );
        task.abandon();
    }
}

/// The shutdown's clock: how long nothing has moved.
struct Patience {
    timeout: Duration,
    /// The live count and wake-up count last seen, and since when.
    last: Option<((usize, u64), Instant)>,
}

enum Check {
    /// A fiber finished or was woken since the last check.
    Moving,
    /// Nothing moved; this much patience is left.
    Waiting(Duration),
    OutOfPatience,
}

impl Patience {
    fn new(timeout: Duration) -> Self {
        Patience {
            timeout,
            last: None,
        }
    }

    /// `seen`: the live count and the wake-up count now.
    fn check(&mut self, seen: (usize, u64)) -> Check {
        match self.last {
            Some((last, since)) if last == seen => {
                match self.timeout.checked_sub(since.elapsed()) {
                    Some(left) if !left.is_zero() => Check::Waiting(left),
                    _ => Check::OutOfPatience,
                }
            }
            _ => {
                self.last = Some((seen, Instant::now()));
                Check::Moving
            }
        }
    }
}
