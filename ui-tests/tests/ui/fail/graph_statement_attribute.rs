// A graph's statement takes doc comments only; other attributes belong on
// the `#[fiber]` function.
use fiber_rt::{depends, fiber};

#[fiber]
fn load() -> u32 {
    1
}

depends! {
    graph Attributed {
        #[cfg(test)]
        load();
    }
}

fn main() {}
