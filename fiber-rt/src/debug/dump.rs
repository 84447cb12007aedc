//! A snapshot of every live fiber of a runtime: what it is doing and, for
//! one that is off its stack, where it is, as a symbolized backtrace.
//!
//! The report reads like Go's SIGQUIT dump: one block per fiber, a header
//! line with its id, name, state and age, then its frames innermost first.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::clock::{coarse_now_ns, ns_to_instant};
use super::frames::walk;
use super::memory::{read_str, read_word};
use super::symbols::{resolve, Symbol};
use crate::sched::registry::Registry;
use crate::sched::task::Task;
use crate::sched::task_ref::TaskRef;
use crate::stack::header::{NodeNames, StackHeader};

/// Every live fiber of a runtime at one moment, from
/// [`Runtime::dump`](crate::Runtime::dump). `Display` prints a report
/// (the runtime's own frames left out; `{:#}` prints every frame).
///
/// ```
/// use fiber_rt::{debug::FiberState, sync::mpsc, Runtime};
///
/// let rt = Runtime::new().unwrap();
/// let (tx, rx) = mpsc::bounded::<u32>(1);
/// let waiting = rt.spawn(move || rx.recv());
/// # while !rt.dump().fibers.iter().any(|f| matches!(f.state, FiberState::Parked { .. })) {
/// #     std::thread::yield_now();
/// # }
/// let dump = rt.dump();
/// assert!(matches!(&dump.fibers[0].state, FiberState::Parked { on } if on == "mpsc::Receiver::recv"));
/// println!("{dump}");
/// tx.send(1).unwrap();
/// assert_eq!(waiting.join().unwrap(), Ok(1));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Dump {
    /// Worker threads of the runtime.
    pub workers: usize,
    /// Live fibers, oldest (lowest id) first.
    pub fibers: Vec<FiberInfo>,
}

/// One fiber in a [`Dump`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FiberInfo {
    /// The fiber's id, unique in the process.
    pub id: u64,
    /// The name given with [`FiberBuilder::name`](crate::FiberBuilder::name).
    pub name: Option<Arc<str>>,
    /// The graph node it was running, for a fiber off its stack in a node.
    pub node: Option<String>,
    /// What the fiber was doing.
    pub state: FiberState,
    /// Time since it was spawned (to a few milliseconds).
    pub age: Duration,
    /// Where a fiber that is off its stack stands, innermost frame first;
    /// empty for a running or finished fiber.
    pub backtrace: Vec<Frame>,
}

/// What a fiber was doing when the dump was taken.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FiberState {
    /// On a worker thread, running.
    Running {
        /// The worker's index (threads are named `<prefix>-<index>`).
        worker: usize,
    },
    /// In a run queue, waiting for a worker.
    Ready,
    /// Running on a thread of its own: it ran on without reaching a probe,
    /// so the preemption backstop gave its worker a fresh thread (see
    /// [`preempt`](crate::preempt)); it rejoins a worker at its next
    /// switch. Also, briefly, a fiber caught between two switches.
    Detached,
    /// Waiting to be woken.
    Parked {
        /// What it waits on: `"Mutex::lock"`, `"mpsc::Receiver::recv"`,
        /// `"JoinHandle::join"`, ..
        on: String,
    },
    /// In [`sleep`](crate::sleep).
    Sleeping {
        /// When it is due to wake.
        until: Instant,
    },
    /// Returned, and about to leave the runtime's list.
    Finished,
}

/// One frame of a backtrace.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Frame {
    /// The return address (for the innermost frame: where the fiber
    /// switched away).
    pub addr: usize,
    /// The function holding the address, if a symbol table knows it.
    pub symbol: Option<Symbol>,
}

impl Frame {
    /// The function's name, or `"??"`.
    pub fn function(&self) -> &str {
        self.symbol.as_ref().map_or("??", |s| s.name.as_str())
    }
}

impl FiberInfo {
    /// Whether any frame of the backtrace is in a function whose name
    /// contains `name`.
    pub fn in_function(&self, name: &str) -> bool {
        self.backtrace.iter().any(|f| f.function().contains(name))
    }
}

/// Takes a dump of `registry`'s fibers.
pub(crate) fn take(registry: &Registry) -> Dump {
    // Holding each task's Arc keeps its control block alive while we look
    // at it; its stack stays mapped as long as the fiber has not finished.
    let mut tasks = registry.live_tasks();
    tasks.sort_by_key(|t| t.id);
    let now = coarse_now_ns();
    Dump {
        workers: registry.config.workers,
        fibers: tasks.iter().map(|t| describe(registry, t, now)).collect(),
    }
}

fn describe(registry: &Registry, task: &TaskRef, now: u64) -> FiberInfo {
    let state = state_of(registry, task);
    let off_stack = !matches!(
        state,
        FiberState::Running { .. } | FiberState::Detached | FiberState::Finished
    );
    let sp = saved_sp(task).filter(|_| off_stack);
    let backtrace = match sp {
        None => Vec::new(),
        Some(sp) => {
            walk(sp)
                .into_iter()
                .map(|addr| Frame {
                    addr,
                    // A return address points after its call: look up the
                    // byte before it, which is still in the calling function.
                    symbol: resolve(addr.wrapping_sub(1)).map(|mut s| {
                        s.offset += 1;
                        s
                    }),
                })
                .collect()
        }
    };
    FiberInfo {
        id: task.id,
        name: task.name.clone(),
        node: sp.and_then(node_at),
        state,
        age: Duration::from_nanos(now.saturating_sub(task.created)),
        backtrace,
    }
}

fn state_of(registry: &Registry, task: &Task) -> FiberState {
    if task.is_finished() {
        return FiberState::Finished;
    }
    if task.is_parked() {
        // Relaxed: a hint; the park that follows a sleep's store publishes it.
        let until = task.sleep_until.load(Ordering::Relaxed);
        let on = parked_on(task);
        if until != 0 && on == "sleep" {
            return FiberState::Sleeping {
                until: ns_to_instant(until),
            };
        }
        return FiberState::Parked { on };
    }
    let worker = registry.clocks.iter().position(|clock| {
        // Relaxed: a sample, like the monitor's.
        clock.running.load(Ordering::Relaxed) && clock.task.load(Ordering::Relaxed) == task.id
    });
    match worker {
        Some(worker) => FiberState::Running { worker },
        // A queued fiber has its context saved, or has not started; one
        // without is on a CPU.
        None if saved_sp(task).is_some() || task.is_unstarted() => FiberState::Ready,
        None => FiberState::Detached,
    }
}

/// The reason the fiber gave when it parked. The fiber writes it without
/// atomics, so it is read as a checked copy: a read that races with a new
/// park gives a wrong reason at worst.
fn parked_on(task: &Task) -> String {
    // A word pointing to the `&str` (see `park::Reason`).
    let Some(at) = read_word(task.parked_on.as_ptr() as usize) else {
        return String::new();
    };
    let (Some(ptr), Some(len)) = (read_word(at), read_word(at + 8)) else {
        return String::new();
    };
    // `&str` is (pointer, length) in either order: take the order whose
    // length is plausible.
    let (ptr, len) = if len < 4096 { (ptr, len) } else { (len, ptr) };
    read_str(ptr, len, 256).unwrap_or_default()
}

/// The graph node named in the header of the stack holding `sp`, a saved
/// stack pointer. Read as a checked copy, like the park's reason: a fiber
/// resumed meanwhile, or a run that ended, gives a wrong name at worst.
fn node_at(sp: usize) -> Option<String> {
    let header = StackHeader::of_addr(sp)? as usize;
    // The low half of the word holding the `u32` (little-endian).
    let node = read_word(header + std::mem::offset_of!(StackHeader, node))? as u32;
    let names = read_word(header + std::mem::offset_of!(StackHeader, node_names))?;
    if node == 0 || names == 0 {
        return None;
    }
    let index = node as usize - 1;
    let kind = read_word(names + std::mem::offset_of!(NodeNames, kind))?;
    let first = read_word(names + std::mem::offset_of!(NodeNames, first))?;
    let step = read_word(names + std::mem::offset_of!(NodeNames, step))?;
    let (ptr, len) = match kind {
        NodeNames::STRIDED => {
            let at = first + index * step;
            let (a, b) = (read_word(at)?, read_word(at + 8)?);
            // `&str` is (pointer, length) in either order: take the order
            // whose length is plausible.
            if b < 4096 {
                (a, b)
            } else {
                (b, a)
            }
        }
        NodeNames::PACKED => {
            let start = match index {
                0 => 0,
                _ => read_word(step + (index - 1) * 8)?,
            };
            let end = read_word(step + index * 8)?;
            (first + start, end.checked_sub(start)?)
        }
        _ => return None,
    };
    read_str(ptr, len, 256).filter(|node| !node.is_empty())
}

/// The fiber's saved stack pointer, if it has one (it is off its stack).
fn saved_sp(task: &Task) -> Option<usize> {
    // `Option<StackPointer>` is a nullable pointer: 0 is `None`.
    read_word(task.sp_slot() as usize).filter(|&sp| sp != 0)
}

impl fmt::Display for Dump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "fiber dump: {} fiber{} on {} worker{}",
            self.fibers.len(),
            if self.fibers.len() == 1 { "" } else { "s" },
            self.workers,
            if self.workers == 1 { "" } else { "s" },
        )?;
        for fiber in &self.fibers {
            writeln!(f)?;
            if f.alternate() {
                write!(f, "{fiber:#}")?;
            } else {
                write!(f, "{fiber}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for FiberInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fiber {}", self.id)?;
        if let Some(name) = &self.name {
            write!(f, " \"{name}\"")?;
        }
        if let Some(node) = &self.node {
            write!(f, " (node {node})")?;
        }
        write!(f, " [{}, {}]", self.state, Age(self.age))?;
        if self.backtrace.is_empty() {
            return writeln!(f);
        }
        writeln!(f, ":")?;
        let frames = if f.alternate() {
            &self.backtrace[..]
        } else {
            user_frames(&self.backtrace)
        };
        for frame in frames {
            match &frame.symbol {
                Some(s) => writeln!(f, "    {:#018x} {}+{:#x}", frame.addr, s.name, s.offset)?,
                None => writeln!(f, "    {:#018x} ??", frame.addr)?,
            }
        }
        Ok(())
    }
}

/// Prefixes of the functions between a fiber's own code and the switch
/// (parking, waiting) or its start (spawn wrapper, panic catching): the
/// same in every backtrace, so the report leaves them out unless asked
/// with `{:#}`, as Go leaves out its runtime's frames.
const RUNTIME_FRAMES: &[&str] = &[
    "fiber_rt::sched::",
    "fiber_rt::sync::waiter::",
    "fiber_rt::runtime::join::",
    "fiber_asm_trampoline",
    "std::panicking::",
    "std::panic::catch_unwind",
    "__rust_try",
    "<core::panic::unwind_safe::AssertUnwindSafe<F> as core::ops::function::FnOnce<()>>::call_once",
    "core::ops::function::FnOnce::call_once",
];

/// `frames` without the runtime's frames at either end; all of them if
/// nothing else is left.
fn user_frames(frames: &[Frame]) -> &[Frame] {
    let runtime = |f: &Frame| RUNTIME_FRAMES.iter().any(|p| f.function().starts_with(p));
    let first = frames.iter().position(|f| !runtime(f));
    let last = frames.iter().rposition(|f| !runtime(f));
    match (first, last) {
        (Some(first), Some(last)) => &frames[first..=last],
        _ => frames,
    }
}

impl fmt::Display for FiberState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FiberState::Running { worker } => write!(f, "running on worker {worker}"),
            FiberState::Ready => f.write_str("ready"),
            FiberState::Detached => f.write_str("running, detached from its worker"),
            FiberState::Parked { on } if on.is_empty() => f.write_str("parked"),
            FiberState::Parked { on } => write!(f, "parked on {on}"),
            FiberState::Sleeping { until } => {
                let left = until.saturating_duration_since(Instant::now());
                write!(f, "sleeping, {} left", Age(left))
            }
            FiberState::Finished => f.write_str("finished"),
        }
    }
}

/// A duration as a person reads it: `850us`, `12ms`, `3.2s`, `5m02s`.
struct Age(Duration);

impl fmt::Display for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d < Duration::from_millis(1) {
            write!(f, "{}us", d.as_micros())
        } else if d < Duration::from_secs(1) {
            write!(f, "{}ms", d.as_millis())
        } else if d < Duration::from_secs(60) {
            write!(f, "{:.1}s", d.as_secs_f64())
        } else {
            write!(f, "{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str) -> Frame {
        Frame {
            addr: 1,
            symbol: Some(Symbol {
                name: name.into(),
                offset: 0,
            }),
        }
    }

    #[test]
    fn the_report_leaves_out_the_runtime_frames_at_both_ends() {
        let frames = [
            frame("fiber_rt::sched::worker::Worker::switch_away"),
            frame("fiber_rt::sync::waiter::Waiter::wait"),
            frame("fiber_rt::sync::mpsc::Receiver<T>::recv"),
            frame("app::wait_here"),
            frame("std::panic::catch_unwind"),
            frame("fiber_rt::sched::task::start"),
            frame("fiber_asm_trampoline"),
        ];
        let kept: Vec<&str> = user_frames(&frames).iter().map(Frame::function).collect();
        assert_eq!(
            kept,
            ["fiber_rt::sync::mpsc::Receiver<T>::recv", "app::wait_here"]
        );
        let only_runtime = &frames[5..];
        assert_eq!(user_frames(only_runtime).len(), 2);
        let info = FiberInfo {
            id: 3,
            name: None,
            node: None,
            state: FiberState::Parked { on: "x".into() },
            age: Duration::from_millis(5),
            backtrace: frames.to_vec(),
        };
        assert_eq!(info.to_string().lines().count(), 3, "{info}");
        assert_eq!(format!("{info:#}").lines().count(), 8, "{info:#}");
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(Age(Duration::from_micros(850)).to_string(), "850us");
        assert_eq!(Age(Duration::from_millis(12)).to_string(), "12ms");
        assert_eq!(Age(Duration::from_millis(3240)).to_string(), "3.2s");
        assert_eq!(Age(Duration::from_secs(302)).to_string(), "5m02s");
    }
}
