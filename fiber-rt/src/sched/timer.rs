//! Deadlines for `sleep` and timed waits: an ordered map of
//! (deadline, waker) served by one thread per runtime, which sleeps until
//! the earliest deadline.
//!
//! A timed wait that ends early (notified before its deadline) takes its
//! entry out again ([`Timer::cancel`]), so a loop of short waits with long
//! timeouts does not pile up entries, nor keep their fibers' tasks alive,
//! until the deadlines pass.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use super::park::Waker;

/// Names one entry, to cancel it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerKey {
    deadline: Instant,
    /// Tells apart entries with the same deadline; also keeps them in the
    /// order they were added.
    seq: u64,
}

struct State {
    entries: BTreeMap<TimerKey, Waker>,
    seq: u64,
    stop: bool,
}

pub(crate) struct Timer {
    state: Mutex<State>,
    cv: Condvar,
}

impl Timer {
    pub(crate) fn new() -> Self {
        Timer {
            state: Mutex::new(State {
                entries: BTreeMap::new(),
                seq: 0,
                stop: false,
            }),
            cv: Condvar::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes `waker` at `deadline` (or just after), unless cancelled first.
    /// Once the timer has stopped (the runtime is shutting down, and
    /// cancels every fiber), the waker is dropped at once: an entry kept
    /// would hold its task, and so the runtime, alive for good.
    pub(crate) fn add(&self, deadline: Instant, waker: Waker) -> TimerKey {
        let mut state = self.state();
        state.seq += 1;
        let key = TimerKey {
            deadline,
            seq: state.seq,
        };
        if state.stop {
            drop(state);
            drop(waker);
            return key;
        }
        let earliest = state
            .entries
            .first_key_value()
            .is_none_or(|(first, _)| key < *first);
        state.entries.insert(key, waker);
        if earliest {
            self.cv.notify_one();
        }
        key
    }

    /// An entry for `waker` at `deadline`, taken out again when the
    /// returned guard drops (on an unwind too).
    pub(crate) fn add_guarded(&self, deadline: Instant, waker: Waker) -> TimerEntry<'_> {
        TimerEntry(self, self.add(deadline, waker))
    }

    /// Takes out the entry `key`; `false` if it was served (or dropped by
    /// `stop`) already.
    pub(crate) fn cancel(&self, key: TimerKey) -> bool {
        // Dropped outside the lock: the last reference to a task may go.
        let removed = self.state().entries.remove(&key);
        removed.is_some()
    }

    /// Entries waiting for their deadline.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.state().entries.len()
    }

    /// The timer thread's loop; returns after [`Timer::stop`].
    pub(crate) fn run(&self) {
        let mut state = self.state();
        loop {
            if state.stop {
                return;
            }
            let now = Instant::now();
            let mut due = Vec::new();
            while let Some(entry) = state
                .entries
                .first_entry()
                .filter(|entry| entry.key().deadline <= now)
            {
                due.push(entry.remove());
            }
            if !due.is_empty() {
                drop(state);
                for waker in &due {
                    waker.wake();
                }
                drop(due);
                state = self.state();
                continue;
            }
            state = match state.entries.first_key_value() {
                Some((first, _)) => {
                    let wait = first.deadline.saturating_duration_since(now);
                    self.cv
                        .wait_timeout(state, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.cv.wait(state).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }

    /// Stops the timer thread and drops pending entries.
    pub(crate) fn stop(&self) {
        let entries = {
            let mut state = self.state();
            state.stop = true;
            std::mem::take(&mut state.entries)
        };
        self.cv.notify_all();
        drop(entries);
    }
}

/// Takes its timer entry out when dropped. If the timer served it
/// already, the fiber got a wake-up it did not wait for, which only makes
/// a later park return early: every park is in a loop over its condition.
pub(crate) struct TimerEntry<'a>(&'a Timer, TimerKey);

impl Drop for TimerEntry<'_> {
    fn drop(&mut self) {
        self.0.cancel(self.1);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Timer;
    use crate::sched::park::Waker;

    #[test]
    fn a_cancelled_entry_is_gone_and_a_second_cancel_says_so() {
        let timer = Timer::new();
        let later = Instant::now() + Duration::from_secs(3600);
        let first = timer.add(later, Waker::Thread(std::thread::current()));
        let second = timer.add(later, Waker::Thread(std::thread::current()));
        assert_ne!(first, second, "same deadline, two entries");
        assert!(timer.cancel(first));
        assert!(!timer.cancel(first));
        assert_eq!(timer.state().entries.len(), 1);
        assert!(timer.cancel(second));
        assert!(timer.state().entries.is_empty());
    }

    #[test]
    fn a_stopped_timer_keeps_no_entries() {
        let timer = Timer::new();
        timer.stop();
        let later = Instant::now() + Duration::from_secs(3600);
        let key = timer.add(later, Waker::Thread(std::thread::current()));
        assert_eq!(timer.len(), 0);
        assert!(!timer.cancel(key));
    }
}
