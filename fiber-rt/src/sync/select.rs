//! Waiting on several receivers, and fibers, at once.

use std::fmt;
use std::time::{Duration, Instant};

use super::waiter::{self, Waiter};

/// Waits until one of several receivers has a message (or is
/// disconnected), parking the fiber, or blocking the thread, until then.
///
/// Add receivers with [`recv`](Select::recv), which returns each one's
/// index; [`ready`](Select::ready) returns the index of one that is ready.
/// Its `try_recv` then returns a message or says that every sender is
/// gone, never that the channel is empty: an `mpsc` receiver is not
/// shared between threads, so nobody else takes the message in between.
/// (A `oneshot` receiver can be shared by reference; the guarantee holds
/// as long as no one else receives through it meanwhile. An `mpmc`
/// receiver has clones, which may take the message first: there
/// `try_recv` may come back empty, and the loop selects again.)
///
/// When several are ready, each look starts one past where the last look
/// started, so a busy channel does not starve the others.
///
/// A [`watch`](super::watch) receiver is ready when it has a value it has
/// not seen, or its sender is gone: its `has_changed` then says `Ok(true)`
/// or `Err`. A [`broadcast`](super::broadcast) receiver is ready when its
/// `recv` would not wait (a message for it, a lag to report, or every
/// sender gone): its `try_recv` then does not say `Empty` (its clones keep
/// places of their own). Their receiving methods (`borrow_and_update`,
/// `changed`, `recv`, `try_recv`) take `&mut`, which the `Select`
/// borrowing them rules out: build the `Select` in a block that returns
/// the index, so that its borrows end there (the second example).
/// A [`Signal`](crate::signal::Signal) listener is ready when a delivery
/// has come since it last took one: its `try_recv` then says `Ok` (or
/// `Closed`, should the thread that wakes listeners have stopped).
/// [`join`](Select::join) adds a fiber's handle, ready once the fiber has
/// finished, the same way. A receiver whose sender is gone stays ready
/// for good: stop selecting on it then (a `Select` made anew each time
/// starts its first look at the receiver added first, so one added first
/// would be named every time).
///
/// ```
/// use fiber_rt::sync::{mpsc, oneshot, Select};
/// use fiber_rt::Runtime;
///
/// let rt = Runtime::new().unwrap();
/// let got = rt.block_on(|| {
///     let (numbers, rx_numbers) = mpsc::unbounded::<u32>();
///     let (stop, rx_stop) = oneshot::channel::<()>();
///     fiber_rt::spawn(move || {
///         for x in 1..=3 {
///             numbers.send(x).unwrap();
///         }
///         stop.send(()).unwrap();
///     });
///     let mut got = Vec::new();
///     let mut sel = Select::new();
///     let n = sel.recv(&rx_numbers);
///     let s = sel.recv(&rx_stop);
///     loop {
///         let i = sel.ready();
///         if i == n {
///             // A message, or every sender gone.
///             match rx_numbers.try_recv() {
///                 Ok(x) => got.push(x),
///                 Err(_) => break,
///             }
///         } else if i == s {
///             // Told to stop: take what is left, without waiting.
///             got.extend(std::iter::from_fn(|| rx_numbers.try_recv().ok()));
///             break;
///         }
///     }
///     got
/// });
/// assert_eq!(got, [1, 2, 3]);
/// ```
///
/// A fiber that follows a setting until told to stop: the `Select` lives
/// in a block that returns the index, which ends its borrow of the `watch`
/// receiver before `borrow_and_update` takes it by `&mut`.
///
/// ```
/// use fiber_rt::sync::{mpsc, oneshot, watch, Select};
///
/// let rt = fiber_rt::Runtime::new().unwrap();
/// let (level, mut rx_level) = watch::channel(0u32);
/// let (stop, rx_stop) = oneshot::channel::<()>();
/// let (seen_tx, seen) = mpsc::unbounded::<u32>();
/// let follower = rt.spawn(move || loop {
///     let i = {
///         let mut sel = Select::new();
///         sel.recv(&rx_level);
///         sel.recv(&rx_stop);
///         sel.ready()
///     };
///     if i == 0 {
///         // A value not seen yet (the sender stays until the end).
///         let now = *rx_level.borrow_and_update();
///         seen_tx.send(now).unwrap();
///     } else {
///         return;
///     }
/// });
/// for n in 1..=3 {
///     level.send(n).unwrap();
///     assert_eq!(seen.recv(), Ok(n));
/// }
/// stop.send(()).unwrap();
/// follower.join().unwrap();
/// ```
pub struct Select<'a> {
    receivers: Vec<Entry<'a>>,
    /// Where the next call starts looking.
    next: usize,
}

/// One thing a [`Select`] waits on.
enum Entry<'a> {
    /// A receiver, watched through a shared borrow: its channel keeps a
    /// list of watchers under its lock.
    Receiver(&'a dyn Selectable),
    /// A fiber's handle, borrowed mutably: its join slot has room for one
    /// waker, which only the handle's owner may put there. The handle's
    /// own type is `'static` (as every `JoinHandle` a user holds is), so
    /// that the trait object's lifetime is not `'a`: under `&mut` that
    /// would make `Select` invariant in `'a`, and a `Select` of longer
    /// borrows could not pass for one of shorter borrows.
    Join(&'a mut (dyn sealed::WatchJoin + 'static)),
}

impl Entry<'_> {
    fn is_join(&self) -> bool {
        matches!(self, Entry::Join(_))
    }

    fn is_ready(&self) -> bool {
        match self {
            Entry::Receiver(r) => r.is_ready(),
            Entry::Join(j) => j.is_ready(),
        }
    }

    fn watch(&mut self, watcher: &sealed::Watcher) -> bool {
        match self {
            Entry::Receiver(r) => r.watch(watcher),
            Entry::Join(j) => j.watch(watcher),
        }
    }

    fn unwatch(&mut self, watcher: &sealed::Watcher) {
        match self {
            Entry::Receiver(r) => r.unwatch(watcher),
            Entry::Join(j) => j.unwatch(),
        }
    }
}

/// A receiver [`Select`] can wait on: the receivers of [`mpsc`],
/// [`mpmc`] and [`oneshot`] (ready with a message, or with every sender
/// gone), of [`watch`] (ready with a value the receiver has not seen, or
/// with the sender gone) and of [`broadcast`] (ready when `recv` would not
/// wait: a message for this receiver, a lag to report, or every sender
/// gone). A fiber's [`JoinHandle`](crate::JoinHandle) is waited on too,
/// through [`Select::join`].
///
/// [`mpsc`]: super::mpsc
/// [`mpmc`]: super::mpmc
/// [`oneshot`]: super::oneshot
/// [`watch`]: super::watch
/// [`broadcast`]: super::broadcast
pub trait Selectable: sealed::Watch {}

pub(crate) mod sealed {
    use std::sync::Arc;

    use super::Waiter;

    /// The waiter of one `Select` round (a type no user can name).
    #[derive(Debug)]
    pub struct Watcher(pub(crate) Arc<Waiter>);

    /// What `Select` asks of a receiver. Each is done under the channel's
    /// lock, so a sender either sees the waiter or leaves a message that
    /// `watch` sees.
    pub trait Watch {
        /// Whether a receive would not wait now (a message, or no sender).
        fn is_ready(&self) -> bool;
        /// `true` if ready; else the channel wakes the watcher's waiter at
        /// its next message or when its last sender goes.
        fn watch(&self, watcher: &Watcher) -> bool;
        /// Takes the watcher's waiter back if the channel still holds it.
        fn unwatch(&self, watcher: &Watcher);
    }

    /// What `Select` asks of a fiber's handle, which it holds by `&mut`:
    /// the join slot keeps one waker, and only the handle may put it there
    /// or take it back, so no one else may do so meanwhile. Each step is
    /// one atomic change of the slot's state, which the finishing fiber
    /// changes too: either it sees the waker, or `watch` sees it finished.
    pub trait WatchJoin {
        /// Whether the fiber has finished.
        fn is_ready(&self) -> bool;
        /// `true` if finished; else the fiber wakes the watcher's waiter as
        /// it finishes.
        fn watch(&mut self, watcher: &Watcher) -> bool;
        /// Takes the watcher's waiter back unless the fiber, finishing, took
        /// it.
        fn unwatch(&mut self);
    }
}

impl<'a> Select<'a> {
    /// A select with no receivers yet.
    pub fn new() -> Select<'a> {
        Select {
            receivers: Vec::new(),
            next: 0,
        }
    }

    /// Adds `receiver`; returns its index, counted from 0 in the order
    /// added.
    pub fn recv(&mut self, receiver: &'a impl Selectable) -> usize {
        self.receivers.push(Entry::Receiver(receiver));
        self.receivers.len() - 1
    }

    /// Adds a fiber's `handle`, ready once the fiber has finished (then
    /// its `join` returns at once); returns its index, as
    /// [`recv`](Self::recv) does. The handle is borrowed mutably, as
    /// `&mut handle` is in `tokio::select!`: it is joined after the
    /// `Select` is dropped.
    ///
    /// # Panics
    ///
    /// If the handle, polled as a `Future`, gave its result already.
    ///
    /// ```
    /// use fiber_rt::sync::{mpsc, Select};
    ///
    /// let rt = fiber_rt::Runtime::new().unwrap();
    /// rt.block_on(|| {
    ///     let (progress, rx) = mpsc::unbounded::<u32>();
    ///     let mut worker = fiber_rt::spawn(move || {
    ///         (1..=3).for_each(|n| progress.send(n).unwrap());
    ///         "done"
    ///     });
    ///     let mut seen = 0;
    ///     loop {
    ///         let finished = {
    ///             let mut sel = Select::new();
    ///             sel.recv(&rx);
    ///             let w = sel.join(&mut worker);
    ///             sel.ready() == w
    ///         };
    ///         if finished {
    ///             break;
    ///         }
    ///         match rx.try_recv() {
    ///             Ok(n) => seen += n,
    ///             // The sender is gone: the fiber is ending.
    ///             Err(_) => break,
    ///         }
    ///     }
    ///     // Whatever was sent before the fiber ended is still queued.
    ///     seen += rx.try_iter().sum::<u32>();
    ///     assert_eq!(seen, 6);
    ///     assert_eq!(worker.join().unwrap(), "done");
    /// });
    /// ```
    pub fn join<T: 'static>(&mut self, handle: &'a mut crate::JoinHandle<T>) -> usize {
        handle.check_joinable();
        self.receivers.push(Entry::Join(handle));
        self.receivers.len() - 1
    }

    /// Waits until one of the receivers is ready; returns its index.
    ///
    /// # Panics
    ///
    /// With no receivers: it would wait for good. In a thread start hook
    /// (`Builder::on_thread_start`), with nothing but fibers' handles, none
    /// of them finished: that waits for a fiber's end, as a join does, and
    /// the hook's worker runs no fiber until the hook returns.
    pub fn ready(&mut self) -> usize {
        self.ready_until(None)
            .expect("no deadline, so not timed out")
    }

    /// [`ready`](Self::ready), waiting at most `timeout`: `None` if no
    /// receiver was ready by then (with no receivers, once it has passed).
    pub fn ready_timeout(&mut self, timeout: Duration) -> Option<usize> {
        let deadline = waiter::deadline_after(timeout);
        if self.receivers.is_empty() {
            crate::sleep_until(deadline);
            return None;
        }
        self.ready_until(Some(deadline))
    }

    /// The index of a receiver ready now, without waiting.
    pub fn try_ready(&mut self) -> Option<usize> {
        let start = self.start();
        self.order(start).find(|&i| self.receivers[i].is_ready())
    }

    fn ready_until(&mut self, deadline: Option<Instant>) -> Option<usize> {
        assert!(
            !self.receivers.is_empty(),
            "Select::ready with no receivers would wait for good"
        );
        loop {
            let start = self.start();
            let waiter = sealed::Watcher(Waiter::new());
            // Watch each in turn; the first found ready ends the round, and
            // those watched before it let the waiter go again.
            let mut watched = Vec::with_capacity(self.receivers.len());
            for i in self.order(start) {
                if self.receivers[i].watch(&waiter) {
                    self.unwatch(&watched, &waiter);
                    return Some(i);
                }
                watched.push(i);
            }
            let reason = &"Select::ready";
            if deadline.is_none() && self.receivers.iter().all(Entry::is_join) {
                // Nothing but fibers' ends can wake it, with no time-out: a
                // wait for a fiber's end, refused in a start hook as a join
                // is (its worker runs no fiber until the hook returns). The
                // handles are left as they were before the panic.
                let mut unwatch = waiter::OnUnwind(Some(|| self.unwatch(&watched, &waiter)));
                crate::sched::park::refuse_in_hook(reason);
                unwatch.0 = None;
            }
            let cancel = || self.unwatch(&watched, &waiter);
            let woken = waiter::wait_until_or_cancel(&waiter.0, deadline, reason, cancel);
            self.unwatch(&watched, &waiter);
            if !woken {
                // A message may have come just as the time ran out.
                return self.try_ready();
            }
            // Woken: the next round finds what is ready.
        }
    }

    /// Where this call starts looking, moving the next call's start on.
    fn start(&mut self) -> usize {
        let start = self.next % self.receivers.len().max(1);
        self.next = start + 1;
        start
    }

    /// Every index, from `start` round to just before it.
    fn order(&self, start: usize) -> impl Iterator<Item = usize> {
        let len = self.receivers.len();
        (0..len).map(move |k| (start + k) % len)
    }

    fn unwatch(&mut self, watched: &[usize], waiter: &sealed::Watcher) {
        for &i in watched {
            self.receivers[i].unwatch(waiter);
        }
    }
}

impl Default for Select<'_> {
    fn default() -> Self {
        Select::new()
    }
}

impl fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select")
            .field("receivers", &self.receivers.len())
            .finish()
    }
}

/// What the channels' own tests share.
#[cfg(test)]
pub(crate) mod tests_support {
    use std::time::Duration;

    use super::{Select, Selectable};
    use crate::Builder;

    /// Selects on `rx` every way a round can end (timed out on a plain
    /// thread, ready through another receiver, cancelled while it waits)
    /// and checks after each that `parked` (the entries waiting on `rx`'s
    /// channel) counts none left behind.
    pub(crate) fn selects_leave_no_entries_behind<R>(rx: &R, parked: fn(&R) -> usize)
    where
        R: Selectable + Clone + Send + 'static,
    {
        let rt = Builder::new().workers(2).build().unwrap();
        // Timed out, on a plain thread.
        let mut sel = Select::new();
        sel.recv(rx);
        assert_eq!(sel.ready_timeout(Duration::from_millis(2)), None);
        drop(sel);
        assert_eq!(parked(rx), 0);
        // Ready through the other receiver: the first one's entry goes.
        let (other_tx, other) = crate::sync::oneshot::channel::<()>();
        let probe = rx.clone();
        let selector = rt.spawn(move || {
            let mut sel = Select::new();
            sel.recv(&probe);
            let o = sel.recv(&other);
            assert_eq!(sel.ready(), o);
            parked(&probe)
        });
        while parked(rx) < 1 {
            std::thread::sleep(Duration::from_millis(1));
        }
        other_tx.send(()).unwrap();
        assert_eq!(selector.join().unwrap(), 0);
        // Cancelled while it waits.
        let probe = rx.clone();
        let waiting = rt.spawn(move || {
            let mut sel = Select::new();
            sel.recv(&probe);
            sel.ready()
        });
        while parked(rx) < 1 {
            std::thread::sleep(Duration::from_millis(1));
        }
        waiting.cancel();
        assert!(waiting.join().unwrap_err().is_cancelled());
        assert_eq!(parked(rx), 0);
    }
}
