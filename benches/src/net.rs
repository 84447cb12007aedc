//! Sockets against tokio (multi-thread), may and std threads, over
//! loopback TCP: one connection's echo round trip, and many connections
//! echoing at once.

use std::io::{Read, Write};
use std::time::Instant;

use crate::harness::{best, Report};

const WORKERS: usize = 2;
/// The message each round trip sends and gets back.
const MESSAGE: [u8; 16] = *b"0123456789abcdef";

/// Echoes fixed-size messages on `stream` until the peer closes.
fn echo(mut stream: impl Read + Write) {
    let mut buf = [0u8; MESSAGE.len()];
    while stream.read_exact(&mut buf).is_ok() {
        stream.write_all(&buf).unwrap();
    }
}

/// Sends `rounds` messages on `stream`, each after the previous one's echo.
fn ping(mut stream: impl Read + Write, rounds: u64) {
    let mut buf = [0u8; MESSAGE.len()];
    for _ in 0..rounds {
        stream.write_all(&MESSAGE).unwrap();
        stream.read_exact(&mut buf).unwrap();
    }
}

fn since(start: Instant, n: u64) -> f64 {
    start.elapsed().as_nanos() as f64 / n as f64
}

pub fn tcp_ping_pong() -> Report {
    tcp_echo(
        1,
        20_000,
        "TCP echo round trip, one connection, loopback, 2 workers",
    )
}

pub fn tcp_many() -> Report {
    tcp_echo(
        64,
        1_000,
        "TCP echo, 64 connections at once, loopback, 2 workers: time per round trip",
    )
}

/// The echo workload in blocking style, for runtimes whose spawn returns a
/// handle with a `join` (fiber, may, std threads): `$($spawn)+` is a spawn
/// function's path or a spawn macro (`may::go!`), `$net` the module with
/// the `TcpListener` and `TcpStream` to use. Ns per round trip.
macro_rules! blocking_echo {
    ($connections:expr, $rounds:expr, $net:path, $($spawn:tt)+) => {{
        use $net::{TcpListener, TcpStream};
        let (connections, rounds) = ($connections, $rounds);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = $($spawn)+(move || {
            for _ in 0..connections {
                let (stream, _) = listener.accept().unwrap();
                stream.set_nodelay(true).unwrap();
                $($spawn)+(move || echo(stream));
            }
        });
        let start = Instant::now();
        let clients: Vec<_> = (0..connections)
            .map(|_| {
                $($spawn)+(move || {
                    let stream = TcpStream::connect(addr).unwrap();
                    stream.set_nodelay(true).unwrap();
                    ping(stream, rounds);
                })
            })
            .collect();
        clients.into_iter().for_each(|c| c.join().unwrap());
        let t = since(start, connections * rounds);
        server.join().unwrap();
        t
    }};
}

/// `connections` clients, each making `rounds` echo round trips with a
/// server task of its own; ns per round trip over all of them.
fn tcp_echo(connections: u64, rounds: u64, title: &'static str) -> Report {
    let mut r = Report::new(title, "ns");
    let total = connections * rounds;

    let rt = fiber_rt::Builder::new().workers(WORKERS).build().unwrap();
    r.add(
        "fiber",
        best(|| {
            rt.block_on(move || blocking_echo!(connections, rounds, fiber_rt::net, fiber_rt::spawn))
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
            rt.block_on(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                use tokio::net::{TcpListener, TcpStream};
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let server = tokio::spawn(async move {
                    for _ in 0..connections {
                        let (mut stream, _) = listener.accept().await.unwrap();
                        stream.set_nodelay(true).unwrap();
                        tokio::spawn(async move {
                            let mut buf = [0u8; MESSAGE.len()];
                            while stream.read_exact(&mut buf).await.is_ok() {
                                stream.write_all(&buf).await.unwrap();
                            }
                        });
                    }
                });
                let start = Instant::now();
                let clients: Vec<_> = (0..connections)
                    .map(|_| {
                        tokio::spawn(async move {
                            let mut stream = TcpStream::connect(addr).await.unwrap();
                            stream.set_nodelay(true).unwrap();
                            let mut buf = [0u8; MESSAGE.len()];
                            for _ in 0..rounds {
                                stream.write_all(&MESSAGE).await.unwrap();
                                stream.read_exact(&mut buf).await.unwrap();
                            }
                        })
                    })
                    .collect();
                for c in clients {
                    c.await.unwrap();
                }
                let t = since(start, total);
                server.await.unwrap();
                t
            })
        }),
    );
    drop(rt);

    crate::runtime::may_init();
    r.add(
        "may",
        best(|| {
            may::go!(move || blocking_echo!(connections, rounds, may::net, may::go!))
                .join()
                .unwrap()
        }),
    );

    r.add(
        "std threads",
        best(|| blocking_echo!(connections, rounds, std::net, std::thread::spawn)),
    );
    r
}
