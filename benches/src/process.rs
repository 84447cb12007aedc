//! Child processes against tokio (multi-thread) and std threads: spawning
//! a child that exits at once and waiting for it, from many tasks at once,
//! and a child's output read through a pipe.

use std::time::Instant;

use crate::harness::{best, Report};

const WORKERS: usize = 2;
/// Tasks spawning children at once, and children each spawns.
const TASKS: usize = 16;
const EACH: usize = 25;

fn per_child(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e6 / (TASKS * EACH) as f64
}

/// The script each child runs: 64 KiB on its standard output, then exit.
const SCRIPT: &str = "head -c 65536 /dev/zero";

pub fn spawn_wait() -> Report {
    let mut r = Report::new(
        "process: spawn + wait of `sh -c 'head -c 65536 /dev/zero'` with its output read, 16 tasks at once, 2 workers",
        "us/child",
    )
    .target("no target: a child's fork and exec dominate; a runtime adds its wait");
    let rt = fiber_rt::Builder::new().workers(WORKERS).build().unwrap();
    r.add(
        "fiber",
        best(|| {
            rt.block_on(|| {
                let start = Instant::now();
                let tasks: Vec<_> = (0..TASKS)
                    .map(|_| {
                        fiber_rt::spawn(|| {
                            for _ in 0..EACH {
                                let out = fiber_rt::process::Command::new("sh")
                                    .args(["-c", SCRIPT])
                                    .output()
                                    .unwrap();
                                assert_eq!(out.stdout.len(), 65536);
                            }
                        })
                    })
                    .collect();
                tasks.into_iter().for_each(|t| t.join().unwrap());
                per_child(start)
            })
        }),
    );
    drop(rt);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .unwrap();
    r.add(
        "tokio",
        best(|| {
            rt.block_on(async {
                let start = Instant::now();
                let tasks: Vec<_> = (0..TASKS)
                    .map(|_| {
                        tokio::spawn(async {
                            for _ in 0..EACH {
                                let out = tokio::process::Command::new("sh")
                                    .args(["-c", SCRIPT])
                                    .output()
                                    .await
                                    .unwrap();
                                assert_eq!(out.stdout.len(), 65536);
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                per_child(start)
            })
        }),
    );
    drop(rt);

    r.add(
        "std threads",
        best(|| {
            let start = Instant::now();
            let threads: Vec<_> = (0..TASKS)
                .map(|_| {
                    std::thread::spawn(|| {
                        for _ in 0..EACH {
                            let out = std::process::Command::new("sh")
                                .args(["-c", SCRIPT])
                                .output()
                                .unwrap();
                            assert_eq!(out.stdout.len(), 65536);
                        }
                    })
                })
                .collect();
            threads.into_iter().for_each(|t| t.join().unwrap());
            per_child(start)
        }),
    );
    r
}
