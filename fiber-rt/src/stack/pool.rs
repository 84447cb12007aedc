//! Reuse of stacks: a small cache per thread in front of a global pool per
//! size class, so that a stack freed and taken again on one thread costs no
//! lock and no system call. Caches and the pool trade stacks in batches: a
//! fiber spawned on one worker often ends on another, and one lock per
//! [`BATCH`] stacks moved keeps that pattern off the pool's lock.
//!
//! A pooled stack keeps the memory its fiber touched, so after a burst of
//! fibers with deep stacks the pool would hold that memory for good. The
//! global pool gives it back: a stack that has stayed in it for a whole
//! trimming period (about a second; see [`trim_idle`], which the
//! preemption monitor calls) has its pages, all but the top one with its
//! header, returned to the kernel with `madvise`, and comes back as zeroed
//! pages if it is used again. Stacks in use, and those in the threads'
//! caches (the stacks that are reused right away), are never trimmed.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::arena::{MAX_SHIFT, MIN_SHIFT};

const CLASSES: usize = (MAX_SHIFT - MIN_SHIFT + 1) as usize;
/// Stacks moved between a thread's cache and the global pool at a time.
const BATCH: usize = 32;
/// Stacks a thread keeps per class before handing a batch to the global pool.
const LOCAL_CAP: usize = 2 * BATCH;
/// Stacks the global pool keeps per class before unmapping.
const GLOBAL_CAP: usize = 4096;

/// How long a stack stays idle in the global pool, at least, before its
/// memory is given back (see [`trim_idle`]).
pub(crate) const TRIM_PERIOD: Duration = Duration::from_secs(1);
/// Stacks trimmed per call of [`trim_idle`] at most, so that a call takes
/// a few milliseconds at worst (a `madvise` is a few microseconds).
const TRIM_MAX: usize = 512;

struct Global {
    classes: [Mutex<ClassPool>; CLASSES],
}

/// One class's stacks in the global pool.
struct ClassPool {
    /// Stacks that may hold touched memory, coldest first: taken from and
    /// given to the back.
    warm: Vec<usize>,
    /// The fewest `warm` held since the last trimming pass: its first
    /// `idle` stacks have been there since then.
    idle: usize,
    /// Stacks whose memory was given back, taken after the warm ones.
    trimmed: Vec<usize>,
    /// Stacks out of the lists while a pass gives their memory back: still
    /// the pool's, counted against [`GLOBAL_CAP`] and as pooled.
    trimming: usize,
}

impl ClassPool {
    const fn new() -> Self {
        ClassPool {
            warm: Vec::new(),
            idle: 0,
            trimmed: Vec::new(),
            trimming: 0,
        }
    }

    fn len(&self) -> usize {
        self.warm.len() + self.trimmed.len() + self.trimming
    }

    /// Adds `base` unless the pool is full. The caller calls
    /// [`note_untrimmed`] once the pool's lock is released.
    fn push(&mut self, base: usize) -> bool {
        if self.len() < GLOBAL_CAP {
            self.warm.push(base);
            true
        } else {
            false
        }
    }

    fn pop(&mut self) -> Option<usize> {
        let found = self.warm.pop().or_else(|| self.trimmed.pop());
        self.idle = self.idle.min(self.warm.len());
        found
    }

    /// Moves up to `n` stacks into `into`, warm ones first.
    fn take_batch(&mut self, n: usize, into: &mut Vec<usize>) {
        let from = self.warm.len().saturating_sub(n);
        let warm = self.warm.len() - from;
        into.extend(self.warm.drain(from..));
        self.idle = self.idle.min(self.warm.len());
        let from = self.trimmed.len().saturating_sub(n - warm);
        into.extend(self.trimmed.drain(from..));
    }

    /// Takes every stack out.
    fn take_all(&mut self, into: &mut Vec<usize>) {
        into.append(&mut self.warm);
        into.append(&mut self.trimmed);
        self.idle = 0;
    }
}

static GUARDED: Global = Global {
    classes: [const { Mutex::new(ClassPool::new()) }; CLASSES],
};
static UNGUARDED: Global = Global {
    classes: [const { Mutex::new(ClassPool::new()) }; CLASSES],
};
/// Whether some global pool may hold a stack not trimmed yet: lets
/// [`trim_idle`] return at once, and the monitor sleep for good, otherwise.
/// Set after a stack is given to a global pool (see [`note_untrimmed`]),
/// cleared by a pass and set again by it if it leaves stacks untrimmed.
static UNTRIMMED: AtomicBool = AtomicBool::new(false);
/// When the last trimming pass began (see [`epoch_nanos`]), so that
/// the monitors of several runtimes make one pass a period between them.
static LAST_PASS: AtomicU64 = AtomicU64::new(0);
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

/// Class `class`'s global pool of the `guard` kind, locked.
fn class_pool(guard: bool, class: usize) -> MutexGuard<'static, ClassPool> {
    global(guard).classes[class]
        .lock()
        .unwrap_or_else(|e| e.into_inner())
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
                class_pool(guard, class).take_batch(BATCH, list);
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
        let found = class_pool(guard, class).pop();
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
                    let mut global = class_pool(guard, class);
                    for base in list.drain(..BATCH) {
                        if !global.push(base) {
                            // SAFETY: a pooled stack is owned by the pool alone.
                            unsafe { super::arena::unmap(base, shift) };
                        }
                    }
                    drop(global);
                    note_untrimmed();
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
        class_pool(guard, class).take_all(&mut idle);
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
    let kept = class_pool(guard, class).push(base);
    if kept {
        note_untrimmed();
    }
    kept
}

/// Notes that a global pool holds a stack not trimmed yet, after the
/// pool's lock is released (a monitor's lock is taken after a pool's).
/// The first such stack since a pass cleared [`UNTRIMMED`] wakes the
/// monitors that sleep with nothing to trim: the stacks would stay
/// untrimmed for as long as every runtime is idle otherwise.
fn note_untrimmed() {
    // SeqCst: pairs with the look of a monitor that lists itself to
    // sleep (`untrimmed`): either it sees the flag set, or this finds it
    // listed and wakes it.
    if !UNTRIMMED.swap(true, Ordering::SeqCst) {
        crate::preempt::wake_for_trim();
    }
}

/// Whether some global pool may hold a stack not trimmed yet, for a
/// monitor about to sleep with nothing to trim (see [`note_untrimmed`]).
pub(crate) fn untrimmed() -> bool {
    // SeqCst: see `note_untrimmed`.
    UNTRIMMED.load(Ordering::SeqCst)
}

/// Gives back the memory of the global pool's stacks that have been idle
/// there since the last pass, at most [`TRIM_MAX`] of them, if a
/// [`TRIM_PERIOD`] has passed since that pass (one made by any caller);
/// returns whether stacks not trimmed yet are left, for the caller to
/// come back after another period. Called by the preemption monitors,
/// while their runtime is busy and while it is idle.
pub(crate) fn trim_idle() -> bool {
    // Relaxed: a hint, set under a pool's lock with its stack; one missed
    // here is seen at the next call.
    if !UNTRIMMED.load(Ordering::Relaxed) {
        return false;
    }
    let now = epoch_nanos();
    // Relaxed: only rate-limits the passes; the pools' locks order the rest.
    let last = LAST_PASS.load(Ordering::Relaxed);
    if now.saturating_sub(last) < TRIM_PERIOD.as_nanos() as u64
        || LAST_PASS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return true;
    }
    trim_pass(TRIM_MAX)
}

/// One trimming pass (see [`trim_idle`]) over every class of both kinds,
/// trimming `max` stacks at most; whether untrimmed stacks are left.
fn trim_pass(max: usize) -> bool {
    // Cleared first: a stack given meanwhile sets it again.
    // Relaxed: see `trim_idle`.
    UNTRIMMED.store(false, Ordering::Relaxed);
    let mut budget = max;
    let mut left = false;
    for guard in [true, false] {
        for class in 0..CLASSES {
            let shift = class as u32 + MIN_SHIFT;
            // The stacks idle since the last pass leave the pool while their
            // memory goes, so that nobody takes one meanwhile.
            let idle: Vec<usize> = {
                let mut pool = class_pool(guard, class);
                let n = pool.idle.min(budget);
                let idle = pool.warm.drain(..n).collect();
                // Counted still: a stack given meanwhile finds the pool as
                // full as it is.
                pool.trimming += n;
                // From now on, the stacks there are the next pass's idle ones.
                pool.idle = pool.warm.len();
                left |= !pool.warm.is_empty();
                idle
            };
            budget -= idle.len();
            for &base in &idle {
                // SAFETY: the stack is the pool's alone, out of every list.
                unsafe { trim(base, shift) };
            }
            if !idle.is_empty() {
                let mut pool = class_pool(guard, class);
                pool.trimming -= idle.len();
                pool.trimmed.extend(idle);
            }
        }
    }
    if left {
        // Relaxed: see `trim_idle`.
        UNTRIMMED.store(true, Ordering::Relaxed);
    }
    left
}

/// Gives the memory of the idle stack at `base` of class `shift` back to
/// the kernel, all but its lowest page (a guard page, or too little to
/// matter) and its top page, which holds its header.
///
/// # Safety
///
/// The stack is mapped, and nobody uses it or reads its memory below the
/// top page until it is taken from the pool again (pages given back read
/// as zeroes).
unsafe fn trim(base: usize, shift: u32) {
    let page = super::arena::page_size();
    let size = 1usize << shift;
    if size <= 2 * page {
        return;
    }
    // SAFETY: the range lies inside the stack's mapping, which the caller
    // says nobody uses; MADV_DONTNEED on private anonymous memory only
    // drops its pages. An error (none is expected) leaves them resident.
    unsafe {
        libc::madvise(
            (base + page) as *mut libc::c_void,
            size - 2 * page,
            libc::MADV_DONTNEED,
        )
    };
}

/// Nanoseconds since the first call: a clock for [`LAST_PASS`], never 0
/// for a pass.
fn epoch_nanos() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    // Offset by a period so that the first pass is never rate-limited.
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX) + TRIM_PERIOD.as_nanos() as u64
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
    /// Of those, the stacks whose memory was given back to the kernel
    /// after they had stayed idle in the global pool for a while.
    pub trimmed: u64,
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
    let (mut global, mut trimmed) = (0, 0);
    for class in [&GUARDED, &UNGUARDED].iter().flat_map(|g| g.classes.iter()) {
        let pool = class.lock().unwrap_or_else(|e| e.into_inner());
        global += pool.len();
        trimmed += pool.trimmed.len();
    }
    PoolStats {
        hits,
        misses,
        pooled: (cached + global) as u64,
        trimmed: trimmed as u64,
    }
}

#[cfg(test)]
mod tests {
    //! Trimming: a stack idle in the global pool since the last pass has
    //! its memory given back, all but its top page; one given since is
    //! left alone, and warm stacks are taken before trimmed ones.

    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::{class_pool, trim_pass, GLOBAL_CAP, MIN_SHIFT};
    use crate::stack::arena;

    /// Taken by the tests here that make passes, each of which would trim
    /// the other's stacks early.
    static PASSES: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// A class no other test uses (128 MiB stacks), so that nobody takes
    /// these stacks from the global pool meanwhile.
    const SHIFT: u32 = 27;
    const CLASS: usize = (SHIFT - MIN_SHIFT) as usize;

    /// Writes `byte` to the stack's lowest usable page and its top page.
    fn fill(base: usize, byte: u8) {
        let page = arena::page_size();
        let top_page = base + (1 << SHIFT) - page;
        for addr in [base + page, base + page + 100, top_page + 8] {
            // SAFETY: inside the stack's read-write mapping, unused.
            unsafe { (addr as *mut u8).write_volatile(byte) };
        }
    }

    /// The byte at `offset` from the stack's base.
    fn read(base: usize, offset: usize) -> u8 {
        // SAFETY: inside the stack's mapping.
        unsafe { ((base + offset) as *const u8).read_volatile() }
    }

    #[test]
    fn a_stack_idle_for_a_whole_pass_is_trimmed_and_its_top_page_kept() {
        let _passes = PASSES.lock().unwrap_or_else(|e| e.into_inner());
        let page = arena::page_size();
        let top = (1usize << SHIFT) - page + 8;
        let old = arena::map(SHIFT).unwrap();
        fill(old, 0xAB);
        assert!(class_pool(false, CLASS).push(old));
        // A pass (this one, or another runtime's monitor's) marks it idle.
        trim_pass(usize::MAX);
        let new = arena::map(SHIFT).unwrap();
        fill(new, 0xCD);
        assert!(class_pool(false, CLASS).push(new));
        trim_pass(usize::MAX);
        // The old one was there for a whole pass: its pages are gone, but
        // for the top one; the new one was not.
        assert_eq!((read(old, page), read(old, page + 100)), (0, 0));
        assert_eq!(read(old, top), 0xAB);
        assert_eq!((read(new, page), read(new, top)), (0xCD, 0xCD));
        {
            let pool = class_pool(false, CLASS);
            assert_eq!(
                (&pool.warm[..], &pool.trimmed[..]),
                (&[new][..], &[old][..])
            );
        }
        // Warm stacks are taken first.
        let mut taken = Vec::new();
        class_pool(false, CLASS).take_batch(8, &mut taken);
        assert_eq!(taken, [new, old]);
        for base in taken {
            // SAFETY: made here, out of the pool again, used by nobody.
            unsafe { arena::unmap(base, SHIFT) };
        }
    }

    /// Stacks given to the global pool while a pass gives others' memory
    /// back find it as full as it is: it never holds more than its cap.
    #[test]
    fn a_pass_keeps_the_pool_within_its_cap() {
        let _passes = PASSES.lock().unwrap_or_else(|e| e.into_inner());
        // A class no other test uses (64 MiB stacks; only address space).
        const SHIFT: u32 = 26;
        const CLASS: usize = (SHIFT - MIN_SHIFT) as usize;
        const EXTRA: usize = 1024;
        let map = || arena::map(SHIFT).unwrap();
        {
            let mut pool = class_pool(false, CLASS);
            for _ in 0..GLOBAL_CAP {
                assert!(pool.push(map()));
            }
        }
        // Marks them idle: each later pass takes 512 out to trim them.
        trim_pass(usize::MAX);
        let extra: Vec<usize> = (0..EXTRA).map(|_| map()).collect();
        let (started, stop) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        // Gives stacks as fast as the pool takes them; returns the refused.
        let giver = {
            let (started, stop) = (started.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut left = extra;
                // Relaxed: plain flags; the join orders the rest.
                started.store(true, Ordering::Relaxed);
                while !stop.load(Ordering::Relaxed) && !left.is_empty() {
                    let base = *left.last().unwrap();
                    if class_pool(false, CLASS).push(base) {
                        left.pop();
                    }
                }
                left
            })
        };
        // Relaxed: see above.
        while !started.load(Ordering::Relaxed) {
            std::hint::spin_loop();
        }
        let mut most = 0;
        for _ in 0..100 {
            trim_pass(512);
            most = most.max(class_pool(false, CLASS).len());
        }
        // Relaxed: see above.
        stop.store(true, Ordering::Relaxed);
        let mut all = giver.join().unwrap();
        let len = class_pool(false, CLASS).len();
        class_pool(false, CLASS).take_all(&mut all);
        for &base in &all {
            // SAFETY: made here, out of the pool again, used by nobody.
            unsafe { arena::unmap(base, SHIFT) };
        }
        assert!(
            most.max(len) <= GLOBAL_CAP,
            "the pool held {} stacks, more than its cap of {GLOBAL_CAP}",
            most.max(len)
        );
    }
}
