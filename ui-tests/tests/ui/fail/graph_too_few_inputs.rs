// A fiber given fewer dependencies than it has parameters is rejected on
// its statement.
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
    graph Short {
        add(load);
    }
}

fn main() {}
