//! Idle workers sleep on a condition variable; see `README.md` beside this
//! file for the protocol and why it loses no wake-up.

use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

pub(crate) struct Sleep {
    sleepers: AtomicUsize,
    epoch: Mutex<u64>,
    cv: Condvar,
    all_awake: AtomicBool,
}

impl Sleep {
    pub(crate) fn new() -> Self {
        Sleep {
            sleepers: AtomicUsize::new(0),
            epoch: Mutex::new(0),
            cv: Condvar::new(),
            all_awake: AtomicBool::new(false),
        }
    }

    /// Puts the calling worker to sleep unless `has_work` says otherwise
    /// once it is registered as a sleeper.
    pub(crate) fn sleep(&self, has_work: impl Fn() -> bool) {
        let epoch = *self.epoch.lock().unwrap_or_else(|e| e.into_inner());
        // SeqCst: the worker half of the Dekker pair (README, step 2).
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if !has_work() {
            let mut guard = self.epoch.lock().unwrap_or_else(|e| e.into_inner());
            // Relaxed: `all_awake` only ever goes from false to true, and is
            // written under the same lock.
            while *guard == epoch && !self.all_awake.load(Ordering::Relaxed) {
                guard = self.cv.wait(guard).unwrap_or_else(|e| e.into_inner());
            }
        }
        // SeqCst: keeps the count exact for producers' SeqCst reads.
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }

    /// Wakes one sleeping worker, if any (README, producer side).
    pub(crate) fn wake_one(&self) {
        // SeqCst: the producer half of the Dekker pair: orders the caller's
        // queue push before reading `sleepers`.
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut epoch = self.epoch.lock().unwrap_or_else(|e| e.into_inner());
        *epoch += 1;
        self.cv.notify_one();
    }

    /// Wakes every worker for good (shutdown).
    pub(crate) fn wake_all(&self) {
        let mut epoch = self.epoch.lock().unwrap_or_else(|e| e.into_inner());
        // Relaxed: written under the lock the sleepers read it under.
        self.all_awake.store(true, Ordering::Relaxed);
        *epoch += 1;
        self.cv.notify_all();
    }
}
