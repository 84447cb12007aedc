//! fiber-rt: stackful fibers on their own stacks, switched by a few lines
//! of assembly, scheduled by work stealing across worker threads, and
//! preempted, so that a fiber spinning in a loop cannot starve the others.
//!
//! Mark ordinary functions [`#[fiber]`](macro@fiber) and say which feeds which
//! with [`depends!`]: the graph is checked at compile time (a cycle, an
//! unknown fiber, an output that does not fit its parameter are compile
//! errors) and laid out in static memory, and [`Runtime::run`] runs it,
//! each node a fiber, with a typed field per node in its output:
//!
//! ```
//! use fiber_rt::{depends, fiber, Runtime};
//!
//! #[fiber]
//! fn load() -> Vec<u64> { (1..=100).collect() }
//! #[fiber]
//! fn sum(xs: &[u64]) -> u64 { xs.iter().sum() }
//! #[fiber]
//! fn max(xs: &[u64]) -> u64 { xs.iter().copied().max().unwrap_or(0) }
//!
//! depends! {
//!     graph Stats {
//!         sum(load);
//!         max(load);
//!     }
//! }
//!
//! let out = Runtime::new().unwrap().run(Stats).unwrap();
//! assert_eq!((out.sum, out.max), (5050, 100));
//! ```
//!
//! Graphs whose shape depends on data are built at run time with
//! [`dag::GraphBuilder`]. Beside graphs it is a complete fiber runtime:
//! [`spawn`], [`JoinHandle::join`], [`yield_now`], [`sleep`], [`scope`],
//! [`timeout`], [`spawn_blocking`], fiber-local values ([`fiber_local!`]),
//! fiber-aware locks and channels in [`sync`], sockets in [`net`], other
//! descriptors through [`io::Fd`], child processes in [`process`] and Unix
//! signals in [`signal`], whose waits park the fiber, never its worker
//! thread:
//!
//! ```
//! use fiber_rt::{sync::mpsc, Runtime};
//!
//! let rt = Runtime::new().unwrap();
//! let total = rt.block_on(|| {
//!     let (tx, rx) = mpsc::bounded(16);
//!     for id in 0..4u64 {
//!         let tx = tx.clone();
//!         fiber_rt::spawn(move || {
//!             for i in 0..100 {
//!                 tx.send(id * 1000 + i).unwrap();
//!             }
//!         });
//!     }
//!     drop(tx);
//!     rx.iter().count()
//! });
//! assert_eq!(total, 400);
//! ```
//!
//! [`#[fiber_rt::main]`](macro@main) writes that setup for a program: it
//! builds a runtime and runs `main`'s body on it as a fiber, and
//! [`#[fiber_rt::test]`](macro@test) does the same for a test (with two
//! workers unless `workers = N` says otherwise). What the function
//! returns (a `Result`, say) is reported by the fiber as std reports what
//! `main` returns, so an error type need not be `Send`:
//!
//! ```
//! #[fiber_rt::main(workers = 2)]
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     assert!(fiber_rt::current().is_some()); // the body is a fiber
//!     let n: u64 = "6".parse()?;
//!     assert_eq!(fiber_rt::spawn(move || n * 7).join()?, 42);
//!     Ok(())
//! }
//! ```

pub mod dag;
pub mod debug;
pub mod fiber;
pub mod io;
pub mod local;
pub mod net;
pub mod preempt;
pub mod process;
mod runtime;
pub(crate) mod sched;
pub mod signal;
pub mod stack;
pub mod sync;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use fiber_macros::{depends, fiber, main, test};
pub use runtime::{
    block_on_future, current, interval, interval_at, run, run_traced, scope, sleep, sleep_until,
    spawn, spawn_blocking, timeout, timeout_at, yield_now, BlockingHandle, Builder, CancelHandle,
    CurrentFiber, Elapsed, EnterGuard, FiberBuilder, Handle, Interval, JoinError, JoinHandle,
    JoinSet, JoinSetTimeout, Metrics, Runtime, Scope, ScopedJoinHandle, WorkerMetrics,
};
