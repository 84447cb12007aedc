//! `JoinHandle`: waiting for a fiber's result, and `JoinError`: why there
//! is none.

use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use crate::fiber::panic_message;
use crate::sched::task::Task;
use crate::sched::Cancelled;
use crate::sync::oneshot;

/// Owns the right to wait for a fiber's result. Dropping it detaches the
/// fiber, which runs on.
pub struct JoinHandle<T> {
    rx: oneshot::Receiver<Result<T, JoinError>>,
    id: u64,
    name: Option<Arc<str>>,
}

/// Why a fiber has no result.
pub struct JoinError {
    id: u64,
    name: Option<Arc<str>>,
    kind: Kind,
}

enum Kind {
    Panicked(Box<dyn Any + Send + 'static>),
    Cancelled,
}

impl<T> JoinHandle<T> {
    /// Waits for the fiber to finish: parks the caller if it is a fiber,
    /// blocks it if it is a plain thread.
    pub fn join(self) -> Result<T, JoinError> {
        match self.rx.recv_ref() {
            Ok(result) => result,
            // The fiber was dropped without running to completion.
            Err(oneshot::RecvError) => Err(JoinError {
                id: self.id,
                name: self.name.clone(),
                kind: Kind::Cancelled,
            }),
        }
    }

    /// Whether the fiber has finished (so `join` would not wait).
    pub fn is_finished(&self) -> bool {
        self.rx.is_ready()
    }

    /// The fiber's id, unique within its runtime.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The fiber's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl JoinError {
    /// Whether the fiber panicked (rather than being cancelled at shutdown).
    pub fn is_panic(&self) -> bool {
        matches!(self.kind, Kind::Panicked(_))
    }

    /// Whether the runtime shut down before the fiber finished.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.kind, Kind::Cancelled)
    }

    /// The panic message, when the payload is a string.
    pub fn panic_message(&self) -> Option<&str> {
        match &self.kind {
            Kind::Panicked(p) => panic_message(p.as_ref()),
            Kind::Cancelled => None,
        }
    }

    /// The panic payload, to resume the panic with
    /// `std::panic::resume_unwind`.
    pub fn into_panic(self) -> Option<Box<dyn Any + Send + 'static>> {
        match self.kind {
            Kind::Panicked(p) => Some(p),
            Kind::Cancelled => None,
        }
    }

    /// The id of the fiber.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The fiber's name, or `fiber-<id>`.
    pub fn fiber_name(&self) -> String {
        match &self.name {
            Some(n) => n.to_string(),
            None => format!("fiber-{}", self.id),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.fiber_name();
        match &self.kind {
            Kind::Panicked(_) => match self.panic_message() {
                Some(msg) => write!(f, "fiber '{name}' panicked: {msg}"),
                None => write!(f, "fiber '{name}' panicked"),
            },
            Kind::Cancelled => write!(
                f,
                "fiber '{name}' was cancelled: its runtime shut down first"
            ),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JoinError({self})")
    }
}

impl std::error::Error for JoinError {}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish()
    }
}

/// Wraps `f` so that its result, panic or cancellation reaches the handle
/// through `tx`.
pub(crate) fn wrap<F, T>(tx: oneshot::Sender<Result<T, JoinError>>, f: F) -> impl FnOnce() + Send
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    move || {
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        let task = Task::current().expect("a spawned closure runs on its fiber");
        let (id, name) = (task.id, task.name.clone());
        let result = result.map_err(|payload| {
            let kind = if payload.is::<Cancelled>() {
                Kind::Cancelled
            } else {
                Kind::Panicked(payload)
            };
            JoinError { id, name, kind }
        });
        let _ = tx.send(result);
    }
}

/// The handle for `task`, whose wrapped closure sends on `rx`'s channel.
pub(crate) fn handle<T>(
    rx: oneshot::Receiver<Result<T, JoinError>>,
    id: u64,
    name: Option<Arc<str>>,
) -> JoinHandle<T> {
    JoinHandle { rx, id, name }
}
