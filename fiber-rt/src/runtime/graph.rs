//! Running a dependency graph on the runtime: every ready node runs as a
//! fiber, so a node may block, sleep, spawn, use channels, or run a graph
//! of its own.

use std::cell::Cell;
use std::sync::Arc;

use super::Runtime;
use crate::dag::{self, Graph, GraphError};
use crate::debug::Trace;
use crate::sched::lend::lend;
use crate::sched::registry::Registry;
use crate::sched::task::Task;
use crate::stack::header::HEADER_SIZE;
use crate::stack::StackHeader;
use crate::sync::oneshot;

impl Runtime {
    /// Runs `graph` to the end and returns the output of every node, or
    /// the error naming the nodes that failed. From a fiber of this
    /// runtime, the fiber runs nodes itself (on a stack borrowed from the
    /// pool if it has less room left than a node asks for), then parks
    /// until the rest are done; from a plain thread, the thread blocks.
    ///
    /// ```
    /// use fiber_rt::dag::GraphBuilder;
    ///
    /// let rt = fiber_rt::Runtime::new().unwrap();
    /// let mut b = GraphBuilder::new();
    /// let first = b.node("first", || ());
    /// let second = b.node("second", || ());
    /// b.edge(first, second);
    /// rt.run(b.build().unwrap()).unwrap();
    /// ```
    pub fn run<G: Graph>(&self, graph: G) -> Result<G::Outputs, GraphError>
    where
        G::Outputs: Send,
    {
        run_on(self.registry(), graph)
    }
}

/// Runs `graph` on the caller's runtime: the caller must be a fiber.
///
/// A caller cancelled meanwhile (by its handle, or by a
/// [`timeout`](crate::timeout) around the call) abandons the run: no node
/// starts any more, the fibers running its nodes are cancelled, and the
/// caller unwinds at once, without waiting for them to.
///
/// # Panics
///
/// If called outside a fiber on a thread that entered no runtime
/// ([`Handle::enter`](crate::Handle::enter)); use [`Runtime::run`] there.
pub fn run<G: Graph>(graph: G) -> Result<G::Outputs, GraphError>
where
    G::Outputs: Send,
{
    run_on(&super::current_registry("run"), graph)
}

impl Runtime {
    /// Like [`run`](Runtime::run), and also returns a [`Trace`] of the run:
    /// when each node started and ended, on which worker, and how often it
    /// was preempted. Draw it with [`Trace::write_svg`] or load
    /// [`Trace::write_chrome_json`]'s file in Perfetto.
    ///
    /// ```
    /// use fiber_rt::dag::GraphBuilder;
    ///
    /// let rt = fiber_rt::Runtime::new().unwrap();
    /// let mut b = GraphBuilder::new();
    /// let load = b.node("load", || ());
    /// let parse = b.node("parse", || ());
    /// b.edge(load, parse);
    /// let (result, trace) = rt.run_traced(b.build().unwrap());
    /// result.unwrap();
    /// assert_eq!(trace.nodes().len(), 2);
    /// let (load, parse) = (trace.nodes()[0].span.unwrap(), trace.nodes()[1].span.unwrap());
    /// assert!(load.end <= parse.start);
    /// ```
    pub fn run_traced<G: Graph>(&self, graph: G) -> (Result<G::Outputs, GraphError>, Trace)
    where
        G::Outputs: Send,
    {
        run_traced_on(self.registry(), graph)
    }
}

/// [`Runtime::run_traced`] on the caller's runtime: the caller must be a
/// fiber, which parks until the run is done (its nodes all run on fibers
/// of their own, so that the trace shows each on its worker).
///
/// # Panics
///
/// If called outside a fiber on a thread that entered no runtime
/// ([`Handle::enter`](crate::Handle::enter)); use [`Runtime::run_traced`]
/// there.
pub fn run_traced<G: Graph>(graph: G) -> (Result<G::Outputs, GraphError>, Trace)
where
    G::Outputs: Send,
{
    run_traced_on(&super::current_registry("run_traced"), graph)
}

fn run_traced_on<G: Graph>(
    registry: &Arc<Registry>,
    graph: G,
) -> (Result<G::Outputs, GraphError>, Trace)
where
    G::Outputs: Send,
{
    let (tx, rx) = oneshot::channel();
    let (recorder, abandon) = dag::exec::start_traced(
        graph,
        Arc::new(spawner(registry)),
        registry.config.workers,
        Some(registry.config.stack_size),
        sender(tx),
    );
    // A caller cancelled while it waits abandons the run, as `run`'s does.
    struct AbandonOnUnwind(Option<dag::exec::Abandon>);
    impl Drop for AbandonOnUnwind {
        fn drop(&mut self) {
            if let Some(abandon) = self.0.take() {
                abandon();
            }
        }
    }
    let mut on_unwind = AbandonOnUnwind(Some(abandon));
    let result = rx.recv().expect("a graph run always reports its result");
    on_unwind.0 = None;
    (result, recorder.finish())
}

/// Runs each ready node as a fiber of `registry`.
fn spawner(registry: &Arc<Registry>) -> impl Fn(dag::Task) + Send + Sync + 'static {
    let registry = registry.clone();
    move |task: dag::Task| {
        if let Some(run) = task.helper_of() {
            // Offered to idle workers rather than spawned: see `offers`.
            registry.offers.offer(run, task);
            registry.notify_work();
            return;
        }
        let stack = Some(task.stack_size()).filter(|&s| s > 0);
        // If no stack can be had (now, or at the fiber's first run), the
        // task is dropped unrun, which fails its node (and skips its
        // dependents) instead of losing it.
        let _ = registry.spawn(None, stack, move || {
            let _locals = crate::local::DropAtExit;
            task.run_on_own_fiber()
        });
    }
}

/// Hands a run's result to the caller waiting on the other end.
fn sender<O: Send + 'static>(tx: oneshot::Sender<Result<O, GraphError>>) -> dag::Done<O> {
    Box::new(move |result| {
        // The caller waits on the receiver, so it is still there.
        let _ = tx.send(result);
    })
}

/// Runs `graph` and waits for its result. A caller that is a fiber of
/// `registry` is the run's first runner: it runs nodes until none is left
/// queued, then waits for the others (if it was not the last, which hands
/// it the result at once). That saves starting a fiber and waking the
/// caller, most of the cost of a small graph.
///
/// Every node is promised a stack of the size it asks for, the runtime's
/// default if it asks for none. A caller with that much room left runs
/// nodes right on its stack; any other borrows a default stack from the
/// pool for the while ([`lend`]), since room already used, or nested runs
/// each running nodes further down one stack, would overflow where a
/// fresh fiber does not (and without guard pages, silently corrupt
/// memory).
pub(super) fn run_on<G: Graph>(registry: &Arc<Registry>, graph: G) -> Result<G::Outputs, GraphError>
where
    G::Outputs: Send,
{
    let width = registry.config.workers;
    let spawn = spawner(registry);
    let withdraw = |run| registry.offers.withdraw(run);
    let default = Some(registry.config.stack_size);
    let Some(caller) = caller(registry) else {
        return dag::exec::run_here(graph, spawn, width, default, None, |_, _| {}, withdraw);
    };
    let default = registry.config.stack_size;
    let left = room_left();
    if left >= default {
        let run_first = |task: dag::Task, stack| task.run_here(stack);
        return dag::exec::run_here(
            graph,
            spawn,
            width,
            Some(default),
            Some(left),
            run_first,
            withdraw,
        );
    }
    let lent = move |task: dag::Task, stack| {
        let guarded = registry.config.guard_pages;
        let task = Cell::new(Some(task));
        let ran = lend(caller, stack, guarded, || {
            if let Some(task) = task.take() {
                task.run_here(stack);
            }
        });
        if ran.is_err() {
            // No stack to lend: the task gets a fiber of its own, or, if
            // there is no stack for that either, fails its node.
            if let Some(task) = task.take() {
                spawner(registry)(task);
            }
        }
    };
    dag::exec::run_here(
        graph,
        spawn,
        width,
        Some(default),
        Some(default),
        lent,
        withdraw,
    )
}

/// The calling fiber, if it is a fiber of `registry` and not itself
/// running a graph's node.
fn caller(registry: &Arc<Registry>) -> Option<&'static Task> {
    let task = Task::current().filter(|task| Arc::ptr_eq(&task.registry, registry))?;
    if crate::sched::park::installed_hook().is_some() {
        // A node of another run: its runner keeps its place while the node
        // runs nodes of its own, so let fresh fibers run them.
        return None;
    }
    Some(task)
}

/// Bytes of stack left below the caller's frame, on the fiber stack it
/// runs on.
fn room_left() -> usize {
    let Some(header) = StackHeader::current() else {
        return 0;
    };
    // SAFETY: the header of the stack we run on, live while we do.
    let header = unsafe { &*header };
    let top = header as *const StackHeader as usize + HEADER_SIZE;
    let guard = if header.guarded {
        crate::stack::arena::page_size()
    } else {
        0
    };
    let lowest = top - header.size + guard;
    crate::stack::header::current_sp().saturating_sub(lowest)
}

#[cfg(test)]
mod tests {
    //! Who runs a graph's nodes when a fiber runs it: the caller first
    //! (on a lent stack when its own has too little room left), with the
    //! others on runner fibers; never a plain thread.

    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::Duration;

    use crate::dag::{FailureKind, GraphBuilder};
    use crate::{Builder, FiberBuilder};

    /// The calling fiber's id; 0 on a plain thread.
    fn fiber_id() -> u64 {
        crate::current().map_or(0, |fiber| fiber.id)
    }

    /// A graph of one node that records the fiber it ran on.
    fn one_node(ran_on: &Arc<AtomicU64>) -> crate::dag::DynGraph {
        let ran_on = Arc::clone(ran_on);
        let mut b = GraphBuilder::new();
        b.node("only", move || {
            // Relaxed: read after the run, which orders it.
            ran_on.store(fiber_id(), Ordering::Relaxed);
        });
        b.build().unwrap()
    }

    /// Runs `f` on a thread of its own and fails if it takes more than
    /// `secs` seconds (a deadlock), instead of hanging the test run.
    fn within(secs: u64, f: impl FnOnce() + Send + 'static) {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            f();
            let _ = tx.send(());
        });
        rx.recv_timeout(Duration::from_secs(secs))
            .expect("the runs finish without deadlock");
    }

    /// Runs `f` on a fiber of `rt` with a stack large enough to run nodes
    /// (a default stack's worth of room left after the caller's frames).
    fn on_big_stack<T: Send + 'static>(
        rt: &crate::Runtime,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        FiberBuilder::new()
            .stack_size(4 << 20)
            .spawn_on(rt, f)
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn a_fiber_that_runs_a_graph_runs_its_first_node_itself() {
        let rt = Builder::new().workers(2).build().unwrap();
        let ran_on = Arc::new(AtomicU64::new(0));
        let graph = one_node(&ran_on);
        let caller = on_big_stack(&rt, move || {
            crate::run(graph).unwrap();
            fiber_id()
        });
        assert_ne!(caller, 0);
        // Relaxed: the run (and the join) ordered the node's store before this.
        assert_eq!(ran_on.load(Ordering::Relaxed), caller);
    }

    #[test]
    fn a_plain_thread_that_runs_a_graph_has_its_nodes_run_on_fibers() {
        let rt = Builder::new().workers(2).build().unwrap();
        let ran_on = Arc::new(AtomicU64::new(0));
        rt.run(one_node(&ran_on)).unwrap();
        // Relaxed: the run (and the join) ordered the node's store before this.
        assert_ne!(ran_on.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_fiber_with_a_small_stack_runs_the_nodes_on_a_lent_stack() {
        let rt = Builder::new().workers(2).build().unwrap();
        let ran_on = Arc::new(AtomicU64::new(0));
        let mut b = GraphBuilder::new();
        let seen = Arc::clone(&ran_on);
        // Needs more stack than the caller's 32 KiB: it would overflow it.
        let deep = b.node("deep", move || {
            let buffer = std::hint::black_box([7u8; 40 * 1024]);
            assert_eq!(buffer[40 * 1024 - 1], 7);
            // Relaxed: read after the run, which orders it.
            seen.store(fiber_id(), Ordering::Relaxed);
        });
        let after = b.node("after", || {});
        b.edge(deep, after);
        let deep_graph = b.build().unwrap();
        let caller = FiberBuilder::new()
            .stack_size(32 * 1024)
            .spawn_on(&rt, move || {
                crate::run(deep_graph).unwrap();
                fiber_id()
            })
            .unwrap()
            .join()
            .unwrap();
        // Relaxed: the run (and the join) ordered the node's store before this.
        assert_eq!(ran_on.load(Ordering::Relaxed), caller);
    }

    #[test]
    fn a_fiber_of_another_runtime_leaves_the_nodes_to_the_runtime_asked() {
        let rt = Arc::new(Builder::new().thread_name("asked").build().unwrap());
        let other = Builder::new().thread_name("other").build().unwrap();
        let thread = Arc::new(std::sync::Mutex::new(String::new()));
        let mut b = GraphBuilder::new();
        let seen = Arc::clone(&thread);
        b.node("only", move || {
            let name = std::thread::current().name().unwrap_or("").to_owned();
            *seen.lock().unwrap() = name;
        });
        let graph = b.build().unwrap();
        let runner = Arc::clone(&rt);
        other.block_on(move || runner.run(graph).unwrap());
        let thread = thread.lock().unwrap().clone();
        assert!(thread.starts_with("asked"), "ran on thread {thread:?}");
    }

    /// The top of the stack the caller runs on.
    fn stack_top() -> usize {
        crate::stack::StackHeader::current().map_or(0, |header| header as usize)
    }

    #[test]
    fn a_fiber_with_a_default_stack_runs_the_nodes_on_a_lent_stack() {
        // A node is promised a default stack, and the caller has used some
        // of its own: it cannot offer that much room, so it borrows a
        // stack. Nodes there may park (and move to another worker), and
        // fail, like nodes anywhere.
        let rt = Builder::new().workers(2).build().unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut b = GraphBuilder::new();
        let record = Arc::clone(&seen);
        let sleeper = b.node("sleeper", move || {
            let before = (fiber_id(), stack_top(), super::room_left());
            crate::sleep(Duration::from_millis(5));
            let after = (fiber_id(), stack_top());
            record.lock().unwrap().push((before, after));
        });
        let failing = b.node("failing", || panic!("on a lent stack"));
        b.edge(sleeper, failing);
        let graph = b.build().unwrap();
        let default = rt.registry().config.stack_size;
        let (caller, own_top, err) = rt.block_on(move || {
            let err = crate::run(graph).unwrap_err();
            (fiber_id(), stack_top(), err)
        });
        assert_eq!(err.failures()[0].node, "failing");
        assert_eq!(err.failures()[0].kind, FailureKind::Panicked);
        let seen = seen.lock().unwrap();
        let ((id, top, room), (id_after, top_after)) = seen[0];
        assert_eq!((id, id_after), (caller, caller));
        assert_ne!(top, own_top, "the node ran on the caller's own stack");
        assert_eq!(top, top_after, "the node came back on another stack");
        assert!(room > default - 8 * 1024, "{room} bytes left of {default}");
    }

    /// Goes down the fiber's stack in 16 KiB frames until less than `room`
    /// bytes are left, then runs `f`.
    fn deep_until<T>(room: usize, f: impl FnOnce() -> T) -> T {
        if super::room_left() < room {
            return f();
        }
        let frame = std::hint::black_box([1u8; 16 * 1024]);
        let out = deep_until(room, f);
        assert_eq!(std::hint::black_box(frame)[0], 1);
        out
    }

    #[test]
    fn a_caller_deep_in_its_stack_runs_a_node_that_needs_room_on_a_lent_stack() {
        let rt = Builder::new().workers(2).build().unwrap();
        let ran_on = Arc::new(AtomicU64::new(0));
        let mut b = GraphBuilder::new();
        let seen = Arc::clone(&ran_on);
        // Uses most of a default (256 KiB) stack.
        b.node("hungry", move || {
            deep_until(64 * 1024, || ());
            // Relaxed: read after the run, which orders it.
            seen.store(fiber_id(), Ordering::Relaxed);
        });
        let graph = b.build().unwrap();
        // 4 MiB, of which the caller leaves less than a default stack.
        let caller = on_big_stack(&rt, move || {
            deep_until(200 * 1024, move || crate::run(graph).unwrap());
            fiber_id()
        });
        // Relaxed: as above.
        assert_eq!(ran_on.load(Ordering::Relaxed), caller);
    }

    #[test]
    fn a_caller_cancelled_while_its_node_parks_on_a_lent_stack_unwinds() {
        let rt = Builder::new().workers(2).build().unwrap();
        let (started, asleep) = mpsc::channel();
        let callers: Vec<_> = (0..2)
            .map(|_| {
                let started = started.clone();
                let mut b = GraphBuilder::new();
                b.node("napper", move || {
                    started.send(()).unwrap();
                    crate::sleep(Duration::from_secs(3600));
                });
                let graph = b.build().unwrap();
                rt.spawn(move || {
                    let _ = crate::run(graph);
                    // Not reached: the fiber unwinds out of the run.
                    loop {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        for _ in 0..2 {
            asleep.recv().unwrap();
        }
        within(20, move || drop(rt));
        for caller in callers {
            assert!(caller.join().unwrap_err().is_cancelled());
        }
    }

    /// Runs `graph` from a fiber of a 4-worker runtime whose nodes each
    /// wait (busy, holding their runner) until 4 of them run at once, or
    /// 2 seconds; returns how many ran at once at most.
    fn most_at_once(
        build: impl FnOnce(&mut GraphBuilder, &dyn Fn() -> Box<dyn Fn() + Send + Sync>),
    ) -> u64 {
        let rt = Builder::new()
            .workers(4)
            .preempt_signals(false)
            .build()
            .unwrap();
        let running = Arc::new(AtomicU64::new(0));
        let most = Arc::new(AtomicU64::new(0));
        let node = {
            let (running, most) = (Arc::clone(&running), Arc::clone(&most));
            move || -> Box<dyn Fn() + Send + Sync> {
                let (running, most) = (Arc::clone(&running), Arc::clone(&most));
                Box::new(move || {
                    // Relaxed: counts only; no data is published.
                    let now = running.fetch_add(1, Ordering::Relaxed) + 1;
                    most.fetch_max(now, Ordering::Relaxed);
                    let start = std::time::Instant::now();
                    while most.load(Ordering::Relaxed) < 4
                        && start.elapsed() < Duration::from_secs(2)
                    {
                        std::hint::spin_loop();
                    }
                    running.fetch_sub(1, Ordering::Relaxed);
                })
            }
        };
        let mut b = GraphBuilder::new();
        build(&mut b, &node);
        let graph = b.build().unwrap();
        rt.block_on(move || crate::run(graph).unwrap());
        // Relaxed: the run ordered every node before this.
        most.load(Ordering::Relaxed)
    }

    #[test]
    fn independent_sources_run_on_as_many_runners_as_workers() {
        let most = most_at_once(|b, node| {
            for i in 0..8 {
                let f = node();
                b.node(format!("source {i}"), f);
            }
        });
        assert_eq!(most, 4);
    }

    #[test]
    fn a_fan_out_runs_on_as_many_runners_as_workers() {
        let most = most_at_once(|b, node| {
            let root = b.node("root", || ());
            for i in 0..8 {
                let f = node();
                let leaf = b.node(format!("leaf {i}"), f);
                b.edge(root, leaf);
            }
        });
        assert_eq!(most, 4);
    }

    /// A root and two leaves that each wait (calling `pause` between
    /// looks, never parking) until the other has started, 5 seconds at
    /// most; and the count of leaves that saw the other.
    fn waiting_siblings(pause: fn()) -> (crate::dag::DynGraph, Arc<AtomicU64>) {
        let started = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let met = Arc::new(AtomicU64::new(0));
        let mut b = GraphBuilder::new();
        let root = b.node("root", || ());
        for me in 0..2 {
            let (started, met) = (Arc::clone(&started), Arc::clone(&met));
            let leaf = b.node("leaf", move || {
                // Relaxed: flags, no data.
                started[me].store(1, Ordering::Relaxed);
                let start = std::time::Instant::now();
                while start.elapsed() < Duration::from_secs(5) {
                    if started[1 - me].load(Ordering::Relaxed) == 1 {
                        met.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    pause();
                }
            });
            b.edge(root, leaf);
        }
        (b.build().unwrap(), met)
    }

    #[test]
    fn siblings_that_wait_for_each_other_without_parking_both_run() {
        // Each leaf spins (holding its runner) until the other has
        // started: the second needs the idle worker to take the run's
        // offer of help, also when that worker was about to sleep. Without
        // signals, so that nothing but the offer brings in a second thread.
        let rt = Builder::new()
            .workers(2)
            .preempt_signals(false)
            .build()
            .unwrap();
        let met = rt.block_on(|| {
            (0..1000u64)
                .filter(|round| {
                    let (graph, met) = waiting_siblings(std::hint::spin_loop);
                    crate::run(graph).unwrap();
                    // A pause of varying length, so that the next run
                    // finds the other worker at varying points of its
                    // search before sleeping, or asleep.
                    std::thread::sleep(Duration::from_micros(round * 37 % 150));
                    // Relaxed: the run ordered the nodes before this.
                    met.load(Ordering::Relaxed) == 2
                })
                .count()
        });
        assert_eq!(met, 1000);
    }

    #[test]
    fn siblings_that_wait_for_each_other_by_yielding_both_run_on_busy_workers() {
        // Every worker always has a fiber to run (two that yield in a
        // loop), so none ever goes looking for work: the run's offer of
        // help must still get its turn, or the leaf that waits would wait
        // for good.
        let rt = Builder::new().workers(2).build().unwrap();
        let met = rt.block_on(|| {
            let stop = Arc::new(AtomicU64::new(0));
            let yielders: Vec<_> = (0..2)
                .map(|_| {
                    let stop = Arc::clone(&stop);
                    crate::spawn(move || {
                        // Relaxed: a stop signal, no data.
                        while stop.load(Ordering::Relaxed) == 0 {
                            crate::yield_now();
                        }
                    })
                })
                .collect();
            let (graph, met) = waiting_siblings(crate::yield_now);
            crate::run(graph).unwrap();
            // Relaxed: as above.
            stop.store(1, Ordering::Relaxed);
            for yielder in yielders {
                yielder.join().unwrap();
            }
            // Relaxed: the run ordered the nodes before this.
            met.load(Ordering::Relaxed)
        });
        assert_eq!(met, 2);
    }

    #[test]
    fn small_runs_leave_no_offer_of_help_behind() {
        // Each run queues nodes and so offers a helper to idle workers;
        // a run its caller finishes first withdraws the offer. The other
        // worker is kept busy, so that no idle worker takes the offers.
        let rt = Builder::new().workers(2).build().unwrap();
        let registry = Arc::clone(rt.registry());
        let left = rt.block_on(move || {
            let stop = Arc::new(AtomicU64::new(0));
            let (busy, on) = mpsc::channel();
            let spinner = {
                let stop = Arc::clone(&stop);
                crate::spawn(move || {
                    let thread = std::thread::current().id();
                    busy.send(thread).unwrap();
                    crate::preempt::no_preempt(|| {
                        // Relaxed: a stop signal, no data.
                        while stop.load(Ordering::Relaxed) == 0 {
                            std::hint::spin_loop();
                        }
                    });
                })
            };
            // Received once the spinner runs: on the other worker, since
            // this fiber does not give its own up meanwhile.
            let spinning_on = loop {
                if let Ok(thread) = on.try_recv() {
                    break thread;
                }
                std::hint::spin_loop();
            };
            assert_ne!(spinning_on, std::thread::current().id());
            for round in 0..200u64 {
                let mut b = GraphBuilder::new();
                let root = b.node("root", || ());
                for leaf in 0..4 {
                    let l = b.node("leaf", move || {
                        std::hint::black_box(round + leaf);
                    });
                    b.edge(root, l);
                }
                crate::run(b.build().unwrap()).unwrap();
            }
            let left = registry.offers.clear().len();
            // Relaxed: as above.
            stop.store(1, Ordering::Relaxed);
            spinner.join().unwrap();
            left
        });
        assert_eq!(left, 0);
    }

    #[test]
    fn deeply_nested_runs_do_not_pile_up_on_one_stack() {
        // Each level's node runs the next level's graph: run on the caller's
        // stack, the levels would overflow it.
        fn level(n: u32) {
            if n == 0 {
                return;
            }
            let mut b = GraphBuilder::new();
            b.node("level", move || level(n - 1));
            crate::run(b.build().unwrap()).unwrap();
        }
        within(60, || {
            let rt = Builder::new().workers(2).build().unwrap();
            on_big_stack(&rt, || level(300));
        });
    }

    #[test]
    fn nodes_run_by_the_caller_may_sleep_spawn_and_fail() {
        let rt = Builder::new().workers(2).build().unwrap();
        let err = on_big_stack(&rt, || {
            let mut b = GraphBuilder::new();
            let sleeper = b.node("sleeper", || crate::sleep(Duration::from_millis(5)));
            let spawner = b.node("spawner", || {
                assert_eq!(crate::spawn(|| 6 * 7).join().unwrap(), 42);
            });
            let failing = b.try_node("failing", || Err("no luck"));
            let skipped = b.node("skipped", || unreachable!("its dependency failed"));
            b.edge(sleeper, spawner);
            b.edge(spawner, failing);
            b.edge(failing, skipped);
            let err = crate::run(b.build().unwrap()).unwrap_err();
            // The caller goes on as before after running failing nodes.
            crate::sleep(Duration::from_millis(1));
            err
        });
        assert_eq!(err.failures().len(), 1);
        assert_eq!(err.failures()[0].node, "failing");
        assert_eq!(err.failures()[0].kind, FailureKind::Returned);
        assert_eq!(err.skipped(), 1);
    }

    #[test]
    fn a_node_that_panics_on_the_caller_fails_the_run_not_the_caller() {
        let rt = Builder::new().workers(1).build().unwrap();
        let err = on_big_stack(&rt, || {
            let mut b = GraphBuilder::new();
            b.node("boom", || panic!("boom"));
            crate::run(b.build().unwrap()).unwrap_err()
        });
        assert_eq!(err.failures()[0].kind, FailureKind::Panicked);
    }

    #[test]
    fn a_nested_run_whose_node_waits_for_the_outer_run_frees_the_outer_place() {
        // One worker, so one outer runner place. `waits` runs a graph whose
        // node waits for `sends`, which is queued behind it in the outer
        // run: the outer place must be free while that node waits.
        within(20, || {
            let rt = Builder::new().workers(1).build().unwrap();
            let (tx, rx) = crate::sync::mpsc::unbounded::<u32>();
            let mut b = GraphBuilder::new();
            let root = b.node("root", || {});
            let waits = b.node("waits", move || {
                let mut inner = GraphBuilder::new();
                inner.node("receive", move || assert_eq!(rx.recv().unwrap(), 7));
                crate::run(inner.build().unwrap()).unwrap();
            });
            let sends = b.node("sends", move || tx.send(7).unwrap());
            // `waits` runs first, inline after `root`; `sends` is queued.
            b.cost(waits, 10);
            b.edge(root, waits);
            b.edge(root, sends);
            let graph = b.build().unwrap();
            on_big_stack(&rt, move || crate::run(graph)).unwrap();
        });
    }

    #[test]
    fn nested_runs_from_the_caller_each_complete() {
        within(20, || {
            let rt = Builder::new().workers(2).build().unwrap();
            let total = on_big_stack(&rt, || {
                let sum = Arc::new(AtomicU64::new(0));
                let mut b = GraphBuilder::new();
                for outer in 0..4u64 {
                    let sum = Arc::clone(&sum);
                    b.node("outer", move || {
                        let mut inner = GraphBuilder::new();
                        for k in 0..4u64 {
                            let sum = Arc::clone(&sum);
                            // Relaxed: read after both runs, which order it.
                            inner.node("inner", move || {
                                sum.fetch_add(outer * 4 + k, Ordering::Relaxed);
                            });
                        }
                        crate::run(inner.build().unwrap()).unwrap();
                    });
                }
                crate::run(b.build().unwrap()).unwrap();
                // Relaxed: as above.
                sum.load(Ordering::Relaxed)
            });
            assert_eq!(total, (0..16).sum::<u64>());
        });
    }
}
