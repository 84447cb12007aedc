// A graph's input is moved into the run: a borrowed input type is rejected
// on its `&` (or its lifetime), with the owned types to use instead.
use fiber_rt::{depends, fiber};

#[fiber]
fn total(xs: &[u64]) -> u64 {
    xs.iter().sum()
}

#[fiber]
fn first(name: &str) -> Option<char> {
    name.chars().next()
}

depends! {
    graph Sum(xs: &[u64], name: std::borrow::Cow<'_, str>) {
        total(xs);
        first(name);
    }
}

fn main() {}
