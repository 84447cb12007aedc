//! The list of live fibers, for shutdown (which cancels them), dumps and
//! metrics: a part of its own for each worker (see `live_slots`), and
//! locked shards for every other thread that spawns.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::live_slots::LiveSlots;
use super::task_ref::TaskRef;

/// Fibers that have been spawned and have not finished, in shards that
/// each belong to the threads that spawn into them.
///
/// A spawn appends to its thread's shard; a fiber that finishes only clears
/// its task's `live` flag and never touches the list, so a spawn on one
/// core and a finish on another share no lock and no slot. Each shard drops
/// its finished tasks in a sweep when it has doubled since the last one, so
/// a task costs its spawning thread one look at its flag, amortized, and
/// the task's memory goes back to that thread's cache.
struct Shard {
    tasks: Vec<TaskRef>,
    /// Length after the last sweep; the next comes at twice that.
    swept_len: usize,
    /// Fibers added so far (counted under the lock: no shared atomic is
    /// written per spawn).
    added: u64,
    /// Set by the shutdown: nothing is added any more.
    closed: bool,
}

const LIVE_SHARDS: usize = 16;
/// A shard sweeps no more often than every this many spawns.
const MIN_SWEEP: usize = 64;

/// The live-list shard of the calling thread: threads take shards in turn.
/// Never inlined: it reads a thread-local, and a fiber may move threads.
#[inline(never)]
fn thread_shard() -> usize {
    thread_local! {
        static SHARD: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
    }
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    SHARD
        .try_with(|shard| {
            if shard.get() == usize::MAX {
                // Relaxed: only spreads threads over shards.
                shard.set(NEXT.fetch_add(1, Ordering::Relaxed) % LIVE_SHARDS);
            }
            shard.get()
        })
        .unwrap_or(0)
}

/// Fibers spawned, finished and live, from [`Live::counts`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) spawned: u64,
    pub(crate) finished: u64,
    pub(crate) live: u64,
}

/// Every fiber spawned on a runtime and not yet finished.
pub(crate) struct Live {
    /// For threads that are not running a worker.
    shards: [Mutex<Shard>; LIVE_SHARDS],
    /// One for each worker, for the fibers spawned on it.
    workers: Box<[LiveSlots]>,
}

impl Live {
    pub(crate) fn new(workers: usize) -> Live {
        Live {
            workers: (0..workers).map(|_| LiveSlots::new()).collect(),
            shards: std::array::from_fn(|_| {
                Mutex::new(Shard {
                    tasks: Vec::new(),
                    swept_len: 0,
                    added: 0,
                    closed: false,
                })
            }),
        }
    }

    fn lock(&self, shard: usize) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[shard].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Worker `index`'s own part of the list; none for the shutdown's
    /// temporary worker.
    pub(crate) fn worker_slots(&self, index: usize) -> Option<&LiveSlots> {
        self.workers.get(index)
    }

    /// Adds `task`, in the calling thread's shard. It leaves when it has
    /// retired ([`Task::retire`](super::task::Task::retire)) and its shard
    /// sweeps. Once the list is [closed](Self::close), gives `task` back.
    ///
    /// `queue` runs under the shard's lock once the task is added (it
    /// queues the fiber), so that a [`close`](Self::close) that returned
    /// saw it done: whatever the shutdown drains afterwards holds the
    /// fiber, and no reference to it is left behind in a queue.
    pub(crate) fn add(&self, task: TaskRef, queue: impl FnOnce()) -> Result<(), TaskRef> {
        let mut shard = self.lock(thread_shard());
        if shard.closed {
            return Err(task);
        }
        if shard.tasks.len() >= (2 * shard.swept_len).max(MIN_SWEEP) {
            // In place, no allocation. Dropping the last reference to a
            // task here is safe under the lock: freeing a task never comes
            // back to the live list.
            shard.tasks.retain(|t| t.is_live());
            shard.swept_len = shard.tasks.len();
        }
        shard.tasks.push(task);
        shard.added += 1;
        queue();
        Ok(())
    }

    /// Refuses every later [`add`](Self::add). For the shutdown, once no
    /// worker runs (the workers' own parts are not closed): what was added
    /// before, it finds in the list (and queued) after this; what comes
    /// after, the spawner learns of at once, instead of queueing a fiber
    /// that nothing would ever run.
    pub(crate) fn close(&self) {
        for i in 0..LIVE_SHARDS {
            self.lock(i).closed = true;
        }
    }

    /// Fibers added, fibers retired and fibers live so far, counted in one
    /// pass: each shard (and each worker's part) gives its three under its
    /// lock, so `spawned == finished + live` holds exactly. Counted in two
    /// passes, a fiber spawned (or finished) between them made `live`
    /// disagree with the other two.
    pub(crate) fn counts(&self) -> Counts {
        let shared = (0..LIVE_SHARDS).map(|i| {
            let shard = self.lock(i);
            let live = shard.tasks.iter().filter(|t| t.is_live()).count() as u64;
            (shard.added, live)
        });
        let own = self.workers.iter().map(LiveSlots::added_and_live);
        shared
            .chain(own)
            .fold(Counts::default(), |counts, (added, live)| Counts {
                spawned: counts.spawned + added,
                finished: counts.finished + added.saturating_sub(live),
                live: counts.live + live.min(added),
            })
    }

    /// Every live fiber, newest first.
    pub(crate) fn tasks(&self) -> Vec<TaskRef> {
        let mut all: Vec<TaskRef> = (0..LIVE_SHARDS)
            .flat_map(|i| {
                let shard = self.lock(i);
                shard
                    .tasks
                    .iter()
                    .filter(|t| t.is_live())
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect();
        for slots in self.workers.iter() {
            slots.live_tasks(&mut all);
        }
        all.sort_by_key(|t| std::cmp::Reverse(t.id));
        all
    }

    /// Lets go of every task, finished or not. At shutdown, once no fiber
    /// runs: the tasks hold their runtime's registry, which holds this
    /// list, and a finished task the shard has not swept yet would keep
    /// both alive for good.
    pub(crate) fn clear(&self) {
        for i in 0..LIVE_SHARDS {
            let tasks = std::mem::take(&mut self.lock(i).tasks);
            // Outside the lock: freeing tasks drops what they hold.
            drop(tasks);
        }
        self.workers.iter().for_each(LiveSlots::clear);
    }
}
