//! Waiting on several receivers at once.

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
pub struct Select<'a> {
    receivers: Vec<&'a dyn Selectable>,
    /// Where the next call starts looking.
    next: usize,
}

/// A receiver [`Select`] can wait on: `mpsc`, `mpmc` and `oneshot`
/// receivers.
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
        self.receivers.push(receiver);
        self.receivers.len() - 1
    }

    /// Waits until one of the receivers is ready; returns its index.
    ///
    /// # Panics
    ///
    /// With no receivers: it would wait for good.
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

    fn unwatch(&self, watched: &[usize], waiter: &sealed::Watcher) {
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
