//! `#[fiber_rt::test]` (and the `#[fiber_rt::main]` it shares its
//! expansion with): the body runs as a fiber on a runtime of its own, with
//! the options' worker count and stack size; a panic, a returned `Result`
//! and the test attributes beside it behave as in a plain `#[test]`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[fiber_rt::test]
fn the_body_runs_on_a_fiber() {
    let me = fiber_rt::current().expect("the body is a fiber");
    // A fiber of its runtime: it spawns and joins there.
    let other = fiber_rt::spawn(|| fiber_rt::current().unwrap().id);
    assert_ne!(other.join().unwrap(), me.id);
}

/// The worker threads' names (`fiber-worker-N` unless a builder says
/// otherwise) that fibers of the caller's runtime ran on, batch after
/// batch, until `want` of them have shown up or a few seconds have passed.
/// Each fiber blocks its thread a moment, so the ones queued behind it are
/// stolen by the other workers.
fn worker_threads(want: usize) -> BTreeSet<String> {
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut rounds = 0;
    while rounds < 5 || (seen.lock().unwrap().len() < want && Instant::now() < deadline) {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let seen = seen.clone();
                fiber_rt::spawn(move || {
                    std::thread::sleep(Duration::from_micros(200));
                    let name = std::thread::current().name().unwrap_or("").to_owned();
                    seen.lock().unwrap().insert(name);
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        rounds += 1;
    }
    let seen = seen.lock().unwrap().clone();
    seen
}

#[fiber_rt::test(workers = 3)]
fn workers_sets_the_worker_count() {
    let names = worker_threads(3);
    let want: BTreeSet<String> = (0..3).map(|i| format!("fiber-worker-{i}")).collect();
    assert_eq!(names, want);
}

#[fiber_rt::test]
fn a_test_gets_two_workers_by_default() {
    let names = worker_threads(2);
    let want: BTreeSet<String> = (0..2).map(|i| format!("fiber-worker-{i}")).collect();
    assert_eq!(names, want);
}

/// A 1 MiB array on the stack: the default 256 KiB stack would overflow
/// (and abort the test binary), the 4 MiB one asked for holds it.
#[fiber_rt::test(stack = "4 MiB")]
fn stack_sets_the_fibers_stack_size() {
    let buffer = std::hint::black_box([7u8; 1 << 20]);
    assert_eq!(buffer.iter().map(|&b| u64::from(b)).sum::<u64>(), 7 << 20);
}

#[fiber_rt::test]
#[should_panic(expected = "a panic on the fiber")]
fn a_panic_in_the_body_fails_the_test() {
    assert!(fiber_rt::current().is_some());
    panic!("a panic on the fiber");
}

#[fiber_rt::test]
fn a_test_may_return_a_result() -> Result<(), std::num::ParseIntError> {
    let n: u32 = "42".parse()?;
    assert_eq!(n, 42);
    Ok(())
}

/// Run only by the test below, which expects its failure: `#[ignore]` is
/// kept beside the emitted `#[test]`.
#[fiber_rt::test]
#[ignore = "fails on purpose; called by `an_err_returned_by_the_body_is_the_result`"]
fn returns_an_err() -> Result<(), String> {
    let on_a_fiber = fiber_rt::current().is_some();
    Err(format!("on a fiber: {on_a_fiber}"))
}

/// The fiber reports what the body returns, as std reports what `main`
/// returns (an `Err` on standard error), and the function returns the
/// exit code: so the error type need not be `Send` (`Box<dyn Error>` is
/// not, nor is an `Rc`).
#[test]
fn an_err_returned_by_the_body_is_a_failing_exit_code() {
    assert!(fiber_rt::current().is_none());
    assert_eq!(returns_an_err(), std::process::ExitCode::FAILURE);
    assert_eq!(returns_an_rc(), std::process::ExitCode::FAILURE);
    assert_eq!(returns_ok(), std::process::ExitCode::SUCCESS);
}

#[fiber_rt::test]
#[ignore = "fails on purpose; called by `an_err_returned_by_the_body_is_a_failing_exit_code`"]
fn returns_an_rc() -> Result<(), Box<dyn std::error::Error>> {
    let not_send = std::rc::Rc::new(7);
    Err(format!("an error made beside an Rc of {not_send}").into())
}

#[fiber_rt::test]
#[ignore = "called by `an_err_returned_by_the_body_is_a_failing_exit_code`"]
fn returns_ok() -> Result<(), Box<dyn std::error::Error>> {
    Ok(())
}

/// What the attributes expand to panics, naming the attribute and with the
/// error, when the runtime cannot be built. (The attributes refuse
/// `workers = 0` while compiling; a builder can still fail when the
/// program starts, at a thread's spawn, say.)
#[test]
#[should_panic(
    expected = "#[fiber_rt::main]: could not build the runtime: a runtime needs at least one worker"
)]
fn a_runtime_that_cannot_be_built_is_a_panic_that_says_so() {
    let builder = fiber_rt::Builder::new().workers(0);
    fiber_rt::__private::entry(builder, "#[fiber_rt::main]", || ());
}
