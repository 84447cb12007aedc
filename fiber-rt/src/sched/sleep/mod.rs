//! Idle workers sleep on a condition variable; see `README.md` beside this
//! file for the protocol and why it loses no wake-up.

use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

pub(crate) struct Sleep {
    /// Workers registered as about to sleep or asleep.
    sleepers: AtomicUsize,
    /// Mirror of `State::waking`, read without the lock as a fast path.
    waking: AtomicBool,
    state: Mutex<State>,
    cv: Condvar,
}

struct State {
    /// Bumped by every wake-up.
    epoch: u64,
    /// Workers blocked in `cv.wait`.
    waiting: usize,
    /// A signal was sent to a waiting worker that has not woken yet.
    waking: bool,
    /// Shutdown: nobody sleeps any more.
    all_awake: bool,
}

impl Sleep {
    pub(crate) fn new() -> Self {
        Sleep {
            sleepers: AtomicUsize::new(0),
            waking: AtomicBool::new(false),
            state: Mutex::new(State {
                epoch: 0,
                waiting: 0,
                waking: false,
                all_awake: false,
            }),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts the calling worker to sleep unless `has_work` says otherwise
    /// once it is registered as a sleeper.
    pub(crate) fn sleep(&self, has_work: impl Fn() -> bool) {
        let epoch = self.lock().epoch;
        // SeqCst: the worker half of the Dekker pair (README, step 2).
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if !has_work() {
            let mut state = self.lock();
            if state.epoch == epoch && !state.all_awake {
                state.waiting += 1;
                while state.epoch == epoch && !state.all_awake {
                    state = self.cv.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                state.waiting -= 1;
                // Whoever wakes clears the flag, so it never outlives the
                // signal it stands for. SeqCst: read by `wake_one`.
                state.waking = false;
                self.waking.store(false, Ordering::SeqCst);
            }
        }
        // SeqCst: keeps the count exact for producers' SeqCst reads.
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }

    /// Wakes one sleeping worker, if any and none is already being woken
    /// (README, producer side).
    ///
    /// The caller has issued a SeqCst fence since its queue push (the
    /// producer half of the Dekker pair: `Registry::notify_work` does).
    pub(crate) fn wake_one(&self) {
        if self.sleepers.load(Ordering::SeqCst) == 0 || self.waking.load(Ordering::SeqCst) {
            return;
        }
        let mut state = self.lock();
        // Stops workers that registered but do not wait yet from waiting.
        state.epoch += 1;
        if state.waiting > 0 && !state.waking {
            state.waking = true;
            // SeqCst: see `sleep`.
            self.waking.store(true, Ordering::SeqCst);
            self.cv.notify_one();
        }
    }

    /// Wakes every worker for good (shutdown).
    pub(crate) fn wake_all(&self) {
        let mut state = self.lock();
        state.all_awake = true;
        state.epoch += 1;
        self.cv.notify_all();
    }
}
