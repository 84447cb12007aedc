// An output whose type does not fit the parameter at its position is
// rejected on that dependency.
use fiber_rt::{depends, fiber};

#[fiber]
fn name() -> String {
    "x".into()
}
#[fiber]
fn count() -> u64 {
    1
}
#[fiber]
fn label(n: &u64, s: &String) -> String {
    format!("{s}{n}")
}

depends! {
    graph Swapped {
        label(name, count);
    }
}

fn main() {}
