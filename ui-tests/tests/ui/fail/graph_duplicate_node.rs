// A fiber listed in two statements is rejected at the second.
use fiber_rt::{depends, fiber};

#[fiber]
fn load() -> u32 {
    1
}
#[fiber]
fn double(x: &u32) -> u32 {
    x * 2
}

depends! {
    graph Twice {
        double(load);
        double(load);
    }
}

fn main() {}
