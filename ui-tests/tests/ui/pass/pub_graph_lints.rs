// A public graph at module level leaves the crate's lints alone: its
// struct (with no `Debug`, which its inputs may lack) is the macro's, not
// the user's, for `missing_debug_implementations`.
#![deny(warnings, missing_debug_implementations)]

use fiber_rt::{depends, fiber};

#[fiber]
pub fn seven() -> u64 {
    7
}

depends! {
    pub graph Seven(factor: u64) {
        seven();
        scale(seven, factor);
    }
}

#[fiber]
pub fn scale(x: &u64, factor: &u64) -> u64 {
    x * factor
}

fn main() {
    let rt = fiber_rt::Runtime::new().unwrap();
    assert_eq!(rt.run(Seven::new(6)).unwrap().scale, 42);
}
