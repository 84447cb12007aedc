// A fiber that depends on itself is rejected at that dependency.
use fiber_rt::{depends, fiber};

#[fiber]
fn again(x: &u32) -> u32 {
    *x
}

depends! {
    graph Selfish {
        again(again);
    }
}

fn main() {}
