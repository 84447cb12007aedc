// `#[fiber]` rejects generic functions: a graph needs concrete types.
use fiber_rt::fiber;

#[fiber]
fn first<T: Clone>(xs: &Vec<T>) -> T {
    xs[0].clone()
}

fn main() {}
