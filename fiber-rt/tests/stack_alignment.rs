//! A closure aligned to more than its own size leaves room unused above
//! it when laid at the top of its stack: the room checks count it, so
//! such a closure is refused, or laid inside the stack, never on its guard
//! page or below its base.

use fiber_rt::fiber::Fiber;
use fiber_rt::stack::Stack;

/// A capture aligned to 16 KiB.
#[repr(C, align(16384))]
struct Aligned16k([u8; 16384]);

/// A capture aligned to 64 KiB.
#[repr(C, align(65536))]
struct Aligned64k([u8; 65536]);

#[test]
fn a_fiber_whose_aligned_closure_does_not_fit_is_refused() {
    for guarded in [true, false] {
        // 16 KiB of capture, but the block may start up to 16 KiB lower:
        // on a 64 KiB stack that reaches the base.
        let big = Aligned16k([1; 16384]);
        let stack = Stack::with_guard(64 * 1024, guarded).unwrap();
        let made = Fiber::<(), (), u8>::with_stack(stack, "aligned", move |_, ()| {
            let whole = big;
            whole.0[5]
        });
        let Err(error) = made else {
            panic!("a closure that does not fit was laid out");
        };
        assert!(error.to_string().contains("does not fit"), "{error}");
    }
}

#[test]
fn an_aligned_closure_that_fits_runs() {
    let big = Aligned16k([1; 16384]);
    // Room for the copies of the capture, each aligned, a debug build makes.
    let stack = Stack::new(1 << 20).unwrap();
    let mut fiber = Fiber::<(), (), u8>::with_stack(stack, "aligned", move |_, ()| {
        let whole = big;
        whole.0[5]
    })
    .unwrap();
    assert_eq!(
        fiber.resume(()).unwrap(),
        fiber_rt::fiber::Step::Complete(1)
    );
}

/// Spawns a closure holding `big` with `builder`, on a thread with room
/// for the copies of it a debug build makes.
fn spawn_aligned<T: Send + 'static>(
    rt: fiber_rt::Runtime,
    builder: fiber_rt::FiberBuilder,
    big: impl FnOnce() -> T + Send + 'static,
    byte: fn(&T) -> u8,
) -> std::thread::Result<Result<u8, String>> {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let big = big();
            let handle = builder
                .spawn_on(&rt, move || {
                    let whole = &big;
                    byte(whole)
                })
                .unwrap();
            handle.join().map_err(|e| e.to_string())
        })
        .unwrap()
        .join()
}

#[test]
fn a_spawned_aligned_closure_runs_inside_its_stack() {
    let rt = fiber_rt::Runtime::new().unwrap();
    // Room for the copies of the capture a debug build makes on the fiber.
    let builder = fiber_rt::FiberBuilder::new().stack_size(4 << 20);
    let big = || Aligned16k([3; 16384]);
    assert_eq!(
        spawn_aligned(rt, builder, big, |big| big.0[9]).unwrap(),
        Ok(3)
    );
}

#[test]
fn a_spawned_aligned_closure_too_big_for_its_stack_is_refused() {
    // Its block, with the room its alignment may leave above it, takes
    // 256 KiB: more than the default stack holds.
    let rt = fiber_rt::Runtime::new().unwrap();
    let big = || Aligned64k([3; 65536]);
    let builder = fiber_rt::FiberBuilder::new();
    let payload = spawn_aligned(rt, builder, big, |big| big.0[9]).unwrap_err();
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .unwrap_or_default();
    assert!(message.contains("does not fit"), "{message}");
}

#[test]
fn a_spawned_closure_too_big_for_its_stack_is_an_error_not_a_panic() {
    // 6000 bytes of capture leave too little of a 16 KiB stack (12 KiB
    // usable) to run on: `FiberBuilder::spawn_on` says so with an error,
    // as `Fiber::with_stack` does, and the runtime goes on.
    let rt = fiber_rt::Builder::new().workers(1).build().unwrap();
    let big = [7u8; 6000];
    let spawned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        fiber_rt::FiberBuilder::new()
            .stack_size(16 << 10)
            .spawn_on(&rt, move || big[5])
    }));
    let Ok(spawned) = spawned else {
        panic!("FiberBuilder::spawn_on panicked instead of returning an error");
    };
    let Err(error) = spawned else {
        panic!("a closure that does not fit its stack was spawned");
    };
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("does not fit"), "{error}");
    // The same closure on a stack with room for it runs.
    let handle = fiber_rt::FiberBuilder::new()
        .stack_size(1 << 20)
        .spawn_on(&rt, move || big[5])
        .unwrap();
    assert_eq!(handle.join().unwrap(), 7);
}
