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
// Relaxed counters: statistics only, read without ordering needs.
static HITS: AtomicU64 = AtomicU64::new(0);
static MISSES: AtomicU64 = AtomicU64::new(0);
/// Each thread's count of stacks in its cache, for [`pool_stats`]: one
/// writer per counter (its thread), so keeping it costs a plain store to a
/// line no other thread writes, not a shared atomic on every spawn.
static LOCAL_COUNTS: Mutex<Vec<Arc<AtomicUsize>>> = Mutex::new(Vec::new());

fn global(guard: bool) -> &'static Global {
    if guard {
        &GUARDED
    } else {
        &UNGUARDED
    }
}

/// A thread's cache; given to the global pool when the thread exits.
struct Local {
    guarded: [Vec<usize>; CLASSES],
    unguarded: [Vec<usize>; CLASSES],
    /// Stacks in this cache, published for [`pool_stats`]; registered in
    /// [`LOCAL_COUNTS`] on the thread's first give.
    count: Option<Arc<AtomicUsize>>,
}

impl Local {
    /// Adds `delta` (+1 or -1) to the published count.
    fn count(&mut self, delta: isize) {
        let count = self.count.get_or_insert_with(|| {
            let count = Arc::new(AtomicUsize::new(0));
            LOCAL_COUNTS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(count.clone());
            count
        });
        // Relaxed: a statistic with this thread as its only writer.
        let now = count.load(Ordering::Relaxed).wrapping_add_signed(delta);
        count.store(now, Ordering::Relaxed);
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

impl Drop for Local {
    fn drop(&mut self) {
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
        if let Some(count) = self.count.take() {
            // Relaxed: a statistic; the stacks moved to the global pool.
            count.store(0, Ordering::Relaxed);
            LOCAL_COUNTS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|c| !Arc::ptr_eq(c, &count));
        }
    }
}

thread_local! {
    static LOCAL: RefCell<Local> = const {
        RefCell::new(Local {
            guarded: [const { Vec::new() }; CLASSES],
            unguarded: [const { Vec::new() }; CLASSES],
            count: None,
        })
    };
}

/// A pooled stack of class `shift`, if there is one. Never inlined: it reads
/// a thread-local and may be called from a fiber that later moves threads.
#[inline(never)]
pub(super) fn take(shift: u32, guard: bool) -> Option<usize> {
    let found = LOCAL
        .try_with(|l| {
            let mut l = l.try_borrow_mut().ok()?;
            let list = l.list(shift, guard);
            if list.is_empty() {
                let class = (shift - MIN_SHIFT) as usize;
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
                l.count(-1);
            }
            found
        })
        .ok()
        .flatten();
    let counter = if found.is_some() { &HITS } else { &MISSES };
    // Relaxed: a statistic.
    counter.fetch_add(1, Ordering::Relaxed);
    found
}

/// Offers a stack to the pool; `false` means it is full and the caller must
/// unmap the stack.
#[inline(never)]
pub(super) fn give(base: usize, shift: u32, guard: bool) -> bool {
    let kept = LOCAL
        .try_with(|l| match l.try_borrow_mut() {
            Ok(mut l) => {
                let list = l.list(shift, guard);
                if list.len() >= LOCAL_CAP {
                    let from = list.len() - BATCH;
                    let batch: Vec<usize> = list.drain(from..).collect();
                    l.count(-(BATCH as isize));
                    for base in batch {
                        if !give_global(base, shift, guard) {
                            // SAFETY: a pooled stack is owned by the pool alone.
                            unsafe { super::arena::unmap(base, shift) };
                        }
                    }
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
    let cached: usize = LOCAL_COUNTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        // Relaxed: statistics.
        .map(|c| c.load(Ordering::Relaxed))
        .sum();
    let global: usize = [&GUARDED, &UNGUARDED]
        .iter()
        .flat_map(|g| g.classes.iter())
        .map(|c| c.lock().unwrap_or_else(|e| e.into_inner()).len())
        .sum();
    PoolStats {
        hits: HITS.load(Ordering::Relaxed),
        misses: MISSES.load(Ordering::Relaxed),
        pooled: (cached + global) as u64,
    }
}
