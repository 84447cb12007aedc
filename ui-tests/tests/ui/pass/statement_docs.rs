// Doc comments on a graph's statements document the nodes' fields of the
// outputs struct.
#![deny(missing_docs)]
//! A documented graph.

use fiber_rt::{depends, fiber, Runtime};

#[fiber]
fn load() -> Vec<u32> {
    vec![1, 2, 3]
}

#[fiber]
fn total(v: &[u32]) -> u32 {
    v.iter().sum()
}

depends! {
    /// Adds up what it loads.
    pub graph Documented {
        /// The numbers, as loaded.
        load();
        /// Their sum.
        total(load);
    }
}

fn main() {
    let rt = Runtime::new().unwrap();
    assert_eq!(rt.run(Documented).unwrap().total, 6);
}
