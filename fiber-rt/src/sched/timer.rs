//! Deadlines for `sleep`: a heap of (deadline, waker) served by one thread
//! per runtime, which sleeps until the earliest deadline.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use super::park::Waker;

struct Entry {
    deadline: Instant,
    seq: u64,
    waker: Waker,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.deadline, self.seq) == (other.deadline, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}

struct State {
    heap: BinaryHeap<Reverse<Entry>>,
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
                heap: BinaryHeap::new(),
                seq: 0,
                stop: false,
            }),
            cv: Condvar::new(),
        }
    }

    /// Wakes `waker` at `deadline` (or just after).
    pub(crate) fn add(&self, deadline: Instant, waker: Waker) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.seq += 1;
        let seq = state.seq;
        let earliest = state
            .heap
            .peek()
            .is_none_or(|Reverse(e)| deadline < e.deadline);
        state.heap.push(Reverse(Entry {
            deadline,
            seq,
            waker,
        }));
        if earliest {
            self.cv.notify_one();
        }
    }

    /// The timer thread's loop; returns after [`Timer::stop`].
    pub(crate) fn run(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if state.stop {
                return;
            }
            let now = Instant::now();
            let mut due = Vec::new();
            while state
                .heap
                .peek()
                .is_some_and(|Reverse(e)| e.deadline <= now)
            {
                due.push(state.heap.pop().unwrap().0.waker);
            }
            if !due.is_empty() {
                drop(state);
                due.iter().for_each(Waker::wake);
                state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                continue;
            }
            state = match state.heap.peek() {
                Some(Reverse(e)) => {
                    let wait = e.deadline.saturating_duration_since(now);
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
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.stop = true;
        state.heap.clear();
        self.cv.notify_all();
    }
}
