// The hint for a misspelt input never points at another input, and names
// the unused one: `xs` is an input, `lines` (a fiber) is spelt like one.
use fiber_rt::{depends, fiber};

#[fiber]
fn lines() -> Vec<String> {
    Vec::new()
}

#[fiber]
fn total(xs: &[u64], lines: &[String]) -> usize {
    xs.len() + lines.len()
}

depends! {
    graph Count(xs: Vec<u64>, ys: Vec<u64>, line: String) {
        total(xs, lines);
    }
}

fn main() {}
