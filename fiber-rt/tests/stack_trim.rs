//! After a burst of fibers with deep stacks, the stacks left idle in the
//! global pool give their memory back to the kernel: the process's
//! resident memory falls again, with no call of the user's. A test binary
//! of its own: resident memory and the pool are the process's.

use std::time::{Duration, Instant};

use fiber_rt::stack::pool_stats;
use fiber_rt::Builder;

mod common;
use common::{deep_stack_burst, dig};

/// Resident memory of this process, in bytes.
fn resident() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize
}

#[test]
fn idle_stacks_give_their_memory_back_after_a_burst() {
    const FIBERS: usize = 1000;
    const DEPTH_KIB: usize = 128;
    let rt = Builder::new().workers(2).build().unwrap();
    let before = resident();
    // All alive at once, each with 128 KiB of its 256 KiB stack touched.
    deep_stack_burst(&rt, FIBERS, 256 << 10, DEPTH_KIB);
    let burst = resident();
    assert!(
        burst > before + (100 << 20),
        "the burst should have touched over 100 MiB: {} MiB before, {} MiB after",
        before >> 20,
        burst >> 20
    );
    // Each worker keeps up to 64 stacks warm in its cache; the others went
    // to the global pool, whose idle stacks are trimmed within a few of
    // the monitor's periods (512 a pass at most).
    let deadline = Instant::now() + Duration::from_secs(30);
    let start = Instant::now();
    while pool_stats().trimmed < (FIBERS - 2 * 64) as u64 {
        assert!(
            Instant::now() < deadline,
            "stacks not trimmed after 30 s: {:?}",
            pool_stats()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = resident();
    eprintln!(
        "resident: {} MiB before, {} MiB at the burst, {} MiB {:?} later ({:?})",
        before >> 20,
        burst >> 20,
        after >> 20,
        start.elapsed(),
        pool_stats()
    );
    assert!(
        after + (50 << 20) < burst,
        "resident memory did not fall: {} MiB at the burst, {} MiB after trimming ({:?})",
        burst >> 20,
        after >> 20,
        pool_stats()
    );
    // Trimmed stacks serve fibers again, zeroed pages and all.
    let again = rt.spawn(|| dig(DEPTH_KIB));
    assert_eq!(again.join().unwrap(), 0);
}
