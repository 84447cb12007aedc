// An output that cannot be sent to another thread is rejected on its node:
// nodes run on any worker.
use fiber_rt::{depends, fiber};
use std::rc::Rc;

#[fiber]
fn shared() -> Rc<u32> {
    Rc::new(1)
}

depends! {
    graph Local {
        shared();
    }
}

fn main() {}
