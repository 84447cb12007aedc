// Naming a type that is not a `#[fiber]` gives a readable error on the name.
use fiber_rt::{depends, fiber};

struct Settings {}

#[fiber]
fn apply(x: &u32) -> u32 {
    *x
}

depends! {
    graph Wrong {
        apply(Settings);
    }
}

fn main() {}
