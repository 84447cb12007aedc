//! `timeout`: runs a closure for at most a given time, on a scoped fiber
//! that is cancelled, and waited for, once the time is up.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use super::scope::scope_on;
use crate::sched::task::Task;
use crate::sync::waiter::deadline_after;

/// [`timeout`]'s error: the deadline passed before the closure finished
/// (or the runtime's shutdown came first), and the closure's fiber was
/// cancelled and has unwound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for io::Error {
    /// An error of kind [`TimedOut`](io::ErrorKind::TimedOut).
    fn from(elapsed: Elapsed) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, elapsed)
    }
}

/// Runs `f` and returns its value, if it finishes within `duration`;
/// otherwise cancels it and returns [`Elapsed`] once it has unwound.
///
/// `f` runs on a fiber of its own, scoped to this call as a fiber spawned
/// on a [`scope`](super::scope()) is: it may borrow from the caller, and it
/// has finished, or unwound (its destructors run, its locks released),
/// whenever `timeout` returns, so nothing it borrowed is still in use. At
/// the deadline its fiber is cancelled as
/// [`JoinHandle::cancel`](super::JoinHandle::cancel) does: it unwinds
/// from its next switch point (a park, a yield, a probe past its time
/// slice), woken first if it waits (for a lock, a message, a sleep, the
/// end of a [`scope`](super::scope()), whose fibers are cancelled with
/// it). The caller waits for that unwinding, for as long as it takes:
/// code that reaches no switch point (a loop without probes, a blocking
/// call) runs on, and `timeout` returns when it does reach one, or with
/// its value if it finishes first. A value `f` returned is never lost,
/// even one that came after the deadline but before the cancellation
/// reached it; a deadline that passes before `f`'s fiber has started
/// means `f` never runs (it is dropped unrun).
///
/// If the caller is cancelled while it waits (by its handle, or by the
/// runtime's shutdown), `f`'s fiber is cancelled too, and the caller goes
/// on unwinding once `f` has unwound. A shutdown that cancels `f` while
/// the caller goes on (the caller is a destructor of a fiber the shutdown
/// unwinds, say) makes `timeout` return `Err(Elapsed)`, deadline or not:
/// `f` was cancelled before it finished, and has unwound.
///
/// What `f` did before the deadline stays done, and what it was in the
/// middle of is unwound, as any cancellation unwinds it: bytes a buffered
/// read had taken from its socket and not yet returned are lost with the
/// read. For a read to retry after a time-out, give the socket a read
/// time-out instead (`set_read_timeout`), which fails the read without
/// losing what it had.
///
/// Being another fiber, `f` has fiber-locals of its own (it does not see
/// the caller's), and [`current`](super::current()) tells it its own id.
/// It costs a spawn and a join, and a wake-up of the caller by the
/// runtime's timer if the deadline comes first.
///
/// ```
/// use std::time::Duration;
///
/// let rt = fiber_rt::Runtime::new().unwrap();
/// rt.block_on(|| {
///     let mut log = vec!["start"];
///     let quick = fiber_rt::timeout(Duration::from_secs(10), || {
///         log.push("quick");
///         log.len()
///     });
///     assert_eq!(quick, Ok(2));
///
///     let slow = fiber_rt::timeout(Duration::from_millis(10), || {
///         fiber_rt::sleep(Duration::from_secs(3600)); // cancelled here
///         log.push("slow");
///     });
///     assert_eq!(slow, Err(fiber_rt::Elapsed));
///     log.push("end"); // `log` is ours again
///     assert_eq!(log, ["start", "quick", "end"]);
/// });
/// ```
///
/// # Panics
///
/// If called outside a fiber (from a plain thread, run it in
/// [`Runtime::block_on`](super::Runtime::block_on)). If `f` panics, the
/// panic is resumed in the caller, with its payload. If `f`'s fiber never
/// ran because no stack could be had for it, with the
/// [`JoinError`](super::JoinError) that says so.
pub fn timeout<F, T>(duration: Duration, f: F) -> Result<T, Elapsed>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    run_until("timeout", deadline_after(duration), f)
}

/// [`timeout`] with a deadline: runs `f` and returns its value if it
/// finishes by `deadline`; otherwise cancels it and returns [`Elapsed`]
/// once it has unwound. A deadline that has passed gives `f` no time: it
/// runs only if its fiber has started by the time the caller looks, which
/// it usually has not.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let rt = fiber_rt::Runtime::new().unwrap();
/// rt.block_on(|| {
///     let deadline = Instant::now() + Duration::from_millis(20);
///     let mut ticks = 0;
///     let ticking: Result<(), _> = fiber_rt::timeout_at(deadline, || loop {
///         fiber_rt::sleep(Duration::from_millis(1)); // cancelled here
///         ticks += 1;
///     });
///     assert_eq!(ticking, Err(fiber_rt::Elapsed));
///     println!("{ticks} ticks by the deadline");
///     assert!(Instant::now() >= deadline);
/// });
/// ```
///
/// # Panics
///
/// As [`timeout`].
pub fn timeout_at<F, T>(deadline: Instant, f: F) -> Result<T, Elapsed>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    run_until("timeout_at", deadline, f)
}

/// Runs `f` as a scoped fiber, cancelled at `deadline`; `what` names the
/// public function for the message of a call off a fiber.
fn run_until<F, T>(what: &str, deadline: Instant, f: F) -> Result<T, Elapsed>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let Some(task) = Task::current() else {
        panic!(
            "fiber_rt::{what} was called outside a fiber: call it from a fiber \
             (from a plain thread, inside Runtime::block_on)"
        );
    };
    // The scope waits for the fiber however this ends: in time, after its
    // cancellation, or on an unwind of the caller's wait. A caller
    // cancelled while it waits unwinds out of the join with its
    // cancellation, which the scope catches: it cancels its fibers, waits
    // for them to unwind, and raises the caller's cancellation again.
    scope_on(task.registry.clone(), |s| {
        let handle = s.spawn(f);
        let result = match handle.join_until(deadline) {
            Ok(result) => result,
            Err(handle) => {
                handle.cancel();
                // Waits for the unwinding; a fiber that finished first
                // keeps its value, and one that panicked, its panic.
                handle.join()
            }
        };
        match result {
            Ok(value) => Ok(value),
            Err(e) if e.is_panic() => {
                std::panic::resume_unwind(e.into_panic().expect("a panic has a payload"))
            }
            // By the cancellation above, or by the runtime's shutdown, even
            // before the deadline: never a panic, which in a destructor
            // of a fiber the shutdown unwinds would abort the process.
            Err(e) if e.is_cancelled() => Err(Elapsed),
            // No stack could be had for it.
            Err(e) => panic!("{e}"),
        }
    })
}
