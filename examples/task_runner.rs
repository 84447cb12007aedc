//! A task runner in miniature (a `make` without files): each task is a
//! shell command, fed the output of the tasks it needs on its standard
//! input; the tasks form a graph built at run time and run on the fiber
//! runtime. A task's fiber parks while its process runs, so tasks that
//! mostly wait overlap far beyond the number of workers, and a task that
//! fails stops the tasks after it, with an error that names it.
//!
//! ```text
//! cargo run --release -p fiber-examples --example task_runner [fail]
//! ```
//!
//! With `fail`, one task exits with an error: its dependents are skipped.

use std::collections::HashMap;
use std::io::Write;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use fiber_rt::dag::GraphBuilder;
use fiber_rt::process::Command;
use fiber_rt::Runtime;

/// A task: its name, the tasks whose output it reads, its command.
type Task = (&'static str, &'static [&'static str], &'static str);

/// Eight downloads that take 0.3 s each (a `sleep` stands in for the
/// network), a count over all of them, and a report of the count.
const TASKS: &[Task] = &[
    ("fetch-1", &[], "sleep 0.3; echo alpha beta"),
    ("fetch-2", &[], "sleep 0.3; echo gamma delta epsilon"),
    ("fetch-3", &[], "sleep 0.3; echo zeta"),
    ("fetch-4", &[], "sleep 0.3; echo eta theta"),
    ("fetch-5", &[], "sleep 0.3; echo iota kappa lambda"),
    ("fetch-6", &[], "sleep 0.3; echo mu"),
    ("fetch-7", &[], "sleep 0.3; echo nu xi"),
    ("fetch-8", &[], "sleep 0.3; echo omicron pi rho"),
    (
        "count",
        &[
            "fetch-1", "fetch-2", "fetch-3", "fetch-4", "fetch-5", "fetch-6", "fetch-7", "fetch-8",
        ],
        "wc -w",
    ),
    ("report", &["count"], "read n; echo \"$n words fetched\""),
];

/// What the tasks wrote, by name.
type Outputs = Arc<Mutex<HashMap<&'static str, Vec<u8>>>>;

/// Runs `command` with `input` on its standard input and returns what it
/// wrote; a non-zero exit is an error that quotes its standard error.
fn run_task(command: &str, input: Vec<u8>) -> Result<Vec<u8>, String> {
    let mut child = Command::new("sh")
        .args(["-c", command])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start `sh`: {e}"))?;
    // Fed from a fiber of its own, so that a child that writes before it
    // has read everything never waits on a full pipe that nobody reads. A
    // child that exits without reading all of it breaks the pipe: not an
    // error of the feeder's.
    let mut stdin = child.stdin.take().expect("piped");
    let feeder = fiber_rt::spawn(move || drop(stdin.write_all(&input)));
    // Reads standard output and error at once, then waits for the exit.
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let _ = feeder.join();
    if out.status.success() {
        Ok(out.stdout)
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(format!(
            "`{command}` failed ({}): {}",
            out.status,
            stderr.trim()
        ))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fail = std::env::args().nth(1).as_deref() == Some("fail");
    let outputs: Outputs = Arc::default();
    let mut graph = GraphBuilder::new();
    let mut ids = HashMap::new();
    for &(name, needs, command) in TASKS {
        let command = if fail && name == "fetch-3" {
            "echo 'fetch-3: host not found' >&2; exit 6"
        } else {
            command
        };
        let outputs = outputs.clone();
        let id = graph.try_node(name, move || {
            // Every task it needs has finished: their outputs are in.
            let input = {
                let done = outputs.lock().unwrap();
                needs.iter().flat_map(|need| done[need].clone()).collect()
            };
            let start = Instant::now();
            let out = run_task(command, input)?;
            println!("{name:>8}: {:>4} ms", start.elapsed().as_millis());
            outputs.lock().unwrap().insert(name, out);
            Ok::<_, String>(())
        });
        ids.insert(name, id);
    }
    for &(name, needs, _) in TASKS {
        for need in needs {
            graph.edge(ids[need], ids[name]);
        }
    }
    let graph = graph.build()?;

    let rt = Runtime::new()?;
    let start = Instant::now();
    let result = rt.run(graph);
    let wall = start.elapsed();
    match result {
        Ok(()) => {
            let report = outputs.lock().unwrap()["report"].clone();
            print!("{}", String::from_utf8_lossy(&report));
            println!(
                "{} tasks in {} ms on {} workers: the fetches, 300 ms each, overlapped",
                TASKS.len(),
                wall.as_millis(),
                rt.workers()
            );
            Ok(())
        }
        Err(e) => {
            println!("the run failed: {e}");
            println!("finished: {}", outputs.lock().unwrap().len());
            Ok(())
        }
    }
}
