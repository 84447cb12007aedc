//! A runtime's `Handle`: it spawns, blocks on and runs graphs from any
//! thread, and once the runtime is gone, what it spawns is cancelled at
//! once (its closure dropped unrun, its join saying so), never queued for
//! workers that no longer run.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use fiber_rt::dag::GraphBuilder;
use fiber_rt::{Builder, Handle};

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        // Relaxed: read after the spawn that dropped this has returned.
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn a_handle_spawns_blocks_on_and_runs_graphs_from_other_threads() {
    let rt = Builder::new().workers(2).build().unwrap();
    let handle = rt.handle().clone();
    let thread = std::thread::spawn(move || {
        let spawned = handle
            .spawn(|| fiber_rt::current().map(|fiber| fiber.id))
            .join()
            .unwrap();
        let words = ["a", "bb"];
        let total = handle.block_on(|| words.iter().map(|w| w.len()).sum::<usize>());
        let mut b = GraphBuilder::new();
        let ran = Arc::new(AtomicUsize::new(0));
        let (r1, r2) = (ran.clone(), ran.clone());
        let first = b.node("first", move || {
            r1.fetch_add(1, Ordering::Relaxed);
        });
        let second = b.node("second", move || {
            r2.fetch_add(1, Ordering::Relaxed);
        });
        b.edge(first, second);
        handle.run(b.build().unwrap()).unwrap();
        // The runtime's counters, through the handle alone.
        let metrics = handle.metrics();
        assert_eq!(metrics.workers, 2);
        assert!(metrics.spawned >= 2, "{metrics:?}");
        // Relaxed: the run's end orders its nodes' work before this.
        (
            spawned,
            total,
            ran.load(Ordering::Relaxed),
            handle.workers(),
        )
    });
    let (id, total, ran, workers) = thread.join().unwrap();
    assert!(id.is_some(), "spawned on a fiber");
    assert_eq!((total, ran, workers), (3, 2, 2));
    assert!(!rt.handle().is_shut_down());
}

#[test]
fn handle_current_is_the_fibers_own_runtime_and_none_off_fibers() {
    assert!(Handle::try_current().is_none());
    let rt = Builder::new().workers(1).build().unwrap();
    let (workers, nested) = rt.block_on(|| {
        let handle = Handle::current();
        // Spawned through the fiber's own handle: the same runtime, so the
        // child sees one worker too.
        let nested = handle.spawn(|| Handle::current().workers()).join().unwrap();
        (handle.workers(), nested)
    });
    assert_eq!((workers, nested), (1, 1));
}

#[test]
fn a_spawn_after_the_shutdown_is_cancelled_at_once_and_its_closure_dropped() {
    let rt = Builder::new().workers(1).build().unwrap();
    let handle = rt.handle().clone();
    drop(rt);
    assert!(handle.is_shut_down());
    let dropped = Arc::new(AtomicBool::new(false));
    let ran = Arc::new(AtomicBool::new(false));
    let guard = DropFlag(dropped.clone());
    let flag = ran.clone();
    let joined = handle.spawn(move || {
        let _guard = guard;
        // Relaxed: read after the join below.
        flag.store(true, Ordering::Relaxed);
    });
    // Relaxed: the spawn dropped the closure before it returned.
    assert!(dropped.load(Ordering::Relaxed), "the closure was kept");
    let error = joined.join().unwrap_err();
    assert!(error.is_cancelled(), "{error}");
    assert!(error.to_string().contains("shut down"), "{error}");
    // Relaxed: as above.
    assert!(!ran.load(Ordering::Relaxed));
}

#[test]
fn block_on_and_run_after_the_shutdown_say_so() {
    let rt = Builder::new().workers(1).build().unwrap();
    let handle = rt.handle().clone();
    drop(rt);
    let blocked = std::panic::catch_unwind(|| handle.block_on(|| 1));
    let message = blocked.unwrap_err();
    let message = message
        .downcast_ref::<String>()
        .map(String::as_str)
        .unwrap_or("");
    assert!(message.contains("shut down"), "{message}");
    // No node runs; those that wait for one that never ran are skipped,
    // and the error counts and names them as for any failure.
    let mut b = GraphBuilder::new();
    let parse = b.node("parse", || ());
    let check = b.node("check", || ());
    let report = b.node("report", || ());
    b.node("other", || ());
    b.edge(parse, check);
    b.edge(check, report);
    let error = handle.run(b.build().unwrap()).unwrap_err();
    let failed: Vec<_> = error.failures().iter().map(|f| f.node.as_str()).collect();
    assert_eq!(failed, ["parse", "other"], "{error}");
    assert_eq!(error.skipped(), 2, "{error}");
    let mut skipped: Vec<_> = error.skipped_nodes().collect();
    skipped.sort_unstable();
    assert_eq!(skipped, ["check", "report"]);
}

/// Spawns racing the runtime's drop: each one either runs or is
/// cancelled, and every join returns. (A spawn that came after the
/// shutdown's last look at the live list was queued for workers that had
/// stopped, and its join waited for good.)
#[test]
fn spawns_racing_the_shutdown_all_end() {
    for round in 0..20 {
        let rt = Builder::new().workers(2).build().unwrap();
        let handle = rt.handle().clone();
        let (tx, rx) = mpsc::channel();
        let spawner = std::thread::spawn(move || {
            let mut ran = 0;
            let mut cancelled = 0;
            // Until well after the drop: the last spawns all come after it.
            let mut after = 0;
            while after < 200 {
                if handle.is_shut_down() {
                    after += 1;
                }
                match handle.spawn(|| 1).join() {
                    Ok(one) => ran += one,
                    Err(e) if e.is_cancelled() => cancelled += 1,
                    Err(e) => panic!("{e}"),
                }
            }
            tx.send((ran, cancelled)).unwrap();
        });
        std::thread::sleep(Duration::from_millis(round % 5));
        drop(rt);
        let (ran, cancelled) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("a join after the shutdown never returned");
        // A worker may still run a fiber spawned just after the shutdown
        // began; the rest are cancelled.
        assert!(cancelled > 0, "round {round}: {ran} ran, none cancelled");
        spawner.join().unwrap();
    }
}

#[test]
fn block_on_in_a_destructor_the_shutdown_runs_runs_its_closure_there() {
    /// Blocks on its runtime as it is dropped, and says what it got.
    struct Flush(Handle, mpsc::Sender<u32>);
    impl Drop for Flush {
        fn drop(&mut self) {
            let got = self.0.block_on(|| {
                fiber_rt::yield_now();
                6 * 7
            });
            self.1.send(got).unwrap();
        }
    }
    let rt = Builder::new().workers(2).build().unwrap();
    let (tx, rx) = mpsc::channel();
    let flush = Flush(rt.handle().clone(), tx);
    let (started_tx, started) = mpsc::channel();
    let parked = rt.spawn(move || {
        let _flush = flush;
        started_tx.send(()).unwrap();
        fiber_rt::sleep(Duration::from_secs(3600));
    });
    started.recv().unwrap();
    // The shutdown cancels the sleeping fiber, whose destructor blocks on
    // the runtime: a panic there aborted the process.
    drop(rt);
    assert!(parked.join().unwrap_err().is_cancelled());
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(42));
}

#[test]
fn a_runtime_can_be_used_inside_catch_unwind() {
    let rt = Builder::new().workers(1).build().unwrap();
    // Without `AssertUnwindSafe`: the runtime is `RefUnwindSafe`.
    let caught = std::panic::catch_unwind(|| rt.block_on(|| panic!("inside")));
    assert!(caught.is_err());
    assert_eq!(rt.block_on(|| 1), 1, "still usable");
}
