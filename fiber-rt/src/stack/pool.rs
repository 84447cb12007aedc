//! Reuse of stacks: a small cache per thread in front of a global pool per
//! size class, so that a stack freed and taken again on one thread costs no
//! lock and no system call. Caches and the pool trade stacks in batches: a
//! fiber spawned on one worker often ends on another, and one lock per
//! [`BATCH`] stacks moved keeps that pattern off the pool's lock.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::arena::{MAX_SHIFT, MIN_SHIFT};

const CLASSES: usize = (MAX_SHIFT - MIN_SHIFT + 1) as usize;
/// Stacks moved between a thread's cache and the global pool at a time.
const BATCH: usize = 32;
/// Stacks a thread keeps per class before handing a batch to the global pool.
const LOCAL_CAP: usize = 2 * BATCH;
/// Stacks the global pool keeps per class before unmapping.
const GLOBAL_CAP: usize = 4096;

struct Global {
    classes: [Mutex<Vec<usize>>; CLASSES],
}

static GUARDED: Global = Global {
    classes: [const { Mutex::new(Vec::new()) }; CLASSES],
};
static UNGUARDED: Global = Global {
    classes: [const { Mutex::new(Vec::new()) }; CLASSES],
};
// Relaxed counters: statistics only, read without ordering needs. Hits and
// misses of threads that have exited (live threads count in their `Counts`).
static HITS: AtomicU64 = AtomicU64::new(0);
static MISSES: AtomicU64 = AtomicU64::new(0);

/// One thread's pool statistics.
#[derive(Default)]
struct Counts {
    /// Stacks in the thread's cache.
    pooled: AtomicUsize,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Each thread's counts, for [`pool_stats`]: one writer per counter (its
/// thread), so keeping them costs a plain store to a
/// line no other thread writes, not a shared atomic on every spawn.
static LOCAL_COUNTS: Mutex<Vec<Arc<Counts>>> = Mutex::new(Vec::new());

fn global(guard: bool) -> &'static Global {
    if guard {
        &GUARDED
    } else {
        &UNGUARDED
    }
}

/// A thread's cache; given to the global pool when the thread exits. Each
/// list runs from cold (front) to warm (back): takes and gives use the
/// back, and a full cache spills its front.
struct Local {
    guarded: [Vec<usize>; CLASSES],
    unguarded: [Vec<usize>; CLASSES],
    /// Stacks in this cache, published for [`pool_stats`]; registered in
    /// [`LOCAL_COUNTS`] on the thread's first take or give.
    counts: Option<Arc<Counts>>,
}

impl Local {
    /// This thread's published counts, registered on first use.
    #[inline]
    fn counts(&mut self) -> &Counts {
        self.counts.get_or_insert_with(register_counts)
    }

    /// Adds `delta` to the published number of cached stacks.
    fn count(&mut self, delta: isize) {
        let pooled = &self.counts().pooled;
        // Relaxed: a statistic with this thread as its only writer.
        let now = pooled.load(Ordering::Relaxed).wrapping_add_signed(delta);
        pooled.store(now, Ordering::Relaxed);
    }

    /// Counts a take served from this cache: one stack fewer in it, one
    /// hit more.
    #[inline]
    fn count_hit(&mut self) {
        let counts = self.counts();
        // Relaxed: statistics with this thread as their only writer; plain
        // stores, no locked instruction.
        let pooled = counts.pooled.load(Ordering::Relaxed).wrapping_sub(1);
        counts.pooled.store(pooled, Ordering::Relaxed);
        let hits = counts.hits.load(Ordering::Relaxed) + 1;
        counts.hits.store(hits, Ordering::Relaxed);
    }

    /// Counts a take that found no pooled stack (a new mapping follows).
    fn count_miss(&mut self) {
        let misses = &self.counts().misses;
        // Relaxed: as above.
        misses.store(misses.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    fn list(&mut self, shift: u32, guard: bool) -> &mut Vec<usize> {
        let class = (shift - MIN_SHIFT) as usize;
        if guard {
            &mut self.guarded[class]
        } else {
            &mut self.unguarded[class]
        }
    }
}

/// A thread's first use of the pool: publishes its counts.
#[cold]
fn register_counts() -> Arc<Counts> {
    let counts = Arc::new(Counts::default());
    LOCAL_COUNTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(counts.clone());
    counts
}

impl Drop for Local {
    fn drop(&mut self) {
        if let Some(counts) = &self.counts {
            // Relaxed: a statistic. Zeroed before the stacks move, so that
            // `pool_stats` may miss them for a moment but never counts them
            // twice.
            counts.pooled.store(0, Ordering::Relaxed);
        }
        for (guard, lists) in [(true, &mut self.guarded), (false, &mut self.unguarded)] {
            for (class, list) in lists.iter_mut().enumerate() {
                let shift = class as u32 + MIN_SHIFT;
                for base in list.drain(..) {
                    if !give_global(base, shift, guard) {
                        // SAFETY: a pooled stack is owned by the pool alone.
                        unsafe { super::arena::unmap(base, shift) };
                    }
                }
            }
        }
        if let Some(counts) = self.counts.take() {
            // Under the list's lock, so that `pool_stats` counts this
            // thread's hits and misses exactly once.
            let mut list = LOCAL_COUNTS.lock().unwrap_or_else(|e| e.into_inner());
            // Relaxed: statistics.
            HITS.fetch_add(counts.hits.load(Ordering::Relaxed), Ordering::Relaxed);
            MISSES.fetch_add(counts.misses.load(Ordering::Relaxed), Ordering::Relaxed);
            list.retain(|c| !Arc::ptr_eq(c, &counts));
        }
    }
}

thread_local! {
    static LOCAL: RefCell<Local> = const {
        RefCell::new(Local {
            guarded: [const { Vec::new() }; CLASSES],
            unguarded: [const { Vec::new() }; CLASSES],
            counts: None,
        })
    };
}

/// A pooled stack of class `shift`, if there is one. Never inlined: it reads
/// a thread-local and may be called from a fiber that later moves threads.
///
/// The common case, a stack in the thread's cache, is all this does; the
/// rest is out of line, so that the call saves and restores no registers.
#[inline(never)]
pub(super) fn take(shift: u32, guard: bool) -> Option<usize> {
    let cached = LOCAL
        .try_with(|l| {
            let mut l = l.try_borrow_mut().ok()?;
            let found = l.list(shift, guard).pop()?;
            l.count_hit();
            Some(found)
        })
        .ok()
        .flatten();
    cached.or_else(|| take_slow(shift, guard))
}

/// [`take`] when the thread's cache has no stack of the class: a batch
/// from the global pool, or the global pool alone while the thread exits.
#[cold]
#[inline(never)]
fn take_slow(shift: u32, guard: bool) -> Option<usize> {
    let class = (shift - MIN_SHIFT) as usize;
    let cached = LOCAL
        .try_with(|l| {
            let mut l = l.try_borrow_mut().ok()?;
            let list = l.list(shift, guard);
            if list.is_empty() {
                let mut global = global(guard).classes[class]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let from = global.len().saturating_sub(BATCH);
                list.extend(global.drain(from..));
                let fetched = list.len() as isize;
                l.count(fetched);
            }
            let found = l.list(shift, guard).pop();
            if found.is_some() {
                l.count_hit();
            } else {
                l.count_miss();
            }
            Some(found)
        })
        .ok()
        .flatten();
    cached.unwrap_or_else(|| {
        // No thread cache (the thread is exiting): the global pool alone.
        let found = global(guard).classes[class]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        let counter = if found.is_some() { &HITS } else { &MISSES };
        // Relaxed: a statistic.
        counter.fetch_add(1, Ordering::Relaxed);
        found
    })
}

/// Offers a stack to the pool; `false` means it is full and the caller must
/// unmap the stack. As [`take`], the common case alone is inline.
#[inline(never)]
pub(super) fn give(base: usize, shift: u32, guard: bool) -> bool {
    let kept = LOCAL
        .try_with(|l| {
            let mut l = l.try_borrow_mut().ok()?;
            let list = l.list(shift, guard);
            if list.len() >= LOCAL_CAP {
                return None;
            }
            list.push(base);
            l.count(1);
            Some(())
        })
        .ok()
        .flatten();
    kept.is_some() || give_slow(base, shift, guard)
}

/// [`give`] when the thread's cache is full (its coldest batch goes to
/// the global pool first) or gone (the global pool alone).
#[cold]
#[inline(never)]
fn give_slow(base: usize, shift: u32, guard: bool) -> bool {
    let kept = LOCAL
        .try_with(|l| match l.try_borrow_mut() {
            Ok(mut l) => {
                let list = l.list(shift, guard);
                if list.len() >= LOCAL_CAP {
                    // The coldest stacks go (the cache's bottom), under one
                    // lock for the batch.
                    let class = (shift - MIN_SHIFT) as usize;
                    let mut global = global(guard).classes[class]
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    for base in list.drain(..BATCH) {
                        if global.len() < GLOBAL_CAP {
                            global.push(base);
                        } else {
                            // SAFETY: a pooled stack is owned by the pool alone.
                            unsafe { super::arena::unmap(base, shift) };
                        }
                    }
                    drop(global);
                    l.count(-(BATCH as isize));
                }
                l.list(shift, guard).push(base);
                l.count(1);
                true
            }
            Err(_) => false,
        })
        .unwrap_or(false);
    kept || give_global(base, shift, guard)
}

/// Unmaps the idle stacks of class `shift` within this thread's reach
/// (its own cache and the global pool, with and without guard pages), for
/// a mapping that failed for want of room to be tried again; `false` if
/// there were none. (Other threads' caches are theirs alone.)
#[cold]
pub(super) fn release_idle(shift: u32) -> bool {
    let class = (shift - MIN_SHIFT) as usize;
    let mut idle = Vec::new();
    let _ = LOCAL.try_with(|l| {
        let Ok(mut l) = l.try_borrow_mut() else {
            return;
        };
        for guard in [true, false] {
            let list = l.list(shift, guard);
            let taken = list.len() as isize;
            idle.append(list);
            l.count(-taken);
        }
    });
    for guard in [true, false] {
        let mut list = global(guard).classes[class]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        idle.append(&mut list);
    }
    for &base in &idle {
        // SAFETY: a pooled stack is owned by the pool alone, and these
        // were just taken out of it.
        unsafe { super::arena::unmap(base, shift) };
    }
    !idle.is_empty()
}

fn give_global(base: usize, shift: u32, guard: bool) -> bool {
    let class = (shift - MIN_SHIFT) as usize;
    let mut list = global(guard).classes[class]
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if list.len() < GLOBAL_CAP {
        list.push(base);
        true
    } else {
        false
    }
}

/// How the stack pool has served requests so far, process-wide.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Requests served by a pooled stack.
    pub hits: u64,
    /// Requests that mapped a new stack.
    pub misses: u64,
    /// Stacks in the pool now (thread caches and global pool), ready for
    /// reuse.
    pub pooled: u64,
}

/// Process-wide stack pool counters.
pub fn pool_stats() -> PoolStats {
    let (mut hits, mut misses, mut cached) = (0, 0, 0);
    let list = LOCAL_COUNTS.lock().unwrap_or_else(|e| e.into_inner());
    for counts in list.iter() {
        // Relaxed: statistics.
        hits += counts.hits.load(Ordering::Relaxed);
        misses += counts.misses.load(Ordering::Relaxed);
        cached += counts.pooled.load(Ordering::Relaxed);
    }
    // Relaxed: as above; read under the list's lock, like an exiting
    // thread's move of its counts to these.
    hits += HITS.load(Ordering::Relaxed);
    misses += MISSES.load(Ordering::Relaxed);
    drop(list);
    let global: usize = [&GUARDED, &UNGUARDED]
        .iter()
        .flat_map(|g| g.classes.iter())
        .map(|c| c.lock().unwrap_or_else(|e| e.into_inner()).len())
        .sum();
    PoolStats {
        hits,
        misses,
        pooled: (cached + global) as u64,
    }
}
