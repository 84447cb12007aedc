// Naming a function without `#[fiber]` is rejected on the name.
use fiber_rt::{depends, fiber};

fn load() -> u32 {
    1
}

#[fiber]
fn double(x: &u32) -> u32 {
    x * 2
}

depends! {
    graph Plain {
        double(load);
    }
}

fn main() {}
