// An input and a fiber cannot share a name.
use fiber_rt::{depends, fiber};

#[fiber]
fn data() -> u32 {
    1
}
#[fiber]
fn use_it(x: &u32) -> u32 {
    *x
}

depends! {
    graph Clash(data: u32) {
        data();
        use_it(data);
    }
}

fn main() {}
