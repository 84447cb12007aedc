// An input that no fiber reads is rejected.
use fiber_rt::{depends, fiber};

#[fiber]
fn one() -> u32 {
    1
}

depends! {
    graph Forgetful(unused: u32) {
        one();
    }
}

fn main() {}
