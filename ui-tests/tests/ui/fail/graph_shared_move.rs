// A parameter that takes its input by value (`T`) is rejected when that
// output has several consumers: it can only be borrowed.
use fiber_rt::{depends, fiber};

#[fiber]
fn load() -> Vec<u64> {
    vec![1]
}
#[fiber]
fn keep(xs: Vec<u64>) -> usize {
    xs.len()
}
#[fiber]
fn peek(xs: &Vec<u64>) -> usize {
    xs.len()
}

depends! {
    graph Greedy {
        keep(load);
        peek(load);
    }
}

fn main() {}
