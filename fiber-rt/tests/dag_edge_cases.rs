//! Graph runs at the edges: stacks promised to nodes, what a skipped
//! node holds, nodes that yield for a sibling, payloads that panic.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use fiber_rt::dag::{run_with, GraphBuilder};
use fiber_rt::{depends, fiber, Builder};

/// Runs `f` on a thread of its own; fails if it has not returned in 10 s.
fn within_10s<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(f());
    });
    result
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{what} hangs"))
}

#[fiber(stack = 16384)]
fn tiny() -> u32 {
    1
}

/// Asks for no stack size: it is promised the runtime's default.
#[fiber]
fn deep(x: &u32) -> u32 {
    u32::from(std::hint::black_box([*x as u8; 96 * 1024])[0])
}

depends! {
    graph SmallThenDefault {
        deep(tiny);
    }
}

#[test]
fn a_node_that_asks_for_no_stack_never_runs_on_a_smaller_one() {
    // In a child process: the bug overflowed the stack, which aborts.
    const NAME: &str = "a_node_that_asks_for_no_stack_never_runs_on_a_smaller_one";
    if std::env::var("DAG_EDGE_CHILD").as_deref() == Ok(NAME) {
        let rt = Builder::new().workers(2).build().unwrap();
        for _ in 0..20 {
            assert_eq!(rt.run(SmallThenDefault).unwrap().deep, 1);
        }
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--nocapture"])
        .env("DAG_EDGE_CHILD", NAME)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_skipped_node_s_closure_is_dropped_at_once() {
    // `consumer` waits until every sender is gone; the one left is in the
    // closure of `producer`, skipped because `config` failed.
    let failed = within_10s("the run", || {
        let rt = Builder::new().workers(2).build().unwrap();
        let (tx, rx) = fiber_rt::sync::mpsc::unbounded::<u32>();
        let mut b = GraphBuilder::new();
        let config = b.try_node("config", || Err::<(), _>("bad config"));
        let producer = b.node("producer", move || tx.send(1).unwrap());
        b.node("consumer", move || while rx.recv().is_ok() {});
        b.edge(config, producer);
        rt.run(b.build().unwrap()).unwrap_err()
    });
    assert_eq!(failed.failures()[0].node, "config");
}

#[test]
fn a_node_that_yields_for_a_queued_sibling_lets_it_run() {
    for workers in [1, 2] {
        let ok = within_10s("a yielding node's run", move || {
            let rt = Builder::new().workers(workers).build().unwrap();
            let flag = Arc::new(AtomicBool::new(false));
            let seen = flag.clone();
            let mut b = GraphBuilder::new();
            let root = b.node("root", || {});
            let waiter = b.node("waiter", move || {
                // Acquire: pairs with the setter's Release.
                while !seen.load(Ordering::Acquire) {
                    fiber_rt::yield_now();
                }
            });
            // Release: see the waiter.
            let setter = b.node("setter", move || flag.store(true, Ordering::Release));
            // The waiter runs first, inline; the setter is queued.
            b.cost(waiter, 10).edge(root, waiter).edge(root, setter);
            rt.run(b.build().unwrap()).is_ok()
        });
        assert!(ok, "{workers} workers");
    }
}

/// A panic payload whose destructor panics.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("payload drop");
        }
    }
}

#[test]
fn a_panic_payload_that_panics_when_dropped_still_fails_the_run() {
    let mut b = GraphBuilder::new();
    let a = b.node("a", || std::panic::panic_any(Bomb));
    let c = b.node("c", || {});
    b.edge(a, c);
    let result = run_with(b.build().unwrap(), |task| {
        std::thread::spawn(move || task.run());
    });
    let err = result.expect_err("node `a` panicked and `c` never ran");
    assert_eq!(err.failures()[0].node, "a");
    assert_eq!(err.skipped(), 1);
}

#[fiber(fallible)]
fn config() -> Result<u32, String> {
    Err("bad config".into())
}

#[fiber]
fn producer(_config: &u32, done: fiber_rt::sync::oneshot::Sender<()>) {
    let _ = done.send(());
}

/// Waits until `producer` sends, or its sender goes unsent.
#[fiber]
fn consumer(done: fiber_rt::sync::oneshot::Receiver<()>) -> bool {
    done.recv().is_ok()
}

depends! {
    graph Handshake(
        done: fiber_rt::sync::oneshot::Sender<()>,
        wait: fiber_rt::sync::oneshot::Receiver<()>,
    ) {
        producer(config, done);
        consumer(wait);
    }
}

#[test]
fn what_a_skipped_node_would_take_by_value_is_dropped_at_once() {
    let failed = within_10s("the run", || {
        let rt = Builder::new().workers(2).build().unwrap();
        let (done, wait) = fiber_rt::sync::oneshot::channel();
        rt.run(Handshake { done, wait }).map(|_| ()).unwrap_err()
    });
    assert_eq!(failed.failures()[0].node, "config");
}
