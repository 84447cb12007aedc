//! Parking the caller, whether it is a fiber (its worker runs something
//! else) or a plain thread (it blocks), and waking it again.

use std::thread::Thread;

use super::task::Task;
use super::task_ref::TaskRef;
use super::worker::{switch_current, Switch};

/// Something that can be woken: a fiber or a plain thread.
#[derive(Clone, Debug)]
pub(crate) enum Waker {
    Fiber(TaskRef),
    Thread(Thread),
}

impl Waker {
    /// The caller's waker.
    pub(crate) fn current() -> Waker {
        match Task::current() {
            Some(task) => Waker::Fiber(task.arc()),
            None => Waker::Thread(std::thread::current()),
        }
    }

    /// Whether this wakes the caller itself.
    pub(crate) fn is_current(&self) -> bool {
        match self {
            Waker::Fiber(task) => Task::current().is_some_and(|me| std::ptr::eq(me, &**task)),
            Waker::Thread(thread) => thread.id() == std::thread::current().id(),
        }
    }

    /// Wakes the fiber or thread; a wake-up that arrives before the park is
    /// kept, so the park returns at once. Returns `false` if the waker is a
    /// fiber the shutdown abandoned, which will never act on the wake-up.
    pub(crate) fn wake(&self) -> bool {
        match self {
            Waker::Fiber(task) => task.unpark(),
            Waker::Thread(thread) => {
                thread.unpark();
                true
            }
        }
    }

    /// Like [`wake`](Self::wake), for a fiber that finished and wakes the
    /// fiber joining it: see [`Task::unpark_joiner`].
    pub(crate) fn wake_joiner(&self) {
        match self {
            // A joiner abandoned by the shutdown takes nothing: the result
            // waits in the slot either way.
            Waker::Fiber(task) => {
                task.unpark_joiner();
            }
            Waker::Thread(thread) => thread.unpark(),
        }
    }
}

/// What a fiber waits for, as fiber dumps show it ("Mutex::lock"). Behind
/// one more reference, `&"Mutex::lock"`, so that the task holds it in a
/// word: a `&str` there made the task five cache lines long, not four.
pub(crate) type Reason = &'static &'static str;

/// Parks the caller until it is woken. May return spuriously: callers wait
/// for their own condition in a loop. `reason` shows in fiber dumps.
pub(crate) fn park(reason: Reason) {
    match Task::current() {
        Some(task) => {
            if task.consume_notification() {
                return;
            }
            task.parked_on.set(reason);
            // Cleared however the park ends, a cancellation's unwind too,
            // so that dumps and the shutdown never show a stale reason.
            let _clear = ClearReason(task);
            switch_hooked(task, Switch::Park);
        }
        None => std::thread::park(),
    }
}

/// A thread start hook (`Builder::on_thread_start`) that waits for a
/// fiber to end (a join, a scope, `block_on`) with no time-out waits for
/// one its own worker would run once the hook returns, and with every
/// worker in its hook at start, none ever runs. A panic that says so
/// beats that silent hang. Called by those waits only: a lock, a
/// receive or a cell's initialisation may wait for a plain thread (a
/// blocking job, another worker's hook), and ends.
///
/// A fiber is never in a hook (hooks run on the worker's own thread before
/// its loop): on one, this is a look at the stack's header, inlined.
#[inline]
pub(crate) fn refuse_in_hook(reason: Reason) {
    if Task::current().is_none() {
        refuse_on_thread(reason);
    }
}

#[inline(never)]
fn refuse_on_thread(reason: Reason) {
    if super::thread::state().in_start_hook.get() {
        panic!(
            "{reason} in a thread start hook: its worker runs no fiber until the \
             hook returns, so a start hook must not wait for the runtime's fibers \
             (std's primitives can wait for other threads)"
        );
    }
}

/// Switches the running fiber `task` away as `how` says, telling its park
/// hook, if any, before and after: a graph runner gives its place up while
/// one of its nodes parks, and also while it yields or is preempted, as
/// the node may be waiting for a sibling still queued for a runner.
/// Off graphs (no hook) a load and a branch.
#[inline(always)]
pub(crate) fn switch_hooked(task: &Task, how: Switch) {
    match task.park_hook.get() {
        None => switch_current(task, how),
        Some(hook) => switch_telling(task, how, hook),
    }
}

/// [`switch_hooked`] with a hook to tell.
#[inline(never)]
fn switch_telling(task: &Task, how: Switch, hook: *const dyn ParkHook) {
    // SAFETY: an installed hook is live until its guard, on this fiber's
    // stack below us, takes it out again.
    let hook = unsafe { &*hook };
    hook.parking();
    let _resumed = Resumed(hook);
    switch_current(task, how);
}

/// Clears what the fiber says it waits for, when dropped.
struct ClearReason<'a>(&'a Task);

impl Drop for ClearReason<'_> {
    fn drop(&mut self) {
        self.0.parked_on.set(&"");
    }
}

/// Told when the fiber that installed it parks and when it runs again: a
/// graph runner gives its place up while one of its nodes waits.
pub(crate) trait ParkHook {
    /// The fiber is about to park (or yield, or be preempted).
    fn parking(&self);
    /// The fiber runs again after that (also when a cancelled fiber
    /// unwinds out of it).
    fn resumed(&self);
}

/// The hook installed on the calling fiber, if any, for a hook installed
/// over it to pass parks on to. It stays live while its guard does.
pub(crate) fn installed_hook() -> Option<*const dyn ParkHook> {
    Task::current().and_then(|task| task.park_hook.get())
}

/// Calls [`ParkHook::resumed`] on drop, so an unwinding park calls it too.
struct Resumed<'a>(&'a dyn ParkHook);

impl Drop for Resumed<'_> {
    fn drop(&mut self) {
        self.0.resumed();
    }
}

/// Keeps a [`ParkHook`] installed on the calling fiber; dropping it puts
/// back the hook it replaced. On a plain thread it does nothing.
pub(crate) struct HookGuard<'a> {
    /// The fiber and the hook to restore; `None` off a fiber.
    installed: Option<(&'static Task, Option<*const dyn ParkHook>)>,
    _hook: std::marker::PhantomData<&'a dyn ParkHook>,
}

impl<'a> HookGuard<'a> {
    /// Installs `hook` on the calling fiber until the guard drops. The
    /// guard must drop on the fiber that made it (keep it a local).
    pub(crate) fn install(hook: &'a (dyn ParkHook + 'a)) -> Self {
        let installed = Task::current().map(|task| {
            let ptr: *const (dyn ParkHook + 'a) = hook;
            // SAFETY: only the lifetime changes. The pointer is read only
            // while it is installed, and the guard, which borrows `hook`
            // for 'a, takes it out before 'a ends.
            let ptr: *const dyn ParkHook = unsafe { std::mem::transmute(ptr) };
            (task, task.park_hook.replace(Some(ptr)))
        });
        HookGuard {
            installed,
            _hook: std::marker::PhantomData,
        }
    }
}

impl Drop for HookGuard<'_> {
    fn drop(&mut self) {
        if let Some((task, previous)) = self.installed.take() {
            task.park_hook.set(previous);
        }
    }
}

/// Lets other ready fibers run, then continues. On a plain thread, yields
/// the thread to the OS.
pub fn yield_now() {
    match Task::current() {
        Some(task) => switch_hooked(task, Switch::Yield),
        None => std::thread::yield_now(),
    }
}

#[cfg(test)]
mod tests {
    //! A wake-up must never be lost, also when it finds an older one still
    //! pending: the woken fiber then consumes the older one, and must still
    //! see what the waker wrote before it called `wake`.

    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{mpsc, Arc, Mutex};
    use std::time::Duration;

    use super::{park, Waker};
    use crate::Builder;

    /// The flag a waker sets, and the fiber it then wakes.
    type Request = (Arc<AtomicBool>, Waker);

    #[test]
    fn a_wake_up_that_finds_an_older_one_pending_is_not_lost() {
        const ROUNDS: u64 = 100_000;
        let rt = Builder::new().workers(2).build().unwrap();
        // The round the waker thread is asked to answer, the flag it sets,
        // and the fiber it wakes.
        let asked = Arc::new(AtomicU64::new(0));
        let slot: Arc<Mutex<Option<Request>>> = Arc::default();
        let done = Arc::new(AtomicBool::new(false));
        let waker_thread = {
            let (asked, slot, done) = (asked.clone(), slot.clone(), done.clone());
            std::thread::spawn(move || {
                let mut answered = 0;
                while !done.load(Ordering::Relaxed) {
                    // Relaxed: the slot's lock orders what it holds.
                    if asked.load(Ordering::Relaxed) == answered {
                        // Gives the core up while it waits: on a loaded
                        // machine a thread spinning here starved the
                        // fiber's worker (a run once took over 30 s).
                        std::thread::yield_now();
                        continue;
                    }
                    answered += 1;
                    let (flag, waker) = slot.lock().unwrap().take().expect("asked");
                    // Release: the flag is the condition the fiber waits for.
                    flag.store(true, Ordering::Release);
                    waker.wake();
                }
            })
        };
        let (tx, rx) = mpsc::channel();
        let progress = asked.clone();
        let fiber = rt.spawn(move || {
            for round in 1..=ROUNDS {
                let flag = Arc::new(AtomicBool::new(false));
                // An older wake-up, pending when the waker's comes.
                Waker::current().wake();
                *slot.lock().unwrap() = Some((flag.clone(), Waker::current()));
                // Relaxed: the slot's lock orders what it holds.
                asked.store(round, Ordering::Relaxed);
                // A varying delay, so that the older wake-up is consumed
                // at varying moments of the waker's `wake`.
                for _ in 0..(round * 7919) % 512 {
                    std::hint::spin_loop();
                }
                // Acquire: pairs with the waker's Release.
                while !flag.load(Ordering::Acquire) {
                    park(&"test");
                }
            }
            tx.send(()).unwrap();
        });
        // A lost wake-up leaves the fiber parked for good: its round
        // stops moving. A loaded machine only slows the rounds down.
        let mut last = (0, std::time::Instant::now());
        let finished = loop {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                other => break other,
            }
            // Relaxed: a progress sample.
            let round = progress.load(Ordering::Relaxed);
            if round != last.0 {
                last = (round, std::time::Instant::now());
            } else if last.1.elapsed() > Duration::from_secs(10) {
                break Err(mpsc::RecvTimeoutError::Timeout);
            }
        };
        done.store(true, Ordering::Relaxed);
        waker_thread.join().unwrap();
        if finished.is_err() {
            // Not even shutdown is asked of a runtime in that state.
            std::mem::forget((fiber, rt));
            panic!("a wake-up was lost: the fiber stays parked");
        }
        fiber.join().unwrap();
    }
}
