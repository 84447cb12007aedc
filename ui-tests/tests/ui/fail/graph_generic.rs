// A graph cannot take type or lifetime parameters: the error says so at the
// `<`, and what its inputs may be instead.
use fiber_rt::{depends, fiber};

#[fiber]
fn total(xs: &[u64]) -> u64 {
    xs.iter().sum()
}

depends! {
    graph Sum<'a>(xs: &'a [u64]) {
        total(xs);
    }
}

fn main() {}
