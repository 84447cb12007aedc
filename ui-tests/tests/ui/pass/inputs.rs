// A graph with run-time inputs is a struct with a field per input, built
// anew for each run; an input read by one fiber can be taken by value.
use fiber_rt::{depends, fiber};

#[fiber]
fn total(xs: &Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[fiber]
fn count(xs: &Vec<u64>) -> usize {
    xs.len()
}

#[fiber]
fn label(prefix: String, total: &u64, count: &usize) -> String {
    format!("{prefix}: {total} over {count}")
}

depends! {
    pub(crate) graph Summary(xs: Vec<u64>, prefix: String) {
        total(xs);
        count(xs);
        label(prefix, total, count);
    }
}

fn run(graph: Summary) -> String {
    fiber_rt::dag::run_with(graph, |task| task.run()).unwrap().label
}

fn main() {
    assert_eq!(run(Summary::new(vec![1, 2, 3], "a".into())), "a: 6 over 3");
    assert_eq!(run(Summary { xs: vec![10], prefix: "b".into() }), "b: 10 over 1");
    assert_eq!(Summary::TABLE.inputs.len(), 2);
    assert_eq!(Summary::TABLE.inputs[0].consumers.len(), 2);
    assert!(Summary::dot().contains("shape=ellipse"));
}
