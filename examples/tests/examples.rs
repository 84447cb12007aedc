//! Every example runs (with small sizes where it takes arguments) and
//! prints what a person would check.

use std::path::PathBuf;
use std::process::Command;

/// The example binary that `cargo test` built beside this test.
fn example(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().unwrap();
    dir.pop(); // the test binary
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("examples").join(name)
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
