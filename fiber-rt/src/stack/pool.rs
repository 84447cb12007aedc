//! Reuse of stacks: a small cache per thread in front of a global pool per
//! size class, so that a stack freed and taken again on one thread costs no
//! lock and no system call.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::arena::{MAX_SHIFT, MIN_SHIFT};

const CLASSES: usize = (MAX_SHIFT - MIN_SHIFT + 1) as usize;
/// Stacks a thread keeps per class before handing them to the global pool.
const LOCAL_CAP: usize = 64;
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
/// Stacks given to the pool and kept.
static KEPT: AtomicU64 = AtomicU64::new(0);
/// Pooled stacks unmapped when a thread's cache could not go to the global pool.
static DISCARDED: AtomicU64 = AtomicU64::new(0);

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
}

impl Local {
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
                        DISCARDED.fetch_add(1, Ordering::Relaxed);
                        // SAFETY: a pooled stack is owned by the pool alone.
                        unsafe { super::arena::unmap(base, shift) };
                    }
                }
            }
        }
    }
}

thread_local! {
    static LOCAL: RefCell<Local> = const {
        RefCell::new(Local {
            guarded: [const { Vec::new() }; CLASSES],
            unguarded: [const { Vec::new() }; CLASSES],
        })
    };
}

/// A pooled stack of class `shift`, if there is one. Never inlined: it reads
/// a thread-local and may be called from a fiber that later moves threads.
#[inline(never)]
pub(super) fn take(shift: u32, guard: bool) -> Option<usize> {
    let local = LOCAL
        .try_with(|l| {
            l.try_borrow_mut()
                .ok()
                .and_then(|mut l| l.list(shift, guard).pop())
        })
        .ok()
        .flatten();
    let found = local.or_else(|| {
        let class = (shift - MIN_SHIFT) as usize;
        global(guard).classes[class]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
    });
    let counter = if found.is_some() { &HITS } else { &MISSES };
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
                if list.len() < LOCAL_CAP {
                    list.push(base);
                    true
                } else {
                    false
                }
            }
            Err(_) => false,
        })
        .unwrap_or(false);
    let kept = kept || give_global(base, shift, guard);
    if kept {
        KEPT.fetch_add(1, Ordering::Relaxed);
    }
    kept
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
    /// Stacks in the pool now, ready for reuse.
    pub pooled: u64,
}

/// Process-wide stack pool counters.
pub fn pool_stats() -> PoolStats {
    let hits = HITS.load(Ordering::Relaxed);
    PoolStats {
        hits,
        misses: MISSES.load(Ordering::Relaxed),
        // The counters are read one by one while other threads move
        // stacks: a momentary skew must not underflow.
        pooled: KEPT
            .load(Ordering::Relaxed)
            .saturating_sub(hits + DISCARDED.load(Ordering::Relaxed)),
    }
}
