//! Shutting a runtime down: stop the workers, then cancel every fiber that
//! has not finished, on the dropping thread, newest first.

use std::sync::Arc;
use std::thread;

use crossbeam_deque::{Steal, Worker as LocalQueue};

use crate::sched::registry::Registry;
use crate::sched::task::Task;
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

fn finish(registry: &Arc<Registry>, threads: Vec<thread::JoinHandle<()>>) {
    registry.timer.stop();
    registry.monitor.stop();
    // The monitor and timer (started last) first: the monitor signals
    // worker threads, which must not be joined before it has stopped.
    for t in threads.into_iter().rev() {
        // A worker thread never panics out of its loop; if it did, the
        // panic was already reported and there is nothing left to do.
        let _ = t.join();
    }
    registry.join_extra_threads();
    while !matches!(registry.injector.steal(), Steal::Empty) {}
    registry.drain_yielded();
    cancel_all(registry);
    drop(registry.offers.clear());
    registry.clear_live();
}

/// Unwinds every live fiber. Newest first: a fiber waiting for fibers it
/// spawned (a scope) finds them finished when its turn comes.
fn cancel_all(registry: &Arc<Registry>) {
    let worker = Worker::new(usize::MAX, registry.clone(), LocalQueue::new_fifo());
    loop {
        let live = registry.live_tasks();
        if live.is_empty() {
            break;
        }
        for task in live {
            // Relaxed: this thread is the only one running fibers now.
            task.cancelled
                .store(true, std::sync::atomic::Ordering::Relaxed);
            worker.run_until_switch(task);
        }
    }
}
