// `r#name` and `name` are one name for every rule: an input declared as
// `r#xs` and read as `xs` is used, not reported as unused.
#![deny(warnings)]

use fiber_rt::{depends, fiber, Runtime};

#[fiber]
fn total(xs: &[u64]) -> u64 {
    xs.iter().sum()
}

depends! {
    graph Sum(r#xs: Vec<u64>) {
        total(xs);
    }
}

fn main() {
    let out = Runtime::new().unwrap().run(Sum::new(vec![1, 2, 3])).unwrap();
    assert_eq!(out.total, 6);
}
