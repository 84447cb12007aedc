// A graph named like a type already in its module (the graph is a struct
// of that name) is reported on the graph's name, not on the whole
// `depends!`.
use fiber_rt::{depends, fiber};

#[fiber]
fn load() -> u32 {
    1
}

pub struct Stats;

depends! {
    pub graph Stats {
        load();
    }
}

fn main() {}
