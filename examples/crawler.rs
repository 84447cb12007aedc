//! A crawler-style fan-out: fetcher fibers take URLs from a channel, "fetch"
//! them (a sleep stands in for the network), and send the links they find
//! back; the coordinator, `main` itself, keeps track of what was seen.
//! `#[fiber_rt::main]` runs `main`'s body as a fiber on a runtime of its
//! own, so it waits on channels and joins by parking, as the fetchers do.
//!
//! The web is made up, and the same every run: page `n` links to pages
//! `2n+1`, `2n+2` and `n/2`, up to a page limit.
//!
//! ```text
//! cargo run --release -p fiber-examples --example crawler [pages] [fetchers]
//! ```

use std::collections::HashSet;
use std::time::{Duration, Instant};

use fiber_rt::sync::{mpmc, mpsc};

const LATENCY: Duration = Duration::from_millis(5);

/// The links on page `n`.
fn links(n: u32, pages: u32) -> Vec<u32> {
    [2 * n + 1, 2 * n + 2, n / 2]
        .into_iter()
        .filter(|&m| m < pages)
        .collect()
}

#[fiber_rt::main]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u32>());
    let pages = args.next().transpose()?.unwrap_or(500);
    let fetchers = args.next().transpose()?.unwrap_or(64);

    let start = Instant::now();
    // The fetchers share the pages to fetch: each goes to one of them.
    let (todo_tx, todo_rx) = mpmc::unbounded::<u32>();
    let (found_tx, found_rx) = mpsc::unbounded::<(u32, Vec<u32>)>();
    let workers: Vec<_> = (0..fetchers)
        .map(|_| {
            let (todo_rx, found_tx) = (todo_rx.clone(), found_tx.clone());
            fiber_rt::spawn(move || {
                let mut fetched = 0;
                while let Ok(page) = todo_rx.recv() {
                    fiber_rt::sleep(LATENCY); // the network round trip
                    fetched += 1;
                    if found_tx.send((page, links(page, pages))).is_err() {
                        break;
                    }
                }
                fetched
            })
        })
        .collect();
    drop((todo_rx, found_tx));

    let mut seen = HashSet::from([0u32]);
    let mut pending = 1;
    todo_tx.send(0)?;
    while pending > 0 {
        let (_, found) = found_rx.recv()?;
        pending -= 1;
        for page in found {
            if seen.insert(page) {
                pending += 1;
                todo_tx.send(page)?;
            }
        }
    }
    drop(todo_tx); // the fetchers see the channel close and stop
    let fetched: u32 = workers.into_iter().map(|w| w.join().unwrap()).sum();

    let elapsed = start.elapsed();
    let serial = LATENCY * fetched;
    println!(
        "crawled {} pages ({fetched} fetches) with {fetchers} fetcher fibers",
        seen.len()
    );
    println!(
        "took {:.0} ms; one fetch at a time would take {:.0} ms ({:.0}x overlap)",
        elapsed.as_secs_f64() * 1e3,
        serial.as_secs_f64() * 1e3,
        serial.as_secs_f64() / elapsed.as_secs_f64()
    );
    Ok(())
}
