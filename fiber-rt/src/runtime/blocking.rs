//! Running blocking code off the workers: a pool of plain threads that
//! grows on demand and shrinks when idle.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use super::Handle;
use crate::sync::oneshot::{self, RecvTimeoutError};

/// Idle blocking threads exit after this long without work.
const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// At most this many blocking threads at once; more work waits in line.
const MAX_THREADS: usize = 512;

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    state: Mutex<PoolState>,
    cv: Condvar,
}

struct PoolState {
    queue: VecDeque<Job>,
    idle: usize,
    threads: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(PoolState {
            queue: VecDeque::new(),
            idle: 0,
            threads: 0,
        }),
        cv: Condvar::new(),
    })
}

/// Runs blocking `f` (file I/O, a long computation in a C library, a
/// `std::sync` wait) on a thread of its own, so no worker stalls. Join the
/// handle from a fiber to park until it is done. The closure runs in the
/// caller's runtime, if any ([`Handle::enter`]): `spawn`, `run` and
/// [`Handle::current`] work in it as in the fiber that called this.
///
/// `f` runs on a plain thread, not a fiber: a
/// [`fiber_local!`](crate::fiber_local) is a thread-local there. It does
/// not see the caller's values, and the pool keeps its threads, so a value
/// `f` makes stays with the thread, for the next job to run there to see,
/// until the thread ends. Pass what `f` needs in its captures, and take
/// what it makes back in its result.
///
/// ```
/// let rt = fiber_rt::Runtime::new().unwrap();
/// let n = rt.block_on(|| {
///     fiber_rt::spawn_blocking(|| std::fs::read_dir(".").unwrap().count()).join().unwrap()
/// });
/// assert!(n > 0);
/// ```
pub fn spawn_blocking<F, T>(f: F) -> BlockingHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    // The closure runs in the caller's runtime, as the caller did.
    let runtime = Handle::try_current();
    let job: Job = Box::new(move || {
        let _entered = runtime.as_ref().map(Handle::enter);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(result);
    });
    let pool = pool();
    let mut state = pool.state.lock().unwrap_or_else(|e| e.into_inner());
    state.queue.push_back(job);
    // An idle thread counts as idle until it has the lock back, so the
    // jobs already queued for the idle threads count too: each job beyond
    // them gets a thread of its own (a burst of spawns had queued behind
    // one idle thread, and a job waiting for the next one in line waited
    // for good).
    if state.queue.len() <= state.idle {
        pool.cv.notify_one();
    } else if state.threads < MAX_THREADS {
        state.threads += 1;
        let spawned = thread::Builder::new()
            .name("fiber-blocking".into())
            .spawn(run_pool_thread);
        if spawned.is_err() {
            state.threads -= 1; // the queued job waits for a busy thread
        }
    }
    BlockingHandle { rx }
}

fn run_pool_thread() {
    let pool = pool();
    let mut state = pool.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(job) = state.queue.pop_front() {
            drop(state);
            job();
            state = pool.state.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        state.idle += 1;
        let (next, timeout) = pool
            .cv
            .wait_timeout(state, KEEP_ALIVE)
            .unwrap_or_else(|e| e.into_inner());
        state = next;
        state.idle -= 1;
        if timeout.timed_out() && state.queue.is_empty() {
            state.threads -= 1;
            return;
        }
    }
}

/// Waits for a [`spawn_blocking`] job.
#[derive(Debug)]
pub struct BlockingHandle<T> {
    rx: oneshot::Receiver<std::thread::Result<T>>,
}

impl<T> BlockingHandle<T> {
    /// Waits for the job's result; `Err` carries the panic payload.
    pub fn join(self) -> std::thread::Result<T> {
        match self.rx.recv() {
            Ok(result) => result,
            Err(_) => unreachable!("a blocking job always sends its result"),
        }
    }

    /// [`join`](Self::join), waiting at most `timeout`: `Err` gives the
    /// handle back if the job has not finished by then (it runs on
    /// either way: a thread cannot be stopped).
    pub fn join_timeout(mut self, timeout: Duration) -> Result<std::thread::Result<T>, Self> {
        match self.rx.recv_timeout(timeout) {
            Ok(result) => Ok(result),
            Err(RecvTimeoutError::Timeout) => Err(self),
            Err(RecvTimeoutError::Disconnected) => {
                unreachable!("a blocking job always sends its result")
            }
        }
    }

    /// Whether the job has finished (so `join` would not wait).
    pub fn is_finished(&self) -> bool {
        self.rx.is_ready()
    }
}
