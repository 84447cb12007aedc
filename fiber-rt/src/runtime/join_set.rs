//! A set of fibers joined in the order they finish.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use super::{JoinError, JoinHandle};
use crate::sync::mpsc::{self, RecvTimeoutError};

/// Fibers spawned together and joined as each finishes, whichever that is.
///
/// `join_next` parks the caller (or blocks a plain thread) until one of the
/// set's fibers has finished, and returns its result; `None` once the set
/// is empty. Dropping the set cancels the fibers still in it (they unwind
/// from their next switch point), as [`cancel_all`](Self::cancel_all) does:
/// nothing spawned on a set outlives it unnoticed.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let rt = fiber_rt::Runtime::new().unwrap();
/// let order = rt.block_on(|| {
///     let mut set = fiber_rt::JoinSet::new();
///     for ms in [30u64, 10, 20] {
///         set.spawn(move || {
///             fiber_rt::sleep(Duration::from_millis(ms));
///             ms
///         });
///     }
///     let mut order = Vec::new();
///     while let Some(result) = set.join_next() {
///         order.push(result.unwrap());
///     }
///     order
/// });
/// assert_eq!(order, [10, 20, 30]);
/// ```
pub struct JoinSet<T> {
    /// The fibers not joined yet, by their key in this set.
    fibers: HashMap<u64, JoinHandle<T>>,
    next_key: u64,
    /// Each fiber sends its key as its closure ends (or is dropped unrun),
    /// so that the set learns which one to join. A hint: the fiber's
    /// result comes a little later (after its fiber-locals' destructors),
    /// and a fiber the runtime's shutdown abandoned sends nothing.
    done: mpsc::Sender<u64>,
    ended: mpsc::Receiver<u64>,
    /// Keys received whose fiber may not have its result in yet.
    arrived: VecDeque<u64>,
    /// When `wait_for_an_end` last looked at every fiber.
    scanned: Instant,
}

/// How long `join_next` waits for a key before it looks at every fiber of
/// the set: one the shutdown abandoned never sends its key.
const RESCAN: Duration = Duration::from_millis(100);

impl<T: Send + 'static> JoinSet<T> {
    /// An empty set.
    pub fn new() -> Self {
        let (done, ended) = mpsc::unbounded();
        JoinSet {
            fibers: HashMap::new(),
            next_key: 0,
            done,
            ended,
            arrived: VecDeque::new(),
            scanned: Instant::now(),
        }
    }

    /// Spawns `f` on the caller's runtime into the set; returns the new
    /// fiber's id.
    ///
    /// # Panics
    ///
    /// Where [`spawn`](crate::spawn) does: outside a fiber, on a thread
    /// that entered no runtime (use [`spawn_on`](Self::spawn_on) there).
    pub fn spawn<F>(&mut self, f: F) -> u64
    where
        F: FnOnce() -> T + Send + 'static,
    {
        let (key, f) = self.keyed(f);
        let registry = super::current_registry("JoinSet::spawn");
        self.insert(
            key,
            spawned(super::spawn_unprobed(&registry, None, None, f)),
        )
    }

    /// Spawns `f` on `rt` (a [`Runtime`](crate::Runtime) or its [`Handle`](crate::Handle))
    /// into the set; returns the new fiber's id.
    ///
    /// # Panics
    ///
    /// Where [`Runtime::spawn`](crate::Runtime::spawn) does.
    pub fn spawn_on<F>(&mut self, rt: &impl AsRef<super::Handle>, f: F) -> u64
    where
        F: FnOnce() -> T + Send + 'static,
    {
        let (key, f) = self.keyed(f);
        self.insert(
            key,
            spawned(super::spawn_unprobed(rt.as_ref().registry(), None, None, f)),
        )
    }

    /// `f` with what tells the set that it ended: its key, sent when the
    /// closure (run or not) is dropped, which a panic or cancellation
    /// does too.
    fn keyed<F>(&mut self, f: F) -> (u64, impl FnOnce() -> T + Send + 'static)
    where
        F: FnOnce() -> T + Send + 'static,
    {
        let key = self.next_key;
        self.next_key += 1;
        let notice = Notice {
            done: self.done.clone(),
            key,
        };
        (key, move || {
            let _notice = notice;
            f()
        })
    }

    /// Keeps the handle, and only then makes the spawn's switch point: a
    /// cancellation raised there finds the fiber in the set, which cancels
    /// it as it drops (with the handle dropped first, it got away).
    fn insert(&mut self, key: u64, handle: JoinHandle<T>) -> u64 {
        let id = handle.id();
        self.fibers.insert(key, handle);
        crate::preempt::point();
        id
    }

    /// Waits for the next fiber of the set to finish and returns its
    /// result; `None` if the set is empty.
    pub fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        self.join_next_with_id().map(|(_, result)| result)
    }

    /// [`join_next`](Self::join_next), with the fiber's id (as
    /// [`spawn`](Self::spawn) returned it), to tell which one finished.
    pub fn join_next_with_id(&mut self) -> Option<(u64, Result<T, JoinError>)> {
        loop {
            if self.fibers.is_empty() {
                return None;
            }
            if let Some(joined) = self.try_join_next_with_id() {
                return Some(joined);
            }
            // A wait for a fiber's end, in timed rounds that a start hook
            // would repeat for good: refused there, as a join is.
            crate::sched::park::refuse_in_hook(&"JoinSet::join_next");
            self.wait_for_an_end(None);
        }
    }

    /// [`join_next`](Self::join_next), waiting at most `timeout`: `Err`
    /// if no fiber finished by then (the set is unchanged).
    pub fn join_next_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Result<T, JoinError>>, Timeout> {
        let deadline = crate::sync::waiter::deadline_after(timeout);
        loop {
            if self.fibers.is_empty() {
                return Ok(None);
            }
            if let Some(result) = self.try_join_next() {
                return Ok(Some(result));
            }
            if Instant::now() >= deadline {
                return Err(Timeout);
            }
            self.wait_for_an_end(Some(deadline));
        }
    }

    /// The result of a fiber of the set that has finished, if any, without
    /// waiting.
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        self.try_join_next_with_id().map(|(_, result)| result)
    }

    /// [`try_join_next`](Self::try_join_next), with the fiber's id.
    pub fn try_join_next_with_id(&mut self) -> Option<(u64, Result<T, JoinError>)> {
        self.arrived.extend(self.ended.try_iter());
        let finished = self
            .arrived
            .iter()
            .position(|key| self.fibers.get(key).is_none_or(JoinHandle::is_finished))?;
        let key = self.arrived.remove(finished)?;
        match self.fibers.remove(&key) {
            // Finished: this join does not wait.
            Some(handle) => Some((handle.id(), handle.join())),
            // A key of a spawn that failed: nothing to join.
            None => self.try_join_next_with_id(),
        }
    }

    /// Cancels the set's fiber with id `id` (as [`spawn`](Self::spawn)
    /// returned it): it unwinds from its next switch point, and
    /// `join_next` reports the cancellation (or its result, if it finished
    /// first). `false` if no fiber of the set, not joined yet, has that
    /// id. Looks through the set: a walk over its fibers.
    pub fn cancel(&self, id: u64) -> bool {
        let fiber = self.fibers.values().find(|handle| handle.id() == id);
        fiber.inspect(|handle| handle.cancel()).is_some()
    }

    /// A handle that cancels the set's fiber with id `id` from anywhere,
    /// also while the set's owner waits in `join_next` (see
    /// [`CancelHandle`](super::CancelHandle)); `None` if no fiber of the
    /// set, not joined yet, has that id.
    pub fn cancel_handle(&self, id: u64) -> Option<super::CancelHandle> {
        let fiber = self.fibers.values().find(|handle| handle.id() == id);
        fiber.map(JoinHandle::cancel_handle)
    }

    /// Waits until a fiber of the set may have finished: a key comes, a
    /// fiber whose key came may have its result in (it parks in its
    /// fiber-locals' destructors at most: looked at every millisecond
    /// meanwhile), or, every [`RESCAN`], a look at every fiber finds one
    /// (a fiber the shutdown abandoned sends no key, but its handle
    /// reports it).
    fn wait_for_an_end(&mut self, deadline: Option<Instant>) {
        let now = Instant::now();
        let next_scan = self.scanned + RESCAN;
        let mut until = if self.arrived.is_empty() {
            next_scan
        } else {
            next_scan.min(now + Duration::from_millis(1))
        };
        if let Some(deadline) = deadline {
            until = until.min(deadline);
        }
        match self
            .ended
            .recv_timeout(until.saturating_duration_since(now))
        {
            Ok(key) => self.arrived.push_back(key),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                if Instant::now() >= next_scan {
                    self.scanned = Instant::now();
                    let abandoned: Vec<u64> = self
                        .fibers
                        .iter()
                        .filter(|(key, handle)| handle.is_finished() && !self.arrived.contains(key))
                        .map(|(&key, _)| key)
                        .collect();
                    self.arrived.extend(abandoned);
                }
            }
        }
    }

    /// Waits for every fiber of the set; their results in the order they
    /// finished.
    pub fn join_all(mut self) -> Vec<Result<T, JoinError>> {
        std::iter::from_fn(|| self.join_next()).collect()
    }

    /// Cancels every fiber of the set: each unwinds from its next switch
    /// point, and `join_next` reports the cancellation (or the result, for
    /// one that finished first).
    pub fn cancel_all(&self) {
        self.fibers.values().for_each(JoinHandle::cancel);
    }

    /// Fibers spawned on the set and not joined yet.
    pub fn len(&self) -> usize {
        self.fibers.len()
    }

    /// Whether no fiber of the set is left to join.
    pub fn is_empty(&self) -> bool {
        self.fibers.is_empty()
    }
}

impl<T: Send + 'static> Default for JoinSet<T> {
    fn default() -> Self {
        JoinSet::new()
    }
}

impl<T> Drop for JoinSet<T> {
    fn drop(&mut self) {
        // Dropping the handles then detaches the fibers, which unwind.
        self.fibers.values().for_each(JoinHandle::cancel);
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet")
            .field("len", &self.fibers.len())
            .finish()
    }
}

/// The handle of a spawn, or the panic [`crate::spawn`] makes of its error.
fn spawned<T>(handle: std::io::Result<JoinHandle<T>>) -> JoinHandle<T> {
    handle.unwrap_or_else(|e| panic!("spawning a fiber: {e}"))
}

/// Sends its fiber's key when dropped: at the end of the closure, on its
/// unwind, or with the closure of a fiber that never ran.
struct Notice {
    done: mpsc::Sender<u64>,
    key: u64,
}

impl Drop for Notice {
    fn drop(&mut self) {
        // The set may be gone (it cancelled us): nobody to tell then.
        let _ = self.done.send(self.key);
    }
}

/// [`JoinSet::join_next_timeout`]'s error: no fiber finished in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout;

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no fiber of the set finished in time")
    }
}

impl std::error::Error for Timeout {}
