//! Helpers shared by the integration tests. Not every test file that
//! includes this module uses every helper.
#![allow(dead_code)]

/// A tiny xorshift generator, so that a stress test is repeatable from its
/// seed (a seed of zero would stay zero: mix it first).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One worker, and no preemption backstop to rescue it from a call that
/// blocks the thread: a wait that blocked the worker hangs the test
/// instead of passing by luck.
pub fn one_worker() -> fiber_rt::Runtime {
    fiber_rt::Builder::new()
        .workers(1)
        .preempt_signals(false)
        .build()
        .unwrap()
}

/// Joins `handle` from a plain thread. A fiber not done within a minute
/// ends the test binary with an error: its worker may be blocked for good,
/// and then dropping the runtime would hang too.
pub fn join_within_a_minute<T: Send + 'static>(
    handle: fiber_rt::JoinHandle<T>,
) -> Result<T, fiber_rt::JoinError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(handle.join());
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .unwrap_or_else(|_| {
            eprintln!("a fiber did not finish within a minute: its worker is blocked");
            std::process::exit(101)
        })
}

/// Runs `f` on the calling fiber while another fiber of its runtime counts
/// rounds 1 ms apart; returns what `f` returned and the rounds counted
/// meanwhile (none if `f` blocked the thread of a one-worker runtime).
pub fn with_ticker<T>(f: impl FnOnce() -> T) -> (T, usize) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;
    let stop = Arc::new(AtomicBool::new(false));
    let ticks = Arc::new(AtomicUsize::new(0));
    let ticker = fiber_rt::spawn({
        let (stop, ticks) = (stop.clone(), ticks.clone());
        move || {
            while !stop.load(SeqCst) {
                ticks.fetch_add(1, SeqCst);
                fiber_rt::sleep(std::time::Duration::from_millis(1));
            }
        }
    });
    fiber_rt::yield_now(); // the ticker starts
    let before = ticks.load(SeqCst);
    let result = f();
    let during = ticks.load(SeqCst) - before;
    stop.store(true, SeqCst);
    ticker.join().unwrap();
    (result, during)
}

/// Touches `depth` KiB of the stack below this frame.
#[inline(never)]
pub fn dig(depth: usize) -> u8 {
    let mut page = [0u8; 1024];
    std::hint::black_box(&mut page);
    if depth <= 1 {
        page[7]
    } else {
        dig(depth - 1).wrapping_add(page[depth % 1024])
    }
}

/// Runs `fibers` fibers on `rt`, all alive at once (so that each has a
/// stack of its own), each with `stack` bytes of stack of which it touches
/// `depth_kib` KiB; returns once all are done.
pub fn deep_stack_burst(rt: &fiber_rt::Runtime, fibers: usize, stack: usize, depth_kib: usize) {
    let barrier = std::sync::Arc::new(fiber_rt::sync::Barrier::new(fibers + 1));
    let handles: Vec<_> = (0..fibers)
        .map(|_| {
            let barrier = barrier.clone();
            fiber_rt::FiberBuilder::new()
                .stack_size(stack)
                .spawn_on(rt, move || {
                    let byte = dig(depth_kib);
                    barrier.wait();
                    byte
                })
                .unwrap()
        })
        .collect();
    barrier.wait();
    for fiber in handles {
        fiber.join().unwrap();
    }
}
