// A fiber given more dependencies than it has parameters is rejected on
// its statement.
use fiber_rt::{depends, fiber};

#[fiber]
fn one() -> u32 {
    1
}
#[fiber]
fn two() -> u32 {
    2
}
#[fiber]
fn double(x: &u32) -> u32 {
    x * 2
}

depends! {
    graph Long {
        double(one, two);
    }
}

fn main() {}
