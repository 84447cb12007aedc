//! Synchronisation that parks the waiting fiber, never the worker thread
//! under it. Everything here also works from plain threads, which block.

pub mod broadcast;
mod channel_error;
mod condvar;
pub mod mpmc;
pub mod mpsc;
mod mutex;
mod once;
pub mod oneshot;
mod queue;
mod rwlock;
mod select;
mod semaphore;
mod wait_group;
pub(crate) mod waiter;
pub mod watch;

pub use condvar::{Condvar, WaitTimeoutResult};
pub use mutex::{Mutex, MutexGuard};
pub use once::{LazyLock, OnceLock};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use select::{Select, Selectable};
pub use semaphore::{OwnedSemaphorePermit, Semaphore, SemaphorePermit, MAX_PERMITS};
pub use wait_group::{Barrier, BarrierWaitResult, WaitGroup};
