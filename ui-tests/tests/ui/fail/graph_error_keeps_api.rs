// A graph with an error still has its constructor, `TABLE`, `NODES` and
// `dot()`, so code that uses them (`Sum::new(..)`) shows no errors of its
// own: only the graph's error shows.
use fiber_rt::{depends, fiber};

#[fiber]
fn total(xs: &[u64]) -> u64 {
    xs.iter().sum()
}

depends! {
    graph Sum(xs: Vec<u64>, unused: u32) {
        total(xs);
    }
}

fn main() {
    let graph = Sum::new(vec![1, 2, 3], 4);
    let _ = graph.xs.len();
    let _ = Sum::dot();
}
