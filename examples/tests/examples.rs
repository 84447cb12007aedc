//! Every example runs (with small sizes where it takes arguments) and
//! prints what a person would check.

use std::path::PathBuf;
use std::process::Command;

/// The example binary that `cargo test` built beside this test: cargo
/// names it `<name>-<hash>` (plain `<name>` after a `cargo build`); the
/// newest one wins.
fn example(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().unwrap();
    dir.pop(); // the test binary
    if dir.ends_with("deps") {
        dir.pop();
    }
    let dir = dir.join("examples");
    let prefix = format!("{name}-");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            (file == name
                || file
                    .strip_prefix(&prefix)
                    .is_some_and(|h| h.chars().all(|c| c.is_ascii_hexdigit())))
                && e.metadata().is_ok_and(|m| m.is_file())
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
        .unwrap_or_else(|| panic!("example {name} was not built in {}", dir.display()))
}

fn run(name: &str, args: &[&str]) -> String {
    let out = Command::new(example(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {name}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn quickstart_prints_the_statistics() {
    let out = run("quickstart", &[]);
    assert!(out.contains("sum=500000500000 max=1000000"), "{out}");
    assert!(out.contains("critical path: load -> "), "{out}");
}

#[test]
fn pipeline_runs_one_graph_on_several_inputs() {
    let out = run("pipeline", &[]);
    assert!(
        out.contains("fox: 16 words, 10 distinct, most frequent long word: 'jumps' x2"),
        "{out}"
    );
    assert!(
        out.contains("fibers: 11 words, 7 distinct, most frequent long word: 'fibers' x4"),
        "{out}"
    );
    assert!(
        out.contains("empty: 0 words, 0 distinct, most frequent long word: none"),
        "{out}"
    );
}

#[test]
fn crawler_visits_every_page_once_with_overlapping_fetches() {
    let out = run("crawler", &["200", "32"]);
    assert!(
        out.contains("crawled 200 pages (200 fetches) with 32 fetcher fibers"),
        "{out}"
    );
    let overlap: f64 = out
        .split('(')
        .next_back()
        .and_then(|s| s.split('x').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no overlap figure in {out}"));
    assert!(overlap > 4.0, "fetches barely overlapped: {out}");
}

/// The number before " ticks" on the line starting with `label`.
fn ticks(out: &str, label: &str) -> usize {
    let line = out
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no '{label}' in {out}"));
    line.split(": ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

/// The longest gap, in ms, on the line starting with `label`.
fn longest_gap(out: &str, label: &str) -> f64 {
    let line = out
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no '{label}' in {out}"));
    line.split("longest gap ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

#[test]
fn preemption_keeps_the_ticker_ticking_and_its_absence_starves_it() {
    let out = run("preemption", &["150"]);
    assert!(ticks(&out, "with preemption") > 0, "{out}");
    // Without preemption the ticker waits for the spinners, 150 ms; with
    // it, for a slice or a few (more on a loaded machine, never near that).
    let with = longest_gap(&out, "with preemption");
    let without = longest_gap(&out, "without preemption");
    assert!(without >= 140.0, "{out}");
    assert!(with < without / 2.0, "{out}");
}

#[test]
fn trace_writes_a_chrome_trace_and_a_gantt_chart() {
    let dir = std::env::temp_dir().join(format!("fiber-trace-example-{}", std::process::id()));
    let out = run("trace", &[dir.to_str().unwrap()]);
    for file in ["trace.json", "gantt.svg"] {
        let path = dir.join(file);
        assert!(out.contains(&format!("wrote {}", path.display())), "{out}");
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "{} is missing or empty", path.display());
    }
    let json = std::fs::read_to_string(dir.join("trace.json")).unwrap();
    assert_eq!(json.matches("\"ph\":\"X\"").count(), 5, "{json}");
    let svg = std::fs::read_to_string(dir.join("gantt.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
        "{svg}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn build_system_builds_every_step_and_draws_the_build() {
    let dir = std::env::temp_dir().join(format!("fiber-build-{}", std::process::id()));
    let out = run("build_system", &[dir.to_str().unwrap(), "1"]);
    assert!(out.contains("built 12 of 12 steps"), "{out}");
    // A chain of the project from a source to a final step. Which chain
    // depends on the timing (on a loaded machine a short step may take
    // longest), so only its ends are checked.
    let path: Vec<&str> = out
        .lines()
        .find_map(|l| l.strip_prefix("critical path: "))
        .unwrap_or_else(|| panic!("no critical path in {out}"))
        .split(" -> ")
        .collect();
    assert!(path.len() >= 3, "{out}");
    assert!(["codegen", "util.o"].contains(&path[0]), "{out}");
    assert!(["tests", "docs"].contains(path.last().unwrap()), "{out}");
    let svg = std::fs::read_to_string(dir.join("build.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") || svg.starts_with("<?xml"),
        "not an SVG"
    );
    assert_eq!(svg.matches("class=\"node\"").count(), 12, "a bar per step");
    assert!(std::fs::read_to_string(dir.join("build.json"))
        .unwrap()
        .contains("\"ph\":\"X\""));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn echo_server_answers_every_line_of_every_client() {
    let out = run("echo_server", &["300", "20"]);
    assert!(
        out.contains("answered 6000 lines for 300 clients on "),
        "{out}"
    );
    // The clients connect at once and each waits for its answers, so the
    // server has many connections open together, each parked on its socket.
    let busiest: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("at most "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no 'at most' line in {out}"));
    assert!(busiest > 1, "{out}");
}

#[test]
fn task_runner_feeds_each_task_its_inputs_and_names_a_failed_one() {
    let out = run("task_runner", &[]);
    assert!(out.contains("17 words fetched"), "{out}");
    assert!(out.contains("10 tasks in "), "{out}");
    let out = run("task_runner", &["fail"]);
    assert!(
        out.contains("fiber `fetch-3` returned an error")
            && out.contains("fetch-3: host not found")
            && out.contains("2 dependent fibers skipped"),
        "{out}"
    );
    assert!(out.contains("finished: 7"), "{out}");
}
