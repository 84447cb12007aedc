//! The monitor thread: samples every worker each half slice and sets the
//! preemption flag of one that has run the same fiber for a slice, counted
//! from the last sample before that fiber started (so a slice lasts
//! between half a slice and a slice, plus this thread's wake-up delay).
//! When every worker is idle it sleeps until a worker starts a fiber, so an
//! idle runtime costs no CPU.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::sched::registry::Registry;

#[derive(Default)]
pub(crate) struct Monitor {
    state: Mutex<State>,
    cv: Condvar,
    /// Mirror of `State::parked`, read by workers without the lock.
    parked: AtomicBool,
}

#[derive(Default)]
struct State {
    stop: bool,
    /// The monitor waits for a worker to start a fiber.
    parked: bool,
}

/// What the monitor saw of a worker at its last look.
#[derive(Clone, Copy)]
struct Seen {
    switches: u64,
    since: Instant,
    /// When the monitor set this worker's flag for the fiber it saw.
    flagged: Option<Instant>,
}

/// Idle ticks in a row after which the monitor parks.
const IDLE_TICKS_BEFORE_PARKING: u32 = 4;

impl Monitor {
    /// The monitor thread's loop; returns after [`Monitor::stop`].
    pub(crate) fn run(registry: Arc<Registry>) {
        let monitor = &registry.monitor;
        let slice = registry.config.time_slice;
        let tick = (slice / 2).max(Duration::from_micros(500));
        let clocks = &registry.clocks;
        let now = Instant::now();
        let mut seen: Vec<Seen> = clocks
            .iter()
            .map(|_| Seen {
                switches: u64::MAX,
                since: now,
                flagged: None,
            })
            .collect();
        let mut idle_ticks = 0;
        // When the monitor last looked at the workers.
        let mut last_look = now;
        let mut state = monitor.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if idle_ticks >= IDLE_TICKS_BEFORE_PARKING {
                state.parked = true;
                // SeqCst: pairs with `wake`: a worker that starts a fiber
                // after this store sees it and wakes us; one that started
                // before is seen by the check below.
                monitor.parked.store(true, Ordering::SeqCst);
                // SeqCst: the monitor half of the Dekker pair with `wake`.
                if clocks.iter().any(|c| c.running.load(Ordering::SeqCst)) {
                    state.parked = false;
                    monitor.parked.store(false, Ordering::SeqCst);
                } else {
                    while state.parked && !state.stop {
                        // Idle stacks' memory goes back to the kernel a
                        // period after they went idle, also while the
                        // runtime sleeps; then the monitor sleeps for good.
                        // The pass runs without the lock, which a worker
                        // that starts a fiber takes to wake the monitor: a
                        // wake-up meanwhile is seen by the look above.
                        drop(state);
                        let untrimmed = crate::stack::trim_idle();
                        state = monitor.state.lock().unwrap_or_else(|e| e.into_inner());
                        if !state.parked || state.stop {
                            break;
                        }
                        state = if untrimmed {
                            monitor
                                .cv
                                .wait_timeout(state, crate::stack::TRIM_PERIOD)
                                .unwrap_or_else(|e| e.into_inner())
                                .0
                        } else {
                            // Nothing to trim: until a worker starts a
                            // fiber, or a stack comes to the global pool
                            // (a thread's cache as it exits, another
                            // runtime's stacks): listed for that, then a
                            // look at the pool. A stack given since the
                            // look is given by one that finds the monitor
                            // listed, and notifies under this lock.
                            list_for_trim(monitor);
                            if crate::stack::untrimmed() {
                                unlist_for_trim(monitor);
                                continue;
                            }
                            let state = monitor.cv.wait(state).unwrap_or_else(|e| e.into_inner());
                            unlist_for_trim(monitor);
                            state
                        };
                    }
                    // Woken by a worker that has just started a fiber.
                    last_look = Instant::now();
                }
                idle_ticks = 0;
            } else if !state.stop {
                state = monitor
                    .cv
                    .wait_timeout(state, tick)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            let stop = state.stop;
            // The tick runs without the lock: it may wait for things (the
            // join of a thread the backstop started, whose exit may give
            // stacks to the pool and so wake the monitors that sleep with
            // nothing to trim, this one's lock included). A `stop` meanwhile
            // is seen before the next wait.
            drop(state);
            if stop {
                // The stacks this monitor would have come back for go to
                // the monitors that sleep with nothing to trim.
                if crate::stack::untrimmed() {
                    wake_for_trim();
                }
                return;
            }
            // Rate-limited to a pass a period, for every runtime together.
            crate::stack::trim_idle();
            // Sockets' events, for fibers whose workers are all busy: an
            // idle worker waits for them itself (`sched/sleep/driver.rs`).
            if let Some(reactor) = crate::net::reactor::in_use() {
                reactor.harvest(0);
            }
            let now = Instant::now();
            let mut any_running = false;
            for (index, (clock, seen)) in clocks.iter().zip(seen.iter_mut()).enumerate() {
                // Acquire: pairs with the handler's Release.
                if clock.handoff.swap(false, Ordering::Acquire) {
                    if !registry.hand_off(index) {
                        // No thread now: try again at the next tick (and
                        // keep ticking meanwhile).
                        // Relaxed: this thread reads it back itself.
                        clock.handoff.store(true, Ordering::Relaxed);
                        any_running = true;
                    }
                    *seen = Seen {
                        switches: u64::MAX,
                        since: now,
                        flagged: None,
                    };
                    continue;
                }
                // Relaxed: samples; see `WorkerClock`.
                let switches = clock.switches.load(Ordering::Relaxed);
                let running = clock.running.load(Ordering::Relaxed);
                any_running |= running;
                if switches != seen.switches || !running {
                    // The slice began after the last look: count it from
                    // then, so that it lasts at most `slice` (plus this
                    // thread's wake-up delay). Counting from `now` let it
                    // run up to a tick longer, and since preemptions happen
                    // on ticks, every slice then took three ticks of half
                    // a slice: 1.5 slices.
                    *seen = Seen {
                        switches,
                        since: last_look,
                        flagged: None,
                    };
                    continue;
                }
                if let Some(flagged) = seen.flagged {
                    // Flagged a slice ago and still running: no probe ran.
                    if !registry.config.backstop && now.duration_since(flagged) >= slice {
                        // No signal to take the worker away from the
                        // fiber: what waits behind it moves instead.
                        rescue_queued(&registry, index);
                        seen.flagged = Some(now); // and again a slice later
                    } else if now.duration_since(flagged) >= slice {
                        // Not once the shutdown has begun: it asks itself
                        // (see `runtime/shutdown.rs`).
                        if !registry.is_shutdown()
                            && super::backstop::ask_to_detach(clock, switches)
                        {
                            // Relaxed: a statistic.
                            registry
                                .stats
                                .backstop_signals
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        seen.flagged = Some(now); // ask again a slice later
                    }
                    continue;
                }
                // Asked whether or not the clock's flag is set already: a
                // request that lands in a new slice's `start_slice`, between
                // its clearing of the clock's flag and of the thread's,
                // leaves the first set and the second clear, and asking only
                // while the first is clear would never ask again.
                if now.duration_since(seen.since) >= slice {
                    super::request(clock);
                    seen.flagged = Some(now);
                    // Relaxed: a statistic.
                    registry
                        .stats
                        .preempt_requests
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            last_look = now;
            if any_running {
                balance(&registry);
            }
            idle_ticks = if any_running { 0 } else { idle_ticks + 1 };
            state = monitor.state.lock().unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Called by a worker about to run a fiber from its scheduler loop:
    /// wakes the monitor if it is parked.
    #[inline]
    pub(crate) fn wake(&self) {
        // SeqCst: see `run`; the caller's `running` store comes first.
        if self.parked.load(Ordering::SeqCst) {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.parked {
                state.parked = false;
                self.parked.store(false, Ordering::SeqCst);
                self.cv.notify_all();
            }
        }
    }

    pub(crate) fn stop(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        self.cv.notify_all();
    }
}

/// Monitors parked with nothing to trim (see `Monitor::run`), woken by
/// [`wake_for_trim`].
static TRIM_SLEEPERS: Mutex<Vec<Arc<Monitor>>> = Mutex::new(Vec::new());

/// Lists `monitor` among those [`wake_for_trim`] wakes; called under its
/// state's lock (which is taken before the list's, never after).
fn list_for_trim(monitor: &Arc<Monitor>) {
    let mut sleepers = TRIM_SLEEPERS.lock().unwrap_or_else(|e| e.into_inner());
    if !sleepers.iter().any(|m| Arc::ptr_eq(m, monitor)) {
        sleepers.push(monitor.clone());
    }
}

/// Takes `monitor` off the list of [`list_for_trim`], if still there.
fn unlist_for_trim(monitor: &Arc<Monitor>) {
    TRIM_SLEEPERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|m| !Arc::ptr_eq(m, monitor));
}

/// Wakes the monitors parked with nothing to trim: a stack not trimmed
/// yet came to the global pool (see `stack::pool`), or the monitor that
/// would have come back for such stacks stopped. Called with no monitor's
/// lock and no pool's lock held.
pub(crate) fn wake_for_trim() {
    let sleepers = std::mem::take(&mut *TRIM_SLEEPERS.lock().unwrap_or_else(|e| e.into_inner()));
    for monitor in sleepers {
        // Under its lock, which it holds from listing itself until it
        // waits: the notification cannot come between.
        let _state = monitor.state.lock().unwrap_or_else(|e| e.into_inner());
        monitor.cv.notify_all();
    }
}

/// Moves one fiber waiting on worker `index` (in its local queue, else in
/// its yielded slot) to the global queue, and wakes a worker for it. For a
/// worker whose fiber ignores a preemption request when there is no
/// backstop: the fibers queued behind it would otherwise wait for as long
/// as it runs. Idle workers would steal them, but one that went to sleep
/// just before a fiber was requeued after a switch (a yield puts the
/// yielder back without waking anyone) is not woken for it.
fn rescue_queued(registry: &Registry, index: usize) {
    let queued = loop {
        match registry.stealers[index].steal() {
            crossbeam_deque::Steal::Success(task) => break Some(task),
            crossbeam_deque::Steal::Empty => break None,
            crossbeam_deque::Steal::Retry => continue,
        }
    };
    let task = queued.or_else(|| registry.yielded(index)?.take());
    if let Some(task) = task {
        registry.injector.push(task);
        registry.notify_work();
    }
}

/// Moves one queued fiber from the longest local queue to the global one
/// when two local queues differ by two or more. Busy workers never steal
/// from each other, so without this, spinners that happened to be queued
/// six on one worker and two on the other stayed so, each of the six
/// getting a third of the CPU time of each of the two. A worker whose
/// fiber is preempted looks at the global queue first, so the worker with
/// the shorter queue takes the fiber as often as the other: the split
/// evens out within a few slices, one fiber per look at most.
fn balance(registry: &Registry) {
    let stealers = &registry.stealers;
    let (mut longest, mut max, mut min) = (0, 0, usize::MAX);
    for (i, stealer) in stealers.iter().enumerate() {
        // A fiber in the worker's yielded slot waits like a queued one.
        let yielded = registry.yielded(i).is_some_and(|slot| slot.is_occupied());
        let len = stealer.len() + usize::from(yielded);
        if len > max {
            (longest, max) = (i, len);
        }
        min = min.min(len);
    }
    if max >= min.saturating_add(2) {
        if let crossbeam_deque::Steal::Success(task) = stealers[longest].steal() {
            registry.injector.push(task);
            registry.notify_work();
        }
    }
}
