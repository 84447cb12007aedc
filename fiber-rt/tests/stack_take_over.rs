//! A fiber that has not run yet takes over the stack of the fiber that
//! finished just before it on its worker: it gets the room its stack size
//! promises, it is named in messages about the stack, and it behaves like
//! any fiber under panics, parks, yields, sleeps, nested spawns and
//! preemption. The overflow tests run in a child process (they abort it).

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fiber_rt::{Builder, FiberBuilder};

/// The runtime's default stack size.
const STACK: usize = 256 * 1024;

/// Bytes of stack left below the caller's frame (default stack, guarded).
#[inline(never)]
fn room() -> usize {
    let x = 0u8;
    let addr = std::hint::black_box(&x) as *const u8 as usize;
    let base = addr & !(STACK - 1);
    addr - base - 4096
}

/// Runs `f` on `rt` in a fiber with a stack of 4 MiB: room for the copies
/// of a large closure that a debug build makes while spawning it.
fn on_big_stack<T: Send + 'static>(
    rt: &fiber_rt::Runtime,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    FiberBuilder::new()
        .stack_size(4 << 20)
        .spawn_on(rt, f)
        .unwrap()
        .join()
        .unwrap()
}

/// A fiber after one whose 8 KiB closure was laid on its stack at spawn
/// has (nearly) the room of a fresh stack: that stack is not taken over
/// (it would have lost the closure's room and more, the copies its first
/// frames hold).
#[test]
fn a_fiber_after_one_with_a_large_closure_has_the_room_of_a_fresh_stack() {
    // A long slice: no preemption reorders the fibers.
    let rt = Builder::new()
        .workers(1)
        .time_slice(Duration::from_millis(500))
        .build()
        .unwrap();
    let (fresh, after_small, after_big) = on_big_stack(&rt, || {
        let fresh = fiber_rt::spawn(room).join().unwrap();
        // A few times: a finish that falls on the worker's periodic look
        // at the global queue (one scheduling decision in 61) goes through
        // the scheduler loop, and the next fiber gets a fresh stack.
        let after_small: Vec<usize> = (0..5)
            .map(|_| {
                let small = fiber_rt::spawn(|| 1u8);
                let next = fiber_rt::spawn(room);
                small.join().unwrap();
                next.join().unwrap()
            })
            .collect();
        let big = [7u8; 8 * 1024];
        let large = fiber_rt::spawn(move || std::hint::black_box(big)[100]);
        let next = fiber_rt::spawn(room);
        large.join().unwrap();
        (fresh, after_small, next.join().unwrap())
    });
    // After a small closure the stack was taken over: a little less room.
    assert!(
        after_small.iter().any(|&room| room < fresh)
            && after_small.iter().all(|&room| fresh - room < 1024),
        "fresh {fresh}, after a small closure {after_small:?}"
    );
    assert!(
        fresh - after_big < 1024,
        "fresh {fresh}, after a large closure {after_big}"
    );
}

fn is_child(name: &str) -> bool {
    std::env::var("FIBER_CHILD").as_deref() == Ok(name)
}

/// Uses `bytes` of stack below the caller, in frames of 1 KiB.
#[inline(never)]
fn use_stack(bytes: usize) -> u64 {
    let start = room();
    down(start, bytes)
}

#[inline(never)]
fn down(start: usize, bytes: usize) -> u64 {
    let frame = std::hint::black_box([bytes as u64; 128]);
    if start.saturating_sub(room()) >= bytes {
        return frame[0];
    }
    down(start, bytes) + std::hint::black_box(frame)[1]
}

/// An overflow in a fiber that took over the stack of another names the
/// fiber that overflowed, with or without a name.
#[test]
fn an_overflow_after_a_take_over_names_the_fiber_that_overflowed() {
    const NAME: &str = "an_overflow_after_a_take_over_names_the_fiber_that_overflowed";
    if is_child(NAME) {
        let named = std::env::var("FIBER_NAMED").is_ok();
        let rt = Builder::new().workers(1).build().unwrap();
        rt.block_on(move || {
            let first = FiberBuilder::new().name("first").spawn(|| 1).unwrap();
            let second = if named {
                FiberBuilder::new().name("second")
            } else {
                FiberBuilder::new()
            };
            let second = second.spawn(|| use_stack(10 << 20)).unwrap();
            eprintln!("second is fiber-{}", second.id());
            first.join().unwrap();
            second.join().unwrap();
        });
        return;
    }
    for named in [true, false] {
        let mut child = Command::new(std::env::current_exe().unwrap());
        child
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env("FIBER_CHILD", NAME);
        if named {
            child.env("FIBER_NAMED", "1");
        }
        let out = child.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // An unnamed fiber is named by its id, as in its `JoinError`.
        let expected = match named {
            true => "fiber 'second' has overflowed".to_owned(),
            false => {
                let id = stderr
                    .split("second is fiber-")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .unwrap_or_else(|| panic!("no id printed; stderr: {stderr}"));
                format!("fiber 'fiber-{id}' has overflowed")
            }
        };
        assert!(stderr.contains(&expected), "stderr: {stderr}");
    }
}

#[inline(never)]
fn spin_no_probe(ms: u64) {
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(ms) {
        std::hint::spin_loop();
    }
}

/// Many batches: panics, parks, yields, sleeps, spinning without probes
/// (backstop), names; two workers, short slices.
#[test]
fn batches_with_panics_parks_yields_sleeps_nested_spawns_and_preemption() {
    let rt = Builder::new()
        .workers(2)
        .time_slice(Duration::from_millis(1))
        .build()
        .unwrap();
    let total = Arc::new(AtomicU64::new(0));
    let t2 = total.clone();
    let rounds = if cfg!(debug_assertions) { 30 } else { 150 };
    rt.block_on(move || {
        for round in 0..rounds {
            let handles: Vec<_> = (0..64u64)
                .map(|i| {
                    let total = t2.clone();
                    let b = if i % 2 == 0 {
                        FiberBuilder::new().name(format!("r{round}-{i}"))
                    } else {
                        FiberBuilder::new()
                    };
                    b.spawn(move || {
                        let me = fiber_rt::current().unwrap();
                        if i % 2 == 0 {
                            assert_eq!(me.name.as_deref(), Some(&*format!("r{round}-{i}")));
                        } else {
                            assert!(me.name.is_none());
                        }
                        match i % 8 {
                            0 => panic!("boom {i}"),
                            1 => fiber_rt::yield_now(),
                            2 => fiber_rt::sleep(Duration::from_micros(50)),
                            3 if round % 3 == 0 => spin_no_probe(4),
                            4 => {
                                let inner: Vec<_> =
                                    (0..4).map(|j| fiber_rt::spawn(move || j)).collect();
                                for h in inner {
                                    h.join().unwrap();
                                }
                            }
                            5 => {
                                let x = std::hint::black_box([i; 256]);
                                assert_eq!(x[255], i);
                            }
                            _ => {}
                        }
                        let me2 = fiber_rt::current().unwrap();
                        assert_eq!(me.id, me2.id);
                        total.fetch_add(1, Ordering::Relaxed);
                        i
                    })
                    .unwrap()
                })
                .collect();
            for (i, h) in handles.into_iter().enumerate() {
                let r = h.join();
                if i % 8 == 0 {
                    assert!(r.unwrap_err().is_panic());
                } else {
                    assert_eq!(r.unwrap(), i as u64);
                }
            }
        }
    });
    let m = rt.metrics();
    assert_eq!(m.live, 0, "{m:?}");
    assert_eq!(total.load(Ordering::Relaxed), rounds * 56);
}

/// The MXCSR control bits and the x87 control word, as the caller sees them.
#[cfg(feature = "fp-control")]
fn control_words() -> (u32, u16) {
    let mut mxcsr = 0u32;
    let mut cw = 0u16;
    // SAFETY: stores the two control registers into valid locals.
    unsafe {
        std::arch::asm!(
            "stmxcsr [{m}]",
            "fnstcw [{c}]",
            m = in(reg) &mut mxcsr,
            c = in(reg) &mut cw,
            options(nostack, preserves_flags),
        )
    };
    (mxcsr & 0xFFC0, cw) // the control bits, not the sticky flags
}

/// Sets round-toward-zero with flush-to-zero in MXCSR, and round-toward-zero
/// in the x87 control word.
#[cfg(feature = "fp-control")]
fn set_round_toward_zero() {
    let mxcsr: u32 = 0xFF80;
    let cw: u16 = 0x0F7F;
    // SAFETY: loads the two control registers from valid locals; no
    // floating-point code runs in this fiber afterwards.
    unsafe {
        std::arch::asm!(
            "ldmxcsr [{m}]",
            "fldcw [{c}]",
            m = in(reg) &mxcsr,
            c = in(reg) &cw,
            options(nostack, readonly, preserves_flags),
        )
    };
}

/// A fiber that changed its rounding modes and finished leaves them behind:
/// the fiber that takes its stack over starts with the ABI's defaults, as
/// on a fresh stack. Only with `fp-control`: without it the control words
/// are the thread's, and Rust code never changes them.
#[cfg(feature = "fp-control")]
#[test]
fn a_fiber_that_takes_over_a_stack_starts_with_the_default_float_modes() {
    let rt = Builder::new()
        .workers(1)
        .time_slice(Duration::from_millis(500))
        .build()
        .unwrap();
    let (fresh, (modes, room_left)) = rt.block_on(|| {
        let fresh = fiber_rt::spawn(room).join().unwrap();
        let first = fiber_rt::spawn(set_round_toward_zero);
        let second = fiber_rt::spawn(|| (control_words(), room()));
        first.join().unwrap();
        (fresh, second.join().unwrap())
    });
    assert!(room_left < fresh, "the second fiber took the stack over");
    assert_eq!(modes, (0x1F80, 0x037F));
}
