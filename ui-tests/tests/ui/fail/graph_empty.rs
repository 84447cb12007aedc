// A graph with no fibers is rejected.
use fiber_rt::depends;

depends! {
    pub graph Nothing {}
}

fn main() {}
