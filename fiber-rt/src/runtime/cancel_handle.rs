//! [`CancelHandle`]: cancels a fiber from anywhere, while its
//! `JoinHandle` stays with whoever joins it.

use std::fmt;

use crate::sched::task_ref::TaskRef;

/// Cancels one fiber, as [`JoinHandle::cancel`](super::JoinHandle::cancel)
/// does, without the right to join it: cloneable and `Send`, for a
/// supervisor, a time-out or a signal handler's fiber to stop a fiber
/// whose handle another fiber waits on (a `join` takes its handle, and a
/// `JoinSet`'s owner may be waiting in `join_next`). Got from
/// [`JoinHandle::cancel_handle`](super::JoinHandle::cancel_handle) or
/// [`JoinSet::cancel_handle`](super::JoinSet::cancel_handle).
///
/// It keeps the fiber's control block (a few hundred bytes, not its
/// stack) for as long as it lives, and through it the runtime's shared
/// state (not its threads), as a `JoinHandle` does.
///
/// ```
/// use std::time::Duration;
///
/// let rt = fiber_rt::Runtime::new().unwrap();
/// rt.block_on(|| {
///     let (_tx, rx) = fiber_rt::sync::mpsc::unbounded::<u32>();
///     let waiting = fiber_rt::spawn(move || rx.recv());
///     let stop = waiting.cancel_handle();
///     let supervisor = fiber_rt::spawn(move || {
///         fiber_rt::sleep(Duration::from_millis(1));
///         stop.cancel();
///     });
///     // The join waits while another fiber cancels.
///     assert!(waiting.join().unwrap_err().is_cancelled());
///     supervisor.join().unwrap();
/// });
/// ```
#[derive(Clone)]
pub struct CancelHandle {
    task: TaskRef,
}

impl CancelHandle {
    pub(super) fn new(task: TaskRef) -> Self {
        CancelHandle { task }
    }

    /// Cancels the fiber: see [`JoinHandle::cancel`](super::JoinHandle::cancel).
    /// Does nothing to a fiber that has finished.
    pub fn cancel(&self) {
        self.task.cancel();
    }

    /// Whether the fiber has finished.
    pub fn is_finished(&self) -> bool {
        self.task.join.is_complete()
    }

    /// The fiber's id, unique in the process.
    pub fn id(&self) -> u64 {
        self.task.id
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelHandle")
            .field("id", &self.id())
            .field("finished", &self.is_finished())
            .finish()
    }
}
