// A type named like a graph's outputs struct (`NameOutputs`) is reported
// on the graph's name, not on the whole `depends!`. (The graph's code
// then reads the other type, so rustc also finds its fields missing.)
use fiber_rt::{depends, fiber};

pub struct ReportOutputs;

#[fiber]
fn report() -> u32 {
    2
}

depends! {
    pub graph Report {
        report();
    }
}

fn main() {}
