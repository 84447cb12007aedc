// `#[fiber]` rejects `impl Trait` parameters, which make a function generic.
use fiber_rt::fiber;

#[fiber]
fn total(xs: impl Iterator<Item = u64>) -> u64 {
    xs.sum()
}

fn main() {}
