// A dependency is a name alone: `&load` is rejected with the rule that the
// parameter's type decides between borrowing and taking the output.
use fiber_rt::{depends, fiber};

#[fiber]
fn load() -> Vec<u64> {
    vec![1, 2, 3]
}

#[fiber]
fn total(xs: &[u64]) -> u64 {
    xs.iter().sum()
}

depends! {
    graph Sum {
        total(&load);
    }
}

fn main() {}
