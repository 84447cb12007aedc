//! Idle workers sleep on a condition variable, or one of them waits for
//! sockets (`driver.rs`); see `README.md` beside this file for the
//! protocol and why it loses no wake-up.

mod driver;

use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};

use crate::net::reactor::{self, Reactor};
use driver::Driver;

/// How often a sleeping worker takes the sockets' events while no worker
/// can wait for them.
const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

pub(crate) struct Sleep {
    /// Workers registered as about to sleep or asleep.
    sleepers: AtomicUsize,
    /// Mirror of `State::waking`, read without the lock as a fast path.
    waking: AtomicBool,
    state: Mutex<State>,
    cv: Condvar,
    /// Made when a worker first waits for sockets. Until it can be made
    /// (or once its wait fails), workers sleep on the condition variable
    /// and wake every `POLL_INTERVAL` to take the sockets' events.
    driver: OnceLock<Driver>,
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
    /// A worker waits for sockets (in place of `cv`).
    driving: bool,
    /// That worker was told to come back, and has not yet.
    driver_woken: bool,
    /// The driver's wait failed: workers sleep on `cv` only.
    driver_broken: bool,
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
                driving: false,
                driver_woken: false,
                driver_broken: false,
            }),
            cv: Condvar::new(),
            driver: OnceLock::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts the calling worker to sleep unless `has_work` says otherwise
    /// once it is registered as a sleeper. While sockets are in use, the
    /// first worker to sleep waits for them instead; then it returns the
    /// reactor, whose ready events the caller is to take (README,
    /// "Waiting for sockets").
    #[must_use = "a driver that came back takes the sockets' events"]
    pub(crate) fn sleep(&self, has_work: impl Fn() -> bool) -> Option<&'static Reactor> {
        let epoch = self.lock().epoch;
        // SeqCst: the worker half of the Dekker pair (README, step 2).
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let mut drove = None;
        if !has_work() {
            let mut state = self.lock();
            if state.epoch == epoch && !state.all_awake {
                match self.free_driver(&state) {
                    Some((reactor, driver)) => {
                        state.driving = true;
                        drop(state);
                        let working = driver.wait();
                        let mut state = self.lock();
                        state.driving = false;
                        state.driver_broken |= !working;
                        state.driver_woken = false;
                        // Another sleeper takes the waiting for sockets
                        // over, as this worker goes to run what it finds:
                        // woken, it searches, finds nothing, and drives.
                        if state.waiting > 0 {
                            self.signal_waiter(&mut state);
                        }
                        drove = Some(reactor);
                    }
                    None => {
                        // Sockets in use, and no worker waits for them (no
                        // driver could be made): wake up now and then to
                        // take their events.
                        let poll = (!state.driving).then(reactor::in_use).flatten();
                        state.waiting += 1;
                        while state.epoch == epoch && !state.all_awake {
                            if poll.is_none() {
                                state = self.cv.wait(state).unwrap_or_else(|e| e.into_inner());
                                continue;
                            }
                            let (woken, waited) = self
                                .cv
                                .wait_timeout(state, POLL_INTERVAL)
                                .unwrap_or_else(|e| e.into_inner());
                            state = woken;
                            if waited.timed_out() {
                                drove = poll;
                                break;
                            }
                        }
                        state.waiting -= 1;
                        // Whoever wakes clears the flag, so it never outlives
                        // the signal it stands for. SeqCst: read by `wake_one`.
                        state.waking = false;
                        self.waking.store(false, Ordering::SeqCst);
                    }
                }
            }
        }
        // SeqCst: keeps the count exact for producers' SeqCst reads.
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        drove
    }

    /// Called after a fiber of this runtime registered a socket. Workers
    /// that went to sleep while no socket was in use wait on the condition
    /// variable with no time-out, so none would wait for the new socket's
    /// events (the monitor's ticks would take them): if none drives, one
    /// is woken, to search, find nothing, and drive (README, "Waiting for
    /// sockets").
    pub(crate) fn socket_registered(&self) {
        // SeqCst: the registering half of a Dekker pair with a worker going
        // to sleep, which adds itself to `sleepers`, fences, and only then
        // looks whether sockets are in use: after the registration's count
        // (`reactor::in_use`) and this fence, either it sees the socket, or
        // this sees it as a sleeper and takes the lock it decides under.
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut state = self.lock();
        if !state.driving && state.waiting > 0 {
            self.signal_waiter(&mut state);
        }
    }

    /// The reactor and this runtime's driver, if sockets are in use and no
    /// worker waits for them yet.
    fn free_driver(&self, state: &State) -> Option<(&'static Reactor, &Driver)> {
        if state.driving || state.driver_broken {
            return None;
        }
        let reactor = reactor::in_use()?;
        let driver = match self.driver.get() {
            Some(driver) => driver,
            // Tried again at each sleep until it can be made (when file
            // descriptors ran out, and come back).
            None => {
                let made = Driver::new(reactor).ok()?;
                self.driver.get_or_init(|| made)
            }
        };
        Some((reactor, driver))
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
        if !self.signal_waiter(&mut state) && state.driving && !state.driver_woken {
            state.driver_woken = true;
            self.wake_driver();
        }
    }

    /// Bumps `epoch` (which also stops workers that registered but do not
    /// wait yet from waiting) and signals one worker waiting on the
    /// condition variable, unless one is being woken already. Returns
    /// whether a worker waits there.
    fn signal_waiter(&self, state: &mut State) -> bool {
        state.epoch += 1;
        if state.waiting == 0 {
            return false;
        }
        if !state.waking {
            state.waking = true;
            // SeqCst: read by `wake_one`'s fast path.
            self.waking.store(true, Ordering::SeqCst);
            self.cv.notify_one();
        }
        true
    }

    fn wake_driver(&self) {
        if let Some(driver) = self.driver.get() {
            driver.wake();
        }
    }

    /// Wakes every worker for good (shutdown).
    pub(crate) fn wake_all(&self) {
        let mut state = self.lock();
        state.all_awake = true;
        state.epoch += 1;
        self.cv.notify_all();
        if state.driving {
            self.wake_driver();
        }
    }
}
