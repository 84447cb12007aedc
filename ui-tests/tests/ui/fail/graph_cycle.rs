// A dependency cycle is rejected, and the message lists the cycle.
use fiber_rt::{depends, fiber};

#[fiber]
fn a(x: &u32) -> u32 {
    *x
}
#[fiber]
fn b(x: &u32) -> u32 {
    *x
}
#[fiber]
fn c(x: &u32) -> u32 {
    *x
}

depends! {
    graph Loop {
        a(c);
        b(a);
        c(b);
    }
}

fn main() {}
