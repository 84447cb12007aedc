//! Synchronisation that parks the waiting fiber, never the worker thread
//! under it. Everything here also works from plain threads, which block.
//!
//! The channels, by who gets what:
//!
//! - [`mpsc`]: many senders, one receiver.
//! - [`mpmc`]: many senders, many receivers; each message goes to one.
//! - [`oneshot`]: one value, sent once.
//! - [`watch`]: one value kept up to date; receivers see the latest, and
//!   can wait for it to change.
//! - [`broadcast`]: every message to every receiver, from a bounded ring.
//!
//! [`Select`] waits on several receivers of any of these kinds, on
//! [signal listeners](crate::signal::Signal), and on fibers'
//! [`JoinHandle`](crate::JoinHandle)s.

pub mod broadcast;
mod channel_error;
mod condvar;
pub mod mpmc;
pub mod mpsc;
mod mutex;
mod notify;
mod once;
pub mod oneshot;
mod queue;
mod rwlock;
mod rwlock_owned;
pub(crate) mod select;
mod semaphore;
mod wait_group;
pub(crate) mod waiter;
pub mod watch;

pub use condvar::{Condvar, WaitTimeoutResult};
pub use mutex::{Mutex, MutexGuard, OwnedMutexGuard};
pub use notify::{Listener, Notify};
pub use once::{LazyLock, OnceLock};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use rwlock_owned::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard};
pub use select::{Select, Selectable};
pub use semaphore::{OwnedSemaphorePermit, Semaphore, SemaphorePermit, MAX_PERMITS};
pub use wait_group::{Barrier, BarrierWaitResult, WaitGroup};
