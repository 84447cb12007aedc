// `#[fiber_rt::main]` runs `main`'s body as a fiber on a runtime of its
// own, built with the options: the body spawns and joins there, `?` and
// `return` mean what they mean in a function, its `Result` is `main`'s,
// an inner attribute covers the whole body, and the expansion is
// warning-free.
#![deny(warnings)]

use std::error::Error;

#[fiber_rt::main(workers = 2, stack = "128 KiB")]
fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    #![allow(unused_variables)]
    let unused = "allowed by the inner attribute";
    assert!(fiber_rt::current().is_some());
    let n: u64 = "21".parse()?;
    let doubled = fiber_rt::spawn(move || n * 2).join()?;
    let mut rounds = 0;
    while rounds < 3 {
        fiber_rt::yield_now();
        rounds += 1;
    }
    if doubled == 42 && rounds == 3 {
        return Ok(());
    }
    Err("the fiber doubled wrongly".into())
}
