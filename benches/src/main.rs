//! Runs each workload on fiber and its peers side by side and prints tables
//! of figures and ratios.
//!
//! ```text
//! cargo run --release -p fiber-bench            # every workload
//! cargo run --release -p fiber-bench -- switch  # workloads whose name contains "switch"
//! ```

mod core;
mod dag;
mod harness;
mod net;
mod preempt;
mod process;
mod runtime;

use harness::Report;

type Workload = (&'static str, fn() -> Report);

const WORKLOADS: &[Workload] = &[
    ("switch", core::switch_round_trip),
    ("create", core::create_complete),
    ("memory", core::resident_memory),
    ("spawn", runtime::spawn_join),
    ("yield", runtime::yield_round_trip),
    ("pingpong", runtime::channel_ping_pong),
    ("mutex", runtime::contended_mutex),
    ("tcp-pingpong", net::tcp_ping_pong),
    ("tcp-many", net::tcp_many),
    ("process", process::spawn_wait),
    ("preempt-probes", preempt::probe_overhead),
    ("preempt-starve", preempt::starvation),
    ("dag-chain", dag::chain),
    ("dag-tree", dag::tree),
    ("dag-wavefront", dag::wavefront),
    ("dag-random", dag::random),
    ("dag-static", dag::static_graph),
];

fn main() {
    let filter: Vec<String> = std::env::args().skip(1).collect();
    let mut reports = Vec::new();
    for (name, run) in WORKLOADS {
        if filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str())) {
            println!("== {name}");
            reports.push(run());
        }
    }
    if reports.is_empty() {
        let names: Vec<_> = WORKLOADS.iter().map(|w| w.0).collect();
        eprintln!(
            "no workload matches {filter:?}; workloads: {}",
            names.join(", ")
        );
        std::process::exit(2);
    }
    for r in &reports {
        r.print();
    }
}

#[cfg(test)]
mod interop {
    //! Fibers waiting on a real async runtime's futures (the bridge that
    //! `fiber_rt::block_on_future` is for), and async tasks awaiting
    //! fibers, checked against tokio (a peer here anyway).

    use std::time::Duration;

    #[test]
    fn fibers_wait_for_tokio_tasks_and_channels() {
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .unwrap();
        let handle = tokio.handle().clone();
        let rt = fiber_rt::Builder::new().workers(1).build().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let sum = rt.block_on(|| {
            // A fiber on the same worker runs while the first one waits.
            let sender = fiber_rt::spawn(move || {
                fiber_rt::sleep(Duration::from_millis(5));
                tx.send(30).unwrap();
            });
            let timed = handle.spawn(async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                12
            });
            let from_task = fiber_rt::block_on_future(timed).unwrap();
            let from_channel = fiber_rt::block_on_future(rx).unwrap();
            sender.join().unwrap();
            from_task + from_channel
        });
        assert_eq!(sum, 42);
    }

    /// The other way: tokio tasks await fibers' `JoinHandle`s, which the
    /// fibers wake as they finish.
    #[test]
    fn tokio_tasks_await_fibers() {
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let rt = fiber_rt::Builder::new().workers(2).build().unwrap();
        let fibers: Vec<_> = (0..100u64)
            .map(|i| {
                rt.spawn(move || {
                    fiber_rt::sleep(Duration::from_millis(i % 7));
                    i
                })
            })
            .collect();
        let sum = tokio.block_on(async move {
            let tasks: Vec<_> = fibers
                .into_iter()
                .map(|fiber| tokio::spawn(async move { fiber.await.unwrap() }))
                .collect();
            let mut sum = 0;
            for task in tasks {
                sum += task.await.unwrap();
            }
            sum
        });
        assert_eq!(sum, 4950);
    }
}
