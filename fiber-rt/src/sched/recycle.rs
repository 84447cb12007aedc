//! Memory of one fixed layout, kept for reuse: a cache per thread in front
//! of a process-wide list, exchanged in batches.
//!
//! Whatever thread frees a block keeps it; whatever thread needs one takes
//! it from its own cache first. When one thread mostly frees and another
//! mostly takes (a spawner and a worker that runs what it spawned), full
//! caches pass a batch to the shared list and empty ones fetch a batch, so
//! the shared lock is taken once per [`BATCH`] blocks.

use std::alloc::{self, Layout};
use std::cell::RefCell;
use std::ptr::NonNull;
use std::sync::Mutex;

/// Blocks moved between a thread's cache and the shared list at a time.
const BATCH: usize = 64;
/// A thread's cache holds at most this many blocks per recycler.
const LOCAL_CAP: usize = 2 * BATCH;
/// The shared list holds at most this many; beyond, blocks are freed. For
/// tasks (256 bytes) that keeps at most 2 MiB after a burst of spawns.
const GLOBAL_CAP: usize = 8 * 1024;

/// Recyclers in the process, each with a cache slot in every thread: task
/// memory, and one for the tests.
const SLOTS: usize = 2;

/// One recycler: a layout and its shared list.
pub(crate) struct Recycler {
    layout: Layout,
    /// Index of this recycler's cache in each thread's [`Local`].
    slot: usize,
    shared: Mutex<Vec<usize>>,
}

/// A thread's caches, one per recycler; emptied into the shared lists when
/// the thread exits.
struct Local {
    caches: [Vec<usize>; SLOTS],
    /// The recyclers whose caches are in use, for the exit path.
    owners: [Option<&'static Recycler>; SLOTS],
}

impl Drop for Local {
    fn drop(&mut self) {
        for (cache, owner) in self.caches.iter_mut().zip(self.owners) {
            if let Some(owner) = owner {
                owner.give_shared(cache.drain(..));
            }
        }
    }
}

thread_local! {
    static LOCAL: RefCell<Local> = const {
        RefCell::new(Local {
            caches: [const { Vec::new() }; SLOTS],
            owners: [None; SLOTS],
        })
    };
}

impl Recycler {
    /// A recycler of blocks of `layout` (non-zero size) using cache `slot`.
    pub(crate) const fn new(layout: Layout, slot: usize) -> Recycler {
        assert!(layout.size() > 0 && slot < SLOTS);
        Recycler {
            layout,
            slot,
            shared: Mutex::new(Vec::new()),
        }
    }

    /// An unused block: from this thread's cache, a batch from the shared
    /// list, or the allocator. Never inlined: it reads a thread-local and
    /// may be called from a fiber that later moves threads. The common
    /// case, a block in the cache, is all it does; the rest is out of line,
    /// so that the call saves and restores no registers.
    #[inline(never)]
    pub(crate) fn take(&'static self) -> NonNull<u8> {
        let cached = LOCAL
            .try_with(|local| local.try_borrow_mut().ok()?.caches[self.slot].pop())
            .ok()
            .flatten();
        match cached {
            // SAFETY: only non-null block addresses are ever cached.
            Some(addr) => unsafe { NonNull::new_unchecked(addr as *mut u8) },
            None => self.take_slow(),
        }
    }

    /// [`take`](Self::take) when the thread's cache is empty.
    #[cold]
    #[inline(never)]
    fn take_slow(&'static self) -> NonNull<u8> {
        let cached = LOCAL
            .try_with(|local| {
                let mut local = local.try_borrow_mut().ok()?;
                // Whoever holds blocks hands them back when it exits, also
                // a thread that only ever takes.
                local.owners[self.slot] = Some(self);
                let cache = &mut local.caches[self.slot];
                let mut shared = self.lock();
                let from = shared.len().saturating_sub(BATCH);
                cache.extend(shared.drain(from..));
                drop(shared);
                cache.pop()
            })
            .ok()
            .flatten();
        match cached {
            // SAFETY: only non-null block addresses are ever cached.
            Some(addr) => unsafe { NonNull::new_unchecked(addr as *mut u8) },
            None => {
                // SAFETY: the layout's size is non-zero (checked in `new`).
                let block = unsafe { alloc::alloc(self.layout) };
                NonNull::new(block).unwrap_or_else(|| alloc::handle_alloc_error(self.layout))
            }
        }
    }

    /// Keeps a block for reuse. As [`take`](Self::take), the common case
    /// alone is inline.
    ///
    /// # Safety
    ///
    /// `block` came from [`take`](Self::take) of this recycler, holds no
    /// live value, and is given once.
    #[inline(never)]
    pub(crate) unsafe fn give(&'static self, block: NonNull<u8>) {
        let kept = LOCAL
            .try_with(|local| {
                let Ok(mut local) = local.try_borrow_mut() else {
                    return false;
                };
                let local = &mut *local;
                let cache = &mut local.caches[self.slot];
                if cache.len() >= LOCAL_CAP {
                    return false;
                }
                cache.push(block.as_ptr() as usize);
                local.owners[self.slot] = Some(self);
                true
            })
            .unwrap_or(false);
        if !kept {
            self.give_slow(block);
        }
    }

    /// [`give`](Self::give) when the thread's cache is full (its coldest
    /// batch goes to the shared list first) or gone (the shared list
    /// alone).
    #[cold]
    #[inline(never)]
    fn give_slow(&'static self, block: NonNull<u8>) {
        let kept = LOCAL
            .try_with(|local| {
                let Ok(mut local) = local.try_borrow_mut() else {
                    return false;
                };
                local.owners[self.slot] = Some(self);
                let cache = &mut local.caches[self.slot];
                if cache.len() >= LOCAL_CAP {
                    // The coldest blocks go: the cache's bottom.
                    self.give_shared(cache.drain(..BATCH));
                }
                cache.push(block.as_ptr() as usize);
                true
            })
            .unwrap_or(false);
        if !kept {
            self.give_shared(std::iter::once(block.as_ptr() as usize));
        }
    }

    /// Moves blocks to the shared list, freeing those beyond its cap.
    fn give_shared(&self, blocks: impl Iterator<Item = usize>) {
        let mut shared = self.lock();
        for block in blocks {
            if shared.len() < GLOBAL_CAP {
                shared.push(block);
            } else {
                // SAFETY: blocks in a cache came from `alloc` with this
                // layout and hold no value.
                unsafe { alloc::dealloc(block as *mut u8, self.layout) };
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<usize>> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static TEST: Recycler = Recycler::new(Layout::new::<[u64; 4]>(), 1);

    /// One test, so that no other test's thread mixes blocks in.
    #[test]
    fn blocks_are_reused_on_the_same_thread_and_across_threads() {
        let a = TEST.take();
        // SAFETY: from `take`, holding nothing, given once.
        unsafe { TEST.give(a) };
        assert_eq!(TEST.take(), a, "the last block given is taken first");

        let blocks: Vec<usize> = std::thread::spawn(|| {
            let blocks: Vec<_> = (0..3 * BATCH).map(|_| TEST.take()).collect();
            let addrs = blocks.iter().map(|b| b.as_ptr() as usize).collect();
            for b in blocks {
                // SAFETY: as above.
                unsafe { TEST.give(b) };
            }
            addrs
        })
        .join()
        .unwrap();
        // The exiting thread handed its cache to the shared list.
        let taken = std::thread::spawn(|| TEST.take().as_ptr() as usize)
            .join()
            .unwrap();
        assert!(blocks.contains(&taken));

        // A thread that only takes hands the rest of its batch back when
        // it exits.
        let shared_before = TEST.lock().len();
        assert!(shared_before > 1);
        let one = std::thread::spawn(|| TEST.take().as_ptr() as usize)
            .join()
            .unwrap();
        assert_eq!(TEST.lock().len(), shared_before - 1);
        // SAFETY: from `take`, holding nothing, given once.
        unsafe { TEST.give(NonNull::new(one as *mut u8).unwrap()) };
    }
}
