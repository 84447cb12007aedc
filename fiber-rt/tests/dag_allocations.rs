//! How many heap allocations one run of a `depends!` graph makes, counted
//! by a global allocator of this test binary's own: once the runtime is
//! warm, a run allocates its shared state (with the output slots and the
//! counters in it), and nothing else.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use fiber_rt::{depends, fiber, Builder};

/// The system allocator, counting the allocations made through it.
struct Counting;

/// Allocations (and reallocations) made so far, by every thread.
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Relaxed: a tally read after the runs, which the runtime orders.
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Relaxed: as in `alloc`.
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `realloc` is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    // Relaxed: see `ALLOCATIONS`.
    ALLOCATIONS.load(Ordering::Relaxed)
}

#[fiber]
fn seed() -> u64 {
    3
}

#[fiber]
fn left(x: &u64) -> u64 {
    x + 1
}

#[fiber]
fn right(x: &u64) -> u64 {
    x * 2
}

#[fiber]
fn join(a: &u64, b: &u64) -> u64 {
    a + b
}

depends! {
    /// A fork and a join: the run queues a node, so it uses a lane.
    graph Fork {
        left(seed);
        right(seed);
        join(left, right);
    }
}

/// Allocations per run of `Fork` from a fiber on a single worker, which
/// runs every node itself: the fewest over a few batches, so that a stray
/// allocation elsewhere in the process does not count.
fn allocations_per_run() -> usize {
    const RUNS: usize = 200;
    let rt = Builder::new().workers(1).build().unwrap();
    rt.block_on(|| {
        // Warm up: deques and fiber stacks the runs reuse.
        for _ in 0..RUNS {
            assert_eq!(fiber_rt::run(Fork).unwrap().join, 10);
        }
        (0..5)
            .map(|_| {
                let before = allocations();
                for _ in 0..RUNS {
                    assert_eq!(fiber_rt::run(Fork).unwrap().join, 10);
                }
                (allocations() - before).div_ceil(RUNS)
            })
            .min()
            .unwrap()
    })
}

#[test]
fn a_static_run_allocates_its_shared_state_only() {
    assert_eq!(allocations_per_run(), 1);
}
