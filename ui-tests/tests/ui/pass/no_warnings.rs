// Generated code is warning-free, even when a program reads only some
// outputs, never calls `dot()`, and declares its fibers and graph inside a
// function body.
#![deny(warnings, missing_docs)]
//! A program that reads one output of a graph.

fn main() {
    use fiber_rt::{depends, fiber};

    #[fiber]
    fn seven() -> u64 {
        7
    }

    #[fiber]
    fn twice(x: &u64) -> u64 {
        x * 2
    }

    #[fiber]
    fn ignored(x: &u64) -> String {
        x.to_string()
    }

    depends! {
        graph Local(offset: u64) {
            twice(seven);
            ignored(seven);
            sum(twice, offset);
        }
    }

    #[fiber]
    fn sum(x: &u64, y: u64) -> u64 {
        x + y
    }

    let out = fiber_rt::dag::run_with(Local { offset: 1 }, |task| task.run()).unwrap();
    assert_eq!(out.sum, 15);
}
