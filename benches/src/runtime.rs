//! The multi-threaded runtime against tokio (multi-thread), may and std
//! threads: spawn+join, yield round trip, channel ping-pong, contended mutex.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use fiber_rt::sync::{mpsc, Mutex};
use fiber_rt::Builder;

use crate::harness::{best, Report};

const WORKERS: usize = 2;

fn fiber_rt(workers: usize) -> fiber_rt::Runtime {
    Builder::new().workers(workers).build().unwrap()
}

fn tokio_rt(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// may has one global runtime; its worker count is set once.
pub fn may_init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        may::config().set_workers(WORKERS);
    });
}

fn ns_per(n: u64, f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_nanos() as f64 / n as f64
}

pub fn spawn_join() -> Report {
    let mut r = Report::new(
        "spawn + join from inside a worker, batches of 1000, 2 workers",
        "ns",
    )
    .target("fiber at most 100 ns amortized (tokio 372 ns, may 3.2 us measured before)");
    let n: u64 = 1_000_000;

    let rt = fiber_rt(WORKERS);
    r.add(
        "fiber",
        best(|| {
            rt.block_on(move || {
                ns_per(n, || {
                    for _ in 0..n / 1000 {
                        let hs: Vec<_> = (0..1000u64).map(|i| fiber_rt::spawn(move || i)).collect();
                        for h in hs {
                            black_box(h.join().unwrap());
                        }
                    }
                })
            })
        }),
    );
    drop(rt);

    let rt = tokio_rt(WORKERS);
    r.add(
        "tokio",
        best(|| {
            rt.block_on(async move {
                let start = Instant::now();
                for _ in 0..n / 1000 {
                    let hs: Vec<_> = (0..1000u64)
                        .map(|i| tokio::spawn(async move { i }))
                        .collect();
                    for h in hs {
                        black_box(h.await.unwrap());
                    }
                }
                start.elapsed().as_nanos() as f64 / n as f64
            })
        }),
    );
    drop(rt);

    may_init();
    let m = n / 10; // may is an order of magnitude slower here
    r.add(
        "may",
        best(|| {
            may::go!(move || ns_per(m, || {
                for _ in 0..m / 1000 {
                    let hs: Vec<_> = (0..1000u64).map(|i| may::go!(move || i)).collect();
                    for h in hs {
                        black_box(h.join().unwrap());
                    }
                }
            }))
            .join()
            .unwrap()
        }),
    );

    let t = 20_000u64;
    r.add(
        "std threads",
        best(|| {
            ns_per(t, || {
                for _ in 0..t / 100 {
                    let hs: Vec<_> = (0..100u64).map(|i| std::thread::spawn(move || i)).collect();
                    for h in hs {
                        black_box(h.join().unwrap());
                    }
                }
            })
        }),
    );
    r
}

pub fn yield_round_trip() -> Report {
    let mut r = Report::new("yield round trip between two tasks on one worker", "ns")
        .target("fiber at most 30 ns (may 181 ns, tokio about 980 ns measured before)");
    let n: u64 = 2_000_000;

    let rt = fiber_rt(1);
    r.add(
        "fiber",
        best(|| {
            rt.block_on(move || {
                ns_per(n, || {
                    let other = fiber_rt::spawn(move || (0..n).for_each(|_| fiber_rt::yield_now()));
                    (0..n).for_each(|_| fiber_rt::yield_now());
                    other.join().unwrap();
                })
            })
        }),
    );
    drop(rt);

    let rt = tokio_rt(1);
    r.add(
        "tokio",
        best(|| {
            rt.block_on(async move {
                let start = Instant::now();
                let other = tokio::spawn(async move {
                    for _ in 0..n {
                        tokio::task::yield_now().await;
                    }
                });
                for _ in 0..n {
                    tokio::task::yield_now().await;
                }
                other.await.unwrap();
                start.elapsed().as_nanos() as f64 / n as f64
            })
        }),
    );
    drop(rt);

    // may's global runtime has two workers; its yield still round-trips
    // through its scheduler.
    may_init();
    let m = n / 4;
    r.add(
        "may",
        best(|| {
            may::go!(move || ns_per(m, || {
                let other = may::go!(move || (0..m).for_each(|_| may::coroutine::yield_now()));
                (0..m).for_each(|_| may::coroutine::yield_now());
                other.join().unwrap();
            }))
            .join()
            .unwrap()
        }),
    );
    r
}

pub fn channel_ping_pong() -> Report {
    let mut r = Report::new("channel ping-pong round trip, 2 workers", "ns")
        .target("fiber within 2x of the best peer");
    let n: u64 = 200_000;

    let rt = fiber_rt(WORKERS);
    r.add(
        "fiber",
        best(|| {
            rt.block_on(move || {
                let (ping_tx, ping_rx) = mpsc::bounded::<u64>(1);
                let (pong_tx, pong_rx) = mpsc::bounded::<u64>(1);
                let peer = fiber_rt::spawn(move || {
                    while let Ok(v) = ping_rx.recv() {
                        pong_tx.send(v + 1).unwrap();
                    }
                });
                let t = ns_per(n, || {
                    for i in 0..n {
                        ping_tx.send(i).unwrap();
                        black_box(pong_rx.recv().unwrap());
                    }
                });
                drop(ping_tx);
                peer.join().unwrap();
                t
            })
        }),
    );
    drop(rt);

    let rt = tokio_rt(WORKERS);
    r.add(
        "tokio",
        best(|| {
            rt.block_on(async move {
                let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<u64>(1);
                let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<u64>(1);
                let peer = tokio::spawn(async move {
                    while let Some(v) = ping_rx.recv().await {
                        pong_tx.send(v + 1).await.unwrap();
                    }
                });
                let start = Instant::now();
                for i in 0..n {
                    ping_tx.send(i).await.unwrap();
                    black_box(pong_rx.recv().await.unwrap());
                }
                let t = start.elapsed().as_nanos() as f64 / n as f64;
                drop(ping_tx);
                peer.await.unwrap();
                t
            })
        }),
    );
    drop(rt);

    may_init();
    r.add(
        "may",
        best(|| {
            may::go!(move || {
                let (ping_tx, ping_rx) = may::sync::mpsc::channel::<u64>();
                let (pong_tx, pong_rx) = may::sync::mpsc::channel::<u64>();
                let peer = may::go!(move || {
                    while let Ok(v) = ping_rx.recv() {
                        pong_tx.send(v + 1).unwrap();
                    }
                });
                let t = ns_per(n, || {
                    for i in 0..n {
                        ping_tx.send(i).unwrap();
                        black_box(pong_rx.recv().unwrap());
                    }
                });
                drop(ping_tx);
                peer.join().unwrap();
                t
            })
            .join()
            .unwrap()
        }),
    );

    r.add(
        "std threads",
        best(|| {
            let (ping_tx, ping_rx) = std::sync::mpsc::sync_channel::<u64>(1);
            let (pong_tx, pong_rx) = std::sync::mpsc::sync_channel::<u64>(1);
            let peer = std::thread::spawn(move || {
                while let Ok(v) = ping_rx.recv() {
                    pong_tx.send(v + 1).unwrap();
                }
            });
            let t = ns_per(n, || {
                for i in 0..n {
                    ping_tx.send(i).unwrap();
                    black_box(pong_rx.recv().unwrap());
                }
            });
            drop(ping_tx);
            peer.join().unwrap();
            t
        }),
    );
    r
}

pub fn contended_mutex() -> Report {
    let mut r = Report::new(
        "contended mutex: 8 tasks x 100k lock+increment, 2 workers",
        "ns per lock",
    );
    let (tasks, per) = (8u64, 100_000u64);
    let n = tasks * per;

    let rt = fiber_rt(WORKERS);
    r.add(
        "fiber",
        best(|| {
            rt.block_on(move || {
                let m = Arc::new(Mutex::new(0u64));
                let t = ns_per(n, || {
                    let hs: Vec<_> = (0..tasks)
                        .map(|_| {
                            let m = m.clone();
                            fiber_rt::spawn(move || (0..per).for_each(|_| *m.lock() += 1))
                        })
                        .collect();
                    hs.into_iter().for_each(|h| h.join().unwrap());
                });
                assert_eq!(*m.lock(), n);
                t
            })
        }),
    );
    drop(rt);

    let rt = tokio_rt(WORKERS);
    r.add(
        "tokio",
        best(|| {
            rt.block_on(async move {
                let m = Arc::new(tokio::sync::Mutex::new(0u64));
                let start = Instant::now();
                let hs: Vec<_> = (0..tasks)
                    .map(|_| {
                        let m = m.clone();
                        tokio::spawn(async move {
                            for _ in 0..per {
                                *m.lock().await += 1;
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
                let t = start.elapsed().as_nanos() as f64 / n as f64;
                assert_eq!(*m.lock().await, n);
                t
            })
        }),
    );
    drop(rt);

    may_init();
    r.add(
        "may",
        best(|| {
            may::go!(move || {
                let m = Arc::new(may::sync::Mutex::new(0u64));
                let t = ns_per(n, || {
                    let hs: Vec<_> = (0..tasks)
                        .map(|_| {
                            let m = m.clone();
                            may::go!(move || (0..per).for_each(|_| *m.lock().unwrap() += 1))
                        })
                        .collect();
                    hs.into_iter().for_each(|h| h.join().unwrap());
                });
                assert_eq!(*m.lock().unwrap(), n);
                t
            })
            .join()
            .unwrap()
        }),
    );

    r.add(
        "std threads",
        best(|| {
            let m = Arc::new(std::sync::Mutex::new(0u64));
            let t = ns_per(n, || {
                let hs: Vec<_> = (0..tasks)
                    .map(|_| {
                        let m = m.clone();
                        std::thread::spawn(move || (0..per).for_each(|_| *m.lock().unwrap() += 1))
                    })
                    .collect();
                hs.into_iter().for_each(|h| h.join().unwrap());
            });
            assert_eq!(*m.lock().unwrap(), n);
            t
        }),
    );
    r
}
