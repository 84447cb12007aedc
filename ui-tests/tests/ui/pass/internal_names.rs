// Fibers and inputs may have any name, those of the run's own state
// included: it is kept beside the slots, not among them.
use fiber_rt::{depends, fiber};

#[fiber]
fn __counters() -> u32 {
    1
}

#[fiber]
fn __readers(x: &u32, __fields: &u32) -> u32 {
    x + __fields
}

depends! {
    graph Clash(__fields: u32) {
        __readers(__counters, __fields);
    }
}

fn main() {
    let out = fiber_rt::dag::run_with(Clash::new(2), |task| task.run()).unwrap();
    assert_eq!((out.__counters, out.__readers), (1, 3));
}
