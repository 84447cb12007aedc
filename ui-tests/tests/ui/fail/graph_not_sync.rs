// A borrowed output must be `Sync`, since its readers may run on several
// threads at once: a `Cell` is rejected on the edge that borrows it.
use fiber_rt::{depends, fiber};
use std::cell::Cell;

#[fiber]
fn counter() -> Cell<u32> {
    Cell::new(0)
}
#[fiber]
fn read(c: &Cell<u32>) -> u32 {
    c.get()
}

depends! {
    graph Racy {
        read(counter);
    }
}

fn main() {}
