//! A line-echo server with a fiber per connection, written as plain
//! blocking code: each fiber reads a line, answers it in upper case, and
//! parks whenever its socket has nothing to read, so a couple of worker
//! threads serve every connection at once.
//!
//! By default it starts the server on a free local port, connects clients
//! to it (also fibers), checks every answer and prints what it served:
//!
//! ```text
//! cargo run --release -p fiber-examples --example echo_server [clients] [lines]
//! cargo run --release -p fiber-examples --example echo_server -- --listen 127.0.0.1:7000
//! ```
//!
//! With `--listen` it serves that address until stopped (try `nc` on it).

use std::io::{BufRead, BufReader, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use fiber_rt::net::{TcpListener, TcpStream};
use fiber_rt::Runtime;

/// Serves one connection: every line back in upper case, until the client
/// closes its end.
fn serve(stream: TcpStream, open: &AtomicUsize, busiest: &AtomicUsize) -> std::io::Result<usize> {
    // Relaxed: statistics only.
    let now = open.fetch_add(1, Ordering::Relaxed) + 1;
    busiest.fetch_max(now, Ordering::Relaxed);
    stream.set_nodelay(true)?;
    let mut answered = 0;
    let mut writer = &stream;
    for line in BufReader::new(&stream).lines() {
        // One write per answer: `writeln!` would write the line and its
        // end apart.
        writer.write_all(format!("{}\n", line?.to_uppercase()).as_bytes())?;
        answered += 1;
    }
    open.fetch_sub(1, Ordering::Relaxed);
    Ok(answered)
}

/// Accepts `connections` connections (all of them, if `None`), each served
/// by a fiber of its own; returns how many lines they answered.
fn accept_loop(listener: TcpListener, connections: Option<usize>) -> std::io::Result<usize> {
    let open = Arc::new(AtomicUsize::new(0));
    let busiest = Arc::new(AtomicUsize::new(0));
    let mut served = Vec::new();
    while connections.is_none_or(|n| served.len() < n) {
        let (stream, _) = listener.accept()?;
        let (open, busiest) = (open.clone(), busiest.clone());
        served.push(fiber_rt::spawn(move || serve(stream, &open, &busiest)));
    }
    let mut lines = 0;
    for fiber in served {
        lines += fiber.join().map_err(std::io::Error::other)??;
    }
    println!(
        "at most {} connections were open at once",
        busiest.load(Ordering::Relaxed)
    );
    Ok(lines)
}

/// A client: sends `lines` lines and checks each answer.
fn client(addr: std::net::SocketAddr, id: usize, lines: usize) -> std::io::Result<()> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut answers = BufReader::new(&stream).lines();
    let mut writer = &stream;
    for n in 0..lines {
        let line = format!("client {id} line {n}");
        writer.write_all(format!("{line}\n").as_bytes())?;
        let answer = answers.next().expect("an answer per line")?;
        assert_eq!(answer, line.to_uppercase());
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = Runtime::new()?;
    if let [flag, addr] = args.as_slice() {
        if flag == "--listen" {
            let listener = TcpListener::bind(addr.as_str())?;
            println!("listening on {}", listener.local_addr()?);
            rt.block_on(move || accept_loop(listener, None))?;
            return Ok(());
        }
    }
    let clients: usize = args.first().map(|a| a.parse()).transpose()?.unwrap_or(200);
    let lines: usize = args.get(1).map(|a| a.parse()).transpose()?.unwrap_or(100);

    let start = Instant::now();
    let answered = rt.block_on(move || -> std::io::Result<usize> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let server = fiber_rt::spawn(move || accept_loop(listener, Some(clients)));
        let clients: Vec<_> = (0..clients)
            .map(|id| fiber_rt::spawn(move || client(addr, id, lines)))
            .collect();
        for fiber in clients {
            fiber.join().map_err(std::io::Error::other)??;
        }
        server.join().map_err(std::io::Error::other)?
    })?;
    println!(
        "answered {answered} lines for {clients} clients on {} worker threads in {:.1} ms",
        rt.workers(),
        start.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
