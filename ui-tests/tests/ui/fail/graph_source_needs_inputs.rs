// A name used only as a dependency is a source, called with no inputs: a
// fiber that needs inputs there is rejected where it is named.
use fiber_rt::{depends, fiber};

#[fiber]
fn parse(text: &String) -> u32 {
    text.len() as u32
}
#[fiber]
fn double(x: &u32) -> u32 {
    x * 2
}

depends! {
    graph Unfed {
        double(parse);
    }
}

fn main() {}
