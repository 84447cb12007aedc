//! fiber-rt: stackful fibers on their own stacks, switched by a few lines
//! of assembly, scheduled by work stealing across worker threads.
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

pub mod dag;
pub mod debug;
pub mod fiber;
pub mod local;
pub mod net;
pub mod preempt;
mod runtime;
pub(crate) mod sched;
pub mod stack;
pub mod sync;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use fiber_macros::{depends, fiber};
pub use runtime::{
    current, run, scope, sleep, sleep_until, spawn, spawn_blocking, yield_now, BlockingHandle,
    Builder, CurrentFiber, FiberBuilder, JoinError, JoinHandle, Metrics, Runtime, Scope,
    ScopedJoinHandle, WorkerMetrics,
};
