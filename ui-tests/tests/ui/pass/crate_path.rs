// `crate = ".."` tells the macros where `fiber_rt` is, for a crate that
// reaches it through a re-export (or under another name): the generated
// code then names only that path.
mod facade {
    pub use fiber_rt as rt;
}

use facade::rt::{depends, fiber, Runtime};

#[fiber(crate = "crate::facade::rt", name = "load numbers")]
fn load() -> Vec<u64> {
    (1..=10).collect()
}

#[fiber(crate = "crate::facade::rt")]
fn total(xs: &[u64], offset: &u64) -> u64 {
    xs.iter().sum::<u64>() + offset
}

depends! {
    #[depends(crate = "crate::facade::rt")]
    /// A graph whose expansion names `crate::facade::rt`.
    graph Sum(offset: u64) {
        total(load, offset);
    }
}

fn main() {
    let rt = Runtime::new().unwrap();
    assert_eq!(rt.run(Sum::new(5)).unwrap().total, 60);
    assert_eq!(Sum::TABLE.nodes[0].name, "load numbers");
}
