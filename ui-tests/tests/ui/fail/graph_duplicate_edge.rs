// A dependency listed twice for one fiber is rejected at the repeat.
use fiber_rt::{depends, fiber};

#[fiber]
fn load() -> u32 {
    1
}
#[fiber]
fn add(x: &u32, y: &u32) -> u32 {
    x + y
}

depends! {
    graph Doubled {
        add(load, load);
    }
}

fn main() {}
